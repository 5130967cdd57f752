// An engine on a real backend, listening on 127.0.0.1 with an ephemeral
// port, and the events it reported: what the loopback tests of every backend
// (epoll_loopback_test, iocp_loopback_test) drive.
#ifndef ACCEPTPOOL_NATIVE_TESTS_LOOPBACK_SERVER_H_
#define ACCEPTPOOL_NATIVE_TESTS_LOOPBACK_SERVER_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/engine.h"

namespace acceptpool_test {

using namespace acceptpool;

// The bound on every wait in the loopback tests.
constexpr int kWaitMs = 5000;

struct Event {
  EventType type;
  SessionId id;
  double a;
  double b;
  std::string data;
  // kClose: a = reason, b = error word; kConnectFailed: a = token, b = error word.
  uint32_t reason() const { return static_cast<uint32_t>(a); }
  SysError error() const { return DecodeErrorWord(b).sys; }
  int32_t raw() const { return DecodeErrorWord(b).raw; }
  uint32_t token() const { return static_cast<uint32_t>(a); }
};

inline EngineConfig LoopbackConfig() {
  EngineConfig c;
  c.pool.initial = 4;
  c.pool.chunk = 4;
  c.pool.max_sessions = 64;
  c.pool.low_water = 1;
  c.pool.shrink_idle_ticks = 30;
  c.listen.backlog = 511;
  c.no_delay = true;
  c.high_water_mark = 64 * 1024;
  c.max_queued_bytes = 64 * 1024 * 1024;
  c.accept_batch = 128;
  c.close_linger_ms = 5000;
  return c;
}

class LoopbackServer {
 public:
  LoopbackServer(const EngineConfig& config, std::unique_ptr<Backend> backend)
      : batch_(1024, 1 << 20), backend_(backend.get()) {
    engine_ = std::make_unique<Engine>(config, std::move(backend));
    status_ = engine_->Init();
    if (!status_.ok()) return;
    engine_->SetBatch(&batch_);
    SocketAddress local;
    local.family = 4;
    local.addr[0] = 127;
    local.addr[3] = 1;
    status_ = engine_->Listen(local, &bound_);
  }

  bool ok() const { return status_.ok(); }
  uint16_t port() const { return bound_.port; }
  Engine& engine() { return *engine_; }
  // The engine's backend, for what only a test asks it directly.
  Backend& backend() { return *backend_; }
  std::vector<Event>& events() { return events_; }

  // Polls until `done` holds or the deadline passes; true if it held.
  bool PollUntil(const std::function<bool()>& done, int ms = kWaitMs) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      engine_->Poll(10);
      Collect();
    }
    return true;
  }
  void PollOnce(int ms = 10) {
    engine_->Poll(ms);
    Collect();
  }

  const Event* Find(EventType type, SessionId id = 0) const {
    for (const Event& e : events_) {
      if (e.type == type && (id == 0 || e.id == id)) return &e;
    }
    return nullptr;
  }
  // The id of the n-th session event (0-based), or 0.
  SessionId SessionAt(size_t n) const {
    for (const Event& e : events_) {
      if (e.type == EventType::kSession && n-- == 0) return e.id;
    }
    return 0;
  }
  size_t Sessions() const {
    size_t n = 0;
    for (const Event& e : events_) n += e.type == EventType::kSession ? 1 : 0;
    return n;
  }
  std::string DataOf(SessionId id) const {
    std::string out;
    for (const Event& e : events_) {
      if (e.type == EventType::kData && e.id == id) out += e.data;
    }
    return out;
  }

 private:
  void Collect() {
    for (size_t i = 0; i < batch_.count(); ++i) {
      const EventRecord& r = batch_.records()[i];
      Event e{static_cast<EventType>(static_cast<int>(r.type)), static_cast<SessionId>(r.id), r.a,
              r.b, std::string()};
      if (e.type == EventType::kSession || e.type == EventType::kData) {
        e.data.assign(batch_.data() + static_cast<size_t>(r.a), static_cast<size_t>(r.b));
      }
      events_.push_back(std::move(e));
    }
    batch_.Clear();
  }

  EventBatch batch_;
  Backend* backend_;  // owned by engine_
  std::unique_ptr<Engine> engine_;
  Status status_;
  SocketAddress bound_;
  std::vector<Event> events_;
};

}  // namespace acceptpool_test

#endif  // ACCEPTPOOL_NATIVE_TESTS_LOOPBACK_SERVER_H_
