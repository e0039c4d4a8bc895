#!/usr/bin/env bash
# Installs what Yachay needs on a fresh Debian 12 / Raspberry Pi OS / Ubuntu machine with
# Node 20, saying what it does, and does nothing when everything is already there.
#
#   setup-dev.sh [--profile box|hub|test] [--dry-run] [extra Debian packages…]
#
# Profiles (issue 12 item 5), because a school box must not carry a browser and emulators:
#   box  (npm start, npm run demo; the default): what the box runs — ffmpeg (transcoding),
#        espeak-ng (sample narration), tesseract with Spanish and English (slide OCR check),
#        DejaVu fonts (sample slides), g++/make/python3 (the native addon).
#   hub  (npm run setup:hub): the box's packages plus postgresql + mosquitto (the hub's own servers).
#   test (npm test, .ci/run): the box's packages plus the test tools — sox, mosquitto clients
#        (broker tests), chromium (web player test), postgresql + mosquitto (the hub), iproute2
#        (sync fault tests in network namespaces), rsync + nginx + wget (bench:sync's peers),
#        prometheus (alert rules), systemd (unit checks), and on x86 the aarch64 cross compiler
#        and qemu (NEON test).
# Then npm ci (pinned dependencies) and the native analysis addon (npm's prepare step).
# --dry-run prints the profile's Debian packages, one a line, and changes nothing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
say() { printf 'setup: %s\n' "$*" >&2; }

profile=box
dry_run=0
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile=${2:-}; shift 2 || { say "--profile needs box, hub or test"; exit 64; } ;;
    --profile=*) profile=${1#--profile=}; shift ;;
    --dry-run) dry_run=1; shift ;;
    -*) say "unknown option $1 (use --profile box|hub|test, --dry-run)"; exit 64 ;;
    *) extra+=("$1"); shift ;;
  esac
done

BOX_PKGS=(ffmpeg espeak-ng tesseract-ocr tesseract-ocr-spa tesseract-ocr-eng fonts-dejavu-core g++ make python3)
TEST_PKGS=(sox mosquitto-clients chromium postgresql mosquitto iproute2 rsync nginx wget systemd prometheus)
# SETUP_ARCH only lets the profile test ask what another machine would get
arch=${SETUP_ARCH:-$(uname -m)}
if [ "$arch" = x86_64 ]; then TEST_PKGS+=(g++-aarch64-linux-gnu qemu-user-static); fi
case "$profile" in
  box) APT_PKGS=("${BOX_PKGS[@]}") ;;
  hub) APT_PKGS=("${BOX_PKGS[@]}" postgresql mosquitto) ;;
  test) APT_PKGS=("${BOX_PKGS[@]}" "${TEST_PKGS[@]}") ;;
  *) say "unknown profile '$profile': use box (what a school box runs), hub (box + PostgreSQL and Mosquitto) or test (box + test tools)"; exit 64 ;;
esac
APT_PKGS+=(${extra[@]+"${extra[@]}"})

if [ "$dry_run" = 1 ]; then
  say "profile $profile (dry run: nothing installed)"
  printf '%s\n' "${APT_PKGS[@]}"
  exit 0
fi
say "profile $profile"

missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  say "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}" >&2
else
  say "Debian packages present"
fi

major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -lt 20 ]; then
  say "Node.js 20 or newer is required (found $(node --version 2>/dev/null || echo none)); see https://nodejs.org or NodeSource's Debian packages"
  exit 69
fi

# onnxruntime-node's install script downloads CUDA parts from outside the npm registry: skip it.
export ONNXRUNTIME_NODE_INSTALL=skip
# node-gyp must build against the local Node headers, never download them.
if [ -d /usr/include/node ]; then export npm_config_nodedir=/usr; fi

stamp=node_modules/.yachay-lock.sha
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -L node_modules ]; then
  # a second checkout sharing another's install: npm ci here would empty that install
  say "node_modules is a link to a shared install: not touched"
elif [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "installing npm dependencies (npm ci, ~2-3 min the first time)"
  npm ci --no-audit --no-fund >&2
  echo "$want" > "$stamp"
else
  say "npm dependencies up to date"
fi

# Three addons come out of one build (analysis kernels, TensorFlow Lite binding, sd_notify): rebuild when
# either is missing or older than a source file.
native_stale=0
for addon in native/build/Release/yachay_native.node native/build/Release/yachay_tflite.node native/build/Release/yachay_sys.node; do
  if [ ! -f "$addon" ] || [ -n "$(find native/src native/binding.gyp -newer "$addon" 2>/dev/null | head -1)" ]; then
    native_stale=1
  fi
done
if [ "$native_stale" = 1 ]; then
  say "building the native analysis addon"
  npm run --silent build:native >&2
else
  say "native addon up to date"
fi
