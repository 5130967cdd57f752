// The two ways to drive an engine, behind one interface, on the loop of the
// JS thread (drivers/event_loop.h; no libuv, no Node-API here).
//
// Inline: the backend's descriptor is watched by that loop; polling and
// dispatch happen on the JS thread, commands act at once.
// Threaded: an I/O thread blocks in the backend; JS commands travel through a
// bounded CommandQueue and batches come back through a bounded set of
// EventBatches and one LoopAsync wake per hand-off.
#ifndef ACCEPTPOOL_DRIVERS_DRIVERS_H_
#define ACCEPTPOOL_DRIVERS_DRIVERS_H_

#include <functional>
#include <memory>

#include "core/engine.h"
#include "core/event_batch.h"
#include "drivers/event_loop.h"

namespace acceptpool {

// Copies a batch to JS and clears it (before JS runs, so commands issued by
// handlers write their events into the emptied batch).
using DeliverFn = std::function<void(EventBatch&)>;

struct BatchLimits {
  size_t records = 8192;
  size_t data_bytes = 512 * 1024;
};

class Driver {
 public:
  virtual ~Driver() = default;
  virtual const char* name() const = 0;
  // Starts driving the engine; callbacks run on `loop`'s thread (the JS
  // thread), which must outlive neither the driver nor Stop().
  virtual Status Start(EventLoop* loop) = 0;
  // Starts an outgoing connect. Inline: errors that stop it from starting
  // come back here; threaded: always Ok here, failures arrive as
  // kConnectFailed events carrying `token`.
  virtual Status Connect(uint32_t token, const SocketAddress& remote, const SocketAddress* local) = 0;
  virtual void AbortConnect(uint32_t token) = 0;
  virtual SendResult Send(SessionId id, const char* data, size_t size) = 0;
  virtual bool Close(SessionId id, CloseMode mode) = 0;
  // Sessions reached (the threaded driver can only count the ids it was
  // given, or the open sessions it last knew of).
  virtual uint32_t Broadcast(const char* data, size_t size, const SessionId* ids, size_t count) = 0;
  virtual int64_t BufferedAmount(SessionId id) = 0;
  virtual void Shutdown() = 0;
  // Engine::Drain: stop accepting, let the sessions end on their own.
  virtual void Drain() = 0;
  virtual Stats GetStats() = 0;
  virtual void SetRef(bool ref) = 0;
  // Stops at once (close, or environment teardown): the I/O thread is
  // joined and the loop handles are closed when it returns; no more events.
  virtual void Stop() = 0;
};

std::unique_ptr<Driver> MakeInlineDriver(Engine* engine, const BatchLimits& limits, DeliverFn deliver);
std::unique_ptr<Driver> MakeThreadedDriver(Engine* engine, const BatchLimits& limits,
                                           DeliverFn deliver);

}  // namespace acceptpool

#endif  // ACCEPTPOOL_DRIVERS_DRIVERS_H_
