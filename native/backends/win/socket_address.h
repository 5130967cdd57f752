// Conversions between the core's SocketAddress and Winsock's sockaddr, and an
// owner for SOCKET handles (closesocket on scope exit).
#ifndef ACCEPTPOOL_BACKENDS_WIN_SOCKET_ADDRESS_H_
#define ACCEPTPOOL_BACKENDS_WIN_SOCKET_ADDRESS_H_

#include <winsock2.h>
#include <ws2tcpip.h>

#include "core/address.h"

namespace acceptpool {

// Fills `out` and returns its length.
int ToSockaddr(const SocketAddress& in, sockaddr_storage* out);
SocketAddress FromSockaddr(const sockaddr* in);

// Owns a SOCKET (the Winsock twin of posix/UniqueFd).
class UniqueSocket {
 public:
  UniqueSocket() = default;
  explicit UniqueSocket(SOCKET s) : s_(s) {}
  UniqueSocket(const UniqueSocket&) = delete;
  UniqueSocket& operator=(const UniqueSocket&) = delete;
  UniqueSocket(UniqueSocket&& other) noexcept : s_(other.release()) {}
  UniqueSocket& operator=(UniqueSocket&& other) noexcept {
    reset(other.release());
    return *this;
  }
  ~UniqueSocket() { reset(); }

  SOCKET get() const { return s_; }
  bool valid() const { return s_ != INVALID_SOCKET; }
  SOCKET release() {
    SOCKET s = s_;
    s_ = INVALID_SOCKET;
    return s;
  }
  void reset(SOCKET s = INVALID_SOCKET) {
    if (s_ != INVALID_SOCKET) closesocket(s_);
    s_ = s;
  }

 private:
  SOCKET s_ = INVALID_SOCKET;
};

}  // namespace acceptpool

#endif  // ACCEPTPOOL_BACKENDS_WIN_SOCKET_ADDRESS_H_
