// Module entry: the NativeServer and NativeLoadGenerator classes and the wire
// lists JS decodes events with (addon/wire.h). Raw Node-API with checked
// statuses, like every object here (see js.h): a worker may be terminated
// while it loads the module.
#include <node_api.h>

#include "addon/js.h"
#include "addon/native_load_generator.h"
#include "addon/native_server.h"
#include "addon/wire.h"

namespace acceptpool {
namespace {

napi_value Init(napi_env env, napi_value exports) {
  napi_value server = NativeServer::Define(env);
  napi_value generator = NativeLoadGenerator::Define(env);
  napi_value wire = MakeWire(env);
  if (server == nullptr || generator == nullptr || wire == nullptr ||
      napi_set_named_property(env, exports, "NativeServer", server) != napi_ok ||
      napi_set_named_property(env, exports, "NativeLoadGenerator", generator) != napi_ok ||
      napi_set_named_property(env, exports, "wire", wire) != napi_ok) {
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
