// The engine on the real IOCP backend, over loopback (Windows; run under
// Wine by scripts/test-win.js). Covers what the JS suite cannot reach on this
// branch: ConnectEx (outgoing sessions), the slot release rule with
// operations still in flight, and two engines on one listener (threads: N)
// polled in any order and torn down in either. Every wait is bounded.
#include <winsock2.h>
#include <ws2tcpip.h>

#include <cstring>
#include <memory>
#include <vector>

#include "backends/iocp/iocp_backend.h"
#include "core/engine.h"
#include "core/engine_group.h"
#include "loopback_server.h"
#include "test_main.h"

using namespace acceptpool;

namespace {

using acceptpool_test::Event;
using acceptpool_test::Loopback;
using acceptpool_test::LoopbackConfig;

// One engine that listens, and connects to itself.
class Rig : public acceptpool_test::LoopbackServer {
 public:
  Rig() : LoopbackServer(LoopbackConfig(), MakeIocpBackend()) {}

  SessionId FirstSession() const { return SessionAt(0); }
};

// A loopback port that nothing listens on (bound, then closed).
uint16_t UnusedPort() {
  SOCKET s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  int len = sizeof(a);
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  closesocket(s);
  return ntohs(a.sin_port);
}

// One of stats().backendCounters, by name.
uint64_t BackendCounter(const Engine& engine, const char* name) {
  const char* const* names = nullptr;
  size_t n = engine.BackendCounterNames(&names);
  Stats st = engine.SnapshotStats();
  for (size_t i = 0; i < n; ++i) {
    if (std::strcmp(names[i], name) == 0) return st.backend[i];
  }
  return ~0ull;
}

// Engines of one server sharing its listener (ListenOptions::shared, then
// Engine::ListenBeside), driven from this one thread: each is polled in turn,
// as its own I/O thread would.
class SharedListener {
 public:
  static constexpr uint32_t kEngines = 2;

  SharedListener() {
    ListenOptions options = LoopbackConfig().listen;
    options.shared = true;
    for (uint32_t t = 0; t < kEngines; ++t) {
      batches_.push_back(std::make_unique<EventBatch>(1024, 1 << 20));
      engines_.push_back(
          std::make_unique<Engine>(ThreadConfig(LoopbackConfig(), t, kEngines), MakeIocpBackend()));
      status_ = engines_[t]->Init();
      if (!status_.ok()) return;
      engines_[t]->SetBatch(batches_[t].get());
      SocketAddress bound;
      status_ = t == 0 ? engines_[0]->Listen(Loopback(0), options, &bound_)
                       : engines_[t]->ListenBeside(*engines_[0], options, &bound);
      if (!status_.ok()) return;
    }
    sessions_.assign(kEngines, 0);
  }

  bool ok() const { return status_.ok(); }
  uint16_t port() const { return bound_.port; }
  Engine& engine(uint32_t t) { return *engines_[t]; }
  size_t sessions(uint32_t t) const { return sessions_[t]; }
  size_t all_sessions() const { return sessions_[0] + sessions_[1]; }
  // Destroys engine `t` (its backend's teardown); the other stays.
  void Destroy(uint32_t t) { engines_[t].reset(); }

  uint64_t Counter(uint32_t t, const char* name) const {
    return BackendCounter(*engines_[t], name);
  }

  // Polls every engine still there in turn until `done` holds (bounded).
  bool PollUntil(const std::function<bool()>& done) {
    auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(acceptpool_test::kWaitMs);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      for (uint32_t t = 0; t < kEngines; ++t) {
        if (!engines_[t]) continue;
        engines_[t]->Poll(5);
        EventBatch& batch = *batches_[t];
        for (size_t i = 0; i < batch.count(); ++i) {
          if (static_cast<EventType>(static_cast<int>(batch.records()[i].type)) ==
              EventType::kSession) {
            ++sessions_[t];
          }
        }
        batch.Clear();
      }
    }
    return true;
  }

 private:
  std::vector<std::unique_ptr<EventBatch>> batches_;
  std::vector<std::unique_ptr<Engine>> engines_;
  std::vector<size_t> sessions_;
  Status status_;
  SocketAddress bound_;
};

// Plain blocking clients: their handshakes complete in the backlog, before
// any engine polls.
class Clients {
 public:
  ~Clients() {
    for (SOCKET s : sockets_) closesocket(s);
  }
  // True if all `n` connected.
  bool Connect(uint16_t port, int n) {
    for (int i = 0; i < n; ++i) {
      SOCKET s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(port);
      if (s == INVALID_SOCKET) return false;
      sockets_.push_back(s);
      if (connect(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return false;
    }
    return true;
  }

 private:
  std::vector<SOCKET> sockets_;
};

// Whether a connect to `port` is refused (nothing listens there any more).
bool Refused(uint16_t port) {
  SOCKET s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  bool refused = connect(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 &&
                 WSAGetLastError() == WSAECONNREFUSED;
  closesocket(s);
  return refused;
}

}  // namespace

TEST(TwoEnginesOnOneListenerEachAcceptOnTheirOwnPortsThroughTheFirstsPort) {
  SharedListener pair;
  ASSERT(pair.ok());
  EXPECT_EQ(pair.Counter(0, "acceptsPending"), 32u);
  EXPECT_EQ(pair.Counter(1, "acceptsPending"), 32u);
  // 40 clients, more than engine 0 has posted, before anything polls: the
  // rest take engine 1's accepts.
  Clients clients;
  ASSERT(clients.Connect(pair.port(), 40));
  ASSERT(pair.PollUntil([&] { return pair.all_sessions() == 40; }));
  EXPECT_TRUE(pair.sessions(1) > 0);
  EXPECT_EQ(pair.engine(1).SnapshotStats().accepts, pair.sessions(1));
  EXPECT_EQ(pair.Counter(0, "acceptsForwarded"), pair.sessions(1));
  EXPECT_EQ(pair.Counter(1, "acceptsForwarded"), 0u);
}

TEST(TheGroupFallsBackToOneSharedListenerWhereTheBackendHasNoReusePort) {
  EngineGroup group(LoopbackConfig(), 2, &MakeIocpBackend);
  ASSERT(group.Init().ok());
  SocketAddress bound;
  ASSERT(
      group.Listen(Loopback(0), LoopbackConfig().listen, ListenerSharing::kReusePort, &bound).ok());
  // Engine 1 listens beside engine 0, with accepts of its own.
  EXPECT_EQ(BackendCounter(group.at(1), "acceptsPending"), 32u);
  ListenOptions asked = LoopbackConfig().listen;
  asked.reuse_port = true;  // what the user asked for is refused, not replaced
  EngineGroup other(LoopbackConfig(), 2, &MakeIocpBackend);
  ASSERT(other.Init().ok());
  EXPECT_TRUE(other.Listen(Loopback(0), asked, ListenerSharing::kReusePort, &bound).code ==
              Code::kUnsupported);
}

TEST(TheOtherEngineKeepsAcceptingThroughTheFirstsPortAfterTheFirstStopsListening) {
  SharedListener pair;
  ASSERT(pair.ok());
  pair.engine(0).Shutdown();
  ASSERT(pair.PollUntil([&] { return pair.Counter(0, "acceptsPending") == 0; }));
  // The socket stays open on engine 1's handle; its completions still reach
  // engine 0's port, which still sends them on.
  Clients clients;
  ASSERT(clients.Connect(pair.port(), 5));
  ASSERT(pair.PollUntil([&] { return pair.sessions(1) == 5; }));
  EXPECT_EQ(pair.sessions(0), 0u);
}

// Destroys engine `first`, then the other. The listening socket stays open
// until its last handle is gone, and neither teardown leaves a completion of
// its own behind on the other's port.
void TeardownInOrder(uint32_t first) {
  SharedListener pair;
  ASSERT(pair.ok());
  uint16_t port = pair.port();
  pair.Destroy(first);
  if (first == 1) {
    // Engine 1 took its cancelled accepts off engine 0's port itself: none
    // is left there for engine 0 to send on to memory that is gone.
    int rounds = 0;
    pair.PollUntil([&] { return ++rounds > 20; });
    EXPECT_EQ(pair.Counter(0, "acceptsForwarded"), 0u);
    EXPECT_EQ(pair.Counter(0, "acceptsPending"), 32u);
  }
  EXPECT_TRUE(!Refused(port));
  pair.Destroy(1 - first);
  EXPECT_TRUE(Refused(port));
}

TEST(TeardownFirstEngineFirstThenTheOtherAndTheListenerIsGone) { TeardownInOrder(0); }

TEST(TeardownOtherEngineFirstThenTheFirstAndTheListenerIsGone) { TeardownInOrder(1); }

TEST(ConnectExOpensASessionThatCarriesBytesBothWays) {
  Rig rig;
  ASSERT(rig.ok());
  SessionId client = 0;
  SocketAddress remote = Loopback(rig.port());
  ASSERT(rig.engine().Connect(remote, nullptr, 0, &client).ok());
  ASSERT(rig.PollUntil([&] {
    return rig.Find(EventType::kConnected, client) != nullptr && rig.FirstSession() != 0;
  }));
  SessionId server = rig.FirstSession();
  EXPECT_TRUE(server != client);
  EXPECT_TRUE(rig.engine().Send(client, "ping", 4) == SendResult::kOk);
  EXPECT_TRUE(rig.PollUntil([&] { return rig.DataOf(server) == "ping"; }));
  EXPECT_TRUE(rig.engine().Send(server, "pong!", 5) == SendResult::kOk);
  EXPECT_TRUE(rig.PollUntil([&] { return rig.DataOf(client) == "pong!"; }));
  EXPECT_EQ(rig.engine().SnapshotStats().connects, 1u);
}

TEST(ConnectExBindsTheGivenLocalAddressFirst) {
  Rig rig;
  ASSERT(rig.ok());
  SessionId client = 0;
  SocketAddress remote = Loopback(rig.port());
  SocketAddress local = Loopback(0);
  local.addr[3] = 2;  // 127.0.0.2: a source other than the default
  ASSERT(rig.engine().Connect(remote, &local, 0, &client).ok());
  ASSERT(rig.PollUntil([&] { return rig.FirstSession() != 0; }));
  EXPECT_TRUE(rig.PollUntil([&] { return rig.Find(EventType::kConnected, client) != nullptr; }));
  // The server side saw the bound source address (kSession carries it).
  const Event* session = rig.Find(EventType::kSession);
  ASSERT_EQ(session->data.size(), sizeof(SocketAddress));
  SocketAddress peer;
  std::memcpy(&peer, session->data.data(), sizeof(peer));
  EXPECT_EQ(peer.family, 4);
  EXPECT_EQ(peer.addr[0], 127);
  EXPECT_EQ(peer.addr[3], 2);
}

TEST(ConnectExToAClosedPortReportsConnRefused) {
  Rig rig;
  ASSERT(rig.ok());
  SessionId client = 0;
  ASSERT(rig.engine().Connect(Loopback(UnusedPort()), nullptr, 9, &client).ok());
  // A session that never opened is reported by its connect token, not as a
  // close: JS knows it only by that token.
  ASSERT(rig.PollUntil([&] { return rig.Find(EventType::kConnectFailed, client) != nullptr; }));
  const Event* failed = rig.Find(EventType::kConnectFailed, client);
  EXPECT_TRUE(failed->error() == SysError::kConnRefused);
  EXPECT_EQ(failed->token(), 9u);
  EXPECT_TRUE(rig.Find(EventType::kClose, client) == nullptr);
  EXPECT_TRUE(rig.Find(EventType::kConnected, client) == nullptr);
  EXPECT_EQ(rig.engine().SnapshotStats().connect_errors, 1u);
  EXPECT_TRUE(rig.PollUntil([&] { return rig.engine().SnapshotStats().in_use == 0; }));
}

TEST(AClosedSlotIsReleasedOnlyOnceItsCancelledReadIsBack) {
  Rig rig;
  ASSERT(rig.ok());
  SessionId client = 0;
  ASSERT(rig.engine().Connect(Loopback(rig.port()), nullptr, 0, &client).ok());
  ASSERT(rig.PollUntil([&] { return rig.FirstSession() != 0; }));
  ASSERT(rig.PollUntil([&] { return rig.Find(EventType::kConnected, client) != nullptr; }));
  SessionId server = rig.FirstSession();
  uint64_t in_use = rig.engine().SnapshotStats().in_use;
  EXPECT_EQ(in_use, 2u);
  // Both sessions have a zero-byte read posted; aborting one cancels it.
  EXPECT_TRUE(rig.engine().Close(server, CloseMode::kAbort));
  EXPECT_TRUE(rig.engine().Send(server, "x", 1) == SendResult::kStale);
  ASSERT(rig.PollUntil([&] { return rig.Find(EventType::kClose, server) != nullptr; }));
  EXPECT_TRUE(rig.PollUntil([&] { return rig.Find(EventType::kClose, client) != nullptr; }));
  EXPECT_TRUE(rig.PollUntil([&] { return rig.engine().SnapshotStats().in_use == 0; }));
}

TEST(ShutdownCancelsEveryPostedAcceptBeforeReportingClosed) {
  Rig rig;
  ASSERT(rig.ok());
  rig.engine().Shutdown();
  ASSERT(rig.PollUntil([&] { return rig.Find(EventType::kServerClosed) != nullptr; }));
  EXPECT_TRUE(rig.backend().Quiescent());
}

int main(int argc, char** argv) {
  WSADATA data;
  WSAStartup(MAKEWORD(2, 2), &data);
  int rc = acceptpool_test::RunAll(argc, argv);
  WSACleanup();
  return rc;
}
