// The engine on the libuv backend (a system libuv here), over loopback
// sockets: the cases every POSIX backend passes (loopback_cases.h: accept,
// echo, large sends, peer close, reset, stale ids, graceful close,
// shutdown), and libuv's own: pause/resume, stale ids while a cancelled
// write and the close callback are outstanding, outgoing connects, and the
// loop's descriptor waking Node's loop (deadline, new connection, new data).
// Every wait is bounded. Also run under ThreadSanitizer (client threads, and
// Wake from another thread).
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "backends/libuv/libuv_backend.h"
#include "core/engine.h"
#include "loopback_cases.h"
#include "loopback_server.h"
#include "test_main.h"

using namespace acceptpool;

namespace {

using acceptpool_test::Bytes;
using acceptpool_test::Connect;
using acceptpool_test::Event;
using acceptpool_test::LocalPort;
using acceptpool_test::Loopback;
using acceptpool_test::LoopbackConfig;
using acceptpool_test::RecvAvailable;
using acceptpool_test::RecvExactly;
using acceptpool_test::SendAll;

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

}  // namespace

TEST(ListensOnAnEphemeralLoopbackPort) {
  Server server;
  ASSERT(server.ok());
  EXPECT(server.port() != 0);
  EXPECT_EQ(std::string(server.engine().backend_name()), std::string("libuv"));
  EXPECT(server.engine().PollDescriptor() >= 0);
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

TEST(ASlotWaitsForTheCloseCallbackAndNoCallbackReachesItsNextOccupant) {
  Server server;
  ASSERT(server.ok());
  int a = Connect(server.port(), 64 * 1024);
  ASSERT(a >= 0);
  ASSERT(server.PollUntil([&] { return server.Sessions() == 1; }));
  SessionId old_id = server.SessionAt(0);
  // A queued write is outstanding when the session closes: its callback
  // (cancelled) and the close callback both come after Close returns.
  std::string big = Bytes(4 * 1024 * 1024, 3);
  server.engine().Send(old_id, big.data(), big.size());
  EXPECT(server.Counter("queuedWrites") > 0u);
  EXPECT(server.engine().Close(old_id, CloseMode::kAbort));
  EXPECT_EQ(server.engine().SnapshotStats().in_use, 1u);  // not free before the callback
  // Refused while the callbacks are outstanding, as after.
  EXPECT(server.engine().Send(old_id, "late", 4) == SendResult::kStale);
  ASSERT(server.PollUntil([&] { return server.engine().SnapshotStats().in_use == 0; }));
  int b = Connect(server.port());
  ASSERT(b >= 0);
  ASSERT(server.PollUntil([&] { return server.Sessions() == 2; }));
  SessionId new_id = server.SessionAt(1);
  EXPECT_EQ(SlotOf(new_id), SlotOf(old_id));
  EXPECT(server.engine().Send(old_id, "stale!", 6) == SendResult::kStale);
  EXPECT(server.engine().Send(new_id, "fresh", 5) == SendResult::kOk);
  server.PollOnce(0);
  EXPECT_EQ(RecvExactly(b, 5), std::string("fresh"));
  EXPECT_EQ(RecvAvailable(b, 100), std::string());
  // Every libuv callback found the occupant it was for.
  EXPECT_EQ(server.Counter("staleCallbacks"), 0u);
  close(a);
  close(b);
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

TEST(AUnixSocketListenerServesPipeSessionsAndRemovesItsPathWhenItStops) {
  std::string path = "/tmp/acceptpool-libuv-test-" + std::to_string(getpid()) + ".sock";
  acceptpool_test::LoopbackServer server(LoopbackConfig(), MakeLibuvBackend(), path);
  ASSERT(server.ok());
  EXPECT_EQ(access(path.c_str(), F_OK), 0);
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT(fd >= 0);
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  std::memcpy(un.sun_path, path.c_str(), path.size());
  ASSERT(connect(fd, reinterpret_cast<sockaddr*>(&un), sizeof(un)) == 0);
  ASSERT(server.PollUntil([&] { return server.Sessions() == 1; }));
  SessionId id = server.SessionAt(0);
  ASSERT(SendAll(fd, "over a pipe"));
  ASSERT(server.PollUntil([&] { return server.DataOf(id) == "over a pipe"; }));
  EXPECT(server.engine().Send(id, "back", 4) == SendResult::kOk);
  server.PollOnce(0);
  EXPECT_EQ(RecvExactly(fd, 4), std::string("back"));
  close(fd);
  ASSERT(server.PollUntil([&] { return server.Find(EventType::kEnd, id) != nullptr; }));
  EXPECT(server.engine().Close(id, CloseMode::kEnd));
  ASSERT(server.PollUntil([&] { return server.Find(EventType::kClose, id) != nullptr; }));
  server.engine().Shutdown();
  ASSERT(server.PollUntil([&] { return server.engine().closed(); }));
  EXPECT(access(path.c_str(), F_OK) != 0);
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

ACCEPTPOOL_LOOPBACK_CASES(MakeLibuvBackend)

int main(int argc, char** argv) {
  // libuv writes with write(2), not send(MSG_NOSIGNAL): a write to a reset
  // socket must fail with EPIPE, not kill the process. Node ignores SIGPIPE
  // the same way.
  signal(SIGPIPE, SIG_IGN);
  return acceptpool_test::RunAll(argc, argv);
}
