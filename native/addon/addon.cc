// Module entry: the NativeServer and NativeLoadGenerator classes and the
// tables JS needs to decode events (error names by SysError index). Raw
// Node-API with checked statuses, like every object here (see js.h): a worker
// may be terminated while it loads the module.
#include <node_api.h>

#include "addon/js.h"
#include "addon/native_load_generator.h"
#include "addon/native_server.h"
#include "backends/make_backend.h"
#include "core/status.h"

namespace acceptpool {
namespace {

napi_value Init(napi_env env, napi_value exports) {
  napi_value names = nullptr;
  if (napi_create_array_with_length(env, static_cast<size_t>(SysError::kCount), &names) != napi_ok) {
    return nullptr;
  }
  for (uint32_t i = 0; i < static_cast<uint32_t>(SysError::kCount); ++i) {
    napi_value name = js::String(env, SysErrorName(static_cast<SysError>(i)));
    if (name == nullptr || napi_set_element(env, names, i, name) != napi_ok) return nullptr;
  }
  napi_value server = NativeServer::Define(env);
  napi_value generator = NativeLoadGenerator::Define(env);
  napi_value backend = js::String(env, PlatformBackendName());
  if (server == nullptr || generator == nullptr || backend == nullptr ||
      napi_set_named_property(env, exports, "NativeServer", server) != napi_ok ||
      napi_set_named_property(env, exports, "NativeLoadGenerator", generator) != napi_ok ||
      napi_set_named_property(env, exports, "errorNames", names) != napi_ok ||
      napi_set_named_property(env, exports, "platformBackend", backend) != napi_ok) {
    return nullptr;
  }
  return exports;
}

}  // namespace
}  // namespace acceptpool

// The macro pastes its second argument into a name: it must be unqualified.
static napi_value InitAcceptPool(napi_env env, napi_value exports) {
  return acceptpool::Init(env, exports);
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, InitAcceptPool)
