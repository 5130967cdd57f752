// The load generator on its own threads and the real epoll backend, against
// an engine echo server (or a fixed HTTP responder) on another thread, over
// loopback: every mode completes work with no errors, idle holds until stopped, a port nobody
// listens on is counted as ECONNREFUSED, and every run ends in bounded time.
// Also run under ThreadSanitizer (stats are read while the threads run).
#include <atomic>
#include <chrono>
#include <algorithm>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "backends/epoll/epoll_backend.h"
#include "core/engine.h"
#include "loadgen/load_generator.h"
#include "loopback_server.h"
#include "test_main.h"

using namespace acceptpool;

namespace {

using acceptpool_test::Loopback;

const char kHttpResponse[] = "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nhello world\n";

// An engine echo server polled by a thread of its own; with `http`, it
// answers the end of every request head (a blank line) with kHttpResponse.
class EchoServer {
 public:
  explicit EchoServer(bool http = false)
      : batch_(4096, 1 << 20), http_(http), head_match_(8192, 0) {
    EngineConfig c;
    c.pool.initial = 1024;
    c.pool.chunk = 1024;
    c.pool.max_sessions = 4096;
    c.pool.low_water = 64;
    c.pool.shrink_idle_ticks = 30;
    c.no_delay = true;
    c.high_water_mark = 64 * 1024;
    c.max_queued_bytes = 4 * 1024 * 1024;
    c.accept_batch = 128;
    // Reset connections wait in the accept queue until accepted; when this
    // thread is descheduled a storm fills a 511 backlog within milliseconds,
    // SYNs are dropped and every lane waits a second for its retransmit.
    c.listen.backlog = 4096;
    engine_ = std::make_unique<Engine>(c, MakeEpollBackend());
    status_ = engine_->Init();
    if (!status_.ok()) return;
    engine_->SetBatch(&batch_);
    status_ = engine_->Listen(Loopback(0), &bound_);
    if (!status_.ok()) return;
    thread_ = std::thread([this] { Run(); });
  }
  ~EchoServer() {
    stop_.store(true);
    engine_->Wake();
    if (thread_.joinable()) thread_.join();
  }
  bool ok() const { return status_.ok(); }
  uint16_t port() const { return bound_.port; }
  uint64_t accepts() const { return accepts_.load(); }

 private:
  void Run() {
    while (!stop_.load()) {
      engine_->Poll(20);
      for (size_t i = 0; i < batch_.count(); ++i) {
        const EventRecord& r = batch_.records()[i];
        auto type = static_cast<EventType>(static_cast<int>(r.type));
        if (type == EventType::kSession) accepts_.fetch_add(1);
        if (type == EventType::kData && http_) {
          Answer(static_cast<SessionId>(r.id), batch_.data() + static_cast<size_t>(r.a),
                 static_cast<size_t>(r.b));
        } else if (type == EventType::kData) {
          engine_->Send(static_cast<SessionId>(r.id), batch_.data() + static_cast<size_t>(r.a),
                        static_cast<size_t>(r.b));
        }
        if (type == EventType::kSession)
          head_match_[SlotOf(static_cast<SessionId>(r.id)) % head_match_.size()] = 0;
      }
      batch_.Clear();
    }
  }

  void Answer(SessionId id, const char* data, size_t size) {
    static const char kEnd[] = "\r\n\r\n";
    uint8_t& match = head_match_[SlotOf(id) % head_match_.size()];
    for (size_t i = 0; i < size; ++i) {
      match = data[i] == kEnd[match] ? match + 1 : (data[i] == '\r' ? 1 : 0);
      if (match < 4) continue;
      match = 0;
      engine_->Send(id, kHttpResponse, sizeof(kHttpResponse) - 1);
    }
  }

  EventBatch batch_;
  bool http_;
  std::vector<uint8_t> head_match_;  // by slot: how much of "\r\n\r\n" was just seen
  std::unique_ptr<Engine> engine_;
  Status status_;
  SocketAddress bound_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> accepts_{0};
};

// Signals when the generator's on_done has run.
struct DoneFlag {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::function<void()> Callback() {
    return [this] {
      std::lock_guard<std::mutex> lock(mu);
      done = true;
      cv.notify_all();
    };
  }
  bool WaitFor(int ms) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::milliseconds(ms), [this] { return done; });
  }
};

LoadConfig Config(LoadMode mode, uint16_t port) {
  LoadConfig c;
  c.mode = mode;
  c.remote = Loopback(port);
  c.first_source = Loopback(0);
  c.sources = 4;
  c.connections = 16;
  c.threads = 2;
  c.message_size = 16;
  c.duration_us = 300000;
  c.warmup_us = 50000;
  c.ramp_timeout_us = 5000000;
  c.op_timeout_us = 3000000;
  c.retry_delay_us = 10000;
  c.max_connecting = 256;
  return c;
}

LoadResult RunToEnd(const LoadConfig& config, int wait_ms = 10000) {
  LoadGenerator gen(config);
  DoneFlag flag;
  Status st = gen.Start(MakeEpollBackend, flag.Callback());
  EXPECT(st.ok());
  if (!st.ok()) return LoadResult();
  uint64_t seen = 0;
  // Progress is readable while the threads run.
  for (int i = 0; i < 5; ++i) seen = std::max(seen, gen.total());
  EXPECT(flag.WaitFor(wait_ms));
  gen.Join();
  EXPECT(gen.phase() == LoadPhase::kDone);
  LoadResult r = gen.Result();
  EXPECT(r.totals.total >= seen);
  return r;
}

}  // namespace

TEST(ConnectCloseStormCompletesWithoutErrors) {
  EchoServer server;
  ASSERT(server.ok());
  LoadConfig c = Config(LoadMode::kConnectClose, server.port());
  c.threads = 1;
  LoadResult r = RunToEnd(c);
  EXPECT(r.totals.completed > 100u);
  EXPECT(r.rate > 0);
  EXPECT_EQ(r.totals.ErrorTotal(), 0u);
  EXPECT_EQ(r.threads, 1u);
  EXPECT_EQ(r.lanes, 16u);
  EXPECT(r.totals.window_us >= 300000);
  EXPECT(r.totals.latency.count() == r.totals.completed);
}

TEST(ReqRepVerifiesEveryEchoAndTheServerSawEveryConnection) {
  EchoServer server;
  ASSERT(server.ok());
  LoadResult r = RunToEnd(Config(LoadMode::kReqRep, server.port()));
  EXPECT(r.totals.completed > 100u);
  EXPECT_EQ(r.totals.ErrorTotal(), 0u);
  EXPECT_EQ(r.totals.mismatches, 0u);
  EXPECT_EQ(r.totals.bytes_in, r.totals.total * 16);
  // Every completed operation was a connection the server accepted.
  EXPECT(server.accepts() >= r.totals.total);
}

TEST(EchoKeepsItsConnectionsAndMeasuresRoundTrips) {
  EchoServer server;
  ASSERT(server.ok());
  LoadConfig c = Config(LoadMode::kEcho, server.port());
  c.connections = 50;
  LoadResult r = RunToEnd(c);
  EXPECT(r.totals.completed > 100u);
  EXPECT_EQ(r.totals.ErrorTotal(), 0u);
  EXPECT_EQ(r.totals.connected, 50u);  // never reconnected
  EXPECT_EQ(server.accepts(), 50u);
  EXPECT(r.totals.latency.Percentile(0.99) > 0u);
}

TEST(HttpKeepAliveVerifiesEveryResponseOnConnectionsItKeeps) {
  EchoServer server(true);
  ASSERT(server.ok());
  LoadConfig c = Config(LoadMode::kHttp, server.port());
  c.connections = 50;
  LoadResult r = RunToEnd(c);
  EXPECT(r.totals.completed > 100u);
  EXPECT_EQ(r.totals.ErrorTotal(), 0u);
  EXPECT_EQ(r.totals.connected, 50u);
  EXPECT_EQ(server.accepts(), 50u);
  EXPECT_EQ(r.totals.bytes_in, r.totals.total * (sizeof(kHttpResponse) - 1));
}

TEST(HttpCloseMakesOneRequestPerConnection) {
  EchoServer server(true);
  ASSERT(server.ok());
  LoadResult r = RunToEnd(Config(LoadMode::kHttpClose, server.port()));
  EXPECT(r.totals.completed > 100u);
  EXPECT_EQ(r.totals.ErrorTotal(), 0u);
  // One response per connection: at most the 16 lanes open at the end had none yet.
  EXPECT(r.totals.connected >= r.totals.total && r.totals.connected <= r.totals.total + 16u);
  EXPECT(server.accepts() >= r.totals.total);
}

TEST(IdleHoldsUntilStoppedAndFinishesPromptly) {
  EchoServer server;
  ASSERT(server.ok());
  LoadConfig c = Config(LoadMode::kIdle, server.port());
  c.connections = 200;
  c.duration_us = 60LL * 1000000;
  LoadGenerator gen(c);
  DoneFlag flag;
  ASSERT(gen.Start(MakeEpollBackend, flag.Callback()).ok());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (gen.open() < 200 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(gen.open(), 200u);
  EXPECT(gen.phase() == LoadPhase::kHold);
  auto stop_at = std::chrono::steady_clock::now();
  gen.Stop();
  EXPECT(flag.WaitFor(5000));
  EXPECT(std::chrono::steady_clock::now() - stop_at < std::chrono::seconds(4));
  gen.Join();
  LoadResult r = gen.Result();
  EXPECT_EQ(r.totals.peak_open, 200u);
  EXPECT_EQ(r.totals.ErrorTotal(), 0u);
}

TEST(NobodyListeningIsCountedAsConnectionRefused) {
  uint16_t port;
  {
    EchoServer closed;  // a port that was just free
    ASSERT(closed.ok());
    port = closed.port();
  }
  LoadConfig c = Config(LoadMode::kConnectClose, port);
  c.threads = 1;
  c.connections = 4;
  LoadResult r = RunToEnd(c);
  EXPECT_EQ(r.totals.completed, 0u);
  EXPECT(r.totals.errors[static_cast<size_t>(SysError::kConnRefused)] > 0u);
  EXPECT_EQ(r.rate, 0.0);
}

TEST(DestroyingARunningGeneratorStopsAndJoinsIt) {
  EchoServer server;
  ASSERT(server.ok());
  LoadConfig c = Config(LoadMode::kEcho, server.port());
  c.duration_us = 60LL * 1000000;
  auto start = std::chrono::steady_clock::now();
  {
    LoadGenerator gen(c);
    ASSERT(gen.Start(MakeEpollBackend, nullptr).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
}

int main(int argc, char** argv) { return acceptpool_test::RunAll(argc, argv); }
