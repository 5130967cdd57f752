// The engine's one deadline facility: at most one deadline per session slot,
// in milliseconds, kept in an intrusive binary min-heap over slot indices.
//
// Why a heap over slots: every timer a session can have (its own
// setTimeout, the server's idle timeout, the close linger, the shutdown
// grace) folds into one "next time the engine must look at this slot", so
// one entry per slot is enough, and the arrays are sized with the session
// table (Resize when it grows): scheduling never allocates. Set, Cancel and
// PopDue are O(log n); Next is O(1), which gives the poll timeout.
//
// Callers keep deadlines lazy: activity that only pushes a deadline later
// (a read resetting an idle timer) does not touch the heap; when the old
// deadline comes, the engine finds it early and sets the real one.
#ifndef ACCEPTPOOL_CORE_DEADLINE_HEAP_H_
#define ACCEPTPOOL_CORE_DEADLINE_HEAP_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace acceptpool {

class DeadlineHeap {
 public:
  static constexpr uint64_t kNever = ~0ull;

  // Makes room for slots [0, slots). Never shrinks (slot indices of a shrunk
  // chunk come back when it grows again). False if memory ran out.
  bool Resize(uint32_t slots);
  uint32_t slots() const { return static_cast<uint32_t>(position_.size()); }

  // Schedules `slot` at `due_ms`, replacing its deadline if it had one.
  void Set(uint32_t slot, uint64_t due_ms);
  void Cancel(uint32_t slot);
  bool Scheduled(uint32_t slot) const { return slot < position_.size() && position_[slot] != 0; }
  uint64_t DueOf(uint32_t slot) const { return Scheduled(slot) ? due_[slot] : kNever; }

  // The earliest deadline, kNever when none is set.
  uint64_t Next() const { return heap_.empty() ? kNever : due_[heap_[0]]; }
  // Takes the earliest slot if its deadline is at or before `now_ms`.
  bool PopDue(uint64_t now_ms, uint32_t* slot);
  size_t size() const { return heap_.size(); }

 private:
  void Place(size_t index, uint32_t slot);
  void SiftUp(size_t index);
  void SiftDown(size_t index);
  void RemoveAt(size_t index);

  std::vector<uint32_t> heap_;      // slots, heap-ordered by due_
  std::vector<uint32_t> position_;  // by slot: index in heap_ + 1, 0 = not scheduled
  std::vector<uint64_t> due_;       // by slot
};

}  // namespace acceptpool

#endif  // ACCEPTPOOL_CORE_DEADLINE_HEAP_H_
