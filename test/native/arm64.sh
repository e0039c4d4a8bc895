#!/usr/bin/env bash
# Every SIMD kernel equals the scalar reference, on both architectures we ship:
#   1. x86-64 natively: sse2 (+ avx2 when this CPU has it) vs scalar;
#   2. AArch64 under qemu-user: neon vs scalar, cross-compiled like the Pi build.
# Then the TensorFlow Lite C library (from tfjs-tflite-node) with XNNPACK runs BlazeFace on
# both architectures (native/test/tflite_test.cc): a face photo scores high, flat grey low,
# XNNPACK equals the plain interpreter, and x86-64 and AArch64 agree on the scores.
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

tflite_deps="$root/node_modules/tfjs-tflite-node/cc_deps"
tflite_test_cc="$root/native/test/tflite_test.cc"
face_model="$root/node_modules/@mediapipe/face_detection/face_detection_short_range.tflite"

# 128x128 rgb24 of the astronaut photo; without ffmpeg the face checks are skipped.
face_rgb() {
  if command -v ffmpeg >/dev/null 2>&1; then
    ffmpeg -nostdin -v error -y -i "$root/test/fixtures/astronaut-256.png" -vf scale=128:128 \
      -f rawvideo -pix_fmt rgb24 "$out/astronaut.rgb" && echo "$out/astronaut.rgb"
  fi
}

# Every line is shown: there are few, and the scores are the point.
run_tflite() {
  local arch="$1" cxx="$2" libdir="$3"; shift 3
  echo "== $arch: TensorFlow Lite $(basename "$libdir") + XNNPACK, BlazeFace"
  if [ ! -f "$libdir/libtensorflowlite_c.so" ] || [ ! -f "$face_model" ]; then
    echo "missing $libdir/libtensorflowlite_c.so or the face model: run 'npm ci'" >&2
    return 1
  fi
  # rpath to the .so itself: qemu -L looks in the sysroot first, then falls back to this path
  "$cxx" -std=c++17 -O2 -I"$tflite_deps/include" "$tflite_test_cc" -L"$libdir" -ltensorflowlite_c \
    -Wl,-rpath,"$libdir" -lm -o "$out/tflite_test_$arch"
  local rc=0
  "$@" "$out/tflite_test_$arch" "$face_model" $rgb >"$out/tflite_$arch.log" 2>"$out/tflite_$arch.err" || rc=$?
  cat "$out/tflite_$arch.log"
  [ "$rc" -eq 0 ] || sed 's/^/  stderr: /' "$out/tflite_$arch.err" | tail -n 5
  return "$rc"
}

if [ "$(uname -m)" = "x86_64" ]; then
  run_x86 || status=1
else
  echo "== skip x86-64: this host is $(uname -m)"
fi
run_arm64 || status=1

rgb="$(face_rgb || true)"
tflite_status=0
if [ "$(uname -m)" = "x86_64" ]; then
  run_tflite x86_64 g++ "$tflite_deps/linux_amd64" || tflite_status=1
fi
if need aarch64-linux-gnu-g++ g++-aarch64-linux-gnu && need qemu-aarch64-static qemu-user-static; then
  run_tflite aarch64 aarch64-linux-gnu-g++ "$tflite_deps/linux_arm64" qemu-aarch64-static -L /usr/aarch64-linux-gnu || tflite_status=1
else
  tflite_status=1
fi
# Same model, same input: the two instruction sets must agree on every score.
if [ -f "$out/tflite_x86_64.log" ] && [ -f "$out/tflite_aarch64.log" ]; then
  echo "== x86-64 vs aarch64 scores"
  if awk '$1 == "score" { if (FILENAME ~ /x86_64/) a[$2] = $3; else b[$2] = $3 }
      END { n = 0; bad = 0
            for (k in a) { n++; d = a[k] - b[k]; if (d < 0) d = -d
              ok = (k in b) && d < 1e-3; if (!ok) bad++
              printf "%s - %s: x86-64 %s, aarch64 %s (|diff| < 1e-3)\n", ok ? "ok" : "not ok", k, a[k], (k in b) ? b[k] : "missing" }
            exit (n == 0 || bad > 0) }' "$out/tflite_x86_64.log" "$out/tflite_aarch64.log"; then :; else tflite_status=1; fi
fi
[ "$tflite_status" -eq 0 ] || { echo "TensorFlow Lite check FAILED" >&2; status=1; }

if [ "$status" -ne 0 ]; then
  echo "native check FAILED" >&2
fi
exit "$status"
