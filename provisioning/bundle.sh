#!/usr/bin/env bash
# `npm run bundle`: the offline bundle a technician carries to a school with no internet.
#   dist/yachay-<version>-linux-<arch>.tar.gz, one top folder yachay-<version>/ with the app,
#   production node_modules and native addons built on THIS machine (so build it on the
#   architecture of the boxes: x64, or arm64 for a Raspberry Pi / Jetson), the systemd units,
#   provisioning/, the rendered k3s edge overlay, VERSION and, unless --no-node, this machine's
#   node binary (node/bin/node) for boxes without Node 20.
# <version> is package.json's, or $YACHAY_VERSION. Options: --out DIR (default dist), --no-node.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
say() { printf 'bundle: %s\n' "$*" >&2; }
die() { printf 'bundle: %s\n' "$*" >&2; exit 1; }

out=dist
with_node=1
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=${2:?--out needs a folder}; shift 2 ;;
    --no-node) with_node=0; shift ;;
    -h|--help) sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

version=${YACHAY_VERSION:-$(node -p 'require("./package.json").version')}
[[ $version =~ ^[0-9A-Za-z][0-9A-Za-z.+_-]*$ ]] || die "version \"$version\" is not a plain release name"
arch=$(node -p process.arch)
case $arch in x64|arm64) ;; *) die "unsupported architecture $arch (x64 or arm64)" ;; esac

for addon in yachay_native yachay_tflite yachay_sys; do
  [ -f "native/build/Release/$addon.node" ] || die "native/build/Release/$addon.node is missing: run npm run build:native first"
done
[ -d node_modules/tsx ] || die "node_modules is not installed: run npm run setup first"

mkdir -p "$out"
stage=$(mktemp -d "$out/.stage-XXXXXX")
trap 'rm -rf "$stage"' EXIT
top=$stage/yachay-$version
mkdir -p "$top/native/build/Release" "$top/node_modules" "$top/k3s"

say "app files"
cp -a bin daemon models systemd provisioning package.json package-lock.json tsconfig.json README.md "$top/"
# the addons plus the TensorFlow Lite library they load from their own folder ($ORIGIN)
cp -a native/build/Release/*.node native/build/Release/*.so "$top/native/build/Release/"
node_modules/.bin/tsx provisioning/render-edge.ts > "$top/k3s/edge.yaml"
printf '%s\n' "$version" > "$top/VERSION"

say "production node_modules (package-lock.json without dev-only packages)"
n=0
while read -r rel; do
  src=$rel
  [ -e "$src" ] || continue   # an optional package for another platform
  mkdir -p "$top/$(dirname "$rel")"
  # a checkout may hold its packages as links into a shared install: copy what they point at
  cp -a "$(realpath "$src")" "$top/$rel"
  n=$((n + 1))
done < <(node provisioning/prod-packages.mjs package-lock.json)
# onnxruntime-node carries Windows and macOS builds (~220 MB) a Linux box never loads; source
# maps only help a debugger
find "$top/node_modules/onnxruntime-node/bin" -mindepth 2 -maxdepth 2 -type d ! -name linux -exec rm -rf {} + 2>/dev/null || true
find "$top/node_modules/onnxruntime-node/bin" -path '*/linux/*' -mindepth 3 -maxdepth 3 -type d ! -name "$arch" -exec rm -rf {} + 2>/dev/null || true
find "$top/node_modules" -name '*.map' -type f -delete
say "$n packages"

if [ "$with_node" = 1 ]; then
  mkdir -p "$top/node/bin"
  cp "$(command -v node)" "$top/node/bin/node"
  say "node $(node --version) included (node/bin/node)"
fi

file=$out/yachay-$version-linux-$arch.tar.gz
say "compressing $(du -sh "$top" | cut -f1) into $file"
gz=gzip; command -v pigz >/dev/null && gz=pigz
# fixed owner and order: the same tree gives the same listing, whoever builds it
tar -C "$stage" --owner=0 --group=0 --numeric-owner --sort=name -cf - "yachay-$version" | $gz -6 > "$file.partial"
mv -f "$file.partial" "$file"
say "listo / done: $file ($(du -h "$file" | cut -f1))"
printf '%s\n' "$file"
