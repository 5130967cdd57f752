// Windows completion backend: the backend contract in I/O completion port
// terms.
//
// - Accepting: AcceptEx calls are posted ahead of clients on pre-created
//   overlapped sockets (32 at listen). Each completion is refilled at once;
//   when the posted count runs low in a round, or the listener signals
//   FD_ACCEPT (a client waiting with nothing posted to take it), the target
//   doubles, up to maxConnections; after a quiet spell it halves again, one
//   step a second. Accepted connections wait in a FIFO until the engine has
//   room (AcceptBudget), and while they wait no new accept is posted for
//   them, so a JS thread that falls behind leaves clients in the backlog.
// - Reading: a zero-byte WSARecv per idle connection (no buffer pinned), then
//   non-blocking recv() into the engine's shared batch arena.
// - Sending: non-blocking send() when the queue is empty, otherwise one
//   gathered overlapped WSASend from the queue at a time.
// - Closing: a slot is released only after every overlapped operation on it
//   has come back (cancelled ones included). An accepted socket closed
//   gracefully is recycled with DisconnectEx(TF_REUSE_SOCKET) and reposted to
//   AcceptEx; a socket that is still connected afterwards (Wine), a
//   DisconnectEx that fails or stalls, falls back to closesocket and a fresh
//   socket. ACCEPTPOOL_IOCP_REUSE=auto (default; gives up after repeated
//   failures), force (attempt every time) or off.
// - Connecting: ConnectEx on a socket bound first.
//
// How many accepts stay posted and whether sockets are recycled are pure
// policies (accept_target.h, socket_reuse.h), tested on every platform; the
// backend itself is a set of small steps, one file per subject
// (iocp_internal.h lists them).
#ifndef ACCEPTPOOL_BACKENDS_IOCP_IOCP_BACKEND_H_
#define ACCEPTPOOL_BACKENDS_IOCP_IOCP_BACKEND_H_

#include <memory>

#include "core/backend.h"

namespace acceptpool {

std::unique_ptr<Backend> MakeIocpBackend();

}  // namespace acceptpool

#endif  // ACCEPTPOOL_BACKENDS_IOCP_IOCP_BACKEND_H_
