// The engine on the real io_uring backend, over loopback sockets: accept
// bursts past the buffer count, partial sends, a reset with sends in flight,
// close with a multishot receive outstanding, buffer exhaustion and
// recovery, and a randomised hammer of closes and slot reuse with
// operations in flight, checking that no completion reaches a later
// occupant. Every wait is bounded. Skipped (with the reason) where the
// kernel refuses io_uring. Also run under ThreadSanitizer (client threads,
// a wake from another thread).
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "backends/io_uring/io_uring_backend.h"
#include "core/engine.h"
#include "loopback_server.h"
#include "test_main.h"

using namespace acceptpool;

namespace {

using acceptpool_test::Bytes;
using acceptpool_test::Connect;
using acceptpool_test::Event;
using acceptpool_test::LoopbackConfig;
using acceptpool_test::RecvAvailable;
using acceptpool_test::RecvExactly;
using acceptpool_test::SendAll;

class Server : public acceptpool_test::LoopbackServer {
 public:
  explicit Server(const EngineConfig& config = LoopbackConfig(),
                  const IoUringConfig& ring = IoUringConfig())
      : LoopbackServer(config, MakeIoUringBackend(ring)) {}

  // A backend counter by its stats() name.
  uint64_t Counter(const char* name) {
    const char* const* names = nullptr;
    size_t n = backend().CounterNames(&names);
    uint64_t values[Stats::kBackendCounters] = {};
    backend().ReadCounters(values, Stats::kBackendCounters);
    for (size_t i = 0; i < n; ++i) {
      if (std::strcmp(names[i], name) == 0) return values[i];
    }
    return ~0ull;
  }
};

// Whether this kernel lets the process run io_uring; says why not once.
bool Available() {
  std::string why;
  if (ProbeIoUringBackend(&why).ok()) return true;
  static bool told = false;
  if (!told)
    std::fprintf(stderr, "  io_uring cannot run here (%s): nothing to test\n", why.c_str());
  told = true;
  return false;
}

#define REQUIRE_IO_URING() \
  if (!Available()) return

// A payload that names its owner in every byte, so bytes that reach the
// wrong session (or client) show.
std::string Tagged(size_t n, uint8_t tag) { return std::string(n, static_cast<char>(tag)); }

bool AllOf(const std::string& s, uint8_t tag) {
  for (char c : s) {
    if (static_cast<uint8_t>(c) != tag) return false;
  }
  return true;
}

}  // namespace

TEST(ListensEchoesAndNamesItself) {
  REQUIRE_IO_URING();
  Server server;
  ASSERT(server.ok());
  EXPECT_EQ(std::string(server.engine().backend_name()), std::string("io_uring"));
  EXPECT(server.engine().PollDescriptor() >= 0);
  int fd = Connect(server.port());
  ASSERT(fd >= 0);
  ASSERT(server.PollUntil([&] { return server.Sessions() == 1; }));
  SessionId id = server.SessionAt(0);
  std::string message = Bytes(40 * 1024 + 3, 1);  // several of the default buffers
  ASSERT(SendAll(fd, message));
  ASSERT(server.PollUntil([&] { return server.DataOf(id).size() >= message.size(); }));
  EXPECT(server.DataOf(id) == message);
  EXPECT(server.engine().Send(id, message.data(), message.size()) != SendResult::kFailed);
  server.PollOnce(0);
  std::string echoed;
  EXPECT(server.PollUntil([&] {
    echoed += RecvAvailable(fd, 1);
    return echoed.size() >= message.size();
  }));
  EXPECT(echoed == message);
  close(fd);
}

TEST(AnAcceptBurstPastTheBufferCountServesEveryClientExactly) {
  REQUIRE_IO_URING();
  EngineConfig config = LoopbackConfig();
  config.pool.max_sessions = 256;
  IoUringConfig ring;
  ring.buffers = 8;  // far fewer than the clients
  ring.buffer_bytes = 4096;
  Server server(config, ring);
  ASSERT(server.ok());
  constexpr int kClients = 64;
  std::vector<int> fds;
  for (int i = 0; i < kClients; ++i) {
    int fd = Connect(server.port());
    ASSERT(fd >= 0);
    fds.push_back(fd);
  }
  // Every client sends 10 KiB named by its index: more bytes in flight than
  // the ring has buffers.
  for (int i = 0; i < kClients; ++i)
    ASSERT(SendAll(fds[i], Tagged(10 * 1024, static_cast<uint8_t>(i + 1))));
  ASSERT(server.PollUntil([&] { return server.Sessions() == kClients; }));
  ASSERT(server.PollUntil([&] {
    for (size_t n = 0; n < kClients; ++n) {
      if (server.DataOf(server.SessionAt(n)).size() < 10 * 1024) return false;
    }
    return true;
  }));
  std::map<uint8_t, int> owners;
  for (size_t n = 0; n < kClients; ++n) {
    std::string data = server.DataOf(server.SessionAt(n));
    EXPECT_EQ(data.size(), size_t{10 * 1024});
    uint8_t tag = static_cast<uint8_t>(data[0]);
    EXPECT(AllOf(data, tag));
    ++owners[tag];
  }
  EXPECT_EQ(owners.size(), size_t{kClients});  // each client's bytes in one session
  EXPECT(server.Counter("bufferRingEmpty") > 0 || server.Counter("receiveSingleShots") > 0);
  for (int fd : fds) close(fd);
}

TEST(PartialSendsFlushTheQueueInOrderToASlowReader) {
  REQUIRE_IO_URING();
  Server server;
  ASSERT(server.ok());
  int fd = Connect(server.port(), 64 * 1024);
  ASSERT(fd >= 0);
  ASSERT(server.PollUntil([&] { return server.Sessions() == 1; }));
  SessionId id = server.SessionAt(0);
  std::string payload = Bytes(8 * 1024 * 1024, 2);
  std::atomic<bool> go{false};
  std::string got;
  std::thread reader([&] {
    while (!go.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    got = RecvExactly(fd, payload.size());
  });
  for (size_t off = 0; off < payload.size(); off += 256 * 1024) {
    SendResult r = server.engine().Send(id, payload.data() + off, 256 * 1024);
    EXPECT(r == SendResult::kOk || r == SendResult::kBackpressure);
  }
  // The kernel takes a part of each gathered sendmsg; the rest stays queued.
  server.PollUntil([&] { return false; }, 200);
  EXPECT(server.engine().BufferedAmount(id) > 0);
  go = true;
  EXPECT(server.PollUntil([&] { return server.engine().BufferedAmount(id) == 0; }, 20000));
  reader.join();
  EXPECT_EQ(got.size(), payload.size());
  EXPECT(got == payload);
  close(fd);
}

TEST(AResetWithSendsInFlightClosesTheSessionAndReleasesItsSlot) {
  REQUIRE_IO_URING();
  Server server;
  ASSERT(server.ok());
  int fd = Connect(server.port(), 4096);
  ASSERT(fd >= 0);
  ASSERT(server.PollUntil([&] { return server.Sessions() == 1; }));
  SessionId id = server.SessionAt(0);
  std::string payload = Bytes(4 * 1024 * 1024, 3);
  server.engine().Send(id, payload.data(), payload.size());
  server.PollUntil([&] { return false; }, 100);  // a sendmsg now waits for room
  ASSERT(server.engine().BufferedAmount(id) > 0);
  linger lg{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  close(fd);  // RST
  ASSERT(server.PollUntil([&] { return server.Find(EventType::kClose, id) != nullptr; }));
  EXPECT_EQ(server.Find(EventType::kClose, id)->reason(),
            static_cast<uint32_t>(CloseReason::kReset));
  ASSERT(server.PollUntil([&] { return server.engine().SnapshotStats().in_use == 0; }));
}

TEST(ClosingWithAMultishotReceiveOutstandingCancelsItBeforeTheSlotIsReused) {
  REQUIRE_IO_URING();
  Server server;
  ASSERT(server.ok());
  int a = Connect(server.port());
  ASSERT(a >= 0);
  ASSERT(server.PollUntil([&] { return server.Sessions() == 1; }));
  SessionId first = server.SessionAt(0);
  uint64_t cancels = server.Counter("cancellations");
  // Idle: its receive is posted and waiting.
  EXPECT(server.engine().Close(first, CloseMode::kAbort));
  ASSERT(server.PollUntil([&] { return server.Find(EventType::kClose, first) != nullptr; }));
  ASSERT(server.PollUntil([&] { return server.engine().SnapshotStats().in_use == 0; }));
  EXPECT(server.Counter("cancellations") > cancels);
  // The old client was reset; the slot's next occupant reads its own bytes.
  bool eof = false;
  RecvAvailable(a, 1000, &eof);
  EXPECT(eof);
  int b = Connect(server.port());
  ASSERT(b >= 0);
  ASSERT(server.PollUntil([&] { return server.Sessions() == 2; }));
  SessionId second = server.SessionAt(1);
  EXPECT_EQ(SlotOf(second), SlotOf(first));
  ASSERT(SendAll(b, "mine"));
  ASSERT(server.PollUntil([&] { return server.DataOf(second).size() == 4; }));
  EXPECT_EQ(server.DataOf(second), std::string("mine"));
  close(a);
  close(b);
}

TEST(RunningOutOfBuffersRecoversAndLosesNoByte) {
  REQUIRE_IO_URING();
  EngineConfig config = LoopbackConfig();
  IoUringConfig ring;
  ring.buffers = 4;
  ring.buffer_bytes = 1024;
  Server server(config, ring);
  ASSERT(server.ok());
  constexpr int kClients = 16;
  std::vector<int> fds;
  std::vector<std::string> sent;
  for (int i = 0; i < kClients; ++i) {
    fds.push_back(Connect(server.port()));
    ASSERT(fds.back() >= 0);
    sent.push_back(Bytes(256 * 1024, 100 + i));
  }
  ASSERT(server.PollUntil([&] { return server.Sessions() == kClients; }));
  // Pause half of them while the bytes arrive: their stashed buffers stay
  // pinned, and the others must still get through.
  for (size_t n = 0; n < kClients / 2; ++n) {
    server.engine().Control(server.SessionAt(n), SessionControl::kPause, 0, 0);
  }
  std::vector<std::thread> writers;
  for (int i = 0; i < kClients; ++i) writers.emplace_back([&, i] { SendAll(fds[i], sent[i]); });
  std::map<SessionId, int> client_of;
  auto complete = [&](size_t from, size_t to) {
    for (size_t n = from; n < to; ++n) {
      if (server.DataOf(server.SessionAt(n)).size() < 256 * 1024) return false;
    }
    return true;
  };
  EXPECT(server.PollUntil([&] { return complete(kClients / 2, kClients); }, 20000));
  EXPECT(server.Counter("bufferRingEmpty") > 0);
  for (size_t n = 0; n < kClients / 2; ++n) {
    server.engine().Control(server.SessionAt(n), SessionControl::kResume, 0, 0);
  }
  EXPECT(server.PollUntil([&] { return complete(0, kClients); }, 20000));
  for (std::thread& t : writers) t.join();
  // Sessions appear in connect order: session n is client n.
  for (size_t n = 0; n < kClients; ++n) EXPECT(server.DataOf(server.SessionAt(n)) == sent[n]);
  for (int fd : fds) close(fd);
}

TEST(AWakeFromAnotherThreadEndsABlockingPoll) {
  REQUIRE_IO_URING();
  Server server;
  ASSERT(server.ok());
  server.PollOnce(0);  // the ring is enabled by this thread's first poll
  std::thread waker([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    server.engine().Wake();
  });
  auto start = std::chrono::steady_clock::now();
  server.engine().Poll(5000);  // nothing else due before the 1 s tick
  auto waited = std::chrono::steady_clock::now() - start;
  waker.join();
  EXPECT(waited >= std::chrono::milliseconds(40));
  EXPECT(waited < std::chrono::milliseconds(500));
}

// The generation promise with late completions: sessions are closed (reset
// or gracefully) while their receives and sends are in flight, and their
// slots taken by new clients at once. Every client sends bytes that name it
// and is sent bytes that name its session; nothing of one may reach another.
TEST(HammerClosesWithOperationsInFlightAndNoCompletionReachesALaterOccupant) {
  REQUIRE_IO_URING();
  EngineConfig config = LoopbackConfig();
  config.pool.max_sessions = 64;
  IoUringConfig ring;
  ring.buffers = 16;
  ring.buffer_bytes = 2048;
  Server server(config, ring);
  ASSERT(server.ok());
  std::mt19937 rng(12345);
  struct Client {
    int fd;
    uint8_t tag;
  };
  std::vector<Client> clients;
  std::map<SessionId, uint8_t> tag_of;  // session -> the tag its client sends
  uint8_t next_tag = 1;
  auto open_client = [&] {
    int fd = Connect(server.port(), 8192);
    if (fd < 0) return;
    uint8_t tag = next_tag;
    next_tag = static_cast<uint8_t>(next_tag % 250 + 1);
    // The client writes its tag first, so the session's first byte names it.
    SendAll(fd, Tagged(3000, tag));
    clients.push_back({fd, tag});
  };
  for (int i = 0; i < 24; ++i) open_client();
  size_t seen = 0;
  int rounds = 0;
  for (; rounds < 300; ++rounds) {
    server.PollOnce(1);
    // Learn each new session's tag from its first byte.
    for (; seen < server.events().size(); ++seen) {
      const Event& e = server.events()[seen];
      if (e.type == EventType::kData && tag_of.count(e.id) == 0 && !e.data.empty()) {
        tag_of[e.id] = static_cast<uint8_t>(e.data[0]);
      }
    }
    // Send to some known sessions bytes naming their client, then close some
    // of them while those sends (and their receives) are in flight.
    std::vector<SessionId> live;
    for (auto& [id, tag] : tag_of) {
      if (server.Find(EventType::kClose, id) == nullptr) live.push_back(id);
    }
    for (SessionId id : live) {
      if (rng() % 3 == 0) {
        std::string out = Tagged(1 + rng() % 60000, tag_of[id]);
        server.engine().Send(id, out.data(), out.size());
      }
    }
    for (SessionId id : live) {
      unsigned r = rng() % 10;
      if (r == 0) server.engine().Close(id, CloseMode::kAbort);
      if (r == 1) server.engine().Close(id, CloseMode::kGraceful);
    }
    // Clients keep writing their tag, and some reset.
    for (size_t i = 0; i < clients.size();) {
      std::string more = Tagged(1 + rng() % 5000, clients[i].tag);
      ssize_t wrote = send(clients[i].fd, more.data(), more.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      (void)wrote;  // a full socket or a reset connection: fine either way
      std::string got = RecvAvailable(clients[i].fd, 0);
      EXPECT(AllOf(got, clients[i].tag));
      if (rng() % 12 == 0) {
        linger lg{1, 0};
        setsockopt(clients[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(clients[i].fd);
        clients.erase(clients.begin() + static_cast<long>(i));
        continue;
      }
      ++i;
    }
    // New clients take the freed slots at once.
    while (clients.size() < 24) open_client();
  }
  // Every session's bytes came from one client only.
  for (auto& [id, tag] : tag_of) EXPECT(AllOf(server.DataOf(id), tag));
  Stats st = server.engine().SnapshotStats();
  EXPECT(st.accepts > 24);
  for (const Client& c : clients) close(c.fd);
  // What the facade does on 'end': close; every slot then comes back.
  EXPECT(server.PollUntil(
      [&] {
        for (const Event& e : server.events()) {
          if (e.type == EventType::kEnd) server.engine().Close(e.id, CloseMode::kAbort);
        }
        return server.engine().SnapshotStats().in_use == 0;
      },
      10000));
  std::fprintf(stderr, "  hammer: %llu accepts, %llu stray completions, %llu cancellations\n",
               static_cast<unsigned long long>(st.accepts),
               static_cast<unsigned long long>(server.Counter("strayCompletions")),
               static_cast<unsigned long long>(server.Counter("cancellations")));
}

int main(int argc, char** argv) { return acceptpool_test::RunAll(argc, argv); }
