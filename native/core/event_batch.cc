#include "core/event_batch.h"

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

double ConnectFailureWord(uint8_t sys_error, int32_t raw, ConnectStep step) {
  return static_cast<double>(sys_error) + static_cast<double>(static_cast<uint32_t>(raw)) * 256.0 +
         static_cast<double>(step) * 1099511627776.0;  // 2^40
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

bool EventBatch::AddCopy(EventType type, SessionId id, const void* bytes, size_t length) {
  if (length > ReadRoom() || !HasRecordRoom()) return false;
  // Keep copies 8-byte aligned so JS can view them with typed arrays.
  size_t offset = (used_ + 7) & ~static_cast<size_t>(7);
  if (offset + length > data_bytes_) return false;
  std::memcpy(data_.get() + offset, bytes, length);
  Add(type, id, static_cast<double>(offset), static_cast<double>(length));
  used_ = offset + length;
  return true;
}

}  // namespace acceptpool
