// Event batches: records, the read arena, and copies into it.
#include "core/event_batch.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include "core/address.h"
#include "test_main.h"

using namespace acceptpool;

TEST(RecordIsFourDoubles) { EXPECT_EQ(sizeof(EventRecord), 4 * sizeof(double)); }

TEST(NewBatchIsEmpty) {
  EventBatch batch(8, 1024);
  EXPECT(batch.empty());
  EXPECT_EQ(batch.count(), 0u);
  EXPECT_EQ(batch.data_used(), 0u);
  EXPECT_EQ(batch.ReadRoom(), 1024u);
  EXPECT(batch.HasRecordRoom(8));
  EXPECT_FALSE(batch.HasRecordRoom(9));
}

TEST(AddWritesTypeIdAndArguments) {
  EventBatch batch(4, 64);
  SessionId id = MakeSessionId(77, 5);
  batch.Add(EventType::kClose, id, 1 | (3 << 8), 104);
  batch.Add(EventType::kServerClosed, 0);
  ASSERT_EQ(batch.count(), 2u);
  const EventRecord& r = batch.records()[0];
  EXPECT_EQ(r.type, static_cast<double>(EventType::kClose));
  EXPECT_EQ(static_cast<SessionId>(r.id), id);
  EXPECT_EQ(r.a, static_cast<double>(1 | (3 << 8)));
  EXPECT_EQ(r.b, 104.0);
  EXPECT_EQ(batch.records()[1].type, static_cast<double>(EventType::kServerClosed));
  EXPECT_EQ(batch.records()[1].a, 0.0);
  EXPECT_EQ(batch.records()[1].b, 0.0);
  EXPECT_FALSE(batch.empty());
}

TEST(LargestSessionIdSurvivesTheDoubleRecord) {
  EventBatch batch(1, 8);
  SessionId id = MakeSessionId(kMaxSlots - 1, kGenerationLimit - 1);
  batch.Add(EventType::kDrain, id);
  EXPECT_EQ(static_cast<SessionId>(batch.records()[0].id), id);
}

TEST(HasRecordRoomCountsRecords) {
  EventBatch batch(3, 64);
  batch.Add(EventType::kDrain, 1);
  batch.Add(EventType::kDrain, 2);
  EXPECT(batch.HasRecordRoom());
  EXPECT(batch.HasRecordRoom(1));
  EXPECT_FALSE(batch.HasRecordRoom(2));
  batch.Add(EventType::kDrain, 3);
  EXPECT_FALSE(batch.HasRecordRoom());
}

TEST(AddDataRecordsOffsetAndLengthAndAdvancesTheArena) {
  EventBatch batch(4, 100);
  std::memcpy(batch.ReadSpace(), "hello", 5);
  batch.AddData(11, 5);
  EXPECT_EQ(batch.data_used(), 5u);
  EXPECT_EQ(batch.ReadRoom(), 95u);
  EXPECT(batch.ReadSpace() == batch.data() + 5);
  std::memcpy(batch.ReadSpace(), "world!", 6);
  batch.AddData(12, 6);
  EXPECT_EQ(batch.data_used(), 11u);
  EXPECT_EQ(batch.ReadRoom(), 89u);
  const EventRecord* r = batch.records();
  EXPECT_EQ(r[0].type, static_cast<double>(EventType::kData));
  EXPECT_EQ(r[0].id, 11.0);
  EXPECT_EQ(r[0].a, 0.0);
  EXPECT_EQ(r[0].b, 5.0);
  EXPECT_EQ(r[1].id, 12.0);
  EXPECT_EQ(r[1].a, 5.0);
  EXPECT_EQ(r[1].b, 6.0);
  EXPECT_EQ(std::string(batch.data() + static_cast<size_t>(r[0].a), 5), std::string("hello"));
  EXPECT_EQ(std::string(batch.data() + static_cast<size_t>(r[1].a), 6), std::string("world!"));
}

TEST(AddCopyAlignsToEightBytes) {
  EventBatch batch(8, 256);
  std::memcpy(batch.ReadSpace(), "abc", 3);
  batch.AddData(1, 3);  // arena at 3: unaligned
  SocketAddress peer;
  peer.family = 4;
  peer.port = 54321;
  peer.addr[0] = 127;
  peer.addr[3] = 1;
  ASSERT(batch.AddCopy(EventType::kSession, 2, &peer, sizeof(peer)));
  const EventRecord& r = batch.records()[1];
  EXPECT_EQ(r.type, static_cast<double>(EventType::kSession));
  EXPECT_EQ(r.a, 8.0);
  EXPECT_EQ(r.b, static_cast<double>(sizeof(peer)));
  EXPECT_EQ(batch.data_used(), 8u + sizeof(peer));
  SocketAddress back;
  std::memcpy(&back, batch.data() + 8, sizeof(back));
  EXPECT_EQ(back.port, 54321u);
  EXPECT_EQ(back.addr[0], 127);
  EXPECT_EQ(back.addr[3], 1);
  // Already aligned: no padding.
  ASSERT(batch.AddCopy(EventType::kSession, 3, &peer, sizeof(peer)));
  EXPECT_EQ(batch.records()[2].a, static_cast<double>(8 + sizeof(peer)));
  // Every copy lands on a multiple of 8.
  for (int i = 0; i < 4; ++i) {
    std::memcpy(batch.ReadSpace(), "x", 1);
    batch.AddData(4, 1);
    if (!batch.AddCopy(EventType::kSession, 5, &peer, 5)) break;
    size_t offset = static_cast<size_t>(batch.records()[batch.count() - 1].a);
    EXPECT_EQ(offset % 8, 0u);
  }
}

TEST(AddCopyRefusesWhenArenaIsFull) {
  EventBatch batch(8, 40);
  char bytes[40] = {};
  ASSERT(batch.AddCopy(EventType::kSession, 1, bytes, 24));
  EXPECT_EQ(batch.data_used(), 24u);
  // 16 bytes remain, 17 do not fit.
  EXPECT_FALSE(batch.AddCopy(EventType::kSession, 2, bytes, 17));
  EXPECT_EQ(batch.count(), 1u);
  EXPECT_EQ(batch.data_used(), 24u);
  EXPECT(batch.AddCopy(EventType::kSession, 3, bytes, 16));
  EXPECT_EQ(batch.data_used(), 40u);
}

TEST(AddCopyRefusesWhenAlignmentPushesItPastTheEnd) {
  EventBatch batch(8, 32);
  batch.AddData(1, 1);  // arena at 1; the next copy would start at 8
  char bytes[32] = {};
  // 25 bytes fit in the 31 free bytes, but not after aligning to 8.
  EXPECT_FALSE(batch.AddCopy(EventType::kSession, 2, bytes, 25));
  EXPECT_EQ(batch.count(), 1u);
  EXPECT_EQ(batch.data_used(), 1u);
  EXPECT(batch.AddCopy(EventType::kSession, 2, bytes, 24));
}

TEST(AddCopyRefusesWhenRecordsAreFull) {
  EventBatch batch(1, 1024);
  batch.Add(EventType::kDrain, 1);
  char bytes[8] = {};
  EXPECT_FALSE(batch.AddCopy(EventType::kSession, 2, bytes, 8));
  EXPECT_EQ(batch.count(), 1u);
  EXPECT_EQ(batch.data_used(), 0u);
}

TEST(ErrorWordCarriesCodeErrorRawAndStepExactly) {
  const RecordError cases[] = {
      RecordError::Of(Status::System(SysError::kAddrInUse, 98, "bind")),
      RecordError::Of(Status::System(SysError::kConnRefused, 111, "connect")),
      RecordError::Of(Status::System(SysError::kAddrNotAvail, 10049, "bind")),  // a WSA code
      RecordError::Of(Status::System(SysError::kUnknown, -1, "bind")),          // all 32 bits
      RecordError::Of(
          Status::System(SysError::kProto, std::numeric_limits<int32_t>::min(), "recv")),
      RecordError::Of(Status::Of(Code::kPoolFull)),
      RecordError::System(SysError::kConnReset, 104),
  };
  for (const RecordError& c : cases) {
    double word = EncodeErrorWord(c);
    EXPECT_EQ(static_cast<double>(static_cast<uint64_t>(word)), word);  // an exact integer
    EXPECT(word < 9007199254740992.0);                                  // 2^53
    RecordError d = DecodeErrorWord(word);
    EXPECT(d.code == c.code);
    EXPECT(d.sys == c.sys);
    EXPECT_EQ(d.raw, c.raw);
    EXPECT(d.step == c.step);
    // The rule src/wire.ts applies: floor(word / 2^shift) mod 2^bits.
    auto field = [word](int shift, int bits) {
      return std::fmod(std::floor(word / std::ldexp(1.0, shift)), std::ldexp(1.0, bits));
    };
    EXPECT_EQ(field(0, 8), static_cast<double>(c.sys));
    EXPECT_EQ(field(8, 32), static_cast<double>(static_cast<uint32_t>(c.raw)));
    EXPECT_EQ(field(40, 8), static_cast<double>(c.code));
    EXPECT_EQ(field(48, 4), static_cast<double>(c.step));
  }
  // No error is the word 0, and an OS error of kNone is no error.
  EXPECT_EQ(EncodeErrorWord(RecordError()), 0.0);
  EXPECT(RecordError::System(SysError::kNone, 0).code == Code::kOk);
  EXPECT(RecordError::System(SysError::kMFile, 24).code == Code::kSystem);
}

TEST(ConnectStepOfNamesABindFailureOnly) {
  EXPECT(ConnectStepOf(Status::System(SysError::kAddrInUse, 98, "bind")) == ConnectStep::kBind);
  EXPECT(ConnectStepOf(Status::System(SysError::kConnRefused, 111, "connect")) ==
         ConnectStep::kConnect);
  EXPECT(ConnectStepOf(Status::System(SysError::kMFile, 24, "socket")) == ConnectStep::kConnect);
  EXPECT(ConnectStepOf(Status::Of(Code::kPoolFull)) == ConnectStep::kConnect);
}

TEST(ClearEmptiesRecordsAndArena) {
  EventBatch batch(2, 64);
  batch.AddData(1, 10);
  batch.Add(EventType::kDrain, 1);
  batch.Clear();
  EXPECT(batch.empty());
  EXPECT_EQ(batch.data_used(), 0u);
  EXPECT_EQ(batch.ReadRoom(), 64u);
  EXPECT(batch.HasRecordRoom(2));
  EXPECT(batch.ReadSpace() == batch.data());
}

int main(int argc, char** argv) { return acceptpool_test::RunAll(argc, argv); }
