// AVX2 + FMA kernels. This file alone is compiled with -mavx2 -mfma (its own static
// library) and its table is handed out only after __builtin_cpu_supports("avx2"), so the
// addon still loads on pre-Haswell CPUs and Atom-class boards.
// Everything here has internal linkage and no STL header is included: an inline template
// instantiated in this TU could otherwise be merged with (and replace) the baseline
// copy used elsewhere, putting AVX instructions on the non-AVX path.
#include <immintrin.h>

#include "../kernels.h"

namespace ych {
namespace {

uint64_t hsum64(__m256i v) {
  __m128i s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  return static_cast<uint64_t>(_mm_cvtsi128_si64(s)) +
         static_cast<uint64_t>(_mm_extract_epi64(s, 1));
}

uint64_t hsum32u(__m256i v) {
  alignas(32) uint32_t t[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(t), v);
  uint64_t s = 0;
  for (int k = 0; k < 8; k++) s += t[k];
  return s;
}

// Float lanes are added in double so the cross-lane sum adds no error of its own.
double hsumPs(__m256 v) {
  alignas(32) float t[8];
  _mm256_store_ps(t, v);
  double s = 0;
  for (int k = 0; k < 8; k++) s += t[k];
  return s;
}

inline __m256i load16(const uint8_t* p) {
  return _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

uint64_t sadAvx2(const uint8_t* a, const uint8_t* b, size_t n) {
  __m256i acc = _mm256_setzero_si256();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256i va = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i));
    __m256i vb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i));
    acc = _mm256_add_epi64(acc, _mm256_sad_epu8(va, vb));
  }
  uint64_t s = hsum64(acc);
  for (; i < n; i++) s += a[i] > b[i] ? a[i] - b[i] : b[i] - a[i];
  return s;
}

// sum(b-a) = sum(b) - sum(a) via vpsadbw against zero; squares via vpmaddwd on int16.
// Each u32 square lane gains <= 260,100 per step: flushing every 4096 steps is safe.
DiffSums diffAvx2(const uint8_t* a, const uint8_t* b, size_t n) {
  const __m256i z = _mm256_setzero_si256();
  DiffSums r;
  size_t i = 0;
  while (i + 32 <= n) {
    __m256i sa = z, sb = z, sq = z;
    for (size_t k = 0; k < 4096 && i + 32 <= n; k++, i += 32) {
      sa = _mm256_add_epi64(sa, _mm256_sad_epu8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i)), z));
      sb = _mm256_add_epi64(sb, _mm256_sad_epu8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i)), z));
      __m256i dl = _mm256_sub_epi16(load16(b + i), load16(a + i));
      __m256i dh = _mm256_sub_epi16(load16(b + i + 16), load16(a + i + 16));
      sq = _mm256_add_epi32(sq, _mm256_add_epi32(_mm256_madd_epi16(dl, dl), _mm256_madd_epi16(dh, dh)));
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

DiffSums lumaAvx2(const uint8_t* p, size_t n) {
  const __m256i z = _mm256_setzero_si256();
  DiffSums r;
  size_t i = 0;
  while (i + 32 <= n) {
    __m256i s = z, sq = z;
    for (size_t k = 0; k < 4096 && i + 32 <= n; k++, i += 32) {
      s = _mm256_add_epi64(s, _mm256_sad_epu8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)), z));
      __m256i lo = load16(p + i), hi = load16(p + i + 16);
      sq = _mm256_add_epi32(sq, _mm256_add_epi32(_mm256_madd_epi16(lo, lo), _mm256_madd_epi16(hi, hi)));
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

void histogramAvx2(const uint8_t* p, size_t n, uint32_t out[256]) { histogramSplit(p, n, out); }

// vpmaddubsw with all-ones adds horizontal byte pairs into int16 in one step.
void downscaleAvx2(const uint8_t* img, size_t w, size_t h, uint8_t* out) {
  const __m256i ones = _mm256_set1_epi8(1), two = _mm256_set1_epi16(2);
  size_t ow = w / 2, oh = h / 2;
  for (size_t y = 0; y < oh; y++) {
    const uint8_t* r0 = img + 2 * y * w;
    const uint8_t* r1 = r0 + w;
    uint8_t* o = out + y * ow;
    size_t x = 0;
    for (; x + 16 <= ow; x += 16) {  // 32 input bytes per row -> 16 outputs
      __m256i a = _mm256_maddubs_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(r0 + 2 * x)), ones);
      __m256i b = _mm256_maddubs_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(r1 + 2 * x)), ones);
      __m256i s = _mm256_srli_epi16(_mm256_add_epi16(_mm256_add_epi16(a, b), two), 2);
      __m128i packed = _mm_packus_epi16(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o + x), packed);
    }
    for (; x < ow; x++)
      o[x] = static_cast<uint8_t>((r0[2 * x] + r0[2 * x + 1] + r1[2 * x] + r1[2 * x + 1] + 2u) >> 2);
  }
}

// gx^2+gy^2 as int32 for pixels x..x+15 of the middle row r1. Interleaving (gx,gy) lets
// vpmaddwd square and add in one step; its in-lane shuffle leaves pixels 0-3,8-11 in
// *lo and 4-7,12-15 in *hi, which sums and counts do not care about (the tail masks do).
inline void grad16(const uint8_t* r0, const uint8_t* r1, const uint8_t* r2, size_t x, __m256i* lo, __m256i* hi) {
  __m256i a0 = load16(r0 + x - 1), c0 = load16(r0 + x), b0 = load16(r0 + x + 1);
  __m256i a1 = load16(r1 + x - 1), b1 = load16(r1 + x + 1);
  __m256i a2 = load16(r2 + x - 1), c2 = load16(r2 + x), b2 = load16(r2 + x + 1);
  __m256i d1 = _mm256_sub_epi16(b1, a1), dc = _mm256_sub_epi16(c2, c0);
  __m256i gx = _mm256_add_epi16(_mm256_add_epi16(_mm256_sub_epi16(b0, a0), _mm256_sub_epi16(b2, a2)),
                                _mm256_add_epi16(d1, d1));
  __m256i gy = _mm256_add_epi16(_mm256_add_epi16(_mm256_sub_epi16(a2, a0), _mm256_sub_epi16(b2, b0)),
                                _mm256_add_epi16(dc, dc));
  __m256i l = _mm256_unpacklo_epi16(gx, gy), h = _mm256_unpackhi_epi16(gx, gy);
  *lo = _mm256_madd_epi16(l, l);
  *hi = _mm256_madd_epi16(h, h);
}

struct Acc {
  __m256i cnt = _mm256_setzero_si256(), sq = _mm256_setzero_si256();
  __m256 mag = _mm256_setzero_ps();
  void add(__m256i mlo, __m256i mhi, __m256i thr, __m256i keepLo, __m256i keepHi) {
    mlo = _mm256_and_si256(mlo, keepLo);
    mhi = _mm256_and_si256(mhi, keepHi);
    __m256i elo = _mm256_and_si256(_mm256_cmpgt_epi32(mlo, thr), keepLo);
    __m256i ehi = _mm256_and_si256(_mm256_cmpgt_epi32(mhi, thr), keepHi);
    cnt = _mm256_sub_epi32(cnt, _mm256_add_epi32(elo, ehi));  // true compare = -1
    sq = _mm256_add_epi32(sq, _mm256_add_epi32(mlo, mhi));
    mag = _mm256_add_ps(mag, _mm256_add_ps(_mm256_sqrt_ps(_mm256_cvtepi32_ps(mlo)),
                                           _mm256_sqrt_ps(_mm256_cvtepi32_ps(mhi))));
  }
  void flush(SobelSums* s) const {
    s->edges += hsum32u(cnt);
    s->magSq += hsum32u(sq);
    s->mag += hsumPs(mag);
  }
};

SobelSums sobelAvx2(const uint8_t* img, size_t w, size_t h, int32_t thrSq) {
  SobelSums s;
  if (w < 3 || h < 3) return s;
  const __m256i thr = _mm256_set1_epi32(thrSq), all = _mm256_set1_epi32(-1);
  const __m256i idxLo = _mm256_setr_epi32(0, 1, 2, 3, 8, 9, 10, 11);
  const __m256i idxHi = _mm256_setr_epi32(4, 5, 6, 7, 12, 13, 14, 15);
  for (size_t y = 1; y + 1 < h; y++) {
    const uint8_t* r0 = img + (y - 1) * w;
    const uint8_t* r1 = r0 + w;
    const uint8_t* r2 = r1 + w;
    __m256i mlo, mhi;
    size_t x = 1;
    // Flush every 256 steps (4096 pixels): a u32 lane holds at most 256*2*2,080,800.
    while (x + 16 < w) {
      Acc acc;
      for (size_t k = 0; k < 256 && x + 16 < w; k++, x += 16) {  // pixels x..x+15 <= w-2
        grad16(r0, r1, r2, x, &mlo, &mhi);
        acc.add(mlo, mhi, thr, all, all);
      }
      acc.flush(&s);
    }
    // The last 1..15 pixels: redo one overlapping step ending at w-2 and mask out the
    // pixels already counted. At 160x90 the tail is a tenth of each row; in scalar
    // (double sqrt) it cost as much as the vector part.
    if (x + 1 < w && w >= 18) {
      const size_t x0 = w - 17;
      const __m256i before = _mm256_set1_epi32(static_cast<int>(x - x0) - 1);
      grad16(r0, r1, r2, x0, &mlo, &mhi);
      Acc acc;
      acc.add(mlo, mhi, thr, _mm256_cmpgt_epi32(idxLo, before), _mm256_cmpgt_epi32(idxHi, before));
      acc.flush(&s);
      x = w - 1;
    }
    for (; x + 1 < w; x++) {  // frames narrower than 18 pixels
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

// Same shape as the SSE2 version, 8 samples per step with FMA.
void audioAvx2(const float* pcm, size_t n, size_t frames, AudioSums* out) {
  const __m256 zero = _mm256_setzero_ps();
  for (size_t f = 0; f < frames; f++) {
    const float* x = pcm + f * n;
    AudioSums a;
    size_t head = n < 8 ? n : 8;  // i < 8 in scalar so the vector loop can read x[i-7..i]
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
    while (i + 8 <= n) {  // flush every 128 steps so no float lane sums more than 128 terms
      __m256 x2 = zero, lo2 = zero, d2 = zero;
      __m256i zc = _mm256_setzero_si256();
      for (size_t k = 0; k < 128 && i + 8 <= n; k++, i += 8) {
        __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i - 1);
        __m256 s = _mm256_add_ps(
            _mm256_add_ps(_mm256_add_ps(v0, v1), _mm256_add_ps(_mm256_loadu_ps(x + i - 2), _mm256_loadu_ps(x + i - 3))),
            _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(x + i - 4), _mm256_loadu_ps(x + i - 5)),
                          _mm256_add_ps(_mm256_loadu_ps(x + i - 6), _mm256_loadu_ps(x + i - 7))));
        __m256 d = _mm256_sub_ps(v0, v1);
        x2 = _mm256_fmadd_ps(v0, v0, x2);
        lo2 = _mm256_fmadd_ps(s, s, lo2);
        d2 = _mm256_fmadd_ps(d, d, d2);
        __m256 flip = _mm256_xor_ps(_mm256_cmp_ps(v0, zero, _CMP_GE_OQ), _mm256_cmp_ps(v1, zero, _CMP_GE_OQ));
        zc = _mm256_sub_epi32(zc, _mm256_castps_si256(flip));
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

extern const Kernels kAvx2 = {
    "avx2",       sadAvx2,       diffAvx2,  lumaAvx2, histogramAvx2,
    downscaleAvx2, sobelAvx2, audioAvx2,
};

}  // namespace ych
