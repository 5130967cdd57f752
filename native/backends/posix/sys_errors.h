// errno -> the core's portable error set, in one place for every POSIX
// backend.
#ifndef ACCEPTPOOL_BACKENDS_POSIX_SYS_ERRORS_H_
#define ACCEPTPOOL_BACKENDS_POSIX_SYS_ERRORS_H_

#include "core/status.h"

namespace acceptpool {

SysError SysErrorFromErrno(int err);
// A kSystem status for `err` as returned by `syscall`.
Status ErrnoStatus(int err, const char* syscall);

}  // namespace acceptpool

#endif  // ACCEPTPOOL_BACKENDS_POSIX_SYS_ERRORS_H_
