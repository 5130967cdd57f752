// The engine's deadline facility: one deadline per slot, earliest first.
#include "core/deadline_heap.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "test_main.h"

using namespace acceptpool;

TEST(EmptyHeapHasNoDeadline) {
  DeadlineHeap heap;
  ASSERT(heap.Resize(8));
  EXPECT_EQ(heap.Next(), DeadlineHeap::kNever);
  uint32_t slot = 99;
  EXPECT_FALSE(heap.PopDue(~0ull - 1, &slot));
  EXPECT_EQ(slot, 99u);
  EXPECT_FALSE(heap.Scheduled(3));
}

TEST(PopsOnlyWhatIsDueEarliestFirst) {
  DeadlineHeap heap;
  ASSERT(heap.Resize(8));
  heap.Set(5, 300);
  heap.Set(1, 100);
  heap.Set(7, 200);
  EXPECT_EQ(heap.Next(), 100u);
  uint32_t slot = 0;
  EXPECT_FALSE(heap.PopDue(99, &slot));
  ASSERT(heap.PopDue(250, &slot));
  EXPECT_EQ(slot, 1u);
  ASSERT(heap.PopDue(250, &slot));
  EXPECT_EQ(slot, 7u);
  EXPECT_FALSE(heap.PopDue(250, &slot));
  EXPECT_FALSE(heap.Scheduled(1));
  EXPECT(heap.Scheduled(5));
  EXPECT_EQ(heap.DueOf(5), 300u);
  EXPECT_EQ(heap.size(), 1u);
}

TEST(SetReplacesASlotsDeadlineEarlierOrLater) {
  DeadlineHeap heap;
  ASSERT(heap.Resize(4));
  heap.Set(0, 100);
  heap.Set(1, 200);
  heap.Set(2, 300);
  heap.Set(2, 50);  // earlier: now first
  EXPECT_EQ(heap.Next(), 50u);
  heap.Set(2, 400);  // later: last
  EXPECT_EQ(heap.Next(), 100u);
  EXPECT_EQ(heap.size(), 3u);
  std::vector<uint32_t> order;
  uint32_t slot;
  while (heap.PopDue(1000, &slot)) order.push_back(slot);
  EXPECT((order == std::vector<uint32_t>{0, 1, 2}));
}

TEST(CancelAnywhereKeepsTheRestInOrder) {
  DeadlineHeap heap;
  ASSERT(heap.Resize(16));
  for (uint32_t i = 0; i < 16; ++i) heap.Set(i, 1000 - i * 10);
  heap.Cancel(15);  // the earliest
  heap.Cancel(0);   // the latest
  heap.Cancel(7);   // one in the middle
  heap.Cancel(7);   // twice is harmless
  EXPECT_EQ(heap.size(), 13u);
  uint64_t last = 0;
  uint32_t slot;
  size_t n = 0;
  while (heap.PopDue(~0ull - 1, &slot)) {
    EXPECT(slot != 15 && slot != 0 && slot != 7);
    EXPECT(1000 - slot * 10 >= last);
    last = 1000 - slot * 10;
    ++n;
  }
  EXPECT_EQ(n, 13u);
}

TEST(ResizeKeepsDeadlinesAndSlotsOutsideAreIgnored) {
  DeadlineHeap heap;
  ASSERT(heap.Resize(2));
  heap.Set(1, 10);
  heap.Set(5, 5);  // beyond the table: ignored, not a crash
  EXPECT_EQ(heap.size(), 1u);
  ASSERT(heap.Resize(64));
  ASSERT(heap.Resize(8));  // never shrinks
  EXPECT_EQ(heap.slots(), 64u);
  heap.Set(40, 3);
  EXPECT_EQ(heap.Next(), 3u);
  EXPECT_EQ(heap.DueOf(1), 10u);
}

TEST(TiesPopOneAtATime) {
  DeadlineHeap heap;
  ASSERT(heap.Resize(4));
  for (uint32_t i = 0; i < 4; ++i) heap.Set(i, 42);
  std::set<uint32_t> seen;
  uint32_t slot;
  while (heap.PopDue(42, &slot)) seen.insert(slot);
  EXPECT_EQ(seen.size(), 4u);
}

// A randomised hammer against a reference model: after every operation the
// earliest deadline and every slot's deadline agree, and popping yields
// deadlines in order.
TEST(RandomOperationsMatchAReferenceModel) {
  constexpr uint32_t kSlots = 512;
  DeadlineHeap heap;
  ASSERT(heap.Resize(kSlots));
  std::map<uint32_t, uint64_t> model;
  std::mt19937_64 rng(12345);
  uint64_t now = 0;
  for (int step = 0; step < 20000; ++step) {
    uint32_t slot = static_cast<uint32_t>(rng() % kSlots);
    switch (rng() % 4) {
      case 0:
      case 1: {
        uint64_t due = now + rng() % 10000;
        heap.Set(slot, due);
        model[slot] = due;
        break;
      }
      case 2:
        heap.Cancel(slot);
        model.erase(slot);
        break;
      case 3: {
        now += rng() % 200;
        uint64_t previous = 0;
        uint32_t popped;
        while (heap.PopDue(now, &popped)) {
          auto it = model.find(popped);
          ASSERT(it != model.end());
          ASSERT(it->second <= now);
          ASSERT(it->second >= previous);
          previous = it->second;
          model.erase(it);
        }
        for (const auto& [s, due] : model) ASSERT(due > now);
        break;
      }
    }
    ASSERT_EQ(heap.size(), model.size());
    uint64_t earliest = DeadlineHeap::kNever;
    for (const auto& [s, due] : model) earliest = std::min(earliest, due);
    ASSERT_EQ(heap.Next(), earliest);
    ASSERT_EQ(heap.DueOf(slot), model.count(slot) != 0 ? model[slot] : DeadlineHeap::kNever);
  }
}

int main(int argc, char** argv) { return acceptpool_test::RunAll(argc, argv); }
