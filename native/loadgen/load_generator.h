// The load generator: connection storms, request/reply, echo and idle
// connections, run on acceptpool's own engine and backend with no JavaScript
// per connection. Each thread owns one Engine; a LoadWorker reads that
// engine's event batches itself and answers with engine commands at once:
//
//   kConnected     (proxy_v2: first a PROXY v2 header)
//                  connect-close: count, reset the connection, connect again
//                  reqrep / echo: send the request (16 B by default)
//                  http / http-close: send the GET
//                  idle: hold the connection
//   kData          reqrep / echo: check the bytes against what was sent;
//                  http modes: read the response (loadgen/http_response.h);
//                  on a whole reply: reqrep, http-close: count, reset,
//                  connect again; echo, http: count, send again
//   kConnectFailed count by SysError, connect again after a short pause
//   kClose / kEnd  (not asked for) count, connect again after a short pause
//
// Every connection is a *lane* (a fixed slot, index = connect token), so the
// hot path allocates nothing: lanes, the retry ring and the latency histogram
// are sized before the first connect. Clients close with a reset (SO_LINGER
// 0), as load generators do, so no TIME_WAIT entries pile up on this side,
// and connects spread over several source addresses (127.0.0.1..N) so one
// address's ephemeral ports never run out.
//
// Phases: ramp (echo, http, idle: until every lane is open or the ramp times out),
// warm-up, measure, then hold (idle, until told or the duration ends), drain
// (reset every lane, wait for the engine to release them) and done. Only
// operations that complete during the measure phase count in the rate and
// the latencies; errors count in every phase.
#ifndef ACCEPTPOOL_LOADGEN_LOAD_GENERATOR_H_
#define ACCEPTPOOL_LOADGEN_LOAD_GENERATOR_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/address.h"
#include "core/backend.h"
#include "core/engine.h"
#include "core/event_batch.h"
#include "core/status.h"
#include "core/wire.h"
#include "loadgen/http_response.h"
#include "loadgen/latency_histogram.h"

namespace acceptpool {

// X(name, text): named lists (core/wire.h); JS names modes and phases so.
#define ACCEPTPOOL_LOAD_MODES(X)                                                             \
  X(kConnectClose, "connect-close") /* connect, then reset at once */                        \
  X(kReqRep, "reqrep")              /* connect, send a request, check its echo, reset */     \
  X(kEcho, "echo")                  /* persistent connections, one message in flight each */ \
  X(kIdle, "idle")                  /* open connections and hold them without traffic */     \
  X(kHttp, "http")                  /* keep-alive connections, one GET in flight each */     \
  X(kHttpClose, "http-close")       /* connect, GET with Connection: close, check, reset */

enum class LoadMode : uint8_t { ACCEPTPOOL_LOAD_MODES(ACCEPTPOOL_NAMED_ENUMERATOR) };

// What a run does. No defaults stand for the product's (src/options.ts has
// them): whoever starts a run gives every value; a field left alone is 0.
struct LoadConfig {
  LoadMode mode = LoadMode::kConnectClose;
  SocketAddress remote;
  // Connects bind to first_source, first_source + 1, ... (`sources` IPv4
  // addresses, port 0) in turn; 0 sources = let the OS choose.
  SocketAddress first_source;
  uint32_t sources = 0;
  // Lanes over all threads (connects in flight, or connections held).
  uint32_t connections = 0;
  uint32_t threads = 0;
  uint32_t message_size = 0;  // reqrep, echo (the http modes send their GET)
  int64_t duration_us = 0;    // measured time (idle: the longest hold)
  int64_t warmup_us = 0;
  // Echo, http and idle: how long opening every lane may take before the run
  // starts anyway.
  int64_t ramp_timeout_us = 0;
  // A connect or reply slower than this counts as timed out; the lane is
  // reset and connects again.
  int64_t op_timeout_us = 0;
  // Pause before a lane connects again after an error.
  int64_t retry_delay_us = 0;
  // Connects in progress at once per thread, at most (0 = no cap): opening
  // thousands of idle or echo connections at once would overflow a
  // server's accept queue and measure SYN retransmits instead.
  uint32_t max_connecting = 0;
  // Every connection starts with a PROXY protocol v2 header naming a client
  // of its own (198.18.0.0/15, the benchmarking range), as a balancer would
  // send it, so a server with proxyProtocol can be measured.
  bool proxy_v2 = false;
  // The generator's own tuning: the longest wait, at the end, for the engine
  // to release every connection.
  int64_t drain_timeout_us = 3000000;
};

// The largest message a lane sends (its bytes are generated, not stored).
constexpr uint32_t kMaxLoadMessage = 64 * 1024;
// Lanes per thread at most: a sanity bound on what a worker sizes before its
// first connect (about 60 bytes a lane), which keeps its pool (2 x lanes +
// 1024 slots) far below kMaxSlots. A real run meets the descriptors a process
// may open (RLIMIT_NOFILE) long before: connects past them fail with EMFILE
// and are counted as errors.
constexpr uint32_t kMaxLanesPerThread = 1u << 20;
// Threads per run at most: each is an OS thread with an engine of its own.
constexpr uint32_t kMaxLoadThreads = 64;

// clang-format off
#define ACCEPTPOOL_LOAD_PHASES(X) \
  X(kRamp, "ramp")                \
  X(kWarmup, "warmup")            \
  X(kMeasure, "measure")          \
  X(kHold, "hold")                \
  X(kDraining, "draining")        \
  X(kDone, "done")
// clang-format on

enum class LoadPhase : uint8_t { ACCEPTPOOL_LOAD_PHASES(ACCEPTPOOL_NAMED_ENUMERATOR) };

struct LoadCounters {
  uint64_t completed = 0;  // operations completed in the measure phase
  uint64_t total = 0;      // operations completed in any phase
  uint64_t connects = 0;   // connects started
  uint64_t connected = 0;  // connects that succeeded
  uint64_t abandoned = 0;  // connects still in progress when the run ended
  uint64_t errors[static_cast<size_t>(SysError::kCount)] = {};  // by SysError
  uint64_t mismatches = 0;                                      // a reply differed from the request
  uint64_t eofs = 0;      // the server closed (FIN) a connection
  uint64_t timeouts = 0;  // a connect or reply took longer than op_timeout_us
  uint64_t bytes_out = 0;
  uint64_t bytes_in = 0;
  uint32_t peak_open = 0;
  int64_t window_us = 0;     // length of the measure phase
  int64_t ramp_us = 0;       // echo / idle: how long opening every lane took
  LatencyHistogram latency;  // µs, measure phase only

  uint64_t ErrorTotal() const;
  void Merge(const LoadCounters& other);
};

// What another thread may read while a worker runs.
struct LoadProgress {
  std::atomic<uint64_t> total{0};
  std::atomic<uint64_t> completed{0};
  std::atomic<uint64_t> errors{0};
  std::atomic<uint32_t> open{0};
  std::atomic<uint8_t> phase{static_cast<uint8_t>(LoadPhase::kRamp)};
};

// One thread's share of the load: an engine, its lanes, and the state
// machine over them. Not thread-safe; time comes in from the caller, so tests
// drive it step by step with any backend.
class LoadWorker : private EngineObserver {
 public:
  LoadWorker(const LoadConfig& config, uint32_t index, uint32_t lanes,
             std::unique_ptr<Backend> backend);
  LoadWorker(const LoadWorker&) = delete;
  LoadWorker& operator=(const LoadWorker&) = delete;

  Status Init();
  // Starts every lane's first connect.
  void Begin(int64_t now_us);
  // Polls the engine, waiting up to timeout_ms for something to happen.
  void Poll(int timeout_ms);
  // Acts on what the last Poll reported, then moves the phases on.
  void Process(int64_t now_us);
  // How long the next Poll may wait.
  int NextTimeout(int64_t now_us) const;
  // Ends the run early (idle: the hold): reset every lane and drain.
  void Stop(int64_t now_us);

  bool done() const { return phase_ == LoadPhase::kDone; }
  LoadPhase phase() const { return phase_; }
  uint32_t open() const { return open_; }
  uint32_t lanes() const { return static_cast<uint32_t>(lanes_.size()); }
  const LoadCounters& counters() const { return counters_; }
  const LoadProgress& progress() const { return progress_; }
  Engine& engine() { return engine_; }

 private:
  enum class LaneState : uint8_t { kIdle, kRetry, kWaiting, kConnecting, kOpen };
  struct Lane {
    SessionId id = 0;
    int64_t since_us = 0;   // connect started (echo: message sent)
    uint32_t seq = 0;       // message number, part of the message bytes
    uint32_t received = 0;  // bytes of the current reply seen so far
    LaneState state = LaneState::kIdle;
    HttpResponseReader response;  // http modes: the reply being read
  };

  void HandleBatch(const EventBatch& batch, int64_t now_us);
  void OnConnected(uint32_t lane, SessionId id, int64_t now_us);
  void OnData(Lane& lane, uint32_t index, const char* data, size_t size, int64_t now_us);
  // The part of a reply read; whether it is whole, or wrong (a mismatch).
  HttpResponseReader::Outcome ReadEcho(Lane& lane, uint32_t index, const char* data, size_t size);
  HttpResponseReader::Outcome ReadHttp(Lane& lane, const char* data, size_t size);
  void OnLost(Lane& lane, uint32_t index, int64_t now_us);
  Lane* LaneOf(SessionId id, uint32_t* index);
  // Connects now, or queues the lane while max_connecting are in progress.
  void Connect(uint32_t index, int64_t now_us);
  void StartConnect(uint32_t index, int64_t now_us);
  void StartWaiting(int64_t now_us);
  void LeaveConnecting(Lane& lane);
  void SendProxyHeader(Lane& lane, uint32_t index);
  void SendMessage(Lane& lane, uint32_t index, int64_t now_us);
  void Complete(Lane& lane, int64_t latency_us);
  // Resets the lane's connection; it connects again now or after a pause.
  void Reset(Lane& lane, uint32_t index, int64_t now_us, bool pause);
  void ScheduleRetry(uint32_t index, int64_t now_us);
  void RunRetries(int64_t now_us);
  void CheckTimeouts(int64_t now_us);
  void Advance(int64_t now_us);
  void SetOpen(uint32_t open);
  void Publish();
  uint8_t MessageByte(uint32_t lane, uint32_t seq, uint32_t offset) const;
  bool measuring() const { return phase_ == LoadPhase::kMeasure; }
  bool http() const {
    return config_.mode == LoadMode::kHttp || config_.mode == LoadMode::kHttpClose;
  }
  bool awaiting_reply() const {
    return config_.mode != LoadMode::kConnectClose && config_.mode != LoadMode::kIdle;
  }
  // Connections held for the whole run (opened in the ramp phase).
  bool persistent() const {
    return config_.mode == LoadMode::kEcho || config_.mode == LoadMode::kHttp ||
           config_.mode == LoadMode::kIdle;
  }
  // After a whole reply: reset and connect again, or send the next request.
  bool one_per_connection() const {
    return config_.mode == LoadMode::kReqRep || config_.mode == LoadMode::kHttpClose;
  }
  void OnWorkOutsidePoll() override;

  LoadConfig config_;
  uint32_t index_;
  Engine engine_;
  EventBatch batches_[2];
  int current_ = 0;  // the batch the engine writes to
  std::vector<Lane> lanes_;
  std::vector<uint32_t> lane_of_slot_;
  std::vector<char> message_;
  // http modes: the GET every request sends (made once, from the remote).
  std::string request_;
  // Lanes waiting to connect again, in the order they became due (every
  // retry waits the same pause, so first in is first due).
  std::vector<uint32_t> retry_ring_;
  std::vector<int64_t> retry_due_;
  size_t retry_head_ = 0;
  size_t retry_count_ = 0;
  // Lanes waiting for a connect slot, first in first out (each at most once).
  std::vector<uint32_t> waiting_;
  size_t waiting_head_ = 0;
  size_t waiting_count_ = 0;
  uint32_t connecting_ = 0;
  uint32_t next_source_ = 0;
  uint32_t open_ = 0;
  LoadPhase phase_ = LoadPhase::kRamp;
  int64_t begin_us_ = 0;
  int64_t phase_end_us_ = 0;  // ramp deadline / warm-up end / measure end / drain deadline
  int64_t measure_start_us_ = 0;
  int64_t next_timeout_check_us_ = 0;
  bool server_closed_ = false;
  bool acting_ = false;  // in Begin/Process/Stop: a Poll() follows
  LoadCounters counters_;
  LoadProgress progress_;
};

using BackendFactory = std::function<std::unique_ptr<Backend>()>;

struct LoadResult {
  LoadCounters totals;  // every thread's counters merged
  double rate = 0;      // completed operations per second, summed over threads
  uint32_t threads = 0;
  uint32_t lanes = 0;
};

// Runs LoadWorkers on threads of their own.
class LoadGenerator {
 public:
  explicit LoadGenerator(const LoadConfig& config);
  ~LoadGenerator();
  LoadGenerator(const LoadGenerator&) = delete;
  LoadGenerator& operator=(const LoadGenerator&) = delete;

  // Creates and initialises every worker here (so setup errors come back
  // now), then starts their threads. `on_done` runs once, on the thread of
  // the last worker to finish.
  Status Start(const BackendFactory& factory, std::function<void()> on_done);
  // Ends the run early (any thread); workers drain and finish.
  void Stop();
  // Waits for every thread (call after on_done, or to abandon a run).
  void Join();
  bool started() const { return !threads_.empty(); }

  // Safe from any thread while the run goes on.
  uint64_t total() const;
  uint64_t completed() const;
  uint64_t errors() const;
  uint32_t open() const;
  // The least advanced phase over the workers.
  LoadPhase phase() const;
  // After Join().
  LoadResult Result() const;
  const LoadConfig& config() const { return config_; }

  // Clock used by the threads (steady, µs).
  static int64_t NowUs();

 private:
  void RunWorker(LoadWorker* worker);

  LoadConfig config_;
  std::vector<std::unique_ptr<LoadWorker>> workers_;
  std::vector<std::thread> threads_;
  std::function<void()> on_done_;
  std::atomic<bool> stop_{false};
  std::atomic<uint32_t> running_{0};
};

}  // namespace acceptpool

#endif  // ACCEPTPOOL_LOADGEN_LOAD_GENERATOR_H_
