// Linux completion backend: the backend contract in io_uring terms, on the
// kernel's own interface (io_uring_ring.h), no library.
//
// One ring per engine. One multishot accept stays posted on the listener
// (posted again when the kernel ends it). Every session has one multishot
// receive posted while it reads, drawing from one ring of provided buffers
// that all sessions share: an idle connection pins no buffer. The bytes are
// copied into the engine's read space and the buffer goes straight back;
// bytes the engine has no room for wait in a bounded stash (buffer id and
// offset) and are delivered first next round. Sends are gathered sendmsg
// operations from the session's queue, one in flight per session.
//
// The generation promise: every operation's user_data carries its session
// id and kind; a completion whose id no longer resolves through
// SessionTable::LookupTaken is counted as stray and never applied. A closed
// session's operations are cancelled, and OnReleased comes only once every
// one of them (the cancels too) has completed.
//
// EMFILE/ENFILE: as epoll (reserve descriptor, shed, back off up to a
// second): the multishot accept ends and is posted again after the back-off.
#ifndef ACCEPTPOOL_BACKENDS_IO_URING_IO_URING_BACKEND_H_
#define ACCEPTPOOL_BACKENDS_IO_URING_IO_URING_BACKEND_H_

#include <cstdint>
#include <memory>
#include <string>

#include "core/backend.h"
#include "core/status.h"

namespace acceptpool {

struct IoUringConfig {
  // Provided receive buffers shared by every session: a power of two.
  // 4 MiB in all. Small ones: a multishot receive takes up to 32 of them
  // per wake-up of a fast peer (the kernel's MULTISHOT_MAX_RETRY) before a
  // pause's cancel lands, and all of that is read into the process.
  uint32_t buffers = 512;
  uint32_t buffer_bytes = 8 * 1024;
};

std::unique_ptr<Backend> MakeIoUringBackend();
std::unique_ptr<Backend> MakeIoUringBackend(const IoUringConfig& config);

// Whether the kernel lets this process run the backend; *why says why not.
Status ProbeIoUringBackend(std::string* why);

}  // namespace acceptpool

#endif  // ACCEPTPOOL_BACKENDS_IO_URING_IO_URING_BACKEND_H_
