// Per-slot operations: their storage (SlotOps), their bookkeeping, the
// completions that skip the port, and Complete(), which hands each
// completion to the handler of its kind.
#include <cstring>

#include "backends/iocp/iocp_internal.h"

namespace acceptpool {
namespace iocp {

SlotOps* IocpBackend::InitOps(Session& s, uint16_t bits) {
  SlotOps* o = Ops(s);
  std::memset(o, 0, sizeof(*o));
  o->recv.kind = OpKind::kRecv;
  o->send.kind = OpKind::kSend;
  o->aux.kind = OpKind::kConnect;
  o->recv.slot = o->send.slot = o->aux.slot = s.slot;
  o->bits = bits;
  return o;
}

void IocpBackend::Begin(Session& s, IoOp* op, OpKind kind) {
  std::memset(&op->ov, 0, sizeof(op->ov));
  op->kind = kind;
  op->busy = true;
  op->stalled = false;
  ++Ops(s)->pending_ops;
  ++outstanding_;
}

// The call failed at once: nothing is in flight.
void IocpBackend::Undo(Session& s, IoOp* op) {
  op->busy = false;
  --Ops(s)->pending_ops;
  --outstanding_;
}

// An immediate success on a socket that skips the port: report it in this
// round as if it had come through the port.
void IocpBackend::Inline(const SlotOps* o, IoOp* op, DWORD bytes) {
  if ((o->bits & kSkipMode) == 0) return;  // the port has the completion
  ++counters_[kInlineCompletions];
  inline_.push_back({op, bytes});
  if (!in_poll_) Wake();
}

void IocpBackend::RunInline() {
  if (inline_.empty()) return;
  running_inline_.swap(inline_);
  for (const InlineCompletion& c : running_inline_) Complete(c.op, 0, c.bytes);
  running_inline_.clear();
}

void IocpBackend::Complete(IoOp* op, uint32_t ntstatus, DWORD bytes) {
  --outstanding_;
  if (op->kind == OpKind::kAccept) {
    ProcessAccept(reinterpret_cast<AcceptContext*>(op), ntstatus);
    return;
  }
  // By slot: a slot is never released while one of its operations is out,
  // so its occupant is the one the operation was posted for.
  Session* s = table_->AtSlot(op->slot);
  if (s == nullptr) return;  // cannot happen: slots outlive their operations
  op->busy = false;
  --Ops(*s)->pending_ops;
  if (op->kind == OpKind::kDisconnect) {
    ProcessDisconnect(*s, ntstatus, op->stalled);
    return;
  }
  if (s->state == SessionState::kReleasing || (Ops(*s)->bits & kClosed) != 0) {
    FinishIfDone(*s);
    return;
  }
  switch (op->kind) {
    case OpKind::kRecv: ProcessRead(*s, ntstatus); break;
    case OpKind::kSend: ProcessWrite(*s, ntstatus, bytes); break;
    case OpKind::kConnect: ProcessConnect(*s, ntstatus); break;
    default: break;
  }
}

}  // namespace iocp
}  // namespace acceptpool
