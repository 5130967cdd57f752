// One io_uring instance through the kernel's own interface: the raw
// io_uring_setup/enter/register system calls and the rings they map, with no
// library. It knows nothing of sessions: it hands out submission entries,
// submits them, and lets its owner walk the completions.
//
// The ring is created disabled (IORING_SETUP_R_DISABLED) where the kernel
// has single-issuer rings: the engine is built on the JS thread but polled
// on its I/O thread, and a single-issuer ring belongs to the task that
// enables it, so Enable() runs from the first poll.
#ifndef ACCEPTPOOL_BACKENDS_IO_URING_IO_URING_RING_H_
#define ACCEPTPOOL_BACKENDS_IO_URING_IO_URING_RING_H_

#include <linux/io_uring.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "backends/posix/socket_address.h"
#include "core/status.h"

namespace acceptpool {

// The opcodes the backend issues: the probe checks each one is there.
#define ACCEPTPOOL_IO_URING_OPCODES(X)      \
  X(IORING_OP_ACCEPT, "accept")             \
  X(IORING_OP_RECV, "recv")                 \
  X(IORING_OP_SENDMSG, "sendmsg")           \
  X(IORING_OP_CONNECT, "connect")           \
  X(IORING_OP_ASYNC_CANCEL, "async_cancel") \
  X(IORING_OP_POLL_ADD, "poll_add")

// Set in the user_data of an entry ForgetFd turned into a no-op.
constexpr uint64_t kNoppedBit = 1ull << 55;

class IoUringRing {
 public:
  IoUringRing() = default;
  IoUringRing(const IoUringRing&) = delete;
  IoUringRing& operator=(const IoUringRing&) = delete;
  ~IoUringRing();

  // Sets the ring up with `sq_entries` submission and `cq_entries`
  // completion slots (powers of two), the best task-work mode the kernel
  // has. On failure *why says what refused it.
  Status Init(uint32_t sq_entries, uint32_t cq_entries, std::string* why);
  // Checks that every opcode of ACCEPTPOOL_IO_URING_OPCODES is supported.
  Status CheckOpcodes(std::string* why);

  // A zeroed entry to fill, or null when the submission ring is full and
  // cannot be submitted yet (ring still disabled).
  io_uring_sqe* NextSqe();
  // Submits what is queued and, with `wait`, waits for one completion at
  // most timeout_ms (-1 forever). Enables the ring first if needed.
  Status Enter(bool wait, int timeout_ms);
  // Submits what is queued without waiting (outside a poll round).
  Status SubmitNow() { return Enter(false, 0); }
  bool HasUnsubmitted() const { return sq_tail_ != sq_submitted_; }
  // Turns every queued, not yet submitted entry on `fd` into a no-op that
  // completes with -ECANCELED semantics for its owner (kNoppedBit set in
  // its user_data): `fd` is about to be closed, and its number could be
  // reused before the entry reaches the kernel.
  void ForgetFd(int fd);

  // Completions: Peek the oldest, Pop it once handled.
  const io_uring_cqe* PeekCqe() const {
    uint32_t head = *cq_head_;
    if (head == __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE)) return nullptr;
    return &cqes_[head & cq_mask_];
  }
  void PopCqe() { __atomic_store_n(cq_head_, *cq_head_ + 1, __ATOMIC_RELEASE); }
  // Completions the kernel could not fit in the ring (kept by it, NODROP).
  uint32_t Overflows() const { return cq_overflow_ != nullptr ? *cq_overflow_ : 0; }

  int Register(unsigned opcode, const void* arg, unsigned nr_args);
  int fd() const { return fd_.get(); }
  bool enabled() const { return enabled_; }
  // Which task-work mode the kernel gave (a setting for stats).
  uint32_t mode() const { return mode_; }

 private:
  Status Enable();
  Status MapRings(const io_uring_params& p, std::string* why);

  UniqueFd fd_;
  void* sq_map_ = nullptr;
  size_t sq_map_size_ = 0;
  void* cq_map_ = nullptr;
  size_t cq_map_size_ = 0;
  io_uring_sqe* sqes_ = nullptr;
  size_t sqes_size_ = 0;
  uint32_t* sq_head_ = nullptr;
  uint32_t* sq_tail_ptr_ = nullptr;
  uint32_t* sq_array_ = nullptr;
  uint32_t sq_mask_ = 0;
  uint32_t sq_entries_ = 0;
  uint32_t sq_tail_ = 0;       // ours, published on Enter
  uint32_t sq_submitted_ = 0;  // what the kernel has taken
  uint32_t* cq_head_ = nullptr;
  uint32_t* cq_tail_ = nullptr;
  uint32_t* cq_overflow_ = nullptr;
  io_uring_cqe* cqes_ = nullptr;
  uint32_t cq_mask_ = 0;
  bool enabled_ = false;
  uint32_t mode_ = 0;  // 2: single issuer + deferred task work, 1: cooperative, 0: plain
};

// Whether io_uring can run here with what the backend uses; *why says what
// refused it otherwise (seccomp, the sysctl, an old kernel, an opcode).
Status ProbeIoUring(std::string* why);

}  // namespace acceptpool

#endif  // ACCEPTPOOL_BACKENDS_IO_URING_IO_URING_RING_H_
