#!/usr/bin/env bash
# bench:sync (issue 9): Yachay's fetcher vs rsync vs a wget -c loop over a satellite-like link
# between two network namespaces, then the MQTT fan-out to 1,000 boxes. Needs root (ip netns),
# rsync, nginx, wget, mosquitto, python3 (the TUN link where the kernel has no sch_netem).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
if [ "$(id -u)" -ne 0 ]; then echo "bench:sync: hace falta root (ip netns) / needs root (ip netns)" >&2; exit 77; fi
for tool in ip rsync nginx wget mosquitto mosquitto_passwd python3 ffmpeg; do
  command -v "$tool" >/dev/null || { echo "bench:sync: falta / missing: $tool (npm run setup)" >&2; exit 69; }
done
# a thousand MQTT sessions need more descriptors than a login shell's default
ulimit -n 65536 2>/dev/null || ulimit -n 8192 2>/dev/null || true
exec node --import tsx test/bench/sync.mjs "$@"
