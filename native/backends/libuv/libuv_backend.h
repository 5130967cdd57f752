// The portable backend: the backend contract on libuv, for the POSIX systems
// without epoll (macOS, the BSDs), and selectable on Linux so CI runs it.
//
// The backend owns a private uv_loop_t, run one round per PollOnce on the
// engine's thread (UV_RUN_NOWAIT, or UV_RUN_ONCE when PollOnce may block).
// Sessions are uv_tcp_t (uv_pipe_t behind a Unix socket listener) living in
// the slot's ext bytes with their one write or connect request: nothing is
// allocated per connection or per write. Reads land in the engine's space
// (the alloc callback lends it, only once the socket is readable), one read
// per session per round as epoll does; writes try uv_try_write first and
// queue one bounded uv_write (at most 4 buffers, libuv's inline array) for
// what the kernel did not take.
//
// The listener is a uv_poll on a socket opened by posix/socket_ops, accepted
// with accept(): libuv's uv_listen accepts every waiting connection into a
// handle before the engine could lend a slot or a budget, and its EMFILE
// trick sheds without counting. Here the engine's accept budget, the
// reserve descriptor and the back-off work as with epoll.
//
// Closing: uv_close; OnReleased only from its close callback, which libuv
// runs after every request of the handle has been called back (cancelled),
// so a slot is reused only once libuv holds nothing of it. Callbacks resolve
// their session through the id stored beside the handle
// (SessionTable::LookupTaken).
//
// libuv runs timers and deferred callbacks (write completions, close
// callbacks, descriptors it has yet to register) without making its own
// descriptor readable; for the inline driver, where Node's loop watches that
// descriptor, a WakeTimer armed to the loop's next timeout (at once when work
// is deferred) makes it readable when needed.
#ifndef ACCEPTPOOL_BACKENDS_LIBUV_LIBUV_BACKEND_H_
#define ACCEPTPOOL_BACKENDS_LIBUV_LIBUV_BACKEND_H_

#include <memory>

#include "core/backend.h"

namespace acceptpool {

std::unique_ptr<Backend> MakeLibuvBackend();

}  // namespace acceptpool

#endif  // ACCEPTPOOL_BACKENDS_LIBUV_LIBUV_BACKEND_H_
