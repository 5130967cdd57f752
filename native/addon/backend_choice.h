// The backends this build of the addon has, and how an endpoint's `backend`
// option ('auto' or a name) picks the one its engines run.
#ifndef ACCEPTPOOL_ADDON_BACKEND_CHOICE_H_
#define ACCEPTPOOL_ADDON_BACKEND_CHOICE_H_

#include <cstddef>
#include <memory>
#include <string>

#include "core/backend.h"
#include "core/status.h"

namespace acceptpool {

struct BackendChoice {
  const char* name;  // as options.backend and stats().backend spell it
  std::unique_ptr<Backend> (*make)();
  // Whether it can run here now (a kernel may refuse it: io_uring under
  // seccomp); nullptr = always. On failure *why says what refused it.
  Status (*probe)(std::string* why);
  // 'auto' tries it, in table order; the others run only when named.
  bool automatic;
};

// Every backend compiled in, 'auto''s choices first, in its order.
const BackendChoice* CompiledBackends(size_t* count);

// The backend ('auto' or a name) an endpoint runs when nothing names one.
const char* DefaultBackend();

// `requested` is "auto" or a name from CompiledBackends. 'auto' takes the
// first automatic backend whose probe passes and sets *skipped to why each
// one before it could not run ("" when none was skipped). A named backend
// runs or fails (kUnsupported, *why saying why): it never falls back.
Status ChooseBackend(const std::string& requested, const BackendChoice** chosen,
                     std::string* skipped);

}  // namespace acceptpool

#endif  // ACCEPTPOOL_ADDON_BACKEND_CHOICE_H_
