// SSE2 kernels: the x86-64 baseline, so this path runs on every 64-bit PC the appliance
// may be installed on. 8 pixels (int16 lanes) or 4 samples (float lanes) per step;
// tails fall back to the same arithmetic as the scalar reference.
#include <emmintrin.h>

#include "../kernels.h"

namespace ych {
namespace {

uint64_t hsum64(__m128i v) {
  return static_cast<uint64_t>(_mm_cvtsi128_si64(v)) +
         static_cast<uint64_t>(_mm_cvtsi128_si64(_mm_unpackhi_epi64(v, v)));
}

uint64_t hsum32u(__m128i v) {
  alignas(16) uint32_t t[4];
  _mm_store_si128(reinterpret_cast<__m128i*>(t), v);
  return static_cast<uint64_t>(t[0]) + t[1] + t[2] + t[3];
}

// Float lanes are added in double so the cross-lane sum adds no error of its own.
double hsumPs(__m128 v) {
  alignas(16) float t[4];
  _mm_store_ps(t, v);
  return (static_cast<double>(t[0]) + t[1]) + (static_cast<double>(t[2]) + t[3]);
}

uint64_t sadSse2(const uint8_t* a, const uint8_t* b, size_t n) {
  __m128i acc = _mm_setzero_si128();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m128i va = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i));
    __m128i vb = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i));
    acc = _mm_add_epi64(acc, _mm_sad_epu8(va, vb));  // two u64 partial sums, no overflow
  }
  uint64_t s = hsum64(acc);
  for (; i < n; i++) s += a[i] > b[i] ? a[i] - b[i] : b[i] - a[i];
  return s;
}

// sum(b-a) = sum(b) - sum(a) via psadbw against zero; sum((b-a)^2) via pmaddwd on int16.
// The int32 square lanes take at most 2*65025 per step, so flush every 4096 steps.
DiffSums diffSse2(const uint8_t* a, const uint8_t* b, size_t n) {
  const __m128i z = _mm_setzero_si128();
  DiffSums r;
  size_t i = 0;
  while (i + 16 <= n) {
    __m128i sa = z, sb = z, sq = z;
    for (size_t k = 0; k < 4096 && i + 16 <= n; k++, i += 16) {
      __m128i va = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i));
      __m128i vb = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i));
      sa = _mm_add_epi64(sa, _mm_sad_epu8(va, z));
      sb = _mm_add_epi64(sb, _mm_sad_epu8(vb, z));
      __m128i dl = _mm_sub_epi16(_mm_unpacklo_epi8(vb, z), _mm_unpacklo_epi8(va, z));
      __m128i dh = _mm_sub_epi16(_mm_unpackhi_epi8(vb, z), _mm_unpackhi_epi8(va, z));
      sq = _mm_add_epi32(sq, _mm_add_epi32(_mm_madd_epi16(dl, dl), _mm_madd_epi16(dh, dh)));
    }
    r.sum += static_cast<int64_t>(hsum64(sb)) - static_cast<int64_t>(hsum64(sa));
    r.sumSq += hsum32u(sq);
  }
  for (; i < n; i++) {
    int64_t d = static_cast<int64_t>(b[i]) - a[i];
    r.sum += d;
    r.sumSq += static_cast<uint64_t>(d * d);
  }
  return r;
}

DiffSums lumaSse2(const uint8_t* p, size_t n) {
  const __m128i z = _mm_setzero_si128();
  DiffSums r;
  size_t i = 0;
  while (i + 16 <= n) {
    __m128i s = z, sq = z;
    for (size_t k = 0; k < 4096 && i + 16 <= n; k++, i += 16) {
      __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
      s = _mm_add_epi64(s, _mm_sad_epu8(v, z));
      __m128i lo = _mm_unpacklo_epi8(v, z), hi = _mm_unpackhi_epi8(v, z);
      sq = _mm_add_epi32(sq, _mm_add_epi32(_mm_madd_epi16(lo, lo), _mm_madd_epi16(hi, hi)));
    }
    r.sum += static_cast<int64_t>(hsum64(s));
    r.sumSq += hsum32u(sq);
  }
  for (; i < n; i++) {
    r.sum += p[i];
    r.sumSq += static_cast<uint64_t>(p[i]) * p[i];
  }
  return r;
}

void histogramSse2(const uint8_t* p, size_t n, uint32_t out[256]) { histogramSplit(p, n, out); }

// SSE2 has no pmaddubsw: split even/odd bytes with a mask and a shift instead.
void downscaleSse2(const uint8_t* img, size_t w, size_t h, uint8_t* out) {
  const __m128i lowByte = _mm_set1_epi16(0x00ff), two = _mm_set1_epi16(2);
  size_t ow = w / 2, oh = h / 2;
  for (size_t y = 0; y < oh; y++) {
    const uint8_t* r0 = img + 2 * y * w;
    const uint8_t* r1 = r0 + w;
    uint8_t* o = out + y * ow;
    size_t x = 0;
    for (; x + 8 <= ow; x += 8) {  // 16 input bytes per row -> 8 outputs
      __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(r0 + 2 * x));
      __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(r1 + 2 * x));
      __m128i s = _mm_add_epi16(_mm_add_epi16(_mm_and_si128(a, lowByte), _mm_srli_epi16(a, 8)),
                                _mm_add_epi16(_mm_and_si128(b, lowByte), _mm_srli_epi16(b, 8)));
      s = _mm_srli_epi16(_mm_add_epi16(s, two), 2);
      _mm_storel_epi64(reinterpret_cast<__m128i*>(o + x), _mm_packus_epi16(s, s));
    }
    for (; x < ow; x++)
      o[x] = static_cast<uint8_t>((r0[2 * x] + r0[2 * x + 1] + r1[2 * x] + r1[2 * x + 1] + 2u) >> 2);
  }
}

inline __m128i load8(const uint8_t* p) {
  return _mm_unpacklo_epi8(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)), _mm_setzero_si128());
}

// gx^2+gy^2 as int32 for pixels x..x+7 of the middle row r1: interleaved (gx,gy) pairs
// let pmaddwd square and add in one step (pixels 0-3 land in *lo, 4-7 in *hi).
inline void grad8(const uint8_t* r0, const uint8_t* r1, const uint8_t* r2, size_t x, __m128i* lo, __m128i* hi) {
  __m128i a0 = load8(r0 + x - 1), c0 = load8(r0 + x), b0 = load8(r0 + x + 1);
  __m128i a1 = load8(r1 + x - 1), b1 = load8(r1 + x + 1);
  __m128i a2 = load8(r2 + x - 1), c2 = load8(r2 + x), b2 = load8(r2 + x + 1);
  __m128i d1 = _mm_sub_epi16(b1, a1), dc = _mm_sub_epi16(c2, c0);
  __m128i gx = _mm_add_epi16(_mm_add_epi16(_mm_sub_epi16(b0, a0), _mm_sub_epi16(b2, a2)), _mm_add_epi16(d1, d1));
  __m128i gy = _mm_add_epi16(_mm_add_epi16(_mm_sub_epi16(a2, a0), _mm_sub_epi16(b2, b0)), _mm_add_epi16(dc, dc));
  __m128i l = _mm_unpacklo_epi16(gx, gy), h = _mm_unpackhi_epi16(gx, gy);
  *lo = _mm_madd_epi16(l, l);
  *hi = _mm_madd_epi16(h, h);
}

struct Acc {
  __m128i cnt = _mm_setzero_si128(), sq = _mm_setzero_si128();
  __m128 mag = _mm_setzero_ps();
  void add(__m128i mlo, __m128i mhi, __m128i thr, __m128i keepLo, __m128i keepHi) {
    mlo = _mm_and_si128(mlo, keepLo);
    mhi = _mm_and_si128(mhi, keepHi);
    __m128i elo = _mm_and_si128(_mm_cmpgt_epi32(mlo, thr), keepLo);
    __m128i ehi = _mm_and_si128(_mm_cmpgt_epi32(mhi, thr), keepHi);
    cnt = _mm_sub_epi32(cnt, _mm_add_epi32(elo, ehi));  // true compare = -1
    sq = _mm_add_epi32(sq, _mm_add_epi32(mlo, mhi));
    mag = _mm_add_ps(mag, _mm_add_ps(_mm_sqrt_ps(_mm_cvtepi32_ps(mlo)), _mm_sqrt_ps(_mm_cvtepi32_ps(mhi))));
  }
  void flush(SobelSums* s) const {
    s->edges += hsum32u(cnt);
    s->magSq += hsum32u(sq);
    s->mag += hsumPs(mag);
  }
};

SobelSums sobelSse2(const uint8_t* img, size_t w, size_t h, int32_t thrSq) {
  SobelSums s;
  if (w < 3 || h < 3) return s;
  const __m128i thr = _mm_set1_epi32(thrSq), all = _mm_set1_epi32(-1);
  const __m128i idxLo = _mm_setr_epi32(0, 1, 2, 3), idxHi = _mm_setr_epi32(4, 5, 6, 7);
  for (size_t y = 1; y + 1 < h; y++) {
    const uint8_t* r0 = img + (y - 1) * w;
    const uint8_t* r1 = r0 + w;
    const uint8_t* r2 = r1 + w;
    __m128i mlo, mhi;
    size_t x = 1;
    // Flush every 512 steps (4096 pixels): a u32 lane then holds at most 512*2*2,080,800,
    // and a float lane sums at most 1024 magnitudes, well inside the 1e-4 tolerance.
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
      const __m128i before = _mm_set1_epi32(static_cast<int>(x - x0) - 1);
      grad8(r0, r1, r2, x0, &mlo, &mhi);
      Acc acc;
      acc.add(mlo, mhi, thr, _mm_cmpgt_epi32(idxLo, before), _mm_cmpgt_epi32(idxHi, before));
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

// Per frame: float lanes for the sums (a 20 ms frame is 320 samples, 80 per lane), then
// double across lanes. zcr compares sign masks of x[i] and x[i-1], exact on every path.
void audioSse2(const float* pcm, size_t n, size_t frames, AudioSums* out) {
  const __m128 zero = _mm_setzero_ps();
  for (size_t f = 0; f < frames; f++) {
    const float* x = pcm + f * n;
    AudioSums a;
    // Head (i < 8) in scalar double so the vector loop can always read x[i-7..i].
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
      __m128 x2 = zero, lo2 = zero, d2 = zero;
      __m128i zc = _mm_setzero_si128();
      for (size_t k = 0; k < 256 && i + 4 <= n; k++, i += 4) {
        __m128 v0 = _mm_loadu_ps(x + i), v1 = _mm_loadu_ps(x + i - 1);
        __m128 s = _mm_add_ps(
            _mm_add_ps(_mm_add_ps(v0, v1), _mm_add_ps(_mm_loadu_ps(x + i - 2), _mm_loadu_ps(x + i - 3))),
            _mm_add_ps(_mm_add_ps(_mm_loadu_ps(x + i - 4), _mm_loadu_ps(x + i - 5)),
                       _mm_add_ps(_mm_loadu_ps(x + i - 6), _mm_loadu_ps(x + i - 7))));
        __m128 d = _mm_sub_ps(v0, v1);
        x2 = _mm_add_ps(x2, _mm_mul_ps(v0, v0));
        lo2 = _mm_add_ps(lo2, _mm_mul_ps(s, s));
        d2 = _mm_add_ps(d2, _mm_mul_ps(d, d));
        __m128 flip = _mm_xor_ps(_mm_cmpge_ps(v0, zero), _mm_cmpge_ps(v1, zero));
        zc = _mm_sub_epi32(zc, _mm_castps_si128(flip));
      }
      a.x2 += hsumPs(x2);
      a.lo2 += hsumPs(lo2);
      a.d2 += hsumPs(d2);
      a.zc += hsum32u(zc);
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

extern const Kernels kSse2 = {
    "sse2",       sadSse2,       diffSse2,  lumaSse2, histogramSse2,
    downscaleSse2, sobelSse2, audioSse2,
};

}  // namespace ych
