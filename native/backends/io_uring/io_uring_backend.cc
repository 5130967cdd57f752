#include "backends/io_uring/io_uring_backend.h"

#include <linux/io_uring.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <vector>

#include "backends/io_uring/io_uring_ring.h"
#include "backends/linux/timer_fd.h"
#include "backends/posix/heap.h"
#include "backends/posix/socket_address.h"
#include "backends/posix/socket_ops.h"
#include "backends/posix/sys_errors.h"

namespace acceptpool {
namespace {

// user_data = kind << 56 | session id (ids stay below 2^53; bit 55 is the
// ring's kNoppedBit). Listener and internal operations carry id 0 or the
// index of their descriptor.
enum OpKind : uint64_t {
  kOpRecv = 1,
  kOpSend = 2,
  kOpConnect = 3,
  kOpCancel = 4,  // a session's cancel
  kOpAccept = 5,
  kOpListenerCancel = 6,
  kOpWatch = 7,        // a multishot poll on one of the backend's own descriptors
  kOpErrorPoll = 8,    // a paused session's watch for errors (see SetReading)
  kOpCancelRecv = 9,   // a cancel of the session's receive
  kOpCancelPoll = 10,  // a cancel of its error poll
};
constexpr int kKindShift = 56;
constexpr uint64_t kIdMask = (1ull << 53) - 1;

uint64_t Tag(OpKind kind, uint64_t id) { return (static_cast<uint64_t>(kind) << kKindShift) | id; }

// The descriptors watched by kOpWatch polls, by index.
enum Watch : uint64_t { kWatchWake = 0, kWatchTick, kWatchBackoff, kWatchDeadline, kWatchCount };

constexpr uint32_t kSqEntries = 512;
constexpr uint32_t kCqEntries = 8192;
constexpr uint16_t kBufferGroup = 0;
constexpr int kMaxSlices = 8;
// Completions handled per round at most (the rest wait: PollSaturated).
constexpr int kMaxCqesPerRound = 2048;
// Connections closed per EMFILE episode before backing off.
constexpr uint32_t kMaxShedPerEpisode = 64;
// Accepted sockets the engine had no budget for, held until it has. A
// multishot accept takes the whole backlog at each wakeup (the kernel goes
// on while the queue is not empty), so this holds more than the largest
// backlog; past kHoldPause held the accept is cancelled until they are
// taken. A socket that finds it full is closed and counted (shed).
constexpr size_t kPendingAccepts = 8192;
constexpr size_t kHoldPause = 1024;

// Bits of SlotState::bits.
enum SlotBit : uint16_t {
  kRecvArmed = 1 << 0,      // a multishot receive is posted (until its last CQE)
  kRecvCancel = 1 << 1,     // and a cancel of it has been sent
  kSendBusy = 1 << 2,       // a sendmsg is in flight
  kConnectBusy = 1 << 3,    // a connect is in flight
  kClosing = 1 << 4,        // Close(): waiting for the operations above
  kReadOff = 1 << 5,        // SetReading(false)
  kStarved = 1 << 6,        // the receive ended for want of buffers: in starved_
  kConnectReport = 1 << 7,  // connected, but the engine could not record it yet
  kErrorPoll = 1 << 8,      // an error poll is posted (until its completion)
  kErrorPollCancel = 1 << 9,
};

// Stash entries one session may hold before its receive is cancelled (and
// posted again once they are delivered): a paused or fast session pins at
// most this many shared buffers, plus what one round brings.
constexpr uint16_t kMaxStashedPerSession = 2;

// What the backend keeps per slot (the session table's ext bytes); reset
// when a socket becomes a session (Attach, Connect).
struct SlotState {
  uint8_t ops;          // operations whose last completion has not come (cancels too)
  bool abort;           // Close(abort): reset when the socket closes
  uint16_t bits;        // SlotBit
  uint16_t stashed;     // stash entries of this session
  uint16_t round;       // the poll round of its last delivery (low bits) ...
  uint32_t round_left;  // ... and the bytes it may still take in that round
  union {
    struct {
      msghdr msg;
      iovec iov[kMaxSlices];
    } send;
    sockaddr_storage peer;  // the connect's target, while it is in flight
  };
};

// Received results the engine had no room (or no wish: paused) for.
struct StashEntry {
  SessionId id;
  int32_t result;   // > 0: bytes in buffer `bid`; 0: the peer's FIN; < 0: -errno
  uint32_t offset;  // bytes of the buffer already delivered
  uint16_t bid;
};

// Backend counters for stats().backendCounters, in order.
#define ACCEPTPOOL_IO_URING_COUNTERS(X)                                               \
  X(kAcceptRearms, "acceptRearms")         /* multishot accept posted again */        \
  X(kReceiveRearms, "receiveRearms")       /* multishot receive posted again */       \
  X(kBufferRingEmpty, "bufferRingEmpty")   /* receives ended with ENOBUFS */          \
  X(kCqOverflow, "cqOverflow")             /* completions past the CQ ring */         \
  X(kCancellations, "cancellations")       /* cancels submitted */                    \
  X(kStrayCompletions, "strayCompletions") /* CQEs for an earlier occupant */         \
  X(kStashed, "stashed")                   /* receives held for a later round */      \
  X(kSingleShots, "receiveSingleShots")    /* receives posted one buffer at a time */ \
  X(kAcceptsHeld, "acceptsHeld")           /* accepts held for a later round */       \
  X(kTaskRunMode, "taskRunMode")           /* 2 deferred, 1 cooperative, 0 plain */

enum Counter : size_t {
#define ACCEPTPOOL_COUNTER_ENUM(name, text) name,
  ACCEPTPOOL_IO_URING_COUNTERS(ACCEPTPOOL_COUNTER_ENUM)
#undef ACCEPTPOOL_COUNTER_ENUM
      kCounterCount
};

const char* const kCounterNames[] = {
#define ACCEPTPOOL_COUNTER_NAME(name, text) text,
    ACCEPTPOOL_IO_URING_COUNTERS(ACCEPTPOOL_COUNTER_NAME)
#undef ACCEPTPOOL_COUNTER_NAME
};

// The ring of provided buffers every receive draws from.
//
// Its entries are addressed as a plain io_uring_buf array, not through
// struct io_uring_buf_ring: that struct's flexible array is declared with
// __DECLARE_FLEX_ARRAY, an empty struct beside the array, and in C++ an
// empty struct has size 1, which moves `bufs` 8 bytes on. Entries written
// through it land between the kernel's, the ring the kernel reads looks
// empty, and every receive ends with ENOBUFS. The tail is the first entry's
// resv field, as the kernel's union says.
class BufferRing {
 public:
  ~BufferRing() {
    if (ring_ != nullptr) munmap(ring_, ring_bytes_);
    if (base_ != nullptr) munmap(base_, static_cast<size_t>(count_) * size_);
  }

  Status Init(IoUringRing& ring, uint32_t count, uint32_t size) {
    count_ = count;
    size_ = size;
    ring_bytes_ = count * sizeof(io_uring_buf);
    void* r =
        mmap(nullptr, ring_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED) return ErrnoStatus(errno, "mmap");
    ring_ = static_cast<io_uring_buf*>(r);
    // Pages are touched only by bytes that arrive: untouched buffers cost no RSS.
    void* b = mmap(nullptr, static_cast<size_t>(count) * size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b == MAP_FAILED) return ErrnoStatus(errno, "mmap");
    base_ = static_cast<char*>(b);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uint64_t>(ring_);
    reg.ring_entries = count;
    reg.bgid = kBufferGroup;
    if (ring.Register(IORING_REGISTER_PBUF_RING, &reg, 1) < 0) {
      return ErrnoStatus(errno, "io_uring_register");
    }
    static_assert(offsetof(io_uring_buf, resv) == 14, "the ring's tail overlays entry 0's resv");
    for (uint32_t i = 0; i < count; ++i) Stage(static_cast<uint16_t>(i));
    Publish();
    return Status::Ok();
  }

  char* Data(uint16_t bid) const { return base_ + static_cast<size_t>(bid) * size_; }
  // Gives a buffer back; the kernel sees it at the next Publish.
  void Put(uint16_t bid) {
    Stage(bid);
    --out_;
  }
  void Taken() { ++out_; }
  // The tail store the kernel reads: release, so the entries are visible first.
  void Publish() { __atomic_store_n(&ring_[0].resv, tail_, __ATOMIC_RELEASE); }
  uint32_t available() const { return count_ - out_; }
  uint32_t count() const { return count_; }

 private:
  void Stage(uint16_t bid) {
    io_uring_buf* buf = &ring_[tail_ & (count_ - 1)];
    buf->addr = reinterpret_cast<uint64_t>(Data(bid));
    buf->len = size_;
    buf->bid = bid;
    ++tail_;
  }

  io_uring_buf* ring_ = nullptr;
  size_t ring_bytes_ = 0;
  char* base_ = nullptr;
  uint32_t count_ = 0;
  uint32_t size_ = 0;
  uint16_t tail_ = 0;
  uint32_t out_ = 0;  // buffers the kernel has filled and we hold
};

// A fixed-capacity FIFO (no allocation once made).
template <typename T>
class Fifo {
 public:
  void Reserve(size_t capacity) { items_.resize(capacity); }
  bool Push(const T& item) {
    if (count_ == items_.size()) return false;
    items_[(head_ + count_) % items_.size()] = item;
    ++count_;
    return true;
  }
  T Pop() {
    T item = items_[head_];
    head_ = (head_ + 1) % items_.size();
    --count_;
    return item;
  }
  size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }

 private:
  std::vector<T> items_;
  size_t head_ = 0;
  size_t count_ = 0;
};

class IoUringBackend final : public Backend {
 public:
  explicit IoUringBackend(const IoUringConfig& config) : config_(config) {}
  ~IoUringBackend() override { RemoveUnixPath(); }

  const char* name() const override { return "io_uring"; }
  size_t SessionExtBytes() const override { return sizeof(SlotState); }
  size_t CounterNames(const char* const** names) const override {
    *names = kCounterNames;
    return kCounterCount;
  }
  void ReadCounters(uint64_t* values, size_t max) const override {
    uint64_t now[kCounterCount];
    std::copy(counters_, counters_ + kCounterCount, now);
    now[kCqOverflow] = ring_.Overflows();
    now[kTaskRunMode] = ring_.mode();
    std::copy(now, now + std::min<size_t>(max, kCounterCount), values);
  }
  uint32_t SettingCounters() const override { return 1u << kTaskRunMode; }
  bool Quiescent() const override { return listener_ops_ == 0; }

  Status Init(BackendEvents* events, SessionTable* table) override {
    events_ = events;
    table_ = table;
    std::string why;
    Status st = ring_.Init(kSqEntries, kCqEntries, &why);
    if (!st.ok()) return st;
    st = buffers_.Init(ring_, config_.buffers, config_.buffer_bytes);
    if (!st.ok()) return st;
    // Each stashed result holds a buffer, or ends its session's receive
    // (FIN or error) after a buffer: twice the buffers bound it.
    stash_.Reserve(2 * static_cast<size_t>(config_.buffers));
    rotated_.Reserve(2 * static_cast<size_t>(config_.buffers));
    held_accepts_.Reserve(kPendingAccepts);
    poll_fd_.reset(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!poll_fd_.valid()) return ErrnoStatus(errno, "eventfd");
    int efd = poll_fd_.get();
    if (ring_.Register(IORING_REGISTER_EVENTFD, &efd, 1) < 0) {
      return ErrnoStatus(errno, "io_uring_register");
    }
    watched_[kWatchWake].reset(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    for (uint64_t w = kWatchTick; w < kWatchCount; ++w) {
      watched_[w].reset(MakeTimerFd());
    }
    for (uint64_t w = 0; w < kWatchCount; ++w) {
      if (!watched_[w].valid()) return ErrnoStatus(errno, "timerfd_create");
      if (!ArmWatch(w)) return Status::Of(Code::kNoMemory);
    }
    ArmTimerFd(watched_[kWatchTick].get(), 1000, 1000);
    return Status::Ok();
  }

  // ---- listening ----

  Status Listen(const SocketAddress& address, const ListenOptions& options,
                SocketAddress* bound) override {
    UniqueFd fd;
    Status st = OpenTcpListener(address, options, &fd);
    if (!st.ok()) return st;
    return StartListening(fd, options, bound);
  }

  Status ListenPath(const char* path, const ListenOptions& options, SocketAddress* bound) override {
    UniqueFd fd;
    Status st = OpenUnixListener(path, options.backlog, &fd);
    if (!st.ok()) return st;
    unix_path_ = path;  // ours from here: removed when listening stops
    st = StartListening(fd, options, bound);
    if (!st.ok()) RemoveUnixPath();
    return st;
  }

  Status ListenOn(SocketHandle listener, const ListenOptions& options,
                  SocketAddress* bound) override {
    int fd = static_cast<int>(listener);
    Status st = AdoptListener(fd);
    if (!st.ok()) return st;
    UniqueFd owned(fd);
    st = StartListening(owned, options, bound);
    if (!st.ok()) owned.release();  // still the caller's
    return st;
  }

  Status DuplicateListener(SocketHandle* out) override {
    int fd = -1;
    Status st = DuplicateSocket(listener_.get(), &fd);
    if (st.ok()) *out = fd;
    return st;
  }

  void SetAccepting(bool on) override {
    engine_accepting_ = on;
    UpdateAccept();
    if (on && !held_accepts_.empty()) RequestRound();
    Kick();
  }

  void StopListening() override {
    engine_accepting_ = false;
    CancelAccept();
    if (listener_.valid()) {
      ring_.ForgetFd(listener_.get());
      Kick();
      listener_.reset();
    }
    RemoveUnixPath();
    while (!held_accepts_.empty()) ::close(held_accepts_.Pop());
  }

  void DiscardSocket(SocketHandle socket) override { ::close(static_cast<int>(socket)); }

  bool PeerAddress(const Session& s, SocketAddress* out) override {
    return SocketPeerAddress(FdOf(s), out);
  }

  // ---- sessions ----

  Status Attach(Session& s, bool no_delay) override {
    (void)no_delay;  // inherited from the listener (StartListening)
    std::memset(&StateOf(s), 0, sizeof(SlotState));
    if (!ArmRecv(s)) return Status::Of(Code::kNoMemory);
    Kick();
    return Status::Ok();
  }

  Status Connect(Session& s, const SocketAddress& remote, const SocketAddress* local,
                 bool no_delay) override {
    UniqueFd fd;
    Status opened = OpenClientSocket(remote, local, no_delay, &fd);
    if (!opened.ok()) return opened;
    SlotState& st = StateOf(s);
    std::memset(&st, 0, sizeof(st));
    socklen_t len = ToSockaddr(remote, &st.peer);
    io_uring_sqe* sqe = ring_.NextSqe();
    if (sqe == nullptr) return Status::System(SysError::kNoBufs, ENOBUFS, "connect");
    sqe->opcode = IORING_OP_CONNECT;
    sqe->fd = fd.get();
    sqe->addr = reinterpret_cast<uint64_t>(&st.peer);
    sqe->off = len;
    sqe->user_data = Tag(kOpConnect, s.id());
    ++st.ops;
    st.bits |= kConnectBusy;
    s.socket = fd.release();
    Kick();
    return Status::Ok();
  }

  // The engine sends straight from the caller's memory only when the
  // queue is empty, and so no sendmsg of the session is in flight: the
  // bytes cannot overtake queued ones. A broken connection shows at once.
  Status SendDirect(Session& s, const char* data, size_t size, size_t* sent) override {
    return SendSome(FdOf(s), data, size, sent);
  }

  Status Flush(Session& s, size_t* sent) override {
    *sent = 0;  // reported by the completion (OnSendProgress)
    SlotState& st = StateOf(s);
    if ((st.bits & (kSendBusy | kClosing | kConnectBusy)) != 0) return Status::Ok();
    IoSlice slices[kMaxSlices];
    int count = s.queue.Peek(slices, kMaxSlices);
    if (count == 0) return Status::Ok();
    for (int i = 0; i < count; ++i) {
      st.send.iov[i].iov_base = const_cast<char*>(slices[i].data);
      st.send.iov[i].iov_len = slices[i].size;
    }
    std::memset(&st.send.msg, 0, sizeof(st.send.msg));
    st.send.msg.msg_iov = st.send.iov;
    st.send.msg.msg_iovlen = static_cast<size_t>(count);
    io_uring_sqe* sqe = ring_.NextSqe();
    if (sqe == nullptr) return Status::System(SysError::kNoBufs, ENOBUFS, "sendmsg");
    sqe->opcode = IORING_OP_SENDMSG;
    sqe->fd = static_cast<int>(s.socket);
    sqe->addr = reinterpret_cast<uint64_t>(&st.send.msg);
    sqe->len = 1;
    sqe->msg_flags = MSG_NOSIGNAL;
    sqe->user_data = Tag(kOpSend, s.id());
    ++st.ops;
    st.bits |= kSendBusy;
    Kick();
    return Status::Ok();
  }

  // Reading off cancels the receive; bytes already taken wait in the stash.
  // A paused socket is still watched for errors (a poll that reports only
  // POLLERR/POLLHUP), as epoll reports EPOLLERR whatever the interests: a
  // reset while paused closes the session rather than waiting for resume.
  void SetReading(Session& s, bool on) override {
    SlotState& st = StateOf(s);
    if (on) {
      st.bits &= static_cast<uint16_t>(~kReadOff);
      if (st.stashed > 0) RequestRound();
      if ((st.bits & (kErrorPoll | kErrorPollCancel)) == kErrorPoll) {
        CancelOp(s, kOpErrorPoll, kErrorPollCancel);
      }
      // A receive still being cancelled is posted again when it ends.
      MaybeArmRecv(s);
    } else {
      st.bits |= kReadOff;
      if ((st.bits & (kRecvArmed | kRecvCancel)) == kRecvArmed) CancelOp(s, kOpRecv, kRecvCancel);
      if ((st.bits & (kErrorPoll | kClosing | kConnectBusy | kConnectReport)) == 0 &&
          s.socket != kNoSocket && s.state != SessionState::kConnecting) {
        ArmErrorPoll(s);
      }
    }
    Kick();
  }

  Status SetNoDelay(Session& s, bool on) override { return SetSocketNoDelay(FdOf(s), on); }

  Status SetKeepAlive(Session& s, bool on, uint32_t delay_s) override {
    return SetSocketKeepAlive(FdOf(s), on, delay_s);
  }

  Status LocalAddress(const Session& s, SocketAddress* out) override {
    return SocketLocalAddress(FdOf(s), out);
  }

  Status ReadSocketOptions(const Session& s, SocketOptions* out) override {
    return ReadSocketOptionsOf(FdOf(s), out);
  }

  Status ShutdownWrite(Session& s) override { return ShutdownSocketWrite(FdOf(s)); }

  void Close(Session& s, bool abort) override {
    SlotState& st = StateOf(s);
    st.bits |= kClosing;
    st.abort = abort;
    if (st.ops == 0) {
      FinishClose(s);
      return;
    }
    // The descriptor stays open until the last completion: no entry can
    // then name a number the process has reused.
    if ((st.bits & (kRecvArmed | kRecvCancel)) == kRecvArmed) CancelOp(s, kOpRecv, kRecvCancel);
    if ((st.bits & kSendBusy) != 0) CancelOp(s, kOpSend, 0);
    if ((st.bits & kConnectBusy) != 0) CancelOp(s, kOpConnect, 0);
    if ((st.bits & (kErrorPoll | kErrorPollCancel)) == kErrorPoll) {
      CancelOp(s, kOpErrorPoll, kErrorPollCancel);
    }
    Kick();
  }

  // ---- polling ----

  Status PollOnce(int timeout_ms) override {
    in_poll_ = true;
    kick_pending_ = false;
    more_ = false;
    if (++round_ == 0) round_ = 1;  // 0 is a fresh slot's: never a round
    // An engine that waits here (the threaded driver: a timeout other than
    // 0) has no loop watching the poll descriptor: leave it alone from now
    // on, a read and a write fewer per round and per wake.
    if (timeout_ms != 0 && !waits_in_ring_.load(std::memory_order_relaxed)) {
      waits_in_ring_.store(true, std::memory_order_relaxed);
    }
    // Reset first: whatever completes from here signals it again.
    if (!waits_in_ring_.load(std::memory_order_relaxed)) DrainCounter(poll_fd_.get());
    TakeHeldAccepts();
    ReportConnects();
    DeliverStash();
    RearmStarved();
    buffers_.Publish();
    // Work the last round left (held accepts, stashed bytes) must not wait
    // for a completion: a threaded engine would block in the ring.
    bool ready = more_ || saturated_ || ring_.PeekCqe() != nullptr;
    Status st = ring_.Enter(!ready, ready ? 0 : timeout_ms);
    if (st.ok()) Reap();
    buffers_.Publish();
    // What the handlers queued (re-arms, sends, cancels) goes in now: an
    // inline loop waits on the descriptor, which only completions signal.
    if (st.ok() && ring_.HasUnsubmitted()) st = ring_.SubmitNow();
    saturated_ =
        more_ || ring_.PeekCqe() != nullptr || (!held_accepts_.empty() && engine_accepting_);
    // The poll descriptor is an edge (a counter reset above); work left
    // behind must keep it readable for a loop that watches it.
    if (saturated_) SignalPollFd();
    in_poll_ = false;
    return st;
  }

  bool PollSaturated() const override { return saturated_; }

  // The wake eventfd's poll completes in the ring (a thread waiting in
  // io_uring_enter returns; PollOnce reports OnWake). The poll descriptor is
  // signalled directly as well: the kernel signals a registered eventfd from
  // inside another eventfd's wake-up only later, deferred (seen: an inline
  // engine's Shutdown() waited for a round that never came).
  void Wake() override {
    uint64_t one = 1;
    ssize_t r = write(watched_[kWatchWake].get(), &one, sizeof(one));
    (void)r;  // EAGAIN means a wake is already pending
    SignalPollFd();
  }

  int PollDescriptor() const override { return poll_fd_.get(); }

  void ArmTimer(int delay_ms) override { ArmTimerFd(watched_[kWatchDeadline].get(), delay_ms, 0); }

  void ReturnFreedMemory() override { ReturnFreedHeapMemory(); }

 private:
  SlotState& StateOf(const Session& s) { return *static_cast<SlotState*>(table_->Ext(s)); }

  static int FdOf(const Session& s) { return static_cast<int>(s.socket); }

  void RemoveUnixPath() {
    if (unix_path_.empty()) return;
    ::unlink(unix_path_.c_str());
    unix_path_.clear();
  }

  // Entries queued outside a poll round (the inline driver's JS commands,
  // between rounds) go in with the next round, which the poll descriptor
  // asks for once: a batch of handlers' sends is one submit. (Inside a
  // round PollOnce submits at its end; a threaded engine runs its commands
  // inside rounds.)
  void Kick() {
    if (in_poll_ || kick_pending_) return;
    kick_pending_ = true;
    SignalPollFd();
  }
  // Another round is wanted soon (stashed bytes may now be delivered).
  void RequestRound() {
    if (in_poll_) {
      more_ = true;
    } else {
      Wake();  // both the descriptor and a thread waiting in the ring
    }
  }
  void SignalPollFd() {
    if (waits_in_ring_.load(std::memory_order_relaxed)) return;
    uint64_t one = 1;
    ssize_t r = write(poll_fd_.get(), &one, sizeof(one));
    (void)r;
  }

  bool ArmWatch(uint64_t w) {
    io_uring_sqe* sqe = ring_.NextSqe();
    if (sqe == nullptr) return false;
    sqe->opcode = IORING_OP_POLL_ADD;
    sqe->fd = watched_[w].get();
    sqe->poll32_events = POLLIN;
    sqe->len = IORING_POLL_ADD_MULTI;
    sqe->user_data = Tag(kOpWatch, w);
    return true;
  }

  bool ArmRecv(Session& s) {
    SlotState& st = StateOf(s);
    io_uring_sqe* sqe = ring_.NextSqe();
    if (sqe == nullptr) return false;
    sqe->opcode = IORING_OP_RECV;
    sqe->fd = static_cast<int>(s.socket);
    // Multishot while buffers are plenty. When they run short, one buffer
    // per posting: a multishot receive of a fast peer takes buffer after
    // buffer as bytes arrive, and the sessions that came later would find
    // the ring empty round after round (seen: 12 of 50 uploaders served).
    if (buffers_.available() > buffers_.count() / 2 && starved_.empty()) {
      sqe->ioprio = IORING_RECV_MULTISHOT;
    } else {
      ++counters_[kSingleShots];
    }
    sqe->flags = IOSQE_BUFFER_SELECT;
    sqe->buf_group = kBufferGroup;
    sqe->user_data = Tag(kOpRecv, s.id());
    ++st.ops;
    st.bits = static_cast<uint16_t>((st.bits | kRecvArmed) & ~kRecvCancel);
    return true;
  }

  // Posts the receive if the session reads and nothing stops it: reading
  // on, not closing, not connecting, not starved, its stash not full.
  void MaybeArmRecv(Session& s) {
    if (!CanArmRecv(s)) return;
    if (!starved_.empty()) {
      // Sessions wait for buffers in line: the ones that found none first
      // get the ones that come back first (RearmStarved).
      StateOf(s).bits |= kStarved;
      starved_.push_back(s.id());
      return;
    }
    ArmRecv(s);
  }

  bool CanArmRecv(Session& s) {
    const SlotState& st = StateOf(s);
    constexpr uint16_t kStops =
        kRecvArmed | kClosing | kReadOff | kStarved | kConnectBusy | kConnectReport;
    return (st.bits & kStops) == 0 && st.stashed < kMaxStashedPerSession && s.socket != kNoSocket &&
           s.state != SessionState::kConnecting;
  }

  bool ArmErrorPoll(Session& s) {
    SlotState& st = StateOf(s);
    io_uring_sqe* sqe = ring_.NextSqe();
    if (sqe == nullptr) return false;
    sqe->opcode = IORING_OP_POLL_ADD;
    sqe->fd = FdOf(s);
    sqe->poll32_events = 0;  // POLLERR and POLLHUP are always reported
    sqe->user_data = Tag(kOpErrorPoll, s.id());
    ++st.ops;
    st.bits = static_cast<uint16_t>((st.bits | kErrorPoll) & ~kErrorPollCancel);
    return true;
  }

  // Cancels the session's operation of `kind` (its tag is unique: one of
  // each kind at a time); `mark` is a bit to set once sent.
  void CancelOp(Session& s, OpKind kind, uint16_t mark) {
    SlotState& st = StateOf(s);
    io_uring_sqe* sqe = ring_.NextSqe();
    if (sqe == nullptr) return;  // a full ring: the close waits for the op itself
    sqe->opcode = IORING_OP_ASYNC_CANCEL;
    sqe->fd = -1;
    sqe->addr = Tag(kind, s.id());
    OpKind cancel = kind == kOpRecv        ? kOpCancelRecv
                    : kind == kOpErrorPoll ? kOpCancelPoll
                                           : kOpCancel;
    sqe->user_data = Tag(cancel, s.id());
    ++st.ops;
    st.bits |= mark;
    ++counters_[kCancellations];
  }

  void FinishClose(Session& s) {
    if (s.socket != kNoSocket) CloseSocket(FdOf(s), StateOf(s).abort);
    s.socket = kNoSocket;
    events_->OnReleased(s);
  }

  // One of the session's operations has had its last completion.
  // False if that finished a close (the session is released).
  bool OpDone(Session& s) {
    SlotState& st = StateOf(s);
    --st.ops;
    if (st.ops == 0 && (st.bits & kClosing) != 0) {
      FinishClose(s);
      return false;
    }
    return true;
  }

  // ---- accepting ----

  // Takes a bound, listening socket as the listener (`fd` only on success).
  Status StartListening(UniqueFd& fd, const ListenOptions& options, SocketAddress* bound) {
    Status st = PrepareListener(fd.get(), options, bound);
    if (!st.ok()) return st;
    reserve_.Hold();
    listener_ = std::move(fd);
    engine_accepting_ = true;
    UpdateAccept();
    Kick();
    return Status::Ok();
  }

  bool WantAccept() const {
    return listener_.valid() && engine_accepting_ && !in_backoff_ &&
           held_accepts_.size() < kHoldPause;
  }

  void UpdateAccept() {
    if (WantAccept()) {
      if (!accept_armed_) ArmAccept();
    } else {
      CancelAccept();
    }
  }

  void ArmAccept() {
    io_uring_sqe* sqe = ring_.NextSqe();
    if (sqe == nullptr) return;
    sqe->opcode = IORING_OP_ACCEPT;
    sqe->fd = listener_.get();
    sqe->ioprio = IORING_ACCEPT_MULTISHOT;
    sqe->accept_flags = SOCK_NONBLOCK | SOCK_CLOEXEC;
    sqe->user_data = Tag(kOpAccept, 0);
    accept_armed_ = true;
    accept_cancelled_ = false;
    ++listener_ops_;
  }

  void CancelAccept() {
    if (!accept_armed_ || accept_cancelled_) return;
    io_uring_sqe* sqe = ring_.NextSqe();
    if (sqe == nullptr) return;
    sqe->opcode = IORING_OP_ASYNC_CANCEL;
    sqe->fd = -1;
    sqe->addr = Tag(kOpAccept, 0);
    sqe->user_data = Tag(kOpListenerCancel, 0);
    accept_cancelled_ = true;
    ++listener_ops_;
    ++counters_[kCancellations];
  }

  // Asked afresh for every connection: receives delivered between two
  // accepts of one round use the batch room the budget counted on, and a
  // kSession record that finds the batch full is lost (seen: 49 of 50
  // sessions announced under uploads, on the threaded driver).
  uint32_t Budget() { return events_->AcceptBudget(); }

  void TakeAccepted(int fd) {
    // Multishot accepts carry no address: ask for it. A connection reset
    // before it was taken has none any more; accept4 would still have named
    // it, so count it as what it is, an aborted accept (epoll's EPROTO /
    // ECONNABORTED), rather than serve a session with no peer.
    SocketAddress peer{};
    if (!SocketPeerAddress(fd, &peer)) {
      ::close(fd);
      events_->OnAcceptError(ErrnoStatus(ECONNABORTED, "accept"), 0);
      return;
    }
    events_->OnAccepted(fd, peer);
  }

  void TakeHeldAccepts() {
    if (held_accepts_.empty()) return;
    while (!held_accepts_.empty() && Budget() > 0) TakeAccepted(held_accepts_.Pop());
    if (!held_accepts_.empty()) more_ = more_ || Budget() > 0;
    UpdateAccept();
  }

  void HandleAccept(int res, bool more) {
    if (!more) {
      accept_armed_ = false;
      --listener_ops_;
    }
    if (res >= 0) {
      backoff_.Reset();
      if (!listener_.valid()) {
        ::close(res);
      } else if (held_accepts_.empty() && Budget() > 0) {
        TakeAccepted(res);
      } else if (held_accepts_.Push(res)) {
        ++counters_[kAcceptsHeld];
      } else {
        ::close(res);
        events_->OnAcceptError(Status::System(SysError::kNoBufs, ENOBUFS, "accept"), 1);
      }
    } else if (res != -ECANCELED) {
      int err = -res;
      AcceptFailure failure = ClassifyAcceptError(err);
      uint32_t shed = failure == AcceptFailure::kNoDescriptors && listener_.valid()
                          ? reserve_.Shed(listener_.get(), kMaxShedPerEpisode)
                          : 0;
      if (failure != AcceptFailure::kRetry)
        events_->OnAcceptError(ErrnoStatus(err, "accept"), shed);
      // One connection's failure does not stop the others.
      if (failure == AcceptFailure::kNoDescriptors || failure == AcceptFailure::kBackOff) {
        StartBackoff();
      }
    }
    if (!more && WantAccept()) {
      ++counters_[kAcceptRearms];
      ArmAccept();
    } else if (more && !WantAccept()) {
      CancelAccept();
    }
  }

  void StartBackoff() {
    in_backoff_ = true;
    ArmTimerFd(watched_[kWatchBackoff].get(), backoff_.Next(), 0);
    UpdateAccept();
  }

  // ---- completions ----

  void Reap() {
    for (int i = 0; i < kMaxCqesPerRound; ++i) {
      const io_uring_cqe* cqe = ring_.PeekCqe();
      if (cqe == nullptr) return;
      io_uring_cqe c = *cqe;
      ring_.PopCqe();
      Handle(c);
    }
  }

  void Handle(const io_uring_cqe& c) {
    uint64_t tag = c.user_data;
    int res = c.res;
    bool more = (c.flags & IORING_CQE_F_MORE) != 0;
    if ((tag & kNoppedBit) != 0) {
      // Entries ForgetFd neutralised: as if cancelled.
      tag &= ~kNoppedBit;
      res = -ECANCELED;
      more = false;
    }
    OpKind kind = static_cast<OpKind>(tag >> kKindShift);
    uint64_t id = tag & kIdMask;
    switch (kind) {
      case kOpAccept: HandleAccept(res, more); return;
      case kOpListenerCancel: --listener_ops_; return;
      case kOpWatch: HandleWatch(id, more); return;
      default: break;
    }
    Session* s = table_->LookupTaken(id);
    if (s == nullptr) {
      // A completion for an earlier occupant: never applied.
      ++counters_[kStrayCompletions];
      if ((c.flags & IORING_CQE_F_BUFFER) != 0) {
        buffers_.Taken();
        buffers_.Put(static_cast<uint16_t>(c.flags >> IORING_CQE_BUFFER_SHIFT));
      }
      return;
    }
    switch (kind) {
      case kOpRecv: HandleRecv(*s, res, more, c.flags); break;
      case kOpSend: HandleSend(*s, res); break;
      case kOpConnect: HandleConnect(*s, res); break;
      case kOpCancel: OpDone(*s); break;
      case kOpCancelRecv:
      case kOpCancelPoll: HandleCancel(*s, kind, res); break;
      case kOpErrorPoll: HandleErrorPoll(*s, res); break;
      default: break;
    }
  }

  void HandleWatch(uint64_t w, bool more) {
    if (w >= kWatchCount) return;
    if (!more) ArmWatch(w);
    DrainCounter(watched_[w].get());
    switch (w) {
      case kWatchWake: events_->OnWake(); break;
      case kWatchTick: events_->OnTick(); break;
      case kWatchBackoff:
        in_backoff_ = false;
        UpdateAccept();
        break;
      default: break;  // the deadline: the engine runs its deadlines after every poll
    }
  }

  void HandleRecv(Session& s, int res, bool more, uint32_t flags) {
    SessionId id = s.id();
    SlotState& st = StateOf(s);
    bool has_buffer = (flags & IORING_CQE_F_BUFFER) != 0;
    uint16_t bid = static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
    if (has_buffer) buffers_.Taken();
    bool ended = !more;
    if (ended) st.bits &= static_cast<uint16_t>(~(kRecvArmed | kRecvCancel));
    bool closing = (st.bits & kClosing) != 0;
    if (closing || res == -ECANCELED) {
      if (has_buffer) buffers_.Put(bid);
    } else if (res == -ENOBUFS) {
      // Every buffer is out (in the stash or in completions not yet
      // reaped): posted again once some come back.
      ++counters_[kBufferRingEmpty];
      if ((st.bits & kStarved) == 0) {
        st.bits |= kStarved;
        starved_.push_back(id);
      }
    } else if (st.stashed > 0 || (st.bits & kReadOff) != 0 || RoundShareSpent(st)) {
      Stash(s, res, bid, 0);  // behind what waits, until reading resumes, or next round
    } else if (res > 0) {
      Deliver(s, buffers_.Data(bid), static_cast<size_t>(res), bid, 0);
    } else if (res == 0) {
      events_->OnPeerEnd(s);
    } else {
      events_->OnSessionError(s, ErrnoStatus(-res, "read"));
    }
    if (!ended) return;
    Session* again = table_->LookupTaken(id);
    if (again == nullptr || !OpDone(*again)) return;
    bool finished = res == 0 || (res < 0 && res != -ECANCELED && res != -ENOBUFS);
    if (!finished && (StateOf(*again).bits & kRecvArmed) == 0) {
      ++counters_[kReceiveRearms];
      MaybeArmRecv(*again);
    }
  }

  // A cancel that found its operation gone or running (-ENOENT, -EALREADY)
  // while it is still posted: its last completion may be on its way, or it
  // goes on, and then a close would wait for it; cancel again.
  void HandleCancel(Session& s, OpKind kind, int res) {
    SlotState& st = StateOf(s);
    bool recv = kind == kOpCancelRecv;
    uint16_t mark = recv ? kRecvCancel : kErrorPollCancel;
    uint16_t armed = recv ? kRecvArmed : kErrorPoll;
    st.bits &= static_cast<uint16_t>(~mark);
    if (!OpDone(s) || res >= 0 || (st.bits & armed) == 0) return;
    bool unwanted = (st.bits & kClosing) != 0 ||
                    (recv ? (st.bits & kReadOff) != 0 || st.stashed >= kMaxStashedPerSession
                          : (st.bits & kReadOff) == 0);
    if (unwanted) CancelOp(s, recv ? kOpRecv : kOpErrorPoll, mark);
  }

  void HandleErrorPoll(Session& s, int res) {
    SlotState& st = StateOf(s);
    st.bits &= static_cast<uint16_t>(~(kErrorPoll | kErrorPollCancel));
    if (!OpDone(s) || (st.bits & kClosing) != 0 || res < 0) return;
    // POLLHUP alone (both directions shut while paused): nothing more can
    // happen; the resume reads what is left. An error closes the session.
    if ((res & POLLERR) == 0) return;
    int err = PendingSocketError(FdOf(s));
    events_->OnSessionError(s, ErrnoStatus(err != 0 ? err : ECONNRESET, "read"));
  }

  // Copies what it can of buffer `bid` (from `offset` on: `data`, `size`
  // bytes) into the engine's read space and returns the buffer; what does
  // not fit waits in the stash.
  void Deliver(Session& s, const char* data, size_t size, uint16_t bid, uint32_t offset) {
    SessionId id = s.id();
    size_t done = 0;
    while (done < size) {
      SlotState& st = StateOf(s);
      if (RoundShareSpent(st)) break;
      char* space;
      size_t room;
      if (!events_->ReadSpace(&space, &room)) break;
      // A session's share of a round is what the engine's first ReadSpace
      // offers it (its read chunk), as epoll reads once per session per
      // round: one busy peer cannot take a whole batch.
      if (st.round != round_) {
        st.round = round_;
        st.round_left = static_cast<uint32_t>(room);
      }
      size_t n = std::min({room, size - done, static_cast<size_t>(st.round_left)});
      std::memcpy(space, data + done, n);
      st.round_left -= static_cast<uint32_t>(n);
      events_->OnReceived(s, n);
      done += n;
      if (table_->LookupTaken(id) == nullptr || (StateOf(s).bits & kClosing) != 0) {
        done = size;  // closed meanwhile: the rest is discarded
      }
    }
    if (done == size) {
      buffers_.Put(bid);
      return;
    }
    Stash(s, static_cast<int32_t>(size + offset), bid, static_cast<uint32_t>(done) + offset);
  }

  bool RoundShareSpent(const SlotState& st) const {
    return st.round == round_ && st.round_left == 0;
  }

  void Stash(Session& s, int32_t result, uint16_t bid, uint32_t offset) {
    if (!stash_.Push(StashEntry{s.id(), result, offset, bid})) {
      // Cannot happen (see Init): never lose the buffer.
      if (result > 0) buffers_.Put(bid);
      return;
    }
    SlotState& st = StateOf(s);
    ++st.stashed;
    ++counters_[kStashed];
    if (st.stashed >= kMaxStashedPerSession &&
        (st.bits & (kRecvArmed | kRecvCancel)) == kRecvArmed) {
      CancelOp(s, kOpRecv, kRecvCancel);
    }
  }

  // Delivers what earlier rounds stashed, in order, before anything new:
  // one pass; what cannot go now goes to the back, its order kept.
  void DeliverStash() {
    size_t n = stash_.size();
    bool room = true;
    for (size_t i = 0; i < n; ++i) {
      StashEntry e = stash_.Pop();
      Session* s = table_->LookupTaken(e.id);
      if (s == nullptr || (StateOf(*s).bits & kClosing) != 0) {
        if (e.result > 0) buffers_.Put(e.bid);
        if (s != nullptr) --StateOf(*s).stashed;
        continue;
      }
      SlotState& st = StateOf(*s);
      // Behind an entry of its own that stayed, an entry stays too.
      if (!room || (st.bits & kReadOff) != 0 || RoundShareSpent(st)) {
        stash_.Push(e);
        if ((st.bits & kReadOff) == 0) more_ = true;  // deliverable next round
        continue;
      }
      --st.stashed;
      if (e.result > 0) {
        size_t before = stash_.size();
        Deliver(*s, buffers_.Data(e.bid) + e.offset, static_cast<size_t>(e.result) - e.offset,
                e.bid, e.offset);
        if (stash_.size() > before) {
          more_ = true;
          if (!RoundShareSpent(StateOf(*s))) room = false;  // the read space is full
        }
      } else if (e.result == 0) {
        events_->OnPeerEnd(*s);
      } else {
        events_->OnSessionError(*s, ErrnoStatus(-e.result, "read"));
      }
      s = table_->LookupTaken(e.id);
      if (s != nullptr) MaybeArmRecv(*s);
    }
    if (!room) RotateStash();
  }

  // The read space ran out before every session had its share: the ones
  // served this round go behind the ones that were not, so the next round
  // starts with those. Moving all of a session's entries together keeps
  // each session's order. (Without this the same sessions came first every
  // round: seen, 8 of 50 uploaders never read on the threaded driver.)
  void RotateStash() {
    size_t n = stash_.size();
    for (size_t i = 0; i < n; ++i) {
      StashEntry e = stash_.Pop();
      Session* s = table_->LookupTaken(e.id);
      bool served = s != nullptr && StateOf(*s).round == round_;
      if (served) {
        rotated_.Push(e);
      } else {
        stash_.Push(e);
      }
    }
    while (!rotated_.empty()) stash_.Push(rotated_.Pop());
  }

  // Receives that ended for want of buffers, posted again now that some are
  // back.
  void RearmStarved() {
    size_t n = std::min<size_t>(starved_.size(), buffers_.available());
    if (n == 0) return;
    for (size_t i = 0; i < n; ++i) {
      Session* s = table_->LookupTaken(starved_[i]);
      if (s == nullptr) continue;
      StateOf(*s).bits &= static_cast<uint16_t>(~kStarved);
      if (!CanArmRecv(*s)) continue;  // paused or closing meanwhile
      ++counters_[kReceiveRearms];
      ArmRecv(*s);
    }
    starved_.erase(starved_.begin(), starved_.begin() + static_cast<long>(n));
  }

  void HandleSend(Session& s, int res) {
    SlotState& st = StateOf(s);
    st.bits &= static_cast<uint16_t>(~kSendBusy);
    if (!OpDone(s)) return;
    if ((st.bits & kClosing) != 0 || res == -ECANCELED) return;
    if (res < 0) {
      events_->OnSessionError(s, ErrnoStatus(-res, "write"));
      return;
    }
    events_->OnSendProgress(s, static_cast<size_t>(res));
  }

  void HandleConnect(Session& s, int res) {
    SlotState& st = StateOf(s);
    st.bits &= static_cast<uint16_t>(~kConnectBusy);
    if (!OpDone(s)) return;
    if ((st.bits & kClosing) != 0 || res == -ECANCELED) return;
    if (res < 0) {
      events_->OnSessionError(s, ErrnoStatus(-res, "connect"));
      return;
    }
    if (!ReportConnect(s.id())) {
      st.bits |= kConnectReport;
      connected_.push_back(s.id());
    }
  }

  // Tells the engine a connect completed and starts reading. False if the
  // engine could not record it now (batch full).
  bool ReportConnect(SessionId id) {
    Session* s = table_->LookupTaken(id);
    if (s == nullptr || (StateOf(*s).bits & kClosing) != 0) return true;
    if (!events_->OnConnected(*s)) return false;
    s = table_->LookupTaken(id);
    if (s == nullptr) return true;
    SlotState& st = StateOf(*s);
    st.bits &= static_cast<uint16_t>(~kConnectReport);
    if ((st.bits & kReadOff) != 0) {
      ArmErrorPoll(*s);
    } else {
      MaybeArmRecv(*s);
    }
    return true;
  }

  // Connects the engine could not record yet, reported again each round.
  void ReportConnects() {
    size_t kept = 0;
    for (size_t i = 0; i < connected_.size(); ++i) {
      if (!ReportConnect(connected_[i])) connected_[kept++] = connected_[i];
    }
    connected_.resize(kept);
    if (kept > 0) more_ = true;
  }

  IoUringConfig config_;
  BackendEvents* events_ = nullptr;
  SessionTable* table_ = nullptr;
  // Declared before the ring, so destroyed after it: no operation of a
  // closed ring can still land in the buffers.
  BufferRing buffers_;
  IoUringRing ring_;
  Fifo<StashEntry> stash_;
  Fifo<StashEntry> rotated_;  // RotateStash's scratch, as large as the stash
  Fifo<int> held_accepts_;
  std::vector<SessionId> starved_;
  std::vector<SessionId> connected_;
  UniqueFd poll_fd_;  // registered with the ring: readable when completions arrive
  UniqueFd watched_[kWatchCount];
  UniqueFd listener_;
  AcceptReserve reserve_;
  AcceptBackoff backoff_;
  std::string unix_path_;
  uint64_t counters_[kCounterCount] = {};
  uint32_t listener_ops_ = 0;  // the accept and its cancels not yet complete
  bool accept_armed_ = false;
  bool accept_cancelled_ = false;
  bool engine_accepting_ = false;
  bool in_backoff_ = false;
  bool in_poll_ = false;
  bool kick_pending_ = false;  // the poll descriptor was signalled for queued entries
  bool more_ = false;
  bool saturated_ = false;
  // PollOnce has waited in the ring: no loop watches the poll descriptor.
  // Read by Wake() on other threads.
  std::atomic<bool> waits_in_ring_{false};
  uint16_t round_ = 0;  // poll rounds, from 1
};

}  // namespace

std::unique_ptr<Backend> MakeIoUringBackend() { return MakeIoUringBackend(IoUringConfig()); }

std::unique_ptr<Backend> MakeIoUringBackend(const IoUringConfig& config) {
  return std::make_unique<IoUringBackend>(config);
}

Status ProbeIoUringBackend(std::string* why) {
  // The kernel's answer does not change while the process runs: ask once.
  struct Answer {
    Status status;
    std::string why;
  };
  static const Answer answer = [] {
    Answer a;
    a.status = ProbeIoUring(&a.why);
    return a;
  }();
  *why = answer.why;
  return answer.status;
}

}  // namespace acceptpool
