// Sockets: the Winsock extension functions, overlapped sockets on the port,
// and the checks the backend makes of what Winsock gives it.
#include <vector>

#include "backends/iocp/iocp_internal.h"

#ifndef WSA_FLAG_NO_HANDLE_INHERIT
#define WSA_FLAG_NO_HANDLE_INHERIT 0x80
#endif

namespace acceptpool {
namespace iocp {
namespace {

bool LoadOne(SOCKET s, GUID guid, void* fn, size_t fn_size) {
  DWORD bytes = 0;
  return WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, sizeof(guid), fn,
                  static_cast<DWORD>(fn_size), &bytes, nullptr, nullptr) == 0;
}

}  // namespace

// The extension functions belong to the socket's provider, so they are
// loaded through a socket of each family.
DWORD LoadExtensions(SOCKET s, Extensions* ext) {
  if (ext->loaded) return 0;
  if (!LoadOne(s, WSAID_ACCEPTEX, &ext->accept_ex, sizeof(ext->accept_ex)) ||
      !LoadOne(s, WSAID_GETACCEPTEXSOCKADDRS, &ext->get_addresses, sizeof(ext->get_addresses)) ||
      !LoadOne(s, WSAID_DISCONNECTEX, &ext->disconnect_ex, sizeof(ext->disconnect_ex)) ||
      !LoadOne(s, WSAID_CONNECTEX, &ext->connect_ex, sizeof(ext->connect_ex))) {
    return WSAGetLastError();
  }
  ext->loaded = true;
  return 0;
}

// A layered (non-IFS) provider may report success and still queue a
// completion.
bool AllTcpProvidersAreIfs() {
  DWORD size = 0;
  if (WSAEnumProtocolsW(nullptr, nullptr, &size) != SOCKET_ERROR || size == 0) return false;
  std::vector<char> buffer(size);
  auto* info = reinterpret_cast<WSAPROTOCOL_INFOW*>(buffer.data());
  int n = WSAEnumProtocolsW(nullptr, info, &size);
  if (n == SOCKET_ERROR) return false;
  for (int i = 0; i < n; ++i) {
    bool tcp = info[i].iSocketType == SOCK_STREAM &&
               (info[i].iProtocol == IPPROTO_TCP || info[i].iProtocol == 0);
    if (tcp && (info[i].dwServiceFlags1 & XP1_IFS_HANDLES) == 0) return false;
  }
  return true;
}

// Real Windows leaves a recycled socket unconnected, like a new one: no
// peer, and a send fails with WSAENOTCONN. Wine 8 only shuts down the send
// side: the socket may still have its peer, and even once the peer is gone
// it keeps its shut-down state (a send fails with WSAESHUTDOWN), so a
// connection accepted on it could never be answered. Check, never assume.
bool LooksUnconnected(SOCKET sock) {
  sockaddr_storage ss;
  int len = sizeof(ss);
  if (getpeername(sock, reinterpret_cast<sockaddr*>(&ss), &len) == 0) return false;
  char none = 0;
  if (::send(sock, &none, 0, 0) == 0) return false;
  return WSAGetLastError() == WSAENOTCONN;
}

// An overlapped socket on the port. `skip`: report immediate successes
// inline instead of through the port (where that is safe).
SOCKET IocpBackend::NewSocket(int af, bool skip) {
  SOCKET s = WSASocketW(af, SOCK_STREAM, IPPROTO_TCP, nullptr, 0,
                        WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
  if (s == INVALID_SOCKET && WSAGetLastError() == WSAEINVAL) {
    s = WSASocketW(af, SOCK_STREAM, IPPROTO_TCP, nullptr, 0, WSA_FLAG_OVERLAPPED);
  }
  if (s == INVALID_SOCKET) return s;
  DWORD err = 0;
  if (CreateIoCompletionPort(reinterpret_cast<HANDLE>(s), port_, kKeySocket, 0) == nullptr) {
    err = GetLastError();
  } else if (skip && skip_on_success_ &&
             !SetFileCompletionNotificationModes(
                 reinterpret_cast<HANDLE>(s),
                 FILE_SKIP_COMPLETION_PORT_ON_SUCCESS | FILE_SKIP_SET_EVENT_ON_HANDLE)) {
    err = GetLastError();
  }
  if (err != 0) {
    closesocket(s);
    WSASetLastError(static_cast<int>(err));
    return INVALID_SOCKET;
  }
  return s;
}

void IocpBackend::CloseCounted(SOCKET s) {
  if (s == INVALID_SOCKET) return;
  closesocket(s);
  ++counters_[kSocketsClosed];
}

// Skipping the port is safe with IFS providers, except for DisconnectEx
// on Wine 8, whose completion is then lost altogether (neither reported
// inline nor queued). So sockets that may be recycled go through the port
// for everything; the rest skip it.
bool IocpBackend::SkipForAccepted() const {
  return skip_on_success_ && reuse_.AcceptedMaySkipPort();
}

// ---- per-session options ----

namespace {

// Windows 10's TCP_KEEPALIVE (ws2ipdef.h, also named TCP_KEEPIDLE): idle
// seconds before the first keep-alive probe. mingw-w64's headers lack it.
constexpr int kTcpKeepAlive = 3;

Status SetInt(SOCKET sock, int level, int name, int value) {
  if (setsockopt(sock, level, name, reinterpret_cast<const char*>(&value), sizeof(value)) != 0) {
    return WinStatus(WSAGetLastError(), "setsockopt");
  }
  return Status::Ok();
}

bool GetInt(SOCKET sock, int level, int name, int* value) {
  // BOOL-sized options may come back in fewer bytes than an int.
  *value = 0;
  int len = sizeof(*value);
  return getsockopt(sock, level, name, reinterpret_cast<char*>(value), &len) == 0;
}

}  // namespace

Status IocpBackend::SetNoDelay(Session& s, bool on) {
  return SetInt(SocketOf(s), IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0);
}

Status IocpBackend::SetKeepAlive(Session& s, bool on, uint32_t delay_s) {
  Status st = SetInt(SocketOf(s), SOL_SOCKET, SO_KEEPALIVE, on ? 1 : 0);
  if (!st.ok() || !on || delay_s == 0) return st;
  return SetInt(SocketOf(s), IPPROTO_TCP, kTcpKeepAlive, static_cast<int>(delay_s));
}

Status IocpBackend::LocalAddress(const Session& s, SocketAddress* out) {
  sockaddr_storage ss;
  int len = sizeof(ss);
  if (getsockname(SocketOf(s), reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return WinStatus(WSAGetLastError(), "getsockname");
  }
  *out = FromSockaddr(reinterpret_cast<sockaddr*>(&ss));
  return Status::Ok();
}

Status IocpBackend::ReadSocketOptions(const Session& s, SocketOptions* out) {
  int no_delay = 0;
  int keep_alive = 0;
  int idle = 0;
  SOCKET sock = SocketOf(s);
  if (!GetInt(sock, IPPROTO_TCP, TCP_NODELAY, &no_delay) ||
      !GetInt(sock, SOL_SOCKET, SO_KEEPALIVE, &keep_alive)) {
    return WinStatus(WSAGetLastError(), "getsockopt");
  }
  // Not every Windows (nor Wine) reads the probe delay back: 0 then.
  if (!GetInt(sock, IPPROTO_TCP, kTcpKeepAlive, &idle)) idle = 0;
  out->no_delay = no_delay != 0;
  out->keep_alive = keep_alive != 0;
  out->keep_alive_delay_s = static_cast<uint32_t>(idle);
  return Status::Ok();
}

}  // namespace iocp
}  // namespace acceptpool
