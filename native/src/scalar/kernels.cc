// Reference kernels: plain loops, built with -fno-tree-vectorize -ffp-contract=off so
// "scalar" really is scalar (YACHAY_SIMD=scalar must measure and behave like the
// fallback a 32-bit ARM board gets). Loop order and double arithmetic mirror
// daemon/analysis/reference.ts, so these results equal the TypeScript ones bit for bit.
#include "../kernels.h"

namespace ych {
namespace {

uint64_t sadScalar(const uint8_t* a, const uint8_t* b, size_t n) {
  uint64_t s = 0;
  for (size_t i = 0; i < n; i++) s += a[i] > b[i] ? a[i] - b[i] : b[i] - a[i];
  return s;
}

DiffSums diffScalar(const uint8_t* a, const uint8_t* b, size_t n) {
  DiffSums r;
  for (size_t i = 0; i < n; i++) {
    int64_t d = static_cast<int64_t>(b[i]) - a[i];
    r.sum += d;
    r.sumSq += static_cast<uint64_t>(d * d);
  }
  return r;
}

DiffSums lumaScalar(const uint8_t* p, size_t n) {
  DiffSums r;
  for (size_t i = 0; i < n; i++) {
    r.sum += p[i];
    r.sumSq += static_cast<uint64_t>(p[i]) * p[i];
  }
  return r;
}

void histogramScalar(const uint8_t* p, size_t n, uint32_t out[256]) {
  for (int v = 0; v < 256; v++) out[v] = 0;
  for (size_t i = 0; i < n; i++) out[p[i]]++;
}

void downscaleScalar(const uint8_t* img, size_t w, size_t h, uint8_t* out) {
  size_t ow = w / 2, oh = h / 2;
  for (size_t y = 0; y < oh; y++) {
    const uint8_t* r0 = img + 2 * y * w;
    const uint8_t* r1 = r0 + w;
    for (size_t x = 0; x < ow; x++) {
      unsigned s = r0[2 * x] + r0[2 * x + 1] + r1[2 * x] + r1[2 * x + 1] + 2u;
      out[y * ow + x] = static_cast<uint8_t>(s >> 2);
    }
  }
}

SobelSums sobelScalar(const uint8_t* img, size_t w, size_t h, int32_t thrSq) {
  SobelSums s;
  if (w < 3 || h < 3) return s;
  for (size_t y = 1; y + 1 < h; y++) {
    const uint8_t* r0 = img + (y - 1) * w;
    const uint8_t* r1 = r0 + w;
    const uint8_t* r2 = r1 + w;
    for (size_t x = 1; x + 1 < w; x++) {
      int gx = (r0[x + 1] + 2 * r1[x + 1] + r2[x + 1]) - (r0[x - 1] + 2 * r1[x - 1] + r2[x - 1]);
      int gy = (r2[x - 1] + 2 * r2[x] + r2[x + 1]) - (r0[x - 1] + 2 * r0[x] + r0[x + 1]);
      int32_t m = gx * gx + gy * gy;
      s.mag += sqrt(static_cast<double>(m));
      s.magSq += static_cast<uint64_t>(m);
      s.edges += m > thrSq;
    }
  }
  return s;
}

void audioScalar(const float* pcm, size_t n, size_t frames, AudioSums* out) {
  for (size_t f = 0; f < frames; f++) {
    const float* x = pcm + f * n;
    AudioSums a;
    for (size_t i = 0; i < n; i++) {
      double v = x[i];
      a.x2 += v * v;
      if (i >= 1) {
        double d = v - static_cast<double>(x[i - 1]);
        a.d2 += d * d;
        a.zc += (x[i] >= 0) != (x[i - 1] >= 0);
      }
      if (i >= 7) {
        double s = 0;
        for (size_t k = 0; k < 8; k++) s += x[i - k];
        a.lo2 += s * s;
      }
    }
    out[f] = a;
  }
}

}  // namespace

extern const Kernels kScalar = {
    "scalar",     sadScalar,       diffScalar,  lumaScalar, histogramScalar,
    downscaleScalar, sobelScalar, audioScalar,
};

}  // namespace ych
