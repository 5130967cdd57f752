// The inline and threaded drivers on the real epoll backend over loopback,
// driven by a loop of the tests' own (test_loop.h) in the role of Node's:
// teardown mid-traffic (Stop while the I/O thread is busy, while JS is
// behind, with commands still queued), no callback after Stop, commands
// racing the batches the I/O thread fills, and the threaded driver's count
// of buffered bytes, kept on both threads. Run under ASan (leaks, use after
// free) and TSan (the I/O thread against the JS one).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "backends/epoll/epoll_backend.h"
#include "core/engine.h"
#include "core/engine_group.h"
#include "drivers/drivers.h"
#include "test_loop.h"
#include "test_main.h"

using namespace acceptpool;
using acceptpool_test::TestLoop;

namespace {

constexpr int kWaitMs = 5000;

// `count` blocking client sockets connected to 127.0.0.1:`port` (those that
// could connect), with a receive buffer of `rcvbuf` bytes if given.
std::vector<int> ConnectLoopback(uint16_t port, int count, int rcvbuf = 0) {
  std::vector<int> fds;
  for (int i = 0; i < count; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      close(fd);
      continue;
    }
    fds.push_back(fd);
  }
  return fds;
}

// Loopback clients that stream `chunk`-byte writes and read the echo, on a
// thread of their own, until stopped. Each keeps at most kWindow bytes
// unanswered, so the server's queues stay small and traffic keeps flowing.
class StreamingClients {
 public:
  static constexpr size_t kWindow = 64 * 1024;

  StreamingClients(uint16_t port, int count, size_t chunk)
      : chunk_(chunk, 'x'), fds_(ConnectLoopback(port, count)) {
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

// Loopback clients that only read, on a thread of their own, counting what
// each received. Reading can be paused; a small receive buffer (`rcvbuf`)
// keeps the peers' share of the kernel's buffers small, so the server's own
// queues fill sooner (its socket's send buffer still grows to megabytes).
class Readers {
 public:
  Readers(uint16_t port, int count, int rcvbuf = 0)
      : fds_(ConnectLoopback(port, count, rcvbuf)), received_(static_cast<size_t>(count)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~Readers() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
    for (int fd : fds_) close(fd);
  }
  size_t connected() const { return fds_.size(); }
  // Returns once the reading thread has taken note: no read after a pause.
  void set_reading(bool on) {
    reading_.store(on);
    while (!on && !paused_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  uint64_t received(size_t i) const { return received_[i].load(); }
  uint64_t total() const {
    uint64_t sum = 0;
    for (const auto& r : received_) sum += r.load();
    return sum;
  }

 private:
  void Run() {
    char buf[65536];
    while (!stop_.load()) {
      bool reading = reading_.load();
      paused_.store(!reading);
      if (!reading) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        continue;
      }
      std::vector<pollfd> p;
      for (int fd : fds_) p.push_back(pollfd{fd, POLLIN, 0});
      if (poll(p.data(), p.size(), 5) <= 0) continue;
      for (size_t i = 0; i < p.size(); ++i) {
        if ((p[i].revents & POLLIN) == 0) continue;
        ssize_t n = recv(fds_[i], buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) received_[i] += static_cast<uint64_t>(n);
      }
    }
  }

  std::vector<int> fds_;
  std::vector<std::atomic<uint64_t>> received_;
  std::atomic<bool> reading_{true};
  std::atomic<bool> paused_{false};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// What "JS" saw of one session, in order.
struct SessionLog {
  std::vector<EventType> events;
  uint32_t drains = 0;
  uint64_t last_drain = 0;  // the delivery that brought the last drain
  uint32_t closes = 0;
  uint32_t stale_sends = 0;  // kStale notes for sends
  bool closed_by_js = false;
  uint32_t late_sends = 0;  // sends issued after JS closed the session
  bool data_after_close = false;
};

// An echo server: an engine on epoll and a driver, with the test loop as
// the JS thread. Deliver copies a batch out, clears it, then echoes every
// data record, as NativeServer hands a batch to JS and JS answers.
class EchoServer {
 public:
  // `threads` engines (threaded driver only), listening as `sharing` says.
  EchoServer(bool threaded, size_t batch_records = 1024, size_t batch_bytes = 256 * 1024,
             uint32_t threads = 1, ListenerSharing sharing = ListenerSharing::kReusePort) {
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
    engines_ = std::make_unique<EngineGroup>(config, threads, &MakeEpollBackend);
    status_ = engines_->Init();
    SocketAddress local;
    local.family = 4;
    local.addr[0] = 127;
    local.addr[3] = 1;
    if (status_.ok()) status_ = engines_->Listen(local, config.listen, sharing, &bound_);
    BatchLimits limits;
    limits.records = batch_records;
    limits.data_bytes = batch_bytes;
    auto deliver = [this](EventBatch& batch) { Deliver(batch); };
    driver_ = threaded ? MakeThreadedDriver(engines_->engines(), limits, deliver)
                       : MakeInlineDriver(&engines_->at(0), limits, deliver);
    if (status_.ok()) status_ = driver_->Start(&loop_);
  }
  // The order NativeServer tears down in: the driver (whose destructor
  // stops it, if Stop() was not called), then the engine.
  ~EchoServer() {
    driver_.reset();
    engines_.reset();
  }

  bool ok() const { return status_.ok(); }
  uint16_t port() const { return bound_.port; }
  Engine& engine() { return engines_->at(0); }
  EngineGroup& engines() { return *engines_; }
  // Destroys the driver and leaves the engine.
  void DropDriver() { driver_.reset(); }
  const std::vector<SessionId>& ids() const { return ids_; }
  TestLoop& loop() { return loop_; }
  Driver& driver() { return *driver_; }
  uint64_t deliveries() const { return deliveries_; }
  uint64_t sessions() const { return sessions_; }
  void set_echo(bool on) { echo_ = on; }
  // Keeps a log per session of what was delivered.
  void set_logging(bool on) { logging_ = on; }
  SessionLog& log(SessionId id) { return logs_[id]; }
  // Every event delivered while logging, in order.
  const std::vector<std::pair<EventType, SessionId>>& sequence() const { return sequence_; }
  // Closes from "JS"; what JS sends to the session after this is counted.
  bool Close(SessionId id, CloseMode mode) {
    logs_[id].closed_by_js = true;
    return driver_->Close(id, mode);
  }
  SendResult Send(SessionId id, const char* data, size_t size) {
    if (logs_[id].closed_by_js) ++logs_[id].late_sends;
    return driver_->Send(id, data, size);
  }
  // Runs the test loop until `n` sessions have arrived.
  bool AwaitSessions(uint64_t n) {
    return loop_.RunUntil([&] { return sessions_ >= n; }, kWaitMs);
  }
  // Sends to every session seen so far (commands queued by "JS").
  void SendToAll(const std::string& bytes) {
    for (SessionId id : ids_) driver_->Send(id, bytes.data(), bytes.size());
  }

  // Stops the driver and reports how long it took.
  std::chrono::milliseconds Stop() {
    auto start = std::chrono::steady_clock::now();
    driver_->Stop();
    stopped_ = true;
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start);
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
        Send(id, data_.data() + static_cast<size_t>(r.a), static_cast<size_t>(r.b));
      }
      if (logging_) Log(type, id, r);
    }
  }

  void Log(EventType type, SessionId id, const EventRecord& r) {
    sequence_.emplace_back(type, id);
    SessionLog& log = logs_[id];
    log.events.push_back(type);
    if (type == EventType::kDrain) {
      ++log.drains;
      log.last_drain = deliveries_;
    }
    if (type == EventType::kClose) ++log.closes;
    if (type == EventType::kStale && r.a == 0) ++log.stale_sends;
    if (log.closes > 0 &&
        (type == EventType::kData || type == EventType::kDrain || type == EventType::kEnd)) {
      log.data_after_close = true;
    }
  }

  TestLoop loop_;  // outlives the driver, as Node's loop outlives NativeServer
  std::unique_ptr<EngineGroup> engines_;
  std::unique_ptr<Driver> driver_;
  Status status_;
  SocketAddress bound_;
  std::vector<EventRecord> records_;
  std::vector<char> data_;
  std::vector<SessionId> ids_;
  uint64_t deliveries_ = 0;
  uint64_t sessions_ = 0;
  uint64_t after_stop_ = 0;
  std::map<SessionId, SessionLog> logs_;
  std::vector<std::pair<EventType, SessionId>> sequence_;
  bool logging_ = false;
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

void StopWhileBusy(bool threaded, uint32_t threads = 1) {
  EchoServer server(threaded, 1024, 256 * 1024, threads);
  ASSERT(server.ok());
  StreamingClients clients(server.port(), 32, 2048);
  ASSERT_EQ(clients.connected(), 32u);
  // Echo can flow before the last session's event has reached JS: with two
  // threads on two cores shared with the clients, one thread's batch may
  // trail the other's by many round trips.
  ASSERT(server.AwaitSessions(32));
  ASSERT(EchoFlowing(server, clients, 4 * 1024 * 1024));
  EXPECT_EQ(server.sessions(), 32u);
  // Mid-traffic: batches in flight, echoes queued, the I/O thread polling.
  ExpectStoppedCleanly(server, server.Stop());
}

}  // namespace

TEST(ThreadedDriverStopsMidTrafficAndNothingRunsAfter) { StopWhileBusy(true); }

TEST(InlineDriverStopsMidTrafficAndNothingRunsAfter) { StopWhileBusy(false); }

TEST(ThreadedDriverWithTwoThreadsStopsMidTrafficAndNothingRunsAfter) { StopWhileBusy(true, 2); }

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

namespace {

// JS closes half the sessions while their data is still on its way to it,
// and goes on sending to them (and echoing what still arrives) before it
// can know: the I/O thread that owns each session acts on every command for
// it in order, between the batches it fills and hands over, and refuses each
// late send.
void CommandsRacingBatches(uint32_t threads) {
  EchoServer server(true, 1024, 256 * 1024, threads);
  ASSERT(server.ok());
  server.set_logging(true);
  StreamingClients clients(server.port(), 24, 2048);
  ASSERT_EQ(clients.connected(), 24u);
  ASSERT(server.AwaitSessions(24));  // see StopWhileBusy
  ASSERT(EchoFlowing(server, clients, 1024 * 1024));
  ASSERT_EQ(server.ids().size(), 24u);
  std::vector<SessionId> closing(server.ids().begin(), server.ids().begin() + 12);
  constexpr uint32_t kLateSends = 10;
  for (size_t i = 0; i < closing.size(); ++i) {
    CloseMode mode = i % 2 == 0 ? CloseMode::kAbort : CloseMode::kGraceful;
    EXPECT(server.Close(closing[i], mode));
    for (uint32_t k = 0; k < kLateSends; ++k) server.Send(closing[i], "late", 4);
  }
  // Every late send is refused where it is issued, and JS hears of each.
  EXPECT(server.loop().RunUntil(
      [&] {
        for (SessionId id : closing) {
          const SessionLog& log = server.log(id);
          if (log.closes == 0 || log.stale_sends < log.late_sends) return false;
        }
        return true;
      },
      kWaitMs));
  uint64_t echoed = clients.received();
  // The other half keeps echoing meanwhile.
  EXPECT(EchoFlowing(server, clients, echoed + 256 * 1024));
  for (SessionId id : closing) {
    SessionLog& log = server.log(id);
    EXPECT_EQ(log.closes, 1u);
    EXPECT(log.late_sends >= kLateSends);
    EXPECT_EQ(log.stale_sends, log.late_sends);
    EXPECT_FALSE(log.data_after_close);
  }
  for (size_t i = 12; i < server.ids().size(); ++i)
    EXPECT_EQ(server.log(server.ids()[i]).closes, 0u);
  clients.Stop();
}

}  // namespace

TEST(ThreadedDriverCommandsRacingBatchesKeepEachSessionsOrder) { CommandsRacingBatches(1); }

TEST(ThreadedDriverWithTwoThreadsRoutesEachCommandToItsSessionsThreadInOrder) {
  CommandsRacingBatches(2);
}

TEST(ThreadedDriverDrainFollowsPressureThatEasedBeforeTheIoThreadActed) {
  // JS judges pressure on its own count, before the I/O thread has sent
  // anything; when the socket then takes every byte at once, the engine sees
  // no pressure, and 'drain' must still follow what JS was told.
  EchoServer server(true);
  ASSERT(server.ok());
  server.set_echo(false);
  server.set_logging(true);
  Readers readers(server.port(), 1);
  ASSERT(server.AwaitSessions(1));
  SessionId id = server.ids()[0];
  // Just over the high-water mark (64 KiB), well under what a loopback
  // socket takes in one send.
  std::string bytes(80 * 1024, 'p');
  EXPECT(server.driver().Send(id, bytes.data(), bytes.size()) == SendResult::kBackpressure);
  EXPECT(server.loop().RunUntil([&] { return server.log(id).drains == 1; }, kWaitMs));
  EXPECT(server.loop().RunUntil([&] { return readers.total() == bytes.size(); }, kWaitMs));
  EXPECT_EQ(server.driver().BufferedAmount(id), 0);
}

namespace {

// The JS thread adds what it hands over, the I/O thread takes off what is
// sent or dropped: sends, broadcasts to a list and to everyone, while the
// peers do not read (until the server's queues hold bytes the kernel would
// not take) and then do. Every count returns to zero (a broadcast counted on
// one side only would wrap it), and each session hears a drain after the
// last send that reported pressure. With several threads, a broadcast's ids
// are split over them: each session gets every byte exactly once.
void CountsBufferedBytes(uint32_t threads) {
  EchoServer server(true, 1024, 256 * 1024, threads);
  ASSERT(server.ok());
  server.set_echo(false);
  server.set_logging(true);
  Readers readers(server.port(), 4, 4096);
  ASSERT_EQ(readers.connected(), 4u);
  ASSERT(server.AwaitSessions(4));
  std::vector<SessionId> ids = server.ids();
  readers.set_reading(false);
  std::string chunk(64 * 1024, 'c');
  // Loopback sockets take megabytes before a send blocks (the send buffer
  // grows to tcp_wmem's maximum); the queues hold at most 16 MiB.
  constexpr uint64_t kMostEach = 12 * 1024 * 1024;
  constexpr int64_t kHeld = 256 * 1024;
  uint64_t sent_each = 0;
  std::vector<uint32_t> pressures(ids.size(), 0);
  std::vector<uint64_t> last_pressure(ids.size(), 0);  // deliveries before it
  auto all_held = [&] {
    for (SessionId id : ids) {
      if (server.driver().BufferedAmount(id) < kHeld) return false;
    }
    return true;
  };
  while (sent_each + chunk.size() + 1500 <= kMostEach && !all_held()) {
    for (size_t i = 0; i < ids.size(); ++i) {
      if (server.driver().Send(ids[i], chunk.data(), chunk.size()) == SendResult::kBackpressure) {
        ++pressures[i];
        last_pressure[i] = server.deliveries();
      }
    }
    server.driver().Broadcast(chunk.data(), 1000, ids.data(), ids.size());
    server.driver().Broadcast(chunk.data(), 500, nullptr, 0);
    sent_each += chunk.size() + 1000 + 500;
    server.loop().RunOnce(1);
    for (SessionId id : ids) {
      int64_t buffered = server.driver().BufferedAmount(id);
      EXPECT(buffered >= 0 && static_cast<uint64_t>(buffered) <= sent_each);
    }
  }
  EXPECT(all_held());
  EXPECT_EQ(readers.total(), 0u);
  readers.set_reading(true);
  EXPECT(
      server.loop().RunUntil([&] { return readers.total() == sent_each * ids.size(); }, kWaitMs));
  EXPECT(server.loop().RunUntil(
      [&] {
        for (SessionId id : ids) {
          if (server.driver().BufferedAmount(id) != 0) return false;
        }
        return true;
      },
      kWaitMs));
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(readers.received(i), sent_each);
    EXPECT(pressures[i] > 0);
    const SessionLog& log = server.log(ids[i]);
    EXPECT(log.drains >= 1 && log.drains <= pressures[i]);
    EXPECT(log.last_drain > last_pressure[i]);
  }
}

}  // namespace

TEST(ThreadedDriverCountsBufferedBytesAcrossThreadsUntilTheyLeave) { CountsBufferedBytes(1); }

TEST(ThreadedDriverWithTwoThreadsSplitsBroadcastsAndCountsEachSessionOnItsThread) {
  CountsBufferedBytes(2);
}

TEST(BroadcastToAnEmptyListReachesNobody) {
  for (bool threaded : {true, false}) {
    EchoServer server(threaded);
    ASSERT(server.ok());
    server.set_echo(false);
    Readers readers(server.port(), 3);
    ASSERT(server.AwaitSessions(3));
    std::vector<SessionId> ids = server.ids();
    EXPECT_EQ(server.driver().Broadcast("none", 4, ids.data(), 0), 0u);
    EXPECT_EQ(server.driver().Broadcast("all", 3, nullptr, 0), 3u);
    EXPECT(server.loop().RunUntil([&] { return readers.total() >= 9; }, kWaitMs));
    server.loop().RunUntil([] { return false; }, 100);
    for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(readers.received(i), 3u);
  }
}

TEST(QueryIsAnsweredWhileTrafficFlowsOnBothDrivers) {
  for (bool threaded : {true, false}) {
    EchoServer server(threaded);
    ASSERT(server.ok());
    StreamingClients clients(server.port(), 4, 2048);
    ASSERT(EchoFlowing(server, clients, 1024 * 1024));
    SessionId id = server.ids()[0];
    uint64_t last = 0;
    for (int i = 0; i < 200; ++i) {
      SessionInfo info;
      info.want_local = true;
      // Threaded: a round trip to the I/O thread, racing its batches.
      ASSERT(server.driver().Query(id, &info));
      EXPECT(info.has_local);
      EXPECT_EQ(info.local.port, server.port());
      EXPECT(info.bytes_written >= last);
      last = info.bytes_written;
      server.loop().RunOnce(0);
    }
    EXPECT(last > 0);
    SessionInfo none;
    EXPECT_FALSE(server.driver().Query(id + (SessionId{1} << kSlotBits), &none));
    clients.Stop();
  }
}

TEST(ASessionTimeoutWakesThePollAtItsDeadlineOnBothDrivers) {
  for (bool threaded : {true, false}) {
    EchoServer server(threaded);
    ASSERT(server.ok());
    server.set_logging(true);
    Readers readers(server.port(), 1);
    ASSERT(server.AwaitSessions(1));
    SessionId id = server.ids()[0];
    auto start = std::chrono::steady_clock::now();
    ASSERT(server.driver().Control(id, SessionControl::kTimeout, 40, 0));
    auto timed_out = [&] {
      for (EventType t : server.log(id).events) {
        if (t == EventType::kTimeout) return true;
      }
      return false;
    };
    ASSERT(server.loop().RunUntil(timed_out, kWaitMs));
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - start)
                  .count();
    // Woken by the deadline, not by the engine's one-second tick.
    EXPECT(ms >= 39 && ms < 600);
  }
}

namespace {

// Two engines, each accepting: `clients` loopback connections are all
// served, every id names the engine whose counters hold its session, and
// echo flows on both.
void TwoEnginesServe(ListenerSharing sharing, bool expect_both) {
  EchoServer server(true, 1024, 256 * 1024, 2, sharing);
  ASSERT(server.ok());
  StreamingClients clients(server.port(), 48, 1024);
  ASSERT_EQ(clients.connected(), 48u);
  ASSERT(server.AwaitSessions(48));
  ASSERT(EchoFlowing(server, clients, 1024 * 1024));
  uint64_t on[2] = {0, 0};
  for (SessionId id : server.ids()) ++on[ThreadOf(id, 2)];
  std::vector<Stats> per_thread;
  // The I/O threads publish their counters after each round: wait for it.
  EXPECT(server.loop().RunUntil(
      [&] {
        server.driver().GetStats(&per_thread);
        return per_thread.size() == 2 && per_thread[0].accepts == on[0] &&
               per_thread[1].accepts == on[1];
      },
      kWaitMs));
  Stats total = server.driver().GetStats(&per_thread);
  EXPECT_EQ(total.accepts, 48u);
  EXPECT_EQ(total.in_use, 48u);
  EXPECT_EQ(per_thread[0].in_use, on[0]);
  EXPECT_EQ(per_thread[1].in_use, on[1]);
  if (expect_both) {
    // The kernel hashes each connection's source port to one of the
    // listeners: 48 on one side only has odds of 2^-47.
    EXPECT(on[0] > 0 && on[1] > 0);
    EXPECT(per_thread[0].bytes_in > 0 && per_thread[1].bytes_in > 0);
  }
  clients.Stop();
}

}  // namespace

TEST(TwoEnginesWithAListenerEachBothAcceptAndEachIdNamesItsEngine) {
  TwoEnginesServe(ListenerSharing::kReusePort, true);
}

TEST(TwoEnginesSharingOneListenerServeEveryConnectionAndEachIdNamesItsEngine) {
  TwoEnginesServe(ListenerSharing::kShared, false);
}

TEST(TwoEnginesShutDownTogetherEachReportingItsServerClosedAfterItsSessions) {
  // Shutdown reaches both threads; each engine's kServerClosed (id 0: JS
  // counts them) follows the close of every one of its own sessions.
  EchoServer server(true, 1024, 256 * 1024, 2);
  ASSERT(server.ok());
  server.set_logging(true);
  server.set_echo(false);
  Readers readers(server.port(), 24);
  ASSERT(server.AwaitSessions(24));
  uint64_t on[2] = {0, 0};
  for (SessionId id : server.ids()) ++on[ThreadOf(id, 2)];
  ASSERT(on[0] > 0 && on[1] > 0);
  server.driver().Shutdown();
  auto server_closes = [&] {
    size_t n = 0;
    for (const auto& e : server.sequence()) n += e.first == EventType::kServerClosed ? 1 : 0;
    return n;
  };
  EXPECT(server.loop().RunUntil([&] { return server_closes() == 2; }, kWaitMs));
  server.loop().RunUntil([] { return false; }, 50);
  EXPECT_EQ(server_closes(), 2u);
  // Closes of each thread's sessions seen before the first and the second
  // kServerClosed: one thread had closed all of its own by the first.
  uint64_t closed[2] = {0, 0};
  int server_closed_seen = 0;
  bool first_after_one_thread = false;
  for (const auto& e : server.sequence()) {
    if (e.first == EventType::kClose) ++closed[ThreadOf(e.second, 2)];
    if (e.first != EventType::kServerClosed) continue;
    if (++server_closed_seen == 1)
      first_after_one_thread = closed[0] == on[0] || closed[1] == on[1];
  }
  EXPECT(first_after_one_thread);
  EXPECT_EQ(closed[0], on[0]);
  EXPECT_EQ(closed[1], on[1]);
  for (SessionId id : server.ids()) EXPECT_EQ(server.log(id).closes, 1u);
}

int main(int argc, char** argv) { return acceptpool_test::RunAll(argc, argv); }
