#include "core/session_table.h"

#include <cstring>
#include <new>

namespace acceptpool {

SessionTable::SessionTable(uint32_t chunk_size, size_t ext_bytes, uint32_t slot_limit, IdSpace ids)
    : chunk_size_(chunk_size == 0 ? 1 : chunk_size),
      ext_bytes_(ext_bytes),
      slot_limit_(slot_limit < ids.table_slot_limit() ? slot_limit : ids.table_slot_limit()),
      ids_(ids) {}

SessionTable::~SessionTable() = default;

bool SessionTable::Grow() {
  if (!CanGrow()) return false;
  uint64_t new_slots = static_cast<uint64_t>(slots()) + chunk_size_;
  Chunk chunk;
  chunk.sessions.reset(new (std::nothrow) Session[chunk_size_]);
  if (!chunk.sessions) return false;
  if (ext_bytes_ > 0) {
    chunk.ext.reset(new (std::nothrow) unsigned char[ext_bytes_ * chunk_size_]());
    if (!chunk.ext) return false;
  }
  uint32_t first_slot = slots();
  if (generations_.size() < new_slots) {
    // Slots seen for the first time start at generation 1; 0 is never valid.
    generations_.resize(new_slots, 1);
  }
  // Built from the top down so the free list starts at the lowest slot;
  // slots retired before a shrink stay retired.
  for (uint32_t i = chunk_size_; i-- > 0;) {
    Session& s = chunk.sessions[i];
    s.slot = ids_.IdSlot(first_slot + i);
    s.generation = generations_[first_slot + i];
    if (s.generation == kRetiredGeneration) {
      s.state = SessionState::kRetired;
      ++chunk.retired;
      continue;
    }
    s.next_free = chunk.free_head;
    chunk.free_head = i + 1;
    ++chunk.free_count;
  }
  free_ += chunk.free_count;
  retired_ += chunk.retired;
  chunks_.push_back(std::move(chunk));
  return true;
}

bool SessionTable::ShrinkTop() {
  if (chunks_.empty()) return false;
  Chunk& top = chunks_.back();
  if (top.free_count + top.retired != chunk_size_) return false;
  // Generations stay in generations_, already bumped (or retired) by Release().
  free_ -= top.free_count;
  retired_ -= top.retired;
  chunks_.pop_back();
  if (lowest_free_chunk_ >= chunks_.size())
    lowest_free_chunk_ = chunks_.empty() ? 0 : chunks_.size() - 1;
  return true;
}

Session* SessionTable::Acquire() {
  if (free_ == 0) return nullptr;
  while (lowest_free_chunk_ < chunks_.size() && chunks_[lowest_free_chunk_].free_count == 0) {
    ++lowest_free_chunk_;
  }
  Chunk& chunk = chunks_[lowest_free_chunk_];
  Session* s = &chunk.sessions[chunk.free_head - 1];
  chunk.free_head = s->next_free;
  --chunk.free_count;
  --free_;
  s->next_free = 0;
  s->state = SessionState::kOpen;
  s->flags = 0;
  s->close_reason = 0;
  s->close_error = 0;
  s->close_raw = 0;
  s->next_pending = nullptr;
  s->token = 0;
  s->active_ms = 0;
  s->timeout_set_ms = 0;
  s->timeout_ms = 0;
  s->bytes_written = 0;
  return s;
}

void SessionTable::Release(Session* s) {
  s->socket = kNoSocket;
  s->flags = 0;
  uint32_t index = ids_.TableSlot(s->slot);
  size_t c = index / chunk_size_;
  Chunk& chunk = chunks_[c];
  uint32_t next = s->generation + 1;
  if (next >= kGenerationLimit) {
    // Wrapping would let an id from 2^29 - 1 occupants ago match again.
    s->generation = kRetiredGeneration;
    generations_[index] = kRetiredGeneration;
    s->state = SessionState::kRetired;
    ++chunk.retired;
    ++retired_;
    ++retired_total_;
    return;
  }
  s->generation = next;
  generations_[index] = next;
  s->state = SessionState::kFree;
  s->next_free = chunk.free_head;
  chunk.free_head = index % chunk_size_ + 1;
  ++chunk.free_count;
  ++free_;
  if (c < lowest_free_chunk_) lowest_free_chunk_ = c;
}

bool SessionTable::SetGenerationForTesting(uint32_t slot, uint32_t generation) {
  if (!ids_.Owns(slot)) return false;
  uint32_t index = ids_.TableSlot(slot);
  if (index >= slot_limit_ || generation == 0 || generation >= kGenerationLimit) return false;
  Session* s = AtSlot(slot);
  if (s != nullptr && s->state != SessionState::kFree) return false;
  if (generations_.size() <= index) generations_.resize(static_cast<size_t>(index) + 1, 1);
  if (generations_[index] == kRetiredGeneration) return false;
  generations_[index] = generation;
  if (s != nullptr) s->generation = generation;
  return true;
}

}  // namespace acceptpool
