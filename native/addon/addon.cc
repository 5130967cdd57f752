// Module entry: the NativeServer and NativeLoadGenerator classes, the wire
// lists JS decodes events with (addon/wire.h), the backends compiled in and
// the descriptor limit. Raw Node-API with checked statuses, like every object
// here (see js.h): a worker may be terminated while it loads the module.
#include <node_api.h>

#if !defined(_WIN32)
#include <sys/resource.h>
#endif

#include "addon/backend_choice.h"
#include "addon/js.h"
#include "addon/native_load_generator.h"
#include "addon/native_server.h"
#include "addon/wire.h"

namespace acceptpool {
namespace {

// descriptorLimit() -> the soft RLIMIT_NOFILE: how many descriptors, and so
// connections, this process may hold; null where there is no such limit
// (Windows counts sockets against none) or it is unlimited. Node has no API
// for it.
napi_value DescriptorLimit(napi_env env, napi_callback_info) {
  napi_value none = nullptr;
  if (napi_get_null(env, &none) != napi_ok) return nullptr;
#if defined(_WIN32)
  return none;
#else
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return none;
  return js::Number(env, static_cast<double>(limit.rlim_cur));
#endif
}

// The names of the backends this build has, 'auto''s choices first.
napi_value Backends(napi_env env) {
  size_t count = 0;
  const BackendChoice* backends = CompiledBackends(&count);
  napi_value list = nullptr;
  if (napi_create_array_with_length(env, count, &list) != napi_ok) return nullptr;
  for (size_t i = 0; i < count; ++i) {
    napi_value name = js::String(env, backends[i].name);
    if (name == nullptr || napi_set_element(env, list, static_cast<uint32_t>(i), name) != napi_ok)
      return nullptr;
  }
  return list;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_value server = NativeServer::Define(env);
  napi_value generator = NativeLoadGenerator::Define(env);
  napi_value wire = MakeWire(env);
  napi_value backends = Backends(env);
  napi_value default_backend = js::String(env, DefaultBackend());
  napi_value descriptor_limit = nullptr;
  if (server == nullptr || generator == nullptr || wire == nullptr || backends == nullptr ||
      default_backend == nullptr ||
      napi_create_function(env, "descriptorLimit", NAPI_AUTO_LENGTH, &DescriptorLimit, nullptr,
                           &descriptor_limit) != napi_ok ||
      napi_set_named_property(env, exports, "NativeServer", server) != napi_ok ||
      napi_set_named_property(env, exports, "NativeLoadGenerator", generator) != napi_ok ||
      napi_set_named_property(env, exports, "wire", wire) != napi_ok ||
      napi_set_named_property(env, exports, "backends", backends) != napi_ok ||
      napi_set_named_property(env, exports, "defaultBackend", default_backend) != napi_ok ||
      napi_set_named_property(env, exports, "descriptorLimit", descriptor_limit) != napi_ok) {
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
