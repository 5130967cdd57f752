// Connecting: ConnectEx on a socket bound first (Connect), its completion
// (ProcessConnect), and the report to the engine, which waits for batch room
// when there is none (RetryConnectReports).
#include "backends/iocp/iocp_internal.h"

namespace acceptpool {
namespace iocp {

Status IocpBackend::Connect(Session& s, const SocketAddress& remote, const SocketAddress* local,
                            bool no_delay) {
  int af = remote.family == 6 ? AF_INET6 : AF_INET;
  UniqueSocket sock(NewSocket(af, skip_on_success_));
  if (!sock.valid()) return WinStatus(WSAGetLastError(), "socket");
  Extensions& ext = ExtFor(af);
  DWORD err = LoadExtensions(sock.get(), &ext);
  if (err != 0) return WinStatus(err, "WSAIoctl");
  if (no_delay) {
    BOOL one = TRUE;
    setsockopt(sock.get(), IPPROTO_TCP, TCP_NODELAY, reinterpret_cast<const char*>(&one),
               sizeof(one));
  }
  u_long nonblocking = 1;
  ioctlsocket(sock.get(), FIONBIO, &nonblocking);
  // ConnectEx needs a bound socket: the given local address, or any.
  SocketAddress any;
  any.family = remote.family;
  sockaddr_storage ss;
  int len = ToSockaddr(local != nullptr ? *local : any, &ss);
  if (bind(sock.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    return WinStatus(WSAGetLastError(), "bind");
  }
  len = ToSockaddr(remote, &ss);
  SlotOps* o = InitOps(s, skip_on_success_ ? kSkipMode : 0);
  s.socket = static_cast<SocketHandle>(sock.get());
  Begin(s, &o->aux, OpKind::kConnect);
  DWORD sent = 0;
  if (ext.connect_ex(sock.get(), reinterpret_cast<sockaddr*>(&ss), len, nullptr, 0, &sent,
                     &o->aux.ov)) {
    Inline(o, &o->aux, 0);
  } else if ((err = WSAGetLastError()) != WSA_IO_PENDING) {
    Undo(s, &o->aux);
    s.socket = kNoSocket;
    return WinStatus(err, "connect");
  }
  sock.release();
  return Status::Ok();
}

void IocpBackend::ProcessConnect(Session& s, uint32_t ntstatus) {
  if (ntstatus != 0) {
    events_->OnSessionError(s, NtStatus(ntstatus, "connect"));
    return;
  }
  // Makes getpeername, shutdown and friends work on the socket.
  setsockopt(SocketOf(s), SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, nullptr, 0);
  ReportConnected(s);
}

void IocpBackend::ReportConnected(Session& s) {
  if (!events_->OnConnected(s)) {
    connect_reports_.push_back(s.id());  // no batch room: next round
    return;
  }
  Status st = QueueRead(s);
  if (!st.ok()) events_->OnSessionError(s, st);
}

void IocpBackend::RetryConnectReports() {
  if (connect_reports_.empty()) return;
  serving_.swap(connect_reports_);
  for (SessionId tag : serving_) {
    Session* s = table_->LookupTaken(tag);
    if (s == nullptr || s->state != SessionState::kConnecting) continue;
    ReportConnected(*s);
  }
  serving_.clear();
}

}  // namespace iocp
}  // namespace acceptpool
