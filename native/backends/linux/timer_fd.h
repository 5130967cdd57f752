// The timerfd and eventfd helpers the Linux backends (epoll, io_uring) share:
// their ticks, back-offs and deadlines are timerfds, their wakes eventfds.
#ifndef ACCEPTPOOL_BACKENDS_LINUX_TIMER_FD_H_
#define ACCEPTPOOL_BACKENDS_LINUX_TIMER_FD_H_

#include <sys/timerfd.h>
#include <unistd.h>

#include <cstdint>

namespace acceptpool {

// A non-blocking, close-on-exec CLOCK_MONOTONIC timerfd, or -1 (errno set).
inline int MakeTimerFd() { return timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC); }

// Fires first after `first_ms` (0 or less: at once), then every
// `interval_ms` (0: once).
inline void ArmTimerFd(int fd, int first_ms, int interval_ms) {
  itimerspec spec{};
  spec.it_value.tv_sec = first_ms / 1000;
  spec.it_value.tv_nsec = static_cast<long>(first_ms % 1000) * 1000000L;
  // An all-zero it_value would disarm: "at once" is the shortest wait.
  if (first_ms <= 0) spec.it_value.tv_nsec = 1;
  spec.it_interval.tv_sec = interval_ms / 1000;
  spec.it_interval.tv_nsec = static_cast<long>(interval_ms % 1000) * 1000000L;
  timerfd_settime(fd, 0, &spec, nullptr);
}

// Reads a timerfd's or eventfd's counter back to zero, so it stops being
// readable until it fires again.
inline void DrainCounter(int fd) {
  uint64_t value;
  while (read(fd, &value, sizeof(value)) == sizeof(value)) {
  }
}

}  // namespace acceptpool

#endif  // ACCEPTPOOL_BACKENDS_LINUX_TIMER_FD_H_
