#include "backends/libuv/libuv_backend.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "backends/libuv/wake_timer.h"
#include "backends/posix/heap.h"
#include "backends/posix/socket_address.h"
#include "backends/posix/socket_ops.h"
#include "backends/posix/sys_errors.h"

namespace acceptpool {
namespace {

constexpr int kMaxSlices = 64;
// uv_write keeps this many buffers inside its request and mallocs an array
// for more: a queued write never takes more.
constexpr int kWriteBufs = 4;
constexpr uint32_t kMaxShedPerEpisode = 64;
constexpr int kTickMs = 1000;

const char* const kCounterNames[] = {
    "queuedWrites",    // uv_writes queued for what uv_try_write could not send
    "staleCallbacks",  // callbacks whose session had gone (0 while the promise holds)
};
constexpr size_t kCounterCount = sizeof(kCounterNames) / sizeof(kCounterNames[0]);

// libuv's errors are negative errno values on every POSIX system.
Status UvStatus(int rc, const char* call) { return ErrnoStatus(-rc, call); }

// What the backend keeps per slot (the session table's ext bytes): the
// session's libuv handle and its one request. Reset when a socket becomes a
// session (Attach, Connect); the previous occupant's handle was closed
// before the slot was released.
enum SlotFlag : uint8_t {
  kHandle = 1 << 0,     // the handle is initialised: it ends with uv_close
  kOwnsFd = 1 << 1,     // the handle holds the session's descriptor
  kStreaming = 1 << 2,  // connected: reads and writes may start
  kWantRead = 1 << 3,   // the engine wants input (SetReading)
  kReading = 1 << 4,    // uv_read_start is in force
  kClosing = 1 << 5,    // uv_close called: only its callback is left
  kPipe = 1 << 6,       // a uv_pipe_t (Unix socket), not a uv_tcp_t
  kQueued = 1 << 7,     // its id waits in later_ (see RunLater)
};

// What RunLater does for a slot at the start of the next round.
enum LaterWork : uint8_t {
  kLaterConnected = 1 << 0,     // OnConnected had no room: report it again
  kLaterConnectError = 1 << 1,  // the connect failed before libuv started it
  kLaterFlush = 1 << 2,         // the queue holds more than one gather took
};

struct SlotIo {
  union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  };
  // A session writes only once connected: one request serves both.
  union {
    uv_write_t write;
    uv_connect_t connect;
  };
  SessionId id;         // the occupant the handle belongs to
  size_t writing;       // bytes of the uv_write in flight (0: none)
  uint64_t read_round;  // the last round that lent it read space
  int connect_error;    // for kLaterConnectError
  uint8_t flags;
  uint8_t later;
};

// Callbacks get the handle (or a request's handle) and find the slot from
// it; the table's ext bytes are allocated with new[] and so aligned for it.
static_assert(offsetof(SlotIo, handle) == 0, "the handle opens the slot");
static_assert(alignof(SlotIo) <= alignof(std::max_align_t), "ext bytes are max_align_t aligned");
SlotIo& SlotOfHandle(void* handle) { return *static_cast<SlotIo*>(handle); }

class LibuvBackend final : public Backend {
 public:
  ~LibuvBackend() override {
    destroying_ = true;
    if (!loop_ready_) return;
    StopListening();
    // Sessions still open hold their descriptors (DiscardSocket left them to
    // their handles): closing every handle closes them.
    uv_walk(
        &loop_,
        [](uv_handle_t* h, void*) {
          if (!uv_is_closing(h)) uv_close(h, nullptr);
        },
        nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
  }

  const char* name() const override { return "libuv"; }
  size_t SessionExtBytes() const override { return sizeof(SlotIo); }

  size_t CounterNames(const char* const** names) const override {
    *names = kCounterNames;
    return kCounterCount;
  }
  void ReadCounters(uint64_t* values, size_t max) const override {
    const uint64_t all[kCounterCount] = {queued_writes_, stale_callbacks_};
    for (size_t i = 0; i < kCounterCount && i < max; ++i) values[i] = all[i];
  }

  Status Init(BackendEvents* events, SessionTable* table) override {
    events_ = events;
    table_ = table;
    int rc = uv_loop_init(&loop_);
    if (rc != 0) return UvStatus(rc, "uv_loop_init");
    loop_ready_ = true;
    rc = uv_async_init(&loop_, &wake_, [](uv_async_t* h) { Self(h)->events_->OnWake(); });
    if (rc != 0) return UvStatus(rc, "uv_async_init");
    wake_.data = this;
    for (uv_timer_t* t : {&tick_, &backoff_timer_, &deadline_, &poll_timeout_}) {
      uv_timer_init(&loop_, t);
      t->data = this;
    }
    Status st = wake_timer_.Open();
    if (!st.ok()) return st;
    rc = uv_poll_init(&loop_, &wake_timer_poll_, wake_timer_.fd());
    if (rc != 0) return UvStatus(rc, "uv_poll_init");
    wake_timer_poll_.data = this;
    rc = uv_poll_start(&wake_timer_poll_, UV_READABLE, [](uv_poll_t* h, int, int) {
      LibuvBackend* self = Self(h);
      self->wake_timer_.Drain();
      self->wake_armed_ = false;
    });
    if (rc != 0) return UvStatus(rc, "uv_poll_start");
    uv_timer_start(
        &tick_,
        [](uv_timer_t* h) {
          LibuvBackend* self = Self(h);
          self->CheckUnread();
          self->events_->OnTick();
        },
        kTickMs, kTickMs);
    held_.resize(1024);
    later_.reserve(64);
    later_work_.reserve(64);
    // libuv adds descriptors to its epoll/kqueue set only as a round starts:
    // one round now, so the loop's own descriptor reports the wake timer and
    // Wake() before the first PollOnce.
    uv_run(&loop_, UV_RUN_NOWAIT);
    return Status::Ok();
  }

  Status Listen(const SocketAddress& address, const ListenOptions& options,
                SocketAddress* bound) override {
#if !defined(__linux__)
    // Only Linux's SO_REUSEPORT spreads connections over the listeners;
    // elsewhere the last one bound would take them all (FreeBSD's
    // SO_REUSEPORT_LB would balance, untried).
    if (options.reuse_port) return Status::Of(Code::kUnsupported);
#endif
    UniqueFd fd;
    Status st = OpenTcpListener(address, options, &fd);
    if (!st.ok()) return st;
    return StartListening(fd, options, false, bound);
  }

  Status ListenPath(const char* path, const ListenOptions& options, SocketAddress* bound) override {
    UniqueFd fd;
    Status st = OpenUnixListener(path, options.backlog, &fd);
    if (!st.ok()) return st;
    // Ours from here: removed when listening stops, as libuv does for pipes.
    unix_path_ = path;
    st = StartListening(fd, options, true, bound);
    if (!st.ok()) RemoveUnixPath();
    return st;
  }

  Status ListenOn(SocketHandle listener, const ListenOptions& options,
                  SocketAddress* bound) override {
    int fd = static_cast<int>(listener);
    Status st = AdoptListener(fd);
    if (!st.ok()) return st;
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    bool unix_socket =
        getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0 && ss.ss_family == AF_UNIX;
    UniqueFd owned(fd);
    st = StartListening(owned, options, unix_socket, bound);
    if (!st.ok()) owned.release();  // still the caller's
    return st;
  }

  Status DuplicateListener(SocketHandle* out) override {
    int copy = -1;
    Status st = DuplicateSocket(listener_.get(), &copy);
    if (st.ok()) *out = copy;
    return st;
  }

  void SetAccepting(bool on) override {
    engine_accepting_ = on;
    UpdateListener();
  }

  void StopListening() override {
    if (listener_poll_ != nullptr) {
      // uv_close stops watching at once; the handle's memory goes in its
      // callback. Then the descriptor may close.
      uv_close(reinterpret_cast<uv_handle_t*>(listener_poll_),
               [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      listener_poll_ = nullptr;
      Touched();
    }
    if (loop_ready_) uv_timer_stop(&backoff_timer_);
    listener_.reset();
    listener_armed_ = false;
    in_backoff_ = false;
    RemoveUnixPath();
  }

  void DiscardSocket(SocketHandle socket) override {
    int fd = static_cast<int>(socket);
    // A session's descriptor belongs to its handle, which closes it: the
    // engine discards live sessions' sockets only as it is destroyed, just
    // before this backend, whose destructor closes the handles.
    if (Held(fd)) return;
    CloseSocket(fd, false);
  }

  bool PeerAddress(const Session& s, SocketAddress* out) override {
    return SocketPeerAddress(static_cast<int>(s.socket), out);
  }

  Status Attach(Session& s, bool no_delay) override {
    SlotIo& io = ResetSlot(s);
    int fd = static_cast<int>(s.socket);
    int rc = listener_pipe_ ? uv_pipe_init(&loop_, &io.pipe, 0) : uv_tcp_init(&loop_, &io.tcp);
    if (rc != 0) return UvStatus(rc, "uv_tcp_init");  // nothing for libuv to close
    io.handle.data = this;
    io.flags = static_cast<uint8_t>(kHandle | (listener_pipe_ ? kPipe : 0));
    rc = listener_pipe_ ? uv_pipe_open(&io.pipe, fd) : uv_tcp_open(&io.tcp, fd);
    if (rc != 0) return UvStatus(rc, "uv_tcp_open");  // the engine closes it (Close)
    io.flags = static_cast<uint8_t>(io.flags | kOwnsFd | kStreaming | kWantRead);
    Hold(fd);
#if !defined(__linux__)
    // Linux's accepted sockets inherit TCP_NODELAY from the listener
    // (PrepareListener); not every other kernel's do.
    if (no_delay && !listener_pipe_) uv_tcp_nodelay(&io.tcp, 1);
#else
    (void)no_delay;
#endif
    return ApplyReading(io);
  }

  Status Connect(Session& s, const SocketAddress& remote, const SocketAddress* local,
                 bool no_delay) override {
    SlotIo& io = ResetSlot(s);
    UniqueFd fd;
    Status st = OpenClientSocket(remote, local, no_delay, &fd);
    if (!st.ok()) return st;
    int rc = uv_tcp_init(&loop_, &io.tcp);
    if (rc != 0) return UvStatus(rc, "uv_tcp_init");
    io.handle.data = this;
    io.flags = static_cast<uint8_t>(kHandle | kWantRead);
    // From here the handle exists and ends only through uv_close, whose
    // callback a slot must wait for: later failures are reported in the
    // next round (the contract's OnSessionError), not returned.
    rc = uv_tcp_open(&io.tcp, fd.get());
    if (rc == 0) {
      io.flags = static_cast<uint8_t>(io.flags | kOwnsFd);
      Hold(fd.get());
      sockaddr_storage ss;
      ToSockaddr(remote, &ss);
      rc = uv_tcp_connect(&io.connect, &io.tcp, reinterpret_cast<sockaddr*>(&ss), OnConnect);
    }
    s.socket = fd.release();
    if (rc != 0) {
      io.connect_error = rc;
      Later(s, io, kLaterConnectError);
    }
    Touched();
    return Status::Ok();
  }

  Status SendDirect(Session& s, const char* data, size_t size, size_t* sent) override {
    *sent = 0;
    SlotIo& io = Io(s);
    if (!Writable(io)) return Status::Ok();
    uv_buf_t buf;
    buf.base = const_cast<char*>(data);
    buf.len = size;
    return TakeWritten(uv_try_write(&io.stream, &buf, 1), sent);
  }

  Status Flush(Session& s, size_t* sent) override {
    *sent = 0;
    SlotIo& io = Io(s);
    // A write in flight reports through its callback, which flushes again.
    if (!Writable(io)) return Status::Ok();
    IoSlice slices[kMaxSlices];
    uv_buf_t bufs[kMaxSlices];
    int count = s.queue.Peek(slices, kMaxSlices);
    size_t total = 0;
    for (int i = 0; i < count; ++i) {
      bufs[i].base = const_cast<char*>(slices[i].data);
      bufs[i].len = slices[i].size;
      total += slices[i].size;
    }
    size_t done = 0;
    Status st = TakeWritten(uv_try_write(&io.stream, bufs, static_cast<unsigned>(count)), &done);
    if (!st.ok()) return st;
    *sent = done;
    if (done == total) {
      // The gather left, and the queue may hold more than one gather.
      if (s.queue.bytes() > total) Later(s, io, kLaterFlush);
      return Status::Ok();
    }
    // The kernel took part: one uv_write for what follows, straight from the
    // queue's blocks, which stay until the engine consumes what it reports.
    int first = 0;
    size_t skip = done;
    while (skip >= bufs[first].len) skip -= bufs[first++].len;
    bufs[first].base += skip;
    bufs[first].len -= skip;
    int n = std::min(count - first, kWriteBufs);
    size_t bytes = 0;
    for (int i = first; i < first + n; ++i) bytes += bufs[i].len;
    int rc = uv_write(&io.write, &io.stream, bufs + first, static_cast<unsigned>(n), OnWritten);
    if (rc != 0) return UvStatus(rc, "write");
    io.writing = bytes;
    ++queued_writes_;
    Touched();
    return Status::Ok();
  }

  void SetReading(Session& s, bool on) override {
    SlotIo& io = Io(s);
    io.flags = static_cast<uint8_t>(on ? io.flags | kWantRead : io.flags & ~kWantRead);
    ApplyReading(io);
  }

  Status SetNoDelay(Session& s, bool on) override {
    return SetSocketNoDelay(static_cast<int>(s.socket), on);
  }
  Status SetKeepAlive(Session& s, bool on, uint32_t delay_s) override {
    return SetSocketKeepAlive(static_cast<int>(s.socket), on, delay_s);
  }
  Status LocalAddress(const Session& s, SocketAddress* out) override {
    return SocketLocalAddress(static_cast<int>(s.socket), out);
  }
  Status ReadSocketOptions(const Session& s, SocketOptions* out) override {
    return ReadSocketOptionsOf(static_cast<int>(s.socket), out);
  }
  // The engine shuts down only with nothing queued, so no uv_write is in
  // flight: a plain shutdown() answers at once, where uv_shutdown would
  // answer in a callback.
  Status ShutdownWrite(Session& s) override {
    return ShutdownSocketWrite(static_cast<int>(s.socket));
  }

  void Close(Session& s, bool abort) override {
    SlotIo& io = Io(s);
    int fd = static_cast<int>(s.socket);
    s.socket = kNoSocket;
    if ((io.flags & kHandle) == 0) {
      // Attach or Connect failed before a handle existed.
      CloseSocket(fd, abort);
      events_->OnReleased(s);
      return;
    }
    if ((io.flags & kClosing) != 0) return;
    if ((io.flags & kOwnsFd) != 0) {
      Unhold(fd);
    } else {
      CloseSocket(fd, abort);  // the handle never took it
    }
    bool reset = abort && (io.flags & (kOwnsFd | kPipe)) == kOwnsFd;
    io.flags = static_cast<uint8_t>((io.flags | kClosing) & ~kReading);
    // Pending requests are called back (cancelled) before the close
    // callback, which releases the slot.
    if (!reset || uv_tcp_close_reset(&io.tcp, OnClosed) != 0) uv_close(&io.handle, OnClosed);
    Touched();
  }

  Status PollOnce(int timeout_ms) override {
    in_poll_ = true;
    ++round_;
    saturated_ = false;
    resume_at_ = first_starved_;
    first_starved_ = 0;
    resumed_ = false;
    accept_budget_spent_ = false;
    RunLater();
    uv_run_mode mode = UV_RUN_ONCE;
    bool timed = false;
    if (timeout_ms == 0 || !later_.empty()) {
      mode = UV_RUN_NOWAIT;
    } else if (timeout_ms > 0) {
      uv_update_time(&loop_);
      uv_timer_start(
          &poll_timeout_, [](uv_timer_t*) {}, static_cast<uint64_t>(timeout_ms), 0);
      timed = true;
    }
    uv_run(&loop_, mode);
    if (timed) uv_timer_stop(&poll_timeout_);
    in_poll_ = false;
    if (!later_.empty()) {
      saturated_ = true;
      kick_ = true;
    }
    SyncWakeTimer();
    return Status::Ok();
  }

  bool PollSaturated() const override { return saturated_ || accept_budget_spent_; }

  void Wake() override { uv_async_send(&wake_); }

  int PollDescriptor() const override { return uv_backend_fd(&loop_); }

  void ArmTimer(int delay_ms) override {
    uv_update_time(&loop_);
    uv_timer_start(
        &deadline_, [](uv_timer_t*) {}, static_cast<uint64_t>(std::max(delay_ms, 0)), 0);
    if (!in_poll_) SyncWakeTimer();
  }

  void ReturnFreedMemory() override { ReturnFreedHeapMemory(); }

 private:
  template <typename H>
  static LibuvBackend* Self(H* handle) {
    return static_cast<LibuvBackend*>(handle->data);
  }

  SlotIo& Io(const Session& s) { return *static_cast<SlotIo*>(table_->Ext(s)); }

  SlotIo& ResetSlot(Session& s) {
    SlotIo& io = Io(s);
    std::memset(static_cast<void*>(&io), 0, sizeof(io));
    io.id = s.id();
    return io;
  }

  // The session a callback's slot belongs to, or null if that occupant has
  // gone (counted: with handles closed before release it never happens).
  Session* Resolve(SlotIo& io) {
    Session* s = table_->LookupTaken(io.id);
    if (s == nullptr || &Io(*s) != &io) {
      ++stale_callbacks_;
      return nullptr;
    }
    return s;
  }

  static bool Writable(const SlotIo& io) {
    return (io.flags & (kStreaming | kClosing)) == kStreaming && io.writing == 0;
  }

  static Status TakeWritten(int rc, size_t* sent) {
    if (rc >= 0) {
      *sent = static_cast<size_t>(rc);
      return Status::Ok();
    }
    if (rc == UV_EAGAIN) return Status::Ok();
    return UvStatus(rc, "write");
  }

  // Starts or stops reading to match what the engine wants.
  Status ApplyReading(SlotIo& io) {
    bool want = (io.flags & (kStreaming | kWantRead | kClosing)) == (kStreaming | kWantRead);
    bool on = (io.flags & kReading) != 0;
    if (want == on) return Status::Ok();
    if (!want) {
      uv_read_stop(&io.stream);
      io.flags = static_cast<uint8_t>(io.flags & ~kReading);
      return Status::Ok();
    }
    int rc = uv_read_start(&io.stream, OnAlloc, OnRead);
    if (rc != 0) return UvStatus(rc, "read");
    io.flags = static_cast<uint8_t>(io.flags | kReading);
    Touched();
    return Status::Ok();
  }

  // Work for the start of the next round (see LaterWork).
  void Later(const Session& s, SlotIo& io, LaterWork work) {
    io.later = static_cast<uint8_t>(io.later | work);
    if ((io.flags & kQueued) == 0) {
      io.flags = static_cast<uint8_t>(io.flags | kQueued);
      later_.push_back(s.id());
    }
    Touched();  // the next round must come soon
  }

  void RunLater() {
    if (later_.empty()) return;
    later_work_.swap(later_);
    for (SessionId id : later_work_) {
      Session* s = table_->LookupTaken(id);
      if (s == nullptr) continue;  // closed and released meanwhile
      SlotIo& io = Io(*s);
      uint8_t work = io.later;
      io.later = 0;
      io.flags = static_cast<uint8_t>(io.flags & ~kQueued);
      if ((io.flags & kClosing) != 0) continue;
      if ((work & kLaterConnectError) != 0) {
        events_->OnSessionError(*s, UvStatus(io.connect_error, "connect"));
        continue;
      }
      if ((work & kLaterConnected) != 0) ReportConnected(*s, io);
      if ((work & kLaterFlush) != 0 && Writable(io)) events_->OnSendProgress(*s, 0);
    }
    later_work_.clear();
  }

  void ReportConnected(Session& s, SlotIo& io) {
    if (s.state != SessionState::kConnecting) return;
    if (!events_->OnConnected(s)) {
      Later(s, io, kLaterConnected);  // no batch room: again next round
      return;
    }
    io.flags = static_cast<uint8_t>(io.flags | kStreaming);
    ApplyReading(io);
  }

  // ---- libuv callbacks ----

  static void OnConnect(uv_connect_t* req, int status) {
    SlotIo& io = SlotOfHandle(req->handle);
    LibuvBackend* self = Self(req->handle);
    if (status == UV_ECANCELED || (io.flags & kClosing) != 0) return;
    Session* s = self->Resolve(io);
    if (s == nullptr || s->state != SessionState::kConnecting) return;
    if (status < 0) {
      self->events_->OnSessionError(*s, UvStatus(status, "connect"));
      return;
    }
    self->ReportConnected(*s, io);
  }

  // One read per session per round (as epoll does), and only into the
  // engine's space: with none this round, libuv reads later.
  static void OnAlloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
    SlotIo& io = SlotOfHandle(handle);
    LibuvBackend* self = Self(handle);
    buf->base = nullptr;
    buf->len = 0;
    if (io.read_round == self->round_) {
      self->saturated_ = true;
      return;
    }
    // libuv reports ready sockets in the same order every round, so when a
    // batch fills part-way the sessions after that point would starve: the
    // next round's reads start at the first one that found no room, and the
    // ones before it wait a round (epoll's backend rotates the same way).
    if (self->resume_at_ != 0 && !self->resumed_) {
      if (io.id != self->resume_at_) {
        self->saturated_ = true;
        return;
      }
      self->resumed_ = true;
    }
    char* space = nullptr;
    size_t room = 0;
    if (!self->events_->ReadSpace(&space, &room)) {
      if (self->first_starved_ == 0) self->first_starved_ = io.id;
      self->saturated_ = true;
      return;
    }
    io.read_round = self->round_;
    buf->base = space;
    buf->len = room;
  }

  static void OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t*) {
    if (nread == 0 || nread == UV_ENOBUFS) return;  // nothing, or no space lent
    SlotIo& io = SlotOfHandle(stream);
    LibuvBackend* self = Self(stream);
    if ((io.flags & kClosing) != 0) return;
    Session* s = self->Resolve(io);
    if (s == nullptr) return;
    if (nread > 0) {
      self->events_->OnReceived(*s, static_cast<size_t>(nread));
      return;
    }
    // libuv stops reading after EOF and errors.
    io.flags = static_cast<uint8_t>(io.flags & ~kReading);
    if (nread == UV_EOF) {
      self->events_->OnPeerEnd(*s);
    } else {
      self->events_->OnSessionError(*s, UvStatus(static_cast<int>(nread), "read"));
    }
  }

  static void OnWritten(uv_write_t* req, int status) {
    SlotIo& io = SlotOfHandle(req->handle);
    LibuvBackend* self = Self(req->handle);
    size_t bytes = io.writing;
    io.writing = 0;
    if (status == UV_ECANCELED || (io.flags & kClosing) != 0) return;
    Session* s = self->Resolve(io);
    if (s == nullptr) return;
    if (status < 0) {
      self->events_->OnSessionError(*s, UvStatus(status, "write"));
      return;
    }
    self->events_->OnSendProgress(*s, bytes);
  }

  static void OnClosed(uv_handle_t* handle) {
    LibuvBackend* self = Self(handle);
    if (self->destroying_) return;
    Session* s = self->Resolve(SlotOfHandle(handle));
    // The slot may be reused (or its chunk freed) from here: hands off.
    if (s != nullptr) self->events_->OnReleased(*s);
  }

  // libuv watches a stream only while it reads or writes, where epoll
  // reports an error on a paused socket whatever its interests. So once a
  // tick, the sessions not being read (paused, or past the peer's FIN) are
  // asked for SO_ERROR: a reset closes a paused connection within a second.
  void CheckUnread() {
    table_->ForEachLive([this](Session& s) {
      if (s.socket == kNoSocket) return;
      SlotIo& io = Io(s);
      if ((io.flags & (kStreaming | kReading | kClosing)) != kStreaming) return;
      int err = PendingSocketError(static_cast<int>(s.socket));
      if (err != 0) events_->OnSessionError(s, ErrnoStatus(err, "read"));
    });
  }

  // ---- listening ----

  // `fd` is bound and listening; taken only on success.
  Status StartListening(UniqueFd& fd, const ListenOptions& options, bool unix_socket,
                        SocketAddress* bound) {
    Status st = PrepareListener(fd.get(), options, bound);
    if (!st.ok()) return st;
    auto poll = std::make_unique<uv_poll_t>();
    int rc = uv_poll_init(&loop_, poll.get(), fd.get());
    if (rc != 0) return UvStatus(rc, "uv_poll_init");
    poll->data = this;
    listener_poll_ = poll.release();
    listener_ = std::move(fd);
    listener_pipe_ = unix_socket;
    reserve_.Hold();
    engine_accepting_ = true;
    in_backoff_ = false;
    listener_armed_ = false;
    UpdateListener();
    return Status::Ok();
  }

  void UpdateListener() {
    if (listener_poll_ == nullptr) return;
    bool want = engine_accepting_ && !in_backoff_;
    if (want == listener_armed_) return;
    listener_armed_ = want;
    if (!want) {
      uv_poll_stop(listener_poll_);
      return;
    }
    uv_poll_start(listener_poll_, UV_READABLE, [](uv_poll_t* h, int status, int) {
      LibuvBackend* self = Self(h);
      if (status < 0) {
        self->events_->OnAcceptError(UvStatus(status, "accept"), 0);
        self->StartBackoff();
        return;
      }
      self->AcceptSome();
    });
    Touched();
  }

  static int AcceptOne(int listener, sockaddr_storage* ss) {
    socklen_t len = sizeof(*ss);
    sockaddr* sa = reinterpret_cast<sockaddr*>(ss);
#if defined(__APPLE__)
    // No accept4 on macOS: uv_tcp_open makes it non-blocking.
    int fd = accept(listener, sa, &len);
    if (fd >= 0) fcntl(fd, F_SETFD, FD_CLOEXEC);
    return fd;
#else
    return accept4(listener, sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
#endif
  }

  void AcceptSome() {
    uint32_t budget = events_->AcceptBudget();
    // Stopping at the budget may leave connections waiting: say so.
    accept_budget_spent_ = true;
    while (budget > 0 && listener_.valid()) {
      sockaddr_storage ss;
      int fd = AcceptOne(listener_.get(), &ss);
      if (fd >= 0) {
        backoff_.Reset();
        --budget;
        events_->OnAccepted(fd, FromSockaddr(ss));
        continue;
      }
      int err = errno;
      switch (ClassifyAcceptError(err)) {
        case AcceptFailure::kRetry: continue;
        case AcceptFailure::kDrained: accept_budget_spent_ = false; return;
        case AcceptFailure::kNoDescriptors: {
          uint32_t shed = reserve_.Shed(listener_.get(), kMaxShedPerEpisode);
          events_->OnAcceptError(ErrnoStatus(err, "accept"), shed);
          StartBackoff();
          return;
        }
        case AcceptFailure::kSkip: events_->OnAcceptError(ErrnoStatus(err, "accept"), 0); continue;
        case AcceptFailure::kBackOff:
          events_->OnAcceptError(ErrnoStatus(err, "accept"), 0);
          StartBackoff();
          return;
      }
    }
  }

  void StartBackoff() {
    in_backoff_ = true;
    uv_timer_start(
        &backoff_timer_,
        [](uv_timer_t* h) {
          LibuvBackend* self = Self(h);
          self->in_backoff_ = false;
          self->UpdateListener();
        },
        static_cast<uint64_t>(backoff_.Next()), 0);
    UpdateListener();
  }

  void RemoveUnixPath() {
    if (unix_path_.empty()) return;
    ::unlink(unix_path_.c_str());
    unix_path_.clear();
  }

  // ---- the wake timer ----

  // libuv may hold work it does without its descriptor becoming readable
  // (watchers it registers on its next round, deferred callbacks, timers):
  // then the wake timer makes it readable, at once or when the loop's next
  // timer is due. Called after a round and after work outside one.
  void Touched() {
    kick_ = true;
    if (!in_poll_) SyncWakeTimer();
  }

  void SyncWakeTimer() {
    uv_update_time(&loop_);
    int timeout = kick_ ? 0 : uv_backend_timeout(&loop_);
    kick_ = false;
    if (timeout < 0) return;
    uint64_t due = uv_now(&loop_) + static_cast<uint64_t>(timeout);
    // Armed for no later than that already: it fires in time (and a wake
    // that comes early only leads to another sync).
    if (wake_armed_ && wake_due_ <= due) return;
    wake_timer_.Arm(timeout);
    wake_armed_ = true;
    wake_due_ = due;
  }

  // ---- descriptors the handles hold ----

  bool Held(int fd) const { return fd >= 0 && static_cast<size_t>(fd) < held_.size() && held_[fd]; }
  void Hold(int fd) {
    if (static_cast<size_t>(fd) >= held_.size()) {
      held_.resize(std::max(held_.size() * 2, static_cast<size_t>(fd) + 1));
    }
    held_[fd] = true;
  }
  void Unhold(int fd) {
    if (fd >= 0 && static_cast<size_t>(fd) < held_.size()) held_[fd] = false;
  }

  BackendEvents* events_ = nullptr;
  SessionTable* table_ = nullptr;
  uv_loop_t loop_{};
  bool loop_ready_ = false;
  bool destroying_ = false;
  uv_async_t wake_{};
  uv_timer_t tick_{};
  uv_timer_t backoff_timer_{};
  uv_timer_t deadline_{};      // ArmTimer: the engine runs its deadlines after every round
  uv_timer_t poll_timeout_{};  // PollOnce's own timeout
  WakeTimer wake_timer_;
  uv_poll_t wake_timer_poll_{};
  bool wake_armed_ = false;
  uint64_t wake_due_ = 0;  // loop time (uv_now) it is armed for
  bool kick_ = false;      // work is deferred: make the descriptor readable at once

  uv_poll_t* listener_poll_ = nullptr;  // owned; freed by its close callback
  UniqueFd listener_;
  bool listener_pipe_ = false;  // a Unix socket: sessions are uv_pipe_t
  bool listener_armed_ = false;
  bool engine_accepting_ = false;
  bool in_backoff_ = false;
  AcceptReserve reserve_;
  AcceptBackoff backoff_;
  std::string unix_path_;  // the Unix socket ListenPath created, if any

  bool in_poll_ = false;
  uint64_t round_ = 0;
  // Read fairness (see OnAlloc): the first session this round that found no
  // room, and where this round's reads start.
  SessionId first_starved_ = 0;
  SessionId resume_at_ = 0;
  bool resumed_ = false;
  bool saturated_ = true;
  bool accept_budget_spent_ = false;
  std::vector<SessionId> later_;       // slots with LaterWork, for the next round
  std::vector<SessionId> later_work_;  // RunLater's copy
  // By descriptor: held by a session's handle (see DiscardSocket). Grows to
  // the highest descriptor seen, not per connection.
  std::vector<bool> held_;
  uint64_t queued_writes_ = 0;
  uint64_t stale_callbacks_ = 0;
};

}  // namespace

std::unique_ptr<Backend> MakeLibuvBackend() { return std::make_unique<LibuvBackend>(); }

}  // namespace acceptpool
