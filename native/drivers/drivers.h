// The two ways to drive an engine, behind one interface, on the loop of the
// JS thread (drivers/event_loop.h; no libuv, no Node-API here).
//
// Inline: the backend's descriptor is watched by that loop; polling and
// dispatch happen on the JS thread, commands act at once.
// Threaded: an I/O thread per engine (threads: N) blocks in its backend; JS
// commands travel through a bounded CommandQueue per thread, each to the
// thread that owns the session its id names, and batches come back through
// a bounded set of EventBatches per thread and one LoopAsync wake per
// hand-off.
#ifndef ACCEPTPOOL_DRIVERS_DRIVERS_H_
#define ACCEPTPOOL_DRIVERS_DRIVERS_H_

#include <functional>
#include <memory>
#include <vector>

#include "core/engine.h"
#include "core/event_batch.h"
#include "drivers/event_loop.h"

namespace acceptpool {

// Copies a batch to JS and clears it (before JS runs, so commands issued by
// handlers write their events into the emptied batch).
using DeliverFn = std::function<void(EventBatch&)>;

// Batches in flight between the threaded driver's I/O thread and JS; when
// all are with JS, the I/O thread stops reading and accepting until one
// comes back. With one read of at most kReadChunk per session per batch, it
// also bounds what reaches JS after pause() (README, "Flow control").
constexpr size_t kThreadedBatches = 4;

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
  virtual Status Connect(uint32_t token, const SocketAddress& remote,
                         const SocketAddress* local) = 0;
  virtual void AbortConnect(uint32_t token) = 0;
  virtual SendResult Send(SessionId id, const char* data, size_t size) = 0;
  virtual bool Close(SessionId id, CloseMode mode) = 0;
  // Engine::Control. Threaded: always true here; a stale id comes back as
  // a kStale record naming the control.
  virtual bool Control(SessionId id, SessionControl control, uint32_t a, uint32_t b) = 0;
  // Sessions reached (the threaded driver can only count the ids it was
  // given, or the open sessions it last knew of).
  virtual uint32_t Broadcast(const char* data, size_t size, const SessionId* ids, size_t count) = 0;
  virtual int64_t BufferedAmount(SessionId id) = 0;
  // Engine::Query, answered synchronously. Threaded: a round trip to the
  // I/O thread, which answers between polls (tens of microseconds); for
  // getters JS calls now and then, never per event.
  virtual bool Query(SessionId id, SessionInfo* out) = 0;
  virtual void Shutdown() = 0;
  // Engine::Drain: stop accepting, let the sessions end on their own.
  virtual void Drain() = 0;
  // The endpoint's counters; each engine's too in `per_thread` if given.
  virtual Stats GetStats(std::vector<Stats>* per_thread) = 0;
  virtual void SetRef(bool ref) = 0;
  // Stops at once (close, or environment teardown): the I/O thread is
  // joined and the loop handles are closed when it returns; no more events.
  virtual void Stop() = 0;
};

std::unique_ptr<Driver> MakeInlineDriver(Engine* engine, const BatchLimits& limits,
                                         DeliverFn deliver);
std::unique_ptr<Driver> MakeThreadedDriver(Engine* engine, const BatchLimits& limits,
                                           DeliverFn deliver);
// One I/O thread per engine: the engines of one endpoint, in thread order
// (engine t has IdSpace thread t of engines.size()).
std::unique_ptr<Driver> MakeThreadedDriver(const std::vector<Engine*>& engines,
                                           const BatchLimits& limits, DeliverFn deliver);

}  // namespace acceptpool

#endif  // ACCEPTPOOL_DRIVERS_DRIVERS_H_
