// NEON kernels: Advanced SIMD is baseline on AArch64 (Pi 4/5 in 64-bit mode, Jetson),
// so no runtime check is needed. Uses AArch64-only forms (vaddvq, vsqrtq_f32,
// vmull_high); 32-bit ARM builds never compile this file and get scalar.
#include <arm_neon.h>

#include "../kernels.h"

namespace ych {
namespace {

uint64_t sadNeon(const uint8_t* a, const uint8_t* b, size_t n) {
  uint64x2_t acc = vdupq_n_u64(0);
  size_t i = 0;
  // A u16 lane gains <= 2*255 per step: flush to u64 every 128 steps (2 KiB).
  while (i + 16 <= n) {
    uint16x8_t acc16 = vdupq_n_u16(0);
    for (size_t k = 0; k < 128 && i + 16 <= n; k++, i += 16)
      acc16 = vpadalq_u8(acc16, vabdq_u8(vld1q_u8(a + i), vld1q_u8(b + i)));
    acc = vpadalq_u32(acc, vpaddlq_u16(acc16));
  }
  uint64_t s = vaddvq_u64(acc);
  for (; i < n; i++) s += a[i] > b[i] ? a[i] - b[i] : b[i] - a[i];
  return s;
}

// d = b - a in int16 (vsubl wraps mod 2^16, which reinterpreted as signed is exact for
// |d| <= 255). Sums in int32 lanes flushed to 64 bits every 4096 steps.
DiffSums diffNeon(const uint8_t* a, const uint8_t* b, size_t n) {
  DiffSums r;
  size_t i = 0;
  while (i + 16 <= n) {
    int32x4_t s = vdupq_n_s32(0);
    uint32x4_t sq = vdupq_n_u32(0);
    for (size_t k = 0; k < 4096 && i + 16 <= n; k++, i += 16) {
      uint8x16_t va = vld1q_u8(a + i), vb = vld1q_u8(b + i);
      int16x8_t dl = vreinterpretq_s16_u16(vsubl_u8(vget_low_u8(vb), vget_low_u8(va)));
      int16x8_t dh = vreinterpretq_s16_u16(vsubl_high_u8(vb, va));
      s = vpadalq_s16(s, dl);
      s = vpadalq_s16(s, dh);
      int32x4_t q = vmull_s16(vget_low_s16(dl), vget_low_s16(dl));
      q = vmlal_high_s16(q, dl, dl);
      q = vmlal_s16(q, vget_low_s16(dh), vget_low_s16(dh));
      q = vmlal_high_s16(q, dh, dh);  // <= 4*65025 per lane per step
      sq = vaddq_u32(sq, vreinterpretq_u32_s32(q));
    }
    r.sum += vaddlvq_s32(s);
    r.sumSq += vaddlvq_u32(sq);
  }
  for (; i < n; i++) {
    int64_t d = static_cast<int64_t>(b[i]) - a[i];
    r.sum += d;
    r.sumSq += static_cast<uint64_t>(d * d);
  }
  return r;
}

DiffSums lumaNeon(const uint8_t* p, size_t n) {
  DiffSums r;
  size_t i = 0;
  while (i + 16 <= n) {
    uint32x4_t s = vdupq_n_u32(0), sq = vdupq_n_u32(0);
    for (size_t k = 0; k < 4096 && i + 16 <= n; k++, i += 16) {
      uint8x16_t v = vld1q_u8(p + i);
      uint16x8_t lo = vmovl_u8(vget_low_u8(v)), hi = vmovl_high_u8(v);
      s = vpadalq_u16(s, vpaddlq_u8(v));
      uint32x4_t q = vmull_u16(vget_low_u16(lo), vget_low_u16(lo));
      q = vmlal_high_u16(q, lo, lo);
      q = vmlal_u16(q, vget_low_u16(hi), vget_low_u16(hi));
      sq = vaddq_u32(sq, vmlal_high_u16(q, hi, hi));
    }
    r.sum += static_cast<int64_t>(vaddlvq_u32(s));
    r.sumSq += vaddlvq_u32(sq);
  }
  for (; i < n; i++) {
    r.sum += p[i];
    r.sumSq += static_cast<uint64_t>(p[i]) * p[i];
  }
  return r;
}

void histogramNeon(const uint8_t* p, size_t n, uint32_t out[256]) { histogramSplit(p, n, out); }

// vpaddl/vpadal add horizontal byte pairs of both rows; vrshrn does the (+2)>>2 rounding.
void downscaleNeon(const uint8_t* img, size_t w, size_t h, uint8_t* out) {
  size_t ow = w / 2, oh = h / 2;
  for (size_t y = 0; y < oh; y++) {
    const uint8_t* r0 = img + 2 * y * w;
    const uint8_t* r1 = r0 + w;
    uint8_t* o = out + y * ow;
    size_t x = 0;
    for (; x + 8 <= ow; x += 8) {  // 16 input bytes per row -> 8 outputs
      uint16x8_t s = vpadalq_u8(vpaddlq_u8(vld1q_u8(r0 + 2 * x)), vld1q_u8(r1 + 2 * x));
      vst1_u8(o + x, vrshrn_n_u16(s, 2));
    }
    for (; x < ow; x++)
      o[x] = static_cast<uint8_t>((r0[2 * x] + r0[2 * x + 1] + r1[2 * x] + r1[2 * x + 1] + 2u) >> 2);
  }
}

inline int16x8_t load8(const uint8_t* p) { return vreinterpretq_s16_u16(vmovl_u8(vld1_u8(p))); }

// gx^2+gy^2 as int32 for pixels x..x+7 of the middle row r1 (0-3 in *lo, 4-7 in *hi).
inline void grad8(const uint8_t* r0, const uint8_t* r1, const uint8_t* r2, size_t x, int32x4_t* lo, int32x4_t* hi) {
  int16x8_t a0 = load8(r0 + x - 1), c0 = load8(r0 + x), b0 = load8(r0 + x + 1);
  int16x8_t a1 = load8(r1 + x - 1), b1 = load8(r1 + x + 1);
  int16x8_t a2 = load8(r2 + x - 1), c2 = load8(r2 + x), b2 = load8(r2 + x + 1);
  int16x8_t gx = vaddq_s16(vaddq_s16(vsubq_s16(b0, a0), vsubq_s16(b2, a2)), vshlq_n_s16(vsubq_s16(b1, a1), 1));
  int16x8_t gy = vaddq_s16(vaddq_s16(vsubq_s16(a2, a0), vsubq_s16(b2, b0)), vshlq_n_s16(vsubq_s16(c2, c0), 1));
  *lo = vmlal_s16(vmull_s16(vget_low_s16(gx), vget_low_s16(gx)), vget_low_s16(gy), vget_low_s16(gy));
  *hi = vmlal_high_s16(vmull_high_s16(gx, gx), gy, gy);
}

struct Acc {
  uint32x4_t cnt = vdupq_n_u32(0), sq = vdupq_n_u32(0);
  float32x4_t mag = vdupq_n_f32(0);
  void add(int32x4_t mlo, int32x4_t mhi, int32x4_t thr, uint32x4_t keepLo, uint32x4_t keepHi) {
    mlo = vandq_s32(mlo, vreinterpretq_s32_u32(keepLo));
    mhi = vandq_s32(mhi, vreinterpretq_s32_u32(keepHi));
    uint32x4_t elo = vandq_u32(vcgtq_s32(mlo, thr), keepLo), ehi = vandq_u32(vcgtq_s32(mhi, thr), keepHi);
    cnt = vsubq_u32(cnt, vaddq_u32(elo, ehi));  // a true compare is all-ones, i.e. -1
    sq = vaddq_u32(sq, vreinterpretq_u32_s32(vaddq_s32(mlo, mhi)));
    mag = vaddq_f32(mag, vaddq_f32(vsqrtq_f32(vcvtq_f32_s32(mlo)), vsqrtq_f32(vcvtq_f32_s32(mhi))));
  }
  void flush(SobelSums* s) const {
    s->edges += vaddlvq_u32(cnt);
    s->magSq += vaddlvq_u32(sq);
    s->mag += (static_cast<double>(vgetq_lane_f32(mag, 0)) + vgetq_lane_f32(mag, 1)) +
              (static_cast<double>(vgetq_lane_f32(mag, 2)) + vgetq_lane_f32(mag, 3));
  }
};

SobelSums sobelNeon(const uint8_t* img, size_t w, size_t h, int32_t thrSq) {
  SobelSums s;
  if (w < 3 || h < 3) return s;
  const int32x4_t thr = vdupq_n_s32(thrSq);
  const uint32x4_t all = vdupq_n_u32(0xffffffffu);
  static const uint32_t kIdx[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  const uint32x4_t idxLo = vld1q_u32(kIdx), idxHi = vld1q_u32(kIdx + 4);
  for (size_t y = 1; y + 1 < h; y++) {
    const uint8_t* r0 = img + (y - 1) * w;
    const uint8_t* r1 = r0 + w;
    const uint8_t* r2 = r1 + w;
    int32x4_t mlo, mhi;
    size_t x = 1;
    // Flush every 512 steps (4096 pixels): a u32 lane holds at most 512*2*2,080,800.
    while (x + 8 < w) {
      Acc acc;
      for (size_t k = 0; k < 512 && x + 8 < w; k++, x += 8) {  // pixels x..x+7 <= w-2
        grad8(r0, r1, r2, x, &mlo, &mhi);
        acc.add(mlo, mhi, thr, all, all);
      }
      acc.flush(&s);
    }
    // Last 1..7 pixels: one overlapping step ending at w-2, already-counted pixels masked.
    if (x + 1 < w && w >= 10) {
      const size_t x0 = w - 9;
      const uint32x4_t done = vdupq_n_u32(static_cast<uint32_t>(x - x0));
      grad8(r0, r1, r2, x0, &mlo, &mhi);
      Acc acc;
      acc.add(mlo, mhi, thr, vcgeq_u32(idxLo, done), vcgeq_u32(idxHi, done));
      acc.flush(&s);
      x = w - 1;
    }
    for (; x + 1 < w; x++) {  // frames narrower than 10 pixels
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

double hsumF(float32x4_t v) {
  return (static_cast<double>(vgetq_lane_f32(v, 0)) + vgetq_lane_f32(v, 1)) +
         (static_cast<double>(vgetq_lane_f32(v, 2)) + vgetq_lane_f32(v, 3));
}

// Same shape as the x86 versions: scalar head, 4 samples per step, scalar tail.
void audioNeon(const float* pcm, size_t n, size_t frames, AudioSums* out) {
  const float32x4_t zero = vdupq_n_f32(0);
  for (size_t f = 0; f < frames; f++) {
    const float* x = pcm + f * n;
    AudioSums a;
    size_t head = n < 8 ? n : 8;
    for (size_t i = 0; i < head; i++) {
      double v = x[i];
      a.x2 += v * v;
      if (i >= 1) {
        double d = v - static_cast<double>(x[i - 1]);
        a.d2 += d * d;
        a.zc += (x[i] >= 0) != (x[i - 1] >= 0);
      }
      if (i == 7) {
        double s = 0;
        for (size_t k = 0; k < 8; k++) s += x[i - k];
        a.lo2 += s * s;
      }
    }
    size_t i = 8;
    while (i + 4 <= n) {  // flush every 256 steps so no float lane sums more than 256 terms
      float32x4_t x2 = zero, lo2 = zero, d2 = zero;
      uint32x4_t zc = vdupq_n_u32(0);
      for (size_t k = 0; k < 256 && i + 4 <= n; k++, i += 4) {
        float32x4_t v0 = vld1q_f32(x + i), v1 = vld1q_f32(x + i - 1);
        float32x4_t s = vaddq_f32(vaddq_f32(vaddq_f32(v0, v1), vaddq_f32(vld1q_f32(x + i - 2), vld1q_f32(x + i - 3))),
                                  vaddq_f32(vaddq_f32(vld1q_f32(x + i - 4), vld1q_f32(x + i - 5)),
                                            vaddq_f32(vld1q_f32(x + i - 6), vld1q_f32(x + i - 7))));
        float32x4_t d = vsubq_f32(v0, v1);
        x2 = vfmaq_f32(x2, v0, v0);
        lo2 = vfmaq_f32(lo2, s, s);
        d2 = vfmaq_f32(d2, d, d);
        zc = vsubq_u32(zc, veorq_u32(vcgeq_f32(v0, zero), vcgeq_f32(v1, zero)));
      }
      a.x2 += hsumF(x2);
      a.lo2 += hsumF(lo2);
      a.d2 += hsumF(d2);
      a.zc += vaddlvq_u32(zc);
    }
    for (; i < n; i++) {
      double v = x[i], d = v - static_cast<double>(x[i - 1]), s = 0;
      for (size_t k = 0; k < 8; k++) s += x[i - k];
      a.x2 += v * v;
      a.d2 += d * d;
      a.lo2 += s * s;
      a.zc += (x[i] >= 0) != (x[i - 1] >= 0);
    }
    out[f] = a;
  }
}

}  // namespace

extern const Kernels kNeon = {
    "neon",       sadNeon,       diffNeon,  lumaNeon, histogramNeon,
    downscaleNeon, sobelNeon, audioNeon,
};

}  // namespace ych
