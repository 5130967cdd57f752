// Counters one engine keeps; JS reads a snapshot.
#ifndef ACCEPTPOOL_CORE_STATS_H_
#define ACCEPTPOOL_CORE_STATS_H_

#include <cstddef>
#include <cstdint>

namespace acceptpool {

// X(member, jsName): every counter, in the order JS lists them
// (statsFields); one list fills this struct and builds the JS stats object.
#define ACCEPTPOOL_STATS_FIELDS(X)                                                          \
  X(pool_size, poolSize) /* slots that can hold a session (retired excluded) */             \
  X(pool_free, poolFree)                                                                    \
  X(in_use, inUse)               /* sessions open or closing */                             \
  X(retired_slots, retiredSlots) /* slots whose generations are used up */                  \
  X(peak_in_use, peakInUse)                                                                 \
  X(growths, growths)                                                                       \
  X(shrinks, shrinks)                                                                       \
  X(accepts, accepts)                                                                       \
  X(connects, connects)            /* outgoing connects started */                          \
  X(connect_errors, connectErrors) /* outgoing connects that failed */                      \
  X(accept_errors, acceptErrors)                                                            \
  X(accept_aborts, acceptAborts) /* of a connection its peer had abandoned */               \
  X(emfile, emfile)              /* EMFILE/ENFILE seen by accept */                         \
  X(shed, shed)                  /* closed at once to get past EMFILE */                    \
  X(accept_pauses, acceptPauses) /* times accepting paused at maxConnections */             \
  X(stale_commands, staleCommands)                                                          \
  X(overflows, overflows)                                                                   \
  X(timeouts, timeouts)                                                                     \
  X(bytes_in, bytesIn)                                                                      \
  X(bytes_out, bytesOut)                                                                    \
  X(send_blocks, sendBlocks)           /* send-queue blocks allocated */                    \
  X(lingers, lingers)                  /* graceful closes that waited for the peer's FIN */ \
  X(linger_ends, lingerEnds)           /* ... ended by the peer's FIN */                    \
  X(linger_timeouts, lingerTimeouts)   /* ... reset at the linger deadline */               \
  X(bytes_discarded, bytesDiscarded)   /* read after a close was requested, dropped */      \
  X(session_timeouts, sessionTimeouts) /* 'timeout' events of session.setTimeout() */       \
  X(proxy_headers, proxyHeaders)       /* sessions whose client a PROXY header named */     \
  X(proxy_local, proxyLocal)           /* ... LOCAL/UNKNOWN headers: a direct connection */ \
  X(proxy_untrusted, proxyUntrusted)   /* connections refused: peer not trusted */          \
  X(proxy_malformed, proxyMalformed)   /* ... header broke the spec */                      \
  X(proxy_timeouts, proxyTimeouts)     /* ... header not complete in time */                \
  X(proxy_aborted, proxyAborted)       /* ... peer gone before its header completed */      \
  X(proxy_busy, proxyBusy)             /* ... too many split headers held at once */        \
  X(drains, drains)                    /* drains begun: close({ drain }) */                 \
  X(drain_closes, drainCloses)         /* sessions a drain's deadline closed ('shutdown') */

struct Stats {
#define ACCEPTPOOL_STATS_MEMBER(member, js_name) uint64_t member = 0;
  ACCEPTPOOL_STATS_FIELDS(ACCEPTPOOL_STATS_MEMBER)
#undef ACCEPTPOOL_STATS_MEMBER
  // The backend's own counters (Backend::CounterNames gives their names).
  static constexpr size_t kBackendCounters = 32;  // a bit each in Backend::SettingCounters
  uint64_t backend[kBackendCounters] = {};
};

// Adds one engine's counters to an endpoint's (threads: N). Every counter
// is a count or a size, so the endpoint's is the sum, but for peak_in_use:
// the engines' peaks need not have come at one moment, so the endpoint's is
// at least the largest of them (the threaded driver raises it to what it
// saw the threads hold together: drivers.cc, EndpointPeak).
inline void AddStats(Stats* total, const Stats& part) {
  uint64_t peak = total->peak_in_use > part.peak_in_use ? total->peak_in_use : part.peak_in_use;
#define ACCEPTPOOL_STATS_ADD(member, js_name) total->member += part.member;
  ACCEPTPOOL_STATS_FIELDS(ACCEPTPOOL_STATS_ADD)
#undef ACCEPTPOOL_STATS_ADD
  total->peak_in_use = peak;
  for (size_t i = 0; i < Stats::kBackendCounters; ++i) total->backend[i] += part.backend[i];
}

}  // namespace acceptpool

#endif  // ACCEPTPOOL_CORE_STATS_H_
