// Portable status and error codes. Backends translate their OS errors
// (errno, WSA, NTSTATUS) into SysError exactly once, keeping the raw number so
// JavaScript can still report it.
#ifndef ACCEPTPOOL_CORE_STATUS_H_
#define ACCEPTPOOL_CORE_STATUS_H_

#include <cstdint>

#include "core/wire.h"

namespace acceptpool {

// X(name, node-style code string): a named list (core/wire.h); JS gets the
// names indexed by value. The order is the wire format to JS: append only.
#define ACCEPTPOOL_SYS_ERRORS(X)    \
  X(kNone, "OK")                    \
  X(kUnknown, "EUNKNOWN")           \
  X(kAgain, "EAGAIN")               \
  X(kConnReset, "ECONNRESET")       \
  X(kConnAborted, "ECONNABORTED")   \
  X(kConnRefused, "ECONNREFUSED")   \
  X(kPipe, "EPIPE")                 \
  X(kTimedOut, "ETIMEDOUT")         \
  X(kAddrInUse, "EADDRINUSE")       \
  X(kAddrNotAvail, "EADDRNOTAVAIL") \
  X(kAccess, "EACCES")              \
  X(kPerm, "EPERM")                 \
  X(kMFile, "EMFILE")               \
  X(kNFile, "ENFILE")               \
  X(kNoBufs, "ENOBUFS")             \
  X(kNoMem, "ENOMEM")               \
  X(kInval, "EINVAL")               \
  X(kAfNoSupport, "EAFNOSUPPORT")   \
  X(kNetUnreach, "ENETUNREACH")     \
  X(kHostUnreach, "EHOSTUNREACH")   \
  X(kNotConn, "ENOTCONN")           \
  X(kShutdown, "ESHUTDOWN")         \
  X(kCanceled, "ECANCELED")         \
  X(kBadF, "EBADF")                 \
  X(kProto, "EPROTO")               \
  X(kNotSock, "ENOTSOCK")

enum class SysError : uint8_t { ACCEPTPOOL_SYS_ERRORS(ACCEPTPOOL_NAMED_ENUMERATOR) kCount };

// The Node-style name of an error ("ECONNRESET").
const char* SysErrorName(SysError e);

// An accept that failed with `e` lost one connection, which its peer had
// reset or given up before the server could take it (the client saw it
// connected); the listener itself is fine, so accepting goes on.
bool IsAbortedAccept(SysError e);

// What an operation came to. Library-level outcomes first, then kSystem for an
// OS failure, whose details travel in `sys` and `raw`. X(name, value): see
// core/wire.h.
#define ACCEPTPOOL_CODES(X)                                           \
  X(kOk, 0)                                                           \
  X(kClosed, 1)      /* the server or session is closing or closed */ \
  X(kInvalid, 2)     /* a bad argument reached the core */            \
  X(kPoolFull, 3)    /* maxConnections reached */                     \
  X(kNoMemory, 4)    /* an allocation failed */                       \
  X(kSystem, 5)      /* see sys/raw */                                \
  X(kUnsupported, 6) /* this platform's backend cannot do it */

enum class Code : uint8_t { ACCEPTPOOL_CODES(ACCEPTPOOL_NUMBERED_ENUMERATOR) };

struct Status {
  Code code = Code::kOk;
  SysError sys = SysError::kNone;
  int raw = 0;                    // errno or WSA code, as the OS gave it
  const char* syscall = nullptr;  // static string naming the failing call

  static Status Ok() { return Status(); }
  static Status Of(Code c) {
    Status s;
    s.code = c;
    return s;
  }
  static Status System(SysError e, int raw_code, const char* call) {
    Status s;
    s.code = Code::kSystem;
    s.sys = e;
    s.raw = raw_code;
    s.syscall = call;
    return s;
  }
  bool ok() const { return code == Code::kOk; }
};

}  // namespace acceptpool

#endif  // ACCEPTPOOL_CORE_STATUS_H_
