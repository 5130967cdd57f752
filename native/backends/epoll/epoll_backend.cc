#include "backends/epoll/epoll_backend.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>

#include "backends/linux/timer_fd.h"
#include "backends/posix/heap.h"
#include "backends/posix/socket_address.h"
#include "backends/posix/socket_ops.h"
#include "backends/posix/sys_errors.h"

namespace acceptpool {
namespace {

// epoll_event.data for a session is its id, resolved by
// SessionTable::LookupTaken, so an event that was queued for a slot's
// previous occupant is recognised and skipped. Ids stay below 2^53, so these
// tags never collide with a session's.
constexpr uint64_t kTagListener = ~0ull;
constexpr uint64_t kTagWake = ~0ull - 1;
constexpr uint64_t kTagTick = ~0ull - 2;
constexpr uint64_t kTagBackoff = ~0ull - 3;
constexpr uint64_t kTagDeadline = ~0ull - 4;

constexpr int kMaxEvents = 512;
constexpr int kMaxSlices = 64;
// Connections closed per EMFILE episode before backing off.
constexpr int kMaxShedPerEpisode = 64;

// What epoll keeps per slot, in the session table's ext bytes: the interests
// of the socket's registration. Reset whenever a socket is registered
// (Attach, Connect), as the slot may have had another occupant.
enum Interest : uint8_t {
  kWantWritable = 1 << 0,  // bytes wait in the queue (or a connect): EPOLLOUT
  kReadPaused = 1 << 1,    // SetReading(false): no EPOLLIN
  kParked = 1 << 2,        // out of the epoll set until reading resumes (see HandleSession)
};

class EpollBackend final : public Backend {
 public:
  ~EpollBackend() override { RemoveUnixPath(); }

  const char* name() const override { return "epoll"; }
  size_t SessionExtBytes() const override { return sizeof(uint8_t); }

  Status Init(BackendEvents* events, SessionTable* table) override {
    events_ = events;
    table_ = table;
    epoll_.reset(epoll_create1(EPOLL_CLOEXEC));
    if (!epoll_.valid()) return ErrnoStatus(errno, "epoll_create1");
    wake_.reset(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!wake_.valid()) return ErrnoStatus(errno, "eventfd");
    tick_.reset(MakeTimerFd());
    backoff_timer_.reset(MakeTimerFd());
    deadline_.reset(MakeTimerFd());
    if (!tick_.valid() || !backoff_timer_.valid() || !deadline_.valid()) {
      return ErrnoStatus(errno, "timerfd_create");
    }
    for (auto [fd, tag] : {std::pair<int, uint64_t>{wake_.get(), kTagWake},
                           {tick_.get(), kTagTick},
                           {backoff_timer_.get(), kTagBackoff},
                           {deadline_.get(), kTagDeadline}}) {
      Status st = Control(EPOLL_CTL_ADD, fd, EPOLLIN, tag);
      if (!st.ok()) return st;
    }
    ArmTimerFd(tick_.get(), 1000, 1000);
    return Status::Ok();
  }

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
    // Ours from here: removed when listening stops, as libuv does for pipes.
    unix_path_ = path;
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
    UpdateListener();
  }

  void StopListening() override {
    // A shared listener stays open while another engine holds it, and so
    // would its registration here: remove it first (ENOENT if disarmed).
    if (listener_.valid()) Control(EPOLL_CTL_DEL, listener_.get(), 0, kTagListener);
    listener_.reset();
    listener_armed_ = false;
    RemoveUnixPath();
  }

  void DiscardSocket(SocketHandle socket) override { ::close(static_cast<int>(socket)); }

  bool PeerAddress(const Session& s, SocketAddress* out) override {
    return SocketPeerAddress(static_cast<int>(s.socket), out);
  }

  Status Attach(Session& s, bool no_delay) override {
    // TCP_NODELAY came from the listener (see Listen).
    (void)no_delay;
    InterestOf(s) = 0;
    return Control(EPOLL_CTL_ADD, static_cast<int>(s.socket), EPOLLIN, s.id());
  }

  Status Connect(Session& s, const SocketAddress& remote, const SocketAddress* local,
                 bool no_delay) override {
    UniqueFd fd;
    Status st = StartConnect(remote, local, no_delay, &fd);
    if (!st.ok()) return st;
    // Writability reports the outcome (even for an immediate success).
    st = Control(EPOLL_CTL_ADD, fd.get(), EPOLLIN | EPOLLOUT, s.id());
    if (!st.ok()) return st;
    InterestOf(s) = kWantWritable;
    s.socket = fd.release();
    return Status::Ok();
  }

  Status SendDirect(Session& s, const char* data, size_t size, size_t* sent) override {
    return SendSome(FdOf(s), data, size, sent);
  }

  Status Flush(Session& s, size_t* sent) override {
    *sent = 0;
    IoSlice slices[kMaxSlices];
    iovec iov[kMaxSlices];
    int count = s.queue.Peek(slices, kMaxSlices);
    size_t total = 0;
    for (int i = 0; i < count; ++i) {
      iov[i].iov_base = const_cast<char*>(slices[i].data);
      iov[i].iov_len = slices[i].size;
      total += slices[i].size;
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(count);
    ssize_t n;
    do {
      n = sendmsg(static_cast<int>(s.socket), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) return ErrnoStatus(errno, "sendmsg");
      n = 0;
    }
    *sent = static_cast<size_t>(n);
    // Bytes left (in this gather or beyond it): wait for writability.
    bool more = static_cast<size_t>(n) < total || s.queue.bytes() > total;
    return SetInterest(s, kWantWritable, more);
  }

  void SetReading(Session& s, bool on) override { SetInterest(s, kReadPaused, !on); }

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
    CloseSocket(FdOf(s), abort);  // also removes it from the epoll set
    s.socket = kNoSocket;
    events_->OnReleased(s);
  }

  Status PollOnce(int timeout_ms) override {
    int n = epoll_wait(epoll_.get(), events_buf_, kMaxEvents, timeout_ms);
    saturated_ = n == kMaxEvents || accept_budget_spent_;
    accept_budget_spent_ = false;
    if (n < 0) return errno == EINTR ? Status::Ok() : ErrnoStatus(errno, "epoll_wait");
    // Level-triggered sockets come back in the same order every round, so
    // when the batch fills part-way, the next round starts at the first
    // session that found no room; otherwise the ones after it would starve.
    int first = first_event_ < n ? first_event_ : 0;
    first_event_ = 0;
    bool starved_seen = false;
    for (int k = 0; k < n; ++k) {
      int i = first + k < n ? first + k : first + k - n;
      uint64_t tag = events_buf_[i].data.u64;
      uint32_t ev = events_buf_[i].events;
      switch (tag) {
        case kTagListener: AcceptSome(); break;
        case kTagWake:
          DrainCounter(wake_.get());
          events_->OnWake();
          break;
        case kTagTick:
          DrainCounter(tick_.get());
          events_->OnTick();
          break;
        case kTagDeadline:
          // The engine runs its deadlines after every poll.
          DrainCounter(deadline_.get());
          break;
        case kTagBackoff:
          DrainCounter(backoff_timer_.get());
          in_backoff_ = false;
          UpdateListener();
          break;
        default:
          starved_ = false;
          HandleSession(tag, ev);
          if (starved_ && !starved_seen) {
            starved_seen = true;
            first_event_ = i;
          }
          break;
      }
    }
    return Status::Ok();
  }

  void Wake() override {
    uint64_t one = 1;
    ssize_t r = write(wake_.get(), &one, sizeof(one));
    (void)r;  // EAGAIN means a wake is already pending
  }

  int PollDescriptor() const override { return epoll_.get(); }

  void ArmTimer(int delay_ms) override { ArmTimerFd(deadline_.get(), delay_ms, 0); }

  void ReturnFreedMemory() override { ReturnFreedHeapMemory(); }

  bool PollSaturated() const override { return saturated_ || accept_budget_spent_; }

 private:
  // Listen and ListenOn, once `fd` is listening.
  // Registers a bound, listening socket: the listener from now on. `fd` is
  // taken only on success.
  Status StartListening(UniqueFd& fd, const ListenOptions& options, SocketAddress* bound) {
    Status st = PrepareListener(fd.get(), options, bound);
    if (!st.ok()) return st;
    listener_shared_ = options.shared;
    st = Control(EPOLL_CTL_ADD, fd.get(), ListenerEvents(), kTagListener);
    if (!st.ok()) return st;
    reserve_.Hold();
    listener_ = std::move(fd);
    listener_armed_ = true;
    engine_accepting_ = true;
    return Status::Ok();
  }

  // A shared listener wakes one of its engines per connection, not all.
  uint32_t ListenerEvents() const {
    return EPOLLIN | (listener_shared_ ? static_cast<uint32_t>(EPOLLEXCLUSIVE) : 0u);
  }

  Status Control(int op, int fd, uint32_t events, uint64_t tag) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = tag;
    if (epoll_ctl(epoll_.get(), op, fd, &ev) != 0) return ErrnoStatus(errno, "epoll_ctl");
    return Status::Ok();
  }

  void RemoveUnixPath() {
    if (unix_path_.empty()) return;
    ::unlink(unix_path_.c_str());
    unix_path_.clear();
  }

  uint8_t& InterestOf(const Session& s) { return *static_cast<uint8_t*>(table_->Ext(s)); }

  static int FdOf(const Session& s) { return static_cast<int>(s.socket); }

  // Sets or clears an interest and updates the epoll set if it changed.
  Status SetInterest(Session& s, Interest interest, bool on) {
    uint8_t& bits = InterestOf(s);
    if (((bits & interest) != 0) == on) return Status::Ok();
    bits = static_cast<uint8_t>(on ? bits | interest : bits & ~interest);
    if (s.socket == kNoSocket) return Status::Ok();
    uint32_t want = ((bits & kReadPaused) != 0 ? 0u : static_cast<uint32_t>(EPOLLIN)) |
                    ((bits & kWantWritable) != 0 ? static_cast<uint32_t>(EPOLLOUT) : 0u);
    if ((bits & kParked) != 0) {
      // Parked sockets come back only to read what is left.
      if ((bits & kReadPaused) != 0) return Status::Ok();
      bits = static_cast<uint8_t>(bits & ~kParked);
      return Control(EPOLL_CTL_ADD, static_cast<int>(s.socket), want, s.id());
    }
    return Control(EPOLL_CTL_MOD, static_cast<int>(s.socket), want, s.id());
  }

  void UpdateListener() {
    if (!listener_.valid()) return;
    bool want = engine_accepting_ && !in_backoff_;
    if (want == listener_armed_) return;
    listener_armed_ = want;
    if (listener_shared_) {
      // EPOLLEXCLUSIVE registrations cannot be modified (EINVAL): remove
      // and add again.
      if (want) {
        Control(EPOLL_CTL_ADD, listener_.get(), ListenerEvents(), kTagListener);
      } else {
        Control(EPOLL_CTL_DEL, listener_.get(), 0, kTagListener);
      }
      return;
    }
    Control(EPOLL_CTL_MOD, listener_.get(), want ? static_cast<uint32_t>(EPOLLIN) : 0u,
            kTagListener);
  }

  void AcceptSome() {
    uint32_t budget = events_->AcceptBudget();
    // Stopping at the budget may leave connections waiting: say so.
    accept_budget_spent_ = true;
    while (budget > 0 && listener_.valid()) {
      sockaddr_storage ss;
      socklen_t len = sizeof(ss);
      int fd = accept4(listener_.get(), reinterpret_cast<sockaddr*>(&ss), &len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        int err = errno;
        AcceptFailure failure = ClassifyAcceptError(err);
        if (failure == AcceptFailure::kRetry) continue;
        if (failure == AcceptFailure::kDrained) {
          accept_budget_spent_ = false;
          return;
        }
        uint32_t shed = failure == AcceptFailure::kNoDescriptors
                            ? reserve_.Shed(listener_.get(), kMaxShedPerEpisode)
                            : 0;
        events_->OnAcceptError(ErrnoStatus(err, "accept"), shed);
        // One connection's failure does not stop the others.
        if (failure == AcceptFailure::kSkip) continue;
        StartBackoff();
        return;
      }
      backoff_.Reset();
      --budget;
      events_->OnAccepted(fd, FromSockaddr(ss));
    }
  }

  void StartBackoff() {
    in_backoff_ = true;
    ArmTimerFd(backoff_timer_.get(), backoff_.Next(), 0);
    UpdateListener();
  }

  void HandleSession(uint64_t tag, uint32_t ev) {
    Session* s = table_->LookupTaken(tag);
    if (s == nullptr || s->socket == kNoSocket) return;  // the event was for an earlier occupant
    if (s->state == SessionState::kConnecting) {
      FinishConnect(*s, ev);
      return;
    }
    if (s->state != SessionState::kOpen && s->state != SessionState::kClosing &&
        s->state != SessionState::kLingering) {
      return;
    }
    int fd = FdOf(*s);
    if ((ev & EPOLLERR) != 0) {
      int err = PendingSocketError(fd);
      if (err != 0) {
        events_->OnSessionError(*s, ErrnoStatus(err, "read"));
        return;
      }
    }
    bool reading = (InterestOf(*s) & kReadPaused) == 0;
    if ((ev & (EPOLLIN | EPOLLHUP)) != 0 && reading) {
      if (!ReadOnce(*s)) return;
    } else if ((ev & EPOLLHUP) != 0 && !reading) {
      // Both directions are shut (the peer's FIN after ours) while reading is
      // off, paused by JS or past the FIN. Nothing can be written any more,
      // and the unread bytes wait in the kernel for a resume; but EPOLLHUP is
      // reported whatever the interests, so leave the set instead of waking
      // every round.
      InterestOf(*s) = static_cast<uint8_t>(InterestOf(*s) | kParked);
      epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
      return;
    }
    if ((ev & EPOLLOUT) != 0 && s->socket != kNoSocket) events_->OnSendProgress(*s, 0);
  }

  void FinishConnect(Session& s, uint32_t ev) {
    if ((ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) return;
    int err = PendingSocketError(FdOf(s));
    if (err == 0 && (ev & EPOLLERR) != 0) err = ECONNREFUSED;
    if (err != 0) {
      events_->OnSessionError(s, ErrnoStatus(err, "connect"));
      return;
    }
    // Without batch room the engine declines; EPOLLOUT stays level-triggered
    // and reports the connect again next round.
    if (!events_->OnConnected(s)) return;
    SetInterest(s, kWantWritable, false);
  }

  // One read per session per round keeps rounds fair. False if the session
  // was closed.
  bool ReadOnce(Session& s) {
    char* space;
    size_t room;
    if (!events_->ReadSpace(&space, &room)) {
      starved_ = true;  // batch full: first in line next round
      return true;
    }
    ssize_t n;
    do {
      n = recv(static_cast<int>(s.socket), space, room, 0);
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
      events_->OnReceived(s, static_cast<size_t>(n));
      return true;
    }
    if (n == 0) {
      events_->OnPeerEnd(s);
      return s.socket != kNoSocket;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
    events_->OnSessionError(s, ErrnoStatus(errno, "read"));
    return false;
  }

  BackendEvents* events_ = nullptr;
  SessionTable* table_ = nullptr;
  UniqueFd epoll_;
  UniqueFd wake_;
  UniqueFd tick_;
  UniqueFd backoff_timer_;
  UniqueFd deadline_;
  UniqueFd listener_;
  AcceptReserve reserve_;
  AcceptBackoff backoff_;
  std::string unix_path_;  // the Unix socket ListenPath created, if any
  bool listener_armed_ = false;
  bool listener_shared_ = false;  // other engines wait on it too (EPOLLEXCLUSIVE)
  bool engine_accepting_ = false;
  bool in_backoff_ = false;
  bool saturated_ = true;
  bool accept_budget_spent_ = false;
  bool starved_ = false;  // the last ReadOnce found no batch room
  int first_event_ = 0;   // where the next round's events start (see PollOnce)
  epoll_event events_buf_[kMaxEvents];
};

}  // namespace

std::unique_ptr<Backend> MakeEpollBackend() { return std::make_unique<EpollBackend>(); }

}  // namespace acceptpool
