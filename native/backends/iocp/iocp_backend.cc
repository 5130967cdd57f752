#include "backends/iocp/iocp_backend.h"

// clang-format off
#include <winsock2.h>
#include <mswsock.h>
#include <ws2tcpip.h>
#include <windows.h>
// clang-format on

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>
#include <vector>

#include "backends/iocp/accept_target.h"
#include "backends/iocp/socket_reuse.h"
#include "backends/win/socket_address.h"
#include "backends/win/win_errors.h"
#include "core/stats.h"

#ifndef WSA_FLAG_NO_HANDLE_INHERIT
#define WSA_FLAG_NO_HANDLE_INHERIT 0x80
#endif

namespace acceptpool {
namespace {

// Completion keys. Sockets all share one key: an operation is found from its
// OVERLAPPED, which lives in a slot's backend storage or an accept context.
constexpr ULONG_PTR kKeySocket = 0;
constexpr ULONG_PTR kKeyWake = 1;
constexpr ULONG_PTR kKeyAcceptSignal = 2;

constexpr ULONG kMaxEntries = 256;
constexpr int kMaxSlices = 64;
constexpr uint32_t kContextChunk = 32;
// Seconds a DisconnectEx may take before it counts as stalled (TIME_WAIT).
constexpr uint32_t kDisconnectStallTicks = 2;
// AcceptEx wants 16 bytes beyond each address.
constexpr DWORD kAddressBytes = sizeof(sockaddr_storage) + 16;

constexpr uint32_t kErrorCancelled = ERROR_OPERATION_ABORTED;

enum class OpKind : uint8_t { kAccept, kRecv, kSend, kConnect, kDisconnect };

// One overlapped operation. The OVERLAPPED comes first, so the pointer a
// completion hands back is the operation.
struct IoOp {
  OVERLAPPED ov;
  OpKind kind;
  bool busy;
  bool stalled;  // cancelled by us because it took too long
  uint32_t slot;
};

// Per-slot backend storage (SessionExtBytes): the operations a session can
// have in flight and their state. No other per-connection memory exists.
// Reset (InitOps) when a socket becomes a session: Attach, Connect.
struct SlotOps {
  IoOp recv;
  IoOp send;
  IoOp aux;  // ConnectEx while connecting, DisconnectEx while recycling
  uint32_t disconnect_tick;
  uint16_t bits;
  uint16_t pending_ops;  // operations in flight; the slot is released at 0
};

// Part of the idle-connection budget, with Session's 72 bytes.
static_assert(sizeof(SlotOps) <= 128, "keep per-slot storage small");

enum SlotBit : uint16_t {
  kFromAccept = 1 << 0,    // the socket came from AcceptEx: it may be recycled
  kReusedSocket = 1 << 1,  // ... and it was itself a recycled socket
  kReadStopped = 1 << 2,   // SetReading(false)
  kReadReady = 1 << 3,     // in ready_: bytes (or EOF) wait to be read
  kClosed = 1 << 4,        // Close() was called
  kReuseWanted = 1 << 5,   // recycle once the last operation is back
  kReleased = 1 << 6,      // OnReleased() was called
  kSkipMode = 1 << 7,      // the socket skips the port on immediate success
};

// An AcceptEx in flight, or a connection it accepted that waits for the
// engine to have room.
struct AcceptContext {
  IoOp op;
  SOCKET socket;
  AcceptContext* next;
  bool reused;
  bool skip;
  char addresses[2 * kAddressBytes];
};

// Counters for stats().backendCounters, in this order.
enum Counter : size_t {
  kAcceptsPosted,
  kAcceptsPending,   // gauge
  kAcceptTarget,     // gauge
  kAcceptsWaiting,   // gauge: accepted, waiting for engine room
  kAcceptGrowths,
  kAcceptShrinks,
  kAcceptSignals,    // FD_ACCEPT seen
  kAcceptsCancelled,
  kAcceptsFailed,    // accepts a reset or abandoned connection failed, at once or on completion
  kFreshSockets,
  kSocketsClosed,
  kReuseMode,        // 0 off, 1 auto, 2 force
  kReuseAttempts,    // DisconnectEx(TF_REUSE_SOCKET) posted
  kReuseOk,          // socket recycled into the accept pool
  kReuseFailed,      // DisconnectEx failed or left the socket connected
  kReuseStalled,     // DisconnectEx or a recycled AcceptEx took too long
  kReuseDisabled,    // gauge: auto mode gave up
  kReusedAccepts,    // connections accepted on recycled sockets
  kZeroByteReads,
  kSkipOnSuccess,    // gauge: FILE_SKIP_COMPLETION_PORT_ON_SUCCESS in use
  kInlineCompletions,
  kCompletions,
  kCounterCount,
};

const char* const kCounterNames[] = {
    "acceptsPosted",  "acceptsPending",  "acceptTarget",     "acceptsWaiting",
    "acceptGrowths",  "acceptShrinks",   "acceptSignals",    "acceptsCancelled",
    "acceptsFailed",  "freshSockets",    "socketsClosed",    "reuseMode",
    "reuseAttempts",  "reuseOk",         "reuseFailed",      "reuseStalled",
    "reuseDisabled",  "reusedAccepts",   "zeroByteReads",    "skipOnSuccess",
    "inlineCompletions", "completions",
};
static_assert(sizeof(kCounterNames) / sizeof(kCounterNames[0]) == kCounterCount,
              "a name per counter");
static_assert(kCounterCount <= Stats::kBackendCounters, "room in Stats");

// The process environment as it is now (process.env writes from JS update
// it; the C runtime's getenv copy does not see them).
bool EnvEquals(const char* name, const char* value) {
  char buffer[32];
  DWORD n = GetEnvironmentVariableA(name, buffer, sizeof(buffer));
  return n > 0 && n < sizeof(buffer) && std::strcmp(buffer, value) == 0;
}

ReuseMode ReuseModeFromEnv() {
  char buffer[32];
  DWORD n = GetEnvironmentVariableA("ACCEPTPOOL_IOCP_REUSE", buffer, sizeof(buffer));
  return ParseReuseMode(n > 0 && n < sizeof(buffer) ? buffer : nullptr);
}

struct Extensions {
  LPFN_ACCEPTEX accept_ex = nullptr;
  LPFN_GETACCEPTEXSOCKADDRS get_addresses = nullptr;
  LPFN_DISCONNECTEX disconnect_ex = nullptr;
  LPFN_CONNECTEX connect_ex = nullptr;
  bool loaded = false;
};

bool LoadOne(SOCKET s, GUID guid, void* fn, size_t fn_size) {
  DWORD bytes = 0;
  return WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, sizeof(guid), fn,
                  static_cast<DWORD>(fn_size), &bytes, nullptr, nullptr) == 0;
}

// The extension functions belong to the socket's provider, so they are
// loaded through a socket of each family.
DWORD LoadExtensions(SOCKET s, Extensions* ext) {
  if (ext->loaded) return 0;
  if (!LoadOne(s, WSAID_ACCEPTEX, &ext->accept_ex, sizeof(ext->accept_ex)) ||
      !LoadOne(s, WSAID_GETACCEPTEXSOCKADDRS, &ext->get_addresses, sizeof(ext->get_addresses)) ||
      !LoadOne(s, WSAID_DISCONNECTEX, &ext->disconnect_ex, sizeof(ext->disconnect_ex)) ||
      !LoadOne(s, WSAID_CONNECTEX, &ext->connect_ex, sizeof(ext->connect_ex))) {
    return WSAGetLastError();
  }
  ext->loaded = true;
  return 0;
}

// FILE_SKIP_COMPLETION_PORT_ON_SUCCESS is only safe when every TCP provider
// is an IFS one: a layered (non-IFS) provider may report success and still
// queue a completion.
bool AllTcpProvidersAreIfs() {
  DWORD size = 0;
  if (WSAEnumProtocolsW(nullptr, nullptr, &size) != SOCKET_ERROR || size == 0) return false;
  std::vector<char> buffer(size);
  auto* info = reinterpret_cast<WSAPROTOCOL_INFOW*>(buffer.data());
  int n = WSAEnumProtocolsW(nullptr, info, &size);
  if (n == SOCKET_ERROR) return false;
  for (int i = 0; i < n; ++i) {
    bool tcp = info[i].iSocketType == SOCK_STREAM &&
               (info[i].iProtocol == IPPROTO_TCP || info[i].iProtocol == 0);
    if (tcp && (info[i].dwServiceFlags1 & XP1_IFS_HANDLES) == 0) return false;
  }
  return true;
}

SOCKET SocketOf(const Session& s) { return static_cast<SOCKET>(s.socket); }

class IocpBackend final : public Backend {
 public:
  IocpBackend() = default;
  IocpBackend(const IocpBackend&) = delete;
  IocpBackend& operator=(const IocpBackend&) = delete;
  ~IocpBackend() override { Teardown(); }

  const char* name() const override { return "iocp"; }
  size_t SessionExtBytes() const override { return sizeof(SlotOps); }

  size_t CounterNames(const char* const** names) const override {
    *names = kCounterNames;
    return kCounterCount;
  }

  void ReadCounters(uint64_t* values, size_t max) const override {
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

  bool Quiescent() const override { return pending_ == 0; }

  Status Init(BackendEvents* events, SessionTable* table) override {
    events_ = events;
    table_ = table;
    WSADATA data;
    int rc = WSAStartup(MAKEWORD(2, 2), &data);
    if (rc != 0) return WinStatus(static_cast<uint32_t>(rc), "WSAStartup");
    wsa_started_ = true;
    port_ = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1);
    if (port_ == nullptr) return WinStatus(GetLastError(), "CreateIoCompletionPort");
    reuse_ = SocketReuse(ReuseModeFromEnv());
    skip_on_success_ = !EnvEquals("ACCEPTPOOL_IOCP_SKIP_ON_SUCCESS", "0") && AllTcpProvidersAreIfs();
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

  Status Listen(const SocketAddress& address, const ListenOptions& options,
                SocketAddress* bound) override {
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
    len = sizeof(ss);
    if (getsockname(ls.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
      return WinStatus(WSAGetLastError(), "getsockname");
    }
    *bound = FromSockaddr(reinterpret_cast<sockaddr*>(&ss));
    Extensions& ext = ExtFor(af);
    DWORD err = LoadExtensions(ls.get(), &ext);
    if (err != 0) return WinStatus(err, "WSAIoctl");

    // FD_ACCEPT: a client is waiting and no AcceptEx is posted to take it.
    // A thread-pool wait turns the event into a completion packet.
    accept_event_ = CreateEventW(nullptr, FALSE, FALSE, nullptr);
    if (accept_event_ == nullptr) return WinStatus(GetLastError(), "CreateEvent");
    if (WSAEventSelect(ls.get(), accept_event_, FD_ACCEPT) != 0) {
      return WinStatus(WSAGetLastError(), "WSAEventSelect");
    }
    if (!RegisterWaitForSingleObject(&accept_wait_, accept_event_, &IocpBackend::OnAcceptEvent, this,
                                     INFINITE, WT_EXECUTEINWAITTHREAD)) {
      accept_wait_ = nullptr;
      return WinStatus(GetLastError(), "RegisterWaitForSingleObject");
    }

    family_ = af;
    accept_target_.Start(options.max_sessions, tick_);
    listener_ = std::move(ls);
    accepting_ = true;
    PostAccepts();
    if (pending_ == 0) return WinStatus(last_accept_error_, "AcceptEx");
    return Status::Ok();
  }

  void SetAccepting(bool on) override {
    accepting_ = on;
    if (on) PostAccepts();
  }

  void StopListening() override {
    if (!listener_.valid()) return;
    stopped_ = true;
    accepting_ = false;
    StopAcceptSignal();
    // Every posted AcceptEx comes back cancelled through the port and closes
    // its socket (Quiescent() waits for that).
    CancelIoEx(reinterpret_cast<HANDLE>(listener_.get()), nullptr);
    listener_.reset();
    while (AcceptContext* ctx = PopWaiting()) {
      CloseCounted(ctx->socket);
      FreeContext(ctx);
    }
    for (const Spare& spare : spares_) CloseCounted(spare.socket);
    spares_.clear();
  }

  void DiscardSocket(SocketHandle socket) override {
    CancelIoEx(reinterpret_cast<HANDLE>(socket), nullptr);
    CloseCounted(static_cast<SOCKET>(socket));
  }

  Status Attach(Session& s, bool no_delay) override {
    InitOps(s, static_cast<uint16_t>(kFromAccept | (attaching_reused_ ? kReusedSocket : 0) |
                                     (attaching_skip_ ? kSkipMode : 0)));
    SOCKET sock = SocketOf(s);
    if (no_delay) {
      BOOL one = TRUE;
      setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, reinterpret_cast<const char*>(&one), sizeof(one));
    }
    // Non-blocking for the direct recv()/send() next to overlapped I/O.
    u_long nonblocking = 1;
    if (ioctlsocket(sock, FIONBIO, &nonblocking) != 0) return WinStatus(WSAGetLastError(), "ioctlsocket");
    if (!PostRecv(s).ok()) {
      // Reset between accept and now: it is still a session, and the read
      // reports the reset (as on Linux, where accept() hands it out too).
      MarkReadReady(s);
    }
    return Status::Ok();
  }

  Status Connect(Session& s, const SocketAddress& remote, const SocketAddress* local,
                 bool no_delay) override {
    int af = remote.family == 6 ? AF_INET6 : AF_INET;
    UniqueSocket sock(NewSocket(af, skip_on_success_));
    if (!sock.valid()) return WinStatus(WSAGetLastError(), "socket");
    Extensions& ext = ExtFor(af);
    DWORD err = LoadExtensions(sock.get(), &ext);
    if (err != 0) return WinStatus(err, "WSAIoctl");
    if (no_delay) {
      BOOL one = TRUE;
      setsockopt(sock.get(), IPPROTO_TCP, TCP_NODELAY, reinterpret_cast<const char*>(&one), sizeof(one));
    }
    u_long nonblocking = 1;
    ioctlsocket(sock.get(), FIONBIO, &nonblocking);
    // ConnectEx needs a bound socket: the given local address, or any.
    SocketAddress any;
    any.family = remote.family;
    sockaddr_storage ss;
    int len = ToSockaddr(local != nullptr ? *local : any, &ss);
    if (bind(sock.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
      return WinStatus(WSAGetLastError(), "bind");
    }
    len = ToSockaddr(remote, &ss);
    SlotOps* o = InitOps(s, skip_on_success_ ? kSkipMode : 0);
    s.socket = static_cast<SocketHandle>(sock.get());
    Begin(s, &o->aux, OpKind::kConnect);
    DWORD sent = 0;
    if (ext.connect_ex(sock.get(), reinterpret_cast<sockaddr*>(&ss), len, nullptr, 0, &sent, &o->aux.ov)) {
      Inline(o, &o->aux, 0);
    } else if ((err = WSAGetLastError()) != WSA_IO_PENDING) {
      Undo(s, &o->aux);
      s.socket = kNoSocket;
      return WinStatus(err, "connect");
    }
    sock.release();
    return Status::Ok();
  }

  Status SendDirect(Session& s, const char* data, size_t size, size_t* sent) override {
    *sent = 0;
    if (Ops(s)->send.busy) return Status::Ok();
    int n = ::send(SocketOf(s), data, static_cast<int>(std::min<size_t>(size, INT_MAX)), 0);
    if (n >= 0) {
      *sent = static_cast<size_t>(n);
      return Status::Ok();
    }
    DWORD err = WSAGetLastError();
    if (err == WSAEWOULDBLOCK) return Status::Ok();
    if (err == WSAESHUTDOWN && (Ops(s)->bits & kReusedSocket) != 0) {
      ++counters_[kReuseFailed];
      reuse_.NoteFailed();
    }
    return WinStatus(err, "send");
  }

  Status Flush(Session& s, size_t* sent) override {
    *sent = 0;
    SlotOps* o = Ops(s);
    if (o->send.busy) return Status::Ok();  // its completion flushes again
    IoSlice slices[kMaxSlices];
    WSABUF bufs[kMaxSlices];
    int count = s.queue.Peek(slices, kMaxSlices);
    if (count == 0) return Status::Ok();
    for (int i = 0; i < count; ++i) {
      bufs[i].buf = const_cast<char*>(slices[i].data);
      bufs[i].len = static_cast<ULONG>(slices[i].size);
    }
    Begin(s, &o->send, OpKind::kSend);
    DWORD bytes = 0;
    // The queue's blocks stay put until OnSendProgress consumes them.
    if (WSASend(SocketOf(s), bufs, static_cast<DWORD>(count), &bytes, 0, &o->send.ov, nullptr) == 0) {
      Inline(o, &o->send, bytes);
      return Status::Ok();
    }
    DWORD err = WSAGetLastError();
    if (err == WSA_IO_PENDING) return Status::Ok();
    Undo(s, &o->send);
    return WinStatus(err, "WSASend");
  }

  void SetReading(Session& s, bool on) override {
    SlotOps* o = Ops(s);
    if (!on) {
      o->bits |= kReadStopped;
      return;
    }
    o->bits &= static_cast<uint16_t>(~kReadStopped);
    if (!o->recv.busy && (o->bits & kReadReady) == 0) {
      Status st = PostRecv(s);
      if (!st.ok()) events_->OnSessionError(s, st);
    }
  }

  Status ShutdownWrite(Session& s) override {
    if (shutdown(SocketOf(s), SD_SEND) != 0) {
      DWORD err = WSAGetLastError();
      if (err != WSAENOTCONN) return WinStatus(err, "shutdown");
    }
    return Status::Ok();
  }

  void Close(Session& s, bool abort) override {
    SlotOps* o = Ops(s);
    o->bits |= kClosed;
    if (s.socket == kNoSocket) {
      FinishIfDone(s);
      return;
    }
    SOCKET sock = SocketOf(s);
    bool reuse = !abort && !o->send.busy && (o->bits & kFromAccept) != 0 && ReuseAllowed();
    if (reuse) {
      // Recycle once every operation is back: cancel the idle zero-byte read.
      o->bits |= kReuseWanted;
      if (o->pending_ops > 0) CancelIoEx(reinterpret_cast<HANDLE>(sock), nullptr);
      FinishIfDone(s);
      return;
    }
    if (abort || o->send.busy) {
      // A reset, and nothing more leaves from queue blocks that the engine
      // has already taken back.
      linger lg{1, 0};
      setsockopt(sock, SOL_SOCKET, SO_LINGER, reinterpret_cast<const char*>(&lg), sizeof(lg));
    }
    // Cancel what is in flight (Windows' closesocket would, Wine 8's does
    // not); the cancellations come back through the port before the slot is
    // released.
    if (o->pending_ops > 0) CancelIoEx(reinterpret_cast<HANDLE>(sock), nullptr);
    CloseCounted(sock);
    s.socket = kNoSocket;
    FinishIfDone(s);
  }

  Status PollOnce(int timeout_ms) override {
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
        HandleAcceptSignal();
      } else if (e.lpOverlapped != nullptr) {
        auto* op = reinterpret_cast<IoOp*>(e.lpOverlapped);
        ++counters_[kCompletions];
        Complete(op, static_cast<uint32_t>(op->ov.Internal), e.dwNumberOfBytesTransferred);
      }
    }
    RunInline();
    ServeReads();
    RetryConnectReports();
    accept_target_.AfterRound(accepts_this_round_, pending_, tick_);
    DeliverAccepts();
    PostAccepts();
    RunTicks(GetTickCount64());
    in_poll_ = false;
    return Status::Ok();
  }

  bool PollSaturated() const override {
    return saturated_ || !ready_.empty() || !inline_.empty() || !connect_reports_.empty() ||
           (waiting_ > 0 && accepting_);
  }

  void Wake() override {
    if (!wake_posted_.exchange(true, std::memory_order_acq_rel)) {
      PostQueuedCompletionStatus(port_, 0, kKeyWake, nullptr);
    }
  }

  int PollDescriptor() const override { return -1; }

 private:
  struct Spare {
    SOCKET socket;
    bool reused;
    bool skip;
  };
  struct InlineCompletion {
    IoOp* op;
    DWORD bytes;
  };

  // ---- sockets ----

  Extensions& ExtFor(int af) { return af == AF_INET6 ? ext6_ : ext4_; }

  // An overlapped socket on the port. `skip`: report immediate successes
  // inline instead of through the port (where that is safe).
  SOCKET NewSocket(int af, bool skip) {
    SOCKET s = WSASocketW(af, SOCK_STREAM, IPPROTO_TCP, nullptr, 0,
                          WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
    if (s == INVALID_SOCKET && WSAGetLastError() == WSAEINVAL) {
      s = WSASocketW(af, SOCK_STREAM, IPPROTO_TCP, nullptr, 0, WSA_FLAG_OVERLAPPED);
    }
    if (s == INVALID_SOCKET) return s;
    DWORD err = 0;
    if (CreateIoCompletionPort(reinterpret_cast<HANDLE>(s), port_, kKeySocket, 0) == nullptr) {
      err = GetLastError();
    } else if (skip && skip_on_success_ &&
               !SetFileCompletionNotificationModes(
                   reinterpret_cast<HANDLE>(s),
                   FILE_SKIP_COMPLETION_PORT_ON_SUCCESS | FILE_SKIP_SET_EVENT_ON_HANDLE)) {
      err = GetLastError();
    }
    if (err != 0) {
      closesocket(s);
      WSASetLastError(static_cast<int>(err));
      return INVALID_SOCKET;
    }
    return s;
  }

  void CloseCounted(SOCKET s) {
    if (s == INVALID_SOCKET) return;
    closesocket(s);
    ++counters_[kSocketsClosed];
  }

  // Skipping the port is safe with IFS providers, except for DisconnectEx
  // on Wine 8, whose completion is then lost altogether (neither reported
  // inline nor queued). So sockets that may be recycled go through the port
  // for everything; the rest skip it.
  bool SkipForAccepted() const {
    if (!skip_on_success_) return false;
    return reuse_.AcceptedMaySkipPort();
  }

  // ---- operations ----

  SlotOps* Ops(const Session& s) { return static_cast<SlotOps*>(table_->Ext(s)); }

  SlotOps* InitOps(Session& s, uint16_t bits) {
    SlotOps* o = Ops(s);
    std::memset(o, 0, sizeof(*o));
    o->recv.kind = OpKind::kRecv;
    o->send.kind = OpKind::kSend;
    o->aux.kind = OpKind::kConnect;
    o->recv.slot = o->send.slot = o->aux.slot = s.slot;
    o->bits = bits;
    return o;
  }

  void Begin(Session& s, IoOp* op, OpKind kind) {
    std::memset(&op->ov, 0, sizeof(op->ov));
    op->kind = kind;
    op->busy = true;
    op->stalled = false;
    ++Ops(s)->pending_ops;
    ++outstanding_;
  }

  // The call failed at once: nothing is in flight.
  void Undo(Session& s, IoOp* op) {
    op->busy = false;
    --Ops(s)->pending_ops;
    --outstanding_;
  }

  // An immediate success on a socket that skips the port: report it in this
  // round as if it had come through the port.
  void Inline(const SlotOps* o, IoOp* op, DWORD bytes) {
    if ((o->bits & kSkipMode) == 0) return;  // the port has the completion
    ++counters_[kInlineCompletions];
    inline_.push_back({op, bytes});
    if (!in_poll_) Wake();
  }

  void RunInline() {
    if (inline_.empty()) return;
    running_inline_.swap(inline_);
    for (const InlineCompletion& c : running_inline_) Complete(c.op, 0, c.bytes);
    running_inline_.clear();
  }

  Status PostRecv(Session& s) {
    SlotOps* o = Ops(s);
    if (o->recv.busy || (o->bits & (kReadStopped | kClosed)) != 0) return Status::Ok();
    Begin(s, &o->recv, OpKind::kRecv);
    ++counters_[kZeroByteReads];
    // Zero bytes: the read completes when data (or FIN, or an error) is
    // there, and no buffer is pinned while the connection idles.
    WSABUF buf{0, nullptr};
    DWORD flags = 0;
    DWORD got = 0;
    if (WSARecv(SocketOf(s), &buf, 1, &got, &flags, &o->recv.ov, nullptr) == 0) {
      Inline(o, &o->recv, 0);
      return Status::Ok();
    }
    DWORD err = WSAGetLastError();
    if (err == WSA_IO_PENDING) return Status::Ok();
    Undo(s, &o->recv);
    return WinStatus(err, "WSARecv");
  }

  void Complete(IoOp* op, uint32_t ntstatus, DWORD bytes) {
    --outstanding_;
    if (op->kind == OpKind::kAccept) {
      AcceptDone(reinterpret_cast<AcceptContext*>(op), ntstatus);
      return;
    }
    Session* s = table_->AtSlot(op->slot);
    if (s == nullptr) return;  // cannot happen: slots outlive their operations
    op->busy = false;
    --Ops(*s)->pending_ops;
    if (op->kind == OpKind::kDisconnect) {
      DisconnectDone(*s, ntstatus, op->stalled);
      return;
    }
    if (s->state == SessionState::kReleasing || (Ops(*s)->bits & kClosed) != 0) {
      FinishIfDone(*s);
      return;
    }
    switch (op->kind) {
      case OpKind::kRecv:
        if (ntstatus != 0) {
          events_->OnSessionError(*s, NtStatus(ntstatus, "WSARecv"));
        } else {
          MarkReadReady(*s);
        }
        break;
      case OpKind::kSend:
        if (ntstatus != 0) {
          SessionError(*s, NtStatus(ntstatus, "WSASend"));
        } else {
          events_->OnSendProgress(*s, bytes);
        }
        break;
      case OpKind::kConnect:
        ConnectDone(*s, ntstatus);
        break;
      default:
        break;
    }
  }

  // ---- reading ----

  void MarkReadReady(Session& s) {
    SlotOps* o = Ops(s);
    if ((o->bits & kReadReady) != 0) return;
    o->bits |= kReadReady;
    ready_.push_back(s.id());
  }

  Session* FromTag(SessionId tag) {
    Session* s = table_->LookupTaken(tag);
    if (s == nullptr) return nullptr;
    if (s->state != SessionState::kOpen && s->state != SessionState::kClosing &&
        s->state != SessionState::kLingering) {
      return nullptr;
    }
    return s;
  }

  // One read per ready session per round, into the engine's batch arena.
  // Sessions that found no room go first next round, ahead of those that
  // were read and may have more, so a batch that fills part-way never
  // starves the sessions after it.
  void ServeReads() {
    if (ready_.empty()) return;
    serving_.swap(ready_);
    bool room = true;
    for (SessionId tag : serving_) {
      Session* s = FromTag(tag);
      if (s == nullptr) continue;
      SlotOps* o = Ops(*s);
      if ((o->bits & kReadReady) == 0) continue;
      if ((o->bits & (kReadStopped | kClosed)) != 0) {
        o->bits &= static_cast<uint16_t>(~kReadReady);
        continue;
      }
      char* space = nullptr;
      size_t size = 0;
      if (!room || !events_->ReadSpace(&space, &size)) {
        room = false;
        ready_.push_back(tag);  // next round, in order
        continue;
      }
      int got = recv(SocketOf(*s), space, static_cast<int>(std::min<size_t>(size, INT_MAX)), 0);
      if (got > 0) {
        events_->OnReceived(*s, static_cast<size_t>(got));
        if (static_cast<size_t>(got) == size) {
          read_again_.push_back(tag);  // maybe more: read again next round
        } else {
          o->bits &= static_cast<uint16_t>(~kReadReady);
          Status st = PostRecv(*s);
          if (!st.ok()) events_->OnSessionError(*s, st);
        }
        continue;
      }
      o->bits &= static_cast<uint16_t>(~kReadReady);
      if (got == 0) {
        events_->OnPeerEnd(*s);
        continue;
      }
      DWORD err = WSAGetLastError();
      if (err == WSAEWOULDBLOCK) {
        Status st = PostRecv(*s);
        if (!st.ok()) events_->OnSessionError(*s, st);
      } else {
        events_->OnSessionError(*s, WinStatus(err, "recv"));
      }
    }
    serving_.clear();
    ready_.insert(ready_.end(), read_again_.begin(), read_again_.end());
    read_again_.clear();
  }

  // ---- connecting ----

  void ConnectDone(Session& s, uint32_t ntstatus) {
    if (ntstatus != 0) {
      events_->OnSessionError(s, NtStatus(ntstatus, "connect"));
      return;
    }
    // Makes getpeername, shutdown and friends work on the socket.
    setsockopt(SocketOf(s), SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, nullptr, 0);
    ReportConnected(s);
  }

  void ReportConnected(Session& s) {
    if (!events_->OnConnected(s)) {
      connect_reports_.push_back(s.id());  // no batch room: next round
      return;
    }
    Status st = PostRecv(s);
    if (!st.ok()) events_->OnSessionError(s, st);
  }

  void RetryConnectReports() {
    if (connect_reports_.empty()) return;
    serving_.swap(connect_reports_);
    for (SessionId tag : serving_) {
      Session* s = table_->LookupTaken(tag);
      if (s == nullptr || s->state != SessionState::kConnecting) continue;
      ReportConnected(*s);
    }
    serving_.clear();
  }

  // ---- closing and recycling ----

  bool ReuseAllowed() const {
    return reuse_.Allowed() && !stopped_ && listener_.valid();
  }

  // The slot goes back only when nothing of it is in flight any more.
  void FinishIfDone(Session& s) {
    SlotOps* o = Ops(s);
    if (s.state != SessionState::kReleasing || o->pending_ops != 0 || (o->bits & kReleased) != 0) {
      return;
    }
    if ((o->bits & kReuseWanted) != 0) {
      o->bits &= static_cast<uint16_t>(~kReuseWanted);
      if (ReuseAllowed() && StartDisconnect(s)) return;
    }
    if (s.socket != kNoSocket) {
      CloseCounted(SocketOf(s));
      s.socket = kNoSocket;
    }
    o->bits |= kReleased;
    events_->OnReleased(s);
  }

  bool StartDisconnect(Session& s) {
    SlotOps* o = Ops(s);
    ++counters_[kReuseAttempts];
    Begin(s, &o->aux, OpKind::kDisconnect);
    o->disconnect_tick = tick_;
    disconnecting_.push_back(s.id());
    if (ExtFor(family_).disconnect_ex(SocketOf(s), &o->aux.ov, TF_REUSE_SOCKET, 0)) {
      Inline(o, &o->aux, 0);
      return true;
    }
    if (WSAGetLastError() == WSA_IO_PENDING) return true;
    Undo(s, &o->aux);
    ++counters_[kReuseFailed];
    reuse_.NoteFailed();
    return false;
  }

  void DisconnectDone(Session& s, uint32_t ntstatus, bool stalled) {
    SOCKET sock = SocketOf(s);
    bool ok = ntstatus == 0 && sock != INVALID_SOCKET;
    if (ok) ok = LooksUnconnected(sock);
    if (ok && ReuseAllowed() && spares_.size() < accept_target_.target()) {
      ++counters_[kReuseOk];
      reuse_.NoteWorked();
      spares_.push_back({sock, true, (Ops(s)->bits & kSkipMode) != 0});
    } else {
      if (ok) {
        ++counters_[kReuseOk];  // worked, but the pool needs no more sockets
      } else if (stalled) {
        ++counters_[kReuseStalled];
        reuse_.NoteFailed();
      } else {
        ++counters_[kReuseFailed];
        reuse_.NoteFailed();
      }
      if (sock != INVALID_SOCKET) CloseCounted(sock);
    }
    s.socket = kNoSocket;
    FinishIfDone(s);
  }

  // Real Windows leaves a recycled socket unconnected, like a new one: no
  // peer, and a send fails with WSAENOTCONN. Wine 8 only shuts down the send
  // side: the socket may still have its peer, and even once the peer is gone
  // it keeps its shut-down state (a send fails with WSAESHUTDOWN), so a
  // connection accepted on it could never be answered. Check, never assume.
  static bool LooksUnconnected(SOCKET sock) {
    sockaddr_storage ss;
    int len = sizeof(ss);
    if (getpeername(sock, reinterpret_cast<sockaddr*>(&ss), &len) == 0) return false;
    char none = 0;
    if (::send(sock, &none, 0, 0) == 0) return false;
    return WSAGetLastError() == WSAENOTCONN;
  }

  // An error on a session. On a recycled socket, WSAESHUTDOWN for a send we
  // never shut down means the recycling did not really work.
  void SessionError(Session& s, const Status& st) {
    if (st.raw == WSAESHUTDOWN && (Ops(s)->bits & kReusedSocket) != 0) {
      ++counters_[kReuseFailed];
      reuse_.NoteFailed();
    }
    events_->OnSessionError(s, st);
  }


  // DisconnectEx can wait out TIME_WAIT; past a few seconds, give up on the
  // socket (the completion then closes it).
  void CheckStalledDisconnects() {
    size_t keep = 0;
    for (SessionId tag : disconnecting_) {
      Session* s = table_->LookupTaken(tag);
      if (s == nullptr) continue;
      SlotOps* o = Ops(*s);
      if (!o->aux.busy || o->aux.kind != OpKind::kDisconnect) continue;
      uint32_t waited = tick_ - o->disconnect_tick;
      if (waited >= kDisconnectStallTicks && !o->aux.stalled) {
        o->aux.stalled = true;
        CancelIoEx(reinterpret_cast<HANDLE>(SocketOf(*s)), &o->aux.ov);
      } else if (waited > kDisconnectStallTicks && s->socket != kNoSocket) {
        // Not even the cancellation came back: close the socket too.
        CancelIoEx(reinterpret_cast<HANDLE>(SocketOf(*s)), nullptr);
        CloseCounted(SocketOf(*s));
        s->socket = kNoSocket;
      }
      disconnecting_[keep++] = tag;
    }
    disconnecting_.resize(keep);
  }

  // ---- accepting ----

  AcceptContext* TakeContext() {
    if (free_contexts_ == nullptr) {
      if (context_count_ >= AcceptTarget::kMax) return nullptr;
      std::unique_ptr<AcceptContext[]> chunk(new (std::nothrow) AcceptContext[kContextChunk]);
      if (!chunk) return nullptr;
      for (uint32_t i = 0; i < kContextChunk; ++i) {
        std::memset(&chunk[i], 0, sizeof(AcceptContext));
        chunk[i].op.kind = OpKind::kAccept;
        chunk[i].socket = INVALID_SOCKET;
        chunk[i].next = free_contexts_;
        free_contexts_ = &chunk[i];
      }
      context_chunks_.push_back(std::move(chunk));
      context_count_ += kContextChunk;
    }
    AcceptContext* ctx = free_contexts_;
    free_contexts_ = ctx->next;
    ctx->next = nullptr;
    return ctx;
  }

  void FreeContext(AcceptContext* ctx) {
    ctx->socket = INVALID_SOCKET;
    ctx->op.busy = false;
    ctx->next = free_contexts_;
    free_contexts_ = ctx;
  }

  AcceptContext* PopWaiting() {
    AcceptContext* ctx = waiting_head_;
    if (ctx == nullptr) return nullptr;
    waiting_head_ = ctx->next;
    if (waiting_head_ == nullptr) waiting_tail_ = nullptr;
    --waiting_;
    return ctx;
  }

  void PushWaiting(AcceptContext* ctx) {
    ctx->next = nullptr;
    if (waiting_tail_ != nullptr) {
      waiting_tail_->next = ctx;
    } else {
      waiting_head_ = ctx;
    }
    waiting_tail_ = ctx;
    ++waiting_;
  }

  // Keeps the target's accepts posted.
  void PostAccepts() {
    if (!listener_.valid() || stopped_ || !accepting_) return;
    while (accept_target_.WantsMore(pending_ + waiting_)) {
      AcceptContext* ctx = TakeContext();
      if (ctx == nullptr) return;
      PostResult r = PostAccept(ctx);
      if (r == PostResult::kPosted) continue;
      FreeContext(ctx);
      if (r == PostResult::kStop) return;
    }
  }

  enum class PostResult { kPosted, kRetry, kStop };

  PostResult PostAccept(AcceptContext* ctx) {
    bool reused = false;
    bool skip = false;
    SOCKET sock = INVALID_SOCKET;
    if (!spares_.empty()) {
      sock = spares_.back().socket;
      reused = spares_.back().reused;
      skip = spares_.back().skip;
      spares_.pop_back();
    } else {
      skip = SkipForAccepted();
      sock = NewSocket(family_, skip);
      if (sock == INVALID_SOCKET) {
        last_accept_error_ = WSAGetLastError();
        events_->OnAcceptError(WinStatus(last_accept_error_, "socket"), 0);
        accept_target_.OnNoSocket();
        return PostResult::kStop;
      }
      ++counters_[kFreshSockets];
    }
    std::memset(&ctx->op.ov, 0, sizeof(ctx->op.ov));
    ctx->op.busy = true;
    ctx->op.stalled = false;
    ctx->socket = sock;
    ctx->reused = reused;
    ctx->skip = skip;
    DWORD bytes = 0;
    // No initial receive buffer: AcceptEx then completes on the handshake,
    // so a client that connects and stays silent holds no pending accept.
    if (!ExtFor(family_).accept_ex(listener_.get(), sock, ctx->addresses, 0, kAddressBytes,
                                   kAddressBytes, &bytes, &ctx->op.ov)) {
      DWORD err = WSAGetLastError();
      if (err != ERROR_IO_PENDING) {
        ctx->op.busy = false;
        CloseCounted(sock);
        last_accept_error_ = err;
        Status st = WinStatus(err, "AcceptEx");
        if (reused) {
          ++counters_[kReuseFailed];
          reuse_.NoteFailed();
        } else {
          ++counters_[kAcceptsFailed];
          events_->OnAcceptError(st, 0);
        }
        return accept_target_.OnPostFailed(st.sys, reused) == AcceptTarget::Failure::kRetry
                   ? PostResult::kRetry
                   : PostResult::kStop;
      }
    }
    ++pending_;
    ++outstanding_;
    ++counters_[kAcceptsPosted];
    return PostResult::kPosted;
  }

  void AcceptDone(AcceptContext* ctx, uint32_t ntstatus) {
    --pending_;
    ctx->op.busy = false;
    bool stalled = ctx->op.stalled;
    if (ntstatus != 0 || stopped_ || !listener_.valid()) {
      uint32_t err = WinErrorFromNtStatus(ntstatus);
      if (ntstatus == 0 || stopped_ || err == kErrorCancelled) {
        ++counters_[kAcceptsCancelled];
        if (stalled) {
          ++counters_[kReuseStalled];
          reuse_.NoteFailed();
        }
      } else if (ctx->reused) {
        ++counters_[kReuseFailed];
        reuse_.NoteFailed();
      } else {
        // That client went away before we took it (reset, abort).
        ++counters_[kAcceptsFailed];
        events_->OnAcceptError(WinStatus(err, "AcceptEx"), 0);
      }
      CloseCounted(ctx->socket);
      FreeContext(ctx);
      return;
    }
    // Gives the socket the listener's properties (getpeername, shutdown).
    SOCKET listener = listener_.get();
    setsockopt(ctx->socket, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT,
               reinterpret_cast<const char*>(&listener), sizeof(listener));
    if (ctx->reused) ++counters_[kReusedAccepts];
    ++accepts_this_round_;
    PushWaiting(ctx);
  }

  // Hands accepted connections to the engine, as many as it has room for.
  void DeliverAccepts() {
    if (waiting_ == 0 || !accepting_) return;
    uint32_t budget = events_->AcceptBudget();
    while (budget > 0 && waiting_ > 0) {
      AcceptContext* ctx = PopWaiting();
      sockaddr* local = nullptr;
      sockaddr* remote = nullptr;
      int local_len = 0;
      int remote_len = 0;
      ExtFor(family_).get_addresses(ctx->addresses, 0, kAddressBytes, kAddressBytes, &local,
                                    &local_len, &remote, &remote_len);
      SocketAddress peer = FromSockaddr(remote);
      SOCKET sock = ctx->socket;
      attaching_reused_ = ctx->reused;
      attaching_skip_ = ctx->skip;
      FreeContext(ctx);
      --budget;
      events_->OnAccepted(static_cast<SocketHandle>(sock), peer);
      attaching_reused_ = false;
    }
  }

  static void CALLBACK OnAcceptEvent(PVOID self, BOOLEAN) {
    auto* backend = static_cast<IocpBackend*>(self);
    PostQueuedCompletionStatus(backend->port_, 0, kKeyAcceptSignal, nullptr);
  }

  void HandleAcceptSignal() {
    if (!listener_.valid()) return;
    WSANETWORKEVENTS ne;
    if (WSAEnumNetworkEvents(listener_.get(), nullptr, &ne) != 0) return;
    if ((ne.lNetworkEvents & FD_ACCEPT) == 0) return;
    ++counters_[kAcceptSignals];
    if (accept_target_.OnClientWaiting(accepting_, pending_, tick_) ==
        AcceptTarget::Waiting::kSuspectPosted) {
      // Recycled sockets are the suspects (Wine never completes AcceptEx
      // on them): cancel those, fresh sockets take their place.
      CancelReusedAccepts();
    }
    // Re-arm: FD_ACCEPT is recorded again only after this call.
    WSAEventSelect(listener_.get(), accept_event_, FD_ACCEPT);
    PostAccepts();
  }

  void CancelReusedAccepts() {
    for (auto& chunk : context_chunks_) {
      for (uint32_t i = 0; i < kContextChunk; ++i) {
        AcceptContext& ctx = chunk[i];
        if (ctx.op.busy && ctx.reused && !ctx.op.stalled) {
          ctx.op.stalled = true;
          CancelIoEx(reinterpret_cast<HANDLE>(listener_.get()), &ctx.op.ov);
        }
      }
    }
  }

  // The target shrank: fewer accepts stay posted, cancel the excess.
  void CancelExcessAccepts() {
    uint32_t target = accept_target_.target();
    uint32_t excess = pending_ > target ? pending_ - target : 0;
    for (auto& chunk : context_chunks_) {
      for (uint32_t i = 0; i < kContextChunk && excess > 0; ++i) {
        AcceptContext& ctx = chunk[i];
        if (ctx.op.busy && !ctx.op.stalled) {
          CancelIoEx(reinterpret_cast<HANDLE>(listener_.get()), &ctx.op.ov);
          --excess;
        }
      }
    }
    // Spare recycled sockets beyond the target are not needed either.
    while (spares_.size() > target) {
      CloseCounted(spares_.back().socket);
      spares_.pop_back();
    }
  }

  void StopAcceptSignal() {
    if (accept_wait_ != nullptr) {
      // Waits for a running callback to finish.
      UnregisterWaitEx(accept_wait_, INVALID_HANDLE_VALUE);
      accept_wait_ = nullptr;
    }
    if (accept_event_ != nullptr) {
      CloseHandle(accept_event_);
      accept_event_ = nullptr;
    }
  }

  // ---- time ----

  void RunTicks(ULONGLONG now) {
    while (now >= next_tick_) {
      next_tick_ += 1000;
      if (now >= next_tick_) next_tick_ = now + 1000;  // fell behind: no burst of ticks
      ++tick_;
      if (accept_target_.OnTick(tick_)) CancelExcessAccepts();
      CheckStalledDisconnects();
      events_->OnTick();
    }
  }

  // ---- teardown ----

  void Teardown() {
    stopped_ = true;
    StopAcceptSignal();
    if (listener_.valid()) CancelIoEx(reinterpret_cast<HANDLE>(listener_.get()), nullptr);
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
      // accept contexts) must outlive that, so wait for them (bounded).
      ULONGLONG deadline = GetTickCount64() + 2000;
      while (outstanding_ > 0 && GetTickCount64() < deadline) {
        ULONG n = 0;
        if (!GetQueuedCompletionStatusEx(port_, entries_, kMaxEntries, &n, 100, FALSE)) continue;
        for (ULONG i = 0; i < n; ++i) {
          auto* op = reinterpret_cast<IoOp*>(entries_[i].lpOverlapped);
          if (op == nullptr) continue;
          --outstanding_;
          if (op->kind == OpKind::kAccept) {
            auto* ctx = reinterpret_cast<AcceptContext*>(op);
            CloseCounted(ctx->socket);
            ctx->socket = INVALID_SOCKET;
          }
        }
      }
      CloseHandle(port_);
      port_ = nullptr;
    }
    if (wsa_started_) WSACleanup();
    wsa_started_ = false;
  }

  BackendEvents* events_ = nullptr;
  SessionTable* table_ = nullptr;
  HANDLE port_ = nullptr;
  bool wsa_started_ = false;
  bool skip_on_success_ = false;
  bool in_poll_ = false;
  bool saturated_ = false;
  std::atomic<bool> wake_posted_{false};
  Extensions ext4_;
  Extensions ext6_;
  int64_t outstanding_ = 0;  // operations posted and not yet completed

  // Listener and accept pool.
  UniqueSocket listener_;
  int family_ = AF_INET;
  HANDLE accept_event_ = nullptr;
  HANDLE accept_wait_ = nullptr;
  bool accepting_ = false;
  bool stopped_ = false;
  bool attaching_reused_ = false;
  bool attaching_skip_ = false;
  DWORD last_accept_error_ = 0;
  uint32_t pending_ = 0;  // AcceptEx in flight
  uint32_t waiting_ = 0;  // accepted, not yet handed to the engine
  uint32_t accepts_this_round_ = 0;
  AcceptTarget accept_target_;
  uint32_t context_count_ = 0;
  std::vector<std::unique_ptr<AcceptContext[]>> context_chunks_;
  AcceptContext* free_contexts_ = nullptr;
  AcceptContext* waiting_head_ = nullptr;
  AcceptContext* waiting_tail_ = nullptr;
  std::vector<Spare> spares_;  // recycled sockets ready for AcceptEx

  // Recycling.
  SocketReuse reuse_;
  std::vector<SessionId> disconnecting_;

  // Work carried between completions and rounds, tagged with session ids
  // (resolved by SessionTable::LookupTaken).
  std::vector<SessionId> ready_;
  std::vector<SessionId> serving_;
  std::vector<SessionId> read_again_;
  std::vector<SessionId> connect_reports_;
  std::vector<InlineCompletion> inline_;
  std::vector<InlineCompletion> running_inline_;

  ULONGLONG next_tick_ = 0;
  uint32_t tick_ = 0;
  uint64_t counters_[kCounterCount] = {};
  OVERLAPPED_ENTRY entries_[kMaxEntries];
};

}  // namespace

std::unique_ptr<Backend> MakeIocpBackend() { return std::make_unique<IocpBackend>(); }

}  // namespace acceptpool
