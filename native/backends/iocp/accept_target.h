// How many AcceptEx calls the IOCP backend keeps posted on its listener.
// Pure policy, no Windows headers: it compiles and is tested everywhere
// (native/tests/iocp_policy_test.cc); the backend applies it.
//
//   start   min(32, max) posted at listen (libuv keeps 32 per listener);
//           max = min(4096, maxConnections)
//   grow    doubles, up to max, on pressure: a client waits (FD_ACCEPT)
//           while none is posted, or a round took connections and left
//           fewer than a quarter of the target posted
//   shrink  halves, never below the start, after kShrinkIdleTicks ticks
//           without pressure
//   fail    a post that fails at once is retried when the failure is the
//           socket's or one connection's: a fresh socket takes a recycled
//           one's place, and a connection reset or abandoned in the backlog
//           costs only itself (as when a completion reports it). Anything
//           else (no socket, no memory) pauses posting until the next tick,
//           and so do kMaxRetriesPerTick retries, so a failure that repeats
//           never spins
#ifndef ACCEPTPOOL_BACKENDS_IOCP_ACCEPT_TARGET_H_
#define ACCEPTPOOL_BACKENDS_IOCP_ACCEPT_TARGET_H_

#include <algorithm>
#include <cstdint>

#include "core/status.h"

namespace acceptpool {

class AcceptTarget {
 public:
  static constexpr uint32_t kInitial = 32;
  // The most accepts ever posted at once, whatever maxConnections says.
  static constexpr uint32_t kMax = 4096;
  static constexpr uint32_t kShrinkIdleTicks = 10;
  static constexpr uint32_t kMaxRetriesPerTick = 1024;

  // What to do about a post that failed at once.
  enum class Failure { kRetry, kPause };
  // What a waiting client (FD_ACCEPT) says about the posted accepts.
  enum class Waiting {
    kNone,           // not accepting: the client waits in the backlog
    kGrow,           // none is posted: the target grew (if below max)
    kSuspectPosted,  // some are posted and still a client waits: some are dead
  };

  // At listen. `max_sessions`: maxConnections (0 = no limit of its own).
  void Start(uint32_t max_sessions, uint32_t tick) {
    uint32_t max = max_sessions == 0 ? kMax : max_sessions;
    max_ = std::min(kMax, max);
    initial_ = std::min(kInitial, max_);
    target_ = initial_;
    last_pressure_tick_ = tick;
    paused_ = false;
    retries_ = 0;
  }

  uint32_t target() const { return target_; }
  uint32_t initial() const { return initial_; }
  bool paused() const { return paused_; }
  uint64_t growths() const { return growths_; }
  uint64_t shrinks() const { return shrinks_; }

  // Whether to post one more with `posted` accepts in flight or accepted
  // and waiting for the engine (those count too, so a slow JS side leaves
  // clients in the backlog).
  bool WantsMore(uint32_t posted) const { return !paused_ && posted < target_; }

  // After a round of completions that took `accepted` connections and left
  // `pending` accepts posted.
  void AfterRound(uint32_t accepted, uint32_t pending, uint32_t tick) {
    if (accepted > 0 && pending < std::max<uint32_t>(1, target_ / 4)) Grow(tick);
  }

  // FD_ACCEPT: a client waits and no posted accept has taken it.
  Waiting OnClientWaiting(bool accepting, uint32_t pending, uint32_t tick) {
    if (accepting && pending == 0) {
      Grow(tick);
      return Waiting::kGrow;
    }
    return pending > 0 ? Waiting::kSuspectPosted : Waiting::kNone;
  }

  // AcceptEx failed at once with `error`, on a recycled socket or a fresh one.
  Failure OnPostFailed(SysError error, bool reused_socket) {
    if (retries_ >= kMaxRetriesPerTick) return Pause();
    // A recycled socket that fails is the socket's fault: the next try
    // takes a fresh one. A connection its peer had already given up on
    // (WSAECONNRESET from the backlog, on real Windows) costs only itself.
    if (reused_socket || IsAbortedAccept(error)) {
      ++retries_;
      return Failure::kRetry;
    }
    return Pause();
  }

  // No socket could be made for a post.
  void OnNoSocket() { Pause(); }

  // Once a tick: a pause ends; after a quiet spell the target halves. True
  // if it did (the backend then cancels what is posted beyond it).
  bool OnTick(uint32_t tick) {
    paused_ = false;
    retries_ = 0;
    if (target_ <= initial_ || tick - last_pressure_tick_ < kShrinkIdleTicks) return false;
    last_pressure_tick_ = tick;
    target_ = std::max(initial_, target_ / 2);
    ++shrinks_;
    return true;
  }

 private:
  void Grow(uint32_t tick) {
    last_pressure_tick_ = tick;
    uint32_t next = std::min(max_, target_ * 2);
    if (next <= target_) return;
    target_ = next;
    ++growths_;
  }
  Failure Pause() {
    paused_ = true;
    return Failure::kPause;
  }

  uint32_t initial_ = kInitial;
  uint32_t max_ = kMax;
  uint32_t target_ = kInitial;
  uint32_t last_pressure_tick_ = 0;
  uint32_t retries_ = 0;  // since the last tick
  bool paused_ = false;
  uint64_t growths_ = 0;
  uint64_t shrinks_ = 0;
};

}  // namespace acceptpool

#endif  // ACCEPTPOOL_BACKENDS_IOCP_ACCEPT_TARGET_H_
