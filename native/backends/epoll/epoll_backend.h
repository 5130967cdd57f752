// Linux readiness backend: the backend contract in epoll terms.
//
// Level-triggered throughout, so anything left for lack of batch room is
// simply reported again next round. Accepts are drained in batches capped by
// the engine's budget. EMFILE/ENFILE: close the reserve descriptor, accept and
// close waiting connections (shed), reopen it, then pause the listener for a
// back-off that doubles up to a second, so the loop never spins.
#ifndef ACCEPTPOOL_BACKENDS_EPOLL_EPOLL_BACKEND_H_
#define ACCEPTPOOL_BACKENDS_EPOLL_EPOLL_BACKEND_H_

#include <memory>

#include "core/backend.h"

namespace acceptpool {

std::unique_ptr<Backend> MakeEpollBackend();

}  // namespace acceptpool

#endif  // ACCEPTPOOL_BACKENDS_EPOLL_EPOLL_BACKEND_H_
