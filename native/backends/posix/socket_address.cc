#include "backends/posix/socket_address.h"

#include <netinet/in.h>

#include <cstring>

namespace acceptpool {

socklen_t ToSockaddr(const SocketAddress& in, sockaddr_storage* out) {
  std::memset(out, 0, sizeof(*out));
  if (in.family == 6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(out);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(in.port);
    a->sin6_scope_id = in.scope_id;
    std::memcpy(&a->sin6_addr, in.addr, 16);
    return sizeof(sockaddr_in6);
  }
  auto* a = reinterpret_cast<sockaddr_in*>(out);
  a->sin_family = AF_INET;
  a->sin_port = htons(in.port);
  std::memcpy(&a->sin_addr, in.addr, 4);
  return sizeof(sockaddr_in);
}

SocketAddress FromSockaddr(const sockaddr_storage& in) {
  SocketAddress out;
  if (in.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&in);
    out.family = 6;
    out.port = ntohs(a->sin6_port);
    out.scope_id = a->sin6_scope_id;
    std::memcpy(out.addr, &a->sin6_addr, 16);
  } else {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&in);
    out.family = 4;
    out.port = ntohs(a->sin_port);
    std::memcpy(out.addr, &a->sin_addr, 4);
  }
  return out;
}

}  // namespace acceptpool
