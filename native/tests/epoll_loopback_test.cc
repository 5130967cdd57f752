// The engine on the real epoll backend, over loopback sockets: the cases
// every POSIX backend passes (loopback_cases.h: accept, echo, large sends
// through the queue, peer close, reset, stale ids after slot reuse, graceful
// close, shutdown). Every wait is bounded. Also run under ThreadSanitizer
// (two cases read or upload with a client thread).
#include <string>

#include "backends/epoll/epoll_backend.h"
#include "core/engine.h"
#include "loopback_cases.h"
#include "loopback_server.h"
#include "test_main.h"

using namespace acceptpool;

TEST(ListensOnAnEphemeralLoopbackPort) {
  acceptpool_test::LoopbackServer server(acceptpool_test::LoopbackConfig(), MakeEpollBackend());
  ASSERT(server.ok());
  EXPECT(server.port() != 0);
  EXPECT_EQ(std::string(server.engine().backend_name()), std::string("epoll"));
  EXPECT(server.engine().PollDescriptor() >= 0);
}

ACCEPTPOOL_LOOPBACK_CASES(MakeEpollBackend)

int main(int argc, char** argv) { return acceptpool_test::RunAll(argc, argv); }
