// The socket work every POSIX backend (epoll, io_uring, libuv) does the same
// way: opening listeners and client sockets, per-session options, addresses,
// shutdown and close, and what accept errors mean. Backends differ in how
// they wait and move bytes, not in these.
#ifndef ACCEPTPOOL_BACKENDS_POSIX_SOCKET_OPS_H_
#define ACCEPTPOOL_BACKENDS_POSIX_SOCKET_OPS_H_

#include <cstddef>
#include <cstdint>

#include "backends/posix/socket_address.h"
#include "core/address.h"
#include "core/backend.h"
#include "core/status.h"

namespace acceptpool {

// A non-blocking TCP socket bound to `address` and listening, with
// SO_REUSEADDR, SO_REUSEPORT if asked and IPV6_V6ONLY as asked.
Status OpenTcpListener(const SocketAddress& address, const ListenOptions& options, UniqueFd* out);
// A non-blocking Unix domain socket listening at `path`. On success the
// file exists and is the caller's to unlink; on failure nothing is left.
Status OpenUnixListener(const char* path, int backlog, UniqueFd* out);
// Checks that `fd` (inherited, or a duplicate) is a listening socket and
// makes it non-blocking and close-on-exec: accept must never block a loop.
Status AdoptListener(int fd);
// A second, close-on-exec descriptor for the same socket (a listener other
// engines share).
Status DuplicateSocket(int fd, int* out);
// The last steps before a listener serves: TCP_NODELAY for what it will
// accept (Linux's accepted sockets inherit it: no setsockopt per
// connection) and its bound address (port 0 resolved).
Status PrepareListener(int fd, const ListenOptions& options, SocketAddress* bound);

// A non-blocking socket for a connection to `remote`, with TCP_NODELAY if
// asked, bound first to `local` if given (port 0: chosen at connect time).
Status OpenClientSocket(const SocketAddress& remote, const SocketAddress* local, bool no_delay,
                        UniqueFd* out);
// OpenClientSocket, then a non-blocking connect: on success the connect is
// under way (or done); writability reports its outcome.
Status StartConnect(const SocketAddress& remote, const SocketAddress* local, bool no_delay,
                    UniqueFd* out);
// SO_ERROR: the error a failed connect or a broken connection left (0: none).
int PendingSocketError(int fd);

Status SetSocketNoDelay(int fd, bool on);
// delay_s 0 leaves the probe delay as it is.
Status SetSocketKeepAlive(int fd, bool on, uint32_t delay_s);
Status SocketLocalAddress(int fd, SocketAddress* out);
// False if the OS cannot tell (not connected, closed).
bool SocketPeerAddress(int fd, SocketAddress* out);
Status ReadSocketOptionsOf(int fd, SocketOptions* out);
// A non-blocking send of what the socket takes now: *sent bytes (0 if it
// would block); an error status means the connection is broken.
Status SendSome(int fd, const char* data, size_t size, size_t* sent);
// shutdown(SHUT_WR); a socket the peer already reset (ENOTCONN) is no error.
Status ShutdownSocketWrite(int fd);
// close(); abort = SO_LINGER 0 first, so the close sends RST and discards
// unsent data.
void CloseSocket(int fd, bool abort);

// What an accept() error means for the listener.
enum class AcceptFailure {
  kRetry,          // EINTR: try again now
  kDrained,        // EAGAIN: nothing waiting
  kNoDescriptors,  // EMFILE, ENFILE: shed (AcceptReserve) and back off
  kSkip,           // one connection's own failure: report it, go on with the others
  kBackOff,        // a resource error: report it and back off
};
AcceptFailure ClassifyAcceptError(int err);

// libuv's trick for EMFILE: a descriptor held in reserve is given up for a
// moment so that waiting connections can be accepted and closed at once:
// their clients fail fast instead of hanging in the backlog.
class AcceptReserve {
 public:
  // Takes the reserve descriptor (again).
  void Hold();
  // Gives it up, accepts and closes up to `max` waiting connections, takes
  // it again; returns how many were shed.
  uint32_t Shed(int listener, uint32_t max);

 private:
  UniqueFd fd_;
};

// The back-off after accept errors: 10 ms doubling to 1 s, reset by an
// accept that succeeds.
class AcceptBackoff {
 public:
  int Next();  // the wait to use now, in ms
  void Reset() { ms_ = 0; }

 private:
  int ms_ = 0;
};

}  // namespace acceptpool

#endif  // ACCEPTPOOL_BACKENDS_POSIX_SOCKET_OPS_H_
