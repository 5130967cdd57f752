// Session slots and their generations: the heart of the safe-handle promise.
//
// A session id is `generation * 2^24 + slot`, a JS-safe integer. Releasing a
// slot bumps its generation, so every id handed out for the previous occupant
// stops matching before the slot can be taken again. Lookup(id) is the one
// gate every command passes through, at the moment it acts.
//
// Slots live in equal chunks allocated ahead of demand (growth), and a fully
// free top chunk can be handed back (shrink). Generations live in their own
// array that never shrinks, so a slot that disappears and comes back still
// refuses ids from before.
//
// Generations never wrap. Slots are handed out lowest first, so under light
// churn one slot takes almost every connection; after 2^29 - 1 occupants a
// wrapped generation would make a kept id match again. A slot whose last
// generation has been used is retired instead: never handed out again,
// refused by Lookup, and remembered as retired in the generations array, so
// a chunk that shrinks and grows back keeps it retired. Retired slots do not
// count in capacity() (the pool grows past them) and their chunk can still
// shrink once every other slot in it is free.
#ifndef ACCEPTPOOL_CORE_SESSION_TABLE_H_
#define ACCEPTPOOL_CORE_SESSION_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/send_queue.h"

namespace acceptpool {

using SessionId = uint64_t;

constexpr uint32_t kSlotBits = 24;
constexpr uint32_t kMaxSlots = 1u << kSlotBits;
// Keeps generation * 2^24 + slot below 2^53. Generations run from 1 to
// kGenerationLimit - 1; 0 is never valid.
constexpr uint32_t kGenerationLimit = 1u << 29;
// The generation of a retired slot: no id carries it (ids stay below 2^53).
constexpr uint32_t kRetiredGeneration = 0xffffffffu;

inline SessionId MakeSessionId(uint32_t slot, uint32_t generation) {
  return (static_cast<uint64_t>(generation) << kSlotBits) | slot;
}
inline uint32_t SlotOf(SessionId id) { return static_cast<uint32_t>(id & (kMaxSlots - 1)); }
inline uint32_t GenerationOf(SessionId id) { return static_cast<uint32_t>(id >> kSlotBits); }

// The most engines (I/O threads) one endpoint runs.
constexpr uint32_t kMaxThreads = 64;

// Which thread an id names. An endpoint with `threads: N` runs N engines,
// each with a table of its own; their ids must never collide, must name
// their owner (commands go there), and must stay dense from 0 (JS keeps
// sessions in an array by id slot). So the tables interleave: the table of
// thread t of n holds the id slots t, t + n, t + 2n, ... This is the one
// place that rule lives; with one thread an id slot is the table's slot.
inline uint32_t ThreadOfSlot(uint32_t id_slot, uint32_t threads) { return id_slot % threads; }
inline uint32_t ThreadOf(SessionId id, uint32_t threads) {
  return ThreadOfSlot(SlotOf(id), threads);
}

struct IdSpace {
  uint32_t thread = 0;
  uint32_t threads = 1;

  uint32_t IdSlot(uint32_t table_slot) const { return table_slot * threads + thread; }
  uint32_t TableSlot(uint32_t id_slot) const { return id_slot / threads; }
  bool Owns(uint32_t id_slot) const { return ThreadOfSlot(id_slot, threads) == thread; }
  // Table slots whose id slots fit in kSlotBits, on every thread.
  uint32_t table_slot_limit() const { return kMaxSlots / threads; }
};

// Opaque OS socket (fd or SOCKET) as the core sees it.
using SocketHandle = intptr_t;
constexpr SocketHandle kNoSocket = -1;

enum class SessionState : uint8_t {
  kFree,        // in the free list
  kConnecting,  // outgoing connect in progress (client side)
  kOpen,        // connected, JS may use it
  kClosing,     // graceful close requested: flushing the queue; input is discarded
  kLingering,   // queue flushed and FIN sent: input is read and discarded until
                // the peer's FIN (then close) or the linger deadline (then reset)
  kReleasing,   // socket closed, waiting for the backend's outstanding ops
  kRetired,     // generations used up: never handed out again
};

// Bits of Session::flags: the engine's alone (backends keep their own per
// slot state in their ext bytes, see backend.h).
enum SessionFlag : uint16_t {
  kReadEof = 1 << 0,         // the peer sent FIN
  kWriteShut = 1 << 1,       // we sent FIN
  kEndAfterFlush = 1 << 2,   // send FIN once the queue drains
  kAboveHighWater = 1 << 3,  // a send reported backpressure; emit drain later
  kDrainPending = 1 << 4,    // events waiting in the engine's pending list
  kEndPending = 1 << 5,
  kClosePending = 1 << 6,
  kInPendingList = 1 << 7,
  kBackendReleased = 1 << 8,   // the backend holds nothing of the session
  kClosedConnecting = 1 << 9,  // closed before its outgoing connect completed
  kPaused = 1 << 10,           // JS paused reading (SessionControl::kPause)
  kTimeoutFired = 1 << 11,     // its timeout fired; activity arms it again
  kTimeoutPending = 1 << 12,   // a kTimeout event waits in the pending list
  kWantTotals = 1 << 13,       // JS asked for counts: report them before the close
  // PROXY protocol: accepted, not announced to JS until its header is in
  // (token then holds its held parser's handle, 0 if none).
  kAwaitingHeader = 1 << 14,
  // Its header failed: closed from the pending list, with close_reason and
  // close_error holding a ProxyReject and a ProxyError.
  kRejectPending = 1 << 15,
};

struct Session {
  SocketHandle socket = kNoSocket;
  Session* next_pending = nullptr;
  uint32_t slot = 0;  // the id's slot (IdSpace: not the table's own index on thread > 0)
  uint32_t generation = 1;
  uint32_t next_free = 0;
  // Low 32 bits of the engine's millisecond clock (wrap-safe differences):
  // the last read or write (kLingering: when it began), and when the
  // session's own timeout was set.
  uint32_t active_ms = 0;
  uint32_t timeout_set_ms = 0;
  uint32_t timeout_ms = 0;  // SessionControl::kTimeout; 0 = off
  SessionState state = SessionState::kFree;
  uint8_t close_reason = 0;
  uint8_t close_error = 0;  // SysError of an 'error'/'reset' close
  int32_t close_raw = 0;    // the OS code behind close_error
  uint16_t flags = 0;
  uint32_t token = 0;          // outgoing connects: the caller's tag for the result;
                               // kAwaitingHeader: its held parser (ProxyParserPool)
  uint64_t bytes_written = 0;  // bytes the kernel has taken
  SendQueue queue;

  SessionId id() const { return MakeSessionId(slot, generation); }
  bool has(SessionFlag f) const { return (flags & f) != 0; }
  void set(SessionFlag f) { flags = static_cast<uint16_t>(flags | f); }
  void clear(SessionFlag f) { flags = static_cast<uint16_t>(flags & ~f); }
};

// Memory per slot is part of the idle-connection budget (README).
static_assert(sizeof(Session) <= 88, "keep Session small");

class SessionTable {
 public:
  // `chunk_size` slots per chunk; `ext_bytes` of backend-private storage per
  // slot (for example OVERLAPPED structures), zeroed on growth; the table
  // holds fewer than `slot_limit` slots (at most ids.table_slot_limit()),
  // whole chunks only; its sessions carry the id slots of `ids`.
  SessionTable(uint32_t chunk_size, size_t ext_bytes, uint32_t slot_limit = kMaxSlots,
               IdSpace ids = IdSpace());
  SessionTable(const SessionTable&) = delete;
  SessionTable& operator=(const SessionTable&) = delete;
  ~SessionTable();

  // Adds one chunk. False if it would pass the slot limit or memory ran out.
  // (A chunk whose slots are all retired adds no capacity.)
  bool Grow();
  // Releases the top chunk if every slot in it is free or retired. True if
  // it did.
  bool ShrinkTop();

  // Takes a free slot from the lowest chunk that has one (so high chunks
  // empty out and can shrink), or null. The slot comes back in state kOpen with flags cleared.
  Session* Acquire();
  // Returns a slot to the free list and bumps its generation, or retires it
  // when its last generation has been used. The caller must have cleared its
  // queue and seen all its backend operations complete.
  void Release(Session* s);

  // The session an id names, or null if the id is stale, out of range or not
  // live (kConnecting, kOpen, kClosing or kLingering). Every command passes
  // here.
  Session* Lookup(SessionId id);
  // The session an id names while its slot is taken: any state but kFree or
  // kRetired, kReleasing included. Backends tag what they queue (epoll
  // events, IOCP work lists) with s.id() and resolve the tag here, so a tag
  // left from an earlier occupant never matches, and a session whose close
  // is still completing is found.
  Session* LookupTaken(SessionId id);
  // Slot by its id slot regardless of state, or null if out of range or
  // another thread's.
  Session* AtSlot(uint32_t slot);
  void* Ext(const Session& s);

  // Calls fn(Session&) for every slot that is taken (neither free nor retired).
  template <typename Fn>
  void ForEachLive(Fn&& fn) {
    for (size_t c = 0; c < chunks_.size(); ++c) {
      if (chunks_[c].free_count + chunks_[c].retired == chunk_size_) continue;
      Session* base = chunks_[c].sessions.get();
      for (uint32_t i = 0; i < chunk_size_; ++i) {
        if (base[i].state != SessionState::kFree && base[i].state != SessionState::kRetired)
          fn(base[i]);
      }
    }
  }

  // Only for tests that must reach the end of a slot's generations without
  // 2^29 connections: the next occupant of `slot` (an id slot) gets
  // `generation`. Works before the slot's chunk exists; false if the slot is
  // taken, another thread's, or the generation is out of range.
  bool SetGenerationForTesting(uint32_t slot, uint32_t generation);

  // Slots that can hold a session: allocated, minus retired ones.
  uint32_t capacity() const { return slots() - retired_; }
  uint32_t in_use() const { return capacity() - free_; }
  uint32_t free_slots() const { return free_; }
  uint32_t chunk_size() const { return chunk_size_; }
  uint32_t chunks() const { return static_cast<uint32_t>(chunks_.size()); }
  // Slots allocated (every chunk, retired slots included).
  uint32_t slots() const { return static_cast<uint32_t>(chunks_.size()) * chunk_size_; }
  // Slots retired over the table's life, in allocated chunks or not.
  uint32_t retired_total() const { return retired_total_; }
  // Whether one more chunk fits under the slot limit.
  bool CanGrow() const { return static_cast<uint64_t>(slots()) + chunk_size_ <= slot_limit_; }

 private:
  struct Chunk {
    std::unique_ptr<Session[]> sessions;
    std::unique_ptr<unsigned char[]> ext;
    uint32_t free_head = 0;  // slot index within chunk + 1; 0 = none
    uint32_t free_count = 0;
    uint32_t retired = 0;
  };

  uint32_t chunk_size_;
  size_t ext_bytes_;
  uint32_t slot_limit_;
  IdSpace ids_;
  std::vector<Chunk> chunks_;
  // By table slot, kRetiredGeneration for a retired one; never shrinks.
  std::vector<uint32_t> generations_;
  uint32_t free_ = 0;
  uint32_t retired_ = 0;  // retired slots in allocated chunks
  uint32_t retired_total_ = 0;
  size_t lowest_free_chunk_ = 0;  // no chunk below this one has a free slot
};

// Defined here rather than in the .cc: they run for every event and every
// command.
inline Session* SessionTable::AtSlot(uint32_t slot) {
  if (!ids_.Owns(slot)) return nullptr;
  uint32_t index = ids_.TableSlot(slot);
  size_t c = index / chunk_size_;
  if (c >= chunks_.size()) return nullptr;
  return &chunks_[c].sessions[index % chunk_size_];
}

inline Session* SessionTable::LookupTaken(SessionId id) {
  Session* s = AtSlot(SlotOf(id));
  if (s == nullptr || s->generation != GenerationOf(id)) return nullptr;
  if (s->state == SessionState::kFree || s->state == SessionState::kRetired) return nullptr;
  return s;
}

inline Session* SessionTable::Lookup(SessionId id) {
  Session* s = LookupTaken(id);
  return s != nullptr && s->state != SessionState::kReleasing ? s : nullptr;
}

inline void* SessionTable::Ext(const Session& s) {
  if (ext_bytes_ == 0) return nullptr;
  uint32_t index = ids_.TableSlot(s.slot);
  Chunk& chunk = chunks_[index / chunk_size_];
  return chunk.ext.get() + (index % chunk_size_) * ext_bytes_;
}

}  // namespace acceptpool

#endif  // ACCEPTPOOL_CORE_SESSION_TABLE_H_
