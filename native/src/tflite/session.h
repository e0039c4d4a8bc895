// One TensorFlow Lite model + interpreter (+ XNNPACK delegate) as plain C++, no N-API:
// addon.cc wraps it for JavaScript, and the lifetime rules live here in one place.
// Not thread-safe: the addon never runs two invokes on one Session at once.
#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <string>
#include <vector>

#include "tensorflow/lite/c/c_api.h"

// The .so exports the XNNPACK delegate but ships no header for it (NOTES.md section 2).
extern "C" {
TfLiteDelegate* TfLiteXNNPackDelegateCreate(const void* options);
void TfLiteXNNPackDelegateDelete(TfLiteDelegate* delegate);
const char* TfLiteTypeGetName(TfLiteType type);
}

namespace ych_tflite {

struct TensorMeta {
  std::string name;
  TfLiteType type;
  std::vector<int32_t> dims;
  size_t bytes;
};

// What went wrong, so JavaScript can pick the error code: the model file is unreadable
// (kModel), the interpreter cannot be built (kInterpreter), or a run fails (kRun).
enum class Failure { kNone, kModel, kInterpreter, kRun };

class Session {
 public:
  Session() = default;
  ~Session() { Free(); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Loads `path` with `threads` CPU threads; tries XNNPACK first when asked, and builds a
  // plain interpreter when the delegate is refused (accelerator() then says "none" and
  // delegateNote() why). Returns false with failure()/error() set.
  bool Open(const char* path, int threads, bool xnnpack);

  const std::vector<TensorMeta>& inputs() const { return inputs_; }
  const std::vector<TensorMeta>& outputs() const { return outputs_; }
  const char* accelerator() const { return delegate_ ? "xnnpack" : "none"; }
  const std::string& delegateNote() const { return delegateNote_; }
  Failure failure() const { return failure_; }
  const std::string& error() const { return error_; }
  bool open() const { return interpreter_ != nullptr; }

  // inputs[i] must hold exactly inputs()[i].bytes bytes. On success outputs[i] holds output i
  // and outputDims[i] its dims after the run.
  bool Run(const std::vector<std::vector<uint8_t>>& inputs, std::vector<std::vector<uint8_t>>* outputs,
           std::vector<std::vector<int32_t>>* outputDims);

  // Interpreter before delegate before model: the interpreter holds pointers into both.
  void Free();

  // Error reporter hook: TFLite hands printf-style messages; the last ones end up in error().
  void Report(const char* format, va_list args);

 private:
  bool Fail(Failure f, const std::string& what);
  TfLiteInterpreter* Build(TfLiteDelegate* delegate, int threads);
  void ReadMeta();

  TfLiteModel* model_ = nullptr;
  TfLiteDelegate* delegate_ = nullptr;
  TfLiteInterpreter* interpreter_ = nullptr;
  std::vector<TensorMeta> inputs_, outputs_;
  std::string reported_;  // messages from the error reporter since the last Fail/Run
  std::string delegateNote_;
  std::string error_;
  Failure failure_ = Failure::kNone;
};

// "float32", "int32", ... (the names daemon/models/runtime.ts uses); nullptr when unsupported.
const char* DTypeName(TfLiteType t);

}  // namespace ych_tflite
