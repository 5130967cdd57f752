// Counters one engine keeps; JS reads a snapshot.
#ifndef ACCEPTPOOL_CORE_STATS_H_
#define ACCEPTPOOL_CORE_STATS_H_

#include <cstddef>
#include <cstdint>

namespace acceptpool {

// X(member, jsName): every counter, in the order JS lists them
// (statsFields); one list fills this struct and builds the JS stats object.
#define ACCEPTPOOL_STATS_FIELDS(X)                                                         \
  X(pool_size, poolSize)        /* slots that can hold a session (retired excluded) */     \
  X(pool_free, poolFree)                                                                   \
  X(in_use, inUse)              /* sessions open or closing */                             \
  X(retired_slots, retiredSlots) /* slots whose generations are used up */                 \
  X(peak_in_use, peakInUse)                                                                \
  X(growths, growths)                                                                      \
  X(shrinks, shrinks)                                                                      \
  X(accepts, accepts)                                                                      \
  X(connects, connects)               /* outgoing connects started */                      \
  X(connect_errors, connectErrors)    /* outgoing connects that failed */                  \
  X(accept_errors, acceptErrors)                                                           \
  X(accept_aborts, acceptAborts)      /* of a connection its peer had abandoned */         \
  X(emfile, emfile)                   /* EMFILE/ENFILE seen by accept */                   \
  X(shed, shed)                       /* closed at once to get past EMFILE */              \
  X(accept_pauses, acceptPauses)      /* times accepting paused at maxConnections */       \
  X(stale_commands, staleCommands)                                                         \
  X(overflows, overflows)                                                                  \
  X(timeouts, timeouts)                                                                    \
  X(bytes_in, bytesIn)                                                                     \
  X(bytes_out, bytesOut)                                                                   \
  X(send_blocks, sendBlocks)          /* send-queue blocks allocated */                    \
  X(lingers, lingers)                 /* graceful closes that waited for the peer's FIN */ \
  X(linger_ends, lingerEnds)          /* ... ended by the peer's FIN */                    \
  X(linger_timeouts, lingerTimeouts)  /* ... reset at the linger deadline */               \
  X(bytes_discarded, bytesDiscarded)  /* read after a close was requested, dropped */ \
  X(session_timeouts, sessionTimeouts) /* 'timeout' events of session.setTimeout() */

struct Stats {
#define ACCEPTPOOL_STATS_MEMBER(member, js_name) uint64_t member = 0;
  ACCEPTPOOL_STATS_FIELDS(ACCEPTPOOL_STATS_MEMBER)
#undef ACCEPTPOOL_STATS_MEMBER
  // The backend's own counters (Backend::CounterNames gives their names).
  static constexpr size_t kBackendCounters = 32;
  uint64_t backend[kBackendCounters] = {};
};

// Adds one engine's counters to an endpoint's (threads: N). Every counter
// is a count or a size, so the endpoint's is the sum; peak_in_use sums each
// engine's own peak, an upper bound of the endpoint's.
inline void AddStats(Stats* total, const Stats& part) {
#define ACCEPTPOOL_STATS_ADD(member, js_name) total->member += part.member;
  ACCEPTPOOL_STATS_FIELDS(ACCEPTPOOL_STATS_ADD)
#undef ACCEPTPOOL_STATS_ADD
  for (size_t i = 0; i < Stats::kBackendCounters; ++i) total->backend[i] += part.backend[i];
}

}  // namespace acceptpool

#endif  // ACCEPTPOOL_CORE_STATS_H_
