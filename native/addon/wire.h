// binding.wire: the wire lists of native/core (core/wire.h names them all)
// as JS reads them, so src/wire.ts copies no value.
#ifndef ACCEPTPOOL_ADDON_WIRE_H_
#define ACCEPTPOOL_ADDON_WIRE_H_

#include <node_api.h>

namespace acceptpool {

// A frozen object of the lists (null after a failed step).
napi_value MakeWire(napi_env env);

}  // namespace acceptpool

#endif  // ACCEPTPOOL_ADDON_WIRE_H_
