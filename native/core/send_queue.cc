#include "core/send_queue.h"

#include <cstdlib>
#include <cstring>

namespace acceptpool {

BlockPool::~BlockPool() { Trim(0); }

SendBlock* BlockPool::Get() {
  SendBlock* block = spare_;
  if (block != nullptr) {
    spare_ = block->next;
    --spare_count_;
    if (spare_count_ < min_spare_) min_spare_ = spare_count_;
  } else {
    // The pool is the allocator: blocks are malloc'ed here and nowhere else.
    block = static_cast<SendBlock*>(std::malloc(sizeof(SendBlock)));
    if (block == nullptr) return nullptr;
    ++allocated_count_;
  }
  block->next = nullptr;
  block->begin = 0;
  block->end = 0;
  return block;
}

void BlockPool::Put(SendBlock* block) {
  block->next = spare_;
  spare_ = block;
  ++spare_count_;
}

void BlockPool::Trim(size_t keep) {
  while (spare_count_ > keep) {
    SendBlock* block = spare_;
    spare_ = block->next;
    --spare_count_;
    --allocated_count_;
    std::free(block);
  }
  if (min_spare_ > spare_count_) min_spare_ = spare_count_;
}

size_t BlockPool::TrimIdle() {
  size_t idle = min_spare_;
  Trim(spare_count_ - idle);
  min_spare_ = spare_count_;
  return idle * sizeof(SendBlock);
}

bool SendQueue::Append(BlockPool& pool, const char* data, size_t size) {
  if (size == 0) return true;
  // Work out how many new blocks are needed first so a failure appends
  // nothing: a half-queued message would corrupt the stream.
  size_t room = tail_ != nullptr ? SendBlock::kBytes - tail_->end : 0;
  size_t extra = size > room ? size - room : 0;
  size_t needed = (extra + SendBlock::kBytes - 1) / SendBlock::kBytes;
  SendBlock* fresh = nullptr;
  SendBlock* fresh_tail = nullptr;
  for (size_t i = 0; i < needed; ++i) {
    SendBlock* b = pool.Get();
    if (b == nullptr) {
      while (fresh != nullptr) {
        SendBlock* next = fresh->next;
        pool.Put(fresh);
        fresh = next;
      }
      return false;
    }
    if (fresh_tail == nullptr) {
      fresh = b;
    } else {
      fresh_tail->next = b;
    }
    fresh_tail = b;
  }
  size_t left = size;
  if (room > 0) {
    size_t n = left < room ? left : room;
    std::memcpy(tail_->data + tail_->end, data, n);
    tail_->end += static_cast<uint32_t>(n);
    data += n;
    left -= n;
  }
  for (SendBlock* b = fresh; b != nullptr; b = b->next) {
    size_t n = left < SendBlock::kBytes ? left : SendBlock::kBytes;
    std::memcpy(b->data, data, n);
    b->end = static_cast<uint32_t>(n);
    data += n;
    left -= n;
  }
  if (fresh != nullptr) {
    if (tail_ == nullptr) {
      head_ = fresh;
    } else {
      tail_->next = fresh;
    }
    tail_ = fresh_tail;
  }
  bytes_ += size;
  return true;
}

int SendQueue::Peek(IoSlice* out, int max) const {
  int n = 0;
  for (SendBlock* b = head_; b != nullptr && n < max; b = b->next) {
    if (b->end == b->begin) continue;
    out[n].data = b->data + b->begin;
    out[n].size = b->end - b->begin;
    ++n;
  }
  return n;
}

void SendQueue::Consume(BlockPool& pool, size_t size) {
  if (size > bytes_) size = bytes_;
  bytes_ -= size;
  while (size > 0 && head_ != nullptr) {
    size_t in_head = head_->end - head_->begin;
    if (size < in_head) {
      head_->begin += static_cast<uint32_t>(size);
      return;
    }
    size -= in_head;
    SendBlock* done = head_;
    head_ = done->next;
    if (head_ == nullptr) tail_ = nullptr;
    pool.Put(done);
  }
  // A fully sent tail block is kept for the next append; reset it so its
  // room is whole again.
  if (head_ != nullptr && head_ == tail_ && head_->begin == head_->end) {
    head_->begin = 0;
    head_->end = 0;
  }
}

void SendQueue::Clear(BlockPool& pool) {
  while (head_ != nullptr) {
    SendBlock* next = head_->next;
    pool.Put(head_);
    head_ = next;
  }
  tail_ = nullptr;
  bytes_ = 0;
}

}  // namespace acceptpool
