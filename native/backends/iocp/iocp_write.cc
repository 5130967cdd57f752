// Writing: a non-blocking send() when the queue is empty (SendDirect),
// otherwise one gathered overlapped WSASend from the head of the queue at a
// time (Flush), whose completion reports the bytes that left (ProcessWrite).
#include <algorithm>
#include <climits>

#include "backends/iocp/iocp_internal.h"

namespace acceptpool {
namespace iocp {

Status IocpBackend::SendDirect(Session& s, const char* data, size_t size, size_t* sent) {
  *sent = 0;
  if (Ops(s)->send.busy) return Status::Ok();
  int n = ::send(SocketOf(s), data, static_cast<int>(std::min<size_t>(size, INT_MAX)), 0);
  if (n >= 0) {
    *sent = static_cast<size_t>(n);
    return Status::Ok();
  }
  DWORD err = WSAGetLastError();
  if (err == WSAEWOULDBLOCK) return Status::Ok();
  NoteSendFailure(s, err);
  return WinStatus(err, "send");
}

Status IocpBackend::Flush(Session& s, size_t* sent) {
  *sent = 0;
  SlotOps* o = Ops(s);
  if (o->send.busy) return Status::Ok();  // its completion flushes again
  IoSlice slices[kMaxSlices];
  WSABUF bufs[kMaxSlices];
  int count = s.queue.Peek(slices, kMaxSlices);
  if (count == 0) return Status::Ok();
  for (int i = 0; i < count; ++i) {
    bufs[i].buf = const_cast<char*>(slices[i].data);
    bufs[i].len = static_cast<ULONG>(slices[i].size);
  }
  Begin(s, &o->send, OpKind::kSend);
  DWORD bytes = 0;
  // The queue's blocks stay put until OnSendProgress consumes them.
  if (WSASend(SocketOf(s), bufs, static_cast<DWORD>(count), &bytes, 0, &o->send.ov, nullptr) == 0) {
    Inline(o, &o->send, bytes);
    return Status::Ok();
  }
  DWORD err = WSAGetLastError();
  if (err == WSA_IO_PENDING) return Status::Ok();
  Undo(s, &o->send);
  return WinStatus(err, "WSASend");
}

void IocpBackend::ProcessWrite(Session& s, uint32_t ntstatus, DWORD bytes) {
  if (ntstatus == 0) {
    events_->OnSendProgress(s, bytes);
    return;
  }
  Status st = NtStatus(ntstatus, "WSASend");
  NoteSendFailure(s, static_cast<DWORD>(st.raw));
  events_->OnSessionError(s, st);
}

// On a recycled socket, WSAESHUTDOWN for a send we never shut down means
// the recycling did not really work.
void IocpBackend::NoteSendFailure(const Session& s, DWORD err) {
  if (err == WSAESHUTDOWN && (Ops(s)->bits & kReusedSocket) != 0) {
    ++counters_[kReuseFailed];
    reuse_.NoteFailed();
  }
}

Status IocpBackend::ShutdownWrite(Session& s) {
  if (shutdown(SocketOf(s), SD_SEND) != 0) {
    DWORD err = WSAGetLastError();
    if (err != WSAENOTCONN) return WinStatus(err, "shutdown");
  }
  return Status::Ok();
}

}  // namespace iocp
}  // namespace acceptpool
