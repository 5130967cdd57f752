// The inline and threaded drivers on the real epoll backend over loopback,
// driven by a loop of the tests' own (test_loop.h) in the role of Node's:
// teardown mid-traffic (Stop while the I/O thread is busy, while JS is
// behind, with commands still queued), and no callback after Stop. Run under
// ASan (leaks, use after free) and TSan (the I/O thread against the JS one).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "backends/epoll/epoll_backend.h"
#include "core/engine.h"
#include "drivers/drivers.h"
#include "test_loop.h"
#include "test_main.h"

using namespace acceptpool;
using acceptpool_test::TestLoop;

namespace {

constexpr int kWaitMs = 5000;

// Loopback clients that stream `chunk`-byte writes and read the echo, on a
// thread of their own, until stopped. Each keeps at most kWindow bytes
// unanswered, so the server's queues stay small and traffic keeps flowing.
class StreamingClients {
 public:
  static constexpr size_t kWindow = 64 * 1024;

  StreamingClients(uint16_t port, int count, size_t chunk) : chunk_(chunk, 'x') {
    for (int i = 0; i < count; ++i) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(port);
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        if (fd >= 0) close(fd);
        continue;
      }
      fds_.push_back(fd);
    }
    thread_ = std::thread([this] { Run(); });
  }
  ~StreamingClients() {
    Stop();
    for (int fd : fds_) close(fd);
  }

  void Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  size_t connected() const { return fds_.size(); }
  uint64_t received() const { return received_.load(); }

 private:
  void Run() {
    std::vector<uint64_t> outstanding(fds_.size(), 0);
    std::vector<bool> dead(fds_.size(), false);
    char buf[65536];
    while (!stop_.load()) {
      std::vector<pollfd> p;
      for (size_t i = 0; i < fds_.size(); ++i) {
        short events = POLLIN;
        if (outstanding[i] < kWindow) events |= POLLOUT;
        p.push_back(pollfd{dead[i] ? -1 : fds_[i], events, 0});
      }
      if (poll(p.data(), p.size(), 5) <= 0) continue;
      for (size_t i = 0; i < p.size(); ++i) {
        if (dead[i]) continue;
        if ((p[i].revents & POLLOUT) != 0) {
          ssize_t n = send(fds_[i], chunk_.data(), chunk_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
          if (n > 0) outstanding[i] += static_cast<uint64_t>(n);
        }
        if ((p[i].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
          ssize_t n = recv(fds_[i], buf, sizeof(buf), MSG_DONTWAIT);
          if (n > 0) {
            received_ += static_cast<uint64_t>(n);
            outstanding[i] -= std::min<uint64_t>(outstanding[i], static_cast<uint64_t>(n));
          } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
            dead[i] = true;
          }
        }
      }
    }
  }

  std::string chunk_;
  std::vector<int> fds_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> received_{0};
  std::thread thread_;
};

// An echo server: an engine on epoll and a driver, with the test loop as
// the JS thread. Deliver copies a batch out, clears it, then echoes every
// data record, as NativeServer hands a batch to JS and JS answers.
class EchoServer {
 public:
  EchoServer(bool threaded, size_t batch_records = 1024, size_t batch_bytes = 256 * 1024) {
    EngineConfig config;
    config.pool.initial = 64;
    config.pool.chunk = 64;
    config.pool.max_sessions = 256;
    config.pool.low_water = 4;
    config.pool.shrink_idle_ticks = 30;
    config.listen.backlog = 511;
    config.no_delay = true;
    config.high_water_mark = 64 * 1024;
    config.max_queued_bytes = 16 * 1024 * 1024;
    config.accept_batch = 128;
    engine_ = std::make_unique<Engine>(config, MakeEpollBackend());
    status_ = engine_->Init();
    SocketAddress local;
    local.family = 4;
    local.addr[0] = 127;
    local.addr[3] = 1;
    if (status_.ok()) status_ = engine_->Listen(local, &bound_);
    BatchLimits limits;
    limits.records = batch_records;
    limits.data_bytes = batch_bytes;
    auto deliver = [this](EventBatch& batch) { Deliver(batch); };
    driver_ = threaded ? MakeThreadedDriver(engine_.get(), limits, deliver)
                       : MakeInlineDriver(engine_.get(), limits, deliver);
    if (status_.ok()) status_ = driver_->Start(&loop_);
  }
  // The order NativeServer tears down in: the driver (whose destructor
  // stops it, if Stop() was not called), then the engine.
  ~EchoServer() {
    driver_.reset();
    engine_.reset();
  }

  bool ok() const { return status_.ok(); }
  uint16_t port() const { return bound_.port; }
  Engine& engine() { return *engine_; }
  // Destroys the driver and leaves the engine.
  void DropDriver() { driver_.reset(); }
  const std::vector<SessionId>& ids() const { return ids_; }
  TestLoop& loop() { return loop_; }
  Driver& driver() { return *driver_; }
  uint64_t deliveries() const { return deliveries_; }
  uint64_t sessions() const { return sessions_; }
  void set_echo(bool on) { echo_ = on; }
  // Sends to every session seen so far (commands queued by "JS").
  void SendToAll(const std::string& bytes) {
    for (SessionId id : ids_) driver_->Send(id, bytes.data(), bytes.size());
  }

  // Stops the driver and reports how long it took.
  std::chrono::milliseconds Stop() {
    auto start = std::chrono::steady_clock::now();
    driver_->Stop();
    stopped_ = true;
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  }
  uint64_t deliveries_after_stop() const { return after_stop_; }

 private:
  void Deliver(EventBatch& batch) {
    ++deliveries_;
    if (stopped_) ++after_stop_;
    records_.assign(batch.records(), batch.records() + batch.count());
    data_.assign(batch.data(), batch.data() + batch.data_used());
    batch.Clear();
    for (const EventRecord& r : records_) {
      auto type = static_cast<EventType>(static_cast<int>(r.type));
      auto id = static_cast<SessionId>(r.id);
      if (type == EventType::kSession) {
        ++sessions_;
        ids_.push_back(id);
      } else if (type == EventType::kData && echo_) {
        driver_->Send(id, data_.data() + static_cast<size_t>(r.a), static_cast<size_t>(r.b));
      }
    }
  }

  TestLoop loop_;  // outlives the driver, as Node's loop outlives NativeServer
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Driver> driver_;
  Status status_;
  SocketAddress bound_;
  std::vector<EventRecord> records_;
  std::vector<char> data_;
  std::vector<SessionId> ids_;
  uint64_t deliveries_ = 0;
  uint64_t sessions_ = 0;
  uint64_t after_stop_ = 0;
  bool echo_ = true;
  bool stopped_ = false;
};

// Traffic is flowing: `clients` have had `bytes` echoed back to them.
bool EchoFlowing(EchoServer& server, StreamingClients& clients, uint64_t bytes) {
  return server.loop().RunUntil([&] { return clients.received() >= bytes; }, kWaitMs);
}

// What must hold after Stop: it was quick, the loop holds no handle of the
// driver, and no batch reaches "JS" any more however long the loop turns.
void ExpectStoppedCleanly(EchoServer& server, std::chrono::milliseconds took) {
  EXPECT(took.count() < 1000);
  EXPECT_EQ(server.loop().handles(), 0u);
  for (int i = 0; i < 10; ++i) server.loop().RunOnce(5);
  EXPECT_EQ(server.deliveries_after_stop(), 0u);
}

void StopWhileBusy(bool threaded) {
  EchoServer server(threaded);
  ASSERT(server.ok());
  StreamingClients clients(server.port(), 32, 2048);
  ASSERT_EQ(clients.connected(), 32u);
  ASSERT(EchoFlowing(server, clients, 4 * 1024 * 1024));
  EXPECT_EQ(server.sessions(), 32u);
  // Mid-traffic: batches in flight, echoes queued, the I/O thread polling.
  ExpectStoppedCleanly(server, server.Stop());
}

}  // namespace

TEST(ThreadedDriverStopsMidTrafficAndNothingRunsAfter) { StopWhileBusy(true); }

TEST(InlineDriverStopsMidTrafficAndNothingRunsAfter) { StopWhileBusy(false); }

TEST(ThreadedDriverStopsWhileJsIsBehindWithEveryBatchWaiting) {
  // Small batches, so every one of them fills while "JS" does not run: the
  // I/O thread then waits in its hand-off for a batch to come back.
  EchoServer server(true, 64, 16 * 1024);
  ASSERT(server.ok());
  StreamingClients clients(server.port(), 16, 2048);
  ASSERT(EchoFlowing(server, clients, 512 * 1024));
  uint64_t delivered = server.deliveries();
  // JS blocked: the loop does not turn while the clients keep sending.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(server.deliveries(), delivered);
  ExpectStoppedCleanly(server, server.Stop());
}

TEST(ThreadedDriverStopsWithCommandsStillQueued) {
  EchoServer server(true);
  ASSERT(server.ok());
  StreamingClients clients(server.port(), 8, 2048);
  ASSERT(EchoFlowing(server, clients, 256 * 1024));
  server.set_echo(false);
  // Several MiB of sends queued for the I/O thread, then stop at once: the
  // commands not yet executed are dropped with the queue, and nothing leaks.
  std::string block(64 * 1024, 'q');
  for (int i = 0; i < 16; ++i) server.SendToAll(block);
  ExpectStoppedCleanly(server, server.Stop());
}

TEST(DriverDestroyedWithoutStopStopsItself) {
  for (bool threaded : {true, false}) {
    auto server = std::make_unique<EchoServer>(threaded);
    ASSERT(server->ok());
    StreamingClients clients(server->port(), 8, 2048);
    ASSERT(EchoFlowing(*server, clients, 256 * 1024));
    server.reset();  // the destructor of the driver stops it
    clients.Stop();
  }
}

TEST(AnEngineOutlivingItsDriverNeverTouchesTheDriversMemory) {
  // The driver owns the batches and the shared buffered-byte counters the
  // engine writes to; once it is gone the engine must not reach them (ASan
  // reports a use after free otherwise). Shutdown writes close events and
  // takes queued bytes off the counters: both would.
  for (bool threaded : {true, false}) {
    EchoServer server(threaded);
    ASSERT(server.ok());
    StreamingClients clients(server.port(), 8, 2048);
    ASSERT(EchoFlowing(server, clients, 256 * 1024));
    server.DropDriver();
    EXPECT_EQ(server.loop().handles(), 0u);
    Engine& engine = server.engine();
    for (SessionId id : server.ids()) engine.Send(id, "late", 4);
    engine.Shutdown();
    for (int i = 0; i < 5; ++i) engine.Poll(0);
    EXPECT(engine.HasPending());  // close events wait: there is no batch to write them to
    clients.Stop();
  }
}

int main(int argc, char** argv) { return acceptpool_test::RunAll(argc, argv); }
