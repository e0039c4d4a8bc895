#!/usr/bin/env bash
# `npm run test:provision` (issue 11, item 1): provisioning/provision.sh run twice on a fresh
# Debian 12 root (debootstrap --variant=minbase, cached between runs, copied fresh each run),
# from a bundle built now, then checked from outside: the user, folders and modes, the units
# (systemd-analyze verify --root), the config (the daemon's own loader, under chroot), and that
# the second run changed nothing (a listing of the whole tree with modes, owners, sizes and
# mtimes, before and after). Also: a config the box would refuse stops a run, and --mode k3s.
# Needs root (debootstrap, chroot). About 2 minutes with a warm cache; not part of `npm test`.
#   env: YACHAY_TEST_BUNDLE=FILE (skip the bundle build), KEEP=1 (keep the root for a look)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
repo=$PWD
t0=$SECONDS
pass=0 fail=0
ok() { pass=$((pass + 1)); printf 'ok %d - %s\n' $((pass + fail)) "$1"; }
not_ok() { fail=$((fail + 1)); printf 'not ok %d - %s\n' $((pass + fail)) "$1"; [ -z "${2:-}" ] || printf '  # %s\n' "$2"; }
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else not_ok "$what" "failed: $*"; fi; }
equal() { if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "expected \"$3\", got \"$2\""; fi; }
finish() { echo "$pass passed, $fail failed ($((SECONDS - t0)) s)"; [ "$fail" = 0 ]; exit $?; }

[ "$(id -u)" = 0 ] || { echo "test:provision needs root (debootstrap and chroot): sudo npm run test:provision"; exit 77; }
if ! command -v debootstrap >/dev/null; then
  echo "# installing debootstrap"
  apt-get -o DPkg::Lock::Timeout=600 install -y -q debootstrap >/dev/null || { echo "debootstrap is missing and could not be installed"; exit 1; }
fi

# the Debian mirror apt already uses here (one-line or deb822 sources), else Debian's own
mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '$1 == "deb" && $0 ~ / bookworm / && $2 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }')
[ -n "$mirror" ] || mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ && $2 !~ /security/ && $2 ~ /debian\/?$/ { print $2; exit }')
mirror=${mirror:-http://deb.debian.org/debian}

arch=$(dpkg --print-architecture)
cache=/var/cache/yachay-debootstrap
mkdir -p "$cache" 2>/dev/null && [ -w "$cache" ] || cache=${XDG_CACHE_HOME:-$HOME/.cache}/yachay-debootstrap
mkdir -p "$cache"
# systemd inside the root: a Debian 12 box has it, and `systemd-analyze verify --root` needs its targets
base=$cache/bookworm-minbase-systemd-$arch
if [ ! -f "$base/etc/os-release" ]; then
  echo "# debootstrap bookworm from $mirror into $base (once, about a minute)"
  rm -rf "$base.tmp"
  debootstrap --variant=minbase --include=systemd,systemd-sysv bookworm "$base.tmp" "$mirror" > "$cache/debootstrap.log" 2>&1 ||
    { echo "debootstrap failed: see $cache/debootstrap.log"; exit 1; }
  mv "$base.tmp" "$base"
fi

work=$(mktemp -d /var/tmp/yachay-provision-XXXXXX)
root=$work/root
mounted=0
cleanup() { [ "$mounted" = 0 ] || umount "$root/proc"; if [ "${KEEP:-0}" = 1 ]; then echo "# kept: $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT
cp -a "$base" "$root"
echo "# fresh root: $root (Debian $(cat "$root/etc/debian_version"))"

bundle=${YACHAY_TEST_BUNDLE:-}
if [ -z "$bundle" ]; then
  tb=$SECONDS
  bundle=$(bash provisioning/bundle.sh --out "$work/dist" 2>"$work/bundle.log" | tail -1)
  [ -f "$bundle" ] || { cat "$work/bundle.log"; not_ok "npm run bundle makes a tar.gz"; finish; }
  ok "bundle $(basename "$bundle") ($(du -h "$bundle" | cut -f1), $((SECONDS - tb)) s)"
fi
version=$(tar -xzOf "$bundle" --wildcards '*/VERSION' 2>/dev/null | head -1)
equal "the bundle's VERSION is package.json's (or YACHAY_VERSION)" "$version" "${YACHAY_VERSION:-$(node -p 'require("./package.json").version')}"
equal "the bundle's name carries version and arch" "$(basename "$bundle")" "yachay-$version-linux-$(node -p process.arch).tar.gz"

listing() { # the whole tree but the kernel's folders and /tmp (tsx keeps a compile cache there)
  (cd "$root" && find . -xdev \( -path ./proc -o -path ./sys -o -path ./dev -o -path ./run -o -path ./tmp \) -prune -o \
    -printf '%p %m %U:%G %s %T@ %l\n' | LC_ALL=C sort)
}
provision() { bash provisioning/provision.sh --bundle "$bundle" --root "$root" --no-apt "$@"; }
ARGS=(--school escuela-prueba --hub http://hub.invalid:8090 --enroll CODIGO-1 --http-port 8088)

# ---- first run ------------------------------------------------------------------------------
host_passwd=$(sha256sum < /etc/passwd)
tr=$SECONDS
provision "${ARGS[@]}" > "$work/run1.log" 2>&1; rc=$?
sed 's/^/  | /' "$work/run1.log" | tail -22
equal "first run exits 0 ($((SECONDS - tr)) s)" "$rc" 0
n1=$(sed -n 's/^  Cambios \/ changes: \([0-9]*\)$/\1/p' "$work/run1.log")
check "first run reports its changes ($n1)" test "${n1:-0}" -gt 0
check "first run says /health is skipped without systemd" grep -q '/health skipped' "$work/run1.log"

pw=$(grep '^yachay:' "$root/etc/passwd")
IFS=: read -r _ _ uid gid _ home shell <<<"$pw"
check "user yachay exists in the root's /etc/passwd" test -n "$pw"
check "yachay is a system user (uid $uid < 1000)" test "${uid:-9999}" -lt 1000
equal "yachay's shell" "$shell" /usr/sbin/nologin
equal "yachay's home is the data dir" "$home" /var/lib/yachay
check "group yachay exists" grep -q "^yachay:x:$gid:" "$root/etc/group"
equal "the host's /etc/passwd is untouched" "$(sha256sum < /etc/passwd)" "$host_passwd"

mode() { stat -c '%a %u:%g' "$root$1" 2>/dev/null; }
equal "/opt/yachay/current → releases/$version" "$(readlink "$root/opt/yachay/current")" "releases/$version"
# the box updates itself: it unpacks into releases/, switches the links and prunes old releases
equal "/opt/yachay is the box's (its updater switches current there)" "$(mode /opt/yachay)" "755 $uid:$gid"
equal "/opt/yachay/releases" "$(mode /opt/yachay/releases)" "755 $uid:$gid"
equal "the release is the box's, like those the updater unpacks" "$(mode "/opt/yachay/releases/$version")" "755 $uid:$gid"
check "release has VERSION, bin, daemon, models, addons, node_modules, systemd, provisioning" bash -c \
  "cd '$root/opt/yachay/releases/$version' && test -f VERSION -a -x bin/yachay.mjs -a -d daemon -a -d models -a -f native/build/Release/yachay_sys.node -a -d node_modules/tsx -a -d systemd -a -x provisioning/provision.sh -a -f package-lock.json"
check "no dev-only package in the bundle (tap, typescript)" bash -c "! test -e '$root/opt/yachay/releases/$version/node_modules/tap' -o -e '$root/opt/yachay/releases/$version/node_modules/typescript'"
equal "/etc/yachay" "$(mode /etc/yachay)" "750 0:$gid"
equal "/etc/yachay/config.json" "$(mode /etc/yachay/config.json)" "640 0:$gid"
equal "/etc/yachay/env" "$(mode /etc/yachay/env)" "640 0:$gid"
equal "/var/lib/yachay" "$(mode /var/lib/yachay)" "750 $uid:$gid"
equal "/var/lib/yachay-backups" "$(mode /var/lib/yachay-backups)" "750 $uid:$gid"
equal "/usr/local/bin/yachay" "$(mode /usr/local/bin/yachay)" "755 0:0"
check "the enrollment code reaches the box's start" grep -qx 'YACHAY_START_ARGS="--enroll CODIGO-1"' "$root/etc/yachay/env"
equal "hostname for yachay.local" "$(cat "$root/etc/hostname")" yachay
check "/etc/hosts names the box" grep -qP '^127\.0\.1\.1\tyachay$' "$root/etc/hosts"
check "avahi advertises the web page on the port" grep -q '<port>8088</port>' "$root/etc/avahi/services/yachay.service"

for u in yachay.service yachay-backup.service yachay-backup.timer yachay-update-guard.service yachay-update-guard.path; do
  check "$u installed as shipped" cmp "$root/etc/systemd/system/$u" "systemd/$u"
done
equal "yachay.service enabled (wants link)" "$(readlink "$root/etc/systemd/system/multi-user.target.wants/yachay.service")" /etc/systemd/system/yachay.service
equal "update guard watching (wants link)" "$(readlink "$root/etc/systemd/system/multi-user.target.wants/yachay-update-guard.path")" /etc/systemd/system/yachay-update-guard.path
equal "backup timer enabled (wants link)" "$(readlink "$root/etc/systemd/system/timers.target.wants/yachay-backup.timer")" /etc/systemd/system/yachay-backup.timer
verify=$(cd "$root/etc/systemd/system" && systemd-analyze verify --root="$root" $(printf '/etc/systemd/system/%s ' yachay.service yachay-backup.service yachay-backup.timer yachay-update-guard.service yachay-update-guard.path) 2>&1); rc=$?
equal "systemd-analyze verify --root: no complaint${verify:+ ($verify)}" "$rc:$verify" "0:"

cfg=$(chroot "$root" env -i PATH=/usr/bin:/bin YACHAY_CONFIG=/etc/yachay/config.json /opt/yachay/current/node/bin/node /opt/yachay/current/bin/yachay.mjs check-config 2>&1); rc=$?
equal "the box's loader accepts /etc/yachay/config.json (chroot)" "$rc" 0
fields=$(printf '%s' "$cfg" | node -e 'let s="";process.stdin.on("data",(d)=>s+=d).on("end",()=>{const c=JSON.parse(s);console.log([c.school,c.dataDir,c.http.port,c.sync.hub].join(" "))})' 2>&1)
equal "config: school, data dir, port, hub" "$fields" "escuela-prueba /var/lib/yachay 8088 http://hub.invalid:8090"
# the technician's command runs the installed release as the box's user
users=$(chroot "$root" env -i PATH=/usr/bin:/bin /usr/local/bin/yachay users list 2>&1); rc=$?
equal "\`yachay users list\` in the root works (as yachay: $users)" "$rc" 0
equal "…and the database it made is the box's (uid $uid)" "$(stat -c '%u' "$root/var/lib/yachay/yachay.db" 2>&1)" "$uid"

# ---- second run: nothing changes ---------------------------------------------------------------
before=$(listing)
tr=$SECONDS
provision "${ARGS[@]}" > "$work/run2.log" 2>&1; rc=$?
equal "second run exits 0 ($((SECONDS - tr)) s)" "$rc" 0
check "second run says nothing changed" grep -qx '  Cambios / changes: 0' "$work/run2.log"
check "second run reports no changed line" bash -c "! grep -q 'cambiado / changed' '$work/run2.log'"
after=$(listing)
if [ "$before" = "$after" ]; then ok "the tree is identical after the second run ($(wc -l <<<"$after") entries: modes, owners, sizes, mtimes)"
else not_ok "the tree is identical after the second run" "$(diff <(echo "$before") <(echo "$after") | head -5 | tr '\n' ' ')"; fi

# the copy of provision.sh inside the installed release (what a technician finds on the box) agrees
bash "$root/opt/yachay/current/provisioning/provision.sh" --root "$root" --no-apt "${ARGS[@]}" > "$work/run2b.log" 2>&1; rc=$?
equal "the installed release's own provision.sh: exit 0" "$rc" 0
check "…and 0 changes" grep -qx '  Cambios / changes: 0' "$work/run2b.log"

# ---- the installed box starts offline from the bundle, as its unit would start it ------------
# (no systemd in a chroot: the technician's `yachay start`, as the yachay user, with /proc bound)
mount --bind /proc "$root/proc" && mounted=1
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
chroot "$root" env -i PATH=/usr/bin:/bin YACHAY_HTTP_PORT="$port" YACHAY_MQTT_PORT=0 YACHAY_MQTT_WS_PORT=0 \
  /usr/local/bin/yachay start > "$work/start.log" 2>&1 &
launcher=$!
health=''
for _ in $(seq 1 90); do
  health=$(curl -fsS "http://127.0.0.1:$port/health" 2>/dev/null) && break
  kill -0 "$launcher" 2>/dev/null || break
  sleep 1
done
box=$(pgrep -P "$launcher" -f 'yachay.mjs start' || pgrep -f "^node /opt/yachay/current/bin/yachay.mjs start" | head -1)
check "the installed box answers /health ($health)" grep -q '"ok":true' <<<"$health"
token=$(cat "$root/var/lib/yachay/setup-token" 2>/dev/null)
check "it wrote the admin setup code the summary reads (var/lib/yachay/setup-token)" grep -q "one-time code: $token;" "$work/start.log"
equal "setup-token is the box's alone" "$(mode /var/lib/yachay/setup-token)" "600 $uid:$gid"
[ -z "$box" ] || kill -TERM "$box"
wait "$launcher" 2>/dev/null
check "the box stops on SIGTERM" bash -c "! pgrep -f '^node /opt/yachay/current/bin/yachay.mjs start' >/dev/null"
umount "$root/proc" && mounted=0

# ---- a config the box would refuse stops the run, and is left for the technician -------------
cp "$root/etc/yachay/config.json" "$work/config.good"
printf '{ "school": "Escuela Uno", "http": { "port": 8088 } }\n' > "$root/etc/yachay/config.json"
provision > "$work/run3.log" 2>&1; rc=$?
equal "a run on a config the box refuses exits 78" "$rc" 78
check "…naming the bad key" grep -q 'school: must match pattern' "$work/run3.log"
check "…and leaves the file as the technician wrote it" grep -q 'Escuela Uno' "$root/etc/yachay/config.json"
cp "$work/config.good" "$root/etc/yachay/config.json"

# ---- k3s mode: the rendered edge overlay, no systemd box beside it -----------------------------
provision --mode k3s > "$work/run4.log" 2>&1; rc=$?
equal "--mode k3s exits 0" "$rc" 0
check "k3s manifest written where k3s applies it at start" grep -q 'kind: Deployment' "$root/var/lib/rancher/k3s/server/manifests/yachay-edge.yaml"
check "no k3s here: says it rendered only" grep -q 'rendered only' "$work/run4.log"
check "the systemd box is no longer enabled" test ! -e "$root/etc/systemd/system/multi-user.target.wants/yachay.service"

# ---- an external SSD by UUID, a data dir elsewhere, port 80: what only some boxes need ----------
uuid=0F3C-2A1B
provision --data-dir /srv/yachay --data-uuid "$uuid" --http-port 80 > "$work/run5.log" 2>&1; rc=$?
equal "SSD run exits 0" "$rc" 0
check "/etc/fstab mounts the SSD by UUID on the data dir (nofail: a box without it still boots)" \
  grep -qx "UUID=$uuid /srv/yachay ext4 defaults,noatime,nofail,x-systemd.device-timeout=30s 0 2" "$root/etc/fstab"
equal "/srv/yachay" "$(mode /srv/yachay)" "750 $uid:$gid"
dropin=$root/etc/systemd/system/yachay.service.d/provision.conf
check "drop-in: the unit may write the data dir and waits for its mount" grep -qx 'RequiresMountsFor=/srv/yachay' "$dropin"
check "drop-in: ReadWritePaths" grep -qx 'ReadWritePaths=/srv/yachay' "$dropin"
check "drop-in: port 80 with only CAP_NET_BIND_SERVICE" grep -qx 'CapabilityBoundingSet=CAP_NET_BIND_SERVICE' "$dropin"
check "the unit reads the data dir from /etc/yachay/env" grep -qx 'YACHAY_DATA_DIR=/srv/yachay' "$root/etc/yachay/env"
check "systemd mode enabled again" test -L "$root/etc/systemd/system/multi-user.target.wants/yachay.service"
check "the k3s manifest is gone (one box per node)" test ! -e "$root/var/lib/rancher/k3s/server/manifests/yachay-edge.yaml"
verify=$(systemd-analyze verify --root="$root" /etc/systemd/system/yachay.service 2>&1); rc=$?
equal "verify --root with the drop-in${verify:+ ($verify)}" "$rc:$verify" "0:"
exposure=$(systemd-analyze security --offline=yes --root="$root" yachay.service 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
check "exposure with the port-80 capability still ≤ 2.0 ($exposure)" awk -v e="${exposure:-99}" 'BEGIN { exit !(e <= 2.0) }'
provision --data-dir /srv/yachay --data-uuid "$uuid" --http-port 80 > "$work/run6.log" 2>&1
check "…and again: 0 changes" grep -qx '  Cambios / changes: 0' "$work/run6.log"
finish
