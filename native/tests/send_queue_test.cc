// Send queues and their block pool: bytes come out exactly as they went in,
// whatever the block boundaries, and failures append nothing.
#include "core/send_queue.h"

#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "test_main.h"

using namespace acceptpool;

#if defined(ACCEPTPOOL_TEST_WRAP_MALLOC)
// Linked with --wrap=malloc: calls to malloc from the core library (the block
// pool's allocator) and from this file come here. While fail_mallocs_after >=
// 0, that many more allocations succeed and then they fail.
namespace {
long fail_mallocs_after = -1;
}
extern "C" void* __real_malloc(size_t size);
extern "C" void* __wrap_malloc(size_t size) {
  if (fail_mallocs_after == 0) return nullptr;
  if (fail_mallocs_after > 0) --fail_mallocs_after;
  return __real_malloc(size);
}
struct FailMallocsAfter {
  explicit FailMallocsAfter(long n) { fail_mallocs_after = n; }
  ~FailMallocsAfter() { fail_mallocs_after = -1; }
};
#endif

namespace {

constexpr size_t kBlock = SendBlock::kBytes;

// Everything queued, gathered through Peek.
std::string Contents(const SendQueue& q) {
  IoSlice slices[256];
  int n = q.Peek(slices, 256);
  std::string out;
  for (int i = 0; i < n; ++i) out.append(slices[i].data, slices[i].size);
  return out;
}

std::string Pattern(size_t size, uint32_t seed) {
  std::string s(size, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < size; ++i) {
    x = x * 1103515245u + 12345u;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

}  // namespace

TEST(BlockFitsInSixteenKilobytes) { EXPECT_EQ(sizeof(SendBlock), 16u * 1024u); }

TEST(EmptyQueueHoldsNoBlocks) {
  BlockPool pool;
  SendQueue q;
  EXPECT(q.empty());
  EXPECT_EQ(q.bytes(), 0u);
  IoSlice slices[4];
  EXPECT_EQ(q.Peek(slices, 4), 0);
  EXPECT(q.Append(pool, "", 0));
  EXPECT_EQ(pool.allocated(), 0u);
  EXPECT(q.empty());
}

TEST(AppendThenPeekReturnsTheSameBytes) {
  BlockPool pool;
  SendQueue q;
  std::string a = Pattern(100, 1);
  ASSERT(q.Append(pool, a.data(), a.size()));
  EXPECT_EQ(q.bytes(), 100u);
  EXPECT_EQ(Contents(q), a);
  EXPECT_EQ(pool.allocated(), 1u);
  q.Clear(pool);
}

TEST(AppendExactlyOneBlockThenOneByteUsesTwoBlocks) {
  BlockPool pool;
  SendQueue q;
  std::string a = Pattern(kBlock, 2);
  ASSERT(q.Append(pool, a.data(), a.size()));
  EXPECT_EQ(pool.allocated(), 1u);
  ASSERT(q.Append(pool, "x", 1));
  EXPECT_EQ(pool.allocated(), 2u);
  IoSlice slices[4];
  EXPECT_EQ(q.Peek(slices, 4), 2);
  EXPECT_EQ(slices[0].size, kBlock);
  EXPECT_EQ(slices[1].size, 1u);
  EXPECT_EQ(Contents(q), a + "x");
  q.Clear(pool);
}

TEST(LargeAppendSpansBlocksAndFillsTailFirst) {
  BlockPool pool;
  SendQueue q;
  std::string a = Pattern(10, 3);
  std::string b = Pattern(3 * kBlock + 17, 4);
  ASSERT(q.Append(pool, a.data(), a.size()));
  ASSERT(q.Append(pool, b.data(), b.size()));
  // 10 + 3 blocks + 17 bytes = exactly 4 blocks when the tail is filled first.
  EXPECT_EQ(pool.allocated(), 4u);
  EXPECT_EQ(q.bytes(), a.size() + b.size());
  EXPECT_EQ(Contents(q), a + b);
  q.Clear(pool);
}

TEST(PeekStopsAtMaxSlices) {
  BlockPool pool;
  SendQueue q;
  std::string a = Pattern(5 * kBlock, 5);
  ASSERT(q.Append(pool, a.data(), a.size()));
  IoSlice slices[2];
  EXPECT_EQ(q.Peek(slices, 2), 2);
  EXPECT(std::memcmp(slices[0].data, a.data(), kBlock) == 0);
  EXPECT(std::memcmp(slices[1].data, a.data() + kBlock, kBlock) == 0);
  q.Clear(pool);
}

TEST(ConsumeAcrossBlockBoundariesKeepsTheRestExact) {
  BlockPool pool;
  SendQueue q;
  std::string a = Pattern(3 * kBlock + 100, 6);
  ASSERT(q.Append(pool, a.data(), a.size()));
  q.Consume(pool, kBlock - 1);
  EXPECT_EQ(Contents(q), a.substr(kBlock - 1));
  q.Consume(pool, 2);  // crosses into the second block
  EXPECT_EQ(Contents(q), a.substr(kBlock + 1));
  EXPECT_EQ(pool.spare(), 1u);  // the first block went back to the pool
  q.Consume(pool, 2 * kBlock);
  EXPECT_EQ(Contents(q), a.substr(3 * kBlock + 1));
  EXPECT_EQ(q.bytes(), 99u);
  q.Consume(pool, 1000);  // more than queued: everything, no more
  EXPECT(q.empty());
  EXPECT_EQ(Contents(q), std::string());
  // All four blocks are back in the pool.
  EXPECT_EQ(pool.spare(), pool.allocated());
}

TEST(AppendAfterPartialConsumeKeepsOrder) {
  BlockPool pool;
  SendQueue q;
  std::string a = Pattern(kBlock - 10, 7);
  ASSERT(q.Append(pool, a.data(), a.size()));
  q.Consume(pool, a.size() - 5);
  std::string b = Pattern(50, 8);
  ASSERT(q.Append(pool, b.data(), b.size()));
  EXPECT_EQ(Contents(q), a.substr(a.size() - 5) + b);
  q.Clear(pool);
}

TEST(RandomAppendsAndConsumesMatchAStringModel) {
  BlockPool pool;
  SendQueue q;
  std::string model;
  std::mt19937 rng(12345);
  uint32_t seed = 100;
  for (int round = 0; round < 3000; ++round) {
    int op = static_cast<int>(rng() % 10);
    if (op < 5) {
      // Sizes from tiny to several blocks.
      size_t size = (rng() % 4 == 0) ? rng() % (3 * kBlock) : rng() % 700;
      std::string data = Pattern(size, seed++);
      if (!EXPECT(q.Append(pool, data.data(), data.size()))) break;
      model += data;
    } else if (op < 9) {
      size_t size = model.empty() ? 0 : rng() % (model.size() + 1);
      if (rng() % 8 == 0) size = model.size() + 5;  // over-consume
      q.Consume(pool, size);
      model.erase(0, std::min(size, model.size()));
    } else {
      // Sent in the sizes the slices describe, like a writev that finishes
      // exactly at a slice boundary.
      IoSlice slices[3];
      int n = q.Peek(slices, 3);
      size_t total = 0;
      for (int i = 0; i < n; ++i) total += slices[i].size;
      q.Consume(pool, total);
      model.erase(0, total);
    }
    if (!EXPECT_EQ(q.bytes(), model.size())) break;
    if (round % 7 == 0 || model.size() < 5000) {
      if (!EXPECT_EQ(Contents(q), model)) break;
    }
    IoSlice one[1];
    if (!model.empty()) {
      // The head slice is never empty and starts with the model's head.
      if (!EXPECT_EQ(q.Peek(one, 1), 1)) break;
      EXPECT(one[0].size > 0);
      EXPECT(std::memcmp(one[0].data, model.data(), std::min(one[0].size, model.size())) == 0);
    } else {
      EXPECT_EQ(q.Peek(one, 1), 0);
    }
  }
  // The queue never holds more blocks than its bytes need, plus one.
  q.Clear(pool);
  EXPECT_EQ(pool.spare(), pool.allocated());
}

TEST(ClearReturnsEveryBlockToThePool) {
  BlockPool pool;
  SendQueue q;
  std::string a = Pattern(4 * kBlock + 1, 9);
  ASSERT(q.Append(pool, a.data(), a.size()));
  EXPECT_EQ(pool.allocated(), 5u);
  EXPECT_EQ(pool.spare(), 0u);
  q.Clear(pool);
  EXPECT(q.empty());
  EXPECT_EQ(q.bytes(), 0u);
  EXPECT_EQ(pool.spare(), 5u);
  EXPECT_EQ(pool.allocated(), 5u);
  // Blocks are reused, not allocated again.
  ASSERT(q.Append(pool, a.data(), a.size()));
  EXPECT_EQ(pool.allocated(), 5u);
  EXPECT_EQ(pool.spare(), 0u);
  EXPECT_EQ(Contents(q), a);
  q.Clear(pool);
}

TEST(TrimFreesSpareBlocksBeyondKeep) {
  BlockPool pool;
  SendQueue q;
  std::string a = Pattern(6 * kBlock, 10);
  ASSERT(q.Append(pool, a.data(), a.size()));
  q.Clear(pool);
  EXPECT_EQ(pool.spare(), 6u);
  pool.Trim(2);
  EXPECT_EQ(pool.spare(), 2u);
  EXPECT_EQ(pool.allocated(), 2u);
  pool.Trim(5);  // keep more than there are: nothing happens
  EXPECT_EQ(pool.spare(), 2u);
  pool.Trim(0);
  EXPECT_EQ(pool.spare(), 0u);
  EXPECT_EQ(pool.allocated(), 0u);
}

TEST(TrimIdleFreesOnlyBlocksNoSendNeededAllPeriod) {
  BlockPool pool;
  SendQueue q;
  std::string burst = Pattern(8 * kBlock, 12);
  ASSERT(q.Append(pool, burst.data(), burst.size()));
  q.Clear(pool);
  // The period of the burst: every block was in use at some point.
  EXPECT_EQ(pool.TrimIdle(), 0u);
  EXPECT_EQ(pool.allocated(), 8u);
  // Steady traffic that needs three blocks at its peak keeps them...
  std::string steady = Pattern(3 * kBlock, 13);
  ASSERT(q.Append(pool, steady.data(), steady.size()));
  q.Clear(pool);
  EXPECT_EQ(pool.TrimIdle(), 5 * sizeof(SendBlock));
  EXPECT_EQ(pool.allocated(), 3u);
  for (int period = 0; period < 3; ++period) {
    ASSERT(q.Append(pool, steady.data(), steady.size()));
    q.Clear(pool);
    EXPECT_EQ(pool.TrimIdle(), 0u);
    EXPECT_EQ(pool.allocated(), 3u);  // ...and allocates nothing
  }
  // ...and an idle period frees them all.
  EXPECT_EQ(pool.TrimIdle(), 3 * sizeof(SendBlock));
  EXPECT_EQ(pool.allocated(), 0u);
}

TEST(TrimNeverTouchesBlocksInUse) {
  BlockPool pool;
  SendQueue q;
  std::string a = Pattern(2 * kBlock, 11);
  ASSERT(q.Append(pool, a.data(), a.size()));
  pool.Trim(0);
  EXPECT_EQ(pool.allocated(), 2u);
  EXPECT_EQ(Contents(q), a);
  q.Clear(pool);
}

TEST(GetReturnsResetBlocks) {
  BlockPool pool;
  SendBlock* b = pool.Get();
  ASSERT(b != nullptr);
  b->begin = 5;
  b->end = 9;
  b->next = b;
  pool.Put(b);
  SendBlock* again = pool.Get();
  EXPECT(again == b);
  EXPECT_EQ(again->begin, 0u);
  EXPECT_EQ(again->end, 0u);
  EXPECT(again->next == nullptr);
  pool.Put(again);
}

#if defined(ACCEPTPOOL_TEST_WRAP_MALLOC)
TEST(FailedAppendLeavesQueueUnchanged) {
  BlockPool pool;
  SendQueue q;
  std::string a = Pattern(kBlock - 100, 12);
  ASSERT(q.Append(pool, a.data(), a.size()));
  size_t allocated = pool.allocated();
  std::string big = Pattern(3 * kBlock, 13);
  {
    // Two of the three new blocks can be had, the third cannot.
    FailMallocsAfter fail(2);
    EXPECT_FALSE(q.Append(pool, big.data(), big.size()));
  }
  EXPECT_EQ(q.bytes(), a.size());
  EXPECT_EQ(Contents(q), a);
  // The two blocks it did get are spare in the pool, not leaked or queued.
  EXPECT_EQ(pool.allocated(), allocated + 2);
  EXPECT_EQ(pool.spare(), 2u);
  // And the queue still works: the same append succeeds now.
  ASSERT(q.Append(pool, big.data(), big.size()));
  EXPECT_EQ(Contents(q), a + big);
  q.Clear(pool);
}

TEST(FailedAppendIntoEmptyQueueLeavesItEmpty) {
  BlockPool pool;
  SendQueue q;
  std::string big = Pattern(kBlock + 1, 14);
  {
    FailMallocsAfter fail(0);
    EXPECT_FALSE(q.Append(pool, big.data(), big.size()));
  }
  EXPECT(q.empty());
  IoSlice slices[2];
  EXPECT_EQ(q.Peek(slices, 2), 0);
  EXPECT_EQ(pool.allocated(), 0u);
  ASSERT(q.Append(pool, "ok", 2));
  EXPECT_EQ(Contents(q), std::string("ok"));
  q.Clear(pool);
}

TEST(AppendThatFitsTheTailNeedsNoAllocation) {
  BlockPool pool;
  SendQueue q;
  ASSERT(q.Append(pool, "abc", 3));
  {
    FailMallocsAfter fail(0);
    EXPECT(q.Append(pool, "def", 3));
  }
  EXPECT_EQ(Contents(q), std::string("abcdef"));
  q.Clear(pool);
}

TEST(GetReturnsNullWhenMemoryRunsOut) {
  BlockPool pool;
  FailMallocsAfter fail(0);
  EXPECT(pool.Get() == nullptr);
  EXPECT_EQ(pool.allocated(), 0u);
}
#endif

int main(int argc, char** argv) { return acceptpool_test::RunAll(argc, argv); }
