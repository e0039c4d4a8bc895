// TensorFlow Lite C library + XNNPACK on BlazeFace, without Node: the same program runs on
// x86-64 and, cross-compiled, on AArch64 under qemu (test/native/arm64.sh), so the library
// the Pi will load is exercised on its own instruction set before any Pi sees it.
//
//   tflite_test MODEL [FACE.rgb]     FACE.rgb: 128x128 rgb24 of a photo with one face
//
// Prints TAP-like "ok"/"not ok" lines, "score <input> <value>" lines the script compares
// across architectures, and "N passed, N failed". Exit status 1 when anything failed.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tensorflow/lite/c/c_api.h"

extern "C" {
TfLiteDelegate* TfLiteXNNPackDelegateCreate(const void* options);
void TfLiteXNNPackDelegateDelete(TfLiteDelegate* delegate);
}

namespace {

constexpr int kSide = 128;
constexpr int kAnchors = 896;
int passed = 0, failed = 0, number = 0;

void check(bool ok, const std::string& what) {
  printf("%s %d - %s\n", ok ? "ok" : "not ok", ++number, what.c_str());
  (ok ? passed : failed)++;
}

struct Engine {
  TfLiteModel* model = nullptr;
  TfLiteDelegate* delegate = nullptr;
  TfLiteInterpreter* interpreter = nullptr;

  bool Open(const char* path, bool xnnpack) {
    model = TfLiteModelCreateFromFile(path);
    if (!model) return false;
    TfLiteInterpreterOptions* o = TfLiteInterpreterOptionsCreate();
    TfLiteInterpreterOptionsSetNumThreads(o, 1);
    if (xnnpack) {
      delegate = TfLiteXNNPackDelegateCreate(nullptr);  // NULL: library defaults, one thread
      if (!delegate) { TfLiteInterpreterOptionsDelete(o); return false; }
      TfLiteInterpreterOptionsAddDelegate(o, delegate);
    }
    interpreter = TfLiteInterpreterCreate(model, o);
    TfLiteInterpreterOptionsDelete(o);
    return interpreter && TfLiteInterpreterAllocateTensors(interpreter) == kTfLiteOk;
  }

  // Highest face probability over the 896 anchors; NaN when the run fails.
  double TopScore(const std::vector<float>& input) {
    TfLiteTensor* in = TfLiteInterpreterGetInputTensor(interpreter, 0);
    if (TfLiteTensorCopyFromBuffer(in, input.data(), input.size() * sizeof(float)) != kTfLiteOk) return NAN;
    if (TfLiteInterpreterInvoke(interpreter) != kTfLiteOk) return NAN;
    std::vector<float> logits(kAnchors);
    const TfLiteTensor* out = TfLiteInterpreterGetOutputTensor(interpreter, 1);
    if (TfLiteTensorCopyToBuffer(out, logits.data(), logits.size() * sizeof(float)) != kTfLiteOk) return NAN;
    double top = *std::max_element(logits.begin(), logits.end());
    return 1.0 / (1.0 + exp(-std::max(-100.0, std::min(100.0, top))));
  }

  ~Engine() {
    if (interpreter) TfLiteInterpreterDelete(interpreter);
    if (delegate) TfLiteXNNPackDelegateDelete(delegate);
    if (model) TfLiteModelDelete(model);
  }
};

std::vector<float> FromRgb(const std::vector<unsigned char>& rgb) {
  std::vector<float> v(rgb.size());
  for (size_t i = 0; i < rgb.size(); i++) v[i] = rgb[i] / 127.5f - 1.0f;
  return v;
}

bool ReadFile(const char* path, std::vector<unsigned char>* out) {
  FILE* f = fopen(path, "rb");
  if (!f) return false;
  out->assign(kSide * kSide * 3, 0);
  size_t n = fread(out->data(), 1, out->size(), f);
  fclose(f);
  return n == out->size();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s MODEL [FACE.rgb]\n", argv[0]);
    return 2;
  }
  printf("# TensorFlow Lite %s\n", TfLiteVersion());

  Engine plain, xnn;
  check(plain.Open(argv[1], false), "model loads into a plain interpreter");
  bool xnnOk = xnn.Open(argv[1], true);
  check(xnnOk, "XNNPACK delegate created and accepted by the interpreter");
  if (!xnnOk || !plain.interpreter) {
    printf("%d passed, %d failed\n", passed, failed);
    return 1;
  }

  const TfLiteTensor* in = TfLiteInterpreterGetInputTensor(xnn.interpreter, 0);
  bool shapeOk = TfLiteTensorType(in) == kTfLiteFloat32 && TfLiteTensorNumDims(in) == 4 &&
                 TfLiteTensorDim(in, 1) == kSide && TfLiteTensorDim(in, 2) == kSide && TfLiteTensorDim(in, 3) == 3 &&
                 TfLiteInterpreterGetOutputTensorCount(xnn.interpreter) == 2 &&
                 TfLiteTensorDim(TfLiteInterpreterGetOutputTensor(xnn.interpreter, 1), 1) == kAnchors;
  check(shapeOk, std::string("input ") + TfLiteTensorName(in) + " float32 [1,128,128,3], 896 anchors out");

  // Deterministic inputs: flat mid-grey (no face anywhere) and a smooth wave (a texture).
  std::vector<float> grey(kSide * kSide * 3, 128 / 127.5f - 1.0f);
  std::vector<float> wave(grey.size());
  for (size_t i = 0; i < wave.size(); i++) wave[i] = 0.5f * sinf(i * 0.37f);

  double g = xnn.TopScore(grey), gp = plain.TopScore(grey);
  double w = xnn.TopScore(wave), wp = plain.TopScore(wave);
  printf("score grey %.6f\nscore wave %.6f\n", g, w);
  check(g < 0.5, "flat grey: top score " + std::to_string(g) + " < 0.5 (no face)");
  check(fabs(g - gp) < 1e-3 && fabs(w - wp) < 1e-3, "XNNPACK equals the plain interpreter within 1e-3 (grey, wave)");

  std::vector<unsigned char> rgb;
  if (argc > 2 && ReadFile(argv[2], &rgb)) {
    std::vector<float> face = FromRgb(rgb);
    double f = xnn.TopScore(face), fp = plain.TopScore(face);
    printf("score face %.6f\n", f);
    check(f > 0.8, "astronaut photo: top score " + std::to_string(f) + " > 0.8 (a face)");
    check(fabs(f - fp) < 1e-3, "XNNPACK equals the plain interpreter within 1e-3 (face)");
  } else {
    printf("ok %d - # SKIP no 128x128 rgb24 face image given\n", ++number);
  }

  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
