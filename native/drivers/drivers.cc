#include "drivers/drivers.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "core/capacity.h"
#include "drivers/command_queue.h"

namespace acceptpool {
namespace {

// The name a refused control has in kStale records.
StaleCommand StaleCommandOf(SessionControl control) {
  switch (control) {
    case SessionControl::kPause: return StaleCommand::kPause;
    case SessionControl::kResume: return StaleCommand::kResume;
    case SessionControl::kTimeout: return StaleCommand::kSetTimeout;
    case SessionControl::kNoDelay: return StaleCommand::kSetNoDelay;
    case SessionControl::kKeepAlive: return StaleCommand::kSetKeepAlive;
  }
  return StaleCommand::kClose;
}

// ---------------------------------------------------------------- inline

class InlineDriver final : public Driver, private EngineObserver {
 public:
  InlineDriver(Engine* engine, const BatchLimits& limits, DeliverFn deliver)
      : engine_(engine), batch_(limits.records, limits.data_bytes), deliver_(std::move(deliver)) {
    engine_->SetBatch(&batch_);
    engine_->SetObserver(this);
  }
  ~InlineDriver() override {
    Stop();
    // The batch and the observer die with this driver: the engine must not
    // reach them.
    engine_->SetBatch(nullptr);
    engine_->SetObserver(nullptr);
  }

  const char* name() const override { return "inline"; }

  Status Start(EventLoop* loop) override {
    return loop->WatchReadable(
        engine_->PollDescriptor(),
        [](void* self) { static_cast<InlineDriver*>(self)->RunRounds(); }, this, &poll_);
  }

  Status Connect(uint32_t token, const SocketAddress& remote, const SocketAddress* local) override {
    SessionId id;
    Status st = engine_->Connect(remote, local, token, &id);
    // Outside a delivery nothing else would run a poll round soon.
    if (st.ok()) engine_->Wake();
    return st;
  }

  void AbortConnect(uint32_t token) override { engine_->AbortConnect(token); }

  SendResult Send(SessionId id, const char* data, size_t size) override {
    return engine_->Send(id, data, size);
  }
  bool Close(SessionId id, CloseMode mode) override { return engine_->Close(id, mode); }
  bool Control(SessionId id, SessionControl control, uint32_t a, uint32_t b) override {
    return engine_->Control(id, control, a, b);
  }
  uint32_t Broadcast(const char* data, size_t size, const SessionId* ids, size_t count) override {
    return engine_->Broadcast(data, size, ids, count);
  }
  int64_t BufferedAmount(SessionId id) override { return engine_->BufferedAmount(id); }
  bool Query(SessionId id, SessionInfo* out) override { return engine_->Query(id, out); }
  void Shutdown() override { engine_->Shutdown(); }
  void Drain() override { engine_->Drain(); }
  Stats GetStats(std::vector<Stats>* per_thread) override {
    Stats s = engine_->SnapshotStats();
    if (per_thread != nullptr) per_thread->assign(1, s);
    return s;
  }
  void SetRef(bool ref) override {
    if (poll_) poll_->SetRef(ref);
  }
  void Stop() override {
    stopped_ = true;
    poll_.reset();
  }

 private:
  // A few poll rounds per wakeup, then back to Node's loop so timers and
  // other I/O get their turn; level-triggered epoll calls us again.
  static constexpr int kMaxRounds = 8;

  void RunRounds() {
    for (int i = 0; i < kMaxRounds && !stopped_; ++i) {
      engine_->Poll(0);
      bool more = engine_->MoreWork();
      if (batch_.empty()) break;
      delivering_ = true;
      deliver_(batch_);
      delivering_ = false;
      // Skip the round that would only find nothing; what JS queued meanwhile
      // is written by the Wake below.
      if (engine_->closed() || !more) break;
    }
    // Events queued by JS that no round has written yet.
    if (!stopped_ && (engine_->HasPending() || !batch_.empty())) engine_->Wake();
  }

  // EngineObserver. During a delivery the rounds above, or the wake after
  // them, write what JS queues: no wake per command.
  void OnWorkOutsidePoll() override {
    if (!delivering_) engine_->Wake();
  }

  Engine* engine_;
  EventBatch batch_;
  DeliverFn deliver_;
  std::unique_ptr<LoopWatcher> poll_;
  bool stopped_ = false;
  bool delivering_ = false;
};

// ---------------------------------------------------------------- threaded

// One I/O thread per engine (threads: N). Each lane has its own command
// queue, batches and notes, so the threads share nothing on the hot path
// but the buffered-byte counters (one per id slot, and id slots are unique
// across engines). A command that names a session goes to the lane of the
// engine that owns its id (PushById: the one place that routes); batches of
// every lane reach JS through one wake, each lane's in order.
class ThreadedDriver final : public Driver {
 public:
  static constexpr size_t kCommandBytes = 8 * 1024 * 1024;
  static constexpr size_t kMaxNotes = 4096;
  // What the notes and the broadcast ids keep when idle.
  static constexpr size_t kKeepNotes = 256;
  static constexpr size_t kKeepIds = 1024;
  // Command::mode of a kBroadcast to every open session.
  static constexpr uint8_t kToEveryone = 1;

  ThreadedDriver(const std::vector<Engine*>& engines, const BatchLimits& limits, DeliverFn deliver)
      : deliver_(std::move(deliver)) {
    // One counter per possible id slot of every engine. calloc'ed so
    // untouched pages cost no memory; std::atomic<uint32_t> is lock-free
    // with an all-zero representation on every platform we build for.
    uint64_t span = static_cast<uint64_t>(engines[0]->config().pool.slot_limit) * engines.size();
    counters_size_ = static_cast<size_t>(std::min<uint64_t>(span, kMaxSlots));
    counters_.reset(static_cast<std::atomic<uint32_t>*>(
        std::calloc(counters_size_, sizeof(std::atomic<uint32_t>))));
    if (!counters_) counters_size_ = 0;
    for (Engine* engine : engines) lanes_.push_back(std::make_unique<Lane>(this, engine, limits));
  }
  ~ThreadedDriver() override {
    Stop();
    lanes_.clear();  // the lanes detach from their engines
  }

  const char* name() const override { return "threaded"; }

  Status Start(EventLoop* loop) override {
    if (!counters_) return Status::Of(Code::kNoMemory);
    Status st = loop->NewAsync(
        [](void* self) { static_cast<ThreadedDriver*>(self)->DeliverReady(); }, this, &async_);
    if (!st.ok()) return st;
    for (auto& lane : lanes_) lane->Start();
    return Status::Ok();
  }

  Status Connect(uint32_t token, const SocketAddress& remote, const SocketAddress* local) override {
    Command c{};
    c.kind = CommandKind::kConnect;
    c.id = token;
    c.mode = local != nullptr ? 1 : 0;
    SocketAddress none;
    // Outgoing connects take turns over the threads.
    Lane& lane = *lanes_[next_connect_++ % lanes_.size()];
    lane.Push(c, &remote, sizeof(remote), local != nullptr ? local : &none, sizeof(SocketAddress));
    return Status::Ok();
  }

  void AbortConnect(uint32_t token) override {
    // Rare (a connect timeout), and only the lane that has the connect
    // finds it.
    Command c{};
    c.kind = CommandKind::kAbortConnect;
    c.id = token;
    for (auto& lane : lanes_) lane->Push(c, nullptr, 0);
  }

  SendResult Send(SessionId id, const char* data, size_t size) override {
    uint32_t slot = SlotOf(id);
    if (slot >= counters_size_) {
      engine_stale_js_.fetch_add(1, std::memory_order_relaxed);
      return SendResult::kStale;
    }
    size_t before = Account(id, size);
    bool pressure = before + size > high_water_mark();
    Command c{};
    c.kind = CommandKind::kSend;
    c.pressure = pressure;
    c.id = id;
    PushById(c, data, size);
    return pressure ? SendResult::kBackpressure : SendResult::kOk;
  }

  bool Close(SessionId id, CloseMode mode) override {
    Command c{};
    c.kind = CommandKind::kClose;
    c.mode = static_cast<uint8_t>(mode);
    c.id = id;
    PushById(c, nullptr, 0);
    return true;
  }

  bool Control(SessionId id, SessionControl control, uint32_t a, uint32_t b) override {
    Command c{};
    c.kind = CommandKind::kControl;
    c.mode = static_cast<uint8_t>(control);
    c.id = id;
    uint32_t args[2] = {a, b};
    PushById(c, args, sizeof(args));
    return true;
  }

  uint32_t Broadcast(const char* data, size_t size, const SessionId* ids, size_t count) override {
    Command c{};
    c.kind = CommandKind::kBroadcast;
    if (ids == nullptr) {
      c.mode = kToEveryone;
      uint64_t reached = 0;
      for (auto& lane : lanes_) {
        lane->Push(c, data, size);
        reached += lane->Published().in_use;
      }
      return static_cast<uint32_t>(reached);
    }
    if (lanes_.size() == 1) {
      c.id_count = count;
      lanes_[0]->Push(c, data, size, ids, count * sizeof(SessionId));
      return static_cast<uint32_t>(count);
    }
    // Each lane gets the ids it owns, through scratch lists of the JS
    // thread (they keep the size of the largest list JS has broadcast to,
    // which JS held itself).
    for (auto& lane : lanes_) lane->split.clear();
    for (size_t i = 0; i < count; ++i) OwnerOf(ids[i]).split.push_back(ids[i]);
    for (auto& lane : lanes_) {
      if (lane->split.empty()) continue;
      c.id_count = lane->split.size();
      lane->Push(c, data, size, lane->split.data(), lane->split.size() * sizeof(SessionId));
    }
    return static_cast<uint32_t>(count);
  }

  int64_t BufferedAmount(SessionId id) override {
    uint32_t slot = SlotOf(id);
    if (slot >= counters_size_) return -1;
    return counters_[slot].load(std::memory_order_acquire);
  }

  void Shutdown() override {
    Command c{};
    c.kind = CommandKind::kShutdown;
    for (auto& lane : lanes_) lane->Push(c, nullptr, 0);
  }

  void Drain() override {
    Command c{};
    c.kind = CommandKind::kDrain;
    for (auto& lane : lanes_) lane->Push(c, nullptr, 0);
  }

  bool Query(SessionId id, SessionInfo* out) override {
    // The owning I/O thread always gets to its commands without waiting on
    // JS (between polls, or while it waits for a batch), so this returns.
    QueryCall call;
    call.out = out;
    QueryCall* target = &call;
    Command c{};
    c.kind = CommandKind::kQuery;
    c.id = id;
    PushById(c, &target, sizeof(target));
    std::unique_lock<std::mutex> lock(query_mutex_);
    query_answered_.wait(lock, [&] { return call.done; });
    return call.found;
  }

  Stats GetStats(std::vector<Stats>* per_thread) override {
    Stats total;
    if (per_thread != nullptr) per_thread->clear();
    for (auto& lane : lanes_) {
      Stats one = lane->Published();
      AddStats(&total, one);
      if (per_thread != nullptr) per_thread->push_back(one);
    }
    // Sends refused here have no thread; the endpoint's total counts them.
    total.stale_commands += engine_stale_js_.load(std::memory_order_relaxed);
    total.peak_in_use = std::max(total.peak_in_use, peak_.load(std::memory_order_relaxed));
    return total;
  }

  void SetRef(bool ref) override {
    if (async_) async_->SetRef(ref);
  }

  void Stop() override {
    // Every thread is told before any is joined, so they stop together.
    stop_.store(true, std::memory_order_release);
    for (auto& lane : lanes_) lane->RequestStop();
    for (auto& lane : lanes_) lane->Join();
    async_.reset();
  }

 private:
  class Lane;

  Lane& OwnerOf(SessionId id) {
    return *lanes_[ThreadOf(id, static_cast<uint32_t>(lanes_.size()))];
  }

  // Every command that names a session goes to the thread that owns it.
  void PushById(const Command& c, const void* a, size_t a_size, const void* b = nullptr,
                size_t b_size = 0) {
    OwnerOf(c.id).Push(c, a, a_size, b, b_size);
  }

  size_t high_water_mark() const { return lanes_[0]->engine()->config().high_water_mark; }

  // Counts `size` bytes handed over for the session (JS thread for a send,
  // I/O thread for a broadcast); the engine reports them leaving
  // (OnSendLeft). Returns the count before.
  size_t Account(SessionId id, size_t size) {
    uint32_t slot = SlotOf(id);
    if (slot >= counters_size_) return 0;
    return counters_[slot].fetch_add(static_cast<uint32_t>(size), std::memory_order_acq_rel);
  }
  size_t Counted(SessionId id, size_t otherwise) const {
    uint32_t slot = SlotOf(id);
    return slot < counters_size_ ? counters_[slot].load(std::memory_order_acquire) : otherwise;
  }
  void Uncount(SessionId id, size_t bytes) {
    uint32_t slot = SlotOf(id);
    if (slot < counters_size_)
      counters_[slot].fetch_sub(static_cast<uint32_t>(bytes), std::memory_order_acq_rel);
  }
  bool stopping() const { return stop_.load(std::memory_order_acquire); }

  // A Query waiting on the JS thread for its answer.
  struct QueryCall {
    SessionInfo* out = nullptr;
    bool found = false;
    bool done = false;  // guarded by query_mutex_
  };
  void Answer(QueryCall* call, bool found) {
    {
      std::lock_guard<std::mutex> lock(query_mutex_);
      call->found = found;
      call->done = true;
    }
    query_answered_.notify_all();
  }

  // ---- I/O threads ----

  // The endpoint's peakInUse with several threads (README, "I/O threads"
  // says exactly what it is). Each thread, at the end of a round in which
  // its count of sessions in use rose, adds the counts every thread
  // published at the end of its latest round. Exact would take a shared
  // atomic per accept and per release; this costs a few relaxed loads per
  // busy round, next to the round's copy of the stats.
  void EndpointPeak(Lane& lane, uint64_t in_use) {
    // Only this thread writes its count: a round that changed nothing
    // leaves the cache line alone.
    uint64_t before = lane.in_use.load(std::memory_order_relaxed);
    if (in_use == before) return;
    lane.in_use.store(in_use, std::memory_order_relaxed);
    if (in_use < before || lanes_.size() < 2) return;
    uint64_t sum = 0;
    for (auto& other : lanes_) sum += other->in_use.load(std::memory_order_relaxed);
    uint64_t peak = peak_.load(std::memory_order_relaxed);
    while (sum > peak && !peak_.compare_exchange_weak(peak, sum, std::memory_order_relaxed)) {
    }
  }

  // ---- JS thread ----

  void DeliverReady() {
    for (auto& lane : lanes_) {
      lane->TakeReady(&delivering_);
      for (EventBatch* batch : delivering_) {
        deliver_(*batch);
        lane->GiveBack(batch);
      }
      delivering_.clear();
    }
  }

  // One I/O thread and the engine it runs.
  class Lane final : private EngineObserver {
   public:
    Lane(ThreadedDriver* driver, Engine* engine, const BatchLimits& limits)
        : driver_(driver), engine_(engine), commands_(kCommandBytes) {
      for (size_t i = 0; i < kThreadedBatches; ++i) {
        batches_.push_back(std::make_unique<EventBatch>(limits.records, limits.data_bytes));
        spare_.push_back(batches_.back().get());
      }
      current_ = spare_.back();
      spare_.pop_back();
      engine_->SetBatch(current_);
      engine_->SetObserver(this);
      published_ = engine_->SnapshotStats();
    }
    ~Lane() override {
      // The batches and the observer die with the lane: an engine that
      // outlives it must not reach them.
      engine_->SetBatch(nullptr);
      engine_->SetObserver(nullptr);
    }

    Engine* engine() const { return engine_; }
    void Start() {
      thread_ = std::thread([this] { Run(); });
    }
    void RequestStop() {
      if (!thread_.joinable()) return;
      commands_.Close();
      space_.notify_all();
      engine_->Wake();
    }
    void Join() {
      if (thread_.joinable()) thread_.join();
    }

    void Push(const Command& c, const void* a, size_t a_size, const void* b = nullptr,
              size_t b_size = 0) {
      if (commands_.Push(c, a, a_size, b, b_size)) engine_->Wake();
    }

    Stats Published() {
      std::lock_guard<std::mutex> lock(mutex_);
      return published_;
    }

    // JS thread: the batches ready for it, and each one back once delivered.
    void TakeReady(std::vector<EventBatch*>* out) {
      std::lock_guard<std::mutex> lock(mutex_);
      out->swap(ready_);
    }
    void GiveBack(EventBatch* batch) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        spare_.push_back(batch);
      }
      space_.notify_one();
    }

    std::vector<SessionId> split;  // Broadcast's scratch list (JS thread)
    // Sessions in use at the end of this thread's latest round (EndpointPeak).
    std::atomic<uint64_t> in_use{0};

   private:
    // ---- EngineObserver (I/O thread) ----

    // What JS has handed over and the engine has not yet sent or dropped,
    // commands on their way included.
    size_t Buffered(SessionId id, size_t queued) override { return driver_->Counted(id, queued); }
    void OnSendLeft(SessionId id, size_t bytes) override { driver_->Uncount(id, bytes); }
    // Outside a poll the I/O thread is in HandOff(), waiting for a batch.
    void OnWorkOutsidePoll() override { engine_->Wake(); }
    void OnWake() override { RunCommands(); }
    size_t OnTick() override { return TrimBuffers(); }

    // ---- I/O thread ----

    void Run() {
      while (!driver_->stopping()) {
        // Notes waiting for batch room must not sleep in the backend.
        engine_->Poll(notes_.empty() ? -1 : 0);
        WriteNotes();
        HandOff();
      }
    }

    // Outcomes of commands that JS could only be told later: a command sent
    // while the id looked live but found stale (dropped and counted by the
    // engine) or, for a send, its session closing here (kStale: JS had to
    // return true), or a connect that could not start (kConnectFailed).
    // Bounded: past the cap a stale note is lost (its count is not); connect
    // failures are few, as connects are.
    void Note(EventType type, SessionId id, double a, double b = 0) {
      if (type == EventType::kStale && notes_.size() >= kMaxNotes) return;
      notes_.push_back(EventRecord{static_cast<double>(type), static_cast<double>(id), a, b});
      notes_peak_.Note(notes_.size());
    }

    // Once a period (the engine's tick): the buffers that grow with a burst
    // (commands, notes, broadcast ids) give back what the period did not
    // need.
    size_t TrimBuffers() {
      return commands_.Trim(&work_) + ShrinkTo(&notes_, notes_peak_.EndPeriod(kKeepNotes)) +
             ShrinkTo(&ids_, ids_peak_.EndPeriod(kKeepIds));
    }

    void WriteNotes() {
      if (current_ == nullptr) return;
      size_t n = 0;
      while (n < notes_.size() && current_->HasRecordRoom(1)) {
        const EventRecord& r = notes_[n];
        current_->Add(static_cast<EventType>(static_cast<int>(r.type)),
                      static_cast<SessionId>(r.id), r.a, r.b);
        ++n;
      }
      notes_.erase(notes_.begin(), notes_.begin() + static_cast<std::ptrdiff_t>(n));
    }

    void RunCommands() {
      while (commands_.Take(&work_)) {
        for (const Command& c : work_.commands) Execute(c);
        work_.Clear();
      }
    }

    void Execute(const Command& c) {
      const char* payload = work_.bytes.data() + c.offset;
      switch (c.kind) {
        case CommandKind::kSend: {
          // JS returned true for this send. Refused here as stale, or because
          // the session was already closing, its bytes go nowhere: say so. (A
          // failed write or an overflow closes the session, whose reason says
          // why.)
          SendResult r = engine_->Send(c.id, payload, c.size);
          if (r == SendResult::kStale || r == SendResult::kClosed) {
            Note(EventType::kStale, c.id, static_cast<double>(StaleCommand::kSend));
          } else if (c.pressure && r == SendResult::kOk) {
            // JS reported backpressure on its count, which has eased since.
            engine_->RequestDrain(c.id);
          }
          break;
        }
        case CommandKind::kClose:
          if (!engine_->Close(c.id, static_cast<CloseMode>(c.mode))) {
            Note(EventType::kStale, c.id, static_cast<double>(StaleCommand::kClose));
          }
          break;
        case CommandKind::kControl: {
          uint32_t args[2];
          std::memcpy(args, payload, sizeof(args));
          SessionControl control = static_cast<SessionControl>(c.mode);
          if (!engine_->Control(c.id, control, args[0], args[1])) {
            Note(EventType::kStale, c.id, static_cast<double>(StaleCommandOf(control)));
          }
          break;
        }
        case CommandKind::kQuery: {
          QueryCall* call;
          std::memcpy(&call, payload, sizeof(call));
          driver_->Answer(call, engine_->Query(c.id, call->out));
          break;
        }
        case CommandKind::kAbortConnect: engine_->AbortConnect(static_cast<uint32_t>(c.id)); break;
        case CommandKind::kConnect: {
          SocketAddress remote;
          SocketAddress local;
          std::memcpy(&remote, payload, sizeof(remote));
          std::memcpy(&local, payload + sizeof(remote), sizeof(local));
          uint32_t token = static_cast<uint32_t>(c.id);
          SessionId id;
          Status st = engine_->Connect(remote, c.mode != 0 ? &local : nullptr, token, &id);
          if (!st.ok()) {
            Note(EventType::kConnectFailed, 0, token, EncodeErrorWord(RecordError::Of(st)));
          }
          break;
        }
        case CommandKind::kBroadcast:
          if (c.mode == kToEveryone) {
            engine_->ListOpen(&ids_);
          } else if (c.id_count > 0) {
            // The ids follow the payload unaligned; copy them out.
            ids_.resize(c.id_count);
            std::memcpy(ids_.data(), payload + c.size, c.id_count * sizeof(SessionId));
          }
          ids_peak_.Note(ids_.size());
          // JS counted nothing for a broadcast: count it here, so that what
          // the engine reports leaving balances.
          for (SessionId id : ids_) driver_->Account(id, c.size);
          // (An empty vector's data() may be null, which would mean everyone.)
          if (!ids_.empty()) engine_->Broadcast(payload, c.size, ids_.data(), ids_.size());
          ids_.clear();
          break;
        case CommandKind::kShutdown: engine_->Shutdown(); break;
        case CommandKind::kDrain: engine_->Drain(); break;
      }
    }

    // Hands the filled batch to JS and takes a spare one. With none spare,
    // JS is behind: keep executing commands (they need no batch) but do no
    // I/O until JS returns a batch.
    void HandOff() {
      std::unique_lock<std::mutex> lock(mutex_);
      published_ = engine_->SnapshotStats();
      driver_->EndpointPeak(*this, published_.in_use);
      if (current_->empty()) return;
      ready_.push_back(current_);
      current_ = nullptr;
      engine_->SetBatch(nullptr);
      lock.unlock();
      driver_->async_->Send();
      lock.lock();
      while (spare_.empty() && !driver_->stopping()) {
        space_.wait_for(lock, std::chrono::milliseconds(2));
        lock.unlock();
        RunCommands();
        lock.lock();
      }
      if (spare_.empty()) return;  // stopping
      current_ = spare_.back();
      spare_.pop_back();
      current_->Clear();
      engine_->SetBatch(current_);
    }

    ThreadedDriver* driver_;
    Engine* engine_;
    CommandQueue commands_;
    CommandQueue::Side work_;
    std::vector<SessionId> ids_;      // I/O thread only
    std::vector<EventRecord> notes_;  // I/O thread only
    PeakTracker ids_peak_;
    PeakTracker notes_peak_;
    std::vector<std::unique_ptr<EventBatch>> batches_;

    std::mutex mutex_;
    std::condition_variable space_;
    std::vector<EventBatch*> ready_;  // guarded by mutex_
    std::vector<EventBatch*> spare_;  // guarded by mutex_
    Stats published_;                 // guarded by mutex_
    EventBatch* current_ = nullptr;   // I/O thread only (after Start)
    std::thread thread_;
  };

  struct FreeDeleter {
    void operator()(std::atomic<uint32_t>* p) const { std::free(p); }
  };

  DeliverFn deliver_;
  std::vector<std::unique_ptr<Lane>> lanes_;
  std::vector<EventBatch*> delivering_;  // JS thread only
  size_t next_connect_ = 0;              // JS thread only
  std::unique_ptr<std::atomic<uint32_t>[], FreeDeleter> counters_;
  size_t counters_size_ = 0;
  std::atomic<uint64_t> engine_stale_js_{0};
  std::atomic<uint64_t> peak_{0};  // EndpointPeak
  std::mutex query_mutex_;
  std::condition_variable query_answered_;
  std::atomic<bool> stop_{false};
  std::unique_ptr<LoopAsync> async_;  // created before the threads start, reset after they end
};

}  // namespace

std::unique_ptr<Driver> MakeInlineDriver(Engine* engine, const BatchLimits& limits,
                                         DeliverFn deliver) {
  return std::make_unique<InlineDriver>(engine, limits, std::move(deliver));
}

std::unique_ptr<Driver> MakeThreadedDriver(Engine* engine, const BatchLimits& limits,
                                           DeliverFn deliver) {
  return MakeThreadedDriver(std::vector<Engine*>{engine}, limits, std::move(deliver));
}

std::unique_ptr<Driver> MakeThreadedDriver(const std::vector<Engine*>& engines,
                                           const BatchLimits& limits, DeliverFn deliver) {
  return std::make_unique<ThreadedDriver>(engines, limits, std::move(deliver));
}

}  // namespace acceptpool
