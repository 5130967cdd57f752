// The engine: one server's sessions, pool, send queues and event batches,
// driven by one backend on one thread. Whoever runs it owns the batches,
// calls Poll() and the commands on that thread, and hears back through an
// EngineObserver; the engine knows nothing of how it is run.
//
// Event order per session is kSession, kData..., then kDrain/kEnd/kClose.
// Once a graceful close is requested no kData or kEnd follows: what the peer
// still sends is read and discarded (see EngineConfig::close_linger_ms).
//
// Time: every deadline of a session (its own setTimeout, the idle timeout,
// the close linger, the shutdown grace) is one entry of a DeadlineHeap, in
// milliseconds; Poll() waits no longer than the earliest, and the backend's
// timer (Backend::ArmTimer) makes the poll descriptor readable then.
// Drain, end and close events go through a pending list and are written to a
// batch when it has room; a closed slot is reused only after its close event
// has been written AND the backend has released it, so JS always hears of an
// occupant's end before a new occupant of the same slot appears.
#ifndef ACCEPTPOOL_CORE_ENGINE_H_
#define ACCEPTPOOL_CORE_ENGINE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/backend.h"
#include "core/deadline_heap.h"
#include "core/event_batch.h"
#include "core/pool_policy.h"
#include "core/proxy_protocol.h"
#include "core/send_queue.h"
#include "core/session_table.h"
#include "core/stats.h"
#include "core/status.h"

namespace acceptpool {

// The most bytes one session may queue: the threaded driver counts a slot's
// bytes in flight in 32 bits, and this leaves it room to spare.
constexpr size_t kMaxQueuedBytes = size_t{1} << 30;
// Bytes one session reads per round: its share of a batch's data arena, so
// one busy peer cannot take a whole round. The engine's own tuning, not an
// option: it follows the arena's size, not the application (tests lower it
// to make fairness visible).
constexpr size_t kReadChunk = 64 * 1024;

// What an engine runs with. Nothing here stands for the product's defaults:
// whoever builds an engine gives every value (the addon: the options
// src/options.ts validated and completed; the load generator and the tests:
// their own), and a field left alone is 0. Only the engine's own tuning has
// a value of its own.
struct EngineConfig {
  PoolConfig pool;
  ListenOptions listen;
  // Which of an endpoint's engines this is (threads: N), for its ids.
  IdSpace ids;
  bool no_delay = false;       // TCP_NODELAY on every session's socket
  size_t high_water_mark = 0;  // queued bytes above which a send reports backpressure
  // Queued bytes that close a session ('overflow'), <= kMaxQueuedBytes.
  size_t max_queued_bytes = 0;
  uint32_t accept_batch = 0;     // accepts per wakeup, for fairness
  uint32_t idle_timeout_ms = 0;  // 0 = never time out
  // A graceful close that has flushed its queue sends FIN, then lingers: it
  // reads and discards what the peer still sends until the peer's FIN, for
  // this long at most, then resets. Closing with unread input would reset
  // the connection at once, and a reset can destroy bytes already handed to
  // the kernel. 0 = no lingering: close as soon as the queue is flushed.
  uint32_t close_linger_ms = 0;
  // PROXY protocol (proxy_protocol.h): every accepted connection from a peer
  // in proxy_trusted must start with a header, which the engine parses
  // before announcing the session; connections from other peers are
  // refused. A header not complete proxy_timeout_ms after the accept is
  // refused too.
  bool proxy_protocol = false;
  std::vector<CidrRange> proxy_trusted;
  uint32_t proxy_timeout_ms = 0;

  // The engine's own tuning.
  size_t read_chunk = kReadChunk;
  // After Shutdown(), sessions get this long to flush their queues before
  // they are reset.
  uint32_t shutdown_grace_ms = 5000;
  // Deadlines expired per poll round at most (bounded work; the rest wait
  // for the next round, which comes at once).
  uint32_t max_expiries_per_round = 1024;
  // Milliseconds of a monotonic clock; null: std::chrono::steady_clock.
  // Tests give their own.
  uint64_t (*clock_ms)() = nullptr;
};

// What the engine tells whoever runs it, on the engine's thread. Optional:
// without an observer the engine counts only its own queues and wakes its
// backend itself.
class EngineObserver {
 public:
  virtual ~EngineObserver() = default;
  // The bytes that count against the session's high-water mark (for
  // BufferedAmount and drain): its send queue's `queued`, plus whatever the
  // runner still holds for the session on the way in.
  virtual size_t Buffered(SessionId /*id*/, size_t queued) { return queued; }
  // `bytes` that Send() took for the session have left it: sent, or dropped
  // (stale id, session closing, overflow, queue cleared by a close).
  virtual void OnSendLeft(SessionId /*id*/, size_t /*bytes*/) {}
  // Work that only a poll round finishes (events queued, a shutdown begun)
  // came in outside one: have a round run soon, by Engine::Wake() or by an
  // EmitPending() the runner is about to do anyway.
  virtual void OnWorkOutsidePoll() = 0;
  // The backend was woken (Engine::Wake): another thread may have left work.
  virtual void OnWake() {}
  // Once a period (~1 s). Returns the bytes the runner's own buffers gave
  // back (capacity.h), which count towards returning memory to the OS.
  virtual size_t OnTick() { return 0; }
};

// X(name, value): numbered lists (core/wire.h).
#define ACCEPTPOOL_SEND_RESULTS(X)                                                \
  X(kOk, 0)           /* sent or queued, below the high-water mark */             \
  X(kBackpressure, 1) /* queued, above the high-water mark: wait for drain */     \
  X(kStale, 2)        /* id of a closed session: dropped and counted */           \
  X(kClosed, 3)       /* the session is ending (end()/close() called): dropped */ \
  X(kOverflow, 4)     /* hard limit hit: the session was closed ('overflow') */   \
  X(kFailed, 5)       /* the write failed: the session is closing with the error */

enum class SendResult : uint8_t { ACCEPTPOOL_SEND_RESULTS(ACCEPTPOOL_NUMBERED_ENUMERATOR) };

#define ACCEPTPOOL_CLOSE_MODES(X)                                                     \
  X(kGraceful, 0) /* flush the queue, FIN, linger until the peer's FIN, then close */ \
  X(kAbort, 1)    /* drop the queue, reset the connection */                          \
  X(kEnd, 2)      /* flush the queue, then half-close (FIN) */

enum class CloseMode : uint8_t { ACCEPTPOOL_CLOSE_MODES(ACCEPTPOOL_NUMBERED_ENUMERATOR) };

// What Engine::Control does to one session; a and b are its arguments.
#define ACCEPTPOOL_SESSION_CONTROLS(X)                                                     \
  X(kPause, 0)     /* stop reading: the kernel's receive window pushes back on the peer */ \
  X(kResume, 1)    /* read again */                                                        \
  X(kTimeout, 2)   /* a = ms without reads or writes before a kTimeout event; 0 = off */   \
  X(kNoDelay, 3)   /* a = 1: TCP_NODELAY on, 0: off */                                     \
  X(kKeepAlive, 4) /* a = 1: keep-alive probes on; b = ms idle before the first (0: as is) */

enum class SessionControl : uint8_t { ACCEPTPOOL_SESSION_CONTROLS(ACCEPTPOOL_NUMBERED_ENUMERATOR) };

// What Engine::Query tells of one session. The address and the options
// cost system calls: only what the caller asks for is read.
struct SessionInfo {
  bool want_local = false;
  bool want_options = false;
  bool has_local = false;  // false if the OS could not say
  SocketAddress local;
  uint64_t bytes_written = 0;  // bytes the kernel has taken
  bool has_options = false;
  SocketOptions options;
};

class Engine final : public BackendEvents {
 public:
  Engine(const EngineConfig& config, std::unique_ptr<Backend> backend);
  ~Engine() override;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  Status Init();
  // Binds with config().listen, or with `options` (backlog, ipv6_only, ...).
  Status Listen(const SocketAddress& address, SocketAddress* bound);
  Status Listen(const SocketAddress& address, const ListenOptions& options, SocketAddress* bound);
  // Starts accepting on `listener`, a socket already bound and listening
  // (inherited), which the engine owns from here if this succeeds.
  Status ListenOn(SocketHandle listener, const ListenOptions& options, SocketAddress* bound);
  // Starts accepting on `first`'s listening socket, beside it
  // (Backend::ListenBeside): `first` is another engine of this endpoint,
  // listening with ListenOptions::shared.
  Status ListenBeside(Engine& first, const ListenOptions& options, SocketAddress* bound);
  // Undoes a Listen (the endpoint's other engines could not listen): closes
  // the listener; the engine may listen again.
  void CancelListen();
  // Listens on a Unix domain socket (Backend::ListenPath).
  Status ListenPath(const char* path, const ListenOptions& options, SocketAddress* bound);

  // Starts an outgoing connection (client side); *id names it at once. A
  // kConnected event follows, or a kClose with the connect error.
  // `token` is the caller's tag, echoed in kConnected / kConnectFailed.
  Status Connect(const SocketAddress& remote, const SocketAddress* local, uint32_t token,
                 SessionId* id);

  // Gives up an outgoing connect still in progress (closes it; its
  // kConnectFailed follows). False if no connect with that token is pending.
  bool AbortConnect(uint32_t token);

  // The batch that events are written to. The runner owns batches and swaps
  // them when it hands one on; null while it has none (events then wait in
  // the pending list, and no I/O is polled).
  void SetBatch(EventBatch* batch) { batch_ = batch; }
  // Null detaches; the observer must outlive its attachment.
  void SetObserver(EngineObserver* observer) { observer_ = observer; }

  // One round: poll the backend, then write pending events.
  Status Poll(int timeout_ms);
  // After Poll (before the batch is cleared): whether another round right
  // away would likely find work.
  bool MoreWork() const;
  // Writes as many pending drain/end/close events as the batch takes.
  void EmitPending();
  bool HasPending() const { return pending_head_ != nullptr; }

  // Commands. Each checks the id's generation here, where it acts.
  SendResult Send(SessionId id, const char* data, size_t size);
  // The caller told its user to wait for 'drain' on its own count (bytes
  // still on their way here): a kDrain follows once the session's buffered
  // bytes are at most the high-water mark, at once if they already are.
  void RequestDrain(SessionId id);
  // Sends to every listed id (or every open session when ids is null);
  // returns how many were reached.
  uint32_t Broadcast(const char* data, size_t size, const SessionId* ids, size_t count);
  // False if the id is stale.
  bool Close(SessionId id, CloseMode mode);
  // A per-session control (SessionControl); false (and counted) if the id
  // is stale.
  bool Control(SessionId id, SessionControl control, uint32_t a, uint32_t b);
  // The session's local address, counters and socket options; false if the
  // id is stale. Asking also has the session's last counts reported before
  // its close (a kTotals record), so a count read while open stays exact.
  bool Query(SessionId id, SessionInfo* out);
  // Bytes buffered for the session (EngineObserver::Buffered), or -1 when
  // the id is stale.
  int64_t BufferedAmount(SessionId id);
  // Appends the id of every open session.
  void ListOpen(std::vector<SessionId>* ids);
  // Stops accepting and closes every session (reason 'shutdown'); a
  // kServerClosed event follows the last close.
  void Shutdown();
  // Graceful drain (a deploy): the listener closes at once, so a balancer's
  // health check fails and new clients go elsewhere, while the sessions go
  // on and end by themselves. Once the last has ended the engine shuts down
  // (kServerClosed); the caller's deadline is a Shutdown(), which closes the
  // rest with 'shutdown'.
  void Drain();

  // Tests only (see SessionTable::SetGenerationForTesting); on the engine's
  // thread, like every command.
  bool SetGenerationForTesting(uint32_t slot, uint32_t generation);

  // Makes Poll() return soon and the observer hear OnWake(); safe from any
  // thread.
  void Wake() { backend_->Wake(); }
  // For a loop that watches the engine: readable when Poll() has work (-1 if
  // the backend has no such descriptor, e.g. IOCP: run it on a thread).
  int PollDescriptor() const { return backend_->PollDescriptor(); }
  const char* backend_name() const { return backend_->name(); }
  // Names of Stats::backend, in order; returns how many.
  size_t BackendCounterNames(const char* const** names) const {
    return backend_->CounterNames(names);
  }
  uint32_t BackendSettingCounters() const { return backend_->SettingCounters(); }
  Stats SnapshotStats() const;
  const EngineConfig& config() const { return config_; }
  bool shutting_down() const { return shutting_down_; }
  bool closed() const { return server_closed_emitted_; }

  // BackendEvents.
  uint32_t AcceptBudget() override;
  void OnAccepted(SocketHandle socket, const SocketAddress& peer) override;
  void OnAcceptError(const Status& status, uint32_t shed) override;
  bool ReadSpace(char** data, size_t* size) override;
  void OnReceived(Session& s, size_t size) override;
  bool OnConnected(Session& s) override;
  void OnPeerEnd(Session& s) override;
  void OnSendProgress(Session& s, size_t sent) override;
  void OnSessionError(Session& s, const Status& status) override;
  void OnReleased(Session& s) override;
  void OnTick() override;
  void OnWake() override;

 private:
  // Listen, ListenPath and ListenOn: `listen` binds the backend with the
  // options made complete.
  template <typename ListenFn>
  Status StartListening(const ListenOptions& options, ListenFn&& listen);
  void QueuePending(Session& s);
  size_t BufferedBytes(const Session& s) const;
  void CheckDrain(Session& s);
  // Bytes Send() took that have left: sent, or dropped.
  void NoteLeft(SessionId id, size_t bytes);
  // Work that needs a poll round, outside one.
  void NoteWorkOutsidePoll();
  void CloseSession(Session& s, CloseReason reason, const Status& error, bool abort);
  // Tells the backend whether to read the session: not past the peer's FIN,
  // and not while JS has paused it (a closing session reads to discard).
  void UpdateReading(Session& s);

  // ---- deadlines ----
  uint64_t Now();
  // A session's read or write: restarts its timers (lazily: see
  // deadline_heap.h).
  void NoteActive(Session& s);
  // The next moment the session's timers need the engine, or kNever.
  uint64_t DueOf(const Session& s, uint64_t now) const;
  // Puts the session's entry where DueOf says.
  void Reschedule(Session& s);
  // Has the backend's timer fire by `due` at the latest.
  void ArmBy(uint64_t due);
  void RunDeadlines();
  // The session's deadline came: time it out, close it, or set the next one.
  void Expire(Session& s, uint64_t now);
  bool GrowTable();
  void AfterSend(Session& s);
  bool SendFin(Session& s);
  void CloseFlushed(Session& s);
  void FlushSession(Session& s);
  void MaybeRelease(Session& s);
  void NoteSent(Session& s, size_t bytes, bool from_queue);
  void CheckServerClosed();
  // Writes a drain's kDraining record if it is due; false while it waits for
  // batch room.
  bool ReportDraining();
  // maxConnections sessions are in use.
  bool AtLimit() const;
  void UpdateAccepting();
  void GrowIfNeeded();
  bool EnsureInitialPool();
  void ReturnMemoryWhenQuiet(size_t freed);
  // PROXY protocol.
  bool Trusted(const SocketAddress& peer) const;
  void OnHeaderBytes(Session& s, size_t size);
  void AnnounceProxied(Session& s, const ProxyParser& parser, size_t used, size_t size);
  void EndHeaderWait(Session& s);
  void RejectHeader(Session& s, ProxyReject reason, ProxyError error);
  void CountReject(ProxyReject reason);
  void DropRejected(Session& s);
  void AddRejectRecord(const SocketAddress& peer, ProxyReject reason, ProxyError error);

  EngineConfig config_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<SessionTable> table_;
  PoolPolicy policy_;
  BlockPool blocks_;
  EventBatch* batch_ = nullptr;
  Stats stats_;
  DeadlineHeap deadlines_;
  uint64_t now_ms_ = 0;
  bool now_cached_ = false;                    // now_ms_ holds this poll round's time
  bool expiries_capped_ = false;               // the last round left due deadlines
  uint64_t armed_for_ = DeadlineHeap::kNever;  // the backend's timer fires by then
  uint64_t shutdown_at_ms_ = 0;
  uint32_t awaiting_headers_ = 0;  // sessions with kAwaitingHeader
  ProxyParserPool parsers_;
  bool listening_ = false;
  bool accepting_ = false;
  bool shutting_down_ = false;
  bool draining_ = false;
  bool draining_reported_ = false;  // its kDraining record is written
  bool server_closed_emitted_ = false;
  bool in_poll_ = false;
  EngineObserver* observer_ = nullptr;

  Session* pending_head_ = nullptr;
  Session* pending_tail_ = nullptr;

  // Bytes moved or freed since the last burst was noted, the traffic
  // counters at the last tick, and the quiet ticks still to return memory on.
  uint64_t churn_since_return_ = 0;
  uint64_t bytes_at_last_tick_ = 0;
  uint32_t quiet_returns_left_ = 0;
};

}  // namespace acceptpool

#endif  // ACCEPTPOOL_CORE_ENGINE_H_
