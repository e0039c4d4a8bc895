#!/usr/bin/env bash
# Yachay: instala o actualiza una caja escolar / installs or updates a school box.
# One script a technician runs on a fresh Debian 12 / Raspberry Pi OS 64-bit / Jetson Ubuntu box,
# online (from the checkout it is in) or offline (from `npm run bundle`'s tar.gz). Running it
# again changes nothing and says so. Run `provision.sh --help` for the options.
set -euo pipefail
umask 022
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
  cat <<'EOF'
Uso / usage: sudo bash provisioning/provision.sh [opciones / options]

Instala Yachay en esta caja (o en una raíz montada) y deja todo listo; se puede repetir sin
riesgo: la segunda vez no cambia nada. / Installs Yachay on this box (or a mounted root);
safe to run again: a second run changes nothing.

  --bundle FILE        paquete sin internet / offline bundle (yachay-<version>-linux-<arch>.tar.gz);
                       sin él se instala desde esta copia del código (con internet) / without it,
                       installs from this checkout (online: runs setup-dev.sh's box profile)
  --hub URL --enroll CODE
                       inscribe la caja en el hub al arrancar / enroll the box with the hub at start
  --school ID          nombre de la escuela en el catálogo / school id (a-z, 0-9, -)
  --mode systemd|k3s   systemd (por defecto / default) o k3s de una escuela / single-node k3s
  --name NAME          nombre en la red: NAME.local (por defecto / default yachay)
  --data-dir DIR       datos / data (default /var/lib/yachay)
  --data-device DEV    disco SSD externo, montado por UUID en --data-dir / external SSD (e.g.
  --data-uuid UUID       /dev/sda1), mounted by UUID on --data-dir through /etc/fstab
  --http-port N        puerto web / web port (default 8080; below 1024 the box gets only the
                       capability to bind it)
  --root DIR           actúa sobre una raíz montada (tarjeta SD, prueba) / act on a mounted root
  --no-apt             no instala paquetes Debian / install no Debian packages
  --health-timeout S   espera de /health en segundos / wait for /health (default 180)
  -h, --help           esta ayuda / this help

Al final muestra la dirección, el código de administrador y un QR para fotografiar.
At the end it prints the address, the admin setup code and a QR code to photograph.
EOF
}

say() { printf '%s\n' "$*"; }
warn() { printf 'provision: aviso / warning: %s\n' "$*" >&2; }
die() { printf 'provision: error: %s\n' "$1" >&2; [ -n "${2:-}" ] && printf '  → %s\n' "$2" >&2; exit "${3:-1}"; }
step() { printf '\n== %s\n' "$*"; }
CHANGES=0
changed() { CHANGES=$((CHANGES + 1)); say "  cambiado / changed: $*"; }
same() { say "  sin cambios / unchanged: $*"; }

BUNDLE='' HUB='' ENROLL='' SCHOOL='' MODE=systemd NAME=yachay ROOT='' DATA_DIR=/var/lib/yachay
DATA_DEVICE='' DATA_UUID='' HTTP_PORT='' NO_APT=0 HEALTH_TIMEOUT=180
need() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 necesita un valor / needs a value" "provision.sh --help" 64; }
while [ $# -gt 0 ]; do
  case $1 in
    --bundle) need "$@"; BUNDLE=$2; shift 2 ;;
    --hub) need "$@"; HUB=$2; shift 2 ;;
    --enroll) need "$@"; ENROLL=$2; shift 2 ;;
    --school) need "$@"; SCHOOL=$2; shift 2 ;;
    --mode) need "$@"; MODE=$2; shift 2 ;;
    --name) need "$@"; NAME=$2; shift 2 ;;
    --root) need "$@"; ROOT=$2; shift 2 ;;
    --data-dir) need "$@"; DATA_DIR=$2; shift 2 ;;
    --data-device) need "$@"; DATA_DEVICE=$2; shift 2 ;;
    --data-uuid) need "$@"; DATA_UUID=$2; shift 2 ;;
    --http-port) need "$@"; HTTP_PORT=$2; shift 2 ;;
    --health-timeout) need "$@"; HEALTH_TIMEOUT=$2; shift 2 ;;
    --no-apt) NO_APT=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "opción desconocida / unknown option: $1" "provision.sh --help" 64 ;;
  esac
done

# ---- checks before touching anything -------------------------------------------------------
[ "$(id -u)" = 0 ] || die "hace falta root / must run as root" "sudo bash $0 $*" 77
case $MODE in systemd|k3s) ;; *) die "--mode $MODE: systemd o / or k3s" "" 64 ;; esac
[[ $NAME =~ ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ ]] || die "--name $NAME: solo a-z, 0-9 y - / only a-z, 0-9 and -" "" 64
[[ -z $SCHOOL || $SCHOOL =~ ^[a-z0-9-]{3,40}$ ]] || die "--school $SCHOOL: 3 a 40 de a-z, 0-9, - / 3 to 40 of a-z, 0-9, -" "" 64
[[ -z $HTTP_PORT || ( $HTTP_PORT =~ ^[0-9]+$ && $HTTP_PORT -ge 1 && $HTTP_PORT -le 65535 ) ]] || die "--http-port $HTTP_PORT: 1-65535" "" 64
[[ $DATA_DIR == /* ]] || die "--data-dir $DATA_DIR: ruta absoluta / an absolute path" "" 64
DATA_DIR=${DATA_DIR%/}
[ -z "$ENROLL" ] || [ -n "$HUB" ] || [ -f "$ROOT/etc/yachay/config.json" ] || die "--enroll necesita --hub URL / needs --hub URL" "" 64
[ -z "$DATA_DEVICE" ] || [ -z "$DATA_UUID" ] || die "--data-device o / or --data-uuid, no ambos / not both" "" 64
if [ -n "$ROOT" ]; then
  ROOT=$(cd "$ROOT" && pwd) || die "--root $ROOT no existe / does not exist"
  [ "$ROOT" != / ] || ROOT=''
fi
[ -z "$ROOT" ] || [ -f "$ROOT/etc/os-release" ] || die "--root $ROOT no parece un sistema / is not a system root (no etc/os-release)"
[ -z "$BUNDLE" ] || [ -f "$BUNDLE" ] || die "--bundle $BUNDLE no existe / not found"

# systemd is only asked when it runs this very system; a chroot or a mounted SD card gets files
SYSTEMD=0
[ -z "$ROOT" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null && SYSTEMD=1
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
in_root() { if [ -n "$ROOT" ]; then chroot "$ROOT" "$@"; else "$@"; fi; }
# numeric ids from the target's own passwd: on an SD card the host's names mean other users
id_in_root() { awk -F: -v n="$2" '$1 == n { print $3 }' "$ROOT/etc/$1"; }

ensure_dir() { # path mode uid gid
  local p=$ROOT$1
  if [ ! -d "$p" ]; then mkdir -p "$p"; chmod "$2" "$p"; chown "$3:$4" "$p"; changed "$1 (creado / created)"; return; fi
  if [ "$(stat -c '%a %u %g' "$p")" != "${2#0} $3 $4" ]; then chmod "$2" "$p"; chown "$3:$4" "$p"; changed "$1 (permisos / mode $2)"; fi
}
install_text() { # path mode uid gid (content on stdin)
  local p=$ROOT$1 tmp
  # compared outside the target first: an unchanged file leaves even its folder's mtime alone
  cat > "$SCRATCH/new"
  if [ -f "$p" ] && cmp -s "$SCRATCH/new" "$p"; then
    if [ "$(stat -c '%a %u %g' "$p")" != "${2#0} $3 $4" ]; then chmod "$2" "$p"; chown "$3:$4" "$p"; changed "$1 (permisos / mode $2)"; return 0; fi
    return 1
  fi
  mkdir -p "$(dirname "$p")"
  tmp=$(mktemp "$(dirname "$p")/.provision-XXXXXX")
  cat "$SCRATCH/new" > "$tmp"
  chmod "$2" "$tmp"; chown "$3:$4" "$tmp"; sync -f "$tmp" 2>/dev/null || true
  mv -f "$tmp" "$p"
  changed "$1"
}
ensure_link() { # link target
  local p=$ROOT$1
  if [ -L "$p" ] && [ "$(readlink "$p")" = "$2" ]; then return 1; fi
  mkdir -p "$(dirname "$p")"
  # rename of a new link over the old one: the box never sees `current` missing
  ln -sfn "$2" "$p.provision-tmp" && mv -T "$p.provision-tmp" "$p"
  changed "$1 → $2"
}
remove_path() { if [ -e "$ROOT$1" ] || [ -L "$ROOT$1" ]; then rm -f "$ROOT$1"; changed "$1 (quitado / removed)"; fi; }
ENV_FILE=/etc/yachay/env

printf 'Yachay — instalación / provisioning%s\n' "${ROOT:+ (raíz / root: $ROOT)}"

# ---- Debian packages ---------------------------------------------------------------------
APT_PKGS=(ffmpeg tesseract-ocr tesseract-ocr-spa tesseract-ocr-eng fonts-dejavu-core espeak-ng avahi-daemon qrencode curl)
step "paquetes Debian / Debian packages"
if [ "$NO_APT" = 1 ]; then
  say "  omitido (--no-apt) / skipped: ${APT_PKGS[*]}"
elif ! in_root sh -c 'command -v apt-get' >/dev/null 2>&1; then
  warn "no hay apt-get: instale a mano / no apt-get: install by hand: ${APT_PKGS[*]}"
else
  missing=()
  for p in "${APT_PKGS[@]}"; do
    in_root dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then same "${APT_PKGS[*]}"
  elif in_root apt-get update -q >/dev/null 2>&1 &&
       in_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}" >/dev/null; then
    changed "instalados / installed: ${missing[*]}"
  else
    # offline: the box still serves and syncs; only encoding (ffmpeg) and the OCR check need them
    warn "sin internet no se instalaron / could not install (offline?): ${missing[*]}; la caja sirve lecciones, pero no codifica sin ffmpeg / the box serves lessons but cannot encode without ffmpeg"
  fi
fi

# ---- the box's user (first: the release and the data belong to it) ------------------------------
step "usuario / user"
if [ -n "$(id_in_root passwd yachay)" ]; then same "usuario / user yachay"
else
  useradd ${ROOT:+--root "$ROOT"} --system --user-group --home-dir "$DATA_DIR" --no-create-home \
    --shell /usr/sbin/nologin --comment 'Yachay school box' yachay
  changed "usuario de sistema / system user yachay"
fi
Y_UID=$(id_in_root passwd yachay) Y_GID=$(id_in_root group yachay)

# ---- the release: from the bundle, or a bundle made from this checkout ----------------------
step "aplicación / application"
if [ -z "$BUNDLE" ]; then
  checkout=$(cd "$HERE/.." && pwd)
  [ -f "$checkout/package.json" ] && [ -f "$checkout/provisioning/bundle.sh" ] ||
    die "sin --bundle, esta copia no es el código de Yachay / without --bundle this is not a Yachay checkout" "provision.sh --bundle yachay-<version>-linux-<arch>.tar.gz"
  version=${YACHAY_VERSION:-$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$checkout/package.json" | head -1)}
  # an unpacked bundle (its VERSION file and production node_modules) installs itself as it is
  unpacked=0
  if [ -f "$checkout/VERSION" ] && [ -d "$checkout/node_modules/tsx" ]; then unpacked=1; version=$(head -1 "$checkout/VERSION"); fi
else
  top=$(set +o pipefail; tar -tzf "$BUNDLE" 2>/dev/null | head -n1)
  top=${top%%/*}
  [[ $top == yachay-* ]] || die "$BUNDLE no es un paquete de Yachay / is not a Yachay bundle (top folder \"$top\")" "npm run bundle"
  version=${top#yachay-}
fi
[[ $version =~ ^[0-9A-Za-z][0-9A-Za-z.+_-]*$ ]] || die "versión ilegible / unreadable version \"$version\""
# the box updates itself (daemon/update/): it unpacks new releases here, switches `current` and
# `previous`, and prunes old releases, so the folders and the releases are its own
ensure_dir /opt/yachay 0755 "$Y_UID" "$Y_GID"
ensure_dir /opt/yachay/releases 0755 "$Y_UID" "$Y_GID"
REL=/opt/yachay/releases/$version
if [ -f "$ROOT$REL/VERSION" ]; then
  same "$REL"
  if [ -n "$BUNDLE" ] && [ -f "$ROOT$REL/.bundle-sha256" ] && [ "$(sha256sum < "$BUNDLE" | cut -d' ' -f1)" != "$(cat "$ROOT$REL/.bundle-sha256")" ]; then
    warn "$REL vino de otro paquete con la misma versión: se deja / came from another bundle of the same version: kept (YACHAY_VERSION=… npm run bundle gives a new version)"
  fi
else
  if [ -z "$BUNDLE" ] && [ "$unpacked" = 1 ]; then
    say "  desde el paquete desempacado / from the unpacked bundle $checkout"
  elif [ -z "$BUNDLE" ]; then
    say "  sin --bundle: preparo la aplicación desde $checkout / preparing the app from this checkout (online)"
    if grep -q -- '--profile' "$checkout/provisioning/setup-dev.sh" 2>/dev/null; then
      bash "$checkout/provisioning/setup-dev.sh" --profile box
    else
      bash "$checkout/provisioning/setup-dev.sh"
    fi
    made=$(mktemp -d)
    BUNDLE=$( (cd "$checkout" && YACHAY_VERSION=$version bash provisioning/bundle.sh --out "$made") | tail -1)
  fi
  unpack=$(mktemp -d "$ROOT/opt/yachay/releases/.unpack-XXXXXX")
  trap 'rm -rf "$SCRATCH" "$unpack" ${made:+"$made"}' EXIT
  if [ -n "$BUNDLE" ]; then tar -xzf "$BUNDLE" -C "$unpack" --no-same-owner
  else cp -a "$checkout" "$unpack/yachay-$version"; fi
  [ -f "$unpack/yachay-$version/VERSION" ] || die "$BUNDLE no trae yachay-$version/VERSION / lacks it" "npm run bundle"
  [ -z "$BUNDLE" ] || sha256sum < "$BUNDLE" | cut -d' ' -f1 > "$unpack/yachay-$version/.bundle-sha256"
  # owned like the releases the updater unpacks, so it can prune this one after a later update
  chown -R "$Y_UID:$Y_GID" "$unpack/yachay-$version"
  chmod -R go-w "$unpack/yachay-$version"
  mv -T "$unpack/yachay-$version" "$ROOT$REL"
  rm -rf "$unpack" ${made:+"$made"}
  trap 'rm -rf "$SCRATCH"' EXIT
  changed "$REL (versión / version $version)"
fi
ensure_link /opt/yachay/current "releases/$version" || same "/opt/yachay/current → releases/$version"

# the node that runs the box: the release's own, else the system's (20 or newer)
if [ -x "$ROOT$REL/node/bin/node" ]; then NODE=/opt/yachay/current/node/bin/node
else NODE=$(in_root sh -c 'command -v node' || true); fi
[ -n "$NODE" ] || die "no hay Node.js en la caja / no Node.js on the box" "use a bundle with node/ (npm run bundle) or install Node.js 20"
node_major=$(in_root "$NODE" -p 'process.versions.node.split(".")[0]' 2>/dev/null) ||
  die "$NODE no arranca aquí / does not run here (another architecture?)" "build the bundle on a machine of the box's architecture (arm64 for a Pi)"
[ "$node_major" -ge 20 ] || die "Node.js $node_major es viejo / is too old" "Node.js 20 or newer, or a bundle with node/"

# ---- user and folders -------------------------------------------------------------------
step "carpetas / folders"
ensure_dir /etc/yachay 0750 0 "$Y_GID"

# an external SSD: mounted by UUID (a device name changes with the USB port it is plugged into)
if [ -n "$DATA_DEVICE" ]; then
  DATA_UUID=$(blkid -s UUID -o value "$DATA_DEVICE") || true
  [ -n "$DATA_UUID" ] || die "$DATA_DEVICE no tiene sistema de archivos / has no filesystem" "mkfs.ext4 -L yachay $DATA_DEVICE (borra el disco / erases it)"
fi
if [ -n "$DATA_UUID" ]; then
  fstype=$(blkid -U "$DATA_UUID" >/dev/null 2>&1 && blkid -s TYPE -o value "$(blkid -U "$DATA_UUID")" || echo ext4)
  line="UUID=$DATA_UUID $DATA_DIR $fstype defaults,noatime,nofail,x-systemd.device-timeout=30s 0 2"
  if grep -qsF "$line" "$ROOT/etc/fstab"; then same "/etc/fstab: $DATA_DIR"
  else
    { grep -vs -e "^UUID=$DATA_UUID " -e "^[^#][^ ]* $DATA_DIR " "$ROOT/etc/fstab" || true; echo "$line"; } |
      install_text /etc/fstab 0644 0 0 || true
  fi
  [ -d "$ROOT$DATA_DIR" ] || { mkdir -p "$ROOT$DATA_DIR"; changed "$DATA_DIR (punto de montaje / mount point)"; }
  if [ -z "$ROOT" ] && ! findmnt -rn "$DATA_DIR" >/dev/null 2>&1; then
    mount "$DATA_DIR" && changed "$DATA_DIR montado / mounted" || warn "no se pudo montar / could not mount $DATA_DIR: ¿está conectado el disco? / is the disk plugged in?"
  fi
fi
ensure_dir "$DATA_DIR" 0750 "$Y_UID" "$Y_GID"
ensure_dir /var/lib/yachay-backups 0750 "$Y_UID" "$Y_GID"

# ---- configuration ------------------------------------------------------------------------
step "configuración / configuration"
sets=("dataDir=\"$DATA_DIR\"")
[ -z "$SCHOOL" ] || sets+=("school=\"$SCHOOL\"")
[ -z "$HTTP_PORT" ] || sets+=("http.port=$HTTP_PORT")
[ -z "$HUB" ] || sets+=("sync.hub=\"$HUB\"")
res=$(in_root env -i PATH=/usr/bin:/bin "$NODE" /opt/yachay/current/provisioning/config.mjs /etc/yachay/config.json "${sets[@]}") ||
  die "la configuración no es válida / the configuration is not valid (see above)" "edit /etc/yachay/config.json or fix the option" 78
http_port=${res#* }; res=${res%% *}
if [ "$res" = changed ]; then changed /etc/yachay/config.json; else same /etc/yachay/config.json; fi
if [ "$(stat -c '%a %u %g' "$ROOT/etc/yachay/config.json")" != "640 0 $Y_GID" ]; then
  chown "0:$Y_GID" "$ROOT/etc/yachay/config.json"; chmod 0640 "$ROOT/etc/yachay/config.json"; changed "/etc/yachay/config.json (permisos / mode 640)"
fi
# the daemon's own loader has the last word, with nothing but the file (as under systemd)
in_root env -i PATH=/usr/bin:/bin YACHAY_CONFIG=/etc/yachay/config.json "$NODE" /opt/yachay/current/bin/yachay.mjs check-config >/dev/null ||
  die "la caja rechaza / the box refuses /etc/yachay/config.json" "node /opt/yachay/current/bin/yachay.mjs check-config" 78
say "  yachay check-config: válida / valid"

# what the unit reads besides the config: where the data is, and the one-time enrollment code
start_args=$(sed -n 's/^YACHAY_START_ARGS="\(.*\)"$/\1/p' "$ROOT$ENV_FILE" 2>/dev/null || true)
if [ -n "$ENROLL" ]; then start_args="--enroll $ENROLL"
elif [ -f "$ROOT$DATA_DIR/sync/hub-key.pem" ]; then start_args=''   # enrolled: the code is spent
fi
{
  # a technician's own lines (YACHAY_BACKUP_DIR…) stay; ours are rewritten at the end
  if [ -f "$ROOT$ENV_FILE" ]; then grep -v -e '^YACHAY_DATA_DIR=' -e '^YACHAY_START_ARGS=' "$ROOT$ENV_FILE" || true
  else echo '# provisioning/provision.sh writes YACHAY_DATA_DIR and YACHAY_START_ARGS; other lines are kept'; fi
  printf 'YACHAY_DATA_DIR=%s\n' "$DATA_DIR"
  [ -z "$start_args" ] || printf 'YACHAY_START_ARGS="%s"\n' "$start_args"
} | install_text "$ENV_FILE" 0640 0 "$Y_GID" || same "$ENV_FILE"

# the `yachay` command for the technician: the installed release, as the box's user
install_text /usr/local/bin/yachay 0755 0 0 <<'EOF' || same /usr/local/bin/yachay
#!/bin/sh
# yachay on a provisioned box (provisioning/provision.sh): the release /opt/yachay/current points
# at, its config, and the box's own user, so files it makes stay the box's
set -a; [ -r /etc/yachay/env ] && . /etc/yachay/env; set +a
export YACHAY_CONFIG=/etc/yachay/config.json PATH="/opt/yachay/current/node/bin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
if [ "$(id -u)" = 0 ]; then exec runuser -u yachay -- /opt/yachay/current/bin/yachay.mjs "$@"; fi
exec /opt/yachay/current/bin/yachay.mjs "$@"
EOF

# ---- LAN name: NAME.local through avahi (mDNS publishes the host name) ----------------------
step "nombre en la red / LAN name: $NAME.local"
printf '%s\n' "$NAME" | install_text /etc/hostname 0644 0 0 || same /etc/hostname
{ grep -v '^127\.0\.1\.1[[:space:]]' "$ROOT/etc/hosts" 2>/dev/null || true; printf '127.0.1.1\t%s\n' "$NAME"; } |
  install_text /etc/hosts 0644 0 0 || same /etc/hosts
[ -d "$ROOT/etc/avahi/services" ] || { mkdir -p "$ROOT/etc/avahi/services"; changed /etc/avahi/services; }
install_text /etc/avahi/services/yachay.service 0644 0 0 <<EOF || same /etc/avahi/services/yachay.service
<?xml version="1.0" standalone='no'?>
<!DOCTYPE service-group SYSTEM "avahi-service.dtd">
<!-- provisioning/provision.sh: phones and laptops browsing the LAN see the box's web page -->
<service-group>
  <name replace-wildcards="yes">Yachay %h</name>
  <service>
    <type>_http._tcp</type>
    <port>$http_port</port>
  </service>
</service-group>
EOF
if [ "$SYSTEMD" = 1 ]; then
  [ "$(hostname)" = "$NAME" ] || { hostnamectl set-hostname "$NAME" && changed "hostname $NAME"; }
  if systemctl list-unit-files avahi-daemon.service >/dev/null 2>&1; then
    systemctl is-enabled -q avahi-daemon || { systemctl enable -q avahi-daemon; changed "avahi-daemon activado / enabled"; }
    systemctl is-active -q avahi-daemon || { systemctl start avahi-daemon; changed "avahi-daemon arrancado / started"; }
  fi
fi

# ---- how the box runs: systemd units, or the rendered k3s overlay ----------------------------
UNIT_DIR=/etc/systemd/system
units_changed=0
if [ "$MODE" = systemd ]; then
  step "systemd"
  UNITS=(yachay.service yachay-backup.service yachay-backup.timer)
  # the update guard (rolls back a release whose /health stays bad) came with the updater
  [ -f "$ROOT$REL/systemd/yachay-update-guard.path" ] && UNITS+=(yachay-update-guard.service yachay-update-guard.path)
  for u in "${UNITS[@]}"; do
    if install_text "$UNIT_DIR/$u" 0644 0 0 < "$ROOT$REL/systemd/$u"; then units_changed=1; else same "$UNIT_DIR/$u"; fi
  done
  ENABLE=(multi-user.target.wants/yachay.service timers.target.wants/yachay-backup.timer)
  [[ " ${UNITS[*]} " == *' yachay-update-guard.path '* ]] && ENABLE+=(multi-user.target.wants/yachay-update-guard.path)
  # what only some boxes need goes to a drop-in, so the shipped unit stays the one that is checked
  dropin='' unit_part=''
  if [ "$DATA_DIR" != /var/lib/yachay ]; then
    dropin+="ReadWritePaths=$DATA_DIR"$'\n'
  fi
  [ -z "$DATA_UUID" ] || unit_part="[Unit]"$'\n'"RequiresMountsFor=$DATA_DIR"$'\n'
  # a port below 1024 (80, so phones need no :8080): that one capability, nothing else
  if [ "${http_port:-8080}" -lt 1024 ]; then
    dropin+=$'AmbientCapabilities=CAP_NET_BIND_SERVICE\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE\n'
  fi
  if [ -n "$dropin$unit_part" ]; then
    ensure_dir "$UNIT_DIR/yachay.service.d" 0755 0 0
    if printf '# provisioning/provision.sh\n%s[Service]\n%s' "$unit_part" "$dropin" | install_text "$UNIT_DIR/yachay.service.d/provision.conf" 0644 0 0; then units_changed=1
    else same "$UNIT_DIR/yachay.service.d/provision.conf"; fi
  elif [ -e "$ROOT$UNIT_DIR/yachay.service.d/provision.conf" ]; then
    remove_path "$UNIT_DIR/yachay.service.d/provision.conf"; units_changed=1
  fi
  if [ "$SYSTEMD" = 1 ]; then
    [ "$units_changed" = 0 ] || systemctl daemon-reload
    for w in "${ENABLE[@]}"; do
      u=${w#*/}
      systemctl is-enabled -q "$u" 2>/dev/null || { systemctl enable -q "$u"; changed "$u activado / enabled"; }
    done
  else
    # no systemd running here (chroot, SD card): the links `systemctl enable` would make
    for w in "${ENABLE[@]}"; do
      ensure_link "$UNIT_DIR/$w" "$UNIT_DIR/${w#*/}" || same "$UNIT_DIR/$w"
    done
  fi
  remove_path /var/lib/rancher/k3s/server/manifests/yachay-edge.yaml
else
  step "k3s"
  # k3s applies every file in this folder at start, so the box comes back after a power cut
  K3S_DIR=/var/lib/rancher/k3s/server/manifests
  [ -d "$ROOT$K3S_DIR" ] || { mkdir -p "$ROOT$K3S_DIR"; changed "$K3S_DIR"; }
  install_text "$K3S_DIR/yachay-edge.yaml" 0600 0 0 < "$ROOT$REL/k3s/edge.yaml" || same "$K3S_DIR/yachay-edge.yaml"
  # one box per node: the systemd install and the pod would fight for the same ports
  if [ "$SYSTEMD" = 1 ] && systemctl is-enabled -q yachay.service 2>/dev/null; then
    systemctl disable -q --now yachay.service; changed "yachay.service desactivado / disabled (k3s runs the box)"
  fi
  remove_path "$UNIT_DIR/multi-user.target.wants/yachay.service"
  remove_path "$UNIT_DIR/multi-user.target.wants/yachay-update-guard.path"
  if [ -z "$ROOT" ] && command -v k3s >/dev/null; then
    k3s kubectl apply -f "$K3S_DIR/yachay-edge.yaml" | sed 's/^/  k3s: /'
  else
    say "  k3s no está instalado aquí: solo se escribió el manifiesto (k3s lo aplica al arrancar)"
    say "  k3s is not installed here: the overlay was rendered only (k3s applies that folder when it starts)"
  fi
fi

# ---- start, /health, and what the technician photographs ---------------------------------------
step "comprobación / check"
url_port=$([ "${http_port:-8080}" = 80 ] && echo '' || echo ":${http_port:-8080}")
URL="http://$NAME.local$url_port/"
health='no comprobado / not checked'
code=''
if [ "$SYSTEMD" = 1 ] && [ "$MODE" = systemd ]; then
  if [ "$CHANGES" -gt 0 ] || ! systemctl is-active -q yachay.service; then
    systemctl restart yachay.service
    say "  yachay.service (re)arrancado / (re)started"
  fi
  systemctl is-active -q yachay-backup.timer || systemctl start yachay-backup.timer
  deadline=$((SECONDS + HEALTH_TIMEOUT))
  health="sin respuesta en ${HEALTH_TIMEOUT} s / no answer in ${HEALTH_TIMEOUT} s: journalctl -u yachay -n 50"
  while [ $SECONDS -lt $deadline ]; do
    if body=$("$NODE" -e 'fetch(process.argv[1]).then(async (r) => { process.stdout.write(await r.text()); process.exit(r.ok ? 0 : 1); }, () => process.exit(1))' "http://127.0.0.1:${http_port:-8080}/health" 2>/dev/null ||
              curl -fsS "http://127.0.0.1:${http_port:-8080}/health" 2>/dev/null); then
      health="bien / ok ($body)"; break
    fi
    systemctl is-failed -q yachay.service && { health="la caja falló / the box failed: journalctl -u yachay -n 50"; break; }
    sleep 2
  done
  [[ $health == bien* ]] || warn "/health: $health"
  # the box draws the code at start while it has no admin (users/setup-token.ts)
  code=$(cat "$DATA_DIR/setup-token" 2>/dev/null || true)
  [ -n "$code" ] || code='— (ya hay administrador / an admin exists)'
elif [ "$MODE" = systemd ]; then
  say "  sin systemd aquí (chroot o --root): /health no se comprueba; la caja arranca al encender"
  say "  no systemd running here (chroot or --root): /health skipped; the box starts at boot"
  code="al primer arranque, en / at first start, in $DATA_DIR/setup-token"
else
  code="al primer arranque: kubectl -n yachay logs deploy/yachay / at first start, in the pod's log"
fi

line='=================================================================='
printf '\n%s\n' "$line"
printf '  YACHAY %s — %s\n' "$version" "$([ "$CHANGES" = 0 ] && echo 'todo estaba listo / nothing to change' || echo 'instalado / installed')"
printf '%s\n\n' "$line"
printf '  Dirección / address:\n\n      %s\n\n' "$URL"
if [ -z "$ROOT" ] && ips=$(hostname -I 2>/dev/null) && [ -n "$ips" ]; then
  for ip in $ips; do [[ $ip == *:* ]] || printf '      http://%s%s/\n' "$ip" "$url_port"; done; echo
fi
printf '  Código de administrador / admin setup code:\n      %s\n\n' "$code"
printf '  Salud / health: %s\n' "$health"
printf '  Modo / mode: %s   Datos / data: %s%s\n' "$MODE" "$DATA_DIR" "${DATA_UUID:+ (UUID=$DATA_UUID)}"
[ -z "$HUB" ] || printf '  Hub: %s%s\n' "$HUB" "${ENROLL:+ (inscripción al arrancar / enrolls at start)}"
if command -v qrencode >/dev/null; then
  echo; qrencode -t ANSIUTF8 -m 2 "$URL"
elif [ -f "$ROOT$REL/node_modules/qrcode-terminal/lib/main.js" ] && [ -z "$ROOT" ]; then
  echo; "$NODE" -e 'require(process.argv[1]).generate(process.argv[2], { small: true })' "$REL/node_modules/qrcode-terminal/lib/main.js" "$URL"
else
  printf '\n  (código QR: apt-get install qrencode / QR code: needs the qrencode package)\n'
fi
printf '%s\n' "$line"
printf '  Cambios / changes: %d\n' "$CHANGES"
