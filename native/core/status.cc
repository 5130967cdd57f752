#include "core/status.h"
#include <cstddef>

namespace acceptpool {

const char* SysErrorName(SysError e) {
  static const char* const kNames[] = {
#define ACCEPTPOOL_NAME_ENTRY(name, text) text,
      ACCEPTPOOL_SYS_ERRORS(ACCEPTPOOL_NAME_ENTRY)
#undef ACCEPTPOOL_NAME_ENTRY
  };
  size_t i = static_cast<size_t>(e);
  return i < sizeof(kNames) / sizeof(kNames[0]) ? kNames[i] : "EUNKNOWN";
}

bool IsAbortedAccept(SysError e) {
  // ENOTCONN: Wine fails an AcceptEx this way when the connection it takes
  // from the backlog was reset meanwhile (it asks the dead socket for its
  // peer address). EPROTO: Linux passes a new connection's pending network
  // error to accept().
  return e == SysError::kConnAborted || e == SysError::kConnReset || e == SysError::kNotConn ||
         e == SysError::kProto;
}

}  // namespace acceptpool
