// N-API glue for session.h: a `Session` class whose run() is an AsyncWorker, so the copy
// in, the invoke and the copy out happen on the libuv pool and the LAN server keeps
// answering while a model runs on a Pi. Errors carry a `code` ("MODEL", "INTERPRETER",
// "RUN", "DISPOSED") that daemon/models/backends/tflite.ts turns into a YachayError.
#include <napi.h>
#include <string.h>

#include <memory>
#include <utility>

#include "session.h"

namespace {

using ych_tflite::Failure;
using ych_tflite::TensorMeta;

Napi::Error CodedError(Napi::Env env, const char* code, const std::string& msg) {
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

const char* FailureCode(Failure f) {
  switch (f) {
    case Failure::kModel: return "MODEL";
    case Failure::kInterpreter: return "INTERPRETER";
    default: return "RUN";
  }
}

bool NapiType(TfLiteType t, napi_typedarray_type* out) {
  switch (t) {
    case kTfLiteFloat32: *out = napi_float32_array; return true;
    case kTfLiteInt32: *out = napi_int32_array; return true;
    case kTfLiteInt64: *out = napi_bigint64_array; return true;
    case kTfLiteUInt8: *out = napi_uint8_array; return true;
    default: return false;
  }
}

size_t ElementSize(napi_typedarray_type t) {
  switch (t) {
    case napi_bigint64_array: return 8;
    case napi_float32_array:
    case napi_int32_array: return 4;
    default: return 1;
  }
}

Napi::Array Dims(Napi::Env env, const std::vector<int32_t>& dims) {
  Napi::Array a = Napi::Array::New(env, dims.size());
  for (size_t i = 0; i < dims.size(); i++) a.Set(i, Napi::Number::New(env, dims[i]));
  return a;
}

// Unsupported tensor types keep TFLite's own name ("FLOAT16"), so the loader can say which.
Napi::Array Describe(Napi::Env env, const std::vector<TensorMeta>& metas) {
  Napi::Array a = Napi::Array::New(env, metas.size());
  for (size_t i = 0; i < metas.size(); i++) {
    const char* dtype = ych_tflite::DTypeName(metas[i].type);
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", metas[i].name);
    o.Set("dtype", dtype ? dtype : TfLiteTypeGetName(metas[i].type));
    o.Set("shape", Dims(env, metas[i].dims));
    a.Set(i, o);
  }
  return a;
}

class SessionWrap;

class RunWorker : public Napi::AsyncWorker {
 public:
  RunWorker(Napi::Env env, SessionWrap* owner, Napi::Object self, std::vector<std::vector<uint8_t>> inputs);
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& e) override;

 private:
  void Done();
  Napi::Promise::Deferred deferred_;
  SessionWrap* owner_;
  Napi::ObjectReference self_;  // keeps the session alive (not collected) while we run
  std::vector<std::vector<uint8_t>> inputs_, outputs_;
  std::vector<std::vector<int32_t>> dims_;
};

class SessionWrap : public Napi::ObjectWrap<SessionWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Session", {
      InstanceAccessor<&SessionWrap::Accelerator>("accelerator"),
      InstanceAccessor<&SessionWrap::DelegateNote>("delegateNote"),
      InstanceAccessor<&SessionWrap::Inputs>("inputs"),
      InstanceAccessor<&SessionWrap::Outputs>("outputs"),
      InstanceMethod<&SessionWrap::Run>("run"),
      InstanceMethod<&SessionWrap::Dispose>("dispose"),
    });
  }

  // new Session(path, threads, xnnpack)
  explicit SessionWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SessionWrap>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsString() || !info[1].IsNumber() || !info[2].IsBoolean()) {
      Napi::TypeError::New(env, "Session(path: string, threads: number, xnnpack: boolean)").ThrowAsJavaScriptException();
      return;
    }
    std::string path = info[0].As<Napi::String>();
    int threads = info[1].As<Napi::Number>().Int32Value();
    if (!session_.Open(path.c_str(), threads, info[2].As<Napi::Boolean>())) {
      CodedError(env, FailureCode(session_.failure()), session_.error()).ThrowAsJavaScriptException();
    }
  }

  ych_tflite::Session& session() { return session_; }

  // Called on the main thread when a run ends: a dispose() that came in meanwhile
  // waited for the worker, and frees now.
  void RunEnded() {
    busy_ = false;
    if (disposeRequested_) session_.Free();
  }

 private:
  Napi::Value Accelerator(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), session_.accelerator()); }
  Napi::Value DelegateNote(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), session_.delegateNote()); }
  Napi::Value Inputs(const Napi::CallbackInfo& info) { return Describe(info.Env(), session_.inputs()); }
  Napi::Value Outputs(const Napi::CallbackInfo& info) { return Describe(info.Env(), session_.outputs()); }

  // run(inputs: TypedArray[] in input order) → Promise<{data, shape}[]> in output order.
  // The inputs are copied before returning, so the caller may reuse its arrays at once.
  Napi::Value Run(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (disposeRequested_ || !session_.open()) {
      CodedError(env, "DISPOSED", "the model session was disposed").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (busy_) {
      // The interpreter is not re-entrant; the TypeScript wrapper queues runs, so this is a bug.
      CodedError(env, "RUN", "a run is already in progress on this session").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    const auto& metas = session_.inputs();
    if (!info[0].IsArray() || info[0].As<Napi::Array>().Length() != metas.size()) {
      CodedError(env, "RUN", "run() takes an array with one typed array per input (" + std::to_string(metas.size()) + ")")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Array arr = info[0].As<Napi::Array>();
    std::vector<std::vector<uint8_t>> inputs(metas.size());
    for (size_t i = 0; i < metas.size(); i++) {
      Napi::Value v = arr.Get(i);
      napi_typedarray_type want;
      if (!NapiType(metas[i].type, &want) || !v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != want) {
        CodedError(env, "RUN", "input " + metas[i].name + ": wrong typed array type").ThrowAsJavaScriptException();
        return env.Undefined();
      }
      Napi::TypedArray ta = v.As<Napi::TypedArray>();
      size_t bytes = ta.ElementLength() * ElementSize(want);
      if (bytes != metas[i].bytes) {
        CodedError(env, "RUN", "input " + metas[i].name + ": " + std::to_string(bytes) + " bytes, expected " +
                   std::to_string(metas[i].bytes)).ThrowAsJavaScriptException();
        return env.Undefined();
      }
      const uint8_t* p = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
      inputs[i].assign(p, p + bytes);
    }
    busy_ = true;
    auto* w = new RunWorker(env, this, Value(), std::move(inputs));
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  }

  // Frees interpreter, delegate and model now, or when the run in progress ends.
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    disposeRequested_ = true;
    if (!busy_) session_.Free();
    return info.Env().Undefined();
  }

  ych_tflite::Session session_;
  bool busy_ = false;
  bool disposeRequested_ = false;
};

RunWorker::RunWorker(Napi::Env env, SessionWrap* owner, Napi::Object self, std::vector<std::vector<uint8_t>> inputs)
    : Napi::AsyncWorker(env, "yachay_tflite.run"),
      deferred_(Napi::Promise::Deferred::New(env)),
      owner_(owner),
      self_(Napi::Persistent(self)),
      inputs_(std::move(inputs)) {}

void RunWorker::Execute() {
  if (!owner_->session().Run(inputs_, &outputs_, &dims_)) SetError(owner_->session().error());
}

void RunWorker::OnOK() {
  Napi::Env env = Env();
  const auto& metas = owner_->session().outputs();
  Napi::Array out = Napi::Array::New(env, outputs_.size());
  for (size_t i = 0; i < outputs_.size(); i++) {
    napi_typedarray_type t;
    if (!NapiType(metas[i].type, &t)) {
      Napi::Error e = CodedError(env, "RUN", "output " + metas[i].name + " has an unsupported type");
      Done();
      deferred_.Reject(e.Value());
      return;
    }
    Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, outputs_[i].size());
    if (!outputs_[i].empty()) memcpy(ab.Data(), outputs_[i].data(), outputs_[i].size());
    napi_value ta;
    napi_create_typedarray(env, t, outputs_[i].size() / ElementSize(t), ab, 0, &ta);
    Napi::Object o = Napi::Object::New(env);
    o.Set("data", ta);
    o.Set("shape", Dims(env, dims_[i]));
    out.Set(i, o);
  }
  Done();
  deferred_.Resolve(out);
}

void RunWorker::OnError(const Napi::Error& e) {
  Done();
  deferred_.Reject(CodedError(Env(), "RUN", e.Message()).Value());
}

void RunWorker::Done() {
  owner_->RunEnded();
  self_.Reset();
}

Napi::Value Version(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), TfLiteVersion()); }

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("version", Napi::Function::New(env, Version));
  exports.Set("Session", SessionWrap::Define(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(yachay_tflite, Init)
