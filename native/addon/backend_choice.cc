#include "addon/backend_choice.h"

#if defined(_WIN32)
#include "backends/iocp/iocp_backend.h"
#else
#if defined(__linux__)
#include "backends/epoll/epoll_backend.h"
#include "backends/io_uring/io_uring_backend.h"
#endif
#include "backends/libuv/libuv_backend.h"
#endif

namespace acceptpool {

namespace {

const BackendChoice kBackends[] = {
#if defined(_WIN32)
    {"iocp", &MakeIocpBackend, nullptr, true},
#else
#if defined(__linux__)
    // io_uring where the kernel lets it run (it is often blocked: seccomp
    // profiles, gVisor, the sysctl), epoll otherwise.
    {"io_uring", &MakeIoUringBackend, &ProbeIoUringBackend, true},
    {"epoll", &MakeEpollBackend, nullptr, true},
#endif
// The portable one: where there is neither epoll nor IOCP (macOS, the
// BSDs) 'auto' takes it; on Linux it runs only when named.
#if defined(__linux__)
    {"libuv", &MakeLibuvBackend, nullptr, false},
#else
    {"libuv", &MakeLibuvBackend, nullptr, true},
#endif
#endif
};

// What an endpoint runs when neither options.backend nor ACCEPTPOOL_BACKEND
// names one: the platform's fastest by the benchmark (README, "Backends").
// On Linux that stays epoll until `acceptpool bench --backends
// epoll,io_uring` shows io_uring ahead across the scenarios.
#if defined(_WIN32)
constexpr const char* kDefaultBackend = "iocp";
#elif defined(__linux__)
constexpr const char* kDefaultBackend = "epoll";
#else
constexpr const char* kDefaultBackend = "auto";
#endif

}  // namespace

const BackendChoice* CompiledBackends(size_t* count) {
  *count = sizeof(kBackends) / sizeof(kBackends[0]);
  return kBackends;
}

const char* DefaultBackend() { return kDefaultBackend; }

Status ChooseBackend(const std::string& requested, const BackendChoice** chosen,
                     std::string* skipped) {
  skipped->clear();
  size_t count = 0;
  const BackendChoice* all = CompiledBackends(&count);
  bool any = requested == "auto";
  for (size_t i = 0; i < count; ++i) {
    const BackendChoice& b = all[i];
    if (any ? !b.automatic : requested != b.name) continue;
    std::string why;
    Status st = b.probe != nullptr ? b.probe(&why) : Status::Ok();
    if (st.ok()) {
      *chosen = &b;
      return st;
    }
    if (!any) {
      *skipped = why;
      return Status::Of(Code::kUnsupported);
    }
    if (!skipped->empty()) *skipped += "; ";
    *skipped += std::string(b.name) + ": " + why;
  }
  if (!any) *skipped = "this build has no backend named " + requested;
  return Status::Of(Code::kUnsupported);
}

}  // namespace acceptpool
