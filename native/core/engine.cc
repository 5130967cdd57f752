#include "core/engine.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <cstring>

namespace acceptpool {

namespace {

// A read needs at least this much arena; below it the batch counts as full
// and the backend reads in the next round.
constexpr size_t kMinReadRoom = 4096;
// Arena bytes one kSession record takes (address plus alignment).
constexpr size_t kSessionRecordBytes = sizeof(SocketAddress) + 8;
// A tick that moved less than this counts as quiet.
constexpr uint64_t kQuietBytesPerTick = 64 * 1024;
// Memory goes back to the OS after this much was moved or freed (each return
// walks the allocator's heaps: not for every trickle), on this many quiet
// ticks.
constexpr uint64_t kReturnAfterBytes = 1024 * 1024;
constexpr uint32_t kQuietTicksReturning = 10;

uint64_t SteadyClockMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// A 32-bit stamp taken at most 2^32 ms before `now`, as a full time.
uint64_t Expand(uint32_t stamp, uint64_t now) {
  return now - static_cast<uint32_t>(static_cast<uint32_t>(now) - stamp);
}

// The error word of a session's close (or failed connect).
double CloseErrorWord(const Session& s) {
  return EncodeErrorWord(RecordError::System(static_cast<SysError>(s.close_error), s.close_raw));
}

}  // namespace

Engine::Engine(const EngineConfig& config, std::unique_ptr<Backend> backend)
    : config_(config), backend_(std::move(backend)), policy_(config.pool) {
  config_.pool = policy_.config();
}

Engine::~Engine() {
  // Close what is still open while the table exists, then drop the backend
  // before the table it points into.
  if (table_) {
    table_->ForEachLive([this](Session& s) {
      s.queue.Clear(blocks_);
      if (s.socket != kNoSocket) backend_->DiscardSocket(s.socket);
      s.socket = kNoSocket;
    });
  }
  backend_.reset();
  table_.reset();
}

Status Engine::Init() {
  table_ = std::make_unique<SessionTable>(policy_.config().chunk, backend_->SessionExtBytes(),
                                          policy_.config().slot_limit, config_.ids);
  return backend_->Init(this, table_.get());
}

// The deadline heap is sized with the table, so scheduling never allocates.
bool Engine::GrowTable() {
  if (!table_->Grow()) return false;
  if (deadlines_.Resize(table_->slots())) return true;
  table_->ShrinkTop();
  return false;
}

Status Engine::Listen(const SocketAddress& address, SocketAddress* bound) {
  return Listen(address, config_.listen, bound);
}

Status Engine::Listen(const SocketAddress& address, const ListenOptions& options,
                      SocketAddress* bound) {
  return StartListening(
      options, [&](const ListenOptions& full) { return backend_->Listen(address, full, bound); });
}

Status Engine::ListenPath(const char* path, const ListenOptions& options, SocketAddress* bound) {
  return StartListening(
      options, [&](const ListenOptions& full) { return backend_->ListenPath(path, full, bound); });
}

Status Engine::ListenOn(SocketHandle listener, const ListenOptions& options, SocketAddress* bound) {
  return StartListening(options, [&](const ListenOptions& full) {
    return backend_->ListenOn(listener, full, bound);
  });
}

template <typename ListenFn>
Status Engine::StartListening(const ListenOptions& options, ListenFn&& listen) {
  if (listening_ || shutting_down_ || draining_) return Status::Of(Code::kInvalid);
  if (!EnsureInitialPool()) return Status::Of(Code::kNoMemory);
  ListenOptions full = options;
  full.no_delay = config_.no_delay;
  full.max_sessions = policy_.config().max_sessions;
  Status st = listen(full);
  if (!st.ok()) return st;
  listening_ = true;
  accepting_ = true;
  return st;
}

void Engine::CancelListen() {
  if (!listening_) return;
  backend_->StopListening();
  listening_ = false;
  accepting_ = false;
}

Status Engine::ListenBeside(Engine& first, const ListenOptions& options, SocketAddress* bound) {
  if (!first.listening_) return Status::Of(Code::kInvalid);
  return StartListening(options, [&](const ListenOptions& full) {
    return backend_->ListenBeside(*first.backend_, full, bound);
  });
}

Status Engine::Poll(int timeout_ms) {
  if (HasPending() || expiries_capped_) {
    timeout_ms = 0;
  } else if (deadlines_.size() > 0) {
    // Wait no longer than the earliest deadline (rounded up: never early).
    uint64_t next = deadlines_.Next();
    uint64_t now = Now();
    uint64_t wait = next > now ? next - now : 0;
    if (timeout_ms < 0 || wait < static_cast<uint64_t>(timeout_ms)) {
      timeout_ms = static_cast<int>(std::min<uint64_t>(wait, std::numeric_limits<int>::max()));
    }
  }
  in_poll_ = true;
  now_cached_ = false;
  Status st = backend_->PollOnce(timeout_ms);
  RunDeadlines();
  EmitPending();
  in_poll_ = false;
  now_cached_ = false;
  return st;
}

bool Engine::MoreWork() const {
  if (HasPending() || expiries_capped_ || backend_->PollSaturated()) return true;
  // A batch that ran out of room left readable sockets unread.
  return batch_ != nullptr && (!batch_->HasRecordRoom(2) || batch_->ReadRoom() < kMinReadRoom);
}

// The initial pool exists before the first client arrives (or connects).
bool Engine::EnsureInitialPool() {
  while (table_->capacity() < policy_.config().initial) {
    if (!GrowTable()) return false;
  }
  return true;
}

// ---- connecting ----

Status Engine::Connect(const SocketAddress& remote, const SocketAddress* local, uint32_t token,
                       SessionId* id) {
  if (shutting_down_) return Status::Of(Code::kClosed);
  if (!EnsureInitialPool()) return Status::Of(Code::kNoMemory);
  GrowIfNeeded();
  if (AtLimit()) return Status::Of(Code::kPoolFull);
  Session* s = table_->Acquire();
  if (s == nullptr) return Status::Of(Code::kPoolFull);
  s->state = SessionState::kConnecting;
  s->token = token;
  Status st = backend_->Connect(*s, remote, local, config_.no_delay);
  if (!st.ok()) {
    // Nothing started and nobody was told of this id: hand the slot back.
    ++stats_.connect_errors;
    s->socket = kNoSocket;
    s->state = SessionState::kReleasing;
    s->set(kBackendReleased);
    MaybeRelease(*s);
    return st;
  }
  ++stats_.connects;
  uint64_t in_use = table_->in_use();
  if (in_use > stats_.peak_in_use) stats_.peak_in_use = in_use;
  *id = s->id();
  return Status::Ok();
}

bool Engine::AbortConnect(uint32_t token) {
  // A scan, but only on a connect timeout, which is rare next to the I/O.
  Session* found = nullptr;
  table_->ForEachLive([&](Session& s) {
    if (found == nullptr && s.state == SessionState::kConnecting && s.token == token) found = &s;
  });
  if (found == nullptr) return false;
  ++stats_.connect_errors;
  CloseSession(*found, CloseReason::kTimeout, Status::System(SysError::kTimedOut, 0, "connect"),
               true);
  return true;
}

bool Engine::OnConnected(Session& s) {
  if (s.state != SessionState::kConnecting) return true;
  // kConnected must precede the session's first data record, so it is
  // written now or not at all (the backend reports it again).
  if (batch_ == nullptr || !batch_->HasRecordRoom(2)) return false;
  s.state = SessionState::kOpen;
  batch_->Add(EventType::kConnected, s.id(), s.token);
  if (s.has(kPaused)) UpdateReading(s);
  if (config_.idle_timeout_ms > 0) {
    s.active_ms = static_cast<uint32_t>(Now());
    Reschedule(s);
  }
  return true;
}

// ---- accepting ----

bool Engine::AtLimit() const { return policy_.AtLimit(table_->capacity(), table_->free_slots()); }

void Engine::GrowIfNeeded() {
  if (policy_.ChunksToGrow(table_->capacity(), table_->free_slots()) == 0) return;
  if (GrowTable()) {
    ++stats_.growths;
    policy_.NotePressure();
  }
}

void Engine::UpdateAccepting() {
  // With no slot free and none to add (every slot up to the limit retired),
  // accepting waits for a release instead of waking for nothing.
  bool room = table_->free_slots() > 0 || table_->CanGrow();
  bool want = listening_ && !shutting_down_ && room && !AtLimit();
  if (want == accepting_) return;
  accepting_ = want;
  if (!want) ++stats_.accept_pauses;
  backend_->SetAccepting(want);
}

uint32_t Engine::AcceptBudget() {
  if (!accepting_ || batch_ == nullptr) return 0;
  GrowIfNeeded();
  if (AtLimit() || table_->free_slots() == 0) {
    UpdateAccepting();
    return 0;
  }
  uint32_t below_max = policy_.config().max_sessions - table_->in_use();
  size_t budget = std::min<size_t>({table_->free_slots(), below_max, config_.accept_batch});
  // Every accept writes a kSession record; keep one record spare for data.
  size_t records = 0;
  while (records < budget && batch_->HasRecordRoom(records + 2)) ++records;
  budget = std::min(budget, records);
  budget = std::min(budget, batch_->ReadRoom() / kSessionRecordBytes);
  return static_cast<uint32_t>(budget);
}

void Engine::OnAccepted(SocketHandle socket, const SocketAddress& peer) {
  if (config_.proxy_protocol && !Trusted(peer)) {
    // Only a trusted balancer may name another client; anyone else could
    // spoof their address with a header, so they are not served at all.
    backend_->DiscardSocket(socket);
    CountReject(ProxyReject::kUntrusted);
    AddRejectRecord(peer, ProxyReject::kUntrusted, ProxyError::kNone);
    return;
  }
  // AcceptBudget() promised a slot and room for the session's record; if a
  // backend took more than it was given, refuse the socket rather than hold
  // a session JS would never hear of.
  bool announced_later = config_.proxy_protocol;  // once its header is in
  Session* s = announced_later || (batch_ != nullptr && batch_->CanAddCopy(sizeof(peer)))
                   ? table_->Acquire()
                   : nullptr;
  if (s == nullptr) {
    backend_->DiscardSocket(socket);
    ++stats_.accept_errors;
    return;
  }
  s->socket = socket;
  Status st = backend_->Attach(*s, config_.no_delay);
  if (!st.ok()) {
    // JS never heard of it, so no close event: release as soon as the
    // backend lets go.
    ++stats_.accept_errors;
    s->state = SessionState::kReleasing;
    backend_->Close(*s, true);
    return;
  }
  ++stats_.accepts;
  uint64_t in_use = table_->in_use();
  if (in_use > stats_.peak_in_use) stats_.peak_in_use = in_use;
  if (config_.proxy_protocol) {
    // Announced once its header is in (OnHeaderBytes), timed from now;
    // header bytes never restart that clock (a slowloris header times out).
    s->set(kAwaitingHeader);
    s->token = 0;
    ++awaiting_headers_;
    s->active_ms = static_cast<uint32_t>(Now());
    Reschedule(*s);
    return;
  }
  if (config_.idle_timeout_ms > 0) {
    s->active_ms = static_cast<uint32_t>(Now());
    Reschedule(*s);
  }
  batch_->AddCopy(EventType::kSession, s->id(), &peer, sizeof(peer));
}

void Engine::OnAcceptError(const Status& status, uint32_t shed) {
  ++stats_.accept_errors;
  if (IsAbortedAccept(status.sys)) ++stats_.accept_aborts;
  if (status.sys == SysError::kMFile || status.sys == SysError::kNFile) ++stats_.emfile;
  stats_.shed += shed;
}

// ---- receiving ----

bool Engine::ReadSpace(char** data, size_t* size) {
  // While headers are awaited, a read may complete one: its session's
  // record (and the record of the data after it) must fit beside the bytes.
  size_t reserve = awaiting_headers_ > 0 ? kProxyRecordMaxBytes + 8 : 0;
  if (batch_ == nullptr || !batch_->HasRecordRoom(reserve > 0 ? 2 : 1)) return false;
  size_t room = batch_->ReadRoom();
  if (room < kMinReadRoom + reserve) return false;
  *data = batch_->ReadSpace();
  *size = std::min(room - reserve, config_.read_chunk);
  return true;
}

void Engine::OnReceived(Session& s, size_t size) {
  if (s.state != SessionState::kOpen) {
    // A close was requested: the bytes stay unrecorded in the read space,
    // where the next read overwrites them. Not activity either, so a closing
    // session whose peer sends but never reads still times out.
    stats_.bytes_discarded += size;
    return;
  }
  if (s.has(kAwaitingHeader)) {
    stats_.bytes_in += size;
    OnHeaderBytes(s, size);
    return;
  }
  batch_->AddData(s.id(), size);
  stats_.bytes_in += size;
  NoteActive(s);
}

void Engine::OnPeerEnd(Session& s) {
  if (s.state == SessionState::kReleasing || s.has(kReadEof)) return;
  if (s.has(kAwaitingHeader)) {
    RejectHeader(s, ProxyReject::kAborted, ProxyError::kNone);
    return;
  }
  s.set(kReadEof);
  UpdateReading(s);
  if (s.state == SessionState::kLingering) {
    // The peer answered our FIN: nothing is left unread, so the close is clean.
    ++stats_.linger_ends;
    CloseSession(s, static_cast<CloseReason>(s.close_reason), Status::Ok(), false);
    return;
  }
  // After a close was requested JS hears no 'end'; the close follows once
  // the queue is flushed (AfterSend).
  if (s.state == SessionState::kClosing) return;
  s.set(kEndPending);
  QueuePending(s);
  if (s.has(kWriteShut)) {
    // We half-closed first (end()) and the peer has now finished too: JS
    // hears 'end', then the close, 'local' because we ended first.
    CloseSession(s, CloseReason::kLocal, Status::Ok(), false);
  }
}

// ---- sending ----

size_t Engine::BufferedBytes(const Session& s) const {
  size_t queued = s.queue.bytes();
  return observer_ != nullptr ? observer_->Buffered(s.id(), queued) : queued;
}

void Engine::NoteLeft(SessionId id, size_t bytes) {
  if (bytes > 0 && observer_ != nullptr) observer_->OnSendLeft(id, bytes);
}

void Engine::NoteSent(Session& s, size_t bytes, bool from_queue) {
  if (from_queue) s.queue.Consume(blocks_, bytes);
  stats_.bytes_out += bytes;
  s.bytes_written += bytes;
  NoteActive(s);
  NoteLeft(s.id(), bytes);
}

void Engine::CheckDrain(Session& s) {
  if (!s.has(kAboveHighWater) || s.state != SessionState::kOpen) return;
  if (BufferedBytes(s) > config_.high_water_mark) return;
  s.clear(kAboveHighWater);
  s.set(kDrainPending);
  QueuePending(s);
}

SendResult Engine::Send(SessionId id, const char* data, size_t size) {
  Session* s = table_->Lookup(id);
  // A session whose header is awaited is not JS's yet: its id cannot have
  // been handed out.
  if (s == nullptr || s->has(kAwaitingHeader)) {
    ++stats_.stale_commands;
    NoteLeft(id, size);
    return SendResult::kStale;
  }
  if (s->state != SessionState::kOpen || s->has(kEndAfterFlush) || s->has(kWriteShut)) {
    NoteLeft(id, size);
    return SendResult::kClosed;
  }
  size_t done = 0;
  bool was_empty = s->queue.empty();
  if (was_empty && size > 0) {
    Status st = backend_->SendDirect(*s, data, size, &done);
    if (done > 0) NoteSent(*s, done, false);
    if (!st.ok()) {
      NoteLeft(id, size - done);
      OnSessionError(*s, st);
      return SendResult::kFailed;
    }
  }
  size_t rest = size - done;
  if (rest > 0) {
    if (s->queue.bytes() + rest > config_.max_queued_bytes) {
      NoteLeft(id, rest);
      ++stats_.overflows;
      CloseSession(*s, CloseReason::kOverflow, Status::Ok(), true);
      return SendResult::kOverflow;
    }
    if (!s->queue.Append(blocks_, data + done, rest)) {
      NoteLeft(id, rest);
      CloseSession(*s, CloseReason::kError, Status::System(SysError::kNoMem, 0, "send"), true);
      return SendResult::kOverflow;
    }
    stats_.send_blocks = blocks_.allocated();
    if (was_empty) {
      FlushSession(*s);
      if (s->state != SessionState::kOpen) return SendResult::kFailed;
    }
  }
  if (BufferedBytes(*s) > config_.high_water_mark) {
    s->set(kAboveHighWater);
    return SendResult::kBackpressure;
  }
  return SendResult::kOk;
}

void Engine::RequestDrain(SessionId id) {
  Session* s = table_->Lookup(id);
  if (s == nullptr || s->state != SessionState::kOpen) return;
  s->set(kAboveHighWater);
  CheckDrain(*s);
}

uint32_t Engine::Broadcast(const char* data, size_t size, const SessionId* ids, size_t count) {
  uint32_t reached = 0;
  auto send_one = [&](SessionId id) {
    SendResult r = Send(id, data, size);
    if (r == SendResult::kOk || r == SendResult::kBackpressure) ++reached;
  };
  if (ids != nullptr) {
    for (size_t i = 0; i < count; ++i) send_one(ids[i]);
  } else {
    table_->ForEachLive([&](Session& s) {
      if (s.state == SessionState::kOpen && !s.has(kAwaitingHeader)) send_one(s.id());
    });
  }
  return reached;
}

void Engine::ListOpen(std::vector<SessionId>* ids) {
  table_->ForEachLive([&](Session& s) {
    if (s.state == SessionState::kOpen && !s.has(kAwaitingHeader)) ids->push_back(s.id());
  });
}

void Engine::FlushSession(Session& s) {
  if (!s.queue.empty()) {
    size_t sent = 0;
    Status st = backend_->Flush(s, &sent);
    if (sent > 0) NoteSent(s, sent, true);
    if (!st.ok()) {
      OnSessionError(s, st);
      return;
    }
  }
  AfterSend(s);
}

void Engine::AfterSend(Session& s) {
  if (s.queue.empty()) {
    if (s.state == SessionState::kClosing) {
      CloseFlushed(s);
      return;
    }
    if (s.state == SessionState::kOpen && s.has(kEndAfterFlush) && !s.has(kWriteShut)) {
      if (!SendFin(s)) return;
      if (s.has(kReadEof)) {
        // The peer ended first and we have now answered with our FIN.
        CloseSession(s, CloseReason::kRemote, Status::Ok(), false);
        return;
      }
    }
  }
  CheckDrain(s);
}

// Shuts the write side down once. False if that failed: the session is then
// closed with the error.
bool Engine::SendFin(Session& s) {
  if (s.has(kWriteShut)) return true;
  s.clear(kEndAfterFlush);
  s.set(kWriteShut);
  Status st = backend_->ShutdownWrite(s);
  if (st.ok()) return true;
  OnSessionError(s, st);
  return false;
}

// A closing session has sent everything: FIN, then linger until the peer's
// FIN (OnPeerEnd) or the deadline (OnTick). Closing now instead, with the
// peer still sending, would reset the connection, and the reset can destroy
// what the peer has not read yet.
void Engine::CloseFlushed(Session& s) {
  if (s.has(kReadEof) || config_.close_linger_ms == 0) {
    // Nothing more can arrive, or lingering is off.
    CloseSession(s, static_cast<CloseReason>(s.close_reason), Status::Ok(), false);
    return;
  }
  if (!SendFin(s)) return;
  s.state = SessionState::kLingering;
  s.active_ms = static_cast<uint32_t>(Now());
  ++stats_.lingers;
  UpdateReading(s);
  Reschedule(s);
}

void Engine::OnSendProgress(Session& s, size_t sent) {
  if (sent > 0) NoteSent(s, sent, true);
  if (s.state == SessionState::kOpen || s.state == SessionState::kClosing) FlushSession(s);
}

// ---- closing ----

bool Engine::Close(SessionId id, CloseMode mode) {
  Session* s = table_->Lookup(id);
  if (s == nullptr || s->has(kAwaitingHeader)) {
    ++stats_.stale_commands;
    return false;
  }
  // A close requested by JS means no 'end' (engine.h), also one still
  // waiting in the pending list.
  if (mode != CloseMode::kEnd) s->clear(kEndPending);
  switch (mode) {
    case CloseMode::kAbort: CloseSession(*s, CloseReason::kLocal, Status::Ok(), true); break;
    case CloseMode::kGraceful:
      if (s->state == SessionState::kClosing || s->state == SessionState::kLingering) break;
      if (s->state == SessionState::kConnecting) {
        // Nothing to flush or linger for yet.
        CloseSession(*s, CloseReason::kLocal, Status::Ok(), true);
        break;
      }
      s->state = SessionState::kClosing;
      s->close_reason = static_cast<uint8_t>(CloseReason::kLocal);
      if (s->has(kPaused)) UpdateReading(*s);
      Reschedule(*s);
      AfterSend(*s);
      break;
    case CloseMode::kEnd:
      if (s->has(kWriteShut) || s->has(kEndAfterFlush) || s->state != SessionState::kOpen) break;
      s->set(kEndAfterFlush);
      AfterSend(*s);
      break;
  }
  return true;
}

bool Engine::Control(SessionId id, SessionControl control, uint32_t a, uint32_t b) {
  Session* s = table_->Lookup(id);
  if (s == nullptr) {
    ++stats_.stale_commands;
    return false;
  }
  switch (control) {
    case SessionControl::kPause:
    case SessionControl::kResume:
      if (s->has(kPaused) == (control == SessionControl::kPause)) break;
      if (control == SessionControl::kPause) {
        s->set(kPaused);
      } else {
        s->clear(kPaused);
      }
      // A connect still in progress has no reads yet: OnConnected applies it.
      if (s->state != SessionState::kConnecting) UpdateReading(*s);
      break;
    case SessionControl::kTimeout:
      // Like net.Socket.setTimeout: the clock starts now. Without an idle
      // timeout nothing kept active_ms fresh: start it here too.
      s->timeout_ms = a;
      s->timeout_set_ms = static_cast<uint32_t>(Now());
      if (config_.idle_timeout_ms == 0) s->active_ms = s->timeout_set_ms;
      s->clear(kTimeoutFired);
      Reschedule(*s);
      break;
    // Like net.Socket's, these never fail a session: an option the OS
    // refuses (a socket being torn down) changes nothing.
    case SessionControl::kNoDelay:
      if (s->socket != kNoSocket) backend_->SetNoDelay(*s, a != 0);
      break;
    case SessionControl::kKeepAlive: {
      // Whole seconds, rounded up so a probe never comes early; Linux
      // takes at most 32767.
      uint32_t delay_s = b == 0 ? 0 : std::min<uint32_t>(32767, b / 1000 + (b % 1000 != 0 ? 1 : 0));
      if (s->socket != kNoSocket) backend_->SetKeepAlive(*s, a != 0, delay_s);
      break;
    }
  }
  return true;
}

bool Engine::Query(SessionId id, SessionInfo* out) {
  Session* s = table_->Lookup(id);
  if (s == nullptr) return false;
  s->set(kWantTotals);
  out->bytes_written = s->bytes_written;
  bool socket = s->socket != kNoSocket && s->state != SessionState::kConnecting;
  out->has_local = out->want_local && socket && backend_->LocalAddress(*s, &out->local).ok();
  out->has_options =
      out->want_options && socket && backend_->ReadSocketOptions(*s, &out->options).ok();
  return true;
}

void Engine::UpdateReading(Session& s) {
  bool paused = s.has(kPaused) && s.state == SessionState::kOpen;
  backend_->SetReading(s, !s.has(kReadEof) && !paused);
}

void Engine::OnSessionError(Session& s, const Status& status) {
  if (s.has(kAwaitingHeader)) {
    RejectHeader(s, ProxyReject::kAborted, ProxyError::kNone);
    return;
  }
  if (s.state == SessionState::kConnecting) ++stats_.connect_errors;
  CloseReason reason = CloseReason::kError;
  if (status.sys == SysError::kConnReset || status.sys == SysError::kPipe ||
      status.sys == SysError::kConnAborted) {
    reason = CloseReason::kReset;
  } else if (status.sys == SysError::kTimedOut) {
    reason = CloseReason::kTimeout;
  }
  // The connection is already broken: a plain close frees it (no reset
  // needed, and it saves the SO_LINGER call).
  CloseSession(s, reason, status, false);
}

void Engine::CloseSession(Session& s, CloseReason reason, const Status& error, bool abort) {
  if (s.state == SessionState::kReleasing || s.state == SessionState::kFree ||
      s.state == SessionState::kRetired) {
    return;
  }
  deadlines_.Cancel(s.slot);
  NoteLeft(s.id(), s.queue.bytes());
  s.queue.Clear(blocks_);
  if (s.state == SessionState::kConnecting) s.set(kClosedConnecting);
  s.state = SessionState::kReleasing;
  s.close_reason = static_cast<uint8_t>(reason);
  s.close_error = static_cast<uint8_t>(error.sys);
  s.close_raw = error.raw;
  if (reason == CloseReason::kTimeout) ++stats_.timeouts;
  s.clear(kDrainPending);
  s.set(kClosePending);
  // Queue the event before the backend lets go, so the slot cannot be
  // released (and reused) before JS hears of the close.
  QueuePending(s);
  backend_->Close(s, abort);
}

void Engine::OnReleased(Session& s) {
  s.set(kBackendReleased);
  MaybeRelease(s);
}

void Engine::MaybeRelease(Session& s) {
  if (s.state != SessionState::kReleasing || !s.has(kBackendReleased) || s.has(kInPendingList)) {
    return;
  }
  table_->Release(&s);
  UpdateAccepting();
  // A drain ends with its last session.
  if (draining_ && !shutting_down_ && table_->in_use() == 0) Shutdown();
  CheckServerClosed();
}

void Engine::Drain() {
  if (shutting_down_ || draining_) return;
  draining_ = true;
  ++stats_.drains;
  if (listening_) {
    backend_->StopListening();
    listening_ = false;
    accepting_ = false;
  }
  // JS hears that the listener is gone (kDraining) in the next round.
  NoteWorkOutsidePoll();
  if (table_->in_use() == 0) Shutdown();
}

bool Engine::ReportDraining() {
  if (!draining_ || draining_reported_) return true;
  if (batch_ == nullptr || !batch_->HasRecordRoom(1)) return false;
  batch_->Add(EventType::kDraining, 0);
  draining_reported_ = true;
  return true;
}

void Engine::Shutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  if (listening_) {
    backend_->StopListening();
    listening_ = false;
    accepting_ = false;
  }
  shutdown_at_ms_ = Now();
  // Sessions flush what is queued first (for up to shutdown_grace_ms);
  // the rest close at once.
  table_->ForEachLive([this](Session& s) {
    if (s.state == SessionState::kConnecting) {
      CloseSession(s, CloseReason::kShutdown, Status::Ok(), true);
      return;
    }
    if (s.has(kAwaitingHeader)) {
      // JS never heard of it: no event, just gone.
      EndHeaderWait(s);
      s.state = SessionState::kReleasing;
      backend_->Close(s, true);
      return;
    }
    if (s.state != SessionState::kOpen && s.state != SessionState::kClosing) return;
    // A drain's deadline: this one did not end by itself in time.
    if (draining_ && s.state == SessionState::kOpen) ++stats_.drain_closes;
    s.state = SessionState::kClosing;
    s.close_reason = static_cast<uint8_t>(CloseReason::kShutdown);
    if (s.has(kPaused)) UpdateReading(s);
    Reschedule(s);
    AfterSend(s);
  });
  NoteWorkOutsidePoll();
}

void Engine::CheckServerClosed() {
  if (!shutting_down_ || server_closed_emitted_ || table_->in_use() != 0) return;
  if (!backend_->Quiescent()) return;
  // kDraining first: JS hears the listener close before the server does.
  if (!ReportDraining()) return;
  if (batch_ == nullptr || !batch_->HasRecordRoom(1)) return;
  batch_->Add(EventType::kServerClosed, 0);
  server_closed_emitted_ = true;
}

// ---- pending events ----

void Engine::QueuePending(Session& s) {
  if (s.has(kInPendingList)) return;
  s.set(kInPendingList);
  s.next_pending = nullptr;
  bool was_empty = pending_head_ == nullptr;
  if (pending_tail_ != nullptr) {
    pending_tail_->next_pending = &s;
  } else {
    pending_head_ = &s;
  }
  pending_tail_ = &s;
  // Outside a poll round nothing would write these events.
  if (was_empty) NoteWorkOutsidePoll();
}

void Engine::NoteWorkOutsidePoll() {
  if (in_poll_) return;
  if (observer_ != nullptr) {
    observer_->OnWorkOutsidePoll();
  } else {
    backend_->Wake();
  }
}

void Engine::EmitPending() {
  if (batch_ == nullptr) return;
  ReportDraining();
  // Up to five records per session, plus kServerClosed.
  while (pending_head_ != nullptr && batch_->HasRecordRoom(6)) {
    Session& s = *pending_head_;
    pending_head_ = s.next_pending;
    if (pending_head_ == nullptr) pending_tail_ = nullptr;
    s.next_pending = nullptr;
    s.clear(kInPendingList);
    if (s.has(kRejectPending)) {
      DropRejected(s);
      continue;
    }
    SessionId id = s.id();
    if (s.has(kTimeoutPending)) {
      s.clear(kTimeoutPending);
      if (s.state == SessionState::kOpen) batch_->Add(EventType::kTimeout, id);
    }
    if (s.has(kDrainPending)) {
      s.clear(kDrainPending);
      if (s.state == SessionState::kOpen) batch_->Add(EventType::kDrain, id);
    }
    if (s.has(kEndPending)) {
      s.clear(kEndPending);
      batch_->Add(EventType::kEnd, id);
    }
    if (s.has(kClosePending)) {
      s.clear(kClosePending);
      if (s.has(kClosedConnecting)) {
        // JS knows this session only by its connect token.
        batch_->Add(EventType::kConnectFailed, id, s.token, CloseErrorWord(s));
      } else {
        if (s.has(kWantTotals))
          batch_->Add(EventType::kTotals, id, static_cast<double>(s.bytes_written));
        batch_->Add(EventType::kClose, id, s.close_reason, CloseErrorWord(s));
      }
      MaybeRelease(s);
    }
  }
  CheckServerClosed();
}

// ---- deadlines ----

uint64_t Engine::Now() {
  // One clock read per poll round: the round's events all happen "now".
  if (now_cached_) return now_ms_;
  now_ms_ = config_.clock_ms != nullptr ? config_.clock_ms() : SteadyClockMs();
  now_cached_ = in_poll_;
  return now_ms_;
}

void Engine::NoteActive(Session& s) {
  if (s.timeout_ms == 0 && config_.idle_timeout_ms == 0) return;
  s.active_ms = static_cast<uint32_t>(Now());
  // Activity after a timeout arms it again, as net.Socket's does; otherwise
  // the entry in the heap is early at worst, and Expire moves it.
  if (s.has(kTimeoutFired)) {
    s.clear(kTimeoutFired);
    Reschedule(s);
  }
}

uint64_t Engine::DueOf(const Session& s, uint64_t now) const {
  uint64_t due = DeadlineHeap::kNever;
  uint64_t active = Expand(s.active_ms, now);
  uint32_t idle = config_.idle_timeout_ms;
  // Waiting for its PROXY header: active_ms is the accept.
  if (s.has(kAwaitingHeader))
    return s.state == SessionState::kOpen ? active + config_.proxy_timeout_ms : due;
  switch (s.state) {
    case SessionState::kOpen:
      if (idle > 0) due = active + idle;
      if (s.timeout_ms > 0 && !s.has(kTimeoutFired)) {
        uint64_t from = std::max(active, Expand(s.timeout_set_ms, now));
        due = std::min(due, from + s.timeout_ms);
      }
      break;
    case SessionState::kClosing:
      // A closing session that cannot flush (peer not reading) times out
      // too, or it would hold its slot for ever.
      if (idle > 0) due = active + idle;
      if (shutting_down_) due = std::min(due, shutdown_at_ms_ + config_.shutdown_grace_ms);
      break;
    case SessionState::kLingering: due = active + config_.close_linger_ms; break;
    default: break;
  }
  return due;
}

void Engine::Reschedule(Session& s) {
  uint64_t due = DueOf(s, Now());
  if (due == DeadlineHeap::kNever) {
    deadlines_.Cancel(s.slot);
    return;
  }
  deadlines_.Set(s.slot, due);
  ArmBy(due);
}

void Engine::ArmBy(uint64_t due) {
  if (due >= armed_for_) return;
  armed_for_ = due;
  uint64_t now = Now();
  uint64_t wait = due > now ? due - now : 0;
  backend_->ArmTimer(static_cast<int>(std::min<uint64_t>(wait, std::numeric_limits<int>::max())));
  // A poll already waiting (inline: Node's loop; threaded: the I/O thread
  // blocked before this command) hears of the new deadline through the
  // backend's timer.
}

void Engine::RunDeadlines() {
  expiries_capped_ = false;
  if (deadlines_.size() == 0 && armed_for_ == DeadlineHeap::kNever) return;
  uint64_t now = Now();
  // The backend's timer has fired (or will, harmlessly early, for a
  // deadline since cancelled): what is next must arm it again.
  if (armed_for_ <= now) armed_for_ = DeadlineHeap::kNever;
  uint32_t slot;
  for (uint32_t n = 0; deadlines_.Next() <= now; ++n) {
    if (n == config_.max_expiries_per_round) {
      expiries_capped_ = true;
      break;
    }
    if (!deadlines_.PopDue(now, &slot)) break;
    Session* s = table_->AtSlot(slot);
    if (s != nullptr) Expire(*s, now);
  }
  if (deadlines_.size() > 0) ArmBy(deadlines_.Next());
}

void Engine::Expire(Session& s, uint64_t now) {
  uint64_t due = DueOf(s, now);
  if (due == DeadlineHeap::kNever) return;  // nothing timed any more
  if (due > now) {
    // Activity since it was scheduled moved it later.
    deadlines_.Set(s.slot, due);
    return;
  }
  if (s.has(kAwaitingHeader)) {
    RejectHeader(s, ProxyReject::kTimeout, ProxyError::kNone);
    return;
  }
  uint64_t active = Expand(s.active_ms, now);
  uint32_t idle = config_.idle_timeout_ms;
  switch (s.state) {
    case SessionState::kLingering:
      // The peer kept sending (or stayed silent) past the deadline.
      ++stats_.linger_timeouts;
      CloseSession(s, static_cast<CloseReason>(s.close_reason), Status::Ok(), true);
      return;
    case SessionState::kClosing:
      if (shutting_down_ && now >= shutdown_at_ms_ + config_.shutdown_grace_ms) {
        CloseSession(s, CloseReason::kShutdown, Status::Ok(), true);
      } else {
        CloseSession(s, CloseReason::kTimeout, Status::Ok(), true);
      }
      return;
    case SessionState::kOpen:
      if (idle > 0 && now >= active + idle) {
        CloseSession(s, CloseReason::kTimeout, Status::Ok(), false);
        return;
      }
      // Its own timeout: tell JS, and wait for activity to arm it again.
      s.set(kTimeoutFired);
      s.set(kTimeoutPending);
      ++stats_.session_timeouts;
      QueuePending(s);
      Reschedule(s);
      return;
    default: return;
  }
}

// ---- housekeeping ----

void Engine::OnTick() {
  if (policy_.TickShouldShrink(table_->capacity(), table_->free_slots()) && table_->ShrinkTop()) {
    ++stats_.shrinks;
  }
  parsers_.Trim();
  size_t freed = blocks_.TrimIdle();
  stats_.send_blocks = blocks_.allocated();
  if (observer_ != nullptr) freed += observer_->OnTick();
  ReturnMemoryWhenQuiet(freed);
}

// Memory follows load down to the OS: buffers shrink back after a burst
// (capacity.h), but the C allocator may keep what they freed, and likewise
// what JS frees when it collects the Buffers of a burst, which can come
// seconds after traffic stops. So for the first few quiet ticks after enough
// churn the backend hands free memory back; steady traffic is never quiet
// and never pays for it, and an idle server stops after those ticks.
void Engine::ReturnMemoryWhenQuiet(size_t freed) {
  uint64_t bytes = stats_.bytes_in + stats_.bytes_out;
  uint64_t moved = bytes - bytes_at_last_tick_;
  bytes_at_last_tick_ = bytes;
  churn_since_return_ += moved + freed;
  if (churn_since_return_ >= kReturnAfterBytes) {
    churn_since_return_ = 0;
    quiet_returns_left_ = kQuietTicksReturning;
  }
  if (moved >= kQuietBytesPerTick || quiet_returns_left_ == 0) return;
  --quiet_returns_left_;
  backend_->ReturnFreedMemory();
}

// ---- PROXY protocol ----

bool Engine::Trusted(const SocketAddress& peer) const {
  for (const CidrRange& range : config_.proxy_trusted) {
    if (CidrContains(range, peer)) return true;
  }
  return false;
}

// Bytes of a session whose header is awaited, in the batch's read space.
// Parsed where they landed; only a header split across reads is copied into
// a held parser until its next bytes come.
void Engine::OnHeaderBytes(Session& s, size_t size) {
  ProxyParser* parser = s.token != 0 ? &parsers_.Get(s.token) : &parsers_.scratch();
  if (s.token == 0) parser->Reset();
  size_t used = 0;
  ProxyParse result = parser->Feed(batch_->ReadSpace(), size, &used);
  if (result == ProxyParse::kError) {
    RejectHeader(s, ProxyReject::kMalformed, parser->error());
    return;
  }
  if (result == ProxyParse::kMore) {
    if (s.token == 0) {
      uint32_t handle = parsers_.Hold(*parser);
      if (handle == 0) {
        RejectHeader(s, ProxyReject::kBusy, ProxyError::kNone);
        return;
      }
      s.token = handle;
    }
    return;
  }
  AnnounceProxied(s, *parser, used, size);
}

// The header is in: the session record carries the client as its remote
// address (the connection's own peer for LOCAL and unspecified headers) and
// what the header said; the bytes after the header are the session's first
// data. ReadSpace() left room for both records beside the bytes read.
void Engine::AnnounceProxied(Session& s, const ProxyParser& parser, size_t used, size_t size) {
  const ProxyHeader& h = parser.header();
  bool relayed = h.command == ProxyCommand::kProxy &&
                 (h.family == ProxyFamily::kInet || h.family == ProxyFamily::kInet6);
  SocketAddress remote;
  if (relayed) {
    remote = h.source;
  } else {
    backend_->PeerAddress(s, &remote);
  }
  ProxyRecordHead head{};
  head.version = h.version;
  head.command = static_cast<uint8_t>(h.command);
  head.family = static_cast<uint8_t>(h.family);
  head.transport = static_cast<uint8_t>(h.transport);
  head.unix_bytes =
      h.family == ProxyFamily::kUnix ? static_cast<uint16_t>(2 * kProxyUnixPathBytes) : 0;
  head.tlv_bytes = h.tlv_length;
  if (relayed) {
    head.source = h.source;
    head.destination = h.destination;
  }
  size_t data_offset = batch_->Keep(size);
  size_t length = sizeof(remote) + sizeof(head) + head.unix_bytes + head.tlv_bytes;
  size_t offset = 0;
  char* out = batch_->Append(length, &offset);
  if (out == nullptr || !batch_->HasRecordRoom(2)) {
    // ReadSpace() promised the room; never announce half a session.
    RejectHeader(s, ProxyReject::kBusy, ProxyError::kNone);
    return;
  }
  EndHeaderWait(s);
  // The session's own timers start now (or none: the header wait's deadline
  // goes).
  s.active_ms = static_cast<uint32_t>(Now());
  Reschedule(s);
  std::memcpy(out, &remote, sizeof(remote));
  std::memcpy(out + sizeof(remote), &head, sizeof(head));
  char* rest = out + sizeof(remote) + sizeof(head);
  std::memcpy(rest, parser.bytes() + h.unix_offset, head.unix_bytes);
  std::memcpy(rest + head.unix_bytes, parser.bytes() + h.tlv_offset, head.tlv_bytes);
  batch_->Add(EventType::kSession, s.id(), static_cast<double>(offset),
              static_cast<double>(length));
  if (size > used) {
    batch_->Add(EventType::kData, s.id(), static_cast<double>(data_offset + used),
                static_cast<double>(size - used));
  }
  if (relayed) {
    ++stats_.proxy_headers;
  } else {
    ++stats_.proxy_local;
  }
}

void Engine::EndHeaderWait(Session& s) {
  if (!s.has(kAwaitingHeader)) return;
  s.clear(kAwaitingHeader);
  --awaiting_headers_;
  if (s.token != 0) parsers_.Release(s.token);
  s.token = 0;
}

void Engine::CountReject(ProxyReject reason) {
  // By ProxyReject value, in the order of ACCEPTPOOL_PROXY_REJECTS.
  static constexpr uint64_t Stats::*kCounters[] = {&Stats::proxy_untrusted, &Stats::proxy_malformed,
                                                   &Stats::proxy_timeouts, &Stats::proxy_aborted,
                                                   &Stats::proxy_busy};
  static_assert(sizeof(kCounters) / sizeof(kCounters[0]) ==
                    (0 ACCEPTPOOL_PROXY_REJECTS(ACCEPTPOOL_COUNT_ENTRY)),
                "a counter for every reject reason");
  ++(stats_.*kCounters[static_cast<size_t>(reason)]);
}

// Called from inside the backend's rounds (reads, errors, ticks), which must
// not see the session vanish under them: it stops being served at once
// (kReleasing), and is closed from the pending list (DropRejected).
void Engine::RejectHeader(Session& s, ProxyReject reason, ProxyError error) {
  CountReject(reason);
  EndHeaderWait(s);
  s.state = SessionState::kReleasing;
  s.close_reason = static_cast<uint8_t>(reason);
  s.close_error = static_cast<uint8_t>(error);
  s.set(kRejectPending);
  QueuePending(s);
}

void Engine::DropRejected(Session& s) {
  s.clear(kRejectPending);
  SocketAddress peer;
  backend_->PeerAddress(s, &peer);
  AddRejectRecord(peer, static_cast<ProxyReject>(s.close_reason),
                  static_cast<ProxyError>(s.close_error));
  // A reset: whatever the peer sent was not for us.
  backend_->Close(s, true);
}

void Engine::AddRejectRecord(const SocketAddress& peer, ProxyReject reason, ProxyError error) {
  if (batch_ == nullptr) return;
  char bytes[sizeof(SocketAddress) + sizeof(ProxyRejectInfo)] = {};
  ProxyRejectInfo info{};
  info.reason = static_cast<uint8_t>(reason);
  info.error = static_cast<uint8_t>(error);
  std::memcpy(bytes, &peer, sizeof(peer));
  std::memcpy(bytes + sizeof(peer), &info, sizeof(info));
  // Without room the refusal is still counted; only its report is lost.
  batch_->AddCopy(EventType::kProxyRejected, 0, bytes, sizeof(bytes));
}

bool Engine::SetGenerationForTesting(uint32_t slot, uint32_t generation) {
  return table_ != nullptr && table_->SetGenerationForTesting(slot, generation);
}

void Engine::OnWake() {
  if (observer_ != nullptr) observer_->OnWake();
}

int64_t Engine::BufferedAmount(SessionId id) {
  Session* s = table_->Lookup(id);
  if (s == nullptr) return -1;
  return static_cast<int64_t>(BufferedBytes(*s));
}

Stats Engine::SnapshotStats() const {
  Stats out = stats_;
  out.pool_size = table_->capacity();
  out.pool_free = table_->free_slots();
  out.in_use = table_->in_use();
  out.retired_slots = table_->retired_total();
  backend_->ReadCounters(out.backend, Stats::kBackendCounters);
  return out;
}

}  // namespace acceptpool
