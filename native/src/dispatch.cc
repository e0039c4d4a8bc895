// Picks the kernel table once per process. The choice is made from what the CPU can do,
// unless YACHAY_SIMD forces a path: "scalar" is how we measure the SIMD gain and how a
// technician rules out a SIMD bug on a strange board (sharp's VIPS_NOVECTOR idea).
// Forcing a path this CPU cannot run is an error, never a silent downgrade: a number
// measured "with avx2" must have been measured with avx2.
#include <stdlib.h>
#include <string.h>

#include <string>

#include "kernels.h"

namespace ych {
namespace {

struct Choice {
  const Kernels* table = nullptr;
  std::string error;
};

// Tables this build and this CPU can run, best first.
int available(const Kernels* out[4]) {
  int n = 0;
#if defined(__aarch64__)
  out[n++] = &kNeon;
#endif
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) out[n++] = &kAvx2;
  out[n++] = &kSse2;
#endif
  out[n++] = &kScalar;
  return n;
}

Choice choose() {
  const Kernels* tables[4];
  int n = available(tables);
  const char* forced = getenv("YACHAY_SIMD");
  if (forced == nullptr || forced[0] == '\0') return {tables[0], {}};
  for (int i = 0; i < n; i++)
    if (strcmp(forced, tables[i]->isa) == 0) return {tables[i], {}};
  std::string have;
  for (int i = 0; i < n; i++) have += std::string(i ? ", " : "") + tables[i]->isa;
  bool known = !strcmp(forced, "scalar") || !strcmp(forced, "sse2") ||
               !strcmp(forced, "avx2") || !strcmp(forced, "neon");
  Choice c;
  c.error = std::string("YACHAY_SIMD=") + forced +
            (known ? " is not available on this CPU/build" : " is not a known path (scalar|sse2|avx2|neon)") +
            "; available here: " + have + ". Unset YACHAY_SIMD or pick one of those.";
  return c;
}

}  // namespace

const Kernels* activeKernels(const char** err) {
  static const Choice choice = choose();  // thread-safe one-time init (C++11 statics)
  if (err != nullptr) *err = choice.error.c_str();
  return choice.table;
}

}  // namespace ych
