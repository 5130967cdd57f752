// The engine on the real IOCP backend, over loopback (Windows; run under
// Wine by scripts/test-win.js). Covers what the JS suite cannot reach on this
// branch: ConnectEx (outgoing sessions), and the slot release rule with
// operations still in flight. Every wait is bounded.
#include <winsock2.h>
#include <ws2tcpip.h>

#include <cstring>

#include "backends/iocp/iocp_backend.h"
#include "core/engine.h"
#include "loopback_server.h"
#include "test_main.h"

using namespace acceptpool;

namespace {

using acceptpool_test::Event;
using acceptpool_test::LoopbackConfig;

SocketAddress Loopback(uint16_t port) {
  SocketAddress a;
  a.family = 4;
  a.addr[0] = 127;
  a.addr[3] = 1;
  a.port = port;
  return a;
}

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

}  // namespace

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
