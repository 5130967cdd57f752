// Per-session send queues built from fixed-size blocks of one shared pool.
//
// A queue is two pointers and a byte count, so a session that has nothing
// queued (the common case: most sends go straight to the socket) holds no
// buffer at all. Blocks are recycled through the pool instead of being freed,
// and once a period (the engine's tick) the pool frees the spare blocks that
// no send needed during the whole period: a busy server does not allocate
// per send, and a burst's blocks are gone one idle period after it.
#ifndef ACCEPTPOOL_CORE_SEND_QUEUE_H_
#define ACCEPTPOOL_CORE_SEND_QUEUE_H_

#include <cstddef>
#include <cstdint>

namespace acceptpool {

// Same shape as struct iovec and WSABUF's fields, without their headers.
struct IoSlice {
  const char* data;
  size_t size;
};

struct SendBlock {
  static constexpr size_t kBytes = 16 * 1024 - 2 * sizeof(uint32_t) - sizeof(void*);
  SendBlock* next;
  uint32_t begin;  // first unsent byte
  uint32_t end;    // one past the last queued byte
  char data[kBytes];
};

class BlockPool {
 public:
  BlockPool() = default;
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;
  ~BlockPool();

  // A reset block, or null when memory is exhausted.
  SendBlock* Get();
  void Put(SendBlock* block);
  // Frees spare blocks beyond `keep`.
  void Trim(size_t keep);
  // Ends a period: frees the blocks that stayed spare all through it (the
  // fewest spare seen since the last call) and returns the bytes freed.
  size_t TrimIdle();

  size_t spare() const { return spare_count_; }
  size_t allocated() const { return allocated_count_; }

 private:
  SendBlock* spare_ = nullptr;
  size_t spare_count_ = 0;
  size_t allocated_count_ = 0;
  size_t min_spare_ = 0;  // since the last TrimIdle()
};

class SendQueue {
 public:
  // Copies `size` bytes to the tail. Fails only when the pool cannot supply a
  // block, in which case nothing was appended.
  bool Append(BlockPool& pool, const char* data, size_t size);
  // Describes up to `max` slices from the head, returns how many.
  int Peek(IoSlice* out, int max) const;
  // Drops `size` sent bytes from the head.
  void Consume(BlockPool& pool, size_t size);
  void Clear(BlockPool& pool);

  size_t bytes() const { return bytes_; }
  bool empty() const { return bytes_ == 0; }

 private:
  SendBlock* head_ = nullptr;
  SendBlock* tail_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace acceptpool

#endif  // ACCEPTPOOL_CORE_SEND_QUEUE_H_
