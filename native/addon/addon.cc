// Module entry: the NativeServer class and the tables JS needs to decode
// events (error names by SysError index).
#include <napi.h>

#include "addon/native_load_generator.h"
#include "addon/native_server.h"
#include "backends/make_backend.h"
#include "core/status.h"

namespace acceptpool {
namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeServer", NativeServer::Define(env));
  exports.Set("NativeLoadGenerator", NativeLoadGenerator::Define(env));
  Napi::Array names = Napi::Array::New(env);
  for (uint32_t i = 0; i < static_cast<uint32_t>(SysError::kCount); ++i) {
    names.Set(i, Napi::String::New(env, SysErrorName(static_cast<SysError>(i))));
  }
  exports.Set("errorNames", names);
  exports.Set("platformBackend", Napi::String::New(env, PlatformBackendName()));
  return exports;
}

}  // namespace
}  // namespace acceptpool

// The macro pastes its second argument into a name: it must be unqualified.
static Napi::Object InitAcceptPool(Napi::Env env, Napi::Object exports) {
  return acceptpool::Init(env, exports);
}

NODE_API_MODULE(acceptpool, InitAcceptPool)
