// Conversions between the core's SocketAddress and sockaddr, and the small
// RAII descriptor owner the POSIX backends share.
#ifndef ACCEPTPOOL_BACKENDS_POSIX_SOCKET_ADDRESS_H_
#define ACCEPTPOOL_BACKENDS_POSIX_SOCKET_ADDRESS_H_

#include <sys/socket.h>
#include <unistd.h>

#include "core/address.h"

namespace acceptpool {

// Fills `out` and returns its length.
socklen_t ToSockaddr(const SocketAddress& in, sockaddr_storage* out);
SocketAddress FromSockaddr(const sockaddr_storage& in);

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    reset(other.release());
    return *this;
  }
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace acceptpool

#endif  // ACCEPTPOOL_BACKENDS_POSIX_SOCKET_ADDRESS_H_
