// Counters one engine keeps; JS reads a snapshot.
#ifndef ACCEPTPOOL_CORE_STATS_H_
#define ACCEPTPOOL_CORE_STATS_H_

#include <cstdint>

namespace acceptpool {

struct Stats {
  uint64_t pool_size = 0;  // slots allocated that can hold a session (retired ones excluded)
  uint64_t pool_free = 0;
  uint64_t in_use = 0;     // sessions open or closing
  uint64_t retired_slots = 0;  // slots whose generations are used up (never reused)
  uint64_t peak_in_use = 0;
  uint64_t growths = 0;
  uint64_t shrinks = 0;
  uint64_t accepts = 0;
  uint64_t connects = 0;       // outgoing connects started
  uint64_t connect_errors = 0; // outgoing connects that failed
  uint64_t accept_errors = 0;
  uint64_t accept_aborts = 0;  // accept errors of a connection its peer had already abandoned
  uint64_t emfile = 0;         // EMFILE/ENFILE seen by accept
  uint64_t shed = 0;           // connections closed at once to get past EMFILE
  uint64_t accept_pauses = 0;  // times accepting paused at maxConnections
  uint64_t stale_commands = 0;
  uint64_t overflows = 0;
  uint64_t timeouts = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  uint64_t send_blocks = 0;    // send-queue blocks allocated
  uint64_t lingers = 0;          // graceful closes that sent FIN and waited for the peer's
  uint64_t linger_ends = 0;      // ... ended by the peer's FIN
  uint64_t linger_timeouts = 0;  // ... reset at the linger deadline
  uint64_t bytes_discarded = 0;  // read after a close was requested, never reported
  // The backend's own counters (Backend::CounterNames gives their names).
  static constexpr size_t kBackendCounters = 32;
  uint64_t backend[kBackendCounters] = {};
};

}  // namespace acceptpool

#endif  // ACCEPTPOOL_CORE_STATS_H_
