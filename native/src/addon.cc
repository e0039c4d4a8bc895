// N-API glue only: validate arguments, borrow TypedArray memory, call the active kernel
// table, turn sums into the statistics of daemon/analysis/native.ts. All math lives in
// the kernels and in kernels.h; nothing here is per-ISA.
// Wrong types or sizes throw a JS TypeError (C++ exceptions are disabled, so each check
// throws and returns at once). Calls are synchronous: a 160x90 batch of 64 frames takes
// well under a millisecond, less than an AsyncWorker round trip would cost.
#include <math.h>
#include <napi.h>

#include <vector>

#include "kernels.h"

namespace {

const ych::Kernels* gK = nullptr;  // chosen once in Init, process-wide like the CPU itself

bool typeError(Napi::Env env, const std::string& msg) {
  Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
  return false;
}

// Uint8Array (Buffer included) or Uint8ClampedArray; the pointer honours byteOffset.
bool bytesArg(const Napi::CallbackInfo& info, size_t i, const char* name, const uint8_t** p, size_t* n) {
  napi_value v = info[i];
  bool isTa = false;
  if (napi_is_typedarray(info.Env(), v, &isTa) == napi_ok && isTa) {
    napi_typedarray_type t;
    void* data = nullptr;
    if (napi_get_typedarray_info(info.Env(), v, &t, n, &data, nullptr, nullptr) == napi_ok &&
        (t == napi_uint8_array || t == napi_uint8_clamped_array)) {
      *p = static_cast<const uint8_t*>(data);
      return true;
    }
  }
  return typeError(info.Env(), std::string(name) + " must be a Uint8Array");
}

bool floatsArg(const Napi::CallbackInfo& info, size_t i, const char* name, const float** p, size_t* n) {
  napi_value v = info[i];
  bool isTa = false;
  if (napi_is_typedarray(info.Env(), v, &isTa) == napi_ok && isTa) {
    napi_typedarray_type t;
    void* data = nullptr;
    if (napi_get_typedarray_info(info.Env(), v, &t, n, &data, nullptr, nullptr) == napi_ok &&
        t == napi_float32_array) {
      *p = static_cast<const float*>(data);
      return true;
    }
  }
  return typeError(info.Env(), std::string(name) + " must be a Float32Array");
}

// Non-negative integer below 2^31 (a frame side, a count, a frame size).
bool intArg(const Napi::CallbackInfo& info, size_t i, const char* name, size_t min, size_t* out) {
  Napi::Value v = info[i];
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= static_cast<double>(min) && d < 2147483648.0 && floor(d) == d))
    return typeError(info.Env(), std::string(name) + " must be an integer >= " + std::to_string(min));
  *out = static_cast<size_t>(d);
  return true;
}

bool numberArg(const Napi::CallbackInfo& info, size_t i, const char* name, double* out) {
  Napi::Value v = info[i];
  if (!v.IsNumber()) return typeError(info.Env(), std::string(name) + " must be a number");
  *out = v.As<Napi::Number>().DoubleValue();
  return true;
}

bool sameLength(Napi::Env env, size_t na, size_t nb) {
  return na == nb || typeError(env, "a and b must have the same length (" + std::to_string(na) +
                                        " != " + std::to_string(nb) + ")");
}

// The frame must fit in the buffer; extra bytes after w*h*n are ignored.
bool fits(Napi::Env env, size_t len, size_t w, size_t h, size_t n) {
  double need = static_cast<double>(w) * static_cast<double>(h) * static_cast<double>(n);
  return need <= static_cast<double>(len) ||
         typeError(env, "buffer holds " + std::to_string(len) + " bytes, need w*h" +
                            (n == 1 ? std::string() : "*n") + " = " + std::to_string(static_cast<uint64_t>(need)));
}

Napi::Value Isa(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), gK->isa); }

Napi::Value Sad(const Napi::CallbackInfo& info) {
  const uint8_t *a = nullptr, *b = nullptr;
  size_t na, nb;
  if (!bytesArg(info, 0, "a", &a, &na) || !bytesArg(info, 1, "b", &b, &nb) || !sameLength(info.Env(), na, nb))
    return info.Env().Undefined();
  return Napi::Number::New(info.Env(), static_cast<double>(gK->sad(a, b, na)));
}

Napi::Value Ti(const Napi::CallbackInfo& info) {
  const uint8_t *a = nullptr, *b = nullptr;
  size_t na, nb;
  if (!bytesArg(info, 0, "a", &a, &na) || !bytesArg(info, 1, "b", &b, &nb) || !sameLength(info.Env(), na, nb))
    return info.Env().Undefined();
  ych::DiffSums d = gK->diff(a, b, na);
  return Napi::Number::New(info.Env(), ych::stdFromSums(static_cast<double>(d.sum), static_cast<double>(d.sumSq),
                                                        static_cast<double>(na)));
}

Napi::Value Sobel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint8_t* img = nullptr;
  size_t n, w, h;
  double t;
  if (!bytesArg(info, 0, "img", &img, &n) || !intArg(info, 1, "w", 0, &w) || !intArg(info, 2, "h", 0, &h) ||
      !numberArg(info, 3, "threshold", &t) || !fits(env, n, w, h, 1))
    return env.Undefined();
  ych::SobelStats st = ych::sobelStats(gK->sobel(img, w, h, ych::edgeThresholdSq(t)), w, h);
  Napi::Object o = Napi::Object::New(env);
  o.Set("si", st.si);
  o.Set("edgeDensity", st.edgeDensity);
  return o;
}

Napi::Value Histogram(const Napi::CallbackInfo& info) {
  const uint8_t* img = nullptr;
  size_t n;
  if (!bytesArg(info, 0, "img", &img, &n)) return info.Env().Undefined();
  Napi::Uint32Array out = Napi::Uint32Array::New(info.Env(), 256);
  gK->histogram(img, n, out.Data());
  return out;
}

Napi::Value Downscale2x(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint8_t* img = nullptr;
  size_t n, w, h;
  if (!bytesArg(info, 0, "img", &img, &n) || !intArg(info, 1, "w", 0, &w) || !intArg(info, 2, "h", 0, &h) ||
      !fits(env, n, w, h, 1))
    return env.Undefined();
  Napi::Uint8Array out = Napi::Uint8Array::New(env, (w / 2) * (h / 2));
  if (w >= 2 && h >= 2) gK->downscale2x(img, w, h, out.Data());
  return out;
}

Napi::Value AudioFeatures(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const float* pcm = nullptr;
  size_t n, frameSize;
  if (!floatsArg(info, 0, "pcm", &pcm, &n) || !intArg(info, 1, "frameSize", 1, &frameSize))
    return env.Undefined();
  size_t frames = n / frameSize;
  Napi::Float32Array out = Napi::Float32Array::New(env, frames * 5);
  std::vector<ych::AudioSums> sums(frames);
  if (frames) gK->audio(pcm, frameSize, frames, sums.data());
  for (size_t f = 0; f < frames; f++) ych::audioStats(sums[f], frameSize, out.Data() + f * 5);
  return out;
}

Napi::Value FrameFeatures(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint8_t* buf = nullptr;
  size_t len, w, h, n;
  double t;
  if (!bytesArg(info, 0, "frames", &buf, &len) || !intArg(info, 1, "w", 1, &w) || !intArg(info, 2, "h", 1, &h) ||
      !intArg(info, 3, "n", 0, &n) || !numberArg(info, 4, "edgeThreshold", &t) || !fits(env, len, w, h, n))
    return env.Undefined();
  const size_t px = w * h;
  const double dpx = static_cast<double>(px);
  const int32_t thrSq = ych::edgeThresholdSq(t);
  Napi::Float32Array out = Napi::Float32Array::New(env, n * 6);
  float* o = out.Data();
  for (size_t i = 0; i < n; i++, o += 6) {
    const uint8_t* cur = buf + i * px;
    ych::SobelStats st = ych::sobelStats(gK->sobel(cur, w, h, thrSq), w, h);
    ych::DiffSums l = gK->luma(cur, px);
    double diff = 0, ti = 0;
    if (i > 0) {
      diff = static_cast<double>(gK->sad(cur - px, cur, px)) / dpx;
      ych::DiffSums d = gK->diff(cur - px, cur, px);
      ti = ych::stdFromSums(static_cast<double>(d.sum), static_cast<double>(d.sumSq), dpx);
    }
    o[0] = static_cast<float>(diff);
    o[1] = static_cast<float>(st.si);
    o[2] = static_cast<float>(ti);
    o[3] = static_cast<float>(st.edgeDensity);
    o[4] = static_cast<float>(static_cast<double>(l.sum) / dpx);
    o[5] = static_cast<float>(ych::stdFromSums(static_cast<double>(l.sum), static_cast<double>(l.sumSq), dpx));
  }
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  const char* err = nullptr;
  gK = ych::activeKernels(&err);
  if (gK == nullptr) {  // require() fails with this message; the loader lists it
    Napi::Error::New(env, err).ThrowAsJavaScriptException();
    return exports;
  }
  exports.Set("isa", Napi::Function::New(env, Isa, "isa"));
  exports.Set("sad", Napi::Function::New(env, Sad, "sad"));
  exports.Set("sobel", Napi::Function::New(env, Sobel, "sobel"));
  exports.Set("ti", Napi::Function::New(env, Ti, "ti"));
  exports.Set("histogram", Napi::Function::New(env, Histogram, "histogram"));
  exports.Set("downscale2x", Napi::Function::New(env, Downscale2x, "downscale2x"));
  exports.Set("audioFeatures", Napi::Function::New(env, AudioFeatures, "audioFeatures"));
  exports.Set("frameFeatures", Napi::Function::New(env, FrameFeatures, "frameFeatures"));
  return exports;
}

}  // namespace

NODE_API_MODULE(yachay_native, Init)
