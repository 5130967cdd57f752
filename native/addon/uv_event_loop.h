// The drivers' EventLoop on Node's own libuv loop: LoopAsync is a uv_async,
// LoopWatcher a uv_poll, both on the loop of the environment that made them.
#ifndef ACCEPTPOOL_ADDON_UV_EVENT_LOOP_H_
#define ACCEPTPOOL_ADDON_UV_EVENT_LOOP_H_

#include <node_api.h>

#include <memory>

#include "drivers/event_loop.h"

namespace acceptpool {

// The loop of `env` (null if Node cannot give it, e.g. while the environment
// is going away).
std::unique_ptr<EventLoop> MakeNodeEventLoop(napi_env env);

}  // namespace acceptpool

#endif  // ACCEPTPOOL_ADDON_UV_EVENT_LOOP_H_
