// The command queue between the JS thread and an I/O thread. Also run under
// ThreadSanitizer (label "thread").
#include "drivers/command_queue.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "test_main.h"

using namespace acceptpool;

namespace {

Command Send(uint64_t id) {
  Command c{};
  c.kind = CommandKind::kSend;
  c.id = id;
  return c;
}

std::string Payload(const CommandQueue::Side& side, const Command& c) {
  return std::string(side.bytes.data() + c.offset, c.size);
}

// Waits up to `ms` for `flag`; true if it became set.
bool WaitFor(const std::atomic<bool>& flag, int ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (!flag.load()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace

TEST(TakeOnEmptyQueueReturnsFalse) {
  CommandQueue q(1024);
  CommandQueue::Side side;
  EXPECT_FALSE(q.Take(&side));
  EXPECT(side.commands.empty());
}

TEST(PushReportsWhetherQueueWasEmpty) {
  CommandQueue q(1024);
  EXPECT(q.Push(Send(1), "a", 1));
  EXPECT_FALSE(q.Push(Send(2), "b", 1));
  CommandQueue::Side side;
  ASSERT(q.Take(&side));
  side.Clear();
  EXPECT(q.Push(Send(3), "c", 1));  // empty again after Take
}

TEST(CommandsComeOutInPushOrder) {
  CommandQueue q(1 << 20);
  for (uint64_t i = 0; i < 100; ++i) {
    Command c = Send(i);
    c.kind = i % 3 == 0 ? CommandKind::kClose : CommandKind::kSend;
    c.mode = static_cast<uint8_t>(i % 3);
    std::string body = "cmd" + std::to_string(i);
    q.Push(c, body.data(), body.size());
  }
  CommandQueue::Side side;
  ASSERT(q.Take(&side));
  ASSERT_EQ(side.commands.size(), 100u);
  for (uint64_t i = 0; i < 100; ++i) {
    const Command& c = side.commands[i];
    EXPECT_EQ(c.id, i);
    EXPECT(c.kind == (i % 3 == 0 ? CommandKind::kClose : CommandKind::kSend));
    EXPECT_EQ(c.mode, static_cast<uint8_t>(i % 3));
    EXPECT_EQ(Payload(side, c), "cmd" + std::to_string(i));
  }
}

TEST(PayloadIsAThenBAndSizeCountsOnlyA) {
  CommandQueue q(1024);
  uint64_t ids[2] = {0x1122334455ull, 42};
  Command c{};
  c.kind = CommandKind::kBroadcast;
  c.id_count = 2;
  q.Push(c, "hello", 5, ids, sizeof(ids));
  q.Push(Send(9), "zz", 2);
  CommandQueue::Side side;
  ASSERT(q.Take(&side));
  ASSERT_EQ(side.commands.size(), 2u);
  const Command& b = side.commands[0];
  EXPECT_EQ(b.size, 5u);  // the payload proper; the ids follow it
  EXPECT_EQ(Payload(side, b), std::string("hello"));
  uint64_t back[2];
  std::memcpy(back, side.bytes.data() + b.offset + b.size, sizeof(back));
  EXPECT_EQ(back[0], ids[0]);
  EXPECT_EQ(back[1], ids[1]);
  EXPECT_EQ(b.id_count, 2u);
  // The next command's payload starts after a and b.
  EXPECT_EQ(side.commands[1].offset, 5u + sizeof(ids));
  EXPECT_EQ(Payload(side, side.commands[1]), std::string("zz"));
}

TEST(EmptyPayloadIsAllowed) {
  CommandQueue q(16);
  Command c = Send(5);
  c.kind = CommandKind::kShutdown;
  q.Push(c, nullptr, 0);
  CommandQueue::Side side;
  ASSERT(q.Take(&side));
  ASSERT_EQ(side.commands.size(), 1u);
  EXPECT_EQ(side.commands[0].size, 0u);
  EXPECT(side.commands[0].kind == CommandKind::kShutdown);
}

TEST(TakeSwapsSidesAndKeepsCapacity) {
  CommandQueue q(1 << 20);
  std::string big(4096, 'x');
  q.Push(Send(1), big.data(), big.size());
  CommandQueue::Side side;
  ASSERT(q.Take(&side));
  ASSERT_EQ(side.commands.size(), 1u);
  const char* big_storage = side.bytes.data();
  EXPECT(side.bytes.capacity() >= 4096u);
  // The consumer clears its side and takes again: only what was pushed after
  // the first take comes back, at offset 0.
  side.Clear();
  q.Push(Send(2), "b", 1);
  ASSERT(q.Take(&side));
  ASSERT_EQ(side.commands.size(), 1u);
  EXPECT_EQ(side.commands[0].id, 2u);
  EXPECT_EQ(side.commands[0].offset, 0u);
  EXPECT_EQ(Payload(side, side.commands[0]), std::string("b"));
  // That take handed the cleared big buffer back to the producer side: a
  // large push now lands in it without reallocating.
  side.Clear();
  q.Push(Send(3), big.data(), big.size());
  ASSERT(q.Take(&side));
  ASSERT_EQ(side.commands.size(), 1u);
  EXPECT(side.bytes.data() == big_storage);
  EXPECT_EQ(Payload(side, side.commands[0]), big);
}

TEST(TrimGivesBackBothSidesOfABurstOneIdlePeriodLater) {
  CommandQueue q(1 << 20);
  CommandQueue::Side work;
  std::string burst(8 << 20, 'b');  // one oversized command fills a side
  // Two bursts, so that both sides have grown to the burst's size.
  for (int i = 0; i < 2; ++i) {
    q.Push(Send(1), burst.data(), burst.size());
    ASSERT(q.Take(&work));
    work.Clear();
  }
  q.Push(Send(2), "x", 1);  // the other side is now the incoming one
  ASSERT(q.Take(&work));
  work.Clear();
  // The period of the burst: what it needed stays.
  EXPECT_EQ(q.Trim(&work), 0u);
  // An idle period: both sides go back to their floor.
  size_t freed = q.Trim(&work);
  EXPECT(freed >= 2 * (burst.size() - CommandQueue::kKeepBytes));
  EXPECT(work.bytes.capacity() <= CommandQueue::kKeepBytes);
  q.Push(Send(3), "y", 1);
  CommandQueue::Side other;
  ASSERT(q.Take(&other));
  EXPECT(other.bytes.capacity() <= CommandQueue::kKeepBytes);
  EXPECT_EQ(Payload(other, other.commands[0]), std::string("y"));
}

TEST(TrimKeepsWhatSteadyTrafficUsesSoItAllocatesNothing) {
  CommandQueue q(1 << 20);
  CommandQueue::Side work;
  std::string chunk(200 * 1024, 's');  // above the floor of a side
  const char* storage[2] = {nullptr, nullptr};
  for (int period = 0; period < 5; ++period) {
    for (int take = 0; take < 4; ++take) {
      q.Push(Send(1), chunk.data(), chunk.size());
      ASSERT(q.Take(&work));
      // Two sides alternate; after the first period each keeps its buffer.
      if (period > 0) EXPECT(work.bytes.data() == storage[take % 2]);
      storage[take % 2] = work.bytes.data();
      work.Clear();
    }
    EXPECT_EQ(q.Trim(&work), 0u);
  }
}

TEST(TrimLeavesASideThatIsBeingFilled) {
  CommandQueue q(1 << 20);
  CommandQueue::Side work;
  std::string burst(4 << 20, 'f');
  q.Push(Send(1), burst.data(), burst.size());
  q.Trim(&work);
  q.Trim(&work);  // idle periods, but the incoming side holds a command
  ASSERT(q.Take(&work));
  EXPECT_EQ(Payload(work, work.commands[0]), burst);
  EXPECT(work.bytes.capacity() >= burst.size());
}

TEST(OversizedCommandFitsIntoEmptyQueue) {
  CommandQueue q(10);
  std::string big(100, 'q');
  q.Push(Send(1), big.data(), big.size());  // must not block
  CommandQueue::Side side;
  ASSERT(q.Take(&side));
  EXPECT_EQ(Payload(side, side.commands[0]), big);
}

TEST(ProducerWaitsAtByteBoundUntilConsumerTakes) {
  CommandQueue q(100);
  std::string fill(80, 'a');
  q.Push(Send(1), fill.data(), fill.size());
  std::atomic<bool> started{false};
  std::atomic<bool> done{false};
  std::thread producer([&] {
    started = true;
    std::string more(30, 'b');  // 80 + 30 > 100: must wait
    q.Push(Send(2), more.data(), more.size());
    done = true;
  });
  ASSERT(WaitFor(started, 5000));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(done.load());  // still blocked: the consumer has not taken
  CommandQueue::Side side;
  ASSERT(q.Take(&side));
  EXPECT_EQ(side.commands.size(), 1u);
  EXPECT(WaitFor(done, 5000));
  producer.join();
  side.Clear();
  ASSERT(q.Take(&side));
  ASSERT_EQ(side.commands.size(), 1u);
  EXPECT_EQ(side.commands[0].id, 2u);
  EXPECT_EQ(Payload(side, side.commands[0]), std::string(30, 'b'));
}

TEST(PushUnderTheBoundDoesNotWait) {
  CommandQueue q(100);
  std::string fill(60, 'a');
  q.Push(Send(1), fill.data(), fill.size());
  std::atomic<bool> done{false};
  std::thread producer([&] {
    q.Push(Send(2), fill.data(), 40);  // exactly at the bound: fits
    done = true;
  });
  EXPECT(WaitFor(done, 5000));
  producer.join();
}

TEST(CloseReleasesWaitingProducers) {
  CommandQueue q(10);
  q.Push(Send(1), "0123456789", 10);
  std::atomic<int> finished{0};
  std::vector<std::thread> producers;
  for (int i = 0; i < 3; ++i) {
    producers.emplace_back([&, i] {
      q.Push(Send(10 + i), "abcdef", 6);
      ++finished;
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_EQ(finished.load(), 0);
  q.Close();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (finished.load() < 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(finished.load(), 3);
  // If Close did not release them, a take does, so the test ends instead of
  // hanging.
  CommandQueue::Side side;
  while (finished.load() < 3) {
    q.Take(&side);
    side.Clear();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  for (auto& t : producers) t.join();
  // A closed queue no longer blocks anyone.
  q.Push(Send(99), "0123456789", 10);
}

TEST(ManyProducersOneConsumerLoseNothingAndKeepPerProducerOrder) {
  constexpr int kProducers = 3;
  constexpr int kPerProducer = 3000;
  CommandQueue q(512);  // small bound: producers block often
  std::atomic<bool> stop{false};
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&q, p] {
      for (int i = 0; i < kPerProducer; ++i) {
        uint64_t id = (static_cast<uint64_t>(p) << 32) | static_cast<uint32_t>(i);
        char body[24];
        int n = std::snprintf(body, sizeof(body), "p%d-%d", p, i);
        q.Push(Send(id), body, static_cast<size_t>(n), &id, sizeof(id));
      }
    });
  }
  std::vector<int> next(kProducers, 0);
  int total = 0;
  int bad = 0;
  CommandQueue::Side side;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (total < kProducers * kPerProducer && std::chrono::steady_clock::now() < deadline) {
    if (!q.Take(&side)) {
      std::this_thread::yield();
      continue;
    }
    for (const Command& c : side.commands) {
      int p = static_cast<int>(c.id >> 32);
      int i = static_cast<int>(c.id & 0xffffffffu);
      char body[24];
      int n = std::snprintf(body, sizeof(body), "p%d-%d", p, i);
      uint64_t echoed;
      std::memcpy(&echoed, side.bytes.data() + c.offset + c.size, sizeof(echoed));
      if (p < 0 || p >= kProducers || i != next[p] || Payload(side, c) != std::string(body, n) ||
          echoed != c.id) {
        ++bad;
      } else {
        ++next[p];
      }
      ++total;
    }
    side.Clear();
  }
  stop = true;
  q.Close();
  for (auto& t : producers) t.join();
  EXPECT_EQ(total, kProducers * kPerProducer);
  EXPECT_EQ(bad, 0);
}

int main(int argc, char** argv) { return acceptpool_test::RunAll(argc, argv); }
