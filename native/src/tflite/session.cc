// TFLite C API calls for one session. Every pointer is owned here and freed in Free(),
// in the order the C API documents (interpreter, then delegate, then model).
#include "session.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

namespace ych_tflite {

namespace {

void ReporterThunk(void* user, const char* format, va_list args) {
  static_cast<Session*>(user)->Report(format, args);
}

// The 2.9 options struct starts with int32 num_threads followed by flags; the rest is
// zero-filled spare room so a longer struct in another build still reads zeros (defaults).
struct XnnpackOptions {
  int32_t num_threads;
  uint32_t flags;
  void* spare[6];
};

}  // namespace

const char* DTypeName(TfLiteType t) {
  switch (t) {
    case kTfLiteFloat32: return "float32";
    case kTfLiteInt32: return "int32";
    case kTfLiteInt64: return "int64";
    case kTfLiteUInt8: return "uint8";
    default: return nullptr;
  }
}

void Session::Report(const char* format, va_list args) {
  char buf[512];
  vsnprintf(buf, sizeof buf, format, args);
  if (!reported_.empty()) reported_ += "; ";
  reported_ += buf;
  // A model with a broken op can report in a loop: keep the message readable.
  if (reported_.size() > 2000) reported_.erase(0, reported_.size() - 2000);
}

bool Session::Fail(Failure f, const std::string& what) {
  failure_ = f;
  error_ = reported_.empty() ? what : what + ": " + reported_;
  reported_.clear();
  return false;
}

TfLiteInterpreter* Session::Build(TfLiteDelegate* delegate, int threads) {
  TfLiteInterpreterOptions* opts = TfLiteInterpreterOptionsCreate();
  TfLiteInterpreterOptionsSetNumThreads(opts, threads);
  TfLiteInterpreterOptionsSetErrorReporter(opts, ReporterThunk, this);
  if (delegate) TfLiteInterpreterOptionsAddDelegate(opts, delegate);
  TfLiteInterpreter* it = TfLiteInterpreterCreate(model_, opts);
  TfLiteInterpreterOptionsDelete(opts);
  return it;
}

bool Session::Open(const char* path, int threads, bool xnnpack) {
  Free();
  if (threads < 1) threads = 1;
  // TfLiteModelCreateFromFile verifies the flatbuffer, so junk or a truncated file is
  // refused here rather than crashing later inside the interpreter.
  model_ = TfLiteModelCreateFromFile(path);
  if (!model_) return Fail(Failure::kModel, std::string("not a TensorFlow Lite model: ") + path);

  if (xnnpack) {
    XnnpackOptions o;
    memset(&o, 0, sizeof o);
    o.num_threads = threads;
    delegate_ = TfLiteXNNPackDelegateCreate(&o);
    if (!delegate_) {
      delegateNote_ = "XNNPACK delegate could not be created (CPU not supported?)";
    } else {
      interpreter_ = Build(delegate_, threads);
      if (!interpreter_) {
        // The delegate refused the graph (an op it cannot take, or a CPU it does not know):
        // the plain interpreter still gives the same answers, only slower.
        delegateNote_ = "XNNPACK refused the graph: " + reported_;
        reported_.clear();
        TfLiteXNNPackDelegateDelete(delegate_);
        delegate_ = nullptr;
      }
    }
  } else {
    delegateNote_ = "XNNPACK off by request";
  }
  if (!interpreter_) interpreter_ = Build(nullptr, threads);
  if (!interpreter_) return Fail(Failure::kInterpreter, "cannot build a TensorFlow Lite interpreter for this model");
  if (TfLiteInterpreterAllocateTensors(interpreter_) != kTfLiteOk) {
    Free();
    return Fail(Failure::kInterpreter, "cannot allocate the model's tensors");
  }
  ReadMeta();
  reported_.clear();
  return true;
}

static TensorMeta Describe(const TfLiteTensor* t) {
  TensorMeta m;
  const char* name = TfLiteTensorName(t);
  m.name = name ? name : "";
  m.type = TfLiteTensorType(t);
  int32_t n = TfLiteTensorNumDims(t);
  for (int32_t d = 0; d < n; d++) m.dims.push_back(TfLiteTensorDim(t, d));
  m.bytes = TfLiteTensorByteSize(t);
  return m;
}

void Session::ReadMeta() {
  inputs_.clear();
  outputs_.clear();
  int32_t ni = TfLiteInterpreterGetInputTensorCount(interpreter_);
  for (int32_t i = 0; i < ni; i++) inputs_.push_back(Describe(TfLiteInterpreterGetInputTensor(interpreter_, i)));
  int32_t no = TfLiteInterpreterGetOutputTensorCount(interpreter_);
  for (int32_t i = 0; i < no; i++) outputs_.push_back(Describe(TfLiteInterpreterGetOutputTensor(interpreter_, i)));
}

bool Session::Run(const std::vector<std::vector<uint8_t>>& inputs, std::vector<std::vector<uint8_t>>* outputs,
                  std::vector<std::vector<int32_t>>* outputDims) {
  if (!interpreter_) return Fail(Failure::kRun, "session disposed");
  if (inputs.size() != inputs_.size()) return Fail(Failure::kRun, "wrong number of inputs");
  for (size_t i = 0; i < inputs.size(); i++) {
    TfLiteTensor* t = TfLiteInterpreterGetInputTensor(interpreter_, static_cast<int32_t>(i));
    if (TfLiteTensorCopyFromBuffer(t, inputs[i].data(), inputs[i].size()) != kTfLiteOk)
      return Fail(Failure::kRun, "input " + inputs_[i].name + ": size does not match the tensor");
  }
  if (TfLiteInterpreterInvoke(interpreter_) != kTfLiteOk) return Fail(Failure::kRun, "invoke failed");
  int32_t no = TfLiteInterpreterGetOutputTensorCount(interpreter_);
  outputs->assign(no, {});
  outputDims->assign(no, {});
  for (int32_t i = 0; i < no; i++) {
    const TfLiteTensor* t = TfLiteInterpreterGetOutputTensor(interpreter_, i);
    (*outputs)[i].resize(TfLiteTensorByteSize(t));
    if (TfLiteTensorCopyToBuffer(t, (*outputs)[i].data(), (*outputs)[i].size()) != kTfLiteOk)
      return Fail(Failure::kRun, "cannot read output " + outputs_[i].name);
    int32_t n = TfLiteTensorNumDims(t);
    for (int32_t d = 0; d < n; d++) (*outputDims)[i].push_back(TfLiteTensorDim(t, d));
  }
  return true;
}

void Session::Free() {
  if (interpreter_) TfLiteInterpreterDelete(interpreter_);
  interpreter_ = nullptr;
  if (delegate_) TfLiteXNNPackDelegateDelete(delegate_);
  delegate_ = nullptr;
  if (model_) TfLiteModelDelete(model_);
  model_ = nullptr;
}

}  // namespace ych_tflite
