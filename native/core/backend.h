// The backend contract: what an OS backend (epoll, io_uring, IOCP) does for
// the engine, and what it reports back.
//
// It is written for completion-based I/O. A backend *delivers* received bytes
// (into the space the engine lends it), *takes* bytes from a session's send
// queue and reports when they have left, and reports when a closed session's
// last operation has finished. A readiness backend (epoll) adapts: it reads
// when readable and writes when writable, and finishes closes at once.
//
// Every call happens on the engine's thread. A backend never allocates per
// connection on the hot path and never frees a session: it calls
// OnReleased() and the engine decides.
//
// A backend reads and writes sessions in kOpen, kClosing and kLingering. A
// lingering session has sent its FIN and is still read (the engine discards
// what arrives) until the peer's FIN, an error, or the engine closes it.
//
// Who touches which Session field (session_table.h):
//
//   field                         engine        backend
//   slot, generation, id()        read          read: id() tags what it queues,
//                                               resolved by SessionTable::LookupTaken
//   next_free                     -             -      (the table's own)
//   state                         read, write   read
//   socket                        read, write   read, write
//   queue                         read, write   read (Peek) only: the engine consumes
//   flags, next_pending,
//   active_ms, timeout_*, token,
//   close_reason/error/raw        read, write   -
//
// socket: the engine sets it to an accepted socket before Attach(); the
// backend sets it in Connect() and clears it once it has closed the socket.
// Everything else a backend keeps per slot (interest bits, overlapped
// operations, counts of operations in flight) lives in its ext bytes
// (SessionExtBytes, SessionTable::Ext), which the engine never reads. A
// slot's ext bytes outlive its occupants: the backend resets them when a
// socket becomes a session (Attach, Connect).
#ifndef ACCEPTPOOL_CORE_BACKEND_H_
#define ACCEPTPOOL_CORE_BACKEND_H_

#include <cstddef>
#include <cstdint>

#include "core/address.h"
#include "core/send_queue.h"
#include "core/session_table.h"
#include "core/status.h"

namespace acceptpool {

// A session socket's options as the OS reports them (ReadSocketOptions).
struct SocketOptions {
  bool no_delay = false;
  bool keep_alive = false;
  uint32_t keep_alive_delay_s = 0;  // idle seconds before the first probe
};

// No defaults of its own (see EngineConfig).
struct ListenOptions {
  int backlog = 0;
  bool ipv6_only = false;
  // TCP_NODELAY for accepted sockets. Set on the listener where accepted
  // sockets inherit it (Linux), saving a syscall per connection.
  bool no_delay = false;
  // maxConnections: the most accepts a backend that pre-posts them (IOCP)
  // may keep posted. 0 = no limit of its own.
  uint32_t max_sessions = 0;
  // SO_REUSEPORT before bind: other sockets (engines of this endpoint,
  // other processes) may listen on the same port, and the kernel spreads
  // new connections over them. Backends without a balancing one refuse it
  // (kUnsupported).
  bool reuse_port = false;
  // Several pollers (one per engine) wait on this one listening socket: the
  // kernel should wake only one of them per connection (EPOLLEXCLUSIVE),
  // not all of them to race for it.
  bool shared = false;
};

// What the engine does with what a backend reports.
class BackendEvents {
 public:
  virtual ~BackendEvents() = default;
  // How many connections the backend may take now (0 = none: leave them in
  // the backlog or pending).
  virtual uint32_t AcceptBudget() = 0;
  // A connection arrived; the engine binds it to a slot and calls Attach().
  virtual void OnAccepted(SocketHandle socket, const SocketAddress& peer) = 0;
  // accept() failed. For EMFILE/ENFILE the backend has already shed `shed`
  // waiting connections and started its back-off.
  virtual void OnAcceptError(const Status& status, uint32_t shed) = 0;
  // Where the next received bytes may land; false = no room this round (a
  // readiness backend simply reads later).
  virtual bool ReadSpace(char** data, size_t* size) = 0;
  // `size` bytes landed in the space from ReadSpace().
  virtual void OnReceived(Session& s, size_t size) = 0;
  // A connect started by Backend::Connect completed: the session is open.
  // False if the engine cannot record it now (batch full): the backend
  // reports it again in a later round. A failed connect arrives as
  // OnSessionError with the connect error.
  virtual bool OnConnected(Session& s) = 0;
  // The peer half-closed (FIN).
  virtual void OnPeerEnd(Session& s) = 0;
  // `sent` bytes from the head of the send queue have left (the engine
  // consumes them from the queue), or with 0 the socket can take more; the
  // engine flushes again.
  virtual void OnSendProgress(Session& s, size_t sent) = 0;
  // The connection failed (reset, timeout, ...).
  virtual void OnSessionError(Session& s, const Status& status) = 0;
  // The backend holds nothing of this session any more.
  virtual void OnReleased(Session& s) = 0;
  // About once a second.
  virtual void OnTick() = 0;
  // Wake() was called (commands from another thread may be waiting).
  virtual void OnWake() = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual const char* name() const = 0;
  // Backend-private bytes the session table keeps per slot (see above).
  virtual size_t SessionExtBytes() const { return 0; }
  // Counters of the backend's own for stats(): static names, and values in
  // the same order (at most Stats::kBackendCounters).
  virtual size_t CounterNames(const char* const** names) const {
    *names = nullptr;
    return 0;
  }
  virtual void ReadCounters(uint64_t* values, size_t max) const {
    (void)values;
    (void)max;
  }
  // Which of them (bit i for counter i) are settings, a mode or a flag,
  // not counts or sizes: an endpoint of several engines reports the largest
  // engine's value of these, not the sum.
  virtual uint32_t SettingCounters() const { return 0; }
  // False while operations of the listener are still outstanding (a
  // completion backend's cancelled accepts not yet back); the engine
  // reports the server closed only once this holds.
  virtual bool Quiescent() const { return true; }

  virtual Status Init(BackendEvents* events, SessionTable* table) = 0;
  // Binds and listens; `bound` receives the real address (port 0 resolved).
  virtual Status Listen(const SocketAddress& address, const ListenOptions& options,
                        SocketAddress* bound) = 0;
  // Listens on a Unix domain socket at `path` (created; removed again by
  // StopListening). `bound` as for Listen (kLocalFamily). Backends without
  // them say so with EAFNOSUPPORT.
  virtual Status ListenPath(const char* path, const ListenOptions& options, SocketAddress* bound) {
    (void)path;
    (void)options;
    (void)bound;
    return Status::System(SysError::kAfNoSupport, 0, "listen");
  }
  // Listens on `listener`, a socket already bound and listening: inherited
  // (from a parent, systemd) or another engine's (DuplicateListener, with
  // ListenOptions::shared). The backend owns it once this succeeds; on
  // failure it is still the caller's.
  virtual Status ListenOn(SocketHandle listener, const ListenOptions& options,
                          SocketAddress* bound) {
    (void)listener;
    (void)options;
    (void)bound;
    return Status::System(SysError::kAfNoSupport, 0, "listen");
  }
  // A new handle to the listening socket, for another backend's ListenOn.
  virtual Status DuplicateListener(SocketHandle* out) {
    (void)out;
    return Status::Of(Code::kUnsupported);
  }
  // Listens on `first`'s listening socket beside it (ListenOptions::shared):
  // `first` is the backend of another engine of this endpoint, made by the
  // same factory, already listening. By default a duplicate of its socket
  // (DuplicateListener) through ListenOn. A backend whose listener's
  // completions reach only the port of the backend that opened it (IOCP)
  // overrides this to learn that port.
  virtual Status ListenBeside(Backend& first, const ListenOptions& options, SocketAddress* bound) {
    SocketHandle copy = kNoSocket;
    Status st = first.DuplicateListener(&copy);
    if (!st.ok()) return st;
    st = ListenOn(copy, options, bound);
    if (!st.ok()) DiscardSocket(copy);
    return st;
  }
  // Pause or resume taking connections (pool at its limit, shutting down).
  virtual void SetAccepting(bool on) = 0;
  virtual void StopListening() = 0;

  // Closes a socket that never became a session.
  virtual void DiscardSocket(SocketHandle socket) = 0;
  // The peer of an attached session's socket (getpeername): the engine keeps
  // no address per slot, and needs one only for a PROXY header that names no
  // client. False if the OS cannot tell.
  virtual bool PeerAddress(const Session& s, SocketAddress* out) {
    (void)s;
    (void)out;
    return false;
  }
  // Starts I/O on a session the engine has just bound to an accepted socket.
  virtual Status Attach(Session& s, bool no_delay) = 0;
  // Opens a socket for `s` (state kConnecting) and starts a non-blocking
  // connect to `remote`, bound first to `local` if given (port 0 = any).
  // Sets s.socket. An error returned here means nothing was started (no
  // socket is left open); later failures arrive as OnSessionError.
  virtual Status Connect(Session& s, const SocketAddress& remote, const SocketAddress* local,
                         bool no_delay) = 0;
  // Optional fast path: send from the caller's memory right now, without
  // queueing. Returns bytes sent (0 if it would block or the backend cannot);
  // an error status means the connection is broken.
  virtual Status SendDirect(Session& s, const char* data, size_t size, size_t* sent) = 0;
  // Start (or continue) sending from the head of s.queue without consuming
  // it: a readiness backend sends now and reports `sent` (which the engine
  // consumes); a completion backend posts the send and reports through
  // OnSendProgress. The backend asks for writability itself when bytes remain.
  virtual Status Flush(Session& s, size_t* sent) = 0;
  virtual void SetReading(Session& s, bool on) = 0;
  // Per-session socket options, as net.Socket's setNoDelay/setKeepAlive.
  // keep_alive_delay_s 0 leaves the probe delay as it is.
  virtual Status SetNoDelay(Session& s, bool on) = 0;
  virtual Status SetKeepAlive(Session& s, bool on, uint32_t delay_s) = 0;
  // The socket's own address (getsockname).
  virtual Status LocalAddress(const Session& s, SocketAddress* out) = 0;
  // What the OS says the options are (tests and diagnostics read them back).
  virtual Status ReadSocketOptions(const Session& s, SocketOptions* out) = 0;
  virtual Status ShutdownWrite(Session& s) = 0;
  // Closes the socket (abort = reset). OnReleased follows once no operation
  // is outstanding (at once for readiness backends).
  virtual void Close(Session& s, bool abort) = 0;

  // Waits up to timeout_ms (-1 = forever, 0 = not at all) and reports.
  virtual Status PollOnce(int timeout_ms) = 0;
  // After PollOnce: true if it may have left ready work behind (it took as
  // many events as it could at once), so another round would find more.
  virtual bool PollSaturated() const { return true; }
  // Makes PollOnce return soon and report OnWake; safe from any thread.
  virtual void Wake() = 0;
  // Makes PollOnce return within `delay_ms` (0: at once), and the poll
  // descriptor readable then, replacing the previous request; the engine's
  // next deadline. A backend that only runs on a thread of its own (IOCP)
  // needs nothing here: the engine shortens PollOnce's timeout as well.
  virtual void ArmTimer(int delay_ms) { (void)delay_ms; }
  // A descriptor that becomes readable when PollOnce has work, for Node's
  // loop to watch (-1 if the backend has none, e.g. IOCP).
  virtual int PollDescriptor() const = 0;
  // Hands memory the process has freed back to the OS where the C allocator
  // would keep it (glibc). The engine calls it once traffic has gone quiet
  // after a burst. The Windows heap decommits large free blocks by itself.
  virtual void ReturnFreedMemory() {}
};

}  // namespace acceptpool

#endif  // ACCEPTPOOL_CORE_BACKEND_H_
