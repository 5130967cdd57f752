// Commands from the JS thread to an I/O thread (threaded driver).
//
// Double-buffered: the producer appends to one side under the lock; the
// consumer swaps sides and works through its side without the lock. Both
// sides keep the capacity that the last period's largest take needed
// (capacity.h), so steady traffic allocates nothing and a burst's memory (a
// single 64 MiB send fills a side) is given back once it is over. The bound is
// on queued bytes: a producer that would pass it waits until the consumer has
// swapped, which it always does without waiting on JS, so this cannot
// deadlock.
#ifndef ACCEPTPOOL_DRIVERS_COMMAND_QUEUE_H_
#define ACCEPTPOOL_DRIVERS_COMMAND_QUEUE_H_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "core/capacity.h"

namespace acceptpool {

enum class CommandKind : uint8_t {
  kSend,
  kClose,
  kBroadcast,
  kShutdown,
  kConnect,
  kAbortConnect,
  kControl,
  kQuery,
  kDrain
};

struct Command {
  CommandKind kind;
  uint8_t mode;     // CloseMode for kClose; SessionControl for kControl (its a, b follow);
                    // kConnect: 1 if a local address follows
  bool pressure;    // kSend: JS already reported backpressure
  uint64_t id;      // session id (kConnect: the connect token)
  size_t offset;    // into the side's bytes
  size_t size;      // payload bytes
  size_t id_count;  // kBroadcast: ids follow the payload (0 = everyone)
};

class CommandQueue {
 public:
  struct Side {
    std::vector<Command> commands;
    std::vector<char> bytes;
    void Clear() {
      commands.clear();
      bytes.clear();
    }
  };

  explicit CommandQueue(size_t max_bytes) : max_bytes_(max_bytes) {}

  // Appends a command whose payload is `a` then `b`. Blocks while the
  // queue is over its byte bound (unless it is empty: one oversized command
  // always fits). Returns true if the queue was empty before (the caller
  // then wakes the consumer).
  bool Push(Command command, const void* a, size_t a_size, const void* b = nullptr,
            size_t b_size = 0);

  // Consumer: swaps in everything queued so far. `out` must be cleared by
  // the caller after use; returns false if there was nothing.
  bool Take(Side* out);

  // Wakes producers waiting in Push (for shutdown).
  void Close();

  // Consumer, once a period, with `work` (its own side) executed and
  // cleared: gives back what neither side needed for any take of the period.
  // Returns the bytes given back.
  size_t Trim(Side* work);

  // Each side keeps at least this much.
  static constexpr size_t kKeepCommands = 1024;
  static constexpr size_t kKeepBytes = 64 * 1024;

 private:
  size_t max_bytes_;
  PeakTracker peak_commands_;  // consumer only
  PeakTracker peak_bytes_;     // consumer only
  std::mutex mutex_;
  std::condition_variable space_;
  Side incoming_;
  bool closed_ = false;
};

}  // namespace acceptpool

#endif  // ACCEPTPOOL_DRIVERS_COMMAND_QUEUE_H_
