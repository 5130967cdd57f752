// The engine on the libuv backend (a system libuv here), over loopback
// sockets: accept, echo, large sends through queued uv_writes, peer close,
// reset, pause/resume, stale ids while close callbacks are outstanding,
// outgoing connects, shutdown, and the loop's descriptor waking Node's loop
// (deadline, new connection). Every wait is bounded. Also run under
// ThreadSanitizer (tests with a client thread, and Wake from another one).
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "backends/libuv/libuv_backend.h"
#include "core/engine.h"
#include "loopback_server.h"
#include "test_main.h"

using namespace acceptpool;

namespace {

using acceptpool_test::Bytes;
using acceptpool_test::Connect;
using acceptpool_test::Event;
using acceptpool_test::LocalPort;
using acceptpool_test::LoopbackConfig;
using acceptpool_test::RecvAvailable;
using acceptpool_test::RecvExactly;
using acceptpool_test::SendAll;
using acceptpool_test::UploadResult;
using acceptpool_test::UploadUntilEof;

class Server : public acceptpool_test::LoopbackServer {
 public:
  explicit Server(const EngineConfig& config = LoopbackConfig())
      : LoopbackServer(config, MakeLibuvBackend()) {}

  // stats().backendCounters' queuedWrites and staleCallbacks.
  uint64_t Counter(const char* name) {
    const char* const* names = nullptr;
    size_t n = engine().BackendCounterNames(&names);
    Stats st = engine().SnapshotStats();
    for (size_t i = 0; i < n; ++i) {
      if (std::strcmp(names[i], name) == 0) return st.backend[i];
    }
    return ~0ull;
  }
};

// Whether `fd` turns readable within `ms`.
bool ReadableWithin(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, ms) == 1;
}

int64_t MsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               start)
      .count();
}

SocketAddress Loopback(uint16_t port) {
  SocketAddress a;
  a.family = 4;
  a.addr[0] = 127;
  a.addr[3] = 1;
  a.port = port;
  return a;
}

}  // namespace

TEST(ListensOnAnEphemeralLoopbackPort) {
  Server server;
  ASSERT(server.ok());
  EXPECT(server.port() != 0);
  EXPECT_EQ(std::string(server.engine().backend_name()), std::string("libuv"));
  EXPECT(server.engine().PollDescriptor() >= 0);
}

TEST(AcceptReportsTheClientsAddress) {
  Server server;
  ASSERT(server.ok());
  int fd = Connect(server.port());
  ASSERT(fd >= 0);
  ASSERT(server.PollUntil([&] { return server.Sessions() == 1; }));
  const Event* e = server.Find(EventType::kSession);
  ASSERT(e != nullptr);
  ASSERT_EQ(e->data.size(), sizeof(SocketAddress));
  SocketAddress peer;
  std::memcpy(&peer, e->data.data(), sizeof(peer));
  EXPECT_EQ(peer.family, 4);
  EXPECT_EQ(peer.port, LocalPort(fd));
  EXPECT_EQ(peer.addr[0], 127);
  close(fd);
}

TEST(EchoRoundTripIsByteExact) {
  Server server;
  ASSERT(server.ok());
  int fd = Connect(server.port());
  ASSERT(fd >= 0);
  ASSERT(server.PollUntil([&] { return server.Sessions() == 1; }));
  SessionId id = server.SessionAt(0);
  std::string message = Bytes(24 * 1024 + 7, 1);
  ASSERT(SendAll(fd, message));
  ASSERT(server.PollUntil([&] { return server.DataOf(id).size() >= message.size(); }));
  EXPECT_EQ(server.DataOf(id), message);
  for (const Event& e : server.events()) {
    if (e.type != EventType::kData) continue;
    SendResult r = server.engine().Send(id, e.data.data(), e.data.size());
    EXPECT(r == SendResult::kOk || r == SendResult::kBackpressure);
  }
  server.PollOnce(0);
  EXPECT_EQ(RecvExactly(fd, message.size()), message);
  Stats st = server.engine().SnapshotStats();
  EXPECT_EQ(st.bytes_in, message.size());
  EXPECT_EQ(st.bytes_out, message.size());
  close(fd);
}

TEST(LargeSendsWaitInQueuedWritesWithBackpressureAndDrain) {
  Server server;
  ASSERT(server.ok());
  int fd = Connect(server.port(), 128 * 1024);
  ASSERT(fd >= 0);
  ASSERT(server.PollUntil([&] { return server.Sessions() == 1; }));
  SessionId id = server.SessionAt(0);
  // More than the kernel's send buffer and the client's receive buffer: the
  // rest waits in the send queue, then leaves through uv_writes.
  std::string payload = Bytes(8 * 1024 * 1024, 2);
  std::atomic<bool> go{false};
  std::string got;
  std::thread reader([&] {
    while (!go.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    got = RecvExactly(fd, payload.size());
  });
  bool pressure = false;
  for (size_t off = 0; off < payload.size(); off += 512 * 1024) {
    SendResult r = server.engine().Send(id, payload.data() + off, 512 * 1024);
    EXPECT(r == SendResult::kOk || r == SendResult::kBackpressure);
    pressure = pressure || r == SendResult::kBackpressure;
  }
  EXPECT(pressure);
  EXPECT(server.engine().BufferedAmount(id) > 0);
  go = true;
  bool drained = server.PollUntil(
      [&] {
        return server.engine().BufferedAmount(id) == 0 &&
               server.Find(EventType::kDrain, id) != nullptr;
      },
      20000);
  EXPECT(drained);
  reader.join();
  EXPECT(got == payload);
  EXPECT(server.Counter("queuedWrites") > 0u);
  close(fd);
}

TEST(PeerCloseGivesEndThenRemoteClose) {
  Server server;
  ASSERT(server.ok());
  int fd = Connect(server.port());
  ASSERT(fd >= 0);
  ASSERT(server.PollUntil([&] { return server.Sessions() == 1; }));
  SessionId id = server.SessionAt(0);
  ASSERT(SendAll(fd, "last words"));
  close(fd);
  ASSERT(server.PollUntil([&] { return server.Find(EventType::kEnd, id) != nullptr; }));
  EXPECT_EQ(server.DataOf(id), std::string("last words"));
  EXPECT(server.Find(EventType::kClose, id) == nullptr);
  EXPECT(server.engine().Close(id, CloseMode::kEnd));
  ASSERT(server.PollUntil([&] { return server.Find(EventType::kClose, id) != nullptr; }));
  EXPECT_EQ(server.Find(EventType::kClose, id)->reason(),
            static_cast<uint32_t>(CloseReason::kRemote));
  EXPECT_EQ(server.engine().SnapshotStats().in_use, 0u);
}

TEST(ResetGivesReasonResetWithEconnreset) {
  Server server;
  ASSERT(server.ok());
  int fd = Connect(server.port());
  ASSERT(fd >= 0);
  ASSERT(server.PollUntil([&] { return server.Sessions() == 1; }));
  SessionId id = server.SessionAt(0);
  linger lg{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  close(fd);  // RST
  ASSERT(server.PollUntil([&] { return server.Find(EventType::kClose, id) != nullptr; }));
  const Event* close_event = server.Find(EventType::kClose, id);
  EXPECT_EQ(close_event->reason(), static_cast<uint32_t>(CloseReason::kReset));
  EXPECT(close_event->error() == SysError::kConnReset);
  EXPECT_EQ(close_event->raw(), ECONNRESET);
}

TEST(PauseStopsReadingAndResumeDeliversWhatWaitedInTheKernel) {
  Server server;
  ASSERT(server.ok());
  int fd = Connect(server.port());
  ASSERT(fd >= 0);
  ASSERT(server.PollUntil([&] { return server.Sessions() == 1; }));
  SessionId id = server.SessionAt(0);
  ASSERT(server.engine().Control(id, SessionControl::kPause, 0, 0));
  ASSERT(SendAll(fd, "held back"));
  // Paused: rounds go by and nothing is read.
  auto start = std::chrono::steady_clock::now();
  while (MsSince(start) < 200) server.PollOnce(10);
  EXPECT(server.DataOf(id).empty());
  ASSERT(server.engine().Control(id, SessionControl::kResume, 0, 0));
  EXPECT(server.PollUntil([&] { return server.DataOf(id) == "held back"; }));
  close(fd);
}

TEST(StaleIdsAreRefusedAndTheSlotWaitsForTheCloseCallback) {
  Server server;
  ASSERT(server.ok());
  int a = Connect(server.port());
  ASSERT(a >= 0);
  ASSERT(server.PollUntil([&] { return server.Sessions() == 1; }));
  SessionId old_id = server.SessionAt(0);
  // A queued write is outstanding when the session closes: its callback
  // (cancelled) and the close callback both come after Close returns.
  std::string big = Bytes(4 * 1024 * 1024, 3);
  server.engine().Send(old_id, big.data(), big.size());
  EXPECT(server.Counter("queuedWrites") > 0u);
  EXPECT(server.engine().Close(old_id, CloseMode::kAbort));
  // Until libuv has called the close callback, the slot is not free.
  EXPECT_EQ(server.engine().SnapshotStats().in_use, 1u);
  ASSERT(server.PollUntil([&] { return server.Find(EventType::kClose, old_id) != nullptr; }));
  ASSERT(server.PollUntil([&] { return server.engine().SnapshotStats().in_use == 0; }));
  int b = Connect(server.port());
  ASSERT(b >= 0);
  ASSERT(server.PollUntil([&] { return server.Sessions() == 2; }));
  SessionId new_id = server.SessionAt(1);
  EXPECT_EQ(SlotOf(new_id), SlotOf(old_id));  // lowest free slot: the same one
  EXPECT_NE(new_id, old_id);
  EXPECT(server.engine().Send(old_id, "stale!", 6) == SendResult::kStale);
  EXPECT(server.engine().Send(new_id, "fresh", 5) == SendResult::kOk);
  EXPECT_FALSE(server.engine().Close(old_id, CloseMode::kAbort));
  EXPECT_FALSE(server.engine().Control(old_id, SessionControl::kPause, 0, 0));
  server.PollOnce(0);
  EXPECT_EQ(RecvExactly(b, 5), std::string("fresh"));
  EXPECT_EQ(RecvAvailable(b, 100), std::string());  // nothing meant for the old id
  EXPECT_EQ(server.engine().SnapshotStats().stale_commands, 3u);
  // Every libuv callback found the occupant it was for.
  EXPECT_EQ(server.Counter("staleCallbacks"), 0u);
  close(a);
  close(b);
}

TEST(ASlotsNextOccupantIsReadWhateverItsLastOneHadAskedFor) {
  Server server;
  ASSERT(server.ok());
  int a = Connect(server.port());
  ASSERT(a >= 0);
  ASSERT(server.PollUntil([&] { return server.Sessions() == 1; }));
  SessionId first = server.SessionAt(0);
  ASSERT(server.engine().Control(first, SessionControl::kPause, 0, 0));
  EXPECT(server.engine().Close(first, CloseMode::kAbort));
  ASSERT(server.PollUntil([&] { return server.Find(EventType::kClose, first) != nullptr; }));
  int b = Connect(server.port());
  ASSERT(b >= 0);
  ASSERT(server.PollUntil([&] { return server.Sessions() == 2; }));
  SessionId second = server.SessionAt(1);
  EXPECT_EQ(SlotOf(second), SlotOf(first));
  ASSERT(SendAll(b, "read me"));
  EXPECT(server.PollUntil([&] { return server.DataOf(second).size() == 7; }, 1000));
  close(a);
  close(b);
}

TEST(GracefulCloseWhileThePeerUploadsDeliversTheReplyThenACleanEnd) {
  Server server;
  ASSERT(server.ok());
  int fd = Connect(server.port());
  ASSERT(fd >= 0);
  ASSERT(server.PollUntil([&] { return server.Sessions() == 1; }));
  SessionId id = server.SessionAt(0);
  UploadResult result;
  std::thread client([&] { result = UploadUntilEof(fd, 8 * 1024 * 1024); });
  bool uploading = server.PollUntil([&] { return !server.DataOf(id).empty(); });
  std::string reply = Bytes(4 * 1024 * 1024, 12);
  server.engine().Send(id, reply.data(), reply.size());
  EXPECT(server.engine().Close(id, CloseMode::kGraceful));
  bool closed = server.PollUntil([&] { return server.Find(EventType::kClose, id) != nullptr; });
  client.join();
  EXPECT(uploading);
  ASSERT(closed);
  EXPECT_EQ(server.Find(EventType::kClose, id)->reason(),
            static_cast<uint32_t>(CloseReason::kLocal));
  EXPECT_EQ(result.error, 0);  // no reset
  EXPECT(result.eof);
  EXPECT(result.received == reply);
  EXPECT_EQ(server.engine().SnapshotStats().in_use, 0u);
  close(fd);
}

TEST(AnOutgoingConnectOpensAndEchoesAndARefusedOneFails) {
  Server server;
  ASSERT(server.ok());
  SessionId client = 0;
  ASSERT(server.engine().Connect(Loopback(server.port()), nullptr, 7, &client).ok());
  ASSERT(server.PollUntil([&] {
    return server.Find(EventType::kConnected, client) != nullptr && server.Sessions() == 1;
  }));
  EXPECT_EQ(server.Find(EventType::kConnected, client)->token(), 7u);
  SessionId accepted = server.SessionAt(0);
  EXPECT(server.engine().Send(client, "ping", 4) == SendResult::kOk);
  ASSERT(server.PollUntil([&] { return server.DataOf(accepted) == "ping"; }));
  EXPECT(server.engine().Send(accepted, "pong", 4) == SendResult::kOk);
  ASSERT(server.PollUntil([&] { return server.DataOf(client) == "pong"; }));

  // A port nobody listens on: the one just closed.
  int probe = Connect(server.port());
  ASSERT(probe >= 0);
  uint16_t unused = LocalPort(probe);
  close(probe);
  SessionId refused = 0;
  ASSERT(server.engine().Connect(Loopback(unused), nullptr, 8, &refused).ok());
  ASSERT(server.PollUntil([&] {
    return server.Find(EventType::kConnectFailed) != nullptr ||
           server.Find(EventType::kClose, refused) != nullptr;
  }));
  const Event* failed = server.Find(EventType::kConnectFailed);
  const Event* closed = server.Find(EventType::kClose, refused);
  EXPECT(failed != nullptr || closed != nullptr);
  if (failed != nullptr) EXPECT(failed->error() == SysError::kConnRefused);
  if (closed != nullptr) EXPECT(closed->error() == SysError::kConnRefused);
}

TEST(ShutdownClosesClientsAndReportsServerClosed) {
  Server server;
  ASSERT(server.ok());
  int a = Connect(server.port());
  int b = Connect(server.port());
  ASSERT(a >= 0 && b >= 0);
  ASSERT(server.PollUntil([&] { return server.Sessions() == 2; }));
  server.engine().Shutdown();
  server.PollOnce(0);
  for (int fd : {a, b}) {
    bool eof = false;
    RecvAvailable(fd, 1000, &eof);
    EXPECT(eof);
    shutdown(fd, SHUT_WR);
  }
  ASSERT(server.PollUntil([&] { return server.engine().closed(); }));
  EXPECT(server.events().back().type == EventType::kServerClosed);
  for (size_t i = 0; i < 2; ++i) {
    const Event* e = server.Find(EventType::kClose, server.SessionAt(i));
    if (!EXPECT(e != nullptr)) continue;
    EXPECT_EQ(e->reason(), static_cast<uint32_t>(CloseReason::kShutdown));
  }
  int c = Connect(server.port());
  EXPECT(c < 0);
  if (c >= 0) close(c);
  close(a);
  close(b);
}

// What the inline driver relies on: Node's loop watches the descriptor, and
// only its readability brings the next round.

TEST(TheDescriptorTurnsReadableWhenAClientConnects) {
  Server server;
  ASSERT(server.ok());
  server.PollOnce(0);
  server.PollOnce(0);
  int fd = Connect(server.port());
  ASSERT(fd >= 0);
  EXPECT(ReadableWithin(server.engine().PollDescriptor(), 1000));
  ASSERT(server.PollUntil([&] { return server.Sessions() == 1; }, 1000));
  // Data on the new session, whose socket libuv registered in a later round.
  server.PollOnce(0);
  server.PollOnce(0);
  ASSERT(SendAll(fd, "x"));
  EXPECT(ReadableWithin(server.engine().PollDescriptor(), 1000));
  close(fd);
}

TEST(TheDescriptorTurnsReadableWhenTheDeadlineIsDueAndNotBefore) {
  Server server;
  ASSERT(server.ok());
  server.PollOnce(0);
  server.PollOnce(0);
  int pd = server.engine().PollDescriptor();
  server.backend().ArmTimer(150);
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(ReadableWithin(pd, 50));
  EXPECT(ReadableWithin(pd, 2000));
  int64_t waited = MsSince(start);
  EXPECT(waited >= 140);
  EXPECT(waited < 1000);
}

TEST(WakeFromAnotherThreadEndsABlockingPoll) {
  Server server;
  ASSERT(server.ok());
  server.PollOnce(0);
  server.PollOnce(0);
  auto start = std::chrono::steady_clock::now();
  std::thread waker([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    server.engine().Wake();
  });
  // The tick (1 s) would end it too: the wake must come first.
  server.engine().Poll(5000);
  int64_t waited = MsSince(start);
  waker.join();
  EXPECT(waited >= 40);  // it did block
  EXPECT(waited < 900);
}

int main(int argc, char** argv) {
  // libuv writes with write(2), not send(MSG_NOSIGNAL): a write to a reset
  // socket must fail with EPIPE, not kill the process. Node ignores SIGPIPE
  // the same way.
  signal(SIGPIPE, SIG_IGN);
  return acceptpool_test::RunAll(argc, argv);
}
