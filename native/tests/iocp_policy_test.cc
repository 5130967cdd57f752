// The IOCP backend's pure policies, on every platform: how many AcceptEx
// stay posted (accept_target.h) and whether accepted sockets are recycled
// (socket_reuse.h). The Windows side of both runs under Wine in
// iocp_loopback_test and the mocha suite.
#include "backends/iocp/accept_target.h"
#include "backends/iocp/socket_reuse.h"
#include "test_main.h"

using namespace acceptpool;

namespace {

// A target started at tick 0 and grown until it reached `target`.
AcceptTarget GrownTo(uint32_t target, uint32_t max_sessions = 0) {
  AcceptTarget t;
  t.Start(max_sessions, 0);
  while (t.target() < target) t.OnClientWaiting(true, 0, 0);
  return t;
}

}  // namespace

// ---- accept target ----

TEST(AcceptTargetStartsAt32OrMaxConnectionsIfLower) {
  AcceptTarget t;
  t.Start(0, 0);
  EXPECT_EQ(t.target(), 32u);
  t.Start(8, 0);
  EXPECT_EQ(t.target(), 8u);
  EXPECT_EQ(t.initial(), 8u);
  t.Start(100000, 0);
  EXPECT_EQ(t.target(), 32u);
}

TEST(AcceptTargetPostsUpToTheTargetCountingAcceptedOnesThatWait) {
  AcceptTarget t;
  t.Start(0, 0);
  EXPECT(t.WantsMore(0));
  EXPECT(t.WantsMore(31));
  EXPECT_FALSE(t.WantsMore(32));
  EXPECT_FALSE(t.WantsMore(40));
}

TEST(AcceptTargetDoublesWhenAClientWaitsWithNonePosted) {
  AcceptTarget t;
  t.Start(0, 0);
  EXPECT(t.OnClientWaiting(true, 0, 1) == AcceptTarget::Waiting::kGrow);
  EXPECT_EQ(t.target(), 64u);
  EXPECT_EQ(t.growths(), 1u);
  // Accepts posted and a client still waits: some posted ones are dead.
  EXPECT(t.OnClientWaiting(true, 5, 1) == AcceptTarget::Waiting::kSuspectPosted);
  EXPECT_EQ(t.target(), 64u);
  // Not accepting (pool full): the client waits in the backlog.
  EXPECT(t.OnClientWaiting(false, 0, 1) == AcceptTarget::Waiting::kNone);
  EXPECT_EQ(t.target(), 64u);
}

TEST(AcceptTargetGrowsWhenARoundLeavesUnderAQuarterPosted) {
  AcceptTarget t;
  t.Start(0, 0);
  t.AfterRound(5, 8, 1);  // 8 of 32 posted: a quarter, not under it
  EXPECT_EQ(t.target(), 32u);
  t.AfterRound(0, 0, 1);  // nothing accepted: no pressure
  EXPECT_EQ(t.target(), 32u);
  t.AfterRound(5, 7, 1);
  EXPECT_EQ(t.target(), 64u);
}

TEST(AcceptTargetNeverPassesItsMax) {
  AcceptTarget t = GrownTo(AcceptTarget::kMax);
  EXPECT_EQ(t.target(), AcceptTarget::kMax);
  uint64_t growths = t.growths();
  t.OnClientWaiting(true, 0, 0);
  EXPECT_EQ(t.target(), AcceptTarget::kMax);
  EXPECT_EQ(t.growths(), growths);
  AcceptTarget small = GrownTo(100, 100);
  EXPECT_EQ(small.target(), 100u);  // 32, 64, then capped at maxConnections
}

TEST(AcceptTargetHalvesAfterTenQuietTicksNeverBelowItsStart) {
  AcceptTarget t = GrownTo(256);
  for (uint32_t tick = 1; tick < AcceptTarget::kShrinkIdleTicks; ++tick) {
    EXPECT_FALSE(t.OnTick(tick));
  }
  EXPECT(t.OnTick(10));
  EXPECT_EQ(t.target(), 128u);
  EXPECT_FALSE(t.OnTick(11));  // the next halving waits another quiet spell
  EXPECT(t.OnTick(20));
  EXPECT_EQ(t.target(), 64u);
  EXPECT(t.OnTick(30));
  EXPECT_EQ(t.target(), 32u);
  EXPECT_FALSE(t.OnTick(40));
  EXPECT_FALSE(t.OnTick(100));
  EXPECT_EQ(t.target(), 32u);
  EXPECT_EQ(t.shrinks(), 3u);
}

TEST(AcceptTargetPressurePutsTheShrinkOff) {
  AcceptTarget t = GrownTo(128);
  EXPECT_FALSE(t.OnTick(9));
  t.AfterRound(1, 0, 9);  // pressure at tick 9: 256
  EXPECT_EQ(t.target(), 256u);
  EXPECT_FALSE(t.OnTick(15));  // ten quiet ticks count from the pressure
  EXPECT(t.OnTick(19));
  EXPECT_EQ(t.target(), 128u);
}

TEST(AcceptTargetRetriesARecycledSocketThatFailsAtOnce) {
  AcceptTarget t;
  t.Start(0, 0);
  EXPECT(t.OnPostFailed(SysError::kShutdown, true) == AcceptTarget::Failure::kRetry);
  EXPECT(t.WantsMore(0));
}

TEST(AcceptTargetPausesUntilTheNextTickWithoutASocket) {
  AcceptTarget t;
  t.Start(0, 0);
  t.OnNoSocket();
  EXPECT(t.paused());
  EXPECT_FALSE(t.WantsMore(0));
  t.OnTick(1);
  EXPECT(t.WantsMore(0));
}

TEST(AcceptTargetPausesOnAFailureOfItsOwn) {
  AcceptTarget t;
  t.Start(0, 0);
  EXPECT(t.OnPostFailed(SysError::kNoBufs, false) == AcceptTarget::Failure::kPause);
  EXPECT_FALSE(t.WantsMore(0));
  t.OnTick(1);
  EXPECT(t.WantsMore(0));
}

TEST(AcceptTargetRetriesAConnectionResetInTheBacklog) {
  // Real Windows fails an AcceptEx at once with WSAECONNRESET when the
  // connection it takes from the backlog was reset meanwhile: that costs
  // this one connection, like a reset reported by the completion, and must
  // not stop accepting for up to a second.
  for (SysError e : {SysError::kConnReset, SysError::kConnAborted, SysError::kNotConn}) {
    AcceptTarget t;
    t.Start(0, 0);
    EXPECT(t.OnPostFailed(e, false) == AcceptTarget::Failure::kRetry);
    EXPECT_FALSE(t.paused());
    EXPECT(t.WantsMore(0));
  }
}

TEST(AcceptTargetStopsRetryingWithinATickSoAFailureThatRepeatsNeverSpins) {
  AcceptTarget t;
  t.Start(0, 0);
  uint32_t retries = 0;
  while (t.OnPostFailed(SysError::kConnReset, retries % 2 == 0) == AcceptTarget::Failure::kRetry) {
    ASSERT(++retries <= AcceptTarget::kMaxRetriesPerTick);
  }
  EXPECT_EQ(retries, AcceptTarget::kMaxRetriesPerTick);
  EXPECT(t.paused());
  t.OnTick(1);
  EXPECT(t.OnPostFailed(SysError::kConnReset, false) == AcceptTarget::Failure::kRetry);
}

// ---- socket reuse ----

TEST(ReuseModeComesFromTheEnvironmentValue) {
  EXPECT(ParseReuseMode(nullptr) == ReuseMode::kAuto);
  EXPECT(ParseReuseMode("") == ReuseMode::kAuto);
  EXPECT(ParseReuseMode("auto") == ReuseMode::kAuto);
  EXPECT(ParseReuseMode("yes") == ReuseMode::kAuto);
  EXPECT(ParseReuseMode("off") == ReuseMode::kOff);
  EXPECT(ParseReuseMode("0") == ReuseMode::kOff);
  EXPECT(ParseReuseMode("force") == ReuseMode::kForce);
  EXPECT(ParseReuseMode("FORCE") == ReuseMode::kAuto);
}

TEST(OffNeverRecyclesAndLetsAcceptedSocketsSkipThePort) {
  SocketReuse r(ReuseMode::kOff);
  EXPECT_FALSE(r.Allowed());
  EXPECT(r.AcceptedMaySkipPort());
  EXPECT_FALSE(r.disabled());
}

TEST(AutoGivesUpAfterThreeFailuresWhenRecyclingNeverWorked) {
  SocketReuse r(ReuseMode::kAuto);
  EXPECT(r.Allowed());
  EXPECT_FALSE(r.AcceptedMaySkipPort());
  for (uint32_t i = 1; i < SocketReuse::kGiveUpAfter; ++i) {
    r.NoteFailed();
    EXPECT(r.Allowed());
  }
  r.NoteFailed();
  EXPECT(r.disabled());
  EXPECT_FALSE(r.Allowed());
  // From now on accepted sockets are never recycled: they may skip the port.
  EXPECT(r.AcceptedMaySkipPort());
}

TEST(AutoKeepsRecyclingOnceItHasWorked) {
  SocketReuse r(ReuseMode::kAuto);
  r.NoteFailed();
  r.NoteFailed();
  r.NoteWorked();
  for (int i = 0; i < 10; ++i) r.NoteFailed();
  EXPECT_FALSE(r.disabled());
  EXPECT(r.Allowed());
}

TEST(ForceRecyclesWhateverFails) {
  SocketReuse r(ReuseMode::kForce);
  for (int i = 0; i < 10; ++i) r.NoteFailed();
  EXPECT(r.Allowed());
  EXPECT_FALSE(r.disabled());
  EXPECT_FALSE(r.AcceptedMaySkipPort());
}

int main(int argc, char** argv) { return acceptpool_test::RunAll(argc, argv); }
