#include "backends/posix/sys_errors.h"

#include <cerrno>

namespace acceptpool {

SysError SysErrorFromErrno(int err) {
  switch (err) {
    case 0: return SysError::kNone;
    case EAGAIN: return SysError::kAgain;
    case ECONNRESET: return SysError::kConnReset;
    case ECONNABORTED: return SysError::kConnAborted;
    case ECONNREFUSED: return SysError::kConnRefused;
    case EPIPE: return SysError::kPipe;
    case ETIMEDOUT: return SysError::kTimedOut;
    case EADDRINUSE: return SysError::kAddrInUse;
    case EADDRNOTAVAIL: return SysError::kAddrNotAvail;
    case EACCES: return SysError::kAccess;
    case EPERM: return SysError::kPerm;
    case EMFILE: return SysError::kMFile;
    case ENFILE: return SysError::kNFile;
    case ENOBUFS: return SysError::kNoBufs;
    case ENOMEM: return SysError::kNoMem;
    case EINVAL: return SysError::kInval;
    case EAFNOSUPPORT: return SysError::kAfNoSupport;
    case ENETUNREACH: return SysError::kNetUnreach;
    case EHOSTUNREACH: return SysError::kHostUnreach;
    case ENOTCONN: return SysError::kNotConn;
    case ESHUTDOWN: return SysError::kShutdown;
    case ECANCELED: return SysError::kCanceled;
    case EBADF: return SysError::kBadF;
    case EPROTO: return SysError::kProto;
    case ENOTSOCK: return SysError::kNotSock;
    default: return SysError::kUnknown;
  }
}

Status ErrnoStatus(int err, const char* syscall) {
  return Status::System(SysErrorFromErrno(err), err, syscall);
}

}  // namespace acceptpool
