// The session table: ids, slots, generations, growth and shrink.
#include "core/session_table.h"

#include <cstring>
#include <memory>
#include <set>
#include <vector>

#include "test_main.h"

using namespace acceptpool;

namespace {

constexpr uint64_t kJsSafeLimit = 1ull << 53;

}  // namespace

TEST(IdPacksSlotAndGenerationAndUnpacksThem) {
  SessionId id = MakeSessionId(12345, 678);
  EXPECT_EQ(SlotOf(id), 12345u);
  EXPECT_EQ(GenerationOf(id), 678u);
  EXPECT_EQ(id, static_cast<uint64_t>(678) * (1ull << 24) + 12345u);
}

TEST(LargestIdStaysBelowTwoToThe53) {
  SessionId id = MakeSessionId(kMaxSlots - 1, kGenerationLimit - 1);
  EXPECT(id < kJsSafeLimit);
  // ... and survives the round trip through a double, as it does in JS.
  EXPECT_EQ(static_cast<SessionId>(static_cast<double>(id)), id);
  EXPECT_EQ(SlotOf(id), kMaxSlots - 1);
  EXPECT_EQ(GenerationOf(id), kGenerationLimit - 1);
}

TEST(TablesOfSeveralThreadsInterleaveTheirIdsAndRefuseEachOthers) {
  // Three engines' tables: their ids never collide, name their thread, and
  // are dense from 0 (JS keeps sessions in an array by id slot).
  constexpr uint32_t kThreads = 3;
  std::vector<std::unique_ptr<SessionTable>> tables;
  for (uint32_t t = 0; t < kThreads; ++t) {
    tables.push_back(std::make_unique<SessionTable>(4, 1, kMaxSlots, IdSpace{t, kThreads}));
    ASSERT(tables.back()->Grow());
    ASSERT(tables.back()->Grow());
  }
  std::set<uint32_t> id_slots;
  std::vector<SessionId> ids;
  for (uint32_t t = 0; t < kThreads; ++t) {
    for (int i = 0; i < 8; ++i) {
      Session* s = tables[t]->Acquire();
      ASSERT(s != nullptr);
      EXPECT_EQ(ThreadOf(s->id(), kThreads), t);
      EXPECT(tables[t]->Lookup(s->id()) == s);
      EXPECT(tables[t]->AtSlot(s->slot) == s);
      // The backend's ext bytes are the slot's own, not a neighbour's.
      EXPECT(tables[t]->Ext(*s) == tables[t]->Ext(*tables[t]->AtSlot(s->slot)));
      id_slots.insert(s->slot);
      ids.push_back(s->id());
    }
  }
  EXPECT_EQ(id_slots.size(), 24u);
  EXPECT_EQ(*id_slots.rbegin(), 23u);  // dense: 0 .. 23
  // Each table refuses the ids of the others, whatever their generation.
  for (SessionId id : ids) {
    for (uint32_t t = 0; t < kThreads; ++t) {
      if (t != ThreadOf(id, kThreads)) EXPECT(tables[t]->Lookup(id) == nullptr);
    }
    EXPECT(tables[0]->SetGenerationForTesting(SlotOf(id), 5) == false);
  }
  // A released slot comes back on its own thread with a new generation.
  Session* s = tables[1]->Lookup(ids[8]);
  ASSERT(s != nullptr);
  uint32_t slot = s->slot;
  tables[1]->Release(s);
  EXPECT(tables[1]->Lookup(ids[8]) == nullptr);
  Session* again = tables[1]->Acquire();
  ASSERT(again != nullptr);
  EXPECT_EQ(again->slot, slot);
  EXPECT(again->id() != ids[8]);
  // Slots whose id would pass kSlotBits do not exist on any thread.
  SessionTable last(1, 0, kMaxSlots, IdSpace{kThreads - 1, kThreads});
  EXPECT(last.SetGenerationForTesting(kMaxSlots / kThreads * kThreads - 1, 2));
  EXPECT(!last.SetGenerationForTesting(kMaxSlots / kThreads * kThreads + kThreads - 1, 2));
}

TEST(NewTableHasNoSlotsUntilItGrows) {
  SessionTable table(4, 0);
  EXPECT_EQ(table.capacity(), 0u);
  EXPECT_EQ(table.free_slots(), 0u);
  EXPECT(table.Acquire() == nullptr);
  EXPECT(table.Lookup(MakeSessionId(0, 1)) == nullptr);
  EXPECT(table.AtSlot(0) == nullptr);
}

TEST(AcquireTakesFromTheLowestChunkWithAFreeSlot) {
  SessionTable table(4, 0);
  ASSERT(table.Grow());
  ASSERT(table.Grow());
  for (uint32_t i = 0; i < 8; ++i) {
    Session* s = table.Acquire();
    ASSERT(s != nullptr);
    EXPECT_EQ(s->slot, i);
    EXPECT(s->state == SessionState::kOpen);
  }
  EXPECT(table.Acquire() == nullptr);
  // Free 6, 2, 5 in that order: chunk 0's slot comes back first, then
  // chunk 1's two (in either order: within a chunk the free list is LIFO).
  table.Release(table.AtSlot(6));
  table.Release(table.AtSlot(2));
  table.Release(table.AtSlot(5));
  EXPECT_EQ(table.Acquire()->slot, 2u);
  uint32_t x = table.Acquire()->slot;
  uint32_t y = table.Acquire()->slot;
  EXPECT((x == 5u && y == 6u) || (x == 6u && y == 5u));
  EXPECT(table.Acquire() == nullptr);
}

TEST(SlotsInUseDoNotComeBackBeforeRelease) {
  SessionTable table(3, 0);
  ASSERT(table.Grow());
  ASSERT(table.Grow());
  std::set<uint32_t> seen;
  for (int i = 0; i < 6; ++i) {
    Session* s = table.Acquire();
    ASSERT(s != nullptr);
    EXPECT(seen.insert(s->slot).second);
  }
}

TEST(AcquireStaysLowestFirstAfterGrowthWhileLowerChunkIsFull) {
  // The lowest chunk is full, the next one still has a free slot, and the
  // table grows: that free slot must still be found (and found first).
  SessionTable table(4, 0);
  ASSERT(table.Grow());
  ASSERT(table.Grow());
  for (int i = 0; i < 7; ++i) ASSERT(table.Acquire() != nullptr);  // slots 0..6
  table.Release(table.AtSlot(0));
  Session* again = table.Acquire();  // refills chunk 0
  ASSERT(again != nullptr);
  EXPECT_EQ(again->slot, 0u);
  ASSERT(table.Grow());  // chunk 2; slot 7 is still free in chunk 1
  EXPECT_EQ(table.free_slots(), 5u);
  Session* next = table.Acquire();
  ASSERT(next != nullptr);
  // Chunk 1 before chunk 2. (If slot 7 was skipped, stop here: taking the
  // rest would run Acquire past the last chunk.)
  ASSERT_EQ(next->slot, 7u);
  // Every free slot must stay reachable: take them all.
  uint32_t taken = 1;
  while (table.free_slots() > 0) {
    Session* s = table.Acquire();
    if (!EXPECT(s != nullptr)) break;
    ++taken;
  }
  EXPECT_EQ(taken, 5u);
  EXPECT_EQ(table.in_use(), 12u);
}

TEST(LookupFindsOpenAndClosingSessionsOnly) {
  SessionTable table(2, 0);
  ASSERT(table.Grow());
  Session* s = table.Acquire();
  ASSERT(s != nullptr);
  SessionId id = s->id();
  EXPECT(table.Lookup(id) == s);
  s->state = SessionState::kClosing;
  EXPECT(table.Lookup(id) == s);
  s->state = SessionState::kReleasing;
  EXPECT(table.Lookup(id) == nullptr);
  // Out of range slots are refused, not read.
  EXPECT(table.Lookup(MakeSessionId(2, 1)) == nullptr);
  EXPECT(table.Lookup(MakeSessionId(kMaxSlots - 1, 1)) == nullptr);
}

TEST(LookupTakenAlsoFindsReleasingSessionsButNoEarlierOccupant) {
  SessionTable table(2, 0);
  ASSERT(table.Grow());
  Session* s = table.Acquire();
  ASSERT(s != nullptr);
  SessionId id = s->id();
  for (SessionState state : {SessionState::kConnecting, SessionState::kOpen, SessionState::kClosing,
                             SessionState::kLingering, SessionState::kReleasing}) {
    s->state = state;
    EXPECT(table.LookupTaken(id) == s);
  }
  table.Release(s);
  // The slot is free: neither the old tag nor one with its new generation.
  EXPECT(table.LookupTaken(id) == nullptr);
  EXPECT(table.LookupTaken(MakeSessionId(s->slot, s->generation)) == nullptr);
  Session* next = table.Acquire();
  ASSERT(next == s);
  next->state = SessionState::kReleasing;
  EXPECT(table.LookupTaken(id) == nullptr);  // a tag from the earlier occupant
  EXPECT(table.LookupTaken(next->id()) == next);
  EXPECT(table.LookupTaken(MakeSessionId(2, 1)) == nullptr);
  EXPECT(table.LookupTaken(MakeSessionId(kMaxSlots - 1, 1)) == nullptr);
  // Tags that are not session ids (a backend's own, at the top of the range).
  EXPECT(table.LookupTaken(~0ull) == nullptr);
}

TEST(ReleaseBumpsGenerationAndStaleLookupReturnsNull) {
  SessionTable table(4, 0);
  ASSERT(table.Grow());
  Session* s = table.Acquire();
  ASSERT(s != nullptr);
  SessionId first = s->id();
  EXPECT_EQ(GenerationOf(first), 1u);
  table.Release(s);
  EXPECT(table.Lookup(first) == nullptr);
  Session* again = table.Acquire();
  ASSERT(again == s);  // same slot, new occupant
  SessionId second = again->id();
  EXPECT_NE(second, first);
  EXPECT_EQ(SlotOf(second), SlotOf(first));
  EXPECT_EQ(GenerationOf(second), 2u);
  EXPECT(table.Lookup(first) == nullptr);
  EXPECT(table.Lookup(second) == again);
}

TEST(FreeSlotIdIsRefusedEvenWithCurrentGeneration) {
  SessionTable table(4, 0);
  ASSERT(table.Grow());
  // Slot 3 was never taken; its current generation is 1.
  EXPECT(table.Lookup(MakeSessionId(3, 1)) == nullptr);
  EXPECT(table.Lookup(MakeSessionId(3, 0)) == nullptr);
}

TEST(GenerationsSurviveShrinkAndRegrowth) {
  SessionTable table(4, 0);
  ASSERT(table.Grow());
  ASSERT(table.Grow());
  std::vector<SessionId> old_ids;
  std::vector<Session*> taken;
  for (int i = 0; i < 8; ++i) {
    Session* s = table.Acquire();
    ASSERT(s != nullptr);
    old_ids.push_back(s->id());
    taken.push_back(s);
  }
  for (Session* s : taken) table.Release(s);
  EXPECT(table.ShrinkTop());
  EXPECT_EQ(table.capacity(), 4u);
  ASSERT(table.Grow());
  EXPECT_EQ(table.capacity(), 8u);
  // The regrown chunk's slots remember their generations.
  for (SessionId id : old_ids) EXPECT(table.Lookup(id) == nullptr);
  std::set<SessionId> new_ids;
  for (int i = 0; i < 8; ++i) {
    Session* s = table.Acquire();
    ASSERT(s != nullptr);
    EXPECT_EQ(s->generation, 2u);
    new_ids.insert(s->id());
  }
  for (SessionId id : old_ids) {
    EXPECT(new_ids.count(id) == 0);
    EXPECT(table.Lookup(id) == nullptr);
  }
}

TEST(ShrinkTopOnlyWhenTopChunkIsWhollyFree) {
  SessionTable table(4, 0);
  ASSERT(table.Grow());
  ASSERT(table.Grow());
  for (int i = 0; i < 5; ++i) ASSERT(table.Acquire() != nullptr);  // slot 4 is in the top chunk
  EXPECT_FALSE(table.ShrinkTop());
  EXPECT_EQ(table.capacity(), 8u);
  table.Release(table.AtSlot(4));
  EXPECT(table.ShrinkTop());
  EXPECT_EQ(table.capacity(), 4u);
  EXPECT_EQ(table.free_slots(), 0u);
  EXPECT_FALSE(table.ShrinkTop());  // chunk 0 is full
  EXPECT(table.AtSlot(4) == nullptr);
}

TEST(ShrinkToNothingThenGrowAgain) {
  SessionTable table(3, 0);
  ASSERT(table.Grow());
  Session* s = table.Acquire();
  ASSERT(s != nullptr);
  SessionId id = s->id();
  table.Release(s);
  EXPECT(table.ShrinkTop());
  EXPECT_EQ(table.capacity(), 0u);
  EXPECT(table.Acquire() == nullptr);
  ASSERT(table.Grow());
  Session* again = table.Acquire();
  ASSERT(again != nullptr);
  EXPECT_EQ(again->slot, 0u);
  EXPECT_EQ(again->generation, 2u);
  EXPECT(table.Lookup(id) == nullptr);
}

TEST(TheLastGenerationRetiresTheSlotInsteadOfWrapping) {
  SessionTable table(4, 0);
  // Pretend slot 0 has had 2^29 - 3 occupants.
  ASSERT(table.SetGenerationForTesting(0, kGenerationLimit - 2));
  ASSERT(table.Grow());
  Session* s = table.Acquire();
  ASSERT(s != nullptr);
  EXPECT_EQ(s->slot, 0u);
  SessionId before_last = s->id();
  table.Release(s);
  s = table.Acquire();
  ASSERT(s != nullptr);
  EXPECT_EQ(s->slot, 0u);
  SessionId last = s->id();
  EXPECT_EQ(GenerationOf(last), kGenerationLimit - 1);
  EXPECT(last < kJsSafeLimit);
  table.Release(s);
  EXPECT(s->state == SessionState::kRetired);
  EXPECT_EQ(table.retired_total(), 1u);
  // Refused, whatever generation an id names.
  EXPECT(table.Lookup(before_last) == nullptr);
  EXPECT(table.Lookup(last) == nullptr);
  EXPECT(table.Lookup(MakeSessionId(0, 1)) == nullptr);
  EXPECT(table.Lookup(MakeSessionId(0, 0)) == nullptr);
  EXPECT(table.LookupTaken(last) == nullptr);
  // Not even an id that names the retired generation itself.
  EXPECT(table.Lookup(MakeSessionId(0, kRetiredGeneration)) == nullptr);
  EXPECT(table.LookupTaken(MakeSessionId(0, kRetiredGeneration)) == nullptr);
  // Not capacity, not free, not in use; never handed out again.
  EXPECT_EQ(table.slots(), 4u);
  EXPECT_EQ(table.capacity(), 3u);
  EXPECT_EQ(table.free_slots(), 3u);
  EXPECT_EQ(table.in_use(), 0u);
  std::set<uint32_t> slots;
  for (int i = 0; i < 3; ++i) slots.insert(table.Acquire()->slot);
  EXPECT(slots == (std::set<uint32_t>{1, 2, 3}));
  EXPECT(table.Acquire() == nullptr);
  int visited = 0;
  table.ForEachLive([&](Session& live) {
    ++visited;
    EXPECT(live.slot != 0u);
  });
  EXPECT_EQ(visited, 3);
  EXPECT_FALSE(table.SetGenerationForTesting(0, 5));  // retired for good
}

TEST(ARetiredSlotStaysRetiredThroughShrinkAndRegrowth) {
  SessionTable table(4, 0);
  ASSERT(table.Grow());
  ASSERT(table.Grow());
  ASSERT(table.SetGenerationForTesting(5, kGenerationLimit - 1));
  std::vector<Session*> taken;
  for (int i = 0; i < 8; ++i) taken.push_back(table.Acquire());
  SessionId last = taken[5]->id();
  // The top chunk cannot shrink while its other slots are taken...
  table.Release(taken[5]);
  EXPECT_FALSE(table.ShrinkTop());
  for (int i = 4; i < 8; ++i) {
    if (i != 5) table.Release(taken[i]);
  }
  // ... and can once they are free, retired slot and all.
  EXPECT(table.ShrinkTop());
  EXPECT_EQ(table.slots(), 4u);
  EXPECT_EQ(table.capacity(), 4u);
  EXPECT_EQ(table.free_slots(), 0u);
  EXPECT_EQ(table.retired_total(), 1u);
  ASSERT(table.Grow());
  EXPECT_EQ(table.capacity(), 7u);
  EXPECT_EQ(table.free_slots(), 3u);
  EXPECT(table.AtSlot(5)->state == SessionState::kRetired);
  EXPECT(table.Lookup(last) == nullptr);
  std::set<uint32_t> slots;
  for (int i = 0; i < 3; ++i) slots.insert(table.Acquire()->slot);
  EXPECT(slots == (std::set<uint32_t>{4, 6, 7}));
  EXPECT(table.Acquire() == nullptr);
  EXPECT_EQ(table.in_use() + table.free_slots(), table.capacity());
}

TEST(AChunkOfRetiredSlotsAddsNoCapacityAndStillShrinks) {
  SessionTable table(1, 0);
  ASSERT(table.SetGenerationForTesting(0, kGenerationLimit - 1));
  ASSERT(table.Grow());
  table.Release(table.Acquire());
  EXPECT_EQ(table.capacity(), 0u);
  EXPECT(table.Acquire() == nullptr);
  ASSERT(table.Grow());
  EXPECT_EQ(table.capacity(), 1u);
  EXPECT_EQ(table.Acquire()->slot, 1u);
  table.Release(table.AtSlot(1));
  EXPECT(table.ShrinkTop());  // slot 1
  EXPECT(table.ShrinkTop());  // slot 0, retired
  EXPECT_EQ(table.slots(), 0u);
  ASSERT(table.Grow());
  EXPECT_EQ(table.capacity(), 0u);  // slot 0 came back retired
  EXPECT(table.Acquire() == nullptr);
}

TEST(GrowthStopsAtTheSlotLimit) {
  SessionTable table(4, 0, 10);
  ASSERT(table.Grow());
  ASSERT(table.Grow());
  EXPECT(table.CanGrow() == false);  // 12 would pass 10
  EXPECT_FALSE(table.Grow());
  EXPECT_EQ(table.slots(), 8u);
  EXPECT_FALSE(table.SetGenerationForTesting(10, 7));
}

TEST(SetGenerationForTestingRefusesTakenSlotsAndBadGenerations) {
  SessionTable table(2, 0);
  ASSERT(table.Grow());
  Session* s = table.Acquire();
  EXPECT_FALSE(table.SetGenerationForTesting(s->slot, 7));
  EXPECT_FALSE(table.SetGenerationForTesting(1, 0));
  EXPECT_FALSE(table.SetGenerationForTesting(1, kGenerationLimit));
  EXPECT(table.SetGenerationForTesting(1, 7));
  EXPECT_EQ(table.Acquire()->generation, 7u);
  // A slot not allocated yet gets it when its chunk grows.
  EXPECT(table.SetGenerationForTesting(3, 9));
  ASSERT(table.Grow());
  EXPECT_EQ(table.AtSlot(3)->generation, 9u);
  EXPECT_EQ(table.AtSlot(2)->generation, 1u);
}

TEST(ForEachLiveVisitsExactlyTheTakenSlots) {
  SessionTable table(4, 0);
  ASSERT(table.Grow());
  ASSERT(table.Grow());
  ASSERT(table.Grow());
  std::vector<Session*> taken;
  for (int i = 0; i < 10; ++i) taken.push_back(table.Acquire());
  table.Release(taken[1]);
  table.Release(taken[5]);
  table.Release(taken[9]);
  taken[3]->state = SessionState::kReleasing;  // not free yet: still visited
  std::set<uint32_t> seen;
  int calls = 0;
  table.ForEachLive([&](Session& s) {
    ++calls;
    seen.insert(s.slot);
  });
  std::set<uint32_t> expected = {0, 2, 3, 4, 6, 7, 8};
  EXPECT_EQ(calls, 7);
  EXPECT(seen == expected);
}

TEST(CapacityAndFreeCountsAddUp) {
  SessionTable table(5, 0);
  EXPECT_EQ(table.chunk_size(), 5u);
  ASSERT(table.Grow());
  ASSERT(table.Grow());
  EXPECT_EQ(table.capacity(), 10u);
  EXPECT_EQ(table.chunks(), 2u);
  EXPECT_EQ(table.free_slots(), 10u);
  EXPECT_EQ(table.in_use(), 0u);
  std::vector<Session*> taken;
  for (int i = 0; i < 7; ++i) taken.push_back(table.Acquire());
  EXPECT_EQ(table.in_use(), 7u);
  EXPECT_EQ(table.free_slots(), 3u);
  table.Release(taken[2]);
  EXPECT_EQ(table.in_use(), 6u);
  EXPECT_EQ(table.in_use() + table.free_slots(), table.capacity());
}

TEST(ZeroChunkSizeIsTreatedAsOne) {
  SessionTable table(0, 0);
  EXPECT_EQ(table.chunk_size(), 1u);
  ASSERT(table.Grow());
  EXPECT_EQ(table.capacity(), 1u);
}

TEST(AcquireResetsFlagsAndCloseDetails) {
  SessionTable table(1, 0);
  ASSERT(table.Grow());
  Session* s = table.Acquire();
  ASSERT(s != nullptr);
  s->flags = 0xffff;
  s->close_reason = 3;
  s->close_error = 4;
  s->close_raw = 104;
  s->active_ms = 99;
  s->timeout_ms = 7;
  s->timeout_set_ms = 5;
  table.Release(s);
  s = table.Acquire();
  ASSERT(s != nullptr);
  EXPECT_EQ(s->flags, 0u);
  EXPECT_EQ(s->close_reason, 0u);
  EXPECT_EQ(s->close_error, 0u);
  EXPECT_EQ(s->close_raw, 0);
  EXPECT_EQ(s->active_ms, 0u);
  EXPECT_EQ(s->timeout_ms, 0u);
  EXPECT_EQ(s->timeout_set_ms, 0u);
  EXPECT(s->next_pending == nullptr);
  EXPECT_EQ(s->socket, kNoSocket);
}

TEST(ExtBytesAreZeroedAndDistinctPerSlot) {
  constexpr size_t kExt = 40;
  SessionTable table(3, kExt);
  ASSERT(table.Grow());
  ASSERT(table.Grow());
  std::set<void*> seen;
  for (uint32_t slot = 0; slot < 6; ++slot) {
    Session* s = table.AtSlot(slot);
    ASSERT(s != nullptr);
    auto* ext = static_cast<unsigned char*>(table.Ext(*s));
    ASSERT(ext != nullptr);
    for (size_t i = 0; i < kExt; ++i) EXPECT_EQ(ext[i], 0);
    seen.insert(ext);
    std::memset(ext, static_cast<int>(slot + 1), kExt);  // must not bleed into neighbours
  }
  EXPECT_EQ(seen.size(), 6u);
  for (uint32_t slot = 0; slot < 6; ++slot) {
    auto* ext = static_cast<unsigned char*>(table.Ext(*table.AtSlot(slot)));
    for (size_t i = 0; i < kExt; ++i) EXPECT_EQ(ext[i], static_cast<unsigned char>(slot + 1));
  }
  // A regrown chunk's ext bytes are zero again.
  ASSERT(table.ShrinkTop());
  ASSERT(table.Grow());
  auto* ext = static_cast<unsigned char*>(table.Ext(*table.AtSlot(4)));
  for (size_t i = 0; i < kExt; ++i) EXPECT_EQ(ext[i], 0);
}

TEST(NoExtBytesMeansNullExt) {
  SessionTable table(2, 0);
  ASSERT(table.Grow());
  EXPECT(table.Ext(*table.AtSlot(0)) == nullptr);
}

TEST(GrowRefusesAChunkThatWouldPassMaxSlots) {
  SessionTable table(kMaxSlots + 1, 0);
  EXPECT_FALSE(table.Grow());
  EXPECT_EQ(table.capacity(), 0u);
  EXPECT_EQ(table.free_slots(), 0u);
}

int main(int argc, char** argv) { return acceptpool_test::RunAll(argc, argv); }
