// What the environment configures, read when the backend starts.
#include <cstring>

#include "backends/iocp/iocp_internal.h"

namespace acceptpool {
namespace iocp {
namespace {

// The variable's value from the process environment as it is now
// (process.env writes from JS update it; the C runtime's getenv copy does
// not see them), or null if unset or longer than `size` - 1.
const char* EnvValue(const char* name, char* buffer, DWORD size) {
  DWORD n = GetEnvironmentVariableA(name, buffer, size);
  return n > 0 && n < size ? buffer : nullptr;
}

}  // namespace

Config ReadConfig() {
  Config config;
  char buffer[32];
  config.reuse = ParseReuseMode(EnvValue("ACCEPTPOOL_IOCP_REUSE", buffer, sizeof(buffer)));
  const char* skip = EnvValue("ACCEPTPOOL_IOCP_SKIP_ON_SUCCESS", buffer, sizeof(buffer));
  config.skip_on_success = skip == nullptr || std::strcmp(skip, "0") != 0;
  return config;
}

}  // namespace iocp
}  // namespace acceptpool
