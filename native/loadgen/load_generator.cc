#include "loadgen/load_generator.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <cstring>

namespace acceptpool {

namespace {

// Batch size per worker: records for a whole round of events at a few
// thousand connections, and arena for their bytes.
constexpr size_t kBatchRecords = 4096;
constexpr size_t kBatchArena = 256 * 1024;
// Longest single wait in a poll, so timeouts and phase ends are seen in time.
constexpr int64_t kMaxWaitUs = 50000;
// How often lanes are checked for connects or replies that take too long.
constexpr int64_t kTimeoutScanUs = 50000;

// A lane sends one message at a time (at most kMaxLoadMessage), so its queue
// never nears these.
constexpr size_t kLaneHighWaterMark = 64 * 1024;
constexpr size_t kLaneMaxQueuedBytes = 4 * 1024 * 1024;

EngineConfig EngineFor(uint32_t lanes, LoadMode mode) {
  EngineConfig c;
  // Connect + close sends nothing: spare the TCP_NODELAY call per connect.
  c.no_delay = mode != LoadMode::kConnectClose;
  c.high_water_mark = kLaneHighWaterMark;
  c.max_queued_bytes = kLaneMaxQueuedBytes;
  // A lane's closed connection keeps its slot until its close event is
  // written, while the lane already connects again: room for both.
  c.pool.chunk = lanes < 1024 ? 256 : 1024;
  c.pool.initial = lanes + lanes / 4 + 64;
  c.pool.max_sessions = 2 * lanes + 1024;
  c.pool.low_water = 32;
  c.pool.shrink_idle_ticks = 1u << 30;  // a run is short: never give slots back
  return c;
}

SocketAddress NthSource(const SocketAddress& first, uint32_t n) {
  SocketAddress a = first;
  uint32_t v = (static_cast<uint32_t>(a.addr[0]) << 24) | (static_cast<uint32_t>(a.addr[1]) << 16) |
               (static_cast<uint32_t>(a.addr[2]) << 8) | a.addr[3];
  v += n;
  a.addr[0] = static_cast<uint8_t>(v >> 24);
  a.addr[1] = static_cast<uint8_t>(v >> 16);
  a.addr[2] = static_cast<uint8_t>(v >> 8);
  a.addr[3] = static_cast<uint8_t>(v);
  a.port = 0;
  return a;
}

// The fixed GET of the http modes. One request per connection says so, so
// the server closes its side as it would for such a client.
std::string HttpRequest(const SocketAddress& remote, bool close) {
  std::string host = std::to_string(remote.addr[0]) + "." + std::to_string(remote.addr[1]) + "." +
                     std::to_string(remote.addr[2]) + "." + std::to_string(remote.addr[3]) + ":" +
                     std::to_string(remote.port);
  std::string request = "GET / HTTP/1.1\r\nHost: " + host + "\r\n";
  if (close) request += "Connection: close\r\n";
  return request + "\r\n";
}

SysError ErrorOf(const Status& st) {
  if (st.code == Code::kSystem && st.sys != SysError::kNone) return st.sys;
  if (st.code == Code::kPoolFull || st.code == Code::kNoMemory) return SysError::kNoBufs;
  return SysError::kUnknown;
}

}  // namespace

// ---------------------------------------------------------------- counters

uint64_t LoadCounters::ErrorTotal() const {
  uint64_t sum = mismatches + eofs + timeouts;
  for (uint64_t e : errors) sum += e;
  return sum;
}

void LoadCounters::Merge(const LoadCounters& other) {
  completed += other.completed;
  total += other.total;
  connects += other.connects;
  connected += other.connected;
  abandoned += other.abandoned;
  for (size_t i = 0; i < static_cast<size_t>(SysError::kCount); ++i) errors[i] += other.errors[i];
  mismatches += other.mismatches;
  eofs += other.eofs;
  timeouts += other.timeouts;
  bytes_out += other.bytes_out;
  bytes_in += other.bytes_in;
  peak_open += other.peak_open;
  window_us = std::max(window_us, other.window_us);
  ramp_us = std::max(ramp_us, other.ramp_us);
  latency.Merge(other.latency);
}

// ---------------------------------------------------------------- worker

LoadWorker::LoadWorker(const LoadConfig& config, uint32_t index, uint32_t lanes,
                       std::unique_ptr<Backend> backend)
    : config_(config),
      index_(index),
      engine_(EngineFor(lanes, config.mode), std::move(backend)),
      batches_{{kBatchRecords, kBatchArena}, {kBatchRecords, kBatchArena}},
      lanes_(lanes),
      message_(std::max<uint32_t>(1, std::min(config.message_size, kMaxLoadMessage))),
      retry_ring_(lanes),
      retry_due_(lanes),
      waiting_(lanes) {
  const PoolConfig& pool = engine_.config().pool;
  lane_of_slot_.assign(static_cast<size_t>(pool.max_sessions) + 2 * pool.chunk, 0);
  if (http()) request_ = HttpRequest(config.remote, config.mode == LoadMode::kHttpClose);
}

Status LoadWorker::Init() {
  Status st = engine_.Init();
  if (!st.ok()) return st;
  engine_.SetBatch(&batches_[current_]);
  engine_.SetObserver(this);
  return Status::Ok();
}

// Commands from Begin(), Process() and Stop() queue events that the next
// Poll() writes: it follows at once, so no wake per command.
void LoadWorker::OnWorkOutsidePoll() {
  if (!acting_) engine_.Wake();
}

void LoadWorker::Begin(int64_t now_us) {
  begin_us_ = now_us;
  next_timeout_check_us_ = now_us + kTimeoutScanUs;
  if (persistent()) {
    phase_ = LoadPhase::kRamp;
    phase_end_us_ = now_us + config_.ramp_timeout_us;
  } else {
    phase_ = LoadPhase::kWarmup;
    phase_end_us_ = now_us + config_.warmup_us;
  }
  acting_ = true;
  for (uint32_t i = 0; i < lanes_.size(); ++i) Connect(i, now_us);
  acting_ = false;
  Advance(now_us);
  Publish();
}

void LoadWorker::Poll(int timeout_ms) { engine_.Poll(timeout_ms); }

void LoadWorker::Process(int64_t now_us) {
  // The engine writes into the other batch while this one is read, so
  // commands issued here never disturb the records being walked.
  EventBatch& ready = batches_[current_];
  current_ ^= 1;
  batches_[current_].Clear();
  engine_.SetBatch(&batches_[current_]);
  acting_ = true;
  HandleBatch(ready, now_us);
  if (phase_ < LoadPhase::kDraining) {
    RunRetries(now_us);
    StartWaiting(now_us);
    if (now_us >= next_timeout_check_us_) {
      next_timeout_check_us_ = now_us + kTimeoutScanUs;
      CheckTimeouts(now_us);
    }
  }
  acting_ = false;
  ready.Clear();
  Advance(now_us);
  Publish();
}

int LoadWorker::NextTimeout(int64_t now_us) const {
  if (phase_ == LoadPhase::kDone || engine_.HasPending()) return 0;
  int64_t wait = kMaxWaitUs;
  if (retry_count_ > 0) wait = std::min(wait, retry_due_[retry_head_] - now_us);
  wait = std::min(wait, phase_end_us_ - now_us);
  if (wait <= 0) return 0;
  return static_cast<int>((wait + 999) / 1000);
}

void LoadWorker::Stop(int64_t now_us) {
  if (phase_ >= LoadPhase::kDraining) return;
  if (phase_ == LoadPhase::kMeasure) counters_.window_us = now_us - measure_start_us_;
  acting_ = true;
  for (uint32_t i = 0; i < lanes_.size(); ++i) {
    Lane& lane = lanes_[i];
    if (lane.state == LaneState::kConnecting) ++counters_.abandoned;
    if (lane.state == LaneState::kConnecting || lane.state == LaneState::kOpen) {
      engine_.Close(lane.id, CloseMode::kAbort);
    }
    lane.state = LaneState::kIdle;
  }
  acting_ = false;
  retry_head_ = 0;
  retry_count_ = 0;
  waiting_head_ = 0;
  waiting_count_ = 0;
  connecting_ = 0;
  SetOpen(0);
  phase_ = LoadPhase::kDraining;
  phase_end_us_ = now_us + config_.drain_timeout_us;
  // Reports kServerClosed once the last connection is released.
  engine_.Shutdown();
  Publish();
}

void LoadWorker::HandleBatch(const EventBatch& batch, int64_t now_us) {
  const EventRecord* records = batch.records();
  for (size_t i = 0; i < batch.count(); ++i) {
    const EventRecord& r = records[i];
    SessionId id = static_cast<SessionId>(r.id);
    uint32_t index = 0;
    switch (static_cast<EventType>(static_cast<int>(r.type))) {
      case EventType::kConnected: OnConnected(static_cast<uint32_t>(r.a), id, now_us); break;
      case EventType::kConnectFailed: {
        index = static_cast<uint32_t>(r.a);
        if (index >= lanes_.size()) break;
        Lane& lane = lanes_[index];
        // A connect this lane gave up itself (timeout, stop) is not news.
        if (lane.state != LaneState::kConnecting || lane.id != id) break;
        SysError error = DecodeErrorWord(r.b).sys;
        if (error == SysError::kNone) error = SysError::kUnknown;
        ++counters_.errors[static_cast<size_t>(error)];
        LeaveConnecting(lane);
        lane.state = LaneState::kIdle;
        ScheduleRetry(index, now_us);
        break;
      }
      case EventType::kData: {
        Lane* lane = LaneOf(id, &index);
        if (lane == nullptr || lane->state != LaneState::kOpen) break;
        OnData(*lane, index, batch.data() + static_cast<size_t>(r.a), static_cast<size_t>(r.b),
               now_us);
        break;
      }
      case EventType::kEnd: {
        Lane* lane = LaneOf(id, &index);
        if (lane == nullptr || lane->state != LaneState::kOpen) break;
        ++counters_.eofs;
        Reset(*lane, index, now_us, true);
        break;
      }
      case EventType::kClose: {
        Lane* lane = LaneOf(id, &index);
        if (lane == nullptr || lane->state != LaneState::kOpen) break;
        auto reason = static_cast<CloseReason>(static_cast<int>(r.a));
        SysError error = DecodeErrorWord(r.b).sys;
        if (reason == CloseReason::kRemote) {
          ++counters_.eofs;
        } else if (reason == CloseReason::kTimeout) {
          ++counters_.timeouts;
        } else if (reason == CloseReason::kOverflow) {
          ++counters_.errors[static_cast<size_t>(SysError::kNoBufs)];
        } else {
          ++counters_
                .errors[static_cast<size_t>(error == SysError::kNone ? SysError::kUnknown : error)];
        }
        OnLost(*lane, index, now_us);
        break;
      }
      case EventType::kServerClosed: server_closed_ = true; break;
      default: break;
    }
  }
}

LoadWorker::Lane* LoadWorker::LaneOf(SessionId id, uint32_t* index) {
  uint32_t slot = SlotOf(id);
  if (slot >= lane_of_slot_.size()) return nullptr;
  uint32_t i = lane_of_slot_[slot];
  if (i >= lanes_.size() || lanes_[i].id != id) return nullptr;
  *index = i;
  return &lanes_[i];
}

void LoadWorker::OnConnected(uint32_t index, SessionId id, int64_t now_us) {
  if (index >= lanes_.size()) return;
  Lane& lane = lanes_[index];
  if (lane.state != LaneState::kConnecting || lane.id != id) return;
  ++counters_.connected;
  LeaveConnecting(lane);
  lane.state = LaneState::kOpen;
  SetOpen(open_ + 1);
  if (config_.proxy_v2) SendProxyHeader(lane, index);
  switch (config_.mode) {
    case LoadMode::kConnectClose:
      Complete(lane, now_us - lane.since_us);
      Reset(lane, index, now_us, false);
      break;
    case LoadMode::kReqRep:
    case LoadMode::kHttpClose:
      // The operation's latency runs from the connect to the reply.
      SendMessage(lane, index, now_us);
      break;
    case LoadMode::kEcho:
    case LoadMode::kHttp:
      lane.since_us = now_us;
      SendMessage(lane, index, now_us);
      break;
    case LoadMode::kIdle: break;
  }
}

void LoadWorker::OnData(Lane& lane, uint32_t index, const char* data, size_t size, int64_t now_us) {
  counters_.bytes_in += size;
  if (!awaiting_reply()) return;
  HttpResponseReader::Outcome read =
      http() ? ReadHttp(lane, data, size) : ReadEcho(lane, index, data, size);
  if (read == HttpResponseReader::Outcome::kMore) return;
  if (read == HttpResponseReader::Outcome::kBad) {
    ++counters_.mismatches;
    Reset(lane, index, now_us, true);
    return;
  }
  Complete(lane, now_us - lane.since_us);
  if (one_per_connection()) {
    Reset(lane, index, now_us, false);
    return;
  }
  ++lane.seq;
  lane.since_us = now_us;
  SendMessage(lane, index, now_us);
}

HttpResponseReader::Outcome LoadWorker::ReadEcho(Lane& lane, uint32_t index, const char* data,
                                                 size_t size) {
  uint32_t want = static_cast<uint32_t>(message_.size()) - lane.received;
  bool same = size <= want;
  for (size_t i = 0; same && i < size; ++i) {
    same = static_cast<uint8_t>(data[i]) ==
           MessageByte(index, lane.seq, lane.received + static_cast<uint32_t>(i));
  }
  if (!same) return HttpResponseReader::Outcome::kBad;
  lane.received += static_cast<uint32_t>(size);
  return lane.received < message_.size() ? HttpResponseReader::Outcome::kMore
                                         : HttpResponseReader::Outcome::kDone;
}

HttpResponseReader::Outcome LoadWorker::ReadHttp(Lane& lane, const char* data, size_t size) {
  size_t used = 0;
  HttpResponseReader::Outcome read = lane.response.Feed(data, size, &used);
  // One request is in flight: a byte past its response answers nothing.
  if (read == HttpResponseReader::Outcome::kDone && used < size)
    return HttpResponseReader::Outcome::kBad;
  return read;
}

void LoadWorker::OnLost(Lane& lane, uint32_t index, int64_t now_us) {
  // The engine has closed the connection already: nothing to reset.
  if (lane.state == LaneState::kOpen) SetOpen(open_ - 1);
  lane.state = LaneState::kIdle;
  ScheduleRetry(index, now_us);
}

void LoadWorker::Connect(uint32_t index, int64_t now_us) {
  if (config_.max_connecting == 0 || connecting_ < config_.max_connecting) {
    StartConnect(index, now_us);
    return;
  }
  lanes_[index].state = LaneState::kWaiting;
  waiting_[(waiting_head_ + waiting_count_) % waiting_.size()] = index;
  ++waiting_count_;
}

void LoadWorker::StartWaiting(int64_t now_us) {
  while (waiting_count_ > 0 &&
         (config_.max_connecting == 0 || connecting_ < config_.max_connecting)) {
    uint32_t index = waiting_[waiting_head_];
    waiting_head_ = (waiting_head_ + 1) % waiting_.size();
    --waiting_count_;
    if (lanes_[index].state == LaneState::kWaiting) StartConnect(index, now_us);
  }
}

void LoadWorker::StartConnect(uint32_t index, int64_t now_us) {
  Lane& lane = lanes_[index];
  SocketAddress local;
  const SocketAddress* bind_to = nullptr;
  if (config_.sources > 0) {
    local = NthSource(config_.first_source, next_source_);
    next_source_ = next_source_ + 1 >= config_.sources ? 0 : next_source_ + 1;
    bind_to = &local;
  }
  SessionId id = 0;
  ++counters_.connects;
  Status st = engine_.Connect(config_.remote, bind_to, index, &id);
  if (!st.ok()) {
    ++counters_.errors[static_cast<size_t>(ErrorOf(st))];
    lane.state = LaneState::kIdle;
    ScheduleRetry(index, now_us);
    return;
  }
  lane.id = id;
  lane.state = LaneState::kConnecting;
  lane.since_us = now_us;
  lane.received = 0;
  lane_of_slot_[SlotOf(id)] = index;
  ++connecting_;
}

void LoadWorker::LeaveConnecting(Lane& lane) {
  if (lane.state == LaneState::kConnecting) --connecting_;
}

uint8_t LoadWorker::MessageByte(uint32_t lane, uint32_t seq, uint32_t offset) const {
  // Differs per lane, per message and per position, so a reply meant for
  // another connection or an earlier message never passes the check.
  return static_cast<uint8_t>(lane * 131u + seq * 31u + offset * 7u + index_ * 17u + 1u);
}

// A v2 PROXY command for TCP over IPv4: the lane's own client address and
// port, and the server's address as the destination.
void LoadWorker::SendProxyHeader(Lane& lane, uint32_t index) {
  static constexpr uint8_t kPrefix[16] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51,
                                          0x55, 0x49, 0x54, 0x0A, 0x21, 0x11, 0x00, 12};
  uint8_t header[sizeof(kPrefix) + 12];
  std::memcpy(header, kPrefix, sizeof(kPrefix));
  uint32_t client = (198u << 24) | (18u << 16) | ((index_ & 1u) << 16) | (index & 0xFFFFu);
  uint8_t* block = header + sizeof(kPrefix);
  for (int i = 0; i < 4; ++i) block[i] = static_cast<uint8_t>(client >> (24 - 8 * i));
  std::memcpy(block + 4, config_.remote.addr, 4);
  uint16_t source_port = static_cast<uint16_t>(1024 + index % 64000);
  block[8] = static_cast<uint8_t>(source_port >> 8);
  block[9] = static_cast<uint8_t>(source_port);
  block[10] = static_cast<uint8_t>(config_.remote.port >> 8);
  block[11] = static_cast<uint8_t>(config_.remote.port);
  counters_.bytes_out += sizeof(header);
  engine_.Send(lane.id, reinterpret_cast<const char*>(header), sizeof(header));
}

void LoadWorker::SendMessage(Lane& lane, uint32_t index, int64_t now_us) {
  (void)now_us;
  lane.received = 0;
  if (http()) {
    lane.response.Reset();
    counters_.bytes_out += request_.size();
    engine_.Send(lane.id, request_.data(), request_.size());
    return;
  }
  uint32_t size = static_cast<uint32_t>(message_.size());
  for (uint32_t i = 0; i < size; ++i)
    message_[i] = static_cast<char>(MessageByte(index, lane.seq, i));
  counters_.bytes_out += size;
  // A failed send closes the session inside the engine; its kClose follows.
  engine_.Send(lane.id, message_.data(), size);
}

void LoadWorker::Complete(Lane& lane, int64_t latency_us) {
  (void)lane;
  ++counters_.total;
  if (!measuring()) return;
  ++counters_.completed;
  counters_.latency.Record(latency_us > 0 ? static_cast<uint64_t>(latency_us) : 0);
}

void LoadWorker::Reset(Lane& lane, uint32_t index, int64_t now_us, bool pause) {
  if (lane.state == LaneState::kConnecting || lane.state == LaneState::kOpen) {
    if (lane.state == LaneState::kOpen) SetOpen(open_ - 1);
    LeaveConnecting(lane);
    engine_.Close(lane.id, CloseMode::kAbort);
  }
  lane.state = LaneState::kIdle;
  if (phase_ >= LoadPhase::kDraining) return;
  if (pause) {
    ScheduleRetry(index, now_us);
  } else {
    Connect(index, now_us);
  }
}

void LoadWorker::ScheduleRetry(uint32_t index, int64_t now_us) {
  if (phase_ >= LoadPhase::kDraining || lanes_[index].state == LaneState::kRetry) return;
  // A lane is in the ring at most once, so the ring (one entry per lane)
  // never overflows.
  lanes_[index].state = LaneState::kRetry;
  size_t tail = (retry_head_ + retry_count_) % retry_ring_.size();
  retry_ring_[tail] = index;
  retry_due_[tail] = now_us + config_.retry_delay_us;
  ++retry_count_;
}

void LoadWorker::RunRetries(int64_t now_us) {
  while (retry_count_ > 0 && retry_due_[retry_head_] <= now_us) {
    uint32_t index = retry_ring_[retry_head_];
    retry_head_ = (retry_head_ + 1) % retry_ring_.size();
    --retry_count_;
    if (lanes_[index].state != LaneState::kRetry) continue;
    lanes_[index].state = LaneState::kIdle;
    Connect(index, now_us);
  }
}

void LoadWorker::CheckTimeouts(int64_t now_us) {
  for (uint32_t i = 0; i < lanes_.size(); ++i) {
    Lane& lane = lanes_[i];
    bool waiting = lane.state == LaneState::kConnecting ||
                   (lane.state == LaneState::kOpen && awaiting_reply());
    if (!waiting || now_us - lane.since_us <= config_.op_timeout_us) continue;
    ++counters_.timeouts;
    Reset(lane, i, now_us, false);
  }
}

void LoadWorker::Advance(int64_t now_us) {
  for (;;) {
    switch (phase_) {
      case LoadPhase::kRamp:
        if (open_ < lanes_.size() && now_us < phase_end_us_) return;
        counters_.ramp_us = now_us - begin_us_;
        if (config_.mode == LoadMode::kIdle) {
          phase_ = LoadPhase::kHold;
          phase_end_us_ = now_us + config_.duration_us;
        } else {
          phase_ = LoadPhase::kWarmup;
          phase_end_us_ = now_us + config_.warmup_us;
        }
        break;
      case LoadPhase::kWarmup:
        if (now_us < phase_end_us_) return;
        phase_ = LoadPhase::kMeasure;
        measure_start_us_ = now_us;
        phase_end_us_ = now_us + config_.duration_us;
        break;
      case LoadPhase::kMeasure:
      case LoadPhase::kHold:
        if (now_us < phase_end_us_) return;
        if (phase_ == LoadPhase::kMeasure) {
          counters_.window_us = now_us - measure_start_us_;
          // Ends the window before Stop() could see it as cut short.
          phase_ = LoadPhase::kHold;
        }
        Stop(now_us);
        break;
      case LoadPhase::kDraining:
        if (!server_closed_ && now_us < phase_end_us_) return;
        phase_ = LoadPhase::kDone;
        return;
      case LoadPhase::kDone: return;
    }
  }
}

void LoadWorker::SetOpen(uint32_t open) {
  open_ = open;
  if (open > counters_.peak_open) counters_.peak_open = open;
}

void LoadWorker::Publish() {
  progress_.total.store(counters_.total, std::memory_order_relaxed);
  progress_.completed.store(counters_.completed, std::memory_order_relaxed);
  progress_.errors.store(counters_.ErrorTotal(), std::memory_order_relaxed);
  progress_.open.store(open_, std::memory_order_relaxed);
  progress_.phase.store(static_cast<uint8_t>(phase_), std::memory_order_release);
}

// ---------------------------------------------------------------- generator

LoadGenerator::LoadGenerator(const LoadConfig& config) : config_(config) {}

LoadGenerator::~LoadGenerator() {
  Stop();
  Join();
}

int64_t LoadGenerator::NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Status LoadGenerator::Start(const BackendFactory& factory, std::function<void()> on_done) {
  if (!workers_.empty() || config_.connections == 0 || config_.threads == 0 ||
      config_.threads > kMaxLoadThreads || config_.message_size == 0 ||
      config_.message_size > kMaxLoadMessage || config_.duration_us < 0 || config_.warmup_us < 0) {
    return Status::Of(Code::kInvalid);
  }
  // Never a thread without lanes.
  uint32_t threads = std::min(config_.threads, config_.connections);
  for (uint32_t t = 0; t < threads; ++t) {
    uint32_t lanes = config_.connections / threads + (t < config_.connections % threads ? 1 : 0);
    if (lanes > kMaxLanesPerThread) return Status::Of(Code::kInvalid);
    std::unique_ptr<Backend> backend = factory ? factory() : nullptr;
    if (!backend) return Status::Of(Code::kInvalid);
    auto worker = std::make_unique<LoadWorker>(config_, t, lanes, std::move(backend));
    Status st = worker->Init();
    if (!st.ok()) {
      workers_.clear();
      return st;
    }
    workers_.push_back(std::move(worker));
  }
  on_done_ = std::move(on_done);
  running_.store(threads, std::memory_order_release);
  for (auto& worker : workers_) {
    LoadWorker* w = worker.get();
    threads_.emplace_back([this, w] { RunWorker(w); });
  }
  return Status::Ok();
}

void LoadGenerator::RunWorker(LoadWorker* worker) {
  worker->Begin(NowUs());
  bool stopped = false;
  while (!worker->done()) {
    int64_t now = NowUs();
    if (!stopped && stop_.load(std::memory_order_acquire)) {
      worker->Stop(now);
      stopped = true;
    }
    worker->Poll(worker->NextTimeout(now));
    worker->Process(NowUs());
  }
  if (running_.fetch_sub(1, std::memory_order_acq_rel) == 1 && on_done_) on_done_();
}

void LoadGenerator::Stop() {
  stop_.store(true, std::memory_order_release);
  if (threads_.empty()) return;
  for (auto& worker : workers_) worker->engine().Wake();
}

void LoadGenerator::Join() {
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

uint64_t LoadGenerator::total() const {
  uint64_t sum = 0;
  for (const auto& w : workers_) sum += w->progress().total.load(std::memory_order_relaxed);
  return sum;
}

uint64_t LoadGenerator::completed() const {
  uint64_t sum = 0;
  for (const auto& w : workers_) sum += w->progress().completed.load(std::memory_order_relaxed);
  return sum;
}

uint64_t LoadGenerator::errors() const {
  uint64_t sum = 0;
  for (const auto& w : workers_) sum += w->progress().errors.load(std::memory_order_relaxed);
  return sum;
}

uint32_t LoadGenerator::open() const {
  uint32_t sum = 0;
  for (const auto& w : workers_) sum += w->progress().open.load(std::memory_order_relaxed);
  return sum;
}

LoadPhase LoadGenerator::phase() const {
  uint8_t least = static_cast<uint8_t>(LoadPhase::kDone);
  for (const auto& w : workers_) {
    least = std::min(least, w->progress().phase.load(std::memory_order_acquire));
  }
  return static_cast<LoadPhase>(least);
}

LoadResult LoadGenerator::Result() const {
  LoadResult r;
  r.threads = static_cast<uint32_t>(workers_.size());
  for (const auto& w : workers_) {
    const LoadCounters& c = w->counters();
    r.totals.Merge(c);
    r.lanes += w->lanes();
    if (c.window_us > 0)
      r.rate += static_cast<double>(c.completed) * 1e6 / static_cast<double>(c.window_us);
  }
  return r;
}

}  // namespace acceptpool
