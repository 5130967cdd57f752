// The backend each platform runs: epoll on Linux, IOCP on Windows.
#ifndef ACCEPTPOOL_BACKENDS_MAKE_BACKEND_H_
#define ACCEPTPOOL_BACKENDS_MAKE_BACKEND_H_

#include <memory>

#include "core/backend.h"

#if defined(_WIN32)
#include "backends/iocp/iocp_backend.h"
#else
#include "backends/epoll/epoll_backend.h"
#endif

namespace acceptpool {

inline std::unique_ptr<Backend> MakePlatformBackend() {
#if defined(_WIN32)
  return MakeIocpBackend();
#else
  return MakeEpollBackend();
#endif
}

}  // namespace acceptpool

#endif  // ACCEPTPOOL_BACKENDS_MAKE_BACKEND_H_
