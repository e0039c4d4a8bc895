// sd_notify(3) without libsystemd: one datagram to the Unix socket systemd names in
// NOTIFY_SOCKET. Node has no Unix datagram sockets, and a shell-out per watchdog ping would
// fork a process every 30 s for months; this is a dozen lines of the socket API instead.
#include <napi.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace {

// notify(socketPath, message) → true when the datagram was sent. A path starting with '@' is
// in the abstract namespace (systemd uses those too).
Napi::Value Notify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString()) {
    Napi::TypeError::New(env, "notify(socketPath: string, message: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  const std::string msg = info[1].As<Napi::String>().Utf8Value();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    Napi::RangeError::New(env, "NOTIFY_SOCKET path is empty or too long").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  socklen_t len = offsetof(sockaddr_un, sun_path) + path.size();
  if (path[0] == '@') addr.sun_path[0] = '\0';
  else len += 1;  // the terminating NUL of a filesystem path
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Napi::Boolean::New(env, false);
  ssize_t sent = sendto(fd, msg.data(), msg.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr), len);
  int err = errno;
  close(fd);
  if (sent < 0) {
    Napi::Error e = Napi::Error::New(env, std::string("sd_notify: ") + std::strerror(err));
    e.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Boolean::New(env, static_cast<size_t>(sent) == msg.size());
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("notify", Napi::Function::New(env, Notify, "notify"));
  return exports;
}

}  // namespace

NODE_API_MODULE(yachay_sys, Init)
