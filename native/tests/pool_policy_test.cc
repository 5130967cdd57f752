// The accept pool policy: when to grow, when to stop, when to shrink.
#include "core/pool_policy.h"

#include "core/session_table.h"
#include "test_main.h"

using namespace acceptpool;

namespace {

PoolConfig Config(uint32_t initial, uint32_t chunk, uint32_t max, uint32_t low_water,
                  uint32_t idle_ticks = 3) {
  PoolConfig c;
  c.initial = initial;
  c.chunk = chunk;
  c.max_sessions = max;
  c.low_water = low_water;
  c.shrink_idle_ticks = idle_ticks;
  return c;
}

}  // namespace

TEST(NormalizeTurnsZeroChunkIntoOne) {
  PoolConfig c = NormalizePoolConfig(Config(0, 0, 100, 0));
  EXPECT_EQ(c.chunk, 1u);
  EXPECT_EQ(c.initial, 1u);
  EXPECT_EQ(c.low_water, 0u);
}

TEST(NormalizeTurnsZeroMaxIntoOne) {
  PoolConfig c = NormalizePoolConfig(Config(16, 8, 0, 2));
  EXPECT_EQ(c.max_sessions, 1u);
  EXPECT_EQ(c.chunk, 1u);
  EXPECT_EQ(c.initial, 1u);
  EXPECT(c.low_water < c.chunk || c.low_water == 0u);
}

TEST(NormalizeCapsMaxAtMaxSlots) {
  PoolConfig c = NormalizePoolConfig(Config(1024, 1024, 0xffffffffu, 64));
  EXPECT_EQ(c.max_sessions, kMaxSlots);
}

TEST(NormalizeLeavesRoomForRetiredSlotsUnderTheSlotLimit) {
  // max_sessions, one chunk of growth overshoot, and the retired-slot room:
  // at least kRetiredSlotRoom, an eighth of max_sessions when that is more.
  EXPECT_EQ(NormalizePoolConfig(Config(4, 4, 10, 1)).slot_limit, 10u + 4u + kRetiredSlotRoom);
  EXPECT_EQ(NormalizePoolConfig(Config(1024, 1024, 1u << 20, 64)).slot_limit,
            (1u << 20) + 1024u + (1u << 17));
  EXPECT_EQ(NormalizePoolConfig(Config(4, 4, kMaxSlots, 1)).slot_limit, kMaxSlots);
  EXPECT_EQ(NormalizePoolConfig(Config(4, 4, kMaxSlots - 2000, 1)).slot_limit, kMaxSlots);
}

TEST(NormalizeRoundsInitialUpToWholeChunks) {
  PoolConfig c = NormalizePoolConfig(Config(10, 4, 100, 1));
  EXPECT_EQ(c.initial, 12u);
  c = NormalizePoolConfig(Config(3, 4, 100, 1));
  EXPECT_EQ(c.initial, 4u);
}

TEST(NormalizeBringsInitialAboveMaxBackDown) {
  PoolConfig c = NormalizePoolConfig(Config(1000, 4, 10, 1));
  EXPECT_EQ(c.initial % c.chunk, 0u);
  EXPECT(c.initial <= c.max_sessions);
  EXPECT_EQ(c.initial, 8u);
}

TEST(NormalizeKeepsOneChunkWhenChunkEqualsMax) {
  PoolConfig c = NormalizePoolConfig(Config(100, 50, 50, 10));
  EXPECT_EQ(c.chunk, 50u);
  EXPECT_EQ(c.initial, 50u);
}

TEST(NormalizeShrinksChunkLargerThanMax) {
  PoolConfig c = NormalizePoolConfig(Config(0, 64, 10, 2));
  EXPECT_EQ(c.chunk, 10u);
  EXPECT_EQ(c.initial, 10u);
}

TEST(NormalizePutsLowWaterBelowAChunk) {
  PoolConfig c = NormalizePoolConfig(Config(8, 8, 100, 8));
  EXPECT_EQ(c.low_water, 4u);
  c = NormalizePoolConfig(Config(8, 8, 100, 1000));
  EXPECT_EQ(c.low_water, 4u);
  c = NormalizePoolConfig(Config(8, 8, 100, 7));
  EXPECT_EQ(c.low_water, 7u);  // already below a chunk: kept
}

TEST(NormalizeIsIdempotent) {
  PoolConfig once = NormalizePoolConfig(Config(1000, 7, 50, 9));
  PoolConfig twice = NormalizePoolConfig(once);
  EXPECT_EQ(twice.initial, once.initial);
  EXPECT_EQ(twice.chunk, once.chunk);
  EXPECT_EQ(twice.max_sessions, once.max_sessions);
  EXPECT_EQ(twice.low_water, once.low_water);
}

TEST(PolicyNormalizesItsConfig) {
  PoolPolicy p(Config(0, 0, 0, 5));
  EXPECT_EQ(p.config().chunk, 1u);
  EXPECT_EQ(p.config().max_sessions, 1u);
}

TEST(NoGrowthAtOrAboveLowWater) {
  PoolPolicy p(Config(16, 16, 1000, 4));
  EXPECT_EQ(p.ChunksToGrow(16, 16), 0u);
  EXPECT_EQ(p.ChunksToGrow(16, 4), 0u);  // exactly at low water: enough
}

TEST(GrowsOneChunkBelowLowWater) {
  PoolPolicy p(Config(16, 16, 1000, 4));
  EXPECT_EQ(p.ChunksToGrow(16, 3), 1u);
  EXPECT_EQ(p.ChunksToGrow(16, 0), 1u);
}

TEST(GrowsWhenNothingIsFreeEvenWithZeroLowWater) {
  PoolPolicy p(Config(4, 4, 100, 0));
  EXPECT_EQ(p.ChunksToGrow(4, 1), 0u);
  EXPECT_EQ(p.ChunksToGrow(4, 0), 1u);
}

TEST(NoGrowthAtMax) {
  PoolPolicy p(Config(16, 16, 64, 4));
  EXPECT_EQ(p.ChunksToGrow(64, 0), 0u);
  EXPECT_EQ(p.ChunksToGrow(48, 0), 1u);
  EXPECT_EQ(p.ChunksToGrow(80, 0), 0u);  // past max (overshoot): still none
}

TEST(AtLimitOnlyWhenSessionsInUseReachMax) {
  PoolPolicy p(Config(16, 16, 20, 4));
  EXPECT_FALSE(p.AtLimit(16, 0));   // 16 in use < 20: may still grow
  EXPECT_FALSE(p.AtLimit(32, 13));  // 19 in use
  EXPECT(p.AtLimit(32, 12));        // 20 in use: at the limit with free slots left
  EXPECT(p.AtLimit(32, 0));
}

TEST(ShrinkOnlyAfterIdleTicks) {
  PoolPolicy p(Config(4, 4, 100, 1, /*idle_ticks=*/3));
  // 16 slots, all free, initial 4: a candidate for shrinking, but only
  // after three quiet ticks.
  EXPECT_FALSE(p.TickShouldShrink(16, 16));
  EXPECT_FALSE(p.TickShouldShrink(16, 16));
  EXPECT_FALSE(p.TickShouldShrink(16, 16));
  EXPECT(p.TickShouldShrink(16, 16));
  EXPECT(p.TickShouldShrink(12, 12));  // one chunk per tick, every tick after
}

TEST(NeverShrinksToOrBelowInitial) {
  PoolPolicy p(Config(8, 4, 100, 1, 0));
  EXPECT_FALSE(p.TickShouldShrink(8, 8));
  EXPECT_FALSE(p.TickShouldShrink(4, 4));
  EXPECT(p.TickShouldShrink(12, 12));
}

TEST(ShrinkNeedsTwoFreeChunks) {
  PoolPolicy p(Config(4, 4, 100, 1, 0));
  EXPECT_FALSE(p.TickShouldShrink(16, 7));  // less than two chunks free
  EXPECT(p.TickShouldShrink(16, 8));
}

TEST(NotePressureRestartsTheIdleCountdown) {
  PoolPolicy p(Config(4, 4, 100, 1, 2));
  EXPECT_FALSE(p.TickShouldShrink(16, 16));
  EXPECT_FALSE(p.TickShouldShrink(16, 16));
  EXPECT(p.TickShouldShrink(16, 16));
  p.NotePressure();
  EXPECT_FALSE(p.TickShouldShrink(16, 16));
  EXPECT_FALSE(p.TickShouldShrink(16, 16));
  EXPECT(p.TickShouldShrink(16, 16));
}

int main(int argc, char** argv) { return acceptpool_test::RunAll(argc, argv); }
