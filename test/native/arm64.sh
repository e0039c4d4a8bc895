#!/usr/bin/env bash
# Every SIMD kernel equals the scalar reference, on both architectures we ship:
#   1. x86-64 natively: sse2 (+ avx2 when this CPU has it) vs scalar;
#   2. AArch64 under qemu-user: neon vs scalar, cross-compiled like the Pi build.
# The binfmt handler is absent on the build machines, so qemu is called explicitly
# (see /work/shared/NOTES.md section 6). Exit status is non-zero if anything fails.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
src="$root/native/src"
test_cc="$root/native/test/kernels_test.cc"
out="$(mktemp -d "${TMPDIR:-/tmp}/yachay-kernels.XXXXXX")"
trap 'rm -rf "$out"' EXIT

# Flags mirror native/binding.gyp: nothing contracts to FMA implicitly, and the scalar
# reference must not auto-vectorise.
scalar_flags=(-fno-tree-vectorize)
status=0

need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "missing $1: install it with 'sudo apt-get install -y $2'" >&2
    return 1
  fi
}

# Runs the test binary; prints every line with VERBOSE=1, else only what is not "ok"
# (skips, failures, the "N passed, N failed" summary).
summarize() {
  local log="$1"; shift
  local rc=0
  "$@" >"$log" || rc=$?
  if [ "${VERBOSE:-0}" = 1 ]; then cat "$log"; else grep -v '^ok ' "$log" | tail -n 40 || true; fi
  return "$rc"
}

run_x86() {
  echo "== x86-64 (native): sse2/avx2 vs scalar"
  need g++ g++ || return 1
  local cxx=(g++ -std=c++17 -O2 -ffp-contract=off -I"$src")
  "${cxx[@]}" "${scalar_flags[@]}" -c "$src/scalar/kernels.cc" -o "$out/x86_scalar.o"
  "${cxx[@]}" -march=x86-64 -c "$src/x86/sse2.cc" -o "$out/x86_sse2.o"
  "${cxx[@]}" -mavx2 -mfma -c "$src/x86/avx2.cc" -o "$out/x86_avx2.o"
  "${cxx[@]}" -march=x86-64 "$test_cc" "$out"/x86_*.o -lm -o "$out/kernels_test_x86"
  summarize "$out/x86.log" "$out/kernels_test_x86"
}

run_arm64() {
  echo "== aarch64 (qemu-aarch64-static): neon vs scalar"
  need aarch64-linux-gnu-g++ g++-aarch64-linux-gnu || return 1
  need qemu-aarch64-static qemu-user-static || return 1
  local cxx=(aarch64-linux-gnu-g++ -std=c++17 -O2 -march=armv8-a -ffp-contract=off -I"$src")
  "${cxx[@]}" "${scalar_flags[@]}" -c "$src/scalar/kernels.cc" -o "$out/arm_scalar.o"
  "${cxx[@]}" -c "$src/arm/neon.cc" -o "$out/arm_neon.o"
  "${cxx[@]}" "$test_cc" "$out"/arm_*.o -lm -o "$out/kernels_test_arm64"
  summarize "$out/arm64.log" qemu-aarch64-static -L /usr/aarch64-linux-gnu "$out/kernels_test_arm64"
}

if [ "$(uname -m)" = "x86_64" ]; then
  run_x86 || status=1
else
  echo "== skip x86-64: this host is $(uname -m)"
fi
run_arm64 || status=1

if [ "$status" -ne 0 ]; then
  echo "native kernel check FAILED" >&2
fi
exit "$status"
