// A batch of session events on their way to JavaScript, which takes a whole
// batch in one call. Received bytes are read straight into the batch's data
// arena: that arena is the shared receive buffer of the loop, so an idle
// connection owns no receive memory.
//
// Records are four doubles (ACCEPTPOOL_RECORD_FIELDS) so JS can read them from
// one Float64Array; what a and b hold depends on the type
// (ACCEPTPOOL_EVENT_TYPES). Every record that carries an error carries it in
// b, as one error word (ACCEPTPOOL_ERROR_WORD).
#ifndef ACCEPTPOOL_CORE_EVENT_BATCH_H_
#define ACCEPTPOOL_CORE_EVENT_BATCH_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/session_table.h"
#include "core/status.h"

namespace acceptpool {

// X(name, value): a numbered list (core/wire.h). What each type's a and b hold.
#define ACCEPTPOOL_EVENT_TYPES(X)                                                     \
  X(kSession, 1)        /* a = data offset of a SocketAddress, b = its size */        \
  X(kData, 2)           /* a = data offset, b = length */                             \
  X(kDrain, 3)          /* the send queue fell back to the high-water mark */         \
  X(kEnd, 4)            /* the peer half-closed */                                    \
  X(kClose, 5)          /* a = CloseReason, b = error word (0: no error) */           \
  X(kStale, 6)          /* a = StaleCommand refused (threaded driver) */              \
  X(kServerClosed, 7)   /* id 0: the server finished shutting down */                 \
  X(kConnected, 8)      /* a = connect token: an outgoing connect is open */          \
  X(kConnectFailed, 9)  /* id (0 if none), a = connect token, b = error word */       \
  X(kTimeout, 10)       /* the session's own timeout (setTimeout) passed */           \
  X(kTotals, 11)        /* just before kClose, if asked (Query): a = bytes written */ \
  X(kProxyRejected, 12) /* id 0, a = data offset of a SocketAddress (the peer)        \
                           and a ProxyRejectInfo (proxy_protocol.h), b = size */      \
  X(kDraining, 13)      /* id 0: Drain() has closed the listener */

enum class EventType : uint8_t { ACCEPTPOOL_EVENT_TYPES(ACCEPTPOOL_NUMBERED_ENUMERATOR) };

// One record's doubles, in order.
#define ACCEPTPOOL_RECORD_FIELDS(X) X(type) X(id) X(a) X(b)

struct EventRecord {
#define ACCEPTPOOL_RECORD_MEMBER(field) double field;
  ACCEPTPOOL_RECORD_FIELDS(ACCEPTPOOL_RECORD_MEMBER)
#undef ACCEPTPOOL_RECORD_MEMBER
};

// X(name, text): named lists (core/wire.h); JS shows the texts.
#define ACCEPTPOOL_CLOSE_REASONS(X) \
  X(kRemote, "remote")              \
  X(kReset, "reset")                \
  X(kLocal, "local")                \
  X(kTimeout, "timeout")            \
  X(kShutdown, "shutdown")          \
  X(kOverflow, "overflow")          \
  X(kError, "error")

enum class CloseReason : uint8_t { ACCEPTPOOL_CLOSE_REASONS(ACCEPTPOOL_NAMED_ENUMERATOR) };

// The command a kStale record reports refused.
#define ACCEPTPOOL_STALE_COMMANDS(X) \
  X(kSend, "send")                   \
  X(kClose, "close")                 \
  X(kPause, "pause")                 \
  X(kResume, "resume")               \
  X(kSetTimeout, "setTimeout")       \
  X(kSetNoDelay, "setNoDelay")       \
  X(kSetKeepAlive, "setKeepAlive")

enum class StaleCommand : uint8_t { ACCEPTPOOL_STALE_COMMANDS(ACCEPTPOOL_NAMED_ENUMERATOR) };

// The step of an outgoing connect that failed: JS reports it as the
// syscall, with the local address for kBind and the remote one otherwise.
#define ACCEPTPOOL_CONNECT_STEPS(X) X(kConnect, 0) X(kBind, 1)

enum class ConnectStep : uint8_t { ACCEPTPOOL_CONNECT_STEPS(ACCEPTPOOL_NUMBERED_ENUMERATOR) };

// The step a Status from Backend::Connect names (its syscall).
ConnectStep ConnectStepOf(const Status& status);

// The error a record carries (kClose, kConnectFailed) and connect() returns.
// code kOk: no error; kSystem: an OS error, `sys` with the OS's own number
// `raw`; anything else: a library failure (pool full, closing) with no OS
// error.
struct RecordError {
  Code code = Code::kOk;
  SysError sys = SysError::kNone;
  int32_t raw = 0;
  ConnectStep step = ConnectStep::kConnect;

  // An OS error `sys` (kNone: no error at all) with its raw code.
  static RecordError System(SysError sys, int32_t raw);
  // What a failed Status says (its step from the syscall).
  static RecordError Of(const Status& status);
};

// The error word: a RecordError in one double, an integer below 2^53. Field
// X(name, shift, bits) holds floor(word / 2^shift) mod 2^bits; raw holds the
// OS number's 32 bits (two's complement: decode with `| 0` in JS). No error
// is the word 0. src/wire.ts decodes it, in one place.
#define ACCEPTPOOL_ERROR_WORD(X) \
  X(sys, 0, 8)                   \
  X(raw, 8, 32)                  \
  X(code, 40, 8)                 \
  X(step, 48, 4)

double EncodeErrorWord(const RecordError& error);
RecordError DecodeErrorWord(double word);

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
  // Whether AddCopy of `length` bytes would fit now.
  bool CanAddCopy(size_t length) const;
  // Copies bytes into the arena and records them (false if no room).
  bool AddCopy(EventType type, SessionId id, const void* bytes, size_t length);
  // Leaves `length` bytes read into ReadSpace() where they are, unrecorded
  // (a record names them later), and returns their offset.
  size_t Keep(size_t length) {
    size_t offset = used_;
    used_ += length;
    return offset;
  }
  // `length` bytes of the arena, 8-byte aligned, for the caller to fill and
  // record; null if no room. *offset: where they start.
  char* Append(size_t length, size_t* offset);

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
