#include "core/deadline_heap.h"

namespace acceptpool {

bool DeadlineHeap::Resize(uint32_t slots) {
  if (slots <= position_.size()) return true;
  // -fno-exceptions: a failed allocation aborts in the standard containers,
  // so reserve what Set may need up front, where growth already allocates.
  heap_.reserve(slots);
  position_.resize(slots, 0);
  due_.resize(slots, kNever);
  return heap_.capacity() >= slots;
}

void DeadlineHeap::Place(size_t index, uint32_t slot) {
  heap_[index] = slot;
  position_[slot] = static_cast<uint32_t>(index + 1);
}

void DeadlineHeap::SiftUp(size_t index) {
  uint32_t slot = heap_[index];
  uint64_t due = due_[slot];
  while (index > 0) {
    size_t parent = (index - 1) / 2;
    if (due_[heap_[parent]] <= due) break;
    Place(index, heap_[parent]);
    index = parent;
  }
  Place(index, slot);
}

void DeadlineHeap::SiftDown(size_t index) {
  uint32_t slot = heap_[index];
  uint64_t due = due_[slot];
  size_t n = heap_.size();
  for (;;) {
    size_t child = 2 * index + 1;
    if (child >= n) break;
    if (child + 1 < n && due_[heap_[child + 1]] < due_[heap_[child]]) ++child;
    if (due <= due_[heap_[child]]) break;
    Place(index, heap_[child]);
    index = child;
  }
  Place(index, slot);
}

void DeadlineHeap::Set(uint32_t slot, uint64_t due_ms) {
  if (slot >= position_.size()) return;  // the table grew without Resize: a bug upstream
  uint32_t pos = position_[slot];
  if (pos == 0) {
    due_[slot] = due_ms;
    heap_.push_back(slot);  // within the reserved capacity: no allocation
    SiftUp(heap_.size() - 1);
    return;
  }
  uint64_t old = due_[slot];
  due_[slot] = due_ms;
  if (due_ms < old) {
    SiftUp(pos - 1);
  } else if (due_ms > old) {
    SiftDown(pos - 1);
  }
}

void DeadlineHeap::RemoveAt(size_t index) {
  uint32_t slot = heap_[index];
  position_[slot] = 0;
  due_[slot] = kNever;
  uint32_t last = heap_.back();
  heap_.pop_back();
  if (index == heap_.size()) return;  // it was the last entry
  Place(index, last);
  // The moved entry may belong above or below its new place.
  SiftUp(index);
  SiftDown(position_[last] - 1);
}

void DeadlineHeap::Cancel(uint32_t slot) {
  if (!Scheduled(slot)) return;
  RemoveAt(position_[slot] - 1);
}

bool DeadlineHeap::PopDue(uint64_t now_ms, uint32_t* slot) {
  if (heap_.empty() || due_[heap_[0]] > now_ms) return false;
  *slot = heap_[0];
  RemoveAt(0);
  return true;
}

}  // namespace acceptpool
