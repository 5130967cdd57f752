// The load generator's state machine against the fake backend, one step at
// a time with a clock the test moves: what each event leads to in each mode,
// error counting by SysError, retries after a pause, timeouts, the measure
// window, source addresses, and the drain at the end. Plus the latency
// histogram's bucket arithmetic and the http modes' response reader.
#include "loadgen/load_generator.h"

#include <memory>
#include <string>
#include <vector>

#include "fake_backend.h"
#include "test_main.h"

using namespace acceptpool;
using acceptpool_test::FakeBackend;
using acceptpool_test::FakeSocket;

namespace {

constexpr int64_t kT0 = 1000000;
constexpr int64_t kRetryUs = 10000;

LoadConfig ConfigFor(LoadMode mode) {
  LoadConfig c;
  c.mode = mode;
  c.remote.family = 4;
  c.remote.addr[0] = 127;
  c.remote.addr[3] = 1;
  c.remote.port = 4242;
  c.connections = 64;
  c.threads = 1;
  c.message_size = 16;
  c.max_connecting = 256;
  c.warmup_us = 0;
  c.duration_us = 1000LL * 1000000;  // ends only when a test says so
  c.ramp_timeout_us = 1000LL * 1000000;
  c.op_timeout_us = 3000000;
  c.retry_delay_us = kRetryUs;
  c.drain_timeout_us = 1000000;
  return c;
}

std::unique_ptr<Backend> MakeFake() { return std::make_unique<FakeBackend>(); }

uint64_t ErrorsOf(const LoadCounters& c, SysError e) { return c.errors[static_cast<size_t>(e)]; }

// A worker on a fake backend; the test plays the network and the clock.
struct Rig {
  Rig(const LoadConfig& config, uint32_t lanes) {
    auto backend = std::make_unique<FakeBackend>();
    fake = backend.get();
    worker = std::make_unique<LoadWorker>(config, 0, lanes, std::move(backend));
    init = worker->Init();
  }

  void Step(int64_t now) {
    worker->Poll(0);
    worker->Process(now);
  }

  // Outgoing sockets whose connect the test has not settled yet, oldest first.
  std::vector<SocketHandle> Unsettled() const {
    std::vector<SocketHandle> out;
    for (const auto& [h, sock] : fake->sockets) {
      if (sock.connecting && !sock.closed && fake->connect_results.count(h) == 0) out.push_back(h);
    }
    return out;
  }
  void SettleAll(Status result = Status::Ok()) {
    for (SocketHandle h : Unsettled()) fake->SettleConnect(h, result);
  }
  // Plays an echo server: every byte written so far comes back.
  void EchoAll() {
    for (auto& [h, sock] : fake->sockets) {
      if (sock.closed || sock.written.empty()) continue;
      sock.inbox += sock.written;
      sock.written.clear();
    }
  }
  // Begins a one-lane run and completes its connect at `now`: its socket.
  SocketHandle BeginOne(int64_t now) {
    worker->Begin(kT0);
    SocketHandle h = Unsettled().at(0);
    SettleAll();
    Step(now);
    return h;
  }
  // Open (connected, not closed) outgoing sockets.
  std::vector<SocketHandle> Open() const {
    std::vector<SocketHandle> out;
    for (const auto& [h, sock] : fake->sockets) {
      if (!sock.connecting && !sock.closed) out.push_back(h);
    }
    return out;
  }
  const LoadCounters& counters() const { return worker->counters(); }

  FakeBackend* fake = nullptr;
  std::unique_ptr<LoadWorker> worker;
  Status init;
};

}  // namespace

// ---------------------------------------------------------------- histogram

TEST(HistogramIsExactBelow64AndWithin3PercentAbove) {
  for (uint64_t v = 0; v < 64; ++v)
    EXPECT_EQ(LatencyHistogram::BucketHighest(LatencyHistogram::BucketOf(v)), v);
  for (uint64_t v = 64; v < 50000000; v = v + v / 7 + 1) {
    size_t b = LatencyHistogram::BucketOf(v);
    uint64_t high = LatencyHistogram::BucketHighest(b);
    EXPECT(high >= v);
    EXPECT(static_cast<double>(high - v) <= static_cast<double>(v) / 32.0);
    if (b > 0) EXPECT(LatencyHistogram::BucketHighest(b - 1) < v);
  }
  EXPECT(LatencyHistogram::BucketOf(~uint64_t{0}) < LatencyHistogram::kBuckets);
}

TEST(HistogramPercentilesMeanAndMerge) {
  LatencyHistogram a;
  LatencyHistogram b;
  for (uint64_t v = 1; v <= 50; ++v) a.Record(v);
  for (uint64_t v = 51; v <= 100; ++v) b.Record(v);
  a.Merge(b);
  EXPECT_EQ(a.count(), 100u);
  EXPECT_EQ(a.max(), 100u);
  EXPECT_EQ(a.Percentile(0.5), 50u);
  EXPECT_EQ(a.Percentile(0.99), 99u);
  EXPECT_EQ(a.Percentile(1.0), 100u);
  EXPECT(a.mean() > 50.4 && a.mean() < 50.6);
  LatencyHistogram empty;
  EXPECT_EQ(empty.Percentile(0.5), 0u);
}

// ---------------------------------------------------------------- connect-close

TEST(ConnectCloseCountsEachConnectResetsItAndConnectsAgain) {
  Rig rig(ConfigFor(LoadMode::kConnectClose), 2);
  ASSERT(rig.init.ok());
  rig.worker->Begin(kT0);
  EXPECT_EQ(rig.fake->connect_calls, 2);
  EXPECT(rig.worker->phase() == LoadPhase::kMeasure);  // no warm-up asked for
  std::vector<SocketHandle> first = rig.Unsettled();
  ASSERT_EQ(first.size(), 2u);
  rig.SettleAll();
  rig.Step(kT0 + 150);
  EXPECT_EQ(rig.counters().connected, 2u);
  EXPECT_EQ(rig.counters().completed, 2u);
  EXPECT_EQ(rig.counters().latency.count(), 2u);
  EXPECT_EQ(rig.counters().latency.max(), 150u);
  for (SocketHandle h : first) {
    EXPECT(rig.fake->Sock(h).closed);
    EXPECT(rig.fake->Sock(h).aborted);  // reset: no TIME_WAIT on the client
  }
  EXPECT_EQ(rig.fake->connect_calls, 4);
  EXPECT_EQ(rig.Unsettled().size(), 2u);
  // The close events of the first connections change nothing.
  rig.Step(kT0 + 200);
  EXPECT_EQ(rig.counters().ErrorTotal(), 0u);
  EXPECT_EQ(rig.fake->connect_calls, 4);
  EXPECT_EQ(rig.worker->progress().completed.load(), 2u);
  EXPECT(rig.fake->violations.empty());
}

TEST(ConnectFailureIsCountedBySysErrorAndRetriedAfterThePause) {
  Rig rig(ConfigFor(LoadMode::kConnectClose), 1);
  rig.worker->Begin(kT0);
  rig.SettleAll(Status::System(SysError::kConnRefused, 111, "connect"));
  rig.Step(kT0 + 10);
  EXPECT_EQ(ErrorsOf(rig.counters(), SysError::kConnRefused), 1u);
  EXPECT_EQ(rig.counters().completed, 0u);
  EXPECT_EQ(rig.worker->progress().errors.load(), 1u);
  EXPECT_EQ(rig.fake->connect_calls, 1);
  EXPECT(rig.worker->NextTimeout(kT0 + 10) > 0);
  rig.Step(kT0 + 10 + kRetryUs - 1);
  EXPECT_EQ(rig.fake->connect_calls, 1);
  rig.Step(kT0 + 10 + kRetryUs);
  EXPECT_EQ(rig.fake->connect_calls, 2);
  EXPECT_EQ(rig.Unsettled().size(), 1u);
}

TEST(ConnectThatCannotStartIsCountedAndRetried) {
  Rig rig(ConfigFor(LoadMode::kConnectClose), 1);
  rig.fake->fail_next_connect = Status::System(SysError::kAddrNotAvail, 99, "connect");
  rig.worker->Begin(kT0);
  EXPECT_EQ(ErrorsOf(rig.counters(), SysError::kAddrNotAvail), 1u);
  EXPECT_EQ(rig.Unsettled().size(), 0u);
  rig.Step(kT0 + kRetryUs);
  EXPECT_EQ(rig.fake->connect_calls, 2);
  EXPECT_EQ(rig.Unsettled().size(), 1u);
}

TEST(ConnectSlowerThanTheTimeoutIsResetAndCountedAsTimeout) {
  LoadConfig config = ConfigFor(LoadMode::kConnectClose);
  config.op_timeout_us = 1000;
  Rig rig(config, 1);
  rig.worker->Begin(kT0);
  SocketHandle stuck = rig.Unsettled().at(0);
  rig.Step(kT0 + 100000);  // past the timeout and a timeout scan
  EXPECT_EQ(rig.counters().timeouts, 1u);
  EXPECT(rig.fake->Sock(stuck).closed);
  EXPECT_EQ(rig.fake->connect_calls, 2);
  // The abandoned connect's failure event is not counted again.
  rig.Step(kT0 + 100001);
  EXPECT_EQ(rig.counters().ErrorTotal(), 1u);
}

TEST(SourceAddressesRotateOverTheRange) {
  LoadConfig config = ConfigFor(LoadMode::kConnectClose);
  config.first_source.family = 4;
  config.first_source.addr[0] = 127;
  config.first_source.addr[3] = 1;
  config.sources = 3;
  Rig rig(config, 4);
  rig.worker->Begin(kT0);
  ASSERT_EQ(rig.fake->connect_locals.size(), 4u);
  const uint8_t expected[] = {1, 2, 3, 1};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(rig.fake->connect_locals[i].family, 4);
    EXPECT_EQ(rig.fake->connect_locals[i].addr[0], 127);
    EXPECT_EQ(rig.fake->connect_locals[i].addr[3], expected[i]);
    EXPECT_EQ(rig.fake->connect_locals[i].port, 0);
  }
}

TEST(ConnectsInFlightStayUnderTheCapAndQueuedLanesStartInOrder) {
  LoadConfig config = ConfigFor(LoadMode::kIdle);
  config.max_connecting = 2;
  Rig rig(config, 5);
  rig.worker->Begin(kT0);
  EXPECT_EQ(rig.fake->connect_calls, 2);
  rig.fake->SettleConnect(rig.Unsettled().at(0));
  rig.Step(kT0 + 10);
  EXPECT_EQ(rig.worker->open(), 1u);
  EXPECT_EQ(rig.fake->connect_calls, 3);
  EXPECT_EQ(rig.Unsettled().size(), 2u);
  rig.fake->SettleConnect(rig.Unsettled().at(0),
                          Status::System(SysError::kConnRefused, 111, "connect"));
  rig.Step(kT0 + 20);
  EXPECT_EQ(rig.fake->connect_calls, 4);  // a failure frees its place too
  for (int i = 0; i < 20 && rig.worker->open() < 5; ++i) {
    rig.SettleAll();
    rig.Step(kT0 + 30 + i * kRetryUs);
    EXPECT(rig.Unsettled().size() <= 2u);
  }
  EXPECT_EQ(rig.worker->open(), 5u);
  EXPECT(rig.worker->phase() == LoadPhase::kHold);
}

// ---------------------------------------------------------------- reqrep

TEST(ReqRepSendsTheRequestChecksTheWholeEchoThenResets) {
  Rig rig(ConfigFor(LoadMode::kReqRep), 1);
  rig.worker->Begin(kT0);
  SocketHandle h = rig.Unsettled().at(0);
  rig.SettleAll();
  rig.Step(kT0 + 100);
  std::string request = rig.fake->Sock(h).written;
  EXPECT_EQ(request.size(), 16u);
  EXPECT_EQ(rig.counters().completed, 0u);
  rig.fake->PeerSend(h, request.substr(0, 5));
  rig.Step(kT0 + 200);
  EXPECT_EQ(rig.counters().completed, 0u);
  EXPECT(!rig.fake->Sock(h).closed);
  rig.fake->PeerSend(h, request.substr(5));
  rig.Step(kT0 + 300);
  EXPECT_EQ(rig.counters().completed, 1u);
  EXPECT_EQ(rig.counters().latency.max(), 300u);  // from the connect on
  EXPECT(rig.fake->Sock(h).aborted);
  EXPECT_EQ(rig.fake->connect_calls, 2);
  EXPECT_EQ(rig.counters().bytes_in, 16u);
  EXPECT_EQ(rig.counters().bytes_out, 16u);
  EXPECT_EQ(rig.counters().ErrorTotal(), 0u);
}

TEST(ReqRepReplyThatDiffersIsAMismatchAndTheLanePausesBeforeItConnectsAgain) {
  Rig rig(ConfigFor(LoadMode::kReqRep), 1);
  rig.worker->Begin(kT0);
  SocketHandle h = rig.Unsettled().at(0);
  rig.SettleAll();
  rig.Step(kT0 + 100);
  std::string reply = rig.fake->Sock(h).written;
  reply[7] = static_cast<char>(reply[7] ^ 0x40);
  rig.fake->PeerSend(h, reply);
  rig.Step(kT0 + 200);
  EXPECT_EQ(rig.counters().mismatches, 1u);
  EXPECT_EQ(rig.counters().completed, 0u);
  EXPECT(rig.fake->Sock(h).aborted);
  EXPECT_EQ(rig.fake->connect_calls, 1);
  rig.Step(kT0 + 200 + kRetryUs);
  EXPECT_EQ(rig.fake->connect_calls, 2);
}

TEST(ReqRepReplyLongerThanTheRequestIsAMismatch) {
  Rig rig(ConfigFor(LoadMode::kReqRep), 1);
  rig.worker->Begin(kT0);
  SocketHandle h = rig.Unsettled().at(0);
  rig.SettleAll();
  rig.Step(kT0 + 100);
  rig.fake->PeerSend(h, rig.fake->Sock(h).written + "x");
  rig.Step(kT0 + 200);
  EXPECT_EQ(rig.counters().mismatches, 1u);
  EXPECT_EQ(rig.counters().completed, 0u);
}

TEST(ReqRepServerThatClosesIsCountedAsEof) {
  Rig rig(ConfigFor(LoadMode::kReqRep), 1);
  rig.worker->Begin(kT0);
  SocketHandle h = rig.Unsettled().at(0);
  rig.SettleAll();
  rig.Step(kT0 + 100);
  rig.fake->PeerEnd(h);
  rig.Step(kT0 + 200);
  EXPECT_EQ(rig.counters().eofs, 1u);
  EXPECT(rig.fake->Sock(h).closed);
  rig.Step(kT0 + 200 + kRetryUs);
  EXPECT_EQ(rig.fake->connect_calls, 2);
}

// ---------------------------------------------------------------- echo

TEST(EchoRampsUntilEveryLaneIsOpenThenWarmsUpThenMeasures) {
  LoadConfig config = ConfigFor(LoadMode::kEcho);
  config.warmup_us = 1000;
  Rig rig(config, 3);
  rig.worker->Begin(kT0);
  EXPECT(rig.worker->phase() == LoadPhase::kRamp);
  std::vector<SocketHandle> socks = rig.Unsettled();
  ASSERT_EQ(socks.size(), 3u);
  rig.fake->SettleConnect(socks[0]);
  rig.fake->SettleConnect(socks[1]);
  rig.Step(kT0 + 10);
  EXPECT(rig.worker->phase() == LoadPhase::kRamp);
  EXPECT_EQ(rig.worker->open(), 2u);
  std::string first = rig.fake->Sock(socks[0]).written;
  EXPECT_EQ(first.size(), 16u);
  rig.EchoAll();
  rig.Step(kT0 + 15);
  // Round trips during the ramp count in the total, not in the rate.
  EXPECT_EQ(rig.counters().total, 2u);
  EXPECT_EQ(rig.counters().completed, 0u);
  // The next message differs from the first, so a stale echo cannot pass.
  EXPECT_EQ(rig.fake->Sock(socks[0]).written.size(), 16u);
  EXPECT(rig.fake->Sock(socks[0]).written != first);
  rig.fake->SettleConnect(socks[2]);
  rig.Step(kT0 + 20);
  EXPECT(rig.worker->phase() == LoadPhase::kWarmup);
  EXPECT_EQ(rig.counters().ramp_us, 20);
  rig.Step(kT0 + 1020);
  EXPECT(rig.worker->phase() == LoadPhase::kMeasure);
  rig.EchoAll();
  rig.Step(kT0 + 1100);
  EXPECT_EQ(rig.counters().completed, 3u);
  EXPECT_EQ(rig.counters().latency.count(), 3u);
  EXPECT_EQ(rig.counters().latency.max(), 1085u);  // sent at kT0 + 15, echoed at kT0 + 1100
  EXPECT_EQ(rig.Open().size(), 3u);                // persistent
  EXPECT_EQ(rig.counters().ErrorTotal(), 0u);
  EXPECT(rig.fake->violations.empty());
}

TEST(EchoResetByThePeerIsCountedBySysErrorAndTheLaneReconnects) {
  Rig rig(ConfigFor(LoadMode::kEcho), 1);
  rig.worker->Begin(kT0);
  SocketHandle h = rig.Unsettled().at(0);
  rig.SettleAll();
  rig.Step(kT0 + 10);
  rig.fake->PeerError(h, SysError::kConnReset, 104);
  rig.Step(kT0 + 20);
  EXPECT_EQ(ErrorsOf(rig.counters(), SysError::kConnReset), 1u);
  EXPECT_EQ(rig.worker->open(), 0u);
  rig.Step(kT0 + 20 + kRetryUs);
  EXPECT_EQ(rig.fake->connect_calls, 2);
}

TEST(EchoReplyThatNeverComesTimesOut) {
  LoadConfig config = ConfigFor(LoadMode::kEcho);
  config.op_timeout_us = 1000;
  config.ramp_timeout_us = 0;
  Rig rig(config, 1);
  rig.worker->Begin(kT0);
  SocketHandle h = rig.Unsettled().at(0);
  rig.SettleAll();
  rig.Step(kT0 + 10);
  rig.Step(kT0 + 100000);
  EXPECT_EQ(rig.counters().timeouts, 1u);
  EXPECT(rig.fake->Sock(h).aborted);
}

// ---------------------------------------------------------------- http

namespace {

const std::string kHello =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\nKeep-Alive: "
    "timeout=5\r\n\r\n"
    "hello world\n";

using Outcome = HttpResponseReader::Outcome;

Outcome ReadAll(const std::string& bytes, size_t* used) {
  HttpResponseReader reader;
  return reader.Feed(bytes.data(), bytes.size(), used);
}

}  // namespace

TEST(HttpReaderTakesA200FramedByContentLengthCutAnywhere) {
  for (size_t cut = 1; cut < kHello.size(); ++cut) {
    HttpResponseReader reader;
    size_t used = 0;
    EXPECT(reader.Feed(kHello.data(), cut, &used) == Outcome::kMore);
    EXPECT_EQ(used, cut);
    EXPECT(reader.Feed(kHello.data() + cut, kHello.size() - cut, &used) == Outcome::kDone);
    EXPECT_EQ(used, kHello.size() - cut);
  }
  HttpResponseReader bytewise;
  size_t used = 0;
  for (size_t i = 0; i + 1 < kHello.size(); ++i)
    EXPECT(bytewise.Feed(&kHello[i], 1, &used) == Outcome::kMore);
  EXPECT(bytewise.Feed(&kHello[kHello.size() - 1], 1, &used) == Outcome::kDone);
}

TEST(HttpReaderStopsAtTheEndOfTheBodyAndStartsOverAfterReset) {
  HttpResponseReader reader;
  std::string two = kHello + kHello;
  size_t used = 0;
  EXPECT(reader.Feed(two.data(), two.size(), &used) == Outcome::kDone);
  EXPECT_EQ(used, kHello.size());
  reader.Reset();
  EXPECT(reader.Feed(two.data() + used, two.size() - used, &used) == Outcome::kDone);
  EXPECT_EQ(used, kHello.size());
}

TEST(HttpReaderAcceptsHttp10NoReasonAnyCaseSpacesAndAnEmptyBody) {
  const char* good[] = {
      "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 200\r\ncontent-length: 2\r\n\r\nok",
      "HTTP/1.1 200 OK\r\nCONTENT-LENGTH:   2  \r\nX-Content-Length: 9\r\nContent-Lengthy: "
      "9\r\n\r\nok",
      "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
  };
  for (const char* g : good) {
    size_t used = 0;
    std::string bytes = g;
    EXPECT(ReadAll(bytes, &used) == Outcome::kDone);
    EXPECT_EQ(used, bytes.size());
  }
}

TEST(HttpReaderRefusesWhatItCannotCheck) {
  const char* bad[] = {
      "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
      "HTTP/2 200\r\nContent-Length: 0\r\n\r\n",
      "http/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
      "SSH-2.0-OpenSSH\r\n",
      "HTTP/1.1 200 OK\r\n\r\nno length",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 200 OK\r\nContent-Length: 2000000000\r\n\r\n",
      "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\rX",
  };
  for (const char* b : bad) {
    size_t used = 0;
    EXPECT(ReadAll(b, &used) == Outcome::kBad);
  }
  std::string huge = "HTTP/1.1 200 OK\r\nX-Pad: " + std::string(kMaxHttpHeaderBytes, 'a') +
                     "\r\nContent-Length: 0\r\n\r\n";
  size_t used = 0;
  EXPECT(ReadAll(huge, &used) == Outcome::kBad);
}

TEST(HttpSendsAGetReadsTheResponseInPiecesThenSendsTheNextOnTheSameConnection) {
  Rig rig(ConfigFor(LoadMode::kHttp), 1);
  ASSERT(rig.init.ok());
  rig.worker->Begin(kT0);
  EXPECT(rig.worker->phase() == LoadPhase::kRamp);
  SocketHandle h = rig.Unsettled().at(0);
  rig.SettleAll();
  rig.Step(kT0 + 10);
  EXPECT(rig.worker->phase() == LoadPhase::kMeasure);
  const std::string get = "GET / HTTP/1.1\r\nHost: 127.0.0.1:4242\r\n\r\n";
  EXPECT(rig.fake->Sock(h).written == get);
  rig.fake->Sock(h).written.clear();
  rig.fake->PeerSend(h, kHello.substr(0, 40));
  rig.Step(kT0 + 20);
  EXPECT_EQ(rig.counters().completed, 0u);
  EXPECT(rig.fake->Sock(h).written.empty());
  rig.fake->PeerSend(h, kHello.substr(40));
  rig.Step(kT0 + 110);
  EXPECT_EQ(rig.counters().completed, 1u);
  EXPECT_EQ(rig.counters().latency.max(), 100u);  // from the GET to the whole response
  EXPECT(rig.fake->Sock(h).written == get);       // the next request, same connection
  EXPECT(!rig.fake->Sock(h).closed);
  rig.fake->PeerSend(h, kHello);
  rig.Step(kT0 + 200);
  EXPECT_EQ(rig.counters().completed, 2u);
  EXPECT_EQ(rig.fake->connect_calls, 1);
  EXPECT_EQ(rig.counters().bytes_in, 2 * kHello.size());
  EXPECT_EQ(rig.counters().bytes_out, 3 * get.size());
  EXPECT_EQ(rig.counters().ErrorTotal(), 0u);
}

TEST(HttpCloseAsksForConnectionCloseAndResetsAfterTheWholeResponse) {
  Rig rig(ConfigFor(LoadMode::kHttpClose), 1);
  rig.worker->Begin(kT0);
  EXPECT(rig.worker->phase() == LoadPhase::kMeasure);  // no ramp: a storm
  SocketHandle h = rig.Unsettled().at(0);
  rig.SettleAll();
  rig.Step(kT0 + 100);
  EXPECT(rig.fake->Sock(h).written ==
         "GET / HTTP/1.1\r\nHost: 127.0.0.1:4242\r\nConnection: close\r\n\r\n");
  rig.fake->PeerSend(h, kHello.substr(0, kHello.size() - 1));
  rig.Step(kT0 + 200);
  EXPECT_EQ(rig.counters().completed, 0u);
  EXPECT(!rig.fake->Sock(h).closed);
  rig.fake->PeerSend(h, kHello.substr(kHello.size() - 1));
  rig.fake->PeerEnd(h);  // the server's FIN right behind: not an error
  rig.Step(kT0 + 300);
  EXPECT_EQ(rig.counters().completed, 1u);
  EXPECT_EQ(rig.counters().latency.max(), 300u);  // from the connect on
  EXPECT(rig.fake->Sock(h).aborted);
  EXPECT_EQ(rig.fake->connect_calls, 2);
  rig.Step(kT0 + 400);
  EXPECT_EQ(rig.counters().ErrorTotal(), 0u);
}

TEST(HttpResponseThatIsNotA200OrHasBytesAfterItIsAMismatch) {
  const std::string replies[] = {kHello + "X", "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n",
                                 "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"};
  for (const std::string& reply : replies) {
    Rig rig(ConfigFor(LoadMode::kHttp), 1);
    SocketHandle h = rig.BeginOne(kT0 + 10);
    rig.fake->PeerSend(h, reply);
    rig.Step(kT0 + 20);
    EXPECT_EQ(rig.counters().mismatches, 1u);
    EXPECT_EQ(rig.counters().completed, 0u);
    EXPECT(rig.fake->Sock(h).aborted);
    rig.Step(kT0 + 20 + kRetryUs);
    EXPECT_EQ(rig.fake->connect_calls, 2);
  }
}

TEST(HttpServerThatClosesAKeepAliveConnectionIsCountedAsEof) {
  Rig rig(ConfigFor(LoadMode::kHttp), 1);
  SocketHandle h = rig.BeginOne(kT0 + 10);
  rig.fake->PeerSend(h, kHello);
  rig.fake->PeerEnd(h);
  rig.Step(kT0 + 20);
  rig.Step(kT0 + 30);
  EXPECT_EQ(rig.counters().completed, 1u);
  EXPECT_EQ(rig.counters().eofs, 1u);
  EXPECT(rig.fake->Sock(h).closed);
}

// ---------------------------------------------------------------- idle

TEST(IdleHoldsEveryLaneUntilStoppedThenDrainsToDone) {
  Rig rig(ConfigFor(LoadMode::kIdle), 3);
  rig.worker->Begin(kT0);
  rig.SettleAll();
  rig.Step(kT0 + 10);
  EXPECT(rig.worker->phase() == LoadPhase::kHold);
  EXPECT_EQ(rig.worker->open(), 3u);
  EXPECT_EQ(rig.worker->progress().open.load(), 3u);
  EXPECT_EQ(rig.counters().peak_open, 3u);
  // Idle connections never time out.
  rig.Step(kT0 + 100000000);
  EXPECT_EQ(rig.Open().size(), 3u);
  EXPECT_EQ(rig.counters().ErrorTotal(), 0u);
  rig.worker->Stop(kT0 + 100000001);
  EXPECT(rig.worker->phase() == LoadPhase::kDraining);
  EXPECT_EQ(rig.Open().size(), 0u);
  for (int i = 0; i < 5 && !rig.worker->done(); ++i) rig.Step(kT0 + 100000002 + i);
  EXPECT(rig.worker->done());
  EXPECT_EQ(rig.worker->engine().SnapshotStats().in_use, 0u);
  EXPECT_EQ(rig.fake->connect_calls, 3);  // nothing reconnected while draining
}

TEST(IdleHoldEndsByItselfAfterTheDuration) {
  LoadConfig config = ConfigFor(LoadMode::kIdle);
  config.duration_us = 5000;
  Rig rig(config, 2);
  rig.worker->Begin(kT0);
  rig.SettleAll();
  rig.Step(kT0 + 10);
  EXPECT(rig.worker->phase() == LoadPhase::kHold);
  rig.Step(kT0 + 5010);
  EXPECT(rig.worker->phase() >= LoadPhase::kDraining);
  for (int i = 0; i < 5 && !rig.worker->done(); ++i) rig.Step(kT0 + 5011 + i);
  EXPECT(rig.worker->done());
}

// ---------------------------------------------------------------- the window

TEST(OnlyOperationsInsideTheMeasureWindowCountThenTheRunDrains) {
  LoadConfig config = ConfigFor(LoadMode::kConnectClose);
  config.warmup_us = 1000;
  config.duration_us = 2000;
  Rig rig(config, 1);
  rig.worker->Begin(kT0);
  EXPECT(rig.worker->phase() == LoadPhase::kWarmup);
  rig.SettleAll();
  rig.Step(kT0 + 500);
  EXPECT_EQ(rig.counters().total, 1u);
  EXPECT_EQ(rig.counters().completed, 0u);
  rig.SettleAll();
  rig.Step(kT0 + 1000);  // handled before the phase moves on: still warm-up
  EXPECT_EQ(rig.counters().completed, 0u);
  EXPECT(rig.worker->phase() == LoadPhase::kMeasure);
  rig.SettleAll();
  rig.Step(kT0 + 1500);
  EXPECT_EQ(rig.counters().completed, 1u);
  rig.Step(kT0 + 3000);
  EXPECT(rig.worker->phase() >= LoadPhase::kDraining);
  EXPECT_EQ(rig.counters().window_us, 2000);
  for (int i = 0; i < 5 && !rig.worker->done(); ++i) rig.Step(kT0 + 3001 + i);
  EXPECT(rig.worker->done());
  EXPECT_EQ(rig.counters().total, 3u);
  EXPECT_EQ(rig.worker->NextTimeout(kT0 + 4000), 0);
}

TEST(StopDuringTheMeasurePhaseKeepsTheWindowSoFar) {
  LoadConfig config = ConfigFor(LoadMode::kConnectClose);
  config.duration_us = 10000;
  Rig rig(config, 1);
  rig.worker->Begin(kT0);
  rig.SettleAll();
  rig.Step(kT0 + 400);
  rig.worker->Stop(kT0 + 4000);
  EXPECT_EQ(rig.counters().window_us, 4000);
  EXPECT_EQ(rig.counters().completed, 1u);
  // The lane's next connect was still in progress: given up, not an error.
  EXPECT_EQ(rig.counters().abandoned, 1u);
  EXPECT_EQ(rig.counters().connects, rig.counters().connected + rig.counters().abandoned);
  EXPECT_EQ(rig.counters().ErrorTotal(), 0u);
  for (int i = 0; i < 5 && !rig.worker->done(); ++i) rig.Step(kT0 + 4001 + i);
  EXPECT(rig.worker->done());
}

TEST(GeneratorRejectsAConfigurationWithoutWork) {
  LoadConfig config = ConfigFor(LoadMode::kEcho);
  config.connections = 0;
  LoadGenerator none(config);
  EXPECT(none.Start(MakeFake, nullptr).code == Code::kInvalid);
  config.connections = 1;
  config.message_size = kMaxLoadMessage + 1;
  LoadGenerator too_big(config);
  EXPECT(too_big.Start(MakeFake, nullptr).code == Code::kInvalid);
  EXPECT(!too_big.started());
}

TEST(GeneratorRejectsMoreThreadsThanItRuns) {
  LoadConfig config = ConfigFor(LoadMode::kConnectClose);
  config.connections = 1000;
  config.threads = kMaxLoadThreads + 1;
  LoadGenerator too_many(config);
  EXPECT(too_many.Start(MakeFake, nullptr).code == Code::kInvalid);
  EXPECT(!too_many.started());
}

int main(int argc, char** argv) { return acceptpool_test::RunAll(argc, argv); }
