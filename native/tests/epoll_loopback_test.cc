// The engine on the real epoll backend, over loopback sockets: accept, echo,
// large sends through the queue, peer close, reset, stale ids after slot
// reuse, shutdown. Every wait is bounded. Also run under ThreadSanitizer
// (one test reads with a client thread).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "backends/epoll/epoll_backend.h"
#include "core/engine.h"
#include "loopback_server.h"
#include "posix_client.h"
#include "test_main.h"

using namespace acceptpool;

namespace {

using acceptpool_test::Bytes;
using acceptpool_test::Connect;
using acceptpool_test::Event;
using acceptpool_test::kWaitMs;
using acceptpool_test::LoopbackConfig;
using acceptpool_test::RecvAvailable;
using acceptpool_test::RecvExactly;
using acceptpool_test::SendAll;

class Server : public acceptpool_test::LoopbackServer {
 public:
  explicit Server(const EngineConfig& config = LoopbackConfig())
      : LoopbackServer(config, MakeEpollBackend()) {}
};

uint16_t LocalPort(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return ntohs(addr.sin_port);
}

}  // namespace

TEST(ListensOnAnEphemeralLoopbackPort) {
  Server server;
  ASSERT(server.ok());
  EXPECT(server.port() != 0);
  EXPECT_EQ(std::string(server.engine().backend_name()), std::string("epoll"));
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
  EXPECT_EQ(peer.addr[3], 1);
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
  std::string received = server.DataOf(id);
  EXPECT_EQ(received, message);
  // Echo it back in the pieces it arrived in.
  for (const Event& e : server.events()) {
    if (e.type != EventType::kData) continue;
    SendResult r = server.engine().Send(id, e.data.data(), e.data.size());
    EXPECT(r == SendResult::kOk || r == SendResult::kBackpressure);
  }
  server.PollOnce(0);
  std::string echoed = RecvExactly(fd, message.size());
  EXPECT_EQ(echoed, message);
  Stats st = server.engine().SnapshotStats();
  EXPECT_EQ(st.bytes_in, message.size());
  EXPECT_EQ(st.bytes_out, message.size());
  close(fd);
}

TEST(LargeSendsFlushThroughTheQueueWithBackpressureAndDrain) {
  Server server;
  ASSERT(server.ok());
  int fd = Connect(server.port(), 128 * 1024);
  ASSERT(fd >= 0);
  ASSERT(server.PollUntil([&] { return server.Sessions() == 1; }));
  SessionId id = server.SessionAt(0);
  // More than the kernel's largest send buffer (tcp_wmem max, 4 MiB by
  // default) plus the client's receive buffer.
  std::string payload = Bytes(8 * 1024 * 1024, 2);
  // The client only starts reading once the server has queued everything,
  // so the socket buffer fills and the rest must wait in the send queue.
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
  EXPECT(got.size() == payload.size());
  EXPECT(got == payload);
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
  // What the facade does on 'end': end() its side too.
  EXPECT(server.engine().Close(id, CloseMode::kEnd));
  ASSERT(server.PollUntil([&] { return server.Find(EventType::kClose, id) != nullptr; }));
  const Event* close_event = server.Find(EventType::kClose, id);
  EXPECT_EQ(close_event->reason(), static_cast<uint32_t>(CloseReason::kRemote));
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

TEST(StaleIdIsRefusedAfterTheSlotIsReused) {
  Server server;
  ASSERT(server.ok());
  int a = Connect(server.port());
  ASSERT(a >= 0);
  ASSERT(server.PollUntil([&] { return server.Sessions() == 1; }));
  SessionId old_id = server.SessionAt(0);
  EXPECT(server.engine().Close(old_id, CloseMode::kAbort));
  ASSERT(server.PollUntil([&] { return server.Find(EventType::kClose, old_id) != nullptr; }));
  int b = Connect(server.port());
  ASSERT(b >= 0);
  ASSERT(server.PollUntil([&] { return server.Sessions() == 2; }));
  SessionId new_id = server.SessionAt(1);
  EXPECT_EQ(SlotOf(new_id), SlotOf(old_id));  // lowest free slot: the same one
  EXPECT_NE(new_id, old_id);
  EXPECT(server.engine().Send(old_id, "stale!", 6) == SendResult::kStale);
  EXPECT(server.engine().Send(new_id, "fresh", 5) == SendResult::kOk);
  EXPECT_FALSE(server.engine().Close(old_id, CloseMode::kAbort));
  server.PollOnce(0);
  EXPECT_EQ(RecvExactly(b, 5), std::string("fresh"));
  EXPECT_EQ(RecvAvailable(b, 100), std::string());  // nothing meant for the old id
  EXPECT_EQ(server.engine().SnapshotStats().stale_commands, 2u);
  // The first client was reset by the abort.
  bool eof = false;
  EXPECT_EQ(RecvAvailable(a, 1000, &eof), std::string());
  EXPECT(eof);
  close(a);
  close(b);
}

// What a peer that uploads without pause while it reads saw of the server.
struct UploadResult {
  std::string received;
  bool eof = false;
  int error = 0;  // errno of a failed send/recv, or SO_ERROR at the end
};

// Uploads at least `min_bytes` as fast as the server takes them while
// reading everything; ends once it has both sent that much and seen the
// server's EOF, then waits for the connection to finish.
UploadResult UploadUntilEof(int fd, size_t min_bytes) {
  UploadResult r;
  std::string block = Bytes(64 * 1024, 11);
  size_t sent = 0;
  bool shut = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kWaitMs);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!shut && r.eof && sent >= min_bytes) {
      shutdown(fd, SHUT_WR);
      shut = true;
    }
    pollfd p{fd, static_cast<short>(POLLIN | (shut ? 0 : POLLOUT)), 0};
    if (poll(&p, 1, 100) <= 0) {
      if (shut) break;  // quiet after both FINs: done
      continue;
    }
    if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0 && !r.eof) {
      char buf[65536];
      ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (n > 0) r.received.append(buf, static_cast<size_t>(n));
      if (n == 0) r.eof = true;
      if (n < 0 && errno != EAGAIN) {
        r.error = errno;
        return r;
      }
    }
    if ((p.revents & POLLERR) != 0 || (shut && r.eof && (p.revents & POLLHUP) != 0)) break;
    if (!shut && (p.revents & POLLOUT) != 0) {
      ssize_t n = send(fd, block.data(), block.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<size_t>(n);
      if (n < 0 && errno != EAGAIN) {
        r.error = errno;
        return r;
      }
    }
  }
  int err = 0;
  socklen_t len = sizeof(err);
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  r.error = err;
  return r;
}

TEST(ASlotsNextOccupantIsReadWhateverItsLastOneHadAskedFor) {
  // The first occupant stops being read (its peer sent FIN); the backend
  // keeps that in its per-slot bytes, which the next occupant of the slot
  // must not inherit.
  Server server;
  ASSERT(server.ok());
  int a = Connect(server.port());
  ASSERT(a >= 0);
  ASSERT(server.PollUntil([&] { return server.Sessions() == 1; }));
  SessionId first = server.SessionAt(0);
  ASSERT(shutdown(a, SHUT_WR) == 0);
  ASSERT(server.PollUntil([&] { return server.Find(EventType::kEnd, first) != nullptr; }));
  EXPECT(server.engine().Close(first, CloseMode::kAbort));
  ASSERT(server.PollUntil([&] { return server.Find(EventType::kClose, first) != nullptr; }));
  int b = Connect(server.port());
  ASSERT(b >= 0);
  ASSERT(server.PollUntil([&] { return server.Sessions() == 2; }));
  SessionId second = server.SessionAt(1);
  EXPECT_EQ(SlotOf(second), SlotOf(first));
  ASSERT(SendAll(b, "read me"));
  EXPECT(server.PollUntil([&] { return server.DataOf(second).size() == 7; }, 1000));
  EXPECT_EQ(server.DataOf(second), std::string("read me"));
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
  // Reply and close while the upload is under way.
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
  EXPECT_EQ(result.received.size(), reply.size());
  EXPECT(result.received == reply);
  Stats st = server.engine().SnapshotStats();
  EXPECT_EQ(st.linger_ends, 1u);
  EXPECT(st.bytes_discarded > 0u);
  EXPECT_EQ(st.in_use, 0u);
  close(fd);
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
  // The server's FIN; the clients answer with theirs, which ends the linger.
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
  // The listener is gone.
  int c = Connect(server.port());
  EXPECT(c < 0);
  if (c >= 0) close(c);
  close(a);
  close(b);
}

int main(int argc, char** argv) { return acceptpool_test::RunAll(argc, argv); }
