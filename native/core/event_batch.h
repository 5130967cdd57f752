// A batch of session events on their way to JavaScript, which takes a whole
// batch in one call. Received bytes are read straight into the batch's data
// arena: that arena is the shared receive buffer of the loop, so an idle
// connection owns no receive memory.
//
// Records are four doubles so JS can read them from one Float64Array:
//   kSession: id, a = data offset of a SocketAddress, b = its size
//   kData:    id, a = data offset,                  b = length
//   kDrain:   id
//   kEnd:     id                                     (peer half-closed)
//   kClose:   id, a = reason | SysError << 8,        b = raw OS code
//   kStale:   id, a = command kind that was refused  (threaded driver)
//   kServerClosed: server finished shutting down
//   kConnected: id, a = connect token                 (outgoing connect done)
//   kConnectFailed: id (0 if none), a = ConnectFailureWord,
//                   b = connect token                (outgoing connect failed)
#ifndef ACCEPTPOOL_CORE_EVENT_BATCH_H_
#define ACCEPTPOOL_CORE_EVENT_BATCH_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/session_table.h"
#include "core/status.h"

namespace acceptpool {

enum class EventType : uint8_t {
  kSession = 1,
  kData = 2,
  kDrain = 3,
  kEnd = 4,
  kClose = 5,
  kStale = 6,
  kServerClosed = 7,
  kConnected = 8,
  kConnectFailed = 9,
};

// Order matches the JS CloseReason list.
enum class CloseReason : uint8_t {
  kRemote = 0,
  kReset = 1,
  kLocal = 2,
  kTimeout = 3,
  kShutdown = 4,
  kOverflow = 5,
  kError = 6,
};

// The step of an outgoing connect that failed: JS reports it as the
// syscall, with the local address for kBind and the remote one otherwise.
enum class ConnectStep : uint8_t { kConnect = 0, kBind = 1 };

// The step a Status from Backend::Connect names (its syscall).
ConnectStep ConnectStepOf(const Status& status);

// a of a kConnectFailed record: SysError + raw code * 2^8 + step * 2^40
// (raw as 32 bits unsigned). Library failures (pool full, closing) carry
// their Code as the raw code with no SysError.
double ConnectFailureWord(uint8_t sys_error, int32_t raw, ConnectStep step = ConnectStep::kConnect);

struct EventRecord {
  double type;
  double id;
  double a;
  double b;
};

class EventBatch {
 public:
  EventBatch(size_t max_records, size_t data_bytes);
  EventBatch(const EventBatch&) = delete;
  EventBatch& operator=(const EventBatch&) = delete;

  void Clear() {
    count_ = 0;
    used_ = 0;
  }
  bool empty() const { return count_ == 0; }
  size_t count() const { return count_; }
  size_t data_used() const { return used_; }
  const EventRecord* records() const { return records_.get(); }
  const char* data() const { return data_.get(); }

  // Room for a record? (Callers check before doing I/O whose result must be
  // recorded.)
  bool HasRecordRoom(size_t n = 1) const { return count_ + n <= max_records_; }
  // Where the next read may land, and how much fits there.
  char* ReadSpace() { return data_.get() + used_; }
  size_t ReadRoom() const { return data_bytes_ - used_; }

  void Add(EventType type, SessionId id, double a = 0, double b = 0);
  // Records `length` bytes already read into ReadSpace().
  void AddData(SessionId id, size_t length);
  // Copies bytes into the arena and records them (false if no room).
  bool AddCopy(EventType type, SessionId id, const void* bytes, size_t length);

 private:
  size_t max_records_;
  size_t data_bytes_;
  size_t count_ = 0;
  size_t used_ = 0;
  std::unique_ptr<EventRecord[]> records_;
  std::unique_ptr<char[]> data_;
};

}  // namespace acceptpool

#endif  // ACCEPTPOOL_CORE_EVENT_BATCH_H_
