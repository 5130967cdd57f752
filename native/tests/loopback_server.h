// An engine on a real backend, listening on 127.0.0.1 with an ephemeral
// port, and the events it reported: what the loopback tests of every backend
// (epoll_loopback_test, libuv_loopback_test, iocp_loopback_test) drive. On
// POSIX systems also the blocking clients those tests talk to it with.
#ifndef ACCEPTPOOL_NATIVE_TESTS_LOOPBACK_SERVER_H_
#define ACCEPTPOOL_NATIVE_TESTS_LOOPBACK_SERVER_H_

#if !defined(_WIN32)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#endif

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

// 127.0.0.1:`port`.
inline SocketAddress Loopback(uint16_t port) {
  SocketAddress a;
  a.family = 4;
  a.addr[0] = 127;
  a.addr[3] = 1;
  a.port = port;
  return a;
}

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
    status_ = engine_->Listen(Loopback(0), &bound_);
  }
  // Listening on a Unix domain socket at `unix_path` instead (port() is 0).
  LoopbackServer(const EngineConfig& config, std::unique_ptr<Backend> backend,
                 const std::string& unix_path)
      : batch_(1024, 1 << 20), backend_(backend.get()) {
    engine_ = std::make_unique<Engine>(config, std::move(backend));
    status_ = engine_->Init();
    if (!status_.ok()) return;
    engine_->SetBatch(&batch_);
    status_ = engine_->ListenPath(unix_path.c_str(), config.listen, &bound_);
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

#if !defined(_WIN32)

#if !defined(MSG_NOSIGNAL)
// macOS has no MSG_NOSIGNAL; its tests ignore SIGPIPE instead.
#define MSG_NOSIGNAL 0
#endif

// A blocking loopback client with receive and send timeouts (and, if given,
// a small receive buffer, so the server's sends back up sooner).
inline int Connect(uint16_t port, int rcvbuf = 0) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  timeval tv{kWaitMs / 1000, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

inline bool SendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Reads exactly n bytes (or fewer on timeout / EOF).
inline std::string RecvExactly(int fd, size_t n) {
  std::string out;
  char buf[65536];
  while (out.size() < n) {
    ssize_t r = recv(fd, buf, std::min(sizeof(buf), n - out.size()), 0);
    if (r <= 0) break;
    out.append(buf, static_cast<size_t>(r));
  }
  return out;
}

// Bytes readable within `ms`, without blocking longer; -1 on EOF/error with
// nothing read.
inline std::string RecvAvailable(int fd, int ms, bool* eof = nullptr) {
  std::string out;
  pollfd p{fd, POLLIN, 0};
  while (poll(&p, 1, ms) == 1) {
    char buf[4096];
    ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (r <= 0) {
      if (eof != nullptr) *eof = true;
      break;
    }
    out.append(buf, static_cast<size_t>(r));
    ms = 20;
  }
  return out;
}

inline std::string Bytes(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 7;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    s[i] = static_cast<char>(x >> 23);
  }
  return s;
}

inline uint16_t LocalPort(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return ntohs(addr.sin_port);
}

// What a peer that uploads without pause while it reads saw of the server.
struct UploadResult {
  std::string received;
  bool eof = false;
  int error = 0;  // errno of a failed send/recv, or SO_ERROR at the end
};

// Uploads at least `min_bytes` as fast as the server takes them while
// reading everything; ends once it has both sent that much and seen the
// server's EOF, then waits for the connection to finish.
inline UploadResult UploadUntilEof(int fd, size_t min_bytes) {
  UploadResult r;
  std::string block = Bytes(64 * 1024, 11);
  size_t sent = 0;
  bool shut = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kWaitMs);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!shut && r.eof && sent >= min_bytes) {
      shutdown(fd, SHUT_WR);
      shut = true;
    }
    pollfd p{fd, static_cast<short>(POLLIN | (shut ? 0 : POLLOUT)), 0};
    if (poll(&p, 1, 100) <= 0) {
      if (shut) break;  // quiet after both FINs: done
      continue;
    }
    if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0 && !r.eof) {
      char buf[65536];
      ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (n > 0) r.received.append(buf, static_cast<size_t>(n));
      if (n == 0) r.eof = true;
      if (n < 0 && errno != EAGAIN) {
        r.error = errno;
        return r;
      }
    }
    if ((p.revents & POLLERR) != 0 || (shut && r.eof && (p.revents & POLLHUP) != 0)) break;
    if (!shut && (p.revents & POLLOUT) != 0) {
      ssize_t n = send(fd, block.data(), block.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<size_t>(n);
      if (n < 0 && errno != EAGAIN) {
        r.error = errno;
        return r;
      }
    }
  }
  int err = 0;
  socklen_t len = sizeof(err);
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  r.error = err;
  return r;
}

#endif  // !_WIN32

}  // namespace acceptpool_test

#endif  // ACCEPTPOOL_NATIVE_TESTS_LOOPBACK_SERVER_H_
