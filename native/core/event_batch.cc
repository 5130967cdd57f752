#include "core/event_batch.h"

#include <algorithm>
#include <cstring>

namespace acceptpool {

EventBatch::EventBatch(size_t max_records, size_t data_bytes)
    : max_records_(max_records),
      data_bytes_(data_bytes),
      // Value-initialised: touched now, before clients arrive, so the
      // arena's memory is a fixed cost and not a growth under load.
      records_(new EventRecord[max_records]()),
      data_(new char[data_bytes]()) {}

ConnectStep ConnectStepOf(const Status& status) {
  bool bind = status.syscall != nullptr && std::strcmp(status.syscall, "bind") == 0;
  return bind ? ConnectStep::kBind : ConnectStep::kConnect;
}

namespace {

constexpr uint64_t Mask(int bits) { return (uint64_t{1} << bits) - 1; }

// Every field ends below bit 53, so the word is an exact double, and every
// field can hold each value of what it carries.
#define ACCEPTPOOL_FIELD_END(name, shift, bits) (shift) + (bits),
constexpr int kErrorWordEnd = std::max({ACCEPTPOOL_ERROR_WORD(ACCEPTPOOL_FIELD_END)});
#undef ACCEPTPOOL_FIELD_END
static_assert(kErrorWordEnd <= 53, "the error word must be an exact double");

}  // namespace

RecordError RecordError::System(SysError sys, int32_t raw) {
  RecordError e;
  e.code = sys == SysError::kNone ? Code::kOk : Code::kSystem;
  e.sys = sys;
  e.raw = raw;
  return e;
}

RecordError RecordError::Of(const Status& status) {
  RecordError e;
  e.code = status.code;
  e.sys = status.sys;
  e.raw = status.raw;
  e.step = ConnectStepOf(status);
  return e;
}

double EncodeErrorWord(const RecordError& error) {
  const uint64_t sys = static_cast<uint8_t>(error.sys);
  const uint64_t raw = static_cast<uint32_t>(error.raw);
  const uint64_t code = static_cast<uint8_t>(error.code);
  const uint64_t step = static_cast<uint8_t>(error.step);
  uint64_t word = 0;
#define ACCEPTPOOL_PUT_FIELD(name, shift, bits) word |= (name & Mask(bits)) << (shift);
  ACCEPTPOOL_ERROR_WORD(ACCEPTPOOL_PUT_FIELD)
#undef ACCEPTPOOL_PUT_FIELD
  return static_cast<double>(word);
}

RecordError DecodeErrorWord(double word) {
  const uint64_t w = static_cast<uint64_t>(word);
  uint64_t sys = 0, raw = 0, code = 0, step = 0;
#define ACCEPTPOOL_GET_FIELD(name, shift, bits) name = (w >> (shift)) & Mask(bits);
  ACCEPTPOOL_ERROR_WORD(ACCEPTPOOL_GET_FIELD)
#undef ACCEPTPOOL_GET_FIELD
  RecordError e;
  e.sys = sys < static_cast<uint64_t>(SysError::kCount) ? static_cast<SysError>(sys)
                                                        : SysError::kUnknown;
  e.raw = static_cast<int32_t>(static_cast<uint32_t>(raw));
  e.code = static_cast<Code>(code);
  e.step = static_cast<ConnectStep>(step);
  return e;
}

void EventBatch::Add(EventType type, SessionId id, double a, double b) {
  EventRecord& r = records_[count_++];
  r.type = static_cast<double>(type);
  r.id = static_cast<double>(id);
  r.a = a;
  r.b = b;
}

void EventBatch::AddData(SessionId id, size_t length) {
  Add(EventType::kData, id, static_cast<double>(used_), static_cast<double>(length));
  used_ += length;
}

namespace {

// Copies start 8-byte aligned, so JS can view them with typed arrays.
size_t Aligned(size_t offset) { return (offset + 7) & ~static_cast<size_t>(7); }

}  // namespace

char* EventBatch::Append(size_t length, size_t* offset) {
  size_t at = Aligned(used_);
  if (at + length > data_bytes_) return nullptr;
  used_ = at + length;
  *offset = at;
  return data_.get() + at;
}

bool EventBatch::CanAddCopy(size_t length) const {
  return HasRecordRoom() && Aligned(used_) + length <= data_bytes_;
}

bool EventBatch::AddCopy(EventType type, SessionId id, const void* bytes, size_t length) {
  if (!HasRecordRoom()) return false;
  size_t offset = 0;
  char* at = Append(length, &offset);
  if (at == nullptr) return false;
  std::memcpy(at, bytes, length);
  Add(type, id, static_cast<double>(offset), static_cast<double>(length));
  return true;
}

}  // namespace acceptpool
