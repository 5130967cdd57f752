// What a driver needs from the loop of the thread that runs JS, and nothing
// more: a wake-up that any thread may send, and a watcher for a readable
// descriptor. The drivers build against this alone, without libuv or Node:
// the addon implements it on Node's own loop with libuv (uv_async, uv_poll:
// addon/uv_event_loop.h), native tests with a small loop of their own
// (tests/test_loop.h).
//
// Callbacks run on the loop's thread, never inside Send(). Destroying a
// handle (on the loop's thread) stops it at once: no callback of it runs
// after its destructor returns.
#ifndef ACCEPTPOOL_DRIVERS_EVENT_LOOP_H_
#define ACCEPTPOOL_DRIVERS_EVENT_LOOP_H_

#include <memory>

#include "core/status.h"

namespace acceptpool {

using LoopCallback = void (*)(void* context);

// Calls back once on the loop's thread after one or more Send()s.
class LoopAsync {
 public:
  virtual ~LoopAsync() = default;
  // Safe from any thread while the handle exists.
  virtual void Send() = 0;
  // Whether the handle keeps the loop alive (default: it does).
  virtual void SetRef(bool ref) = 0;
};

// Calls back on the loop's thread while a descriptor is readable.
class LoopWatcher {
 public:
  virtual ~LoopWatcher() = default;
  virtual void SetRef(bool ref) = 0;
};

class EventLoop {
 public:
  virtual ~EventLoop() = default;
  virtual Status NewAsync(LoopCallback callback, void* context,
                          std::unique_ptr<LoopAsync>* out) = 0;
  virtual Status WatchReadable(int descriptor, LoopCallback callback, void* context,
                               std::unique_ptr<LoopWatcher>* out) = 0;
};

}  // namespace acceptpool

#endif  // ACCEPTPOOL_DRIVERS_EVENT_LOOP_H_
