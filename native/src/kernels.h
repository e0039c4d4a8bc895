// Kernel table shared by every ISA path. Kernels take raw pointers and produce exact
// integer sums (or double/float partial sums); the statistics that turn sums into
// si / ti / rms live here once, so every path finishes the same way and differs only
// in how the hot loops are vectorised. Nothing in here knows about N-API.
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <math.h>

namespace ych {

struct SobelSums {
  double mag = 0;       // sum of sqrt(gx^2+gy^2); SIMD paths take sqrt in float (rel. err ~6e-8)
  uint64_t magSq = 0;   // sum of gx^2+gy^2: exact, so the variance's big term is exact
  uint64_t edges = 0;   // count of gx^2+gy^2 > thrSq
};

struct DiffSums {
  int64_t sum = 0;      // sum of (b[i]-a[i])
  uint64_t sumSq = 0;   // sum of (b[i]-a[i])^2
};

struct AudioSums {
  double x2 = 0;        // sum x[i]^2, i in [0,N)
  double lo2 = 0;       // sum (x[i-7]+...+x[i])^2, i in [7,N)  (not yet divided by 64)
  double d2 = 0;        // sum (x[i]-x[i-1])^2, i in [1,N)
  uint64_t zc = 0;      // count of i in [1,N) where (x[i]>=0) != (x[i-1]>=0)
};

struct Kernels {
  const char* isa;
  uint64_t (*sad)(const uint8_t* a, const uint8_t* b, size_t n);
  DiffSums (*diff)(const uint8_t* a, const uint8_t* b, size_t n);
  // luma sums: sum of bytes and sum of squares, reported as DiffSums vs an all-zero frame
  DiffSums (*luma)(const uint8_t* img, size_t n);
  void (*histogram)(const uint8_t* img, size_t n, uint32_t out[256]);
  void (*downscale2x)(const uint8_t* img, size_t w, size_t h, uint8_t* out);
  SobelSums (*sobel)(const uint8_t* img, size_t w, size_t h, int32_t thrSq);
  // one AudioSums per frame of frameSize samples (frames = floor(n / frameSize))
  void (*audio)(const float* pcm, size_t frameSize, size_t frames, AudioSums* out);
};

extern const Kernels kScalar;
#if defined(__x86_64__)
extern const Kernels kSse2;
extern const Kernels kAvx2;
#endif
#if defined(__aarch64__)
extern const Kernels kNeon;
#endif

// Picks the table once (first call). On a bad YACHAY_SIMD value, returns nullptr and
// sets *err to a message naming the value and what this machine offers.
const Kernels* activeKernels(const char** err);

// ---- shared finishing math (static inline: every TU keeps its own copy, so the
// AVX2 object can never donate an AVX-encoded version of these to baseline code) ----

// "magnitude > threshold" as an integer test on m = gx^2+gy^2, identical on every path:
// sqrt(m) > t  <=>  m > floor(t*t) for t >= 0; a negative t makes every pixel an edge,
// NaN or a huge t makes none.
static inline int32_t edgeThresholdSq(double t) {
  if (t != t) return INT32_MAX;
  if (t < 0) return -1;
  double sq = floor(t * t);
  return sq >= 2147483647.0 ? INT32_MAX : static_cast<int32_t>(sq);
}

// Population std dev from exact integer sums: sqrt(E[x^2] - E[x]^2), clamped at 0.
// The TypeScript reference uses the same formula, so integer-derived results match bitwise.
static inline double stdFromSums(double sum, double sumSq, double n) {
  if (n <= 0) return 0;
  double mean = sum / n;
  double var = sumSq / n - mean * mean;
  return var > 0 ? sqrt(var) : 0;
}

struct SobelStats { double si; double edgeDensity; };

static inline SobelStats sobelStats(const SobelSums& s, size_t w, size_t h) {
  if (w < 3 || h < 3) return {0, 0};
  double n = static_cast<double>((w - 2) * (h - 2));
  return {stdFromSums(s.mag, static_cast<double>(s.magSq), n),
          static_cast<double>(s.edges) / n};
}

// [rms, zcr, lowEnergy, midEnergy, highEnergy] for one frame of n samples.
static inline void audioStats(const AudioSums& s, size_t n, float out[5]) {
  double ms = n ? s.x2 / n : 0;
  double low = n > 7 ? s.lo2 / 64.0 / static_cast<double>(n - 7) : 0;
  double high = n > 1 ? s.d2 / static_cast<double>(n - 1) : 0;
  double mid = ms - low - high;
  out[0] = static_cast<float>(sqrt(ms));
  out[1] = static_cast<float>(n > 1 ? static_cast<double>(s.zc) / static_cast<double>(n - 1) : 0);
  out[2] = static_cast<float>(low);
  out[3] = static_cast<float>(mid > 0 ? mid : 0);
  out[4] = static_cast<float>(high);
}

// Histogram has no useful SIMD form; four sub-tables break the store-to-load chain
// on runs of equal bytes (flat frames), which is where a single table stalls.
static inline void histogramSplit(const uint8_t* p, size_t n, uint32_t out[256]) {
  uint32_t t[4][256] = {};
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    t[0][p[i]]++; t[1][p[i + 1]]++; t[2][p[i + 2]]++; t[3][p[i + 3]]++;
    t[0][p[i + 4]]++; t[1][p[i + 5]]++; t[2][p[i + 6]]++; t[3][p[i + 7]]++;
  }
  for (; i < n; i++) t[0][p[i]]++;
  for (int v = 0; v < 256; v++) out[v] = t[0][v] + t[1][v] + t[2][v] + t[3][v];
}

}  // namespace ych
