// A blocking loopback client for the native tests of the POSIX backends
// (epoll_loopback_test, io_uring_loopback_test): connect, send, receive,
// with every wait bounded by kWaitMs.
#ifndef ACCEPTPOOL_NATIVE_TESTS_POSIX_CLIENT_H_
#define ACCEPTPOOL_NATIVE_TESTS_POSIX_CLIENT_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "loopback_server.h"

namespace acceptpool_test {

// A blocking loopback client with receive and send timeouts (and, if given,
// a small receive buffer, so the server's sends back up sooner).
inline int Connect(uint16_t port, int rcvbuf = 0) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  timeval tv{kWaitMs / 1000, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

inline bool SendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Reads exactly n bytes (or fewer on timeout / EOF).
inline std::string RecvExactly(int fd, size_t n) {
  std::string out;
  char buf[65536];
  while (out.size() < n) {
    ssize_t r = recv(fd, buf, std::min(sizeof(buf), n - out.size()), 0);
    if (r <= 0) break;
    out.append(buf, static_cast<size_t>(r));
  }
  return out;
}

// Bytes readable within `ms`, without blocking longer; -1 on EOF/error with
// nothing read.
inline std::string RecvAvailable(int fd, int ms, bool* eof = nullptr) {
  std::string out;
  pollfd p{fd, POLLIN, 0};
  while (poll(&p, 1, ms) == 1) {
    char buf[4096];
    ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (r <= 0) {
      if (eof != nullptr) *eof = true;
      break;
    }
    out.append(buf, static_cast<size_t>(r));
    ms = 20;
  }
  return out;
}

inline std::string Bytes(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 7;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    s[i] = static_cast<char>(x >> 23);
  }
  return s;
}

}  // namespace acceptpool_test

#endif  // ACCEPTPOOL_NATIVE_TESTS_POSIX_CLIENT_H_
