// Standalone check (no N-API, no Node) that every SIMD table of this architecture equals
// the scalar reference on the same deterministic inputs: integers exactly, float sums
// within 1e-4 relative. Built and run by test/native/arm64.sh natively (sse2, avx2) and
// under qemu-aarch64 (neon). Prints one line per check, then "N passed, N failed".
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <string>
#include <vector>

#include "../src/kernels.h"

using ych::Kernels;

namespace {

int passed = 0, failed = 0;

void report(const std::string& name, const std::string& problem) {
  if (problem.empty()) {
    passed++;
    printf("ok   %s\n", name.c_str());
  } else {
    failed++;
    printf("FAIL %s: %s\n", name.c_str(), problem.c_str());
  }
}

// xorshift64*: same inputs on every machine and every run.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t next() {
    s ^= s >> 12; s ^= s << 25; s ^= s >> 27;
    return s * 0x2545F4914F6CDD1Dull;
  }
  double unit() { return static_cast<double>(next() >> 11) / 9007199254740992.0; }
};

enum Pattern { kNoise, kSmooth, kBlocks, kExtreme, kFlat };
const char* kPatternName[] = {"noise", "smooth", "blocks", "extreme", "flat"};

std::vector<uint8_t> frame(size_t w, size_t h, Pattern p, uint64_t seed) {
  Rng r(seed);
  std::vector<uint8_t> f(w * h);
  for (size_t y = 0; y < h; y++)
    for (size_t x = 0; x < w; x++) {
      int v = 0;
      switch (p) {
        case kNoise: v = static_cast<int>(r.next() & 255); break;
        case kSmooth: v = static_cast<int>((x * 3 + y * 2) % 256) + static_cast<int>(r.next() % 5) - 2; break;
        case kBlocks: v = ((x / 8 + y / 8) % 2) ? 230 : 20; break;
        case kExtreme: v = (r.next() & 1) ? 255 : 0; break;
        case kFlat: v = 117; break;
      }
      f[y * w + x] = static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
    }
  return f;
}

bool near(double a, double b, double rel) {
  double scale = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
  return fabs(a - b) <= rel * scale + 1e-30;
}

std::string num(double v) {
  char buf[64];
  snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

void checkFrames(const Kernels& ref, const Kernels& k, size_t w, size_t h, Pattern p) {
  std::string tag = std::string(k.isa) + " " + std::to_string(w) + "x" + std::to_string(h) + " " + kPatternName[p];
  std::vector<uint8_t> a = frame(w, h, p, w * 131 + h), b = frame(w, h, p == kFlat ? kNoise : p, w + h * 977);
  size_t n = w * h;

  uint64_t s0 = ref.sad(a.data(), b.data(), n), s1 = k.sad(a.data(), b.data(), n);
  report(tag + " sad", s0 == s1 ? "" : num(s1) + " != " + num(s0));

  ych::DiffSums d0 = ref.diff(a.data(), b.data(), n), d1 = k.diff(a.data(), b.data(), n);
  report(tag + " diff", d0.sum == d1.sum && d0.sumSq == d1.sumSq ? "" :
         "sum " + num(d1.sum) + " vs " + num(d0.sum) + ", sumSq " + num(d1.sumSq) + " vs " + num(d0.sumSq));

  ych::DiffSums l0 = ref.luma(a.data(), n), l1 = k.luma(a.data(), n);
  report(tag + " luma", l0.sum == l1.sum && l0.sumSq == l1.sumSq ? "" : "sums differ");

  uint32_t h0[256], h1[256];
  ref.histogram(a.data(), n, h0);
  k.histogram(a.data(), n, h1);
  report(tag + " histogram", memcmp(h0, h1, sizeof h0) == 0 ? "" : "bins differ");

  std::vector<uint8_t> o0((w / 2) * (h / 2) + 1, 7), o1 = o0;
  if (w >= 2 && h >= 2) {
    ref.downscale2x(a.data(), w, h, o0.data());
    k.downscale2x(a.data(), w, h, o1.data());
  }
  size_t bad = 0;
  for (size_t i = 0; i < o0.size(); i++) bad += o0[i] != o1[i];  // includes the guard byte
  report(tag + " downscale2x", bad == 0 ? "" : std::to_string(bad) + " pixels differ");

  std::string problem;
  const double thresholds[] = {-5, 0, 96, 100.5, 1020, 1e12, NAN};
  for (double t : thresholds) {
    int32_t thr = ych::edgeThresholdSq(t);
    ych::SobelSums r0 = ref.sobel(a.data(), w, h, thr), r1 = k.sobel(a.data(), w, h, thr);
    ych::SobelStats st0 = ych::sobelStats(r0, w, h), st1 = ych::sobelStats(r1, w, h);
    if (r0.edges != r1.edges || r0.magSq != r1.magSq || !near(r0.mag, r1.mag, 1e-4) ||
        !near(st0.si, st1.si, 1e-4) || st0.edgeDensity != st1.edgeDensity)
      problem += "t=" + num(t) + " edges " + num(r1.edges) + "/" + num(r0.edges) + " magSq " + num(r1.magSq) +
                 "/" + num(r0.magSq) + " mag " + num(r1.mag) + "/" + num(r0.mag) + "; ";
  }
  report(tag + " sobel", problem);
}

std::vector<float> audio(size_t n, int kind, uint64_t seed) {
  Rng r(seed);
  std::vector<float> x(n);
  for (size_t i = 0; i < n; i++) {
    double v = r.unit() * 2 - 1;
    if (kind == 1) {  // speech-like: a tone, noise, exact zeros and -0 for the zcr rule
      v = 0.6 * sin(i * 0.07) + 0.05 * v;
      if (i % 97 < 5) v = (i % 2) ? 0.0 : -0.0;
    }
    x[i] = static_cast<float>(v);
  }
  return x;
}

void checkAudio(const Kernels& ref, const Kernels& k, size_t n, size_t frameSize, int kind) {
  std::string tag = std::string(k.isa) + " audio n=" + std::to_string(n) + " frame=" + std::to_string(frameSize) +
                    (kind ? " tone" : " noise");
  std::vector<float> x = audio(n, kind, n + frameSize);
  size_t frames = n / frameSize;
  std::vector<ych::AudioSums> a0(frames + 1), a1(frames + 1);
  ref.audio(x.data(), frameSize, frames, a0.data());
  k.audio(x.data(), frameSize, frames, a1.data());
  std::string problem;
  for (size_t f = 0; f < frames && problem.empty(); f++) {
    const ych::AudioSums &p = a0[f], &q = a1[f];
    if (p.zc != q.zc || !near(p.x2, q.x2, 1e-4) || !near(p.lo2, q.lo2, 1e-4) || !near(p.d2, q.d2, 1e-4))
      problem = "frame " + std::to_string(f) + ": zc " + num(q.zc) + "/" + num(p.zc) + " x2 " + num(q.x2) + "/" +
                num(p.x2) + " lo2 " + num(q.lo2) + "/" + num(p.lo2) + " d2 " + num(q.d2) + "/" + num(p.d2);
  }
  report(tag, problem);
}

void checkTable(const Kernels& k) {
  // Widths around 8/16-pixel steps exercise the masked overlapping tail of each path.
  struct Case { size_t w, h; Pattern p; };
  const Case cases[] = {
      {1, 1, kNoise},     {2, 2, kNoise},      {3, 3, kNoise},      {3, 3, kExtreme},   {4, 3, kNoise},
      {3, 4, kBlocks},    {5, 5, kFlat},       {7, 9, kNoise},      {16, 16, kExtreme}, {17, 5, kNoise},
      {18, 3, kSmooth},   {31, 33, kBlocks},   {33, 17, kExtreme},  {64, 64, kSmooth},  {160, 90, kNoise},
      {161, 91, kNoise},  {161, 91, kBlocks},  {161, 91, kSmooth},  {161, 91, kFlat},   {1280, 720, kNoise},
      {4133, 5, kNoise},  {1, 300, kNoise},    {300, 1, kNoise},    {0, 0, kNoise},     {10, 4, kExtreme},
      {11, 4, kNoise},    {19, 6, kExtreme},   {34, 5, kNoise},     {25, 3, kBlocks},
  };
  for (const Case& c : cases) checkFrames(ych::kScalar, k, c.w, c.h, c.p);
  const size_t lengths[] = {0, 9, 16003, 48000};
  const size_t frameSizes[] = {1, 7, 8, 9, 31, 320, 1031, 16000};
  for (size_t n : lengths)
    for (size_t fs : frameSizes)
      for (int kind = 0; kind < 2; kind++) checkAudio(ych::kScalar, k, n, fs, kind);
}

}  // namespace

int main() {
#if defined(__aarch64__)
  checkTable(ych::kNeon);
#elif defined(__x86_64__)
  checkTable(ych::kSse2);
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) {
    checkTable(ych::kAvx2);
  } else {
    printf("skip avx2: this CPU has no AVX2\n");
  }
#else
  printf("no SIMD table on this architecture; nothing to compare\n");
#endif
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
