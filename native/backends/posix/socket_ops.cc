#include "backends/posix/socket_ops.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "backends/posix/sys_errors.h"

namespace acceptpool {

namespace {

constexpr int kMinBackoffMs = 10;
constexpr int kMaxBackoffMs = 1000;

int NewSocket(int family) {
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
  return socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
#else
  // macOS has neither flag: set both after the fact.
  int fd = socket(family, SOCK_STREAM, 0);
  if (fd >= 0 && (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0 ||
                  fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)) {
    int err = errno;
    ::close(fd);
    errno = err;
    return -1;
  }
  return fd;
#endif
}

Status SetIntOption(int fd, int level, int name, int value) {
  if (setsockopt(fd, level, name, &value, sizeof(value)) != 0) {
    return ErrnoStatus(errno, "setsockopt");
  }
  return Status::Ok();
}

bool GetIntOption(int fd, int level, int name, int* value) {
  socklen_t len = sizeof(*value);
  return getsockopt(fd, level, name, value, &len) == 0;
}

int FamilyOf(const SocketAddress& address) { return address.family == 6 ? AF_INET6 : AF_INET; }

// The option that sets the idle time before the first keep-alive probe.
#if defined(TCP_KEEPIDLE)
constexpr int kKeepIdle = TCP_KEEPIDLE;
#else
constexpr int kKeepIdle = TCP_KEEPALIVE;  // macOS
#endif

}  // namespace

Status OpenTcpListener(const SocketAddress& address, const ListenOptions& options, UniqueFd* out) {
  int family = FamilyOf(address);
  UniqueFd fd(NewSocket(family));
  if (!fd.valid()) return ErrnoStatus(errno, "socket");
  SetIntOption(fd.get(), SOL_SOCKET, SO_REUSEADDR, 1);
  if (options.reuse_port) {
    Status st = SetIntOption(fd.get(), SOL_SOCKET, SO_REUSEPORT, 1);
    if (!st.ok()) return st;
  }
  if (family == AF_INET6) SetIntOption(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, options.ipv6_only);
  sockaddr_storage ss;
  socklen_t len = ToSockaddr(address, &ss);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    return ErrnoStatus(errno, "bind");
  }
  if (listen(fd.get(), options.backlog) != 0) return ErrnoStatus(errno, "listen");
  *out = std::move(fd);
  return Status::Ok();
}

Status OpenUnixListener(const char* path, int backlog, UniqueFd* out) {
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  size_t n = std::strlen(path);
  if (n == 0 || n >= sizeof(un.sun_path)) return ErrnoStatus(EINVAL, "bind");
  std::memcpy(un.sun_path, path, n);
  UniqueFd fd(NewSocket(AF_UNIX));
  if (!fd.valid()) return ErrnoStatus(errno, "socket");
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&un), sizeof(un)) != 0) {
    return ErrnoStatus(errno, "bind");
  }
  if (listen(fd.get(), backlog) != 0) {
    Status st = ErrnoStatus(errno, "listen");
    ::unlink(path);  // the bind made it
    return st;
  }
  *out = std::move(fd);
  return Status::Ok();
}

Status AdoptListener(int fd) {
  int accepting = 0;
  if (!GetIntOption(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting)) {
    return ErrnoStatus(errno, "getsockopt");
  }
  if (!accepting) return ErrnoStatus(EINVAL, "listen");  // a socket, but not a listening one
  // A duplicate shares the flag with its original: already set then.
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    return ErrnoStatus(errno, "fcntl");
  }
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  return Status::Ok();
}

Status DuplicateSocket(int fd, int* out) {
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return ErrnoStatus(errno, "fcntl");
  *out = copy;
  return Status::Ok();
}

Status PrepareListener(int fd, const ListenOptions& options, SocketAddress* bound) {
  if (options.no_delay) SetIntOption(fd, IPPROTO_TCP, TCP_NODELAY, 1);
  sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return ErrnoStatus(errno, "getsockname");
  }
  *bound = FromSockaddr(ss);
  return Status::Ok();
}

Status OpenClientSocket(const SocketAddress& remote, const SocketAddress* local, bool no_delay,
                        UniqueFd* out) {
  int family = FamilyOf(remote);
  UniqueFd fd(NewSocket(family));
  if (!fd.valid()) return ErrnoStatus(errno, "socket");
  if (no_delay) SetIntOption(fd.get(), IPPROTO_TCP, TCP_NODELAY, 1);
  if (local != nullptr) {
#if defined(IP_BIND_ADDRESS_NO_PORT)
    // Choose the port at connect time, so many sources can share ports.
    if (local->port == 0 && family == AF_INET) {
      SetIntOption(fd.get(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1);
    }
#endif
    sockaddr_storage ss;
    socklen_t len = ToSockaddr(*local, &ss);
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
      return ErrnoStatus(errno, "bind");
    }
  }
  *out = std::move(fd);
  return Status::Ok();
}

Status StartConnect(const SocketAddress& remote, const SocketAddress* local, bool no_delay,
                    UniqueFd* out) {
  UniqueFd fd;
  Status st = OpenClientSocket(remote, local, no_delay, &fd);
  if (!st.ok()) return st;
  sockaddr_storage ss;
  socklen_t len = ToSockaddr(remote, &ss);
  int rc;
  do {
    rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0 && errno != EINPROGRESS) return ErrnoStatus(errno, "connect");
  *out = std::move(fd);
  return Status::Ok();
}

int PendingSocketError(int fd) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

Status SetSocketNoDelay(int fd, bool on) { return SetIntOption(fd, IPPROTO_TCP, TCP_NODELAY, on); }

Status SetSocketKeepAlive(int fd, bool on, uint32_t delay_s) {
  Status st = SetIntOption(fd, SOL_SOCKET, SO_KEEPALIVE, on);
  if (!st.ok() || !on || delay_s == 0) return st;
  return SetIntOption(fd, IPPROTO_TCP, kKeepIdle, static_cast<int>(delay_s));
}

Status SocketLocalAddress(int fd, SocketAddress* out) {
  sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return ErrnoStatus(errno, "getsockname");
  }
  *out = FromSockaddr(ss);
  return Status::Ok();
}

bool SocketPeerAddress(int fd, SocketAddress* out) {
  sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (fd < 0 || getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return false;
  *out = FromSockaddr(ss);
  return true;
}

Status ReadSocketOptionsOf(int fd, SocketOptions* out) {
  int no_delay = 0;
  int keep_alive = 0;
  int idle = 0;
  if (!GetIntOption(fd, IPPROTO_TCP, TCP_NODELAY, &no_delay) ||
      !GetIntOption(fd, SOL_SOCKET, SO_KEEPALIVE, &keep_alive) ||
      !GetIntOption(fd, IPPROTO_TCP, kKeepIdle, &idle)) {
    return ErrnoStatus(errno, "getsockopt");
  }
  out->no_delay = no_delay != 0;
  out->keep_alive = keep_alive != 0;
  out->keep_alive_delay_s = static_cast<uint32_t>(idle);
  return Status::Ok();
}

Status SendSome(int fd, const char* data, size_t size, size_t* sent) {
  *sent = 0;
  for (;;) {
    ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) {
      *sent = static_cast<size_t>(n);
      return Status::Ok();
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Status::Ok();
    return ErrnoStatus(errno, "send");
  }
}

Status ShutdownSocketWrite(int fd) {
  if (shutdown(fd, SHUT_WR) != 0 && errno != ENOTCONN) return ErrnoStatus(errno, "shutdown");
  return Status::Ok();
}

void CloseSocket(int fd, bool abort) {
  if (fd < 0) return;
  if (abort) {
    linger lg{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  }
  ::close(fd);
}

AcceptFailure ClassifyAcceptError(int err) {
  switch (err) {
    case EINTR: return AcceptFailure::kRetry;
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
      return AcceptFailure::kDrained;
    case EMFILE:
    case ENFILE: return AcceptFailure::kNoDescriptors;
    // Aborted before it was accepted, or refused by a firewall hook.
    case ECONNABORTED:
    case EPROTO:
    case EPERM: return AcceptFailure::kSkip;
    default: return AcceptFailure::kBackOff;
  }
}

void AcceptReserve::Hold() {
  if (!fd_.valid()) fd_.reset(open("/dev/null", O_RDONLY | O_CLOEXEC));
}

uint32_t AcceptReserve::Shed(int listener, uint32_t max) {
  if (!fd_.valid()) return 0;
  fd_.reset();
  uint32_t shed = 0;
  while (shed < max) {
    int fd = accept(listener, nullptr, nullptr);
    if (fd < 0) break;
    ::close(fd);
    ++shed;
  }
  Hold();
  return shed;
}

int AcceptBackoff::Next() {
  ms_ = ms_ == 0 ? kMinBackoffMs : std::min(ms_ * 2, kMaxBackoffMs);
  return ms_;
}

}  // namespace acceptpool
