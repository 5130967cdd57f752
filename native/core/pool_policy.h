// When the session pool grows and when it shrinks. Pure arithmetic so it can
// be tested on its own; the engine (and the IOCP accept pool) apply it.
//
// Grow: when free slots fall under the low-water mark, add a chunk, up to
// max_sessions. At the maximum, accepting pauses and connections wait in the
// kernel backlog.
// Shrink: only after `shrink_idle_ticks` ticks without growth pressure, at
// most one chunk per tick, and never below the initial size or while less
// than two chunks are free (hysteresis, so a steady load does not flap).
#ifndef ACCEPTPOOL_CORE_POOL_POLICY_H_
#define ACCEPTPOOL_CORE_POOL_POLICY_H_

#include <cstdint>

namespace acceptpool {

// No defaults of its own (see EngineConfig): NormalizePoolConfig makes any
// values consistent.
struct PoolConfig {
  uint32_t initial = 0;  // slots allocated at listen
  uint32_t chunk = 0;    // growth step
  uint32_t max_sessions = 0;
  uint32_t low_water = 0;  // grow when fewer free slots than this
  uint32_t shrink_idle_ticks = 0;
  // Computed by NormalizePoolConfig: slot indices stay below it (see there).
  uint32_t slot_limit = 0;
};

// Slots the pool may allocate beyond max_sessions plus one chunk of growth
// overshoot, to stand in for retired slots (session_table.h): the larger of
// this and max_sessions / 8. A slot retires after 2^29 - 1 occupants, so
// even this minimum outlasts centuries of 60,000 connections/s.
constexpr uint32_t kRetiredSlotRoom = 1024;

// Rounds the configuration into a consistent one (chunk >= 1, initial a whole
// number of chunks no larger than max, low water below a chunk) and derives
// slot_limit.
PoolConfig NormalizePoolConfig(PoolConfig c);

class PoolPolicy {
 public:
  explicit PoolPolicy(const PoolConfig& config) : config_(NormalizePoolConfig(config)) {}

  const PoolConfig& config() const { return config_; }

  // Chunks to add now for a pool of `capacity` slots with `free_slots` free.
  uint32_t ChunksToGrow(uint32_t capacity, uint32_t free_slots) const;
  // True when the sessions in use (capacity - free_slots) have reached
  // max_sessions: no more may be taken, whether slots are free or not.
  bool AtLimit(uint32_t capacity, uint32_t free_slots) const;
  // Call once per tick; true when one chunk should be given back now.
  bool TickShouldShrink(uint32_t capacity, uint32_t free_slots);
  // Any growth or accept pressure resets the idle countdown.
  void NotePressure() { idle_ticks_ = 0; }

 private:
  PoolConfig config_;
  uint32_t idle_ticks_ = 0;
};

}  // namespace acceptpool

#endif  // ACCEPTPOOL_CORE_POOL_POLICY_H_
