// SocketAddress <-> sockaddr, for POSIX and Winsock alike: both name the
// structures and byte-order helpers the same way. Include after the OS's
// socket headers; each backend family wraps these in its own types.
#ifndef ACCEPTPOOL_BACKENDS_SOCKADDR_CONVERT_H_
#define ACCEPTPOOL_BACKENDS_SOCKADDR_CONVERT_H_

#include <cstddef>
#include <cstring>

#include "core/address.h"

namespace acceptpool {

// Fills `out` and returns the length of the address written.
inline size_t SocketAddressToSockaddr(const SocketAddress& in, sockaddr_storage* out) {
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

inline SocketAddress SocketAddressFromSockaddr(const sockaddr* in) {
  SocketAddress out;
  if (in == nullptr) return out;
  if (in->sa_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(in);
    out.family = 6;
    out.port = ntohs(a->sin6_port);
    out.scope_id = a->sin6_scope_id;
    std::memcpy(out.addr, &a->sin6_addr, 16);
  } else if (in->sa_family != AF_INET) {
    out.family = kLocalFamily;  // AF_UNIX: its path is not an address JS reads
  } else {
    const auto* a = reinterpret_cast<const sockaddr_in*>(in);
    out.family = 4;
    out.port = ntohs(a->sin_port);
    std::memcpy(out.addr, &a->sin_addr, 4);
  }
  return out;
}

}  // namespace acceptpool

#endif  // ACCEPTPOOL_BACKENDS_SOCKADDR_CONVERT_H_
