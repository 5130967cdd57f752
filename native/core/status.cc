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

}  // namespace acceptpool
