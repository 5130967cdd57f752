#include "backends/io_uring/io_uring_ring.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "backends/posix/sys_errors.h"

namespace acceptpool {
namespace {

// Deferred task work run per non-waiting enter at most (see Enter).
constexpr unsigned kRunAllTaskWork = 4096;

int Setup(uint32_t entries, io_uring_params* p) {
  return static_cast<int>(syscall(__NR_io_uring_setup, entries, p));
}

// kernel.io_uring_disabled (6.6+): 0 allowed, 1 only for io_uring_group,
// 2 nobody; -1 when the kernel has no such sysctl.
int DisabledSysctl() {
  std::FILE* f = std::fopen("/proc/sys/kernel/io_uring_disabled", "r");
  if (f == nullptr) return -1;
  int value = -1;
  if (std::fscanf(f, "%d", &value) != 1) value = -1;
  std::fclose(f);
  return value;
}

std::string SetupRefusal(int err) {
  switch (err) {
    case ENOSYS:
      return "io_uring_setup failed with ENOSYS (a kernel without io_uring, or a seccomp filter)";
    case EPERM: {
      int sysctl = DisabledSysctl();
      if (sysctl == 2) return "io_uring is disabled by the sysctl kernel.io_uring_disabled=2";
      if (sysctl == 1) {
        return "io_uring_setup failed with EPERM: kernel.io_uring_disabled=1 allows only "
               "kernel.io_uring_group";
      }
      return "io_uring_setup failed with EPERM (blocked, e.g. by a seccomp filter)";
    }
    default:
      return std::string("io_uring_setup failed with ") + SysErrorName(SysErrorFromErrno(err)) +
             " (errno " + std::to_string(err) + ")";
  }
}

}  // namespace

IoUringRing::~IoUringRing() {
  if (sqes_ != nullptr) munmap(sqes_, sqes_size_);
  if (cq_map_ != nullptr && cq_map_ != sq_map_) munmap(cq_map_, cq_map_size_);
  if (sq_map_ != nullptr) munmap(sq_map_, sq_map_size_);
}

Status IoUringRing::Init(uint32_t sq_entries, uint32_t cq_entries, std::string* why) {
  // The best task-work mode first: deferred task work runs completions only
  // when this thread enters the ring (no interrupts of the loop), then
  // cooperative, then the kernel's default. EINVAL means "not this kernel".
  const uint32_t kBase = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
  const uint32_t kModes[] = {
      kBase | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED,
      kBase | IORING_SETUP_COOP_TASKRUN,
      IORING_SETUP_CQSIZE,
  };
  io_uring_params p{};
  int fd = -1;
  int err = 0;
  for (size_t i = 0; i < sizeof(kModes) / sizeof(kModes[0]); ++i) {
    std::memset(&p, 0, sizeof(p));
    p.flags = kModes[i];
    p.cq_entries = cq_entries;
    fd = Setup(sq_entries, &p);
    if (fd >= 0) {
      mode_ = static_cast<uint32_t>(2 - i);
      break;
    }
    err = errno;
    if (err != EINVAL) break;
  }
  if (fd < 0) {
    *why = SetupRefusal(err);
    return ErrnoStatus(err, "io_uring_setup");
  }
  fd_.reset(fd);
  enabled_ = (p.flags & IORING_SETUP_R_DISABLED) == 0;
  if ((p.features & IORING_FEAT_EXT_ARG) == 0 || (p.features & IORING_FEAT_NODROP) == 0) {
    *why = "io_uring lacks IORING_FEAT_EXT_ARG or IORING_FEAT_NODROP (a kernel before 5.11)";
    return Status::Of(Code::kUnsupported);
  }
  return MapRings(p, why);
}

Status IoUringRing::MapRings(const io_uring_params& p, std::string* why) {
  sq_map_size_ = p.sq_off.array + p.sq_entries * sizeof(uint32_t);
  cq_map_size_ = p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe);
  bool single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
  if (single) sq_map_size_ = cq_map_size_ = std::max(sq_map_size_, cq_map_size_);
  auto map = [&](size_t size, off_t offset) -> void* {
    void* m =
        mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_.get(), offset);
    return m == MAP_FAILED ? nullptr : m;
  };
  sq_map_ = map(sq_map_size_, IORING_OFF_SQ_RING);
  if (sq_map_ == nullptr) {
    *why = "mmap of the io_uring submission ring failed";
    return ErrnoStatus(errno, "mmap");
  }
  cq_map_ = single ? sq_map_ : map(cq_map_size_, IORING_OFF_CQ_RING);
  sqes_size_ = p.sq_entries * sizeof(io_uring_sqe);
  sqes_ = static_cast<io_uring_sqe*>(map(sqes_size_, IORING_OFF_SQES));
  if (cq_map_ == nullptr || sqes_ == nullptr) {
    *why = "mmap of the io_uring rings failed";
    return ErrnoStatus(errno, "mmap");
  }
  char* sq = static_cast<char*>(sq_map_);
  char* cq = static_cast<char*>(cq_map_);
  sq_head_ = reinterpret_cast<uint32_t*>(sq + p.sq_off.head);
  sq_tail_ptr_ = reinterpret_cast<uint32_t*>(sq + p.sq_off.tail);
  sq_mask_ = *reinterpret_cast<uint32_t*>(sq + p.sq_off.ring_mask);
  sq_entries_ = *reinterpret_cast<uint32_t*>(sq + p.sq_off.ring_entries);
  sq_array_ = reinterpret_cast<uint32_t*>(sq + p.sq_off.array);
  // Entry i always sits in array slot i: the array is written once.
  for (uint32_t i = 0; i < sq_entries_; ++i) sq_array_[i] = i;
  sq_tail_ = sq_submitted_ = *sq_tail_ptr_;
  cq_head_ = reinterpret_cast<uint32_t*>(cq + p.cq_off.head);
  cq_tail_ = reinterpret_cast<uint32_t*>(cq + p.cq_off.tail);
  cq_mask_ = *reinterpret_cast<uint32_t*>(cq + p.cq_off.ring_mask);
  cq_overflow_ = reinterpret_cast<uint32_t*>(cq + p.cq_off.overflow);
  cqes_ = reinterpret_cast<io_uring_cqe*>(cq + p.cq_off.cqes);
  return Status::Ok();
}

Status IoUringRing::CheckOpcodes(std::string* why) {
  constexpr unsigned kOps = 256;
  size_t bytes = sizeof(io_uring_probe) + kOps * sizeof(io_uring_probe_op);
  std::unique_ptr<unsigned char[]> buf(new unsigned char[bytes]());
  auto* probe = reinterpret_cast<io_uring_probe*>(buf.get());
  if (Register(IORING_REGISTER_PROBE, probe, kOps) < 0) {
    *why = "IORING_REGISTER_PROBE failed (a kernel before 5.6)";
    return ErrnoStatus(errno, "io_uring_register");
  }
  struct Needed {
    unsigned op;
    const char* name;
  };
#define ACCEPTPOOL_NEEDED_OP(op, name) {op, name},
  const Needed kNeeded[] = {ACCEPTPOOL_IO_URING_OPCODES(ACCEPTPOOL_NEEDED_OP)};
#undef ACCEPTPOOL_NEEDED_OP
  for (const Needed& n : kNeeded) {
    if (n.op >= probe->ops_len || (probe->ops[n.op].flags & IO_URING_OP_SUPPORTED) == 0) {
      *why = std::string("io_uring lacks the opcode ") + n.name;
      return Status::Of(Code::kUnsupported);
    }
  }
  return Status::Ok();
}

int IoUringRing::Register(unsigned opcode, const void* arg, unsigned nr_args) {
  return static_cast<int>(syscall(__NR_io_uring_register, fd_.get(), opcode, arg, nr_args));
}

Status IoUringRing::Enable() {
  if (Register(IORING_REGISTER_ENABLE_RINGS, nullptr, 0) < 0) {
    return ErrnoStatus(errno, "io_uring_register");
  }
  enabled_ = true;
  return Status::Ok();
}

io_uring_sqe* IoUringRing::NextSqe() {
  if (sq_tail_ - __atomic_load_n(sq_head_, __ATOMIC_ACQUIRE) >= sq_entries_) {
    if (!enabled_ || !SubmitNow().ok()) return nullptr;
    if (sq_tail_ - __atomic_load_n(sq_head_, __ATOMIC_ACQUIRE) >= sq_entries_) return nullptr;
  }
  io_uring_sqe* sqe = &sqes_[sq_tail_ & sq_mask_];
  std::memset(sqe, 0, sizeof(*sqe));
  ++sq_tail_;
  return sqe;
}

void IoUringRing::ForgetFd(int fd) {
  for (uint32_t i = sq_submitted_; i != sq_tail_; ++i) {
    io_uring_sqe* sqe = &sqes_[i & sq_mask_];
    if (sqe->opcode == IORING_OP_NOP || sqe->fd != fd) continue;
    uint64_t tag = sqe->user_data | kNoppedBit;
    std::memset(sqe, 0, sizeof(*sqe));
    sqe->opcode = IORING_OP_NOP;
    sqe->user_data = tag;
  }
}

Status IoUringRing::Enter(bool wait, int timeout_ms) {
  if (!enabled_) {
    Status st = Enable();
    if (!st.ok()) return st;
  }
  uint32_t to_submit = sq_tail_ - sq_submitted_;
  __atomic_store_n(sq_tail_ptr_, sq_tail_, __ATOMIC_RELEASE);
  // GETEVENTS always: deferred task work (the completions) runs only in it.
  unsigned flags = IORING_ENTER_GETEVENTS;
  unsigned min_complete = 0;
  __kernel_timespec ts{};
  io_uring_getevents_arg arg{};
  const void* argp = nullptr;
  size_t argsz = 0;
  if (wait && timeout_ms != 0 && PeekCqe() == nullptr) {
    min_complete = 1;
    if (timeout_ms > 0) {
      ts.tv_sec = timeout_ms / 1000;
      ts.tv_nsec = static_cast<long long>(timeout_ms % 1000) * 1000000LL;
      arg.ts = reinterpret_cast<uint64_t>(&ts);
      flags |= IORING_ENTER_EXT_ARG;
      argp = &arg;
      argsz = sizeof(arg);
    }
  } else if (mode_ == 2) {
    // Not waiting, with deferred task work: the kernel runs at most
    // max(20, min_complete) items of it per call (IO_LOCAL_TW_DEFAULT_MAX,
    // 6.13+) and keeps the rest on a retry list, which signals nothing: an
    // inline engine woken once would find only 20 of 250 connects done and
    // never hear of the others. So ask for many completions with a zero
    // timeout: all pending work runs, and the call returns at once.
    min_complete = kRunAllTaskWork;
    arg.ts = reinterpret_cast<uint64_t>(&ts);
    flags |= IORING_ENTER_EXT_ARG;
    argp = &arg;
    argsz = sizeof(arg);
  }
  long rc = syscall(__NR_io_uring_enter, fd_.get(), to_submit, min_complete, flags, argp, argsz);
  int err = rc < 0 ? errno : 0;
  // Whatever the outcome, the kernel's head says what it has taken.
  sq_submitted_ = __atomic_load_n(sq_head_, __ATOMIC_ACQUIRE);
  if (err == 0 || err == EINTR || err == ETIME || err == EBUSY || err == EAGAIN) {
    return Status::Ok();
  }
  return ErrnoStatus(err, "io_uring_enter");
}

Status ProbeIoUring(std::string* why) {
  IoUringRing ring;
  Status st = ring.Init(8, 16, why);
  if (!st.ok()) return st;
  st = ring.CheckOpcodes(why);
  if (!st.ok()) return st;
  // Provided buffer rings (5.19) carry every receive.
  long page = sysconf(_SC_PAGESIZE);
  void* mem = mmap(nullptr, static_cast<size_t>(page), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    *why = "mmap failed";
    return ErrnoStatus(errno, "mmap");
  }
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(mem);
  reg.ring_entries = 1;
  reg.bgid = 0;
  int rc = ring.Register(IORING_REGISTER_PBUF_RING, &reg, 1);
  int err = errno;
  munmap(mem, static_cast<size_t>(page));
  if (rc < 0) {
    *why = "io_uring lacks provided buffer rings (IORING_REGISTER_PBUF_RING, a kernel before 5.19)";
    return ErrnoStatus(err, "io_uring_register");
  }
  return Status::Ok();
}

}  // namespace acceptpool
