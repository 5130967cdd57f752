#include "backends/win/socket_address.h"

#include "backends/sockaddr_convert.h"

namespace acceptpool {

int ToSockaddr(const SocketAddress& in, sockaddr_storage* out) {
  return static_cast<int>(SocketAddressToSockaddr(in, out));
}

SocketAddress FromSockaddr(const sockaddr* in) { return SocketAddressFromSockaddr(in); }

}  // namespace acceptpool
