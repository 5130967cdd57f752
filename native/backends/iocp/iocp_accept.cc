// The AcceptEx pool: accept contexts, posting (QueueAccepts keeps the
// target's count posted, QueueAccept posts one), the completion handler
// (ProcessAccept), handing accepted connections to the engine, and the
// FD_ACCEPT signal that says a client waits with nothing posted to take it.
// How many stay posted is the policy of accept_target.h.
#include <cstring>
#include <new>

#include "backends/iocp/iocp_internal.h"

namespace acceptpool {
namespace iocp {

AcceptContext* IocpBackend::TakeContext() {
  if (free_contexts_ == nullptr) {
    if (context_count_ >= AcceptTarget::kMax) return nullptr;
    std::unique_ptr<AcceptContext[]> chunk(new (std::nothrow) AcceptContext[kContextChunk]);
    if (!chunk) return nullptr;
    for (uint32_t i = 0; i < kContextChunk; ++i) {
      std::memset(&chunk[i], 0, sizeof(AcceptContext));
      chunk[i].op.kind = OpKind::kAccept;
      chunk[i].socket = INVALID_SOCKET;
      chunk[i].home = port_;
      chunk[i].next = free_contexts_;
      free_contexts_ = &chunk[i];
    }
    context_chunks_.push_back(std::move(chunk));
    context_count_ += kContextChunk;
  }
  AcceptContext* ctx = free_contexts_;
  free_contexts_ = ctx->next;
  ctx->next = nullptr;
  return ctx;
}

void IocpBackend::FreeContext(AcceptContext* ctx) {
  ctx->socket = INVALID_SOCKET;
  ctx->op.busy = false;
  ctx->next = free_contexts_;
  free_contexts_ = ctx;
}

AcceptContext* IocpBackend::PopWaiting() {
  AcceptContext* ctx = waiting_head_;
  if (ctx == nullptr) return nullptr;
  waiting_head_ = ctx->next;
  if (waiting_head_ == nullptr) waiting_tail_ = nullptr;
  --waiting_;
  return ctx;
}

void IocpBackend::PushWaiting(AcceptContext* ctx) {
  ctx->next = nullptr;
  if (waiting_tail_ != nullptr) {
    waiting_tail_->next = ctx;
  } else {
    waiting_head_ = ctx;
  }
  waiting_tail_ = ctx;
  ++waiting_;
}

// Takes over a listening socket (bound and listening; another engine's,
// through ListenBeside, when `signal` is false) and posts the first accepts.
// `signal`: watch FD_ACCEPT, a client waiting with nothing posted to take it.
Status IocpBackend::StartAccepting(UniqueSocket ls, const ListenOptions& options, bool signal,
                                   SocketAddress* bound) {
  sockaddr_storage ss;
  int len = sizeof(ss);
  if (getsockname(ls.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return WinStatus(WSAGetLastError(), "getsockname");
  }
  *bound = FromSockaddr(reinterpret_cast<sockaddr*>(&ss));
  int af = ss.ss_family == AF_INET6 ? AF_INET6 : AF_INET;
  Extensions& ext = ExtFor(af);
  DWORD err = LoadExtensions(ls.get(), &ext);
  if (err != 0) return WinStatus(err, "WSAIoctl");
  if (signal) {
    // A thread-pool wait turns the event into a completion packet.
    accept_event_ = CreateEventW(nullptr, FALSE, FALSE, nullptr);
    if (accept_event_ == nullptr) return WinStatus(GetLastError(), "CreateEvent");
    if (WSAEventSelect(ls.get(), accept_event_, FD_ACCEPT) != 0) {
      return WinStatus(WSAGetLastError(), "WSAEventSelect");
    }
    if (!RegisterWaitForSingleObject(&accept_wait_, accept_event_, &IocpBackend::OnAcceptEvent,
                                     this, INFINITE, WT_EXECUTEINWAITTHREAD)) {
      accept_wait_ = nullptr;
      return WinStatus(GetLastError(), "RegisterWaitForSingleObject");
    }
  }
  family_ = af;
  accept_target_.Start(options.max_sessions, tick_);
  listener_ = std::move(ls);
  accepting_ = true;
  QueueAccepts();
  if (pending_ == 0) return WinStatus(last_accept_error_, "AcceptEx");
  return Status::Ok();
}

// A completion on our port of an accept another engine posted on our
// listener goes on to that engine's port, untouched (its status is in the
// OVERLAPPED).
bool IocpBackend::Forward(IoOp* op, DWORD bytes) {
  if (op->kind != OpKind::kAccept) return false;
  HANDLE home = reinterpret_cast<AcceptContext*>(op)->home;
  if (home == port_) return false;
  PostQueuedCompletionStatus(home, bytes, kKeySocket, &op->ov);
  ++counters_[kAcceptsForwarded];
  return true;
}

void IocpBackend::CancelOwnAccepts() {
  for (auto& chunk : context_chunks_) {
    for (uint32_t i = 0; i < kContextChunk; ++i) {
      if (chunk[i].op.busy) CancelIoEx(reinterpret_cast<HANDLE>(listener_.get()), &chunk[i].op.ov);
    }
  }
}

// Keeps the target's accepts posted.
void IocpBackend::QueueAccepts() {
  if (!listener_.valid() || stopped_ || !accepting_) return;
  while (accept_target_.WantsMore(pending_ + waiting_)) {
    AcceptContext* ctx = TakeContext();
    if (ctx == nullptr) return;
    PostResult r = QueueAccept(ctx);
    if (r == PostResult::kPosted) continue;
    FreeContext(ctx);
    if (r == PostResult::kStop) return;
  }
}

IocpBackend::PostResult IocpBackend::QueueAccept(AcceptContext* ctx) {
  bool reused = false;
  bool skip = false;
  SOCKET sock = INVALID_SOCKET;
  if (!spares_.empty()) {
    sock = spares_.back().socket;
    reused = spares_.back().reused;
    skip = spares_.back().skip;
    spares_.pop_back();
  } else {
    skip = SkipForAccepted();
    sock = NewSocket(family_, skip);
    if (sock == INVALID_SOCKET) {
      last_accept_error_ = WSAGetLastError();
      events_->OnAcceptError(WinStatus(last_accept_error_, "socket"), 0);
      accept_target_.OnNoSocket();
      return PostResult::kStop;
    }
    ++counters_[kFreshSockets];
  }
  std::memset(&ctx->op.ov, 0, sizeof(ctx->op.ov));
  ctx->op.busy = true;
  ctx->op.stalled = false;
  ctx->socket = sock;
  ctx->reused = reused;
  ctx->skip = skip;
  DWORD bytes = 0;
  // No initial receive buffer: AcceptEx then completes on the handshake,
  // so a client that connects and stays silent holds no pending accept.
  if (!ExtFor(family_).accept_ex(listener_.get(), sock, ctx->addresses, 0, kAddressBytes,
                                 kAddressBytes, &bytes, &ctx->op.ov)) {
    DWORD err = WSAGetLastError();
    if (err != ERROR_IO_PENDING) {
      ctx->op.busy = false;
      CloseCounted(sock);
      last_accept_error_ = err;
      Status st = WinStatus(err, "AcceptEx");
      if (reused) {
        ++counters_[kReuseFailed];
        reuse_.NoteFailed();
      } else {
        ++counters_[kAcceptsFailed];
        events_->OnAcceptError(st, 0);
      }
      return accept_target_.OnPostFailed(st.sys, reused) == AcceptTarget::Failure::kRetry
                 ? PostResult::kRetry
                 : PostResult::kStop;
    }
  }
  ++pending_;
  ++outstanding_;
  ++counters_[kAcceptsPosted];
  return PostResult::kPosted;
}

void IocpBackend::ProcessAccept(AcceptContext* ctx, uint32_t ntstatus) {
  --pending_;
  ctx->op.busy = false;
  bool stalled = ctx->op.stalled;
  if (ntstatus != 0 || stopped_ || !listener_.valid()) {
    uint32_t err = WinErrorFromNtStatus(ntstatus);
    if (ntstatus == 0 || stopped_ || err == kErrorCancelled) {
      ++counters_[kAcceptsCancelled];
      if (stalled) {
        ++counters_[kReuseStalled];
        reuse_.NoteFailed();
      }
    } else if (ctx->reused) {
      ++counters_[kReuseFailed];
      reuse_.NoteFailed();
    } else {
      // That client went away before we took it (reset, abort).
      ++counters_[kAcceptsFailed];
      events_->OnAcceptError(WinStatus(err, "AcceptEx"), 0);
    }
    CloseCounted(ctx->socket);
    FreeContext(ctx);
    return;
  }
  // Gives the socket the listener's properties (getpeername, shutdown).
  SOCKET listener = listener_.get();
  setsockopt(ctx->socket, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT,
             reinterpret_cast<const char*>(&listener), sizeof(listener));
  if (ctx->reused) ++counters_[kReusedAccepts];
  ++accepts_this_round_;
  PushWaiting(ctx);
}

// Hands accepted connections to the engine, as many as it has room for.
void IocpBackend::DeliverAccepts() {
  if (waiting_ == 0 || !accepting_) return;
  uint32_t budget = events_->AcceptBudget();
  while (budget > 0 && waiting_ > 0) {
    AcceptContext* ctx = PopWaiting();
    sockaddr* local = nullptr;
    sockaddr* remote = nullptr;
    int local_len = 0;
    int remote_len = 0;
    ExtFor(family_).get_addresses(ctx->addresses, 0, kAddressBytes, kAddressBytes, &local,
                                  &local_len, &remote, &remote_len);
    SocketAddress peer = FromSockaddr(remote);
    SOCKET sock = ctx->socket;
    attaching_reused_ = ctx->reused;
    attaching_skip_ = ctx->skip;
    FreeContext(ctx);
    --budget;
    events_->OnAccepted(static_cast<SocketHandle>(sock), peer);
    attaching_reused_ = false;
  }
}

void CALLBACK IocpBackend::OnAcceptEvent(PVOID self, BOOLEAN) {
  auto* backend = static_cast<IocpBackend*>(self);
  PostQueuedCompletionStatus(backend->port_, 0, kKeyAcceptSignal, nullptr);
}

void IocpBackend::ProcessAcceptSignal() {
  if (!listener_.valid()) return;
  WSANETWORKEVENTS ne;
  if (WSAEnumNetworkEvents(listener_.get(), nullptr, &ne) != 0) return;
  if ((ne.lNetworkEvents & FD_ACCEPT) == 0) return;
  ++counters_[kAcceptSignals];
  if (accept_target_.OnClientWaiting(accepting_, pending_, tick_) ==
      AcceptTarget::Waiting::kSuspectPosted) {
    // Recycled sockets are the suspects (Wine never completes AcceptEx
    // on them): cancel those, fresh sockets take their place.
    CancelReusedAccepts();
  }
  // Re-arm: FD_ACCEPT is recorded again only after this call.
  WSAEventSelect(listener_.get(), accept_event_, FD_ACCEPT);
  QueueAccepts();
}

void IocpBackend::CancelReusedAccepts() {
  for (auto& chunk : context_chunks_) {
    for (uint32_t i = 0; i < kContextChunk; ++i) {
      AcceptContext& ctx = chunk[i];
      if (ctx.op.busy && ctx.reused && !ctx.op.stalled) {
        ctx.op.stalled = true;
        CancelIoEx(reinterpret_cast<HANDLE>(listener_.get()), &ctx.op.ov);
      }
    }
  }
}

// The target shrank: fewer accepts stay posted, cancel the excess.
void IocpBackend::CancelExcessAccepts() {
  uint32_t target = accept_target_.target();
  uint32_t excess = pending_ > target ? pending_ - target : 0;
  for (auto& chunk : context_chunks_) {
    for (uint32_t i = 0; i < kContextChunk && excess > 0; ++i) {
      AcceptContext& ctx = chunk[i];
      if (ctx.op.busy && !ctx.op.stalled) {
        CancelIoEx(reinterpret_cast<HANDLE>(listener_.get()), &ctx.op.ov);
        --excess;
      }
    }
  }
  // Spare recycled sockets beyond the target are not needed either.
  while (spares_.size() > target) {
    CloseCounted(spares_.back().socket);
    spares_.pop_back();
  }
}

void IocpBackend::StopAcceptSignal() {
  if (accept_wait_ != nullptr) {
    // Waits for a running callback to finish.
    UnregisterWaitEx(accept_wait_, INVALID_HANDLE_VALUE);
    accept_wait_ = nullptr;
  }
  if (accept_event_ != nullptr) {
    CloseHandle(accept_event_);
    accept_event_ = nullptr;
  }
}

}  // namespace iocp
}  // namespace acceptpool
