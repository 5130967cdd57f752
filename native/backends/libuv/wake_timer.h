// A descriptor that becomes readable at a chosen time: how the libuv
// backend's private loop makes its own descriptor (uv_backend_fd) readable
// when one of its timers is due. libuv timers alone never do: the loop
// computes its poll timeout from them, but Node's loop, which watches that
// descriptor in the inline driver, only sees descriptors. The loop watches
// this one with a uv_poll.
//
// Linux: a timerfd (linux/timer_fd.h). macOS and the BSDs: a kqueue with one
// EVFILT_TIMER; a kqueue is readable while it holds a triggered event. That
// branch compiles only there and was never run here (Linux only).
#ifndef ACCEPTPOOL_BACKENDS_LIBUV_WAKE_TIMER_H_
#define ACCEPTPOOL_BACKENDS_LIBUV_WAKE_TIMER_H_

#include <cerrno>

#include "backends/posix/socket_address.h"
#include "backends/posix/sys_errors.h"
#include "core/status.h"

#if defined(__linux__)
#include "backends/linux/timer_fd.h"
#elif defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__NetBSD__) || \
    defined(__DragonFly__)
#include <sys/event.h>
#include <sys/time.h>
#include <sys/types.h>
#else
#error "the libuv backend has no timer descriptor for this OS (timerfd or kqueue)"
#endif

namespace acceptpool {

class WakeTimer {
 public:
  Status Open() {
#if defined(__linux__)
    fd_.reset(MakeTimerFd());
    if (!fd_.valid()) return ErrnoStatus(errno, "timerfd_create");
#else
    fd_.reset(kqueue());
    if (!fd_.valid()) return ErrnoStatus(errno, "kqueue");
#endif
    return Status::Ok();
  }

  int fd() const { return fd_.get(); }

  // Readable in `delay_ms` (0: at once), replacing the previous time.
  void Arm(int delay_ms) {
#if defined(__linux__)
    ArmTimerFd(fd_.get(), delay_ms, 0);
#else
    // EV_ADD on an existing timer resets it; a zero period is refused on some
    // BSDs, so "at once" is the shortest one.
    struct kevent change;
    EV_SET(&change, kIdent, EVFILT_TIMER, EV_ADD | EV_ONESHOT, 0, delay_ms > 0 ? delay_ms : 1,
           nullptr);
    kevent(fd_.get(), &change, 1, nullptr, 0, nullptr);
#endif
  }

  // Takes the expiry, so the descriptor is quiet until it fires again.
  void Drain() {
#if defined(__linux__)
    DrainCounter(fd_.get());
#else
    struct kevent fired;
    timespec zero{0, 0};
    while (kevent(fd_.get(), nullptr, 0, &fired, 1, &zero) > 0) {
    }
#endif
  }

 private:
#if !defined(__linux__)
  static constexpr uintptr_t kIdent = 1;
#endif
  UniqueFd fd_;
};

}  // namespace acceptpool

#endif  // ACCEPTPOOL_BACKENDS_LIBUV_WAKE_TIMER_H_
