// Closing and recycling. A slot goes back to the engine only once every
// overlapped operation on it has come back, cancelled ones included
// (FinishIfDone). An accepted socket closed gracefully may be recycled:
// DisconnectEx(TF_REUSE_SOCKET) (QueueDisconnect), checked when it completes
// (ProcessDisconnect) and kept as a spare for AcceptEx; one that fails,
// stalls or stays connected is closed and a fresh socket takes its place.
// Whether to try is the policy of socket_reuse.h.
#include "backends/iocp/iocp_internal.h"

namespace acceptpool {
namespace iocp {

void IocpBackend::Close(Session& s, bool abort) {
  SlotOps* o = Ops(s);
  o->bits |= kClosed;
  if (s.socket == kNoSocket) {
    FinishIfDone(s);
    return;
  }
  SOCKET sock = SocketOf(s);
  bool reuse = !abort && !o->send.busy && (o->bits & kFromAccept) != 0 && ReuseAllowed();
  if (reuse) {
    // Recycle once every operation is back: cancel the idle zero-byte read.
    o->bits |= kReuseWanted;
    if (o->pending_ops > 0) CancelIoEx(reinterpret_cast<HANDLE>(sock), nullptr);
    FinishIfDone(s);
    return;
  }
  if (abort || o->send.busy) {
    // A reset, and nothing more leaves from queue blocks that the engine
    // has already taken back.
    linger lg{1, 0};
    setsockopt(sock, SOL_SOCKET, SO_LINGER, reinterpret_cast<const char*>(&lg), sizeof(lg));
  }
  // Cancel what is in flight (Windows' closesocket would, Wine 8's does
  // not); the cancellations come back through the port before the slot is
  // released.
  if (o->pending_ops > 0) CancelIoEx(reinterpret_cast<HANDLE>(sock), nullptr);
  CloseCounted(sock);
  s.socket = kNoSocket;
  FinishIfDone(s);
}

bool IocpBackend::ReuseAllowed() const {
  return reuse_.Allowed() && !stopped_ && listener_.valid();
}

// The slot goes back only when nothing of it is in flight any more.
void IocpBackend::FinishIfDone(Session& s) {
  SlotOps* o = Ops(s);
  if (s.state != SessionState::kReleasing || o->pending_ops != 0 || (o->bits & kReleased) != 0) {
    return;
  }
  if ((o->bits & kReuseWanted) != 0) {
    o->bits &= static_cast<uint16_t>(~kReuseWanted);
    if (ReuseAllowed() && QueueDisconnect(s)) return;
  }
  if (s.socket != kNoSocket) {
    CloseCounted(SocketOf(s));
    s.socket = kNoSocket;
  }
  o->bits |= kReleased;
  events_->OnReleased(s);
}

bool IocpBackend::QueueDisconnect(Session& s) {
  SlotOps* o = Ops(s);
  ++counters_[kReuseAttempts];
  Begin(s, &o->aux, OpKind::kDisconnect);
  o->disconnect_tick = tick_;
  disconnecting_.push_back(s.id());
  if (ExtFor(family_).disconnect_ex(SocketOf(s), &o->aux.ov, TF_REUSE_SOCKET, 0)) {
    Inline(o, &o->aux, 0);
    return true;
  }
  if (WSAGetLastError() == WSA_IO_PENDING) return true;
  Undo(s, &o->aux);
  ++counters_[kReuseFailed];
  reuse_.NoteFailed();
  return false;
}

void IocpBackend::ProcessDisconnect(Session& s, uint32_t ntstatus, bool stalled) {
  SOCKET sock = SocketOf(s);
  bool ok = ntstatus == 0 && sock != INVALID_SOCKET;
  if (ok) ok = LooksUnconnected(sock);
  if (ok && ReuseAllowed() && spares_.size() < accept_target_.target()) {
    ++counters_[kReuseOk];
    reuse_.NoteWorked();
    spares_.push_back({sock, true, (Ops(s)->bits & kSkipMode) != 0});
  } else {
    if (ok) {
      ++counters_[kReuseOk];  // worked, but the pool needs no more sockets
    } else if (stalled) {
      ++counters_[kReuseStalled];
      reuse_.NoteFailed();
    } else {
      ++counters_[kReuseFailed];
      reuse_.NoteFailed();
    }
    if (sock != INVALID_SOCKET) CloseCounted(sock);
  }
  s.socket = kNoSocket;
  FinishIfDone(s);
}

// DisconnectEx can wait out TIME_WAIT; past a few seconds, give up on the
// socket (the completion then closes it).
void IocpBackend::CheckStalledDisconnects() {
  size_t keep = 0;
  for (SessionId tag : disconnecting_) {
    Session* s = table_->LookupTaken(tag);
    if (s == nullptr) continue;
    SlotOps* o = Ops(*s);
    if (!o->aux.busy || o->aux.kind != OpKind::kDisconnect) continue;
    uint32_t waited = tick_ - o->disconnect_tick;
    if (waited >= kDisconnectStallTicks && !o->aux.stalled) {
      o->aux.stalled = true;
      CancelIoEx(reinterpret_cast<HANDLE>(SocketOf(*s)), &o->aux.ov);
    } else if (waited > kDisconnectStallTicks && s->socket != kNoSocket) {
      // Not even the cancellation came back: close the socket too.
      CancelIoEx(reinterpret_cast<HANDLE>(SocketOf(*s)), nullptr);
      CloseCounted(SocketOf(*s));
      s->socket = kNoSocket;
    }
    disconnecting_[keep++] = tag;
  }
  disconnecting_.resize(keep);
}

}  // namespace iocp
}  // namespace acceptpool
