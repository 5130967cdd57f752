#include "backends/posix/socket_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "backends/sockaddr_convert.h"

namespace acceptpool {

socklen_t ToSockaddr(const SocketAddress& in, sockaddr_storage* out) {
  return static_cast<socklen_t>(SocketAddressToSockaddr(in, out));
}

SocketAddress FromSockaddr(const sockaddr_storage& in) {
  return SocketAddressFromSockaddr(reinterpret_cast<const sockaddr*>(&in));
}

}  // namespace acceptpool
