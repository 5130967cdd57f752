// Private to native/backends/iocp: the types and the one class its files
// share (as libuv's src/win/internal.h is to src/win/*.c). The class is the
// backend contract (core/backend.h) in I/O completion port terms, written as
// small named steps, one file per subject:
//
//   iocp_backend.cc     the contract's entry points, the poll round, ticks,
//                       teardown
//   iocp_operations.cc  per-slot operations (SlotOps), inline completions,
//                       and Complete(): one handler per completion type
//   iocp_accept.cc      the AcceptEx pool: QueueAccepts/QueueAccept,
//                       ProcessAccept, the FD_ACCEPT signal (the target's
//                       policy is accept_target.h)
//   iocp_read.cc        zero-byte reads: QueueRead, ProcessRead, ServeReads
//   iocp_write.cc       SendDirect, QueueWrite (Flush), ProcessWrite
//   iocp_connect.cc     ConnectEx: Connect, ProcessConnect
//   iocp_close.cc       closing and recycling: Close, QueueDisconnect,
//                       ProcessDisconnect (the policy is socket_reuse.h)
//   iocp_sockets.cc     sockets: extension functions, NewSocket, checks
//   iocp_config.cc      what the environment configures
//
// Posting functions are Queue*, completion handlers Process*, as in libuv's
// src/win/tcp.c.
#ifndef ACCEPTPOOL_BACKENDS_IOCP_IOCP_INTERNAL_H_
#define ACCEPTPOOL_BACKENDS_IOCP_IOCP_INTERNAL_H_

// clang-format off
#include <winsock2.h>
#include <mswsock.h>
#include <ws2tcpip.h>
#include <windows.h>
// clang-format on

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "backends/iocp/accept_target.h"
#include "backends/iocp/socket_reuse.h"
#include "backends/win/socket_address.h"
#include "backends/win/win_errors.h"
#include "core/backend.h"
#include "core/stats.h"

namespace acceptpool {
namespace iocp {

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
  // The port of the backend that posted it. An AcceptEx completes on the
  // listening socket's port, which is the first engine's when engines share
  // one listener (threads: N); that engine sends it on to this port.
  HANDLE home;
  AcceptContext* next;
  bool reused;
  bool skip;
  char addresses[2 * kAddressBytes];
};

// Counters for stats().backendCounters, in this order (names in
// iocp_backend.cc).
enum Counter : size_t {
  kAcceptsPosted,
  kAcceptsPending,  // gauge
  kAcceptTarget,    // gauge
  kAcceptsWaiting,  // gauge: accepted, waiting for engine room
  kAcceptGrowths,
  kAcceptShrinks,
  kAcceptSignals,  // FD_ACCEPT seen
  kAcceptsCancelled,
  kAcceptsFailed,  // accepts a reset or abandoned connection failed, at once or on completion
  kFreshSockets,
  kSocketsClosed,
  kReuseMode,      // 0 off, 1 auto, 2 force
  kReuseAttempts,  // DisconnectEx(TF_REUSE_SOCKET) posted
  kReuseOk,        // socket recycled into the accept pool
  kReuseFailed,    // DisconnectEx failed or left the socket connected
  kReuseStalled,   // DisconnectEx or a recycled AcceptEx took too long
  kReuseDisabled,  // gauge: auto mode gave up
  kReusedAccepts,  // connections accepted on recycled sockets
  kZeroByteReads,
  kSkipOnSuccess,  // gauge: FILE_SKIP_COMPLETION_PORT_ON_SUCCESS in use
  kInlineCompletions,
  kCompletions,
  kAcceptsForwarded,  // other engines' accept completions sent on to their ports
  kCounterCount,
};
static_assert(kCounterCount <= Stats::kBackendCounters, "room in Stats");

// The Winsock extension functions, per address family (iocp_sockets.cc).
struct Extensions {
  LPFN_ACCEPTEX accept_ex = nullptr;
  LPFN_GETACCEPTEXSOCKADDRS get_addresses = nullptr;
  LPFN_DISCONNECTEX disconnect_ex = nullptr;
  LPFN_CONNECTEX connect_ex = nullptr;
  bool loaded = false;
};
// Loads them through `s` (they belong to its provider) once; a WSA error.
DWORD LoadExtensions(SOCKET s, Extensions* ext);
// FILE_SKIP_COMPLETION_PORT_ON_SUCCESS is only safe when every TCP provider
// is an IFS one.
bool AllTcpProvidersAreIfs();
// Whether a recycled socket is really unconnected (Wine's is not).
bool LooksUnconnected(SOCKET sock);

// What the environment configures (iocp_config.cc), read at Init.
struct Config {
  ReuseMode reuse = ReuseMode::kAuto;  // ACCEPTPOOL_IOCP_REUSE
  bool skip_on_success = true;         // ACCEPTPOOL_IOCP_SKIP_ON_SUCCESS=0 turns it off
};
Config ReadConfig();

inline SOCKET SocketOf(const Session& s) { return static_cast<SOCKET>(s.socket); }

class IocpBackend final : public Backend {
 public:
  IocpBackend() = default;
  IocpBackend(const IocpBackend&) = delete;
  IocpBackend& operator=(const IocpBackend&) = delete;
  ~IocpBackend() override { Teardown(); }

  // ---- the contract (core/backend.h) ----
  const char* name() const override { return "iocp"; }
  size_t SessionExtBytes() const override { return sizeof(SlotOps); }
  size_t CounterNames(const char* const** names) const override;
  void ReadCounters(uint64_t* values, size_t max) const override;
  uint32_t SettingCounters() const override {
    return (1u << kReuseMode) | (1u << kReuseDisabled) | (1u << kSkipOnSuccess);
  }
  bool Quiescent() const override { return pending_ == 0; }
  Status Init(BackendEvents* events, SessionTable* table) override;
  Status Listen(const SocketAddress& address, const ListenOptions& options,
                SocketAddress* bound) override;
  Status ListenBeside(Backend& first, const ListenOptions& options, SocketAddress* bound) override;
  void SetAccepting(bool on) override;
  void StopListening() override;
  void DiscardSocket(SocketHandle socket) override;
  bool PeerAddress(const Session& s, SocketAddress* out) override;
  Status Attach(Session& s, bool no_delay) override;
  Status Connect(Session& s, const SocketAddress& remote, const SocketAddress* local,
                 bool no_delay) override;  // iocp_connect.cc
  Status SendDirect(Session& s, const char* data, size_t size,
                    size_t* sent) override;                                 // iocp_write.cc
  Status Flush(Session& s, size_t* sent) override;                          // iocp_write.cc
  void SetReading(Session& s, bool on) override;                            // iocp_read.cc
  Status SetNoDelay(Session& s, bool on) override;                          // iocp_sockets.cc
  Status SetKeepAlive(Session& s, bool on, uint32_t delay_s) override;      // iocp_sockets.cc
  Status LocalAddress(const Session& s, SocketAddress* out) override;       // iocp_sockets.cc
  Status ReadSocketOptions(const Session& s, SocketOptions* out) override;  // iocp_sockets.cc
  Status ShutdownWrite(Session& s) override;                                // iocp_write.cc
  void Close(Session& s, bool abort) override;                              // iocp_close.cc
  Status PollOnce(int timeout_ms) override;
  bool PollSaturated() const override;
  void Wake() override;
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
  enum class PostResult { kPosted, kRetry, kStop };

  // ---- sockets (iocp_sockets.cc) ----
  Extensions& ExtFor(int af) { return af == AF_INET6 ? ext6_ : ext4_; }
  SOCKET NewSocket(int af, bool skip);
  void CloseCounted(SOCKET s);
  bool SkipForAccepted() const;

  // ---- operations (iocp_operations.cc) ----
  SlotOps* Ops(const Session& s) { return static_cast<SlotOps*>(table_->Ext(s)); }
  SlotOps* InitOps(Session& s, uint16_t bits);
  void Begin(Session& s, IoOp* op, OpKind kind);
  void Undo(Session& s, IoOp* op);
  void Inline(const SlotOps* o, IoOp* op, DWORD bytes);
  void RunInline();
  void Complete(IoOp* op, uint32_t ntstatus, DWORD bytes);

  // ---- accepting (iocp_accept.cc) ----
  Status StartAccepting(UniqueSocket listener, const ListenOptions& options, bool signal,
                        SocketAddress* bound);
  bool Forward(IoOp* op, DWORD bytes);
  void CancelOwnAccepts();
  AcceptContext* TakeContext();
  void FreeContext(AcceptContext* ctx);
  AcceptContext* PopWaiting();
  void PushWaiting(AcceptContext* ctx);
  void QueueAccepts();
  PostResult QueueAccept(AcceptContext* ctx);
  void ProcessAccept(AcceptContext* ctx, uint32_t ntstatus);
  void DeliverAccepts();
  static void CALLBACK OnAcceptEvent(PVOID self, BOOLEAN);
  void ProcessAcceptSignal();
  void CancelReusedAccepts();
  void CancelExcessAccepts();
  void StopAcceptSignal();

  // ---- reading (iocp_read.cc) ----
  Status QueueRead(Session& s);
  void ProcessRead(Session& s, uint32_t ntstatus);
  void MarkReadReady(Session& s);
  Session* Readable(SessionId tag);
  void ServeReads();

  // ---- writing (iocp_write.cc) ----
  void ProcessWrite(Session& s, uint32_t ntstatus, DWORD bytes);
  void NoteSendFailure(const Session& s, DWORD err);

  // ---- connecting (iocp_connect.cc) ----
  void ProcessConnect(Session& s, uint32_t ntstatus);
  void ReportConnected(Session& s);
  void RetryConnectReports();

  // ---- closing and recycling (iocp_close.cc) ----
  bool ReuseAllowed() const;
  void FinishIfDone(Session& s);
  bool QueueDisconnect(Session& s);
  void ProcessDisconnect(Session& s, uint32_t ntstatus, bool stalled);
  void CheckStalledDisconnects();

  // ---- time and teardown (iocp_backend.cc) ----
  void RunTicks(ULONGLONG now);
  void DrainForTeardown(HANDLE port, DWORD wait_ms);
  void Teardown();

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

  // Listener and accept pool. Beside another engine (ListenBeside), the
  // listener is a duplicate handle of that engine's socket, whose
  // completions reach that engine's port: listener_port_, a handle of ours
  // to it, which Teardown drains of our accepts.
  UniqueSocket listener_;
  HANDLE listener_port_ = nullptr;
  bool shared_ = false;  // other engines listen beside us (ListenOptions::shared)
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

}  // namespace iocp
}  // namespace acceptpool

#endif  // ACCEPTPOOL_BACKENDS_IOCP_IOCP_INTERNAL_H_
