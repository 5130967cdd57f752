// The IOCP backend's entry points, its poll round, ticks and teardown. The
// steps they call live in the other iocp_*.cc files (see iocp_internal.h).
#include "backends/iocp/iocp_backend.h"

#include <algorithm>
#include <cstring>

#include "backends/iocp/iocp_internal.h"

namespace acceptpool {
namespace iocp {
namespace {

const char* const kCounterNames[] = {
    "acceptsPosted",     "acceptsPending", "acceptTarget",     "acceptsWaiting", "acceptGrowths",
    "acceptShrinks",     "acceptSignals",  "acceptsCancelled", "acceptsFailed",  "freshSockets",
    "socketsClosed",     "reuseMode",      "reuseAttempts",    "reuseOk",        "reuseFailed",
    "reuseStalled",      "reuseDisabled",  "reusedAccepts",    "zeroByteReads",  "skipOnSuccess",
    "inlineCompletions", "completions",    "acceptsForwarded",
};
static_assert(sizeof(kCounterNames) / sizeof(kCounterNames[0]) == kCounterCount,
              "a name per counter");

}  // namespace

size_t IocpBackend::CounterNames(const char* const** names) const {
  *names = kCounterNames;
  return kCounterCount;
}

void IocpBackend::ReadCounters(uint64_t* values, size_t max) const {
  size_t n = std::min<size_t>(max, kCounterCount);
  for (size_t i = 0; i < n; ++i) values[i] = counters_[i];
  auto set = [&](Counter c, uint64_t v) {
    if (c < n) values[c] = v;
  };
  set(kAcceptsPending, pending_);
  set(kAcceptTarget, accept_target_.target());
  set(kAcceptGrowths, accept_target_.growths());
  set(kAcceptShrinks, accept_target_.shrinks());
  set(kAcceptsWaiting, waiting_);
  set(kReuseMode, static_cast<uint64_t>(reuse_.mode()));
  set(kReuseDisabled, reuse_.disabled() ? 1 : 0);
  set(kSkipOnSuccess, skip_on_success_ ? 1 : 0);
}

Status IocpBackend::Init(BackendEvents* events, SessionTable* table) {
  events_ = events;
  table_ = table;
  WSADATA data;
  int rc = WSAStartup(MAKEWORD(2, 2), &data);
  if (rc != 0) return WinStatus(static_cast<uint32_t>(rc), "WSAStartup");
  wsa_started_ = true;
  port_ = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1);
  if (port_ == nullptr) return WinStatus(GetLastError(), "CreateIoCompletionPort");
  Config config = ReadConfig();
  reuse_ = SocketReuse(config.reuse);
  skip_on_success_ = config.skip_on_success && AllTcpProvidersAreIfs();
  if (skip_on_success_) {
    // Prove the call works here before any socket depends on it.
    SOCKET probe = NewSocket(AF_INET, true);
    if (probe == INVALID_SOCKET) {
      skip_on_success_ = false;
    } else {
      closesocket(probe);
    }
  }
  next_tick_ = GetTickCount64() + 1000;
  return Status::Ok();
}

Status IocpBackend::Listen(const SocketAddress& address, const ListenOptions& options,
                           SocketAddress* bound) {
  // Windows has no balancing SO_REUSEPORT (SO_REUSEADDR there lets another
  // socket take the port over, not share it). Engines share one listener
  // instead (options.shared, ListenBeside).
  if (options.reuse_port) return Status::Of(Code::kUnsupported);
  int af = address.family == 6 ? AF_INET6 : AF_INET;
  UniqueSocket ls(NewSocket(af, false));
  if (!ls.valid()) return WinStatus(WSAGetLastError(), "socket");
  if (af == AF_INET6) {
    DWORD v6only = options.ipv6_only ? 1 : 0;
    setsockopt(ls.get(), IPPROTO_IPV6, IPV6_V6ONLY, reinterpret_cast<const char*>(&v6only),
               sizeof(v6only));
  }
  sockaddr_storage ss;
  int len = ToSockaddr(address, &ss);
  if (bind(ls.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    return WinStatus(WSAGetLastError(), "bind");
  }
  if (listen(ls.get(), options.backlog) != 0) return WinStatus(WSAGetLastError(), "listen");
  shared_ = options.shared;
  return StartAccepting(std::move(ls), options, true, bound);
}

// The other engines of a server (threads: N) post their own AcceptEx on the
// first engine's listening socket, each with accept sockets on its own port,
// so every session lives on one engine and thread. A socket belongs to one
// completion port, so the AcceptEx completions all reach the first engine's
// port; it sends each on to the port of the engine that posted it
// (Forward). The literal seed design, N threads on one port, would hand any
// session's completions to any thread, and every engine's table would need
// locks.
Status IocpBackend::ListenBeside(Backend& first_backend, const ListenOptions& options,
                                 SocketAddress* bound) {
  if (std::strcmp(first_backend.name(), name()) != 0) return Status::Of(Code::kUnsupported);
  auto& first = static_cast<IocpBackend&>(first_backend);
  if (!first.listener_.valid()) return Status::Of(Code::kInvalid);
  WSAPROTOCOL_INFOW info;
  if (WSADuplicateSocketW(first.listener_.get(), GetCurrentProcessId(), &info) != 0) {
    return WinStatus(WSAGetLastError(), "WSADuplicateSocket");
  }
  UniqueSocket ls(WSASocketW(FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, &info, 0,
                             WSA_FLAG_OVERLAPPED));
  if (!ls.valid()) return WinStatus(WSAGetLastError(), "WSASocket");
  HANDLE process = GetCurrentProcess();
  if (!DuplicateHandle(process, first.port_, process, &listener_port_, 0, FALSE,
                       DUPLICATE_SAME_ACCESS)) {
    listener_port_ = nullptr;
    return WinStatus(GetLastError(), "DuplicateHandle");
  }
  // FD_ACCEPT stays the first engine's: an event selection belongs to the
  // socket, not to a handle of it.
  return StartAccepting(std::move(ls), options, false, bound);
}

void IocpBackend::SetAccepting(bool on) {
  accepting_ = on;
  if (on) {
    QueueAccepts();
  } else if (shared_ || listener_port_ != nullptr) {
    // Another engine on this listener may have room: our posted accepts
    // would take clients that then wait for ours.
    CancelOwnAccepts();
  }
}

void IocpBackend::StopListening() {
  if (!listener_.valid()) return;
  stopped_ = true;
  accepting_ = false;
  StopAcceptSignal();
  // Every posted AcceptEx comes back cancelled through the port and closes
  // its socket (Quiescent() waits for that). Only ours: other engines may
  // share the socket, which closes with its last handle.
  CancelOwnAccepts();
  listener_.reset();
  while (AcceptContext* ctx = PopWaiting()) {
    CloseCounted(ctx->socket);
    FreeContext(ctx);
  }
  for (const Spare& spare : spares_) CloseCounted(spare.socket);
  spares_.clear();
}

// getpeername works on an accepted socket once its accept completion set
// SO_UPDATE_ACCEPT_CONTEXT (iocp_accept.cc), before it is attached.
bool IocpBackend::PeerAddress(const Session& s, SocketAddress* out) {
  if (s.socket == kNoSocket) return false;
  sockaddr_storage ss;
  int len = sizeof(ss);
  if (getpeername(SocketOf(s), reinterpret_cast<sockaddr*>(&ss), &len) != 0) return false;
  *out = FromSockaddr(reinterpret_cast<const sockaddr*>(&ss));
  return true;
}

void IocpBackend::DiscardSocket(SocketHandle socket) {
  CancelIoEx(reinterpret_cast<HANDLE>(socket), nullptr);
  CloseCounted(static_cast<SOCKET>(socket));
}

Status IocpBackend::Attach(Session& s, bool no_delay) {
  InitOps(s, static_cast<uint16_t>(kFromAccept | (attaching_reused_ ? kReusedSocket : 0) |
                                   (attaching_skip_ ? kSkipMode : 0)));
  SOCKET sock = SocketOf(s);
  if (no_delay) {
    BOOL one = TRUE;
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, reinterpret_cast<const char*>(&one), sizeof(one));
  }
  // Non-blocking for the direct recv()/send() next to overlapped I/O.
  u_long nonblocking = 1;
  if (ioctlsocket(sock, FIONBIO, &nonblocking) != 0)
    return WinStatus(WSAGetLastError(), "ioctlsocket");
  if (!QueueRead(s).ok()) {
    // Reset between accept and now: it is still a session, and the read
    // reports the reset (as on Linux, where accept() hands it out too).
    MarkReadReady(s);
  }
  return Status::Ok();
}

// One round: take what the port has (waiting no longer than the next tick),
// hand each completion to its handler, then do the work the handlers left:
// inline completions, reads, connect reports, accepts for the engine, and
// the accepts to post again.
Status IocpBackend::PollOnce(int timeout_ms) {
  in_poll_ = true;
  RunTicks(GetTickCount64());
  bool ready_work = !inline_.empty() || !ready_.empty() || !connect_reports_.empty() ||
                    (waiting_ > 0 && accepting_);
  ULONGLONG now = GetTickCount64();
  DWORD wait = ready_work ? 0 : timeout_ms < 0 ? INFINITE : static_cast<DWORD>(timeout_ms);
  DWORD to_tick = next_tick_ > now ? static_cast<DWORD>(next_tick_ - now) : 0;
  wait = std::min(wait, to_tick);
  ULONG n = 0;
  if (!GetQueuedCompletionStatusEx(port_, entries_, kMaxEntries, &n, wait, FALSE)) {
    n = 0;
    DWORD err = GetLastError();
    if (err != WAIT_TIMEOUT) {
      in_poll_ = false;
      return WinStatus(err, "GetQueuedCompletionStatusEx");
    }
  }
  saturated_ = n == kMaxEntries;
  accepts_this_round_ = 0;
  for (ULONG i = 0; i < n; ++i) {
    const OVERLAPPED_ENTRY& e = entries_[i];
    if (e.lpCompletionKey == kKeyWake) {
      wake_posted_.store(false, std::memory_order_release);
      events_->OnWake();
    } else if (e.lpCompletionKey == kKeyAcceptSignal) {
      ProcessAcceptSignal();
    } else if (e.lpOverlapped != nullptr) {
      auto* op = reinterpret_cast<IoOp*>(e.lpOverlapped);
      if (Forward(op, e.dwNumberOfBytesTransferred)) continue;
      ++counters_[kCompletions];
      Complete(op, static_cast<uint32_t>(op->ov.Internal), e.dwNumberOfBytesTransferred);
    }
  }
  RunInline();
  ServeReads();
  RetryConnectReports();
  accept_target_.AfterRound(accepts_this_round_, pending_, tick_);
  DeliverAccepts();
  QueueAccepts();
  RunTicks(GetTickCount64());
  in_poll_ = false;
  return Status::Ok();
}

bool IocpBackend::PollSaturated() const {
  return saturated_ || !ready_.empty() || !inline_.empty() || !connect_reports_.empty() ||
         (waiting_ > 0 && accepting_);
}

void IocpBackend::Wake() {
  if (!wake_posted_.exchange(true, std::memory_order_acq_rel)) {
    PostQueuedCompletionStatus(port_, 0, kKeyWake, nullptr);
  }
}

void IocpBackend::RunTicks(ULONGLONG now) {
  while (now >= next_tick_) {
    next_tick_ += 1000;
    if (now >= next_tick_) next_tick_ = now + 1000;  // fell behind: no burst of ticks
    ++tick_;
    if (accept_target_.OnTick(tick_)) CancelExcessAccepts();
    CheckStalledDisconnects();
    events_->OnTick();
  }
}

// Takes what `port` has for up to `wait_ms`: our operations are done with,
// other engines' accepts sent on to them.
void IocpBackend::DrainForTeardown(HANDLE port, DWORD wait_ms) {
  ULONG n = 0;
  if (!GetQueuedCompletionStatusEx(port, entries_, kMaxEntries, &n, wait_ms, FALSE)) return;
  for (ULONG i = 0; i < n; ++i) {
    auto* op = reinterpret_cast<IoOp*>(entries_[i].lpOverlapped);
    if (op == nullptr || Forward(op, entries_[i].dwNumberOfBytesTransferred)) continue;
    --outstanding_;
    if (op->kind == OpKind::kAccept) {
      auto* ctx = reinterpret_cast<AcceptContext*>(op);
      CloseCounted(ctx->socket);
      ctx->socket = INVALID_SOCKET;
    }
  }
}

void IocpBackend::Teardown() {
  stopped_ = true;
  StopAcceptSignal();
  if (listener_.valid()) CancelOwnAccepts();
  listener_.reset();
  while (AcceptContext* ctx = PopWaiting()) CloseCounted(ctx->socket);
  for (const Spare& spare : spares_) CloseCounted(spare.socket);
  spares_.clear();
  // Inline completions never went through the port.
  outstanding_ -= static_cast<int64_t>(inline_.size());
  inline_.clear();
  if (port_ != nullptr) {
    // Session sockets were closed by the engine, accept sockets above:
    // every operation comes back cancelled. Their memory (slot storage,
    // accept contexts) must outlive that, so wait for them (bounded). Our
    // accepts on a shared listener come back on its port, whichever engine
    // has gone first.
    ULONGLONG deadline = GetTickCount64() + 2000;
    while (outstanding_ > 0 && GetTickCount64() < deadline) {
      DrainForTeardown(port_, listener_port_ != nullptr ? 10 : 100);
      if (listener_port_ != nullptr) DrainForTeardown(listener_port_, 10);
    }
    CloseHandle(port_);
    port_ = nullptr;
  }
  if (listener_port_ != nullptr) CloseHandle(listener_port_);
  listener_port_ = nullptr;
  if (wsa_started_) WSACleanup();
  wsa_started_ = false;
}

}  // namespace iocp

std::unique_ptr<Backend> MakeIocpBackend() { return std::make_unique<iocp::IocpBackend>(); }

}  // namespace acceptpool
