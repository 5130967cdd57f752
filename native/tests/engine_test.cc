// The engine against a fake backend: accept, receive, send, backpressure,
// close ordering, the generation check on every command, pool growth and
// shrink, shutdown, idle timeouts, and a randomised hammer that checks the
// invariants after every step.
#include "core/engine.h"
#include "core/engine_group.h"

#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "fake_backend.h"
#include "test_main.h"

using namespace acceptpool;
using acceptpool_test::FakeBackend;
using acceptpool_test::FakeSocket;

namespace {

struct Event {
  EventType type;
  SessionId id;
  double a;
  double b;
  std::string data;  // kSession: the address bytes; kData: the received bytes

  // kClose: a = reason, b = error word; kConnectFailed: a = token, b = error word.
  uint32_t reason() const { return static_cast<uint32_t>(a); }
  SysError error() const { return DecodeErrorWord(b).sys; }
  int32_t raw() const { return DecodeErrorWord(b).raw; }
  uint32_t token() const { return static_cast<uint32_t>(a); }
};

EngineConfig SmallConfig() {
  EngineConfig c;
  c.pool.initial = 4;
  c.pool.chunk = 4;
  c.pool.max_sessions = 64;
  c.pool.low_water = 1;
  c.pool.shrink_idle_ticks = 1000;
  c.high_water_mark = 1000;
  c.max_queued_bytes = 100000;
  c.accept_batch = 16;
  c.read_chunk = 64 * 1024;
  c.close_linger_ms = 5000;
  c.clock_ms = &FakeBackend::FakeClockMs;
  return c;
}

// Plays the driver and the JS side: owns the batch, polls, and collects what
// the engine wrote.
struct Rig {
  explicit Rig(const EngineConfig& config, size_t records = 256, size_t arena = 1 << 20)
      : batch(records, arena) {
    auto backend = std::make_unique<FakeBackend>();
    fake = backend.get();
    engine = std::make_unique<Engine>(config, std::move(backend));
    init_status = engine->Init();
    engine->SetBatch(&batch);
    SocketAddress any;
    any.addr[0] = 127;
    any.addr[3] = 1;
    listen_status = engine->Listen(any, &bound);
  }

  // One round; then JS takes the batch.
  std::vector<Event> Poll() {
    engine->Poll(0);
    return Collect();
  }
  std::vector<Event> Collect() {
    std::vector<Event> out;
    for (size_t i = 0; i < batch.count(); ++i) {
      const EventRecord& r = batch.records()[i];
      Event e{static_cast<EventType>(static_cast<int>(r.type)), static_cast<SessionId>(r.id), r.a,
              r.b, std::string()};
      if (e.type == EventType::kSession || e.type == EventType::kData) {
        e.data.assign(batch.data() + static_cast<size_t>(r.a), static_cast<size_t>(r.b));
      }
      out.push_back(e);
      all.push_back(e);
    }
    batch.Clear();
    return out;
  }
  // Accepts one connection and returns its id (0 if none came).
  SessionId Accept(SocketHandle* handle = nullptr) {
    SocketHandle h = fake->Connect();
    if (handle != nullptr) *handle = h;
    for (const Event& e : Poll()) {
      if (e.type == EventType::kSession) return e.id;
    }
    return 0;
  }
  Stats stats() const { return engine->SnapshotStats(); }

  EventBatch batch;
  FakeBackend* fake = nullptr;
  std::unique_ptr<Engine> engine;
  Status init_status;
  Status listen_status;
  SocketAddress bound;
  std::vector<Event> all;
};

std::string Bytes(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 747796405u + 2891336453u;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    s[i] = static_cast<char>(x);
  }
  return s;
}

const Event* FindEvent(const std::vector<Event>& events, EventType type, SessionId id) {
  for (const Event& e : events) {
    if (e.type == type && e.id == id) return &e;
  }
  return nullptr;
}

int IndexOf(const std::vector<Event>& events, EventType type, SessionId id) {
  for (size_t i = 0; i < events.size(); ++i) {
    if (events[i].type == type && events[i].id == id) return static_cast<int>(i);
  }
  return -1;
}

bool NoViolations(const FakeBackend& fake) {
  for (const std::string& v : fake.violations) std::fprintf(stderr, "  violation: %s\n", v.c_str());
  return fake.violations.empty();
}

}  // namespace

TEST(InitAndListenCreateTheInitialPool) {
  Rig rig(SmallConfig());
  EXPECT(rig.init_status.ok());
  EXPECT(rig.listen_status.ok());
  EXPECT_EQ(rig.bound.port, 4242u);
  Stats st = rig.stats();
  EXPECT_EQ(st.pool_size, 4u);
  EXPECT_EQ(st.pool_free, 4u);
  EXPECT_EQ(st.in_use, 0u);
  EXPECT(rig.fake->listening);
  SocketAddress again;
  EXPECT(rig.engine->Listen(rig.bound, &again).code == Code::kInvalid);
}

TEST(AcceptEmitsSessionRecordWithPeerAddress) {
  Rig rig(SmallConfig());
  SocketHandle h = rig.fake->Connect();
  std::vector<Event> events = rig.Poll();
  ASSERT_EQ(events.size(), 1u);
  const Event& e = events[0];
  EXPECT(e.type == EventType::kSession);
  EXPECT_EQ(SlotOf(e.id), 0u);
  EXPECT_EQ(GenerationOf(e.id), 1u);
  ASSERT_EQ(e.data.size(), sizeof(SocketAddress));
  SocketAddress peer;
  std::memcpy(&peer, e.data.data(), sizeof(peer));
  const SocketAddress& want = rig.fake->Sock(h).peer;
  EXPECT_EQ(peer.family, 4);
  EXPECT_EQ(peer.port, want.port);
  EXPECT(std::memcmp(peer.addr, want.addr, 16) == 0);
  EXPECT_EQ(static_cast<size_t>(e.a) % 8, 0u);
  FakeSocket& sock = rig.fake->Sock(h);
  EXPECT(sock.attached);
  EXPECT_EQ(sock.id, e.id);
  Stats st = rig.stats();
  EXPECT_EQ(st.accepts, 1u);
  EXPECT_EQ(st.in_use, 1u);
  EXPECT_EQ(st.peak_in_use, 1u);
  EXPECT(NoViolations(*rig.fake));
}

TEST(AnAcceptBeyondTheBudgetIsRefusedNotHeldUnannounced) {
  // A backend that takes a connection the budget did not allow (the batch
  // has no room for its kSession record) gets the socket refused: no slot
  // is held for a session JS would never hear of.
  Rig rig(SmallConfig(), /*records=*/2);
  rig.batch.Add(EventType::kTotals, 0);
  rig.batch.Add(EventType::kTotals, 0);
  ASSERT_EQ(rig.engine->AcceptBudget(), 0u);
  SocketHandle h = rig.fake->Connect();
  rig.engine->OnAccepted(h, rig.fake->Sock(h).peer);
  EXPECT(rig.fake->Sock(h).discarded);
  EXPECT_FALSE(rig.fake->Sock(h).attached);
  Stats st = rig.stats();
  EXPECT_EQ(st.in_use, 0u);
  EXPECT_EQ(st.accepts, 0u);
  EXPECT_EQ(st.accept_errors, 1u);
  EXPECT(NoViolations(*rig.fake));
}

TEST(ManyAcceptsInOneRoundGetDistinctIdsLowestSlotsFirst) {
  Rig rig(SmallConfig());
  for (int i = 0; i < 3; ++i) rig.fake->Connect();
  std::vector<Event> events = rig.Poll();
  ASSERT_EQ(events.size(), 3u);
  for (uint32_t i = 0; i < 3; ++i) {
    EXPECT(events[i].type == EventType::kSession);
    EXPECT_EQ(SlotOf(events[i].id), i);
  }
}

TEST(AcceptBatchCapsAcceptsPerRound) {
  EngineConfig config = SmallConfig();
  config.accept_batch = 2;
  Rig rig(config);
  for (int i = 0; i < 5; ++i) rig.fake->Connect();
  EXPECT_EQ(rig.Poll().size(), 2u);
  EXPECT_EQ(rig.Poll().size(), 2u);
  EXPECT_EQ(rig.Poll().size(), 1u);
}

TEST(ReceivedBytesBecomeDataRecordWithExactBytes) {
  Rig rig(SmallConfig());
  SocketHandle h;
  SessionId id = rig.Accept(&h);
  ASSERT(id != 0);
  std::string hello = "hello, acceptpool";
  rig.fake->PeerSend(h, hello);
  std::vector<Event> events = rig.Poll();
  ASSERT_EQ(events.size(), 1u);
  EXPECT(events[0].type == EventType::kData);
  EXPECT_EQ(events[0].id, id);
  EXPECT_EQ(events[0].data, hello);
  EXPECT_EQ(rig.stats().bytes_in, hello.size());
}

TEST(LargeReceiveArrivesInReadChunksInOrder) {
  EngineConfig config = SmallConfig();
  config.read_chunk = 16 * 1024;
  Rig rig(config);
  SocketHandle h;
  SessionId id = rig.Accept(&h);
  std::string big = Bytes(100000, 1);
  rig.fake->PeerSend(h, big);
  std::string got;
  for (int i = 0; i < 20 && got.size() < big.size(); ++i) {
    for (const Event& e : rig.Poll()) {
      EXPECT(e.type == EventType::kData);
      EXPECT_EQ(e.id, id);
      EXPECT(e.data.size() <= config.read_chunk);
      got += e.data;
    }
  }
  EXPECT_EQ(got, big);
}

TEST(DataFromTwoSessionsIsAttributedToEach) {
  Rig rig(SmallConfig());
  SocketHandle ha, hb;
  SessionId a = rig.Accept(&ha);
  SessionId b = rig.Accept(&hb);
  rig.fake->PeerSend(ha, "from-a");
  rig.fake->PeerSend(hb, "from-b");
  std::vector<Event> events = rig.Poll();
  const Event* ea = FindEvent(events, EventType::kData, a);
  const Event* eb = FindEvent(events, EventType::kData, b);
  ASSERT(ea != nullptr && eb != nullptr);
  EXPECT_EQ(ea->data, std::string("from-a"));
  EXPECT_EQ(eb->data, std::string("from-b"));
}

TEST(ReadWaitsWhileBatchArenaIsFull) {
  // An arena with room for one read only: the second session's bytes wait
  // for the next batch instead of being lost or overwritten.
  Rig rig(SmallConfig(), 64, 8192);
  SocketHandle ha, hb;
  SessionId a = rig.Accept(&ha);
  SessionId b = rig.Accept(&hb);
  rig.fake->PeerSend(ha, Bytes(6000, 2));
  rig.fake->PeerSend(hb, Bytes(3000, 3));
  std::vector<Event> first = rig.Poll();
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].id, a);
  EXPECT_EQ(first[0].data, Bytes(6000, 2));
  std::vector<Event> second = rig.Poll();
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].id, b);
  EXPECT_EQ(second[0].data, Bytes(3000, 3));
}

TEST(SendToLiveIdGoesStraightToTheSocket) {
  Rig rig(SmallConfig());
  SocketHandle h;
  SessionId id = rig.Accept(&h);
  EXPECT(rig.engine->Send(id, "abc", 3) == SendResult::kOk);
  FakeSocket& sock = rig.fake->Sock(h);
  EXPECT_EQ(sock.send_direct_calls, 1);
  EXPECT_EQ(sock.flush_calls, 0);
  EXPECT_EQ(sock.written, std::string("abc"));
  EXPECT_EQ(rig.engine->BufferedAmount(id), 0);
  EXPECT_EQ(rig.stats().bytes_out, 3u);
  EXPECT(NoViolations(*rig.fake));
}

TEST(SendQueuesWhatTheSocketDoesNotTakeAndFlushesInOrder) {
  Rig rig(SmallConfig());
  SocketHandle h;
  SessionId id = rig.Accept(&h);
  rig.fake->AddWritable(h, 10);
  std::string a = Bytes(500, 4);
  std::string b = Bytes(300, 5);
  EXPECT(rig.engine->Send(id, a.data(), a.size()) == SendResult::kOk);
  EXPECT_EQ(rig.engine->BufferedAmount(id), 490);
  // The queue is not empty: the next send is queued behind it, not sent
  // around it.
  EXPECT(rig.engine->Send(id, b.data(), b.size()) == SendResult::kOk);
  EXPECT_EQ(rig.fake->Sock(h).send_direct_calls, 1);
  EXPECT_EQ(rig.engine->BufferedAmount(id), 790);
  rig.fake->AddWritable(h, 100000);
  rig.Poll();
  EXPECT_EQ(rig.fake->Sock(h).written, a + b);
  EXPECT_EQ(rig.engine->BufferedAmount(id), 0);
}

TEST(WithoutDirectSendsEverythingGoesThroughTheQueue) {
  Rig rig(SmallConfig());
  rig.fake->direct_sends = false;
  SocketHandle h;
  SessionId id = rig.Accept(&h);
  std::string a = Bytes(40000, 6);
  EXPECT(rig.engine->Send(id, a.data(), a.size()) == SendResult::kOk);
  EXPECT_EQ(rig.fake->Sock(h).written, a);
  EXPECT(rig.fake->Sock(h).flush_calls >= 1);
  EXPECT_EQ(rig.engine->BufferedAmount(id), 0);
}

TEST(SendToStaleIdIsRefusedCountedAndNeverReachesTheNewOccupant) {
  EngineConfig config = SmallConfig();
  config.pool.initial = 1;
  config.pool.chunk = 1;
  config.pool.max_sessions = 1;
  Rig rig(config);
  SocketHandle ha, hb;
  SessionId a = rig.Accept(&ha);
  ASSERT(a != 0);
  EXPECT(rig.engine->Close(a, CloseMode::kAbort));
  std::vector<Event> closed = rig.Poll();
  ASSERT(FindEvent(closed, EventType::kClose, a) != nullptr);
  SessionId b = rig.Accept(&hb);
  ASSERT(b != 0);
  EXPECT_EQ(SlotOf(b), SlotOf(a));  // the same slot, reused
  EXPECT_NE(b, a);
  EXPECT_EQ(GenerationOf(b), GenerationOf(a) + 1);

  EXPECT(rig.engine->Send(a, "for-a", 5) == SendResult::kStale);
  EXPECT_EQ(rig.stats().stale_commands, 1u);
  EXPECT_FALSE(rig.engine->Close(a, CloseMode::kAbort));
  EXPECT_FALSE(rig.engine->Close(a, CloseMode::kGraceful));
  EXPECT_EQ(rig.stats().stale_commands, 3u);
  EXPECT_EQ(rig.engine->BufferedAmount(a), -1);
  rig.Poll();
  FakeSocket& sb = rig.fake->Sock(hb);
  EXPECT_EQ(sb.written, std::string());
  EXPECT_EQ(sb.send_direct_calls, 0);
  EXPECT_FALSE(sb.closed);  // the stale close did not close the new occupant
  EXPECT(rig.engine->Send(b, "for-b", 5) == SendResult::kOk);
  EXPECT_EQ(sb.written, std::string("for-b"));
  EXPECT(NoViolations(*rig.fake));
}

TEST(SendToSessionWhoseCloseIsNotYetReportedIsStale) {
  Rig rig(SmallConfig());
  SocketHandle h;
  SessionId id = rig.Accept(&h);
  rig.fake->PeerError(h, SysError::kConnReset, 104);
  rig.engine->Poll(0);  // the close is in the batch, JS has not seen it
  EXPECT(rig.engine->Send(id, "late", 4) == SendResult::kStale);
  EXPECT_EQ(rig.fake->Sock(h).written, std::string());
  EXPECT(NoViolations(*rig.fake));
}

TEST(CloseIsEmittedBeforeTheSlotIsReused) {
  EngineConfig config = SmallConfig();
  config.pool.initial = 1;
  config.pool.chunk = 1;
  config.pool.max_sessions = 1;
  Rig rig(config);
  SocketHandle ha;
  SessionId a = rig.Accept(&ha);
  ASSERT(a != 0);
  // In one round: A is reset, and B is waiting to be accepted.
  rig.fake->PeerError(ha, SysError::kConnReset, 104);
  SocketHandle hb = rig.fake->Connect();
  std::vector<Event> round = rig.Poll();
  // B could not take A's slot in that round: A's close had not been written.
  EXPECT(FindEvent(round, EventType::kClose, a) != nullptr);
  EXPECT_EQ(IndexOf(round, EventType::kSession, MakeSessionId(SlotOf(a), GenerationOf(a) + 1)), -1);
  for (int i = 0; i < 3 && !rig.fake->Sock(hb).attached; ++i) rig.Poll();
  ASSERT(rig.fake->Sock(hb).attached);
  SessionId b = rig.fake->Sock(hb).id;
  EXPECT_EQ(SlotOf(b), SlotOf(a));
  int close_at = IndexOf(rig.all, EventType::kClose, a);
  int open_at = IndexOf(rig.all, EventType::kSession, b);
  EXPECT(close_at >= 0);
  EXPECT(open_at > close_at);
}

TEST(SlotStaysTakenWhileItsCloseWaitsForBatchRoom) {
  // A batch that JS has not taken yet has no room for A's close: A's slot
  // must not be handed to a new connection until the close is written.
  Rig rig(SmallConfig(), 8, 1 << 16);
  SocketHandle ha;
  SessionId a = rig.Accept(&ha);
  ASSERT_EQ(SlotOf(a), 0u);
  rig.fake->PeerError(ha, SysError::kConnReset, 104);
  for (int i = 0; i < 5; ++i) rig.batch.Add(EventType::kDrain, 0);  // 3 records left
  rig.fake->Connect();
  rig.engine->Poll(0);
  EXPECT(rig.engine->HasPending());  // the close is waiting
  std::vector<Event> first = rig.Collect();
  EXPECT(FindEvent(first, EventType::kClose, a) == nullptr);
  const Event* b = nullptr;
  for (const Event& e : first) {
    if (e.type == EventType::kSession) b = &e;
  }
  ASSERT(b != nullptr);
  EXPECT_NE(SlotOf(b->id), SlotOf(a));
  // JS took the batch: now the close is written and the slot freed.
  std::vector<Event> second = rig.Poll();
  EXPECT(FindEvent(second, EventType::kClose, a) != nullptr);
  SocketHandle hc;
  SessionId c = rig.Accept(&hc);
  EXPECT_EQ(SlotOf(c), SlotOf(a));
  EXPECT_EQ(GenerationOf(c), GenerationOf(a) + 1);
}

TEST(CompletionStyleReleaseKeepsSlotUntilBackendLetsGo) {
  EngineConfig config = SmallConfig();
  config.pool.initial = 1;
  config.pool.chunk = 1;
  config.pool.max_sessions = 1;
  Rig rig(config);
  rig.fake->defer_release = true;
  rig.fake->release_all_deferred_next_round = false;
  SocketHandle ha;
  SessionId a = rig.Accept(&ha);
  EXPECT(rig.engine->Close(a, CloseMode::kAbort));
  std::vector<Event> events = rig.Poll();
  EXPECT(FindEvent(events, EventType::kClose, a) != nullptr);
  SocketHandle hb = rig.fake->Connect();
  rig.Poll();
  rig.Poll();
  EXPECT_FALSE(rig.fake->Sock(hb).attached);  // the slot is still held by the backend
  EXPECT_EQ(rig.stats().in_use, 1u);
  rig.fake->release_all_deferred_next_round = true;
  rig.Poll();  // releases; accepting resumes
  rig.Poll();
  EXPECT(rig.fake->Sock(hb).attached);
  EXPECT_EQ(SlotOf(rig.fake->Sock(hb).id), SlotOf(a));
}

TEST(HighWaterMarkGivesBackpressureThenDrainAfterProgress) {
  Rig rig(SmallConfig());  // high water 1000
  SocketHandle h;
  SessionId id = rig.Accept(&h);
  rig.fake->AddWritable(h, 100);
  std::string small = Bytes(50, 7);
  EXPECT(rig.engine->Send(id, small.data(), small.size()) == SendResult::kOk);
  std::string big = Bytes(3000, 8);
  EXPECT(rig.engine->Send(id, big.data(), big.size()) == SendResult::kBackpressure);
  EXPECT_EQ(rig.engine->BufferedAmount(id), 2950);
  EXPECT(rig.Poll().empty());  // no progress, no drain
  rig.fake->AddWritable(h, 1000);
  EXPECT(FindEvent(rig.Poll(), EventType::kDrain, id) == nullptr);  // 1950 > 1000
  rig.fake->AddWritable(h, 1000);
  std::vector<Event> events = rig.Poll();  // 950 <= 1000
  EXPECT(FindEvent(events, EventType::kDrain, id) != nullptr);
  rig.fake->AddWritable(h, 100000);
  std::vector<Event> later = rig.Poll();
  EXPECT(FindEvent(later, EventType::kDrain, id) == nullptr);  // one drain per episode
  EXPECT_EQ(rig.fake->Sock(h).written, small + big);
  int drains = 0;
  for (const Event& e : rig.all) drains += e.type == EventType::kDrain ? 1 : 0;
  EXPECT_EQ(drains, 1);
}

TEST(ADrainRequestedAfterThePressureEasedStillFollows) {
  Rig rig(SmallConfig());
  SocketHandle h;
  SessionId id = rig.Accept(&h);
  // The caller reported pressure on its own count (the threaded driver, on
  // the JS thread), but the bytes went straight out: drain must still follow.
  EXPECT(rig.engine->Send(id, "x", 1) == SendResult::kOk);
  rig.engine->RequestDrain(id);
  EXPECT(FindEvent(rig.Poll(), EventType::kDrain, id) != nullptr);
}

TEST(MaxQueuedBytesOverflowClosesWithReasonOverflow) {
  EngineConfig config = SmallConfig();
  config.max_queued_bytes = 10000;
  Rig rig(config);
  SocketHandle h;
  SessionId id = rig.Accept(&h);
  rig.fake->AddWritable(h, 0);  // the socket takes nothing
  std::string a = Bytes(6000, 9);
  EXPECT(rig.engine->Send(id, a.data(), a.size()) == SendResult::kBackpressure);
  std::string b = Bytes(5000, 10);
  EXPECT(rig.engine->Send(id, b.data(), b.size()) == SendResult::kOverflow);
  EXPECT_EQ(rig.stats().overflows, 1u);
  FakeSocket& sock = rig.fake->Sock(h);
  EXPECT(sock.closed);
  EXPECT(sock.aborted);
  std::vector<Event> events = rig.Poll();
  const Event* close = FindEvent(events, EventType::kClose, id);
  ASSERT(close != nullptr);
  EXPECT_EQ(close->reason(), static_cast<uint32_t>(CloseReason::kOverflow));
  EXPECT_EQ(sock.written, std::string());
  EXPECT(rig.engine->Send(id, "x", 1) == SendResult::kStale);
}

TEST(QueueExactlyAtMaxIsAllowed) {
  EngineConfig config = SmallConfig();
  config.max_queued_bytes = 10000;
  Rig rig(config);
  SocketHandle h;
  SessionId id = rig.Accept(&h);
  rig.fake->AddWritable(h, 0);
  std::string a = Bytes(10000, 11);
  EXPECT(rig.engine->Send(id, a.data(), a.size()) == SendResult::kBackpressure);
  EXPECT_EQ(rig.engine->BufferedAmount(id), 10000);
  EXPECT(rig.engine->Send(id, "x", 1) == SendResult::kOverflow);
}

TEST(GracefulCloseFlushesSendsFinThenClosesLocalOnThePeersFin) {
  Rig rig(SmallConfig());
  SocketHandle h;
  SessionId id = rig.Accept(&h);
  rig.fake->AddWritable(h, 0);
  std::string a = Bytes(700, 12);
  EXPECT(rig.engine->Send(id, a.data(), a.size()) == SendResult::kOk);
  EXPECT(rig.engine->Close(id, CloseMode::kGraceful));
  EXPECT(rig.engine->Send(id, "more", 4) == SendResult::kClosed);
  EXPECT(rig.Poll().empty());
  EXPECT_FALSE(rig.fake->Sock(h).closed);
  EXPECT_FALSE(rig.fake->Sock(h).write_shut);  // FIN only after the queue
  rig.fake->AddWritable(h, 100000);
  EXPECT(rig.Poll().empty());
  EXPECT_EQ(rig.fake->Sock(h).written, a);
  // Lingering: FIN sent, still reading, not closed until the peer's FIN.
  EXPECT(rig.fake->Sock(h).write_shut);
  EXPECT(rig.fake->Sock(h).reading);
  EXPECT_FALSE(rig.fake->Sock(h).closed);
  EXPECT(rig.engine->Close(id, CloseMode::kGraceful));  // again: nothing changes
  EXPECT(rig.engine->Send(id, "more", 4) == SendResult::kClosed);
  rig.fake->PeerEnd(h);
  std::vector<Event> events = rig.Poll();
  const Event* close = FindEvent(events, EventType::kClose, id);
  ASSERT(close != nullptr);
  EXPECT_EQ(close->reason(), static_cast<uint32_t>(CloseReason::kLocal));
  EXPECT(FindEvent(rig.all, EventType::kEnd, id) == nullptr);
  EXPECT(rig.fake->Sock(h).closed);
  EXPECT_FALSE(rig.fake->Sock(h).aborted);
  Stats st = rig.stats();
  EXPECT_EQ(st.lingers, 1u);
  EXPECT_EQ(st.linger_ends, 1u);
  EXPECT_EQ(st.linger_timeouts, 0u);
  EXPECT_EQ(st.in_use, 0u);
}

TEST(BytesArrivingAfterAGracefulCloseAreReadAndDiscarded) {
  Rig rig(SmallConfig());
  SocketHandle h;
  SessionId id = rig.Accept(&h);
  rig.fake->PeerSend(h, "before");
  rig.Poll();
  rig.fake->AddWritable(h, 0);
  std::string a = Bytes(700, 13);
  rig.engine->Send(id, a.data(), a.size());
  EXPECT(rig.engine->Close(id, CloseMode::kGraceful));
  // Still flushing: read, but not reported.
  std::string upload = Bytes(200000, 14);
  rig.fake->PeerSend(h, upload);
  for (int i = 0; i < 8; ++i) rig.Poll();
  EXPECT_EQ(rig.fake->Sock(h).delivered, 6u + upload.size());
  rig.fake->AddWritable(h, 100000);
  rig.Poll();
  EXPECT(rig.fake->Sock(h).write_shut);
  // Lingering: the same.
  rig.fake->PeerSend(h, upload);
  for (int i = 0; i < 8; ++i) rig.Poll();
  EXPECT_EQ(rig.fake->Sock(h).delivered, 6u + 2 * upload.size());
  std::string reported;
  for (const Event& e : rig.all) {
    if (e.type == EventType::kData && e.id == id) reported += e.data;
  }
  EXPECT_EQ(reported, std::string("before"));
  Stats st = rig.stats();
  EXPECT_EQ(st.bytes_in, 6u);
  EXPECT_EQ(st.bytes_discarded, 2 * upload.size());
  EXPECT_FALSE(rig.fake->Sock(h).closed);
  rig.fake->PeerEnd(h);
  rig.Poll();
  const Event* close = FindEvent(rig.all, EventType::kClose, id);
  ASSERT(close != nullptr);
  EXPECT_EQ(close->reason(), static_cast<uint32_t>(CloseReason::kLocal));
  EXPECT(FindEvent(rig.all, EventType::kEnd, id) == nullptr);
  EXPECT_FALSE(rig.fake->Sock(h).aborted);
}

TEST(PeerFinWhileFlushingClosesOnceFlushedWithoutLingeringOrEnd) {
  Rig rig(SmallConfig());
  SocketHandle h;
  SessionId id = rig.Accept(&h);
  rig.fake->AddWritable(h, 0);
  std::string a = Bytes(700, 15);
  rig.engine->Send(id, a.data(), a.size());
  EXPECT(rig.engine->Close(id, CloseMode::kGraceful));
  rig.fake->PeerEnd(h);
  rig.Poll();
  EXPECT(rig.fake->Sock(h).fin_delivered);
  EXPECT_FALSE(rig.fake->Sock(h).closed);
  rig.fake->AddWritable(h, 100000);
  rig.Poll();
  const Event* close = FindEvent(rig.all, EventType::kClose, id);
  ASSERT(close != nullptr);
  EXPECT_EQ(close->reason(), static_cast<uint32_t>(CloseReason::kLocal));
  EXPECT(FindEvent(rig.all, EventType::kEnd, id) == nullptr);
  EXPECT_EQ(rig.fake->Sock(h).written, a);
  EXPECT_FALSE(rig.fake->Sock(h).aborted);
  EXPECT_EQ(rig.stats().lingers, 0u);
}

TEST(LingeringSessionIsResetAtTheDeadlineAndItsSlotFreed) {
  EngineConfig config = SmallConfig();
  config.close_linger_ms = 2000;
  Rig rig(config);
  SocketHandle h;
  SessionId id = rig.Accept(&h);
  EXPECT(rig.engine->Close(id, CloseMode::kGraceful));
  rig.Poll();
  EXPECT(rig.fake->Sock(h).write_shut);
  // A peer that keeps sending and never ends: what it sends does not push
  // the deadline back.
  for (int step = 0; step < 3; ++step) {
    rig.fake->PeerSend(h, Bytes(5000, 16 + step));
    rig.fake->Advance(step < 2 ? 700 : 599);
    rig.Poll();
    EXPECT_FALSE(rig.fake->Sock(h).closed);
  }
  EXPECT_EQ(rig.stats().in_use, 1u);
  rig.fake->Advance(1);  // 2000 ms after the FIN
  rig.Poll();
  const Event* close = FindEvent(rig.all, EventType::kClose, id);
  ASSERT(close != nullptr);
  EXPECT_EQ(close->reason(), static_cast<uint32_t>(CloseReason::kLocal));
  EXPECT(rig.fake->Sock(h).aborted);
  Stats st = rig.stats();
  EXPECT_EQ(st.linger_timeouts, 1u);
  EXPECT_EQ(st.linger_ends, 0u);
  EXPECT_EQ(st.in_use, 0u);
  EXPECT(rig.engine->Send(id, "x", 1) == SendResult::kStale);
}

TEST(LingeringSessionCanStillBeAborted) {
  Rig rig(SmallConfig());
  SocketHandle h;
  SessionId id = rig.Accept(&h);
  EXPECT(rig.engine->Close(id, CloseMode::kGraceful));
  rig.Poll();
  EXPECT(rig.fake->Sock(h).write_shut);
  EXPECT(rig.engine->Close(id, CloseMode::kAbort));
  EXPECT(rig.fake->Sock(h).aborted);
  rig.Poll();
  EXPECT(FindEvent(rig.all, EventType::kClose, id) != nullptr);
  EXPECT_EQ(rig.stats().in_use, 0u);
}

TEST(LingerOffClosesAsSoonAsTheQueueIsFlushed) {
  EngineConfig config = SmallConfig();
  config.close_linger_ms = 0;
  Rig rig(config);
  SocketHandle h;
  SessionId id = rig.Accept(&h);
  rig.engine->Send(id, "bye", 3);
  EXPECT(rig.engine->Close(id, CloseMode::kGraceful));
  rig.Poll();
  EXPECT(FindEvent(rig.all, EventType::kClose, id) != nullptr);
  EXPECT(rig.fake->Sock(h).closed);
  EXPECT_FALSE(rig.fake->Sock(h).aborted);
  EXPECT_EQ(rig.stats().lingers, 0u);
}

TEST(AbortCloseDropsTheQueueAndResets) {
  Rig rig(SmallConfig());
  SocketHandle h;
  SessionId id = rig.Accept(&h);
  rig.fake->AddWritable(h, 0);
  std::string a = Bytes(700, 13);
  rig.engine->Send(id, a.data(), a.size());
  EXPECT(rig.engine->Close(id, CloseMode::kAbort));
  EXPECT(rig.fake->Sock(h).closed);
  EXPECT(rig.fake->Sock(h).aborted);
  std::vector<Event> events = rig.Poll();
  const Event* close = FindEvent(events, EventType::kClose, id);
  ASSERT(close != nullptr);
  EXPECT_EQ(close->reason(), static_cast<uint32_t>(CloseReason::kLocal));
}

TEST(PeerEndThenEndClosesWithReasonRemote) {
  Rig rig(SmallConfig());
  SocketHandle h;
  SessionId id = rig.Accept(&h);
  rig.fake->PeerSend(h, "bye");
  rig.fake->PeerEnd(h);
  std::vector<Event> events = rig.Poll();
  events = rig.Poll();
  const Event* end = FindEvent(rig.all, EventType::kEnd, id);
  ASSERT(end != nullptr);
  EXPECT(IndexOf(rig.all, EventType::kData, id) < IndexOf(rig.all, EventType::kEnd, id));
  EXPECT_FALSE(rig.fake->Sock(h).reading);  // reading stopped at EOF
  EXPECT(FindEvent(rig.all, EventType::kClose, id) == nullptr);
  // The facade answers an end with end().
  EXPECT(rig.engine->Send(id, "ok", 2) == SendResult::kOk);
  EXPECT(rig.engine->Close(id, CloseMode::kEnd));
  EXPECT(rig.fake->Sock(h).write_shut);
  rig.Poll();
  const Event* close = FindEvent(rig.all, EventType::kClose, id);
  ASSERT(close != nullptr);
  EXPECT_EQ(close->reason(), static_cast<uint32_t>(CloseReason::kRemote));
  EXPECT_EQ(rig.fake->Sock(h).written, std::string("ok"));
  EXPECT_FALSE(rig.fake->Sock(h).aborted);
}

TEST(EndFirstThenPeerEndGivesDataEndThenCloseLocal) {
  Rig rig(SmallConfig());
  SocketHandle h;
  SessionId id = rig.Accept(&h);
  EXPECT(rig.engine->Close(id, CloseMode::kEnd));
  EXPECT(rig.fake->Sock(h).write_shut);
  EXPECT(rig.engine->Send(id, "no", 2) == SendResult::kClosed);
  // Half-closed by us: what the peer still sends is reported, then its FIN.
  rig.fake->PeerSend(h, "still here");
  rig.fake->PeerEnd(h);
  rig.Poll();
  rig.Poll();
  const Event* close = FindEvent(rig.all, EventType::kClose, id);
  ASSERT(close != nullptr);
  EXPECT_EQ(close->reason(), static_cast<uint32_t>(CloseReason::kLocal));
  int data = IndexOf(rig.all, EventType::kData, id);
  int end = IndexOf(rig.all, EventType::kEnd, id);
  int closed = IndexOf(rig.all, EventType::kClose, id);
  EXPECT(data >= 0 && data < end && end < closed);
  EXPECT_FALSE(rig.fake->Sock(h).aborted);
  EXPECT_EQ(rig.stats().lingers, 0u);
}

TEST(PeerResetClosesWithReasonResetAndTheErrorCode) {
  Rig rig(SmallConfig());
  SocketHandle h;
  SessionId id = rig.Accept(&h);
  rig.fake->PeerError(h, SysError::kConnReset, 104);
  std::vector<Event> events = rig.Poll();
  const Event* close = FindEvent(events, EventType::kClose, id);
  ASSERT(close != nullptr);
  EXPECT_EQ(close->reason(), static_cast<uint32_t>(CloseReason::kReset));
  EXPECT(close->error() == SysError::kConnReset);
  EXPECT_EQ(close->raw(), 104);
}

TEST(OtherErrorsCloseWithReasonErrorOrTimeout) {
  Rig rig(SmallConfig());
  SocketHandle h1, h2;
  SessionId a = rig.Accept(&h1);
  SessionId b = rig.Accept(&h2);
  rig.fake->PeerError(h1, SysError::kTimedOut, 110);
  rig.fake->PeerError(h2, SysError::kHostUnreach, 113);
  rig.Poll();
  const Event* ca = FindEvent(rig.all, EventType::kClose, a);
  const Event* cb = FindEvent(rig.all, EventType::kClose, b);
  ASSERT(ca != nullptr && cb != nullptr);
  EXPECT_EQ(ca->reason(), static_cast<uint32_t>(CloseReason::kTimeout));
  EXPECT_EQ(cb->reason(), static_cast<uint32_t>(CloseReason::kError));
  EXPECT(cb->error() == SysError::kHostUnreach);
  EXPECT_EQ(cb->raw(), 113);
}

TEST(SendErrorClosesTheSessionAndReportsFailed) {
  Rig rig(SmallConfig());
  SocketHandle h;
  SessionId id = rig.Accept(&h);
  rig.fake->Sock(h).send_error = Status::System(SysError::kPipe, 32, "send");
  EXPECT(rig.engine->Send(id, "x", 1) == SendResult::kFailed);
  EXPECT(rig.engine->Send(id, "y", 1) == SendResult::kStale);
  std::vector<Event> events = rig.Poll();
  const Event* close = FindEvent(events, EventType::kClose, id);
  ASSERT(close != nullptr);
  EXPECT_EQ(close->reason(), static_cast<uint32_t>(CloseReason::kReset));
}

TEST(FailedAttachReleasesTheSlotWithoutEvents) {
  Rig rig(SmallConfig());
  SocketHandle h = rig.fake->Connect();
  rig.fake->Sock(h).fail_attach = true;
  std::vector<Event> events = rig.Poll();
  EXPECT(events.empty());
  EXPECT(rig.fake->Sock(h).closed);
  Stats st = rig.stats();
  EXPECT_EQ(st.in_use, 0u);
  EXPECT_EQ(st.accept_errors, 1u);
  EXPECT_EQ(st.accepts, 0u);
  SessionId next = rig.Accept();
  EXPECT_EQ(SlotOf(next), 0u);
  EXPECT_EQ(GenerationOf(next), 2u);  // the failed occupant's generation is spent
}

TEST(AcceptErrorsOfAConnectionItsPeerAbandonedCountAsAborts) {
  Rig rig(SmallConfig());
  // One connection each, gone before it could be taken.
  rig.engine->OnAcceptError(Status::System(SysError::kConnAborted, 103, "accept"), 0);
  rig.engine->OnAcceptError(Status::System(SysError::kConnReset, 10054, "AcceptEx"), 0);
  rig.engine->OnAcceptError(Status::System(SysError::kNotConn, 10057, "AcceptEx"), 0);
  rig.engine->OnAcceptError(Status::System(SysError::kProto, 71, "accept"), 0);
  // The listener's or the machine's trouble, not one peer's.
  rig.engine->OnAcceptError(Status::System(SysError::kMFile, 24, "accept"), 0);
  rig.engine->OnAcceptError(Status::System(SysError::kNoBufs, 105, "accept"), 0);
  rig.engine->OnAcceptError(Status::System(SysError::kPerm, 1, "accept"), 0);
  Stats st = rig.stats();
  EXPECT_EQ(st.accept_errors, 7u);
  EXPECT_EQ(st.accept_aborts, 4u);
  EXPECT_EQ(st.emfile, 1u);
  EXPECT_EQ(st.accepts, 0u);
}

TEST(PoolGrowsWhenFreeSlotsFallBelowLowWater) {
  EngineConfig config = SmallConfig();
  config.pool.initial = 4;
  config.pool.chunk = 4;
  config.pool.low_water = 2;
  config.pool.max_sessions = 12;
  Rig rig(config);
  for (int i = 0; i < 3; ++i) rig.fake->Connect();
  rig.Poll();
  Stats st = rig.stats();
  EXPECT_EQ(st.in_use, 3u);
  EXPECT_EQ(st.growths, 0u);
  EXPECT_EQ(st.pool_size, 4u);
  rig.Accept();  // 1 free < low water 2: the pool grows before accepting
  st = rig.stats();
  EXPECT_EQ(st.growths, 1u);
  EXPECT_EQ(st.pool_size, 8u);
  EXPECT_EQ(st.in_use, 4u);
  for (int i = 0; i < 10; ++i) rig.fake->Connect();
  for (int i = 0; i < 10; ++i) rig.Poll();
  st = rig.stats();
  EXPECT_EQ(st.in_use, 12u);
  EXPECT_EQ(st.pool_size, 12u);  // never past max_sessions
  EXPECT_EQ(st.growths, 2u);
  EXPECT_EQ(st.pool_size, st.pool_free + st.in_use);
  EXPECT_EQ(rig.fake->backlog.size(), 2u);
}

TEST(MaxSessionsStopsAcceptingAndResumesAfterAClose) {
  EngineConfig config = SmallConfig();
  config.pool.initial = 2;
  config.pool.chunk = 2;
  config.pool.max_sessions = 2;
  Rig rig(config);
  SocketHandle h1 = rig.fake->Connect();
  rig.fake->Connect();
  SocketHandle h3 = rig.fake->Connect();
  rig.Poll();
  rig.Poll();
  EXPECT_EQ(rig.stats().in_use, 2u);
  EXPECT_EQ(rig.engine->AcceptBudget(), 0u);
  EXPECT_FALSE(rig.fake->accepting);
  ASSERT_EQ(rig.fake->set_accepting_calls.size(), 1u);
  EXPECT_FALSE(rig.fake->set_accepting_calls[0]);
  EXPECT_EQ(rig.stats().accept_pauses, 1u);
  EXPECT_FALSE(rig.fake->Sock(h3).attached);  // waits in the backlog
  SessionId first = rig.fake->Sock(h1).id;
  EXPECT(rig.engine->Close(first, CloseMode::kAbort));
  rig.Poll();  // close written, slot released, accepting resumes
  EXPECT(rig.fake->accepting);
  rig.Poll();
  EXPECT(rig.fake->Sock(h3).attached);
  EXPECT_EQ(SlotOf(rig.fake->Sock(h3).id), SlotOf(first));
  EXPECT_EQ(rig.stats().in_use, 2u);
}

TEST(MaxSessionsHoldsWhenThePoolOvershootsIt) {
  // 6 is not a whole number of chunks of 4: the pool grows to 8 slots, but
  // only 6 sessions may be open.
  EngineConfig config = SmallConfig();
  config.pool.initial = 4;
  config.pool.chunk = 4;
  config.pool.low_water = 1;
  config.pool.max_sessions = 6;
  Rig rig(config);
  for (int i = 0; i < 9; ++i) rig.fake->Connect();
  for (int i = 0; i < 5; ++i) rig.Poll();
  Stats st = rig.stats();
  EXPECT_EQ(st.in_use, 6u);
  EXPECT_EQ(st.pool_size, 8u);
  EXPECT_EQ(st.pool_free, 2u);
  EXPECT_EQ(rig.engine->AcceptBudget(), 0u);
  EXPECT_FALSE(rig.fake->accepting);
  EXPECT_EQ(rig.fake->backlog.size(), 3u);
}

TEST(ShutdownClosesEverySessionThenReportsServerClosedLast) {
  Rig rig(SmallConfig());
  SessionId a = rig.Accept();
  SessionId b = rig.Accept();
  SessionId c = rig.Accept();
  rig.fake->Connect();  // still in the backlog: never accepted
  rig.fake->peers_answer_fin = true;
  size_t before = rig.all.size();
  rig.engine->Shutdown();
  EXPECT(rig.engine->shutting_down());
  EXPECT(rig.fake->stopped_listening);
  for (int i = 0; i < 3 && !rig.engine->closed(); ++i) rig.Poll();
  EXPECT(rig.engine->closed());
  std::vector<Event> after(rig.all.begin() + before, rig.all.end());
  ASSERT_EQ(after.size(), 4u);
  for (SessionId id : {a, b, c}) {
    const Event* close = FindEvent(after, EventType::kClose, id);
    if (!EXPECT(close != nullptr)) continue;
    EXPECT_EQ(close->reason(), static_cast<uint32_t>(CloseReason::kShutdown));
  }
  EXPECT(after.back().type == EventType::kServerClosed);
  EXPECT_EQ(rig.stats().in_use, 0u);
  EXPECT(rig.engine->Send(a, "x", 1) == SendResult::kStale);
}

TEST(ShutdownFlushesQueuedBytesBeforeClosing) {
  Rig rig(SmallConfig());
  SocketHandle h;
  SessionId id = rig.Accept(&h);
  rig.fake->AddWritable(h, 10);
  rig.fake->peers_answer_fin = true;
  std::string data = Bytes(500, 3);
  rig.engine->Send(id, data.data(), data.size());
  rig.engine->Shutdown();
  rig.Poll();
  EXPECT(FindEvent(rig.all, EventType::kClose, id) == nullptr);  // still flushing
  rig.fake->AddWritable(h, 100000);
  rig.Poll();  // flushed: FIN
  rig.Poll();  // the peer's FIN
  const Event* close = FindEvent(rig.all, EventType::kClose, id);
  ASSERT(close != nullptr);
  EXPECT_EQ(close->reason(), static_cast<uint32_t>(CloseReason::kShutdown));
  EXPECT_EQ(rig.fake->Sock(h).written, data);  // every queued byte went out first
  EXPECT_FALSE(rig.fake->Sock(h).aborted);
}

TEST(ShutdownResetsSessionsThatCannotFlushWithinTheGraceTicks) {
  EngineConfig config = SmallConfig();
  config.shutdown_grace_ms = 2000;
  Rig rig(config);
  SocketHandle h;
  SessionId id = rig.Accept(&h);
  rig.fake->AddWritable(h, 0);
  std::string data = Bytes(500, 4);
  rig.engine->Send(id, data.data(), data.size());
  rig.engine->Shutdown();
  rig.fake->Advance(1999);
  rig.Poll();
  EXPECT(FindEvent(rig.all, EventType::kClose, id) == nullptr);
  rig.fake->Advance(1);
  rig.Poll();
  rig.Poll();
  const Event* close = FindEvent(rig.all, EventType::kClose, id);
  ASSERT(close != nullptr);
  EXPECT_EQ(close->reason(), static_cast<uint32_t>(CloseReason::kShutdown));
  EXPECT(rig.fake->Sock(h).aborted);
  EXPECT(rig.engine->closed());
}

TEST(ShutdownLingersThenResetsPeersThatNeverEndWithReasonShutdown) {
  EngineConfig config = SmallConfig();
  config.close_linger_ms = 1000;
  Rig rig(config);
  SocketHandle polite;
  SocketHandle silent;
  SessionId a = rig.Accept(&polite);
  SessionId b = rig.Accept(&silent);
  rig.engine->Shutdown();
  rig.Poll();
  EXPECT(rig.fake->Sock(polite).write_shut && rig.fake->Sock(silent).write_shut);
  rig.fake->PeerEnd(polite);
  rig.Poll();
  const Event* first = FindEvent(rig.all, EventType::kClose, a);
  ASSERT(first != nullptr);
  EXPECT_EQ(first->reason(), static_cast<uint32_t>(CloseReason::kShutdown));
  EXPECT_FALSE(rig.fake->Sock(polite).aborted);
  EXPECT_FALSE(rig.engine->closed());
  rig.fake->Tick(2);
  rig.Poll();
  rig.Poll();
  const Event* second = FindEvent(rig.all, EventType::kClose, b);
  ASSERT(second != nullptr);
  EXPECT_EQ(second->reason(), static_cast<uint32_t>(CloseReason::kShutdown));
  EXPECT(rig.fake->Sock(silent).aborted);
  EXPECT(rig.engine->closed());
  EXPECT_EQ(rig.stats().linger_timeouts, 1u);
}

TEST(ConnectReportsConnectedThenCarriesDataBothWays) {
  Rig rig(SmallConfig());
  SocketAddress remote;
  remote.port = 9;
  SessionId id = 0;
  ASSERT(rig.engine->Connect(remote, nullptr, 7, &id).ok());
  SocketHandle h = rig.fake->last_outgoing;
  EXPECT(rig.Poll().empty());                                   // not settled yet
  EXPECT(rig.engine->Send(id, "x", 1) == SendResult::kClosed);  // not open yet
  rig.fake->SettleConnect(h);
  rig.fake->PeerSend(h, "pong");
  std::vector<Event> events = rig.Poll();
  ASSERT(events.size() >= 2u);
  EXPECT(events[0].type == EventType::kConnected);
  EXPECT_EQ(events[0].id, id);
  EXPECT_EQ(events[0].a, 7.0);  // the caller's token comes back
  const Event* data = FindEvent(events, EventType::kData, id);
  ASSERT(data != nullptr);
  EXPECT_EQ(data->data, std::string("pong"));
  EXPECT(rig.engine->Send(id, "ping", 4) == SendResult::kOk);
  EXPECT_EQ(rig.fake->Sock(h).written, std::string("ping"));
  EXPECT_EQ(rig.stats().connects, 1u);
}

TEST(FailedConnectClosesWithTheErrorAndFreesTheSlot) {
  Rig rig(SmallConfig());
  SocketAddress remote;
  SessionId id = 0;
  ASSERT(rig.engine->Connect(remote, nullptr, 7, &id).ok());
  rig.fake->SettleConnect(rig.fake->last_outgoing,
                          Status::System(SysError::kConnRefused, 111, "connect"));
  std::vector<Event> events = rig.Poll();
  // Not a kClose: JS knows the attempt only by its token.
  EXPECT(FindEvent(events, EventType::kClose, id) == nullptr);
  const Event* failed = FindEvent(events, EventType::kConnectFailed, id);
  ASSERT(failed != nullptr);
  EXPECT_EQ(failed->token(), 7u);
  EXPECT(failed->error() == SysError::kConnRefused);
  EXPECT_EQ(failed->raw(), 111);
  EXPECT_EQ(rig.stats().connect_errors, 1u);
  EXPECT_EQ(rig.stats().in_use, 0u);
  EXPECT(rig.engine->Send(id, "x", 1) == SendResult::kStale);
}

TEST(ConnectThatFailsToStartLeavesNoSlotTaken) {
  Rig rig(SmallConfig());
  rig.fake->fail_next_connect = Status::System(SysError::kAddrNotAvail, 99, "bind");
  SocketAddress remote;
  SessionId id = 0;
  Status st = rig.engine->Connect(remote, nullptr, 7, &id);
  EXPECT(st.code == Code::kSystem);
  EXPECT(st.sys == SysError::kAddrNotAvail);
  EXPECT_EQ(rig.stats().in_use, 0u);
  EXPECT(rig.Poll().empty());  // JS never heard of it: no close event
}

TEST(ShutdownWithoutSessionsStillReportsServerClosed) {
  Rig rig(SmallConfig());
  rig.engine->Shutdown();
  std::vector<Event> events = rig.Poll();
  ASSERT_EQ(events.size(), 1u);
  EXPECT(events[0].type == EventType::kServerClosed);
  EXPECT(rig.Poll().empty());  // exactly once
}

TEST(ShutdownWaitsForCompletionStyleReleases) {
  Rig rig(SmallConfig());
  rig.fake->defer_release = true;
  rig.fake->release_all_deferred_next_round = false;
  rig.fake->peers_answer_fin = true;
  SessionId a = rig.Accept();
  rig.engine->Shutdown();
  rig.Poll();
  EXPECT(FindEvent(rig.all, EventType::kClose, a) != nullptr);
  EXPECT_FALSE(rig.engine->closed());  // the backend still holds the session
  rig.fake->release_all_deferred_next_round = true;
  rig.Poll();
  rig.Poll();
  EXPECT(rig.engine->closed());
  EXPECT(rig.all.back().type == EventType::kServerClosed);
}

TEST(IdleTimeoutClosesQuietSessionsAtTheirMillisecondDeadline) {
  EngineConfig config = SmallConfig();
  config.idle_timeout_ms = 3000;
  Rig rig(config);
  SocketHandle ha, hb;
  SessionId a = rig.Accept(&ha);
  SessionId b = rig.Accept(&hb);
  rig.fake->Tick(2);
  rig.Poll();
  rig.fake->PeerSend(hb, "still here");
  rig.Poll();
  EXPECT(FindEvent(rig.all, EventType::kClose, a) == nullptr);
  rig.fake->Advance(999);
  rig.Poll();
  // One millisecond early: never closed early.
  EXPECT(FindEvent(rig.all, EventType::kClose, a) == nullptr);
  rig.fake->Advance(1);
  rig.Poll();
  const Event* close = FindEvent(rig.all, EventType::kClose, a);
  ASSERT(close != nullptr);
  EXPECT_EQ(close->reason(), static_cast<uint32_t>(CloseReason::kTimeout));
  EXPECT(FindEvent(rig.all, EventType::kClose, b) == nullptr);
  EXPECT_EQ(rig.stats().timeouts, 1u);
  rig.fake->Tick(3);
  rig.Poll();
  EXPECT(FindEvent(rig.all, EventType::kClose, b) != nullptr);
}

size_t CountOf(const std::vector<Event>& events, EventType type, SessionId id) {
  size_t n = 0;
  for (const Event& e : events) n += e.type == type && e.id == id ? 1 : 0;
  return n;
}

TEST(SessionTimeoutFiresOnceAtItsDeadlineAndActivityArmsItAgain) {
  Rig rig(SmallConfig());
  SocketHandle h;
  SessionId id = rig.Accept(&h);
  ASSERT(rig.engine->Control(id, SessionControl::kTimeout, 150, 0));
  // The backend's timer is asked to wake the poll by the deadline.
  EXPECT_EQ(rig.fake->armed_ms, 150);
  rig.fake->Advance(149);
  rig.Poll();
  EXPECT_EQ(CountOf(rig.all, EventType::kTimeout, id), 0u);
  rig.fake->Advance(1);
  rig.Poll();
  EXPECT_EQ(CountOf(rig.all, EventType::kTimeout, id), 1u);
  // Quiet from now on: no second event, and the session stays open.
  rig.fake->Advance(10000);
  rig.Poll();
  EXPECT_EQ(CountOf(rig.all, EventType::kTimeout, id), 1u);
  EXPECT(FindEvent(rig.all, EventType::kClose, id) == nullptr);
  EXPECT_EQ(rig.stats().session_timeouts, 1u);
  // A read arms it again, from the read.
  rig.fake->PeerSend(h, "x");
  rig.Poll();
  rig.fake->Advance(149);
  rig.Poll();
  EXPECT_EQ(CountOf(rig.all, EventType::kTimeout, id), 1u);
  rig.fake->Advance(1);
  rig.Poll();
  EXPECT_EQ(CountOf(rig.all, EventType::kTimeout, id), 2u);
}

TEST(ActivityPushesTheSessionTimeoutBackAndZeroTurnsItOff) {
  Rig rig(SmallConfig());
  SocketHandle h;
  SessionId id = rig.Accept(&h);
  rig.fake->AddWritable(h, 1 << 20);
  ASSERT(rig.engine->Control(id, SessionControl::kTimeout, 100, 0));
  for (int i = 0; i < 10; ++i) {
    rig.fake->Advance(60);
    if (i % 2 == 0) {
      rig.fake->PeerSend(h, "r");
    } else {
      EXPECT(rig.engine->Send(id, "w", 1) == SendResult::kOk);
    }
    rig.Poll();
  }
  EXPECT_EQ(CountOf(rig.all, EventType::kTimeout, id), 0u);
  ASSERT(rig.engine->Control(id, SessionControl::kTimeout, 0, 0));
  rig.fake->Advance(100000);
  rig.Poll();
  EXPECT_EQ(CountOf(rig.all, EventType::kTimeout, id), 0u);
  // A stale id is refused and counted.
  uint64_t stale = rig.stats().stale_commands;
  EXPECT_FALSE(rig.engine->Control(id + (1ull << 24), SessionControl::kTimeout, 5, 0));
  EXPECT_EQ(rig.stats().stale_commands, stale + 1);
}

TEST(ExpiriesPerRoundAreBoundedAndTheRestFollowAtOnce) {
  EngineConfig config = SmallConfig();
  config.max_expiries_per_round = 2;
  Rig rig(config);
  std::vector<SessionId> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(rig.Accept());
  for (SessionId id : ids) ASSERT(rig.engine->Control(id, SessionControl::kTimeout, 10, 0));
  rig.fake->Advance(10);
  std::vector<Event> first = rig.Poll();
  size_t n = 0;
  for (const Event& e : first) n += e.type == EventType::kTimeout ? 1 : 0;
  EXPECT_EQ(n, 2u);
  EXPECT(rig.engine->MoreWork());
  rig.Poll();
  rig.Poll();
  for (SessionId id : ids) EXPECT_EQ(CountOf(rig.all, EventType::kTimeout, id), 1u);
}

TEST(ATimeoutOfAClosedSessionNeverReachesTheSlotsNextOccupant) {
  Rig rig(SmallConfig());
  SocketHandle h;
  SessionId old_id = rig.Accept(&h);
  ASSERT(rig.engine->Control(old_id, SessionControl::kTimeout, 50, 0));
  EXPECT(rig.engine->Close(old_id, CloseMode::kAbort));
  rig.Poll();
  SessionId next = rig.Accept();
  EXPECT_EQ(SlotOf(next), SlotOf(old_id));
  rig.fake->Advance(1000);
  rig.Poll();
  EXPECT_EQ(CountOf(rig.all, EventType::kTimeout, next), 0u);
  EXPECT_EQ(CountOf(rig.all, EventType::kTimeout, old_id), 0u);
}

TEST(PollWaitsNoLongerThanTheNextDeadline) {
  Rig rig(SmallConfig());
  SessionId id = rig.Accept();
  ASSERT(rig.engine->Control(id, SessionControl::kTimeout, 30, 0));
  // The fake's PollOnce does not block, but the engine must pass a timeout
  // of at most the deadline: a threaded poll would otherwise sleep past it.
  rig.engine->Poll(-1);
  EXPECT(rig.fake->last_timeout >= 0 && rig.fake->last_timeout <= 30);
}

TEST(NoIdleTimeoutWhenDisabled) {
  Rig rig(SmallConfig());
  SessionId a = rig.Accept();
  rig.fake->Tick(1000);
  rig.Poll();
  EXPECT(FindEvent(rig.all, EventType::kClose, a) == nullptr);
}

TEST(PoolShrinksBackAfterIdleTicksButNotBelowInitial) {
  EngineConfig config = SmallConfig();
  config.pool.initial = 2;
  config.pool.chunk = 2;
  config.pool.low_water = 1;
  config.pool.max_sessions = 16;
  config.pool.shrink_idle_ticks = 2;
  Rig rig(config);
  std::vector<SessionId> ids;
  for (int i = 0; i < 7; ++i) ids.push_back(rig.Accept());
  Stats st = rig.stats();
  EXPECT_EQ(st.in_use, 7u);
  EXPECT_EQ(st.pool_size, 8u);
  EXPECT_EQ(st.growths, 3u);
  for (SessionId id : ids) rig.engine->Close(id, CloseMode::kAbort);
  rig.Poll();
  EXPECT_EQ(rig.stats().in_use, 0u);
  rig.fake->Tick(2);  // the idle countdown
  rig.Poll();
  EXPECT_EQ(rig.stats().shrinks, 0u);
  EXPECT_EQ(rig.stats().pool_size, 8u);
  rig.fake->Tick();
  rig.Poll();
  EXPECT_EQ(rig.stats().shrinks, 1u);
  EXPECT_EQ(rig.stats().pool_size, 6u);
  rig.fake->Tick(10);
  rig.Poll();
  st = rig.stats();
  EXPECT_EQ(st.pool_size, 2u);  // initial
  EXPECT_EQ(st.shrinks, 3u);
  // Old ids stay refused after the slots come back.
  for (int i = 0; i < 7; ++i) rig.Accept();
  for (SessionId id : ids) EXPECT_EQ(rig.engine->BufferedAmount(id), -1);
}

TEST(GrowthResetsTheShrinkCountdown) {
  EngineConfig config = SmallConfig();
  config.pool.initial = 2;
  config.pool.chunk = 2;
  config.pool.low_water = 1;
  config.pool.shrink_idle_ticks = 3;
  Rig rig(config);
  std::vector<SessionId> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(rig.Accept());  // grows to 4 at the third
  EXPECT_EQ(rig.stats().pool_size, 4u);
  rig.fake->Tick(2);
  rig.Poll();
  ids.push_back(rig.Accept());  // nothing free: grows again, the countdown restarts
  EXPECT_EQ(rig.stats().pool_size, 6u);
  EXPECT_EQ(rig.stats().growths, 2u);
  for (SessionId id : ids) rig.engine->Close(id, CloseMode::kAbort);
  rig.Poll();
  rig.fake->Tick(3);
  rig.Poll();
  EXPECT_EQ(rig.stats().shrinks, 0u);
  rig.fake->Tick();
  rig.Poll();
  EXPECT_EQ(rig.stats().shrinks, 1u);
}

namespace {

// A pool of one chunk to start with that grows a chunk at a time.
EngineConfig ChunkedConfig(uint32_t chunk, uint32_t max_sessions) {
  EngineConfig config = SmallConfig();
  config.pool.initial = chunk;
  config.pool.chunk = chunk;
  config.pool.low_water = 1;
  config.pool.max_sessions = max_sessions;
  return config;
}

}  // namespace

TEST(ASlotAtTheEndOfItsGenerationsRetiresAndThePoolGrowsPastIt) {
  Rig rig(ChunkedConfig(4, 4));
  ASSERT(rig.engine->SetGenerationForTesting(0, kGenerationLimit - 2));
  SocketHandle ha;
  SessionId a = rig.Accept(&ha);
  EXPECT_EQ(SlotOf(a), 0u);
  EXPECT_EQ(GenerationOf(a), kGenerationLimit - 2);
  EXPECT(rig.engine->Close(a, CloseMode::kAbort));
  rig.Poll();
  SessionId b = rig.Accept();
  EXPECT_EQ(SlotOf(b), 0u);
  EXPECT_EQ(GenerationOf(b), kGenerationLimit - 1);  // the last one
  EXPECT(b < (1ull << 53));
  EXPECT(rig.engine->Close(b, CloseMode::kAbort));
  rig.Poll();
  Stats st = rig.stats();
  EXPECT_EQ(st.retired_slots, 1u);
  EXPECT_EQ(st.pool_size, 3u);  // slot 0 holds no session any more
  EXPECT_EQ(st.pool_free, 3u);
  EXPECT_EQ(st.in_use, 0u);
  // max_sessions still fit: the pool grows past the retired slot.
  std::vector<SocketHandle> handles;
  for (int i = 0; i < 5; ++i) handles.push_back(rig.fake->Connect());
  for (int i = 0; i < 4; ++i) rig.Poll();
  std::set<uint32_t> slots;
  for (int i = 0; i < 4; ++i) {
    ASSERT(rig.fake->Sock(handles[i]).attached);
    slots.insert(SlotOf(rig.fake->Sock(handles[i]).id));
  }
  EXPECT(slots == (std::set<uint32_t>{1, 2, 3, 4}));
  EXPECT_FALSE(rig.fake->Sock(handles[4]).attached);  // max_sessions reached
  st = rig.stats();
  EXPECT_EQ(st.in_use, 4u);
  EXPECT_EQ(st.pool_size, 7u);
  EXPECT_EQ(st.pool_free, 3u);
  EXPECT_EQ(st.growths, 1u);
  EXPECT_EQ(rig.engine->AcceptBudget(), 0u);
  // Both old ids of slot 0 stay refused; nothing reaches anyone.
  uint64_t stale = st.stale_commands;
  for (SessionId old : {a, b}) {
    EXPECT(rig.engine->Send(old, "stale", 5) == SendResult::kStale);
    EXPECT_FALSE(rig.engine->Close(old, CloseMode::kAbort));
    EXPECT_EQ(rig.engine->BufferedAmount(old), -1);
  }
  EXPECT_EQ(rig.stats().stale_commands, stale + 4);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(rig.fake->Sock(handles[i]).written_total, 0u);
  EXPECT(NoViolations(*rig.fake));
}

TEST(ARetiredSlotStaysRetiredWhenItsChunkShrinksAndGrowsBack) {
  EngineConfig config = ChunkedConfig(4, 64);
  config.pool.shrink_idle_ticks = 1;
  Rig rig(config);
  // Slot 9 (in the third chunk, not yet allocated) has one generation left.
  ASSERT(rig.engine->SetGenerationForTesting(9, kGenerationLimit - 1));
  std::vector<SessionId> ids;
  for (int i = 0; i < 10; ++i) ids.push_back(rig.Accept());
  EXPECT_EQ(SlotOf(ids[9]), 9u);
  for (SessionId id : ids) rig.engine->Close(id, CloseMode::kAbort);
  rig.Poll();
  Stats st = rig.stats();
  EXPECT_EQ(st.retired_slots, 1u);
  EXPECT_EQ(st.pool_size, 11u);
  EXPECT_EQ(st.pool_free, 11u);
  for (int i = 0; i < 10 && rig.stats().shrinks == 0; ++i) {
    rig.fake->Tick();
    rig.Poll();
  }
  st = rig.stats();
  EXPECT_EQ(st.shrinks, 1u);  // the top chunk went, its retired slot with it
  EXPECT_EQ(st.pool_size, 8u);
  EXPECT_EQ(st.pool_free, 8u);
  EXPECT_EQ(st.retired_slots, 1u);
  std::set<uint32_t> slots;
  for (int i = 0; i < 11; ++i) slots.insert(SlotOf(rig.Accept()));
  EXPECT_EQ(slots.size(), 11u);
  EXPECT(slots.count(9) == 0);
  EXPECT(slots.count(11) == 1);
  st = rig.stats();
  EXPECT_EQ(st.in_use, 11u);
  EXPECT_EQ(st.pool_size, st.pool_free + st.in_use);
  EXPECT_EQ(rig.engine->BufferedAmount(ids[9]), -1);
}

TEST(GrowthStopsAtTheSlotLimitAndAPoolOfRetiredSlotsPausesAccepting) {
  // Slot-indexed arrays outside the table (the threaded driver's byte
  // counters) are sized by slot_limit; growth never passes it.
  Rig rig(ChunkedConfig(2, 2));
  uint32_t limit = rig.engine->config().pool.slot_limit;
  EXPECT_EQ(limit, 2u + 2u + kRetiredSlotRoom);
  // Two sessions come and go through the pool's two free slots.
  auto two_sessions = [&] {
    SessionId x = rig.Accept();
    SessionId y = rig.Accept();
    ASSERT(x != 0 && y != 0);
    rig.engine->Close(x, CloseMode::kAbort);
    rig.engine->Close(y, CloseMode::kAbort);
    rig.Poll();
  };
  // Retire every slot below the limit but the last chunk's: sessions still come.
  for (uint32_t slot = 0; slot + 2 < limit; ++slot) {
    ASSERT(rig.engine->SetGenerationForTesting(slot, kGenerationLimit - 1));
  }
  for (uint32_t slot = 0; slot + 2 < limit; slot += 2) two_sessions();
  EXPECT_EQ(rig.stats().retired_slots, limit - 2);
  SessionId last = rig.Accept();
  ASSERT(last != 0);
  EXPECT(SlotOf(last) >= limit - 2 && SlotOf(last) < limit);
  ASSERT(rig.engine->Close(last, CloseMode::kAbort));
  rig.Poll();
  // With every slot retired the pool cannot grow: accepting pauses (it does
  // not wake for nothing) and the client waits in the backlog.
  ASSERT(rig.engine->SetGenerationForTesting(limit - 2, kGenerationLimit - 1));
  ASSERT(rig.engine->SetGenerationForTesting(limit - 1, kGenerationLimit - 1));
  two_sessions();
  Stats st = rig.stats();
  EXPECT_EQ(st.retired_slots, limit);
  EXPECT_EQ(st.pool_size, 0u);
  SocketHandle waiting = rig.fake->Connect();
  rig.Poll();
  EXPECT_FALSE(rig.fake->Sock(waiting).attached);
  EXPECT_FALSE(rig.fake->accepting);
  EXPECT(rig.stats().accept_pauses > 0u);
  EXPECT(NoViolations(*rig.fake));
}

TEST(BroadcastReachesEveryOpenSessionOnce) {
  Rig rig(SmallConfig());
  SocketHandle h1, h2, h3;
  rig.Accept(&h1);
  SessionId b = rig.Accept(&h2);
  rig.Accept(&h3);
  rig.engine->Close(b, CloseMode::kAbort);
  EXPECT_EQ(rig.engine->Broadcast("all", 3, nullptr, 0), 2u);
  EXPECT_EQ(rig.fake->Sock(h1).written, std::string("all"));
  EXPECT_EQ(rig.fake->Sock(h2).written, std::string());
  EXPECT_EQ(rig.fake->Sock(h3).written, std::string("all"));
  EXPECT(NoViolations(*rig.fake));
}

TEST(BroadcastToListedIdsSkipsStaleOnes) {
  Rig rig(SmallConfig());
  SocketHandle h1, h2;
  SessionId a = rig.Accept(&h1);
  SessionId b = rig.Accept(&h2);
  rig.engine->Close(b, CloseMode::kAbort);
  rig.Poll();
  SessionId ids[] = {a, b};
  EXPECT_EQ(rig.engine->Broadcast("to", 2, ids, 2), 1u);
  EXPECT_EQ(rig.fake->Sock(h1).written, std::string("to"));
  EXPECT_EQ(rig.stats().stale_commands, 1u);
}

TEST(EventsOutsideAPollWakeTheBackend) {
  Rig rig(SmallConfig());
  SessionId a = rig.Accept();
  int wakes = rig.fake->wakes;
  rig.engine->Close(a, CloseMode::kAbort);  // from JS, between polls
  EXPECT(rig.fake->wakes > wakes);
  EXPECT(rig.engine->HasPending());
  EXPECT(FindEvent(rig.Poll(), EventType::kClose, a) != nullptr);
}

TEST(AnObserverHearsWorkOutsideAPollTicksAndWakesInsteadOfTheBackend) {
  // Whoever runs the engine decides how work queued outside a poll round
  // gets its round (the inline driver: after the batch it is delivering).
  struct Runner : EngineObserver {
    int outside = 0;
    int wakes = 0;
    int ticks = 0;
    void OnWorkOutsidePoll() override { ++outside; }
    void OnWake() override { ++wakes; }
    size_t OnTick() override {
      ++ticks;
      return 0;
    }
  } runner;
  Rig rig(SmallConfig());
  rig.engine->SetObserver(&runner);
  SessionId a = rig.Accept();
  SessionId b = rig.Accept();
  int backend_wakes = rig.fake->wakes;
  rig.engine->Close(a, CloseMode::kAbort);
  rig.engine->Close(b, CloseMode::kAbort);
  // One report while the pending list was empty, and no wake of its own.
  EXPECT_EQ(runner.outside, 1);
  EXPECT_EQ(rig.fake->wakes, backend_wakes);
  std::vector<Event> events = rig.Poll();
  EXPECT(FindEvent(events, EventType::kClose, a) != nullptr);
  EXPECT(FindEvent(events, EventType::kClose, b) != nullptr);
  rig.engine->Shutdown();
  EXPECT_EQ(runner.outside, 2);
  rig.engine->Wake();
  rig.fake->Tick(2);
  rig.Poll();
  EXPECT_EQ(runner.wakes, 1);
  EXPECT_EQ(runner.ticks, 2);
  EXPECT_EQ(runner.outside, 2);  // work that a round does is not reported
  rig.engine->SetObserver(nullptr);
}

// ---- the hammer ----

namespace {

uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
// Byte `pos` of what JS sends to socket `h`, and of what the peer of `h`
// sends: distinct for every socket, so a byte that lands on the wrong
// socket is caught.
char OutByte(SocketHandle h, size_t pos) {
  return static_cast<char>(Mix((static_cast<uint64_t>(h) << 40) ^ pos));
}
char InByte(SocketHandle h, size_t pos) {
  return static_cast<char>(Mix((static_cast<uint64_t>(h) << 40) ^ pos ^ (1ull << 63)));
}

struct ModelSession {
  SocketHandle handle = -1;
  size_t out_pos = 0;            // bytes generated for sends so far
  size_t in_pos = 0;             // bytes seen in kData so far
  bool ended = false;            // kEnd seen
  bool closed = false;           // kClose seen
  bool close_requested = false;  // a graceful or abortive close, with no records waiting
};

// An observer that keeps the books a runner keeps on its sends (as the
// threaded driver does): every byte Send() takes must be reported leaving
// exactly once, and until then it is in the session's queue.
class SendBooks : public EngineObserver {
 public:
  explicit SendBooks(Engine* engine) : engine_(engine) {}
  void Took(SessionId id, size_t bytes) { taken_[id] += bytes; }
  const std::string& violation() const { return violation_; }
  // Every id's bytes all reported leaving.
  bool Balanced() const {
    for (const auto& [id, bytes] : taken_) {
      auto left = left_.find(id);
      if (bytes != (left == left_.end() ? 0 : left->second)) return false;
    }
    return left_.size() <= taken_.size();
  }

  size_t Buffered(SessionId id, size_t queued) override {
    if (queued != Outstanding(id))
      Flag("queue of " + std::to_string(id) + " differs from the books");
    return queued;
  }
  void OnSendLeft(SessionId id, size_t bytes) override {
    left_[id] += bytes;
    if (left_[id] > taken_[id]) Flag("more left " + std::to_string(id) + " than Send() took");
  }
  void OnWorkOutsidePoll() override { engine_->Wake(); }

 private:
  uint64_t Outstanding(SessionId id) const {
    auto taken = taken_.find(id);
    auto left = left_.find(id);
    return (taken == taken_.end() ? 0 : taken->second) - (left == left_.end() ? 0 : left->second);
  }
  void Flag(const std::string& why) {
    if (violation_.empty()) violation_ = why;
  }

  Engine* engine_;
  std::map<SessionId, uint64_t> taken_;
  std::map<SessionId, uint64_t> left_;
  std::string violation_;
};

class Hammer {
 public:
  // `retire_per_mille`: how often a step first pushes a free slot to the end
  // of its generations, so slots retire during the run.
  Hammer(uint32_t seed, const EngineConfig& config, size_t records, size_t arena,
         uint32_t retire_per_mille = 0)
      : config_(config),
        rng_(seed),
        rig_(config, records, arena),
        books_(rig_.engine.get()),
        retire_per_mille_(retire_per_mille) {
    rig_.engine->SetObserver(&books_);
  }
  ~Hammer() { rig_.engine->SetObserver(nullptr); }

  bool Run(int ops) {
    for (int op = 0; op < ops && ok_; ++op) {
      Step();
      RoundTrip();
      CheckInvariants(op);
    }
    if (ok_) Finish();
    if (!ok_) std::fprintf(stderr, "  hammer failed: %s\n", failure_.c_str());
    return ok_;
  }

  uint64_t accepts() const { return accepted_; }
  uint64_t closes() const { return closes_; }
  uint64_t reuses() const { return reuses_; }
  uint64_t stale_checked() const { return stale_expected_; }
  Stats stats() const { return rig_.engine->SnapshotStats(); }

 private:
  void Fail(const std::string& why) {
    if (ok_) failure_ = why;
    ok_ = false;
  }

  uint32_t Rand(uint32_t n) { return n == 0 ? 0 : static_cast<uint32_t>(rng_() % n); }

  SessionId RandomLive() {
    if (live_.empty()) return 0;
    auto it = live_.begin();
    std::advance(it, Rand(static_cast<uint32_t>(live_.size())));
    return *it;
  }
  SocketHandle RandomOpenSocket() {
    std::vector<SocketHandle> open;
    for (auto& [h, sock] : rig_.fake->sockets) {
      if (sock.attached && !sock.closed) open.push_back(h);
    }
    if (open.empty()) return -1;
    return open[Rand(static_cast<uint32_t>(open.size()))];
  }

  // Gives a free slot (mostly an allocated one, sometimes one not allocated
  // yet) one to three generations left, never fewer than it has used.
  void AgeRandomSlot() {
    Stats st = rig_.engine->SnapshotStats();
    // Retired slots keep their indices: the slots in use sit above them.
    uint32_t slots = static_cast<uint32_t>(st.pool_size + st.retired_slots);
    uint32_t slot = Rand(Rand(8) == 0 ? slots + 2 * config_.pool.chunk : slots);
    uint32_t generation = kGenerationLimit - 1 - Rand(3);
    auto seen = last_generation_.find(slot);
    if (seen != last_generation_.end() && seen->second >= generation) return;
    rig_.engine->SetGenerationForTesting(slot, generation);  // refused if the slot is taken
  }

  void Step() {
    FakeBackend& fake = *rig_.fake;
    if (retire_per_mille_ > 0 && Rand(1000) < retire_per_mille_) AgeRandomSlot();
    uint32_t dice = Rand(100);
    if (dice < 12) {
      if (fake.backlog.size() < 8) fake.Connect();
    } else if (dice < 24) {
      SocketHandle h = RandomOpenSocket();
      if (h >= 0 && fake.Sock(h).inbox.size() < 200000) {
        FakeSocket& sock = fake.Sock(h);
        size_t n = 1 + Rand(Rand(8) == 0 ? 40000 : 3000);
        size_t base = sock.delivered + sock.inbox.size();
        std::string bytes(n, '\0');
        for (size_t i = 0; i < n; ++i) bytes[i] = InByte(h, base + i);
        fake.PeerSend(h, bytes);
      }
    } else if (dice < 50) {
      Send(RandomLive());
    } else if (dice < 55) {
      SendStale();
    } else if (dice < 60) {
      SessionId id = RandomLive();
      if (id != 0) {
        bool pending = rig_.engine->HasPending() || !rig_.batch.empty();
        CloseMode mode = static_cast<CloseMode>(Rand(3));
        if (!rig_.engine->Close(id, mode)) {
          ++stale_expected_;
          if (!pending) Fail("Close refused a live id " + std::to_string(id));
        } else if (mode != CloseMode::kEnd && rig_.batch.empty()) {
          // From now on nothing the peer sends may be reported.
          model_[id].close_requested = true;
        }
      }
    } else if (dice < 62) {
      if (!stale_.empty()) {
        SessionId id = stale_[Rand(static_cast<uint32_t>(stale_.size()))];
        if (rig_.engine->Close(id, static_cast<CloseMode>(Rand(3)))) {
          Fail("Close accepted a stale id " + std::to_string(id));
        }
        ++stale_expected_;
      }
    } else if (dice < 65) {
      SocketHandle h = RandomOpenSocket();
      if (h >= 0) fake.PeerEnd(h);
    } else if (dice < 67) {
      SocketHandle h = RandomOpenSocket();
      if (h >= 0) fake.PeerError(h, Rand(2) ? SysError::kConnReset : SysError::kTimedOut, 104);
    } else if (dice < 87) {
      SocketHandle h = RandomOpenSocket();
      if (h >= 0) fake.AddWritable(h, Rand(Rand(4) == 0 ? 60000 : 6000));
    } else if (dice < 92) {
      fake.Tick();
    } else if (dice < 95) {
      // Flip between readiness and completion style releases.
      fake.defer_release = Rand(2) == 0;
      fake.release_all_deferred_next_round = Rand(3) != 0;
      // Peers that end lingering closes at once, or make them wait.
      fake.peers_answer_fin = Rand(3) != 0;
    } else if (dice < 97) {
      fake.accepts_first = !fake.accepts_first;
    } else {
      // JS is slow: leave the batch untaken for this round.
      skip_collect_ = true;
    }
  }

  void Send(SessionId id) {
    if (id == 0) return;
    ModelSession& m = model_[id];
    size_t n = Rand(5) == 0 ? Rand(40000) : Rand(2500);
    std::string bytes(n, '\0');
    for (size_t i = 0; i < n; ++i) bytes[i] = OutByte(m.handle, m.out_pos + i);
    m.out_pos += n;
    bool pending = rig_.engine->HasPending() || !rig_.batch.empty();
    // Sometimes the caller has reported pressure on a count of its own.
    bool pressure_seen = Rand(10) == 0;
    books_.Took(id, bytes.size());
    SendResult r = rig_.engine->Send(id, bytes.data(), bytes.size());
    if (pressure_seen && r == SendResult::kOk) rig_.engine->RequestDrain(id);
    if (r == SendResult::kStale) {
      ++stale_expected_;
      // Only a session whose close has not reached JS yet may look stale.
      if (!pending) Fail("Send refused a live id " + std::to_string(id));
    }
  }

  void SendStale() {
    if (stale_.empty()) return;
    SessionId id = stale_[Rand(static_cast<uint32_t>(stale_.size()))];
    auto it = model_.find(id);
    SocketHandle h = it != model_.end() ? it->second.handle : -1;
    size_t pos = it != model_.end() ? it->second.out_pos : 0;
    // Bytes meant for the old occupant's socket: if any reach another
    // socket, that socket's stream check fails.
    std::string bytes(1 + Rand(100), '\0');
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = OutByte(h, pos + i);
    books_.Took(id, bytes.size());
    if (rig_.engine->Send(id, bytes.data(), bytes.size()) != SendResult::kStale) {
      Fail("Send accepted a stale id " + std::to_string(id));
    }
    ++stale_expected_;
  }

  void RoundTrip() {
    rig_.engine->Poll(0);
    if (skip_collect_) {
      skip_collect_ = false;
      return;
    }
    Dispatch(rig_.Collect());
    rig_.all.clear();
  }

  void Dispatch(const std::vector<Event>& events) {
    for (const Event& e : events) {
      if (e.type == EventType::kServerClosed) {
        server_closed_ = true;
        continue;
      }
      if (server_closed_) Fail("event after kServerClosed");
      if (e.type == EventType::kSession) {
        if (model_.count(e.id) != 0) {
          Fail("kSession for an id seen before: " + std::to_string(e.id));
          continue;
        }
        SocketAddress peer;
        std::memcpy(&peer, e.data.data(), sizeof(peer));
        SocketHandle h = (static_cast<SocketHandle>(peer.addr[1]) << 16) |
                         (static_cast<SocketHandle>(peer.addr[2]) << 8) | peer.addr[3];
        FakeSocket* sock = rig_.fake->BySessionId(e.id);
        if (sock == nullptr || sock->handle != h) {
          Fail("kSession address does not match the attached socket");
          continue;
        }
        // A slot's generations only ever go up: no wrap, no retired slot back.
        uint32_t slot = SlotOf(e.id);
        uint32_t generation = GenerationOf(e.id);
        auto last = last_generation_.find(slot);
        if (generation == 0 || generation >= kGenerationLimit ||
            (last != last_generation_.end() && generation <= last->second)) {
          Fail("slot " + std::to_string(slot) + " reused with generation " +
               std::to_string(generation));
        }
        last_generation_[slot] = generation;
        ModelSession& m = model_[e.id];
        m.handle = h;
        live_.insert(e.id);
        ++accepted_;
        if (slots_seen_.count(SlotOf(e.id)) != 0) ++reuses_;
        slots_seen_.insert(SlotOf(e.id));
        continue;
      }
      auto it = model_.find(e.id);
      if (it == model_.end()) {
        Fail("event for an unknown id");
        continue;
      }
      ModelSession& m = it->second;
      if (m.closed) {
        Fail("event after kClose for id " + std::to_string(e.id));
        continue;
      }
      switch (e.type) {
        case EventType::kData:
          if (m.ended) Fail("kData after kEnd");
          if (m.close_requested) Fail("kData after a close was requested");
          for (size_t i = 0; i < e.data.size(); ++i) {
            if (e.data[i] != InByte(m.handle, m.in_pos + i)) {
              Fail("kData bytes differ from what the peer of the id's socket sent");
              break;
            }
          }
          m.in_pos += e.data.size();
          break;
        case EventType::kEnd:
          if (m.ended) Fail("kEnd twice");
          if (m.close_requested) Fail("kEnd after a close was requested");
          m.ended = true;
          // The facade usually answers with end().
          // (Refused, and counted stale, if the session has closed since.)
          if (Rand(4) != 0 && !rig_.engine->Close(e.id, CloseMode::kEnd)) ++stale_expected_;
          break;
        case EventType::kDrain: break;
        case EventType::kClose: {
          m.closed = true;
          live_.erase(e.id);
          stale_.push_back(e.id);
          if (stale_.size() > 512) stale_.erase(stale_.begin(), stale_.begin() + 256);
          ++closes_;
          uint32_t reason = e.reason();
          if (reason > static_cast<uint32_t>(CloseReason::kError)) Fail("bad close reason");
          FakeSocket* sock = &rig_.fake->Sock(m.handle);
          if (!sock->closed) Fail("kClose before the backend closed the socket");
          break;
        }
        default: Fail("unexpected event type");
      }
    }
  }

  void CheckInvariants(int op) {
    Stats st = rig_.engine->SnapshotStats();
    if (st.pool_size != st.pool_free + st.in_use) Fail("in_use + free != capacity");
    if (st.in_use > config_.pool.max_sessions) Fail("in_use above max_sessions");
    if (st.stale_commands != stale_expected_) {
      Fail("stale_commands " + std::to_string(st.stale_commands) + " != expected " +
           std::to_string(stale_expected_));
    }
    if (!rig_.fake->violations.empty()) Fail("backend contract: " + rig_.fake->violations[0]);
    if (!books_.violation().empty()) Fail("send books: " + books_.violation());
    bool settled = !rig_.engine->HasPending() && rig_.batch.empty();
    for (SessionId id : live_) {
      int64_t buffered = rig_.engine->BufferedAmount(id);
      if (buffered > static_cast<int64_t>(config_.max_queued_bytes)) Fail("queue above max");
      if (settled && buffered < 0) Fail("live id does not resolve: " + std::to_string(id));
      if (buffered >= 0) {
        auto sock = rig_.fake->sockets.find(model_[id].handle);
        if (sock == rig_.fake->sockets.end() || sock->second.closed || sock->second.id != id ||
            sock->second.session->id() != id) {
          Fail("live id resolves but its socket is not its own");
        }
      }
    }
    // Recent stale ids, every step; the whole list now and then.
    size_t from = (op % 64 == 0 || stale_.size() < 32) ? 0 : stale_.size() - 32;
    for (size_t i = from; i < stale_.size(); ++i) {
      if (rig_.engine->BufferedAmount(stale_[i]) != -1) {
        Fail("stale id resolves: " + std::to_string(stale_[i]));
      }
    }
    // What each socket received is a prefix of what JS sent to that very
    // session; the checked bytes are dropped to keep memory flat.
    uint64_t out_total = 0;
    uint64_t in_total = 0;
    for (auto it = rig_.fake->sockets.begin(); it != rig_.fake->sockets.end();) {
      FakeSocket& sock = it->second;
      size_t base = sock.written_total - sock.written.size();
      for (size_t i = 0; i < sock.written.size(); ++i) {
        if (sock.written[i] != OutByte(sock.handle, base + i)) {
          Fail("socket " + std::to_string(sock.handle) + " got a byte that was not sent to it");
          break;
        }
      }
      sock.written.clear();
      auto m = model_.find(sock.id);
      if (sock.attached && m != model_.end() && sock.written_total > m->second.out_pos) {
        Fail("socket received more than was sent to it");
      }
      out_total += sock.written_total;
      in_total += sock.delivered;
      ++it;
    }
    out_total += retired_out_;
    in_total += retired_in_;
    if (st.bytes_out != out_total) Fail("bytes_out does not match the sockets");
    // Bytes read after a close was requested are discarded, never reported.
    if (st.bytes_in + st.bytes_discarded != in_total)
      Fail("bytes_in + bytes_discarded do not match the sockets");
    // Forget sockets that are closed and whose close JS has seen.
    for (auto it = rig_.fake->sockets.begin(); it != rig_.fake->sockets.end();) {
      FakeSocket& sock = it->second;
      auto m = model_.find(sock.id);
      bool done = sock.closed && (!sock.attached || (m != model_.end() && m->second.closed));
      bool held = false;
      for (Session* s : rig_.fake->deferred) held = held || (sock.session == s);
      if (done && !held && sock.written.empty()) {
        retired_out_ += sock.written_total;
        retired_in_ += sock.delivered;
        if (sock.attached) model_.erase(sock.id);  // its id stays in stale_ on its own
        it = rig_.fake->sockets.erase(it);
      } else {
        ++it;
      }
    }
  }

  void Finish() {
    rig_.engine->Shutdown();
    for (int i = 0; i < 100 && !rig_.engine->closed(); ++i) {
      rig_.fake->release_all_deferred_next_round = true;
      // Sessions whose queues cannot drain are reset after the grace ticks.
      rig_.fake->Tick();
      rig_.engine->Poll(0);
      Dispatch(rig_.Collect());
    }
    if (!rig_.engine->closed()) Fail("shutdown never finished");
    if (!server_closed_) Fail("no kServerClosed after shutdown");
    if (!live_.empty()) Fail("sessions left without a kClose after shutdown");
    if (rig_.engine->SnapshotStats().in_use != 0) Fail("slots in use after shutdown");
    if (!books_.violation().empty()) Fail("send books: " + books_.violation());
    if (!books_.Balanced()) Fail("bytes Send() took that never left");
  }

  EngineConfig config_;
  std::mt19937_64 rng_;
  Rig rig_;
  SendBooks books_;
  bool ok_ = true;
  std::string failure_;
  bool skip_collect_ = false;
  bool server_closed_ = false;
  std::map<SessionId, ModelSession> model_;
  std::set<SessionId> live_;
  std::vector<SessionId> stale_;
  std::set<uint32_t> slots_seen_;
  std::map<uint32_t, uint32_t> last_generation_;  // by slot, from kSession
  uint32_t retire_per_mille_ = 0;
  uint64_t stale_expected_ = 0;
  uint64_t accepted_ = 0;
  uint64_t closes_ = 0;
  uint64_t reuses_ = 0;
  uint64_t retired_out_ = 0;
  uint64_t retired_in_ = 0;
};

EngineConfig HammerConfig() {
  EngineConfig c;
  c.pool.initial = 4;
  c.pool.chunk = 4;
  c.pool.max_sessions = 10;  // not a whole number of chunks: the pool overshoots
  c.pool.low_water = 2;
  c.pool.shrink_idle_ticks = 2;
  c.high_water_mark = 4096;
  c.max_queued_bytes = 48 * 1024;
  c.accept_batch = 3;
  c.read_chunk = 8192;
  c.idle_timeout_ms = 40000;
  c.close_linger_ms = 3000;
  c.clock_ms = &FakeBackend::FakeClockMs;
  return c;
}

}  // namespace

TEST(SendBlocksOfABurstAreFreedAfterOneIdleTick) {
  Rig rig(SmallConfig());
  SocketHandle h;
  SessionId id = rig.Accept(&h);
  rig.fake->AddWritable(h, 0);
  std::string burst = Bytes(90000, 21);
  rig.engine->Send(id, burst.data(), burst.size());
  size_t blocks = rig.stats().send_blocks;
  EXPECT(blocks >= burst.size() / SendBlock::kBytes);
  rig.fake->AddWritable(h, 1 << 20);
  rig.fake->Tick();
  rig.Poll();  // flushed in this period: the blocks were needed in it
  EXPECT_EQ(rig.fake->Sock(h).written, burst);
  EXPECT_EQ(rig.stats().send_blocks, blocks);
  rig.fake->Tick();
  rig.Poll();  // a period in which no send needed them
  EXPECT_EQ(rig.stats().send_blocks, 0u);
}

TEST(SendBlocksThatSteadyTrafficNeedsStayAcrossTicks) {
  // Every period queues three blocks' worth and flushes it; each tick finds
  // the blocks spare. They were needed in the period, so none is freed (and
  // made again in the next one).
  Rig rig(SmallConfig());
  SocketHandle h;
  SessionId id = rig.Accept(&h);
  std::string chunk = Bytes(3 * SendBlock::kBytes, 22);
  for (int period = 0; period < 5; ++period) {
    rig.fake->Sock(h).writable = 0;  // the socket is full: the send is queued
    rig.engine->Send(id, chunk.data(), chunk.size());
    rig.fake->AddWritable(h, 1 << 20);
    rig.Poll();  // flushed: the blocks are spare again
    rig.fake->Tick();
    rig.Poll();
    EXPECT_EQ(rig.stats().send_blocks, 3u);
  }
}

TEST(FreedMemoryGoesBackToTheOsOnTheQuietTicksAfterABurstOnly) {
  Rig rig(SmallConfig());
  SocketHandle h;
  SessionId id = rig.Accept(&h);
  std::string mib = Bytes(1 << 20, 23);
  // A trickle below the threshold: no return, however quiet it gets.
  rig.engine->Send(id, mib.data(), 1000);
  for (int i = 0; i < 3; ++i) {
    rig.fake->Tick();
    rig.Poll();
  }
  EXPECT_EQ(rig.fake->memory_returns, 0);
  // Steady traffic: never quiet, never a return.
  for (int i = 0; i < 5; ++i) {
    rig.engine->Send(id, mib.data(), mib.size());
    rig.fake->Tick();
    rig.Poll();
  }
  EXPECT_EQ(rig.fake->memory_returns, 0);
  // Quiet after it: a return on each of the first quiet ticks, then none.
  for (int i = 0; i < 30; ++i) {
    rig.fake->Tick();
    rig.Poll();
  }
  EXPECT_EQ(rig.fake->memory_returns, 10);
}

TEST(EngineDestroyedMidTrafficClosesEverySocketOnceAndFreesItsQueues) {
  // What a worker's teardown leaves: sessions with queued sends, one closing
  // gracefully behind its queue, close events still pending for lack of
  // batch room, a release the backend has not confirmed, a connect in
  // progress. Destroying the engine must close every socket exactly once,
  // touch nothing freed, and (ASan) free every send block.
  EngineConfig config = SmallConfig();
  auto rig = std::make_unique<Rig>(config, 16, 1 << 16);
  rig->fake->defer_release = true;
  rig->fake->release_all_deferred_next_round = false;
  std::vector<SocketHandle> handles(5);
  std::vector<SessionId> ids;
  for (SocketHandle& h : handles) ids.push_back(rig->Accept(&h));
  std::string big = Bytes(50000, 9);
  for (int i = 0; i < 3; ++i) {
    rig->fake->AddWritable(handles[i], 0);
    EXPECT(rig->engine->Send(ids[i], big.data(), big.size()) != SendResult::kStale);
  }
  EXPECT(rig->engine->Close(ids[2], CloseMode::kGraceful));  // closing behind its queue
  EXPECT(rig->engine->Close(ids[3], CloseMode::kAbort));     // release not yet confirmed
  rig->fake->PeerError(handles[4], SysError::kConnReset, 104);
  SessionId connecting = 0;
  SocketAddress remote;
  remote.family = 4;
  remote.port = 9;
  EXPECT(rig->engine->Connect(remote, nullptr, 7, &connecting).ok());
  while (rig->batch.HasRecordRoom(1)) rig->batch.Add(EventType::kDrain, 0);  // JS is behind
  rig->engine->Poll(0);
  EXPECT(rig->engine->HasPending());
  EXPECT(rig->stats().send_blocks > 0);

  bool checked = false;
  rig->fake->on_destroy = [&](const FakeBackend& fake) {
    checked = true;
    for (const std::string& v : fake.violations) FAIL_MSG("violation: " << v);
    for (const auto& [h, sock] : fake.sockets) {
      if (sock.attached || sock.connecting) EXPECT(sock.closed);
    }
  };
  rig->engine.reset();
  EXPECT(checked);
}

TEST(HammerRandomOperationsKeepEveryInvariant) {
  Hammer hammer(20240601, HammerConfig(), 48, 48 * 1024);
  EXPECT(hammer.Run(200000));
  // The run must actually have exercised reuse and staleness.
  EXPECT(hammer.accepts() > 1000u);
  EXPECT(hammer.reuses() > 1000u);
  EXPECT(hammer.stale_checked() > 1000u);
  Stats st = hammer.stats();
  // ... and growth, shrink, the limit and overflow.
  EXPECT(st.growths > 5u);
  EXPECT(st.shrinks > 5u);
  EXPECT(st.accept_pauses > 10u);
  EXPECT(st.overflows > 10u);
  EXPECT(st.timeouts > 0u);
  // ... and lingering closes, ended either way.
  EXPECT(st.linger_ends > 10u);
  EXPECT(st.linger_timeouts > 10u);
  EXPECT(st.bytes_discarded > 0u);
  std::printf(
      "     hammer: %llu accepts, %llu slot reuses, %llu stale commands, %llu growths, "
      "%llu shrinks, %llu accept pauses, %llu overflows, %llu timeouts, %llu linger ends, "
      "%llu linger timeouts\n",
      static_cast<unsigned long long>(hammer.accepts()),
      static_cast<unsigned long long>(hammer.reuses()),
      static_cast<unsigned long long>(hammer.stale_checked()),
      static_cast<unsigned long long>(st.growths), static_cast<unsigned long long>(st.shrinks),
      static_cast<unsigned long long>(st.accept_pauses),
      static_cast<unsigned long long>(st.overflows), static_cast<unsigned long long>(st.timeouts),
      static_cast<unsigned long long>(st.linger_ends),
      static_cast<unsigned long long>(st.linger_timeouts));
}

TEST(HammerWithRetiringSlotsKeepsEveryInvariant) {
  // Slots reach the end of their generations throughout the run, in every
  // chunk, while the pool grows and shrinks around them.
  Hammer hammer(99, HammerConfig(), 48, 48 * 1024, 20);
  EXPECT(hammer.Run(150000));
  Stats st = hammer.stats();
  EXPECT(st.retired_slots > 20u);
  EXPECT(st.growths > 5u);
  EXPECT(st.shrinks > 5u);
  EXPECT(hammer.reuses() > 1000u);
  std::printf("     hammer: %llu accepts, %llu retired slots, %llu growths, %llu shrinks\n",
              static_cast<unsigned long long>(hammer.accepts()),
              static_cast<unsigned long long>(st.retired_slots),
              static_cast<unsigned long long>(st.growths),
              static_cast<unsigned long long>(st.shrinks));
}

TEST(HammerWithTinyBatchesKeepsEveryInvariant) {
  // Batches so small that events and reads wait for room all the time.
  Hammer hammer(7, HammerConfig(), 6, 8192);
  EXPECT(hammer.Run(40000));
  EXPECT(hammer.accepts() > 100u);
}

TEST(ThreadConfigGivesEachThreadItsIdsAndAShareOfThePool) {
  EngineConfig endpoint;
  endpoint.pool.max_sessions = 1001;
  endpoint.pool.initial = 1024;
  endpoint.pool.chunk = 1024;
  endpoint.pool.low_water = 64;
  endpoint.high_water_mark = 1234;
  for (uint32_t t = 0; t < 2; ++t) {
    EngineConfig c = ThreadConfig(endpoint, t, 2);
    EXPECT_EQ(c.ids.thread, t);
    EXPECT_EQ(c.ids.threads, 2u);
    EXPECT_EQ(c.pool.max_sessions, 501u);  // rounded up: the threads hold at least maxConnections
    EXPECT_EQ(c.pool.initial, 512u);
    EXPECT_EQ(c.pool.chunk, 512u);
    EXPECT_EQ(c.pool.low_water, 32u);
    EXPECT_EQ(c.high_water_mark, 1234u);  // per session: not split
  }
  // One thread: the endpoint's own configuration.
  EngineConfig one = ThreadConfig(endpoint, 0, 1);
  EXPECT_EQ(one.pool.max_sessions, 1001u);
  EXPECT_EQ(one.ids.threads, 1u);
  // Each thread stays within the id slots it owns.
  endpoint.pool.max_sessions = kMaxSlots;
  EngineConfig big = ThreadConfig(endpoint, 2, 3);
  EXPECT(static_cast<uint64_t>(big.pool.max_sessions) * 3 <= kMaxSlots);
}

// ---- PROXY protocol ----

namespace {

// Trusts the fake's peers (10.x.y.z) unless told otherwise.
EngineConfig ProxyConfig(uint8_t first_octet = 10) {
  EngineConfig c = SmallConfig();
  c.proxy_protocol = true;
  c.proxy_timeout_ms = 2500;
  CidrRange range;
  range.family = 4;
  range.prefix = 8;
  range.addr[0] = first_octet;
  c.proxy_trusted.push_back(range);
  return c;
}

const char kV1Header[] = "PROXY TCP4 198.51.100.7 10.9.9.9 40001 443\r\n";

SocketAddress AddressIn(const std::string& data, size_t at = 0) {
  SocketAddress a;
  std::memcpy(&a, data.data() + at, sizeof(a));
  return a;
}

ProxyRecordHead HeadIn(const std::string& data) {
  ProxyRecordHead h;
  std::memcpy(&h, data.data() + sizeof(SocketAddress), sizeof(h));
  return h;
}

ProxyRejectInfo RejectIn(const Event& e, const Rig& rig) {
  ProxyRejectInfo info;
  std::memcpy(&info, rig.batch.data() + static_cast<size_t>(e.a) + sizeof(SocketAddress),
              sizeof(info));
  return info;
}

}  // namespace

TEST(ProxyHeaderAnnouncesTheClientWithTheBytesAfterItAsFirstData) {
  Rig rig(ProxyConfig());
  SocketHandle h = rig.fake->Connect();
  EXPECT(rig.Poll().empty());  // accepted, but no session until its header
  EXPECT_EQ(rig.stats().in_use, 1u);
  rig.fake->PeerSend(h, std::string(kV1Header) + "hello");
  std::vector<Event> events = rig.Poll();
  ASSERT_EQ(events.size(), 2u);
  ASSERT(events[0].type == EventType::kSession);
  EXPECT(events[1].type == EventType::kData);
  EXPECT_EQ(events[1].id, events[0].id);
  EXPECT_EQ(events[1].data, "hello");
  ASSERT_EQ(events[0].data.size(), sizeof(SocketAddress) + sizeof(ProxyRecordHead));
  SocketAddress remote = AddressIn(events[0].data);
  EXPECT_EQ(remote.family, 4);
  EXPECT_EQ(remote.addr[0], 198);
  EXPECT_EQ(remote.addr[3], 7);
  EXPECT_EQ(remote.port, 40001);
  ProxyRecordHead head = HeadIn(events[0].data);
  EXPECT_EQ(head.version, 1);
  EXPECT_EQ(head.command, static_cast<uint8_t>(ProxyCommand::kProxy));
  EXPECT_EQ(head.destination.port, 443);
  EXPECT_EQ(rig.stats().proxy_headers, 1u);
  // The session is an ordinary one from here on.
  EXPECT(rig.engine->Send(events[0].id, "ok", 2) == SendResult::kOk);
  EXPECT_EQ(rig.fake->Sock(h).written, "ok");
  EXPECT(NoViolations(*rig.fake));
}

TEST(ProxyV2TlvsTravelInTheSessionRecord) {
  Rig rig(ProxyConfig());
  SocketHandle h = rig.fake->Connect();
  rig.Poll();
  std::string v2("\r\n\r\n\0\r\nQUIT\n\x21\x11", 14);
  std::string block("\xC6\x33\x64\x07\x0A\x09\x09\x09\x9C\x41\x01\xBB", 12);
  std::string tlvs("\xEA\x00\x05\x01vpce\x02\x00\x03h.x", 14);
  size_t length = block.size() + tlvs.size();
  v2 += static_cast<char>(length >> 8);
  v2 += static_cast<char>(length);
  rig.fake->PeerSend(h, v2 + block + tlvs);
  std::vector<Event> events = rig.Poll();
  ASSERT_EQ(events.size(), 1u);
  ASSERT(events[0].type == EventType::kSession);
  ProxyRecordHead head = HeadIn(events[0].data);
  EXPECT_EQ(head.version, 2);
  EXPECT_EQ(head.tlv_bytes, tlvs.size());
  EXPECT_EQ(events[0].data.substr(sizeof(SocketAddress) + sizeof(ProxyRecordHead)), tlvs);
  EXPECT_EQ(AddressIn(events[0].data).port, 0x9C41);
}

TEST(UntrustedPeerIsRefusedAtAcceptAndCounted) {
  Rig rig(ProxyConfig(192));
  SocketHandle h = rig.fake->Connect();
  std::vector<Event> events = rig.Poll();
  ASSERT_EQ(events.size(), 1u);
  EXPECT(events[0].type == EventType::kProxyRejected);
  EXPECT_EQ(RejectIn(events[0], rig).reason, static_cast<uint8_t>(ProxyReject::kUntrusted));
  EXPECT(rig.fake->Sock(h).discarded);
  Stats st = rig.stats();
  EXPECT_EQ(st.proxy_untrusted, 1u);
  EXPECT_EQ(st.in_use, 0u);
  EXPECT_EQ(st.accepts, 0u);
}

TEST(MalformedHeaderResetsTheConnectionWithoutASession) {
  Rig rig(ProxyConfig());
  SocketHandle h = rig.fake->Connect();
  rig.Poll();
  rig.fake->PeerSend(h, "GET / HTTP/1.1\r\n\r\n");
  std::vector<Event> events = rig.Poll();
  ASSERT_EQ(events.size(), 1u);
  EXPECT(events[0].type == EventType::kProxyRejected);
  ProxyRejectInfo info = RejectIn(events[0], rig);
  EXPECT_EQ(info.reason, static_cast<uint8_t>(ProxyReject::kMalformed));
  EXPECT_EQ(info.error, static_cast<uint8_t>(ProxyError::kSignature));
  SocketAddress peer = AddressIn(
      std::string(rig.batch.data() + static_cast<size_t>(events[0].a), sizeof(SocketAddress)));
  EXPECT_EQ(peer.port, rig.fake->Sock(h).peer.port);
  EXPECT(rig.fake->Sock(h).aborted);
  Stats st = rig.stats();
  EXPECT_EQ(st.proxy_malformed, 1u);
  EXPECT_EQ(st.in_use, 0u);
  EXPECT(NoViolations(*rig.fake));
}

TEST(SplitHeaderIsHeldBetweenReadsThenReleased) {
  Rig rig(ProxyConfig());
  SocketHandle h = rig.fake->Connect();
  rig.Poll();
  std::string header(kV1Header);
  rig.fake->PeerSend(h, header.substr(0, 9));
  EXPECT(rig.Poll().empty());
  rig.fake->PeerSend(h, header.substr(9, 20));
  EXPECT(rig.Poll().empty());
  rig.fake->PeerSend(h, header.substr(29) + "x");
  std::vector<Event> events = rig.Poll();
  ASSERT_EQ(events.size(), 2u);
  EXPECT(events[0].type == EventType::kSession);
  EXPECT_EQ(AddressIn(events[0].data).port, 40001);
  EXPECT_EQ(events[1].data, "x");
  EXPECT_EQ(rig.stats().bytes_in, header.size() + 1);
}

TEST(SlowHeaderTimesOutAtItsDeadlineEvenWhileBytesDribble) {
  Rig rig(ProxyConfig());
  SocketHandle h = rig.fake->Connect();
  rig.Poll();
  std::string header(kV1Header);
  for (int i = 0; i < 3; ++i) {
    rig.fake->PeerSend(h, header.substr(static_cast<size_t>(i), 1));
    rig.fake->Tick();
    std::vector<Event> events = rig.Poll();
    if (i < 2) EXPECT(events.empty());
    if (i == 2) {
      ASSERT_EQ(events.size(), 1u);
      EXPECT(events[0].type == EventType::kProxyRejected);
      EXPECT_EQ(RejectIn(events[0], rig).reason, static_cast<uint8_t>(ProxyReject::kTimeout));
    }
  }
  Stats st = rig.stats();
  EXPECT_EQ(st.proxy_timeouts, 1u);
  EXPECT_EQ(st.in_use, 0u);
  EXPECT_EQ(st.timeouts, 0u);  // not a session's timeout: there was no session
}

TEST(LocalHeaderIsADirectConnectionFromThePeer) {
  Rig rig(ProxyConfig());
  SocketHandle h = rig.fake->Connect();
  rig.Poll();
  rig.fake->PeerSend(h, std::string("\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00", 16));
  std::vector<Event> events = rig.Poll();
  ASSERT_EQ(events.size(), 1u);
  ASSERT(events[0].type == EventType::kSession);
  SocketAddress remote = AddressIn(events[0].data);
  EXPECT_EQ(remote.port, rig.fake->Sock(h).peer.port);
  EXPECT(std::memcmp(remote.addr, rig.fake->Sock(h).peer.addr, 16) == 0);
  EXPECT_EQ(HeadIn(events[0].data).command, static_cast<uint8_t>(ProxyCommand::kLocal));
  EXPECT_EQ(rig.stats().proxy_local, 1u);
}

TEST(PeerGoneBeforeItsHeaderIsCountedAsAborted) {
  Rig rig(ProxyConfig());
  SocketHandle a = rig.fake->Connect();
  SocketHandle b = rig.fake->Connect();
  rig.Poll();
  rig.fake->PeerSend(a, "PROXY TCP4");
  rig.fake->PeerEnd(a);
  rig.fake->PeerError(b, SysError::kConnReset, 104);
  std::vector<Event> events;
  for (int i = 0; i < 3; ++i) {
    for (const Event& e : rig.Poll()) events.push_back(e);
  }
  ASSERT_EQ(events.size(), 2u);
  for (const Event& e : events) {
    EXPECT(e.type == EventType::kProxyRejected);
    EXPECT_EQ(RejectIn(e, rig).reason, static_cast<uint8_t>(ProxyReject::kAborted));
  }
  Stats st = rig.stats();
  EXPECT_EQ(st.proxy_aborted, 2u);
  EXPECT_EQ(st.in_use, 0u);
  EXPECT(NoViolations(*rig.fake));
}

TEST(SessionsAwaitingAHeaderAreInvisibleToCommandsAndShutdown) {
  Rig rig(ProxyConfig());
  SocketHandle h = rig.fake->Connect();
  rig.Poll();
  SessionId guessed = MakeSessionId(0, 1);
  EXPECT(rig.engine->Send(guessed, "x", 1) == SendResult::kStale);
  EXPECT(!rig.engine->Close(guessed, CloseMode::kAbort));
  EXPECT_EQ(rig.engine->Broadcast("x", 1, nullptr, 0), 0u);
  std::vector<SessionId> open;
  rig.engine->ListOpen(&open);
  EXPECT(open.empty());
  EXPECT_EQ(rig.fake->Sock(h).written, "");
  rig.engine->Shutdown();
  std::vector<Event> events = rig.Poll();
  ASSERT_EQ(events.size(), 1u);
  EXPECT(events[0].type == EventType::kServerClosed);
  EXPECT(rig.fake->Sock(h).closed);
  EXPECT_EQ(rig.stats().in_use, 0u);
}

TEST(RandomHeadersInRandomPiecesNeverLeakASlotOrAParser) {
  EngineConfig config = ProxyConfig();
  config.pool.initial = 64;
  config.pool.chunk = 64;
  config.pool.low_water = 8;
  config.pool.max_sessions = 256;
  Rig rig(config, 1024, 1 << 20);
  std::mt19937 rng(99);
  const std::string valid[] = {
      std::string(kV1Header) + "data",
      std::string(
          "\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0C\xC6\x33\x64\x07\x0A\x09\x09\x09\x9C\x41\x01\xBB",
          28) +
          "x",
      std::string("\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00", 16),
  };
  size_t sessions = 0;
  size_t rejected = 0;
  // Every round's events: announced sessions are closed again at once.
  auto poll = [&]() {
    for (const Event& e : rig.Poll()) {
      if (e.type == EventType::kSession) {
        ++sessions;
        rig.engine->Close(e.id, CloseMode::kAbort);
      }
      if (e.type == EventType::kProxyRejected) ++rejected;
    }
  };
  for (int wave = 0; wave < 40; ++wave) {
    std::vector<SocketHandle> handles;
    for (int i = 0; i < 20; ++i) handles.push_back(rig.fake->Connect());
    poll();
    std::vector<std::string> pending;
    for (size_t i = 0; i < handles.size(); ++i) {
      std::string bytes = valid[rng() % 3];
      int kind = static_cast<int>(rng() % 4);
      if (kind == 1) bytes[rng() % bytes.size()] = static_cast<char>(rng());  // mutated
      if (kind == 2) bytes.resize(rng() % bytes.size());  // truncated: times out
      pending.push_back(bytes);
    }
    // Delivered in random pieces over several rounds; some peers leave early.
    for (int round = 0; round < 6; ++round) {
      for (size_t i = 0; i < handles.size(); ++i) {
        if (pending[i].empty() || rig.fake->Sock(handles[i]).closed) continue;
        size_t n = 1 + rng() % pending[i].size();
        rig.fake->PeerSend(handles[i], pending[i].substr(0, n));
        pending[i].erase(0, n);
        if (rng() % 16 == 0) rig.fake->PeerEnd(handles[i]);
      }
      poll();
    }
  }
  // The backlog is taken, and whatever still waits for its header times out.
  for (int i = 0; i < 100 && (rig.stats().in_use > 0 || !rig.fake->backlog.empty()); ++i) {
    rig.fake->Tick();
    poll();
  }
  Stats st = rig.stats();
  EXPECT_EQ(st.in_use, 0u);
  EXPECT_EQ(sessions + rejected, 800u);
  EXPECT_EQ(st.proxy_headers + st.proxy_local, sessions);
  EXPECT_EQ(st.proxy_malformed + st.proxy_timeouts + st.proxy_aborted + st.proxy_busy, rejected);
  EXPECT(st.proxy_timeouts > 0 && st.proxy_malformed > 0 && st.proxy_aborted > 0 && sessions > 0);
  EXPECT(NoViolations(*rig.fake));
}

TEST(DrainClosesTheListenerReportsItAndShutsDownAfterTheLastSession) {
  Rig rig(SmallConfig());
  SocketHandle h;
  SessionId id = rig.Accept(&h);
  ASSERT(id != 0);
  rig.engine->Drain();
  EXPECT(rig.fake->stopped_listening);
  std::vector<Event> events = rig.Poll();
  ASSERT_EQ(events.size(), 1u);
  EXPECT(events[0].type == EventType::kDraining);
  // The session goes on.
  rig.fake->PeerSend(h, "still");
  events = rig.Poll();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data, "still");
  EXPECT(rig.engine->Send(id, "ok", 2) == SendResult::kOk);
  // Its end ends the drain: the server closes by itself.
  rig.fake->PeerEnd(h);
  rig.Poll();
  rig.engine->Close(id, CloseMode::kEnd);
  std::vector<EventType> types;
  for (int i = 0; i < 3; ++i) {
    for (const Event& e : rig.Poll()) types.push_back(e.type);
  }
  ASSERT(!types.empty());
  EXPECT(types.back() == EventType::kServerClosed);
  Stats st = rig.stats();
  EXPECT_EQ(st.drains, 1u);
  EXPECT_EQ(st.drain_closes, 0u);
  EXPECT_EQ(st.in_use, 0u);
}

TEST(ADrainsDeadlineIsAShutdownThatCountsTheStragglers) {
  Rig rig(SmallConfig());
  SessionId id = rig.Accept();
  ASSERT(id != 0);
  rig.engine->Drain();
  rig.Poll();
  rig.fake->peers_answer_fin = true;  // so the graceful close ends without lingering
  rig.engine->Shutdown();
  std::vector<EventType> types;
  for (int i = 0; i < 3; ++i) {
    for (const Event& e : rig.Poll()) types.push_back(e.type);
  }
  EXPECT_EQ(rig.stats().drain_closes, 1u);
  ASSERT(!types.empty());
  EXPECT(types.back() == EventType::kServerClosed);
}

int main(int argc, char** argv) { return acceptpool_test::RunAll(argc, argv); }
