#include "core/pool_policy.h"

#include <algorithm>

#include "core/session_table.h"

namespace acceptpool {

PoolConfig NormalizePoolConfig(PoolConfig c) {
  if (c.max_sessions == 0) c.max_sessions = 1;
  if (c.max_sessions > kMaxSlots) c.max_sessions = kMaxSlots;
  if (c.chunk == 0) c.chunk = 1;
  if (c.chunk > c.max_sessions) c.chunk = c.max_sessions;
  if (c.initial < c.chunk) c.initial = c.chunk;
  c.initial = (c.initial + c.chunk - 1) / c.chunk * c.chunk;
  while (c.initial > c.max_sessions && c.initial > c.chunk) c.initial -= c.chunk;
  if (c.low_water >= c.chunk) c.low_water = c.chunk / 2;
  uint64_t room = std::max<uint64_t>(kRetiredSlotRoom, c.max_sessions / 8);
  c.slot_limit = static_cast<uint32_t>(
      std::min<uint64_t>(kMaxSlots, static_cast<uint64_t>(c.max_sessions) + c.chunk + room));
  return c;
}

uint32_t PoolPolicy::ChunksToGrow(uint32_t capacity, uint32_t free_slots) const {
  if (free_slots >= config_.low_water && free_slots > 0) return 0;
  // Growth may overshoot max_sessions by less than a chunk; the engine
  // enforces the maximum on sessions in use, not on slots allocated.
  if (capacity >= config_.max_sessions) return 0;
  return 1;
}

bool PoolPolicy::AtLimit(uint32_t capacity, uint32_t free_slots) const {
  uint32_t in_use = capacity - free_slots;
  return in_use >= config_.max_sessions;
}

bool PoolPolicy::TickShouldShrink(uint32_t capacity, uint32_t free_slots) {
  if (idle_ticks_ < config_.shrink_idle_ticks) {
    ++idle_ticks_;
    return false;
  }
  if (capacity <= config_.initial) return false;
  return free_slots >= 2 * config_.chunk;
}

}  // namespace acceptpool
