// Reading: a zero-byte WSARecv per idle session (QueueRead) completes when
// bytes, a FIN or an error are there (ProcessRead); the bytes are then read
// with a non-blocking recv() into the engine's batch arena (ServeReads), so
// no buffer is pinned while a connection idles.
#include <algorithm>
#include <climits>

#include "backends/iocp/iocp_internal.h"

namespace acceptpool {
namespace iocp {

Status IocpBackend::QueueRead(Session& s) {
  SlotOps* o = Ops(s);
  if (o->recv.busy || (o->bits & (kReadStopped | kClosed)) != 0) return Status::Ok();
  Begin(s, &o->recv, OpKind::kRecv);
  ++counters_[kZeroByteReads];
  WSABUF buf{0, nullptr};
  DWORD flags = 0;
  DWORD got = 0;
  if (WSARecv(SocketOf(s), &buf, 1, &got, &flags, &o->recv.ov, nullptr) == 0) {
    Inline(o, &o->recv, 0);
    return Status::Ok();
  }
  DWORD err = WSAGetLastError();
  if (err == WSA_IO_PENDING) return Status::Ok();
  Undo(s, &o->recv);
  return WinStatus(err, "WSARecv");
}

void IocpBackend::ProcessRead(Session& s, uint32_t ntstatus) {
  if (ntstatus != 0) {
    events_->OnSessionError(s, NtStatus(ntstatus, "WSARecv"));
  } else {
    MarkReadReady(s);
  }
}

void IocpBackend::SetReading(Session& s, bool on) {
  SlotOps* o = Ops(s);
  if (!on) {
    o->bits |= kReadStopped;
    return;
  }
  o->bits &= static_cast<uint16_t>(~kReadStopped);
  if (!o->recv.busy && (o->bits & kReadReady) == 0) {
    Status st = QueueRead(s);
    if (!st.ok()) events_->OnSessionError(s, st);
  }
}

void IocpBackend::MarkReadReady(Session& s) {
  SlotOps* o = Ops(s);
  if ((o->bits & kReadReady) != 0) return;
  o->bits |= kReadReady;
  ready_.push_back(s.id());
}

// The session a ready tag names, if it is still one that reads.
Session* IocpBackend::Readable(SessionId tag) {
  Session* s = table_->LookupTaken(tag);
  if (s == nullptr) return nullptr;
  if (s->state != SessionState::kOpen && s->state != SessionState::kClosing &&
      s->state != SessionState::kLingering) {
    return nullptr;
  }
  return s;
}

// One read per ready session per round, into the engine's batch arena.
// Sessions that found no room go first next round, ahead of those that
// were read and may have more, so a batch that fills part-way never
// starves the sessions after it.
void IocpBackend::ServeReads() {
  if (ready_.empty()) return;
  serving_.swap(ready_);
  bool room = true;
  for (SessionId tag : serving_) {
    Session* s = Readable(tag);
    if (s == nullptr) continue;
    SlotOps* o = Ops(*s);
    if ((o->bits & kReadReady) == 0) continue;
    if ((o->bits & (kReadStopped | kClosed)) != 0) {
      o->bits &= static_cast<uint16_t>(~kReadReady);
      continue;
    }
    char* space = nullptr;
    size_t size = 0;
    if (!room || !events_->ReadSpace(&space, &size)) {
      room = false;
      ready_.push_back(tag);  // next round, in order
      continue;
    }
    int got = recv(SocketOf(*s), space, static_cast<int>(std::min<size_t>(size, INT_MAX)), 0);
    if (got > 0) {
      events_->OnReceived(*s, static_cast<size_t>(got));
      if (static_cast<size_t>(got) == size) {
        read_again_.push_back(tag);  // maybe more: read again next round
      } else {
        o->bits &= static_cast<uint16_t>(~kReadReady);
        Status st = QueueRead(*s);
        if (!st.ok()) events_->OnSessionError(*s, st);
      }
      continue;
    }
    o->bits &= static_cast<uint16_t>(~kReadReady);
    if (got == 0) {
      events_->OnPeerEnd(*s);
      continue;
    }
    DWORD err = WSAGetLastError();
    if (err == WSAEWOULDBLOCK) {
      Status st = QueueRead(*s);
      if (!st.ok()) events_->OnSessionError(*s, st);
    } else {
      events_->OnSessionError(*s, WinStatus(err, "recv"));
    }
  }
  serving_.clear();
  ready_.insert(ready_.end(), read_again_.begin(), read_again_.end());
  read_again_.clear();
}

}  // namespace iocp
}  // namespace acceptpool
