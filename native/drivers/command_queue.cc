#include "drivers/command_queue.h"

#include <cstring>
#include <utility>

namespace acceptpool {

bool CommandQueue::Push(Command command, const void* a, size_t a_size, const void* b,
                        size_t b_size) {
  std::unique_lock<std::mutex> lock(mutex_);
  space_.wait(lock, [&] {
    return closed_ || incoming_.commands.empty() ||
           incoming_.bytes.size() + a_size + b_size <= max_bytes_;
  });
  bool was_empty = incoming_.commands.empty();
  command.offset = incoming_.bytes.size();
  command.size = a_size;
  incoming_.bytes.resize(command.offset + a_size + b_size);
  if (a_size > 0) std::memcpy(incoming_.bytes.data() + command.offset, a, a_size);
  if (b_size > 0) std::memcpy(incoming_.bytes.data() + command.offset + a_size, b, b_size);
  incoming_.commands.push_back(command);
  return was_empty;
}

bool CommandQueue::Take(Side* out) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (incoming_.commands.empty()) return false;
    std::swap(incoming_, *out);
  }
  space_.notify_all();
  peak_commands_.Note(out->commands.size());
  peak_bytes_.Note(out->bytes.size());
  return true;
}

size_t CommandQueue::Trim(Side* work) {
  size_t keep_commands = peak_commands_.EndPeriod(kKeepCommands);
  size_t keep_bytes = peak_bytes_.EndPeriod(kKeepBytes);
  size_t freed = ShrinkTo(&work->commands, keep_commands) + ShrinkTo(&work->bytes, keep_bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  // A side being filled right now is left for a later period.
  return freed + ShrinkTo(&incoming_.commands, keep_commands) +
         ShrinkTo(&incoming_.bytes, keep_bytes);
}

void CommandQueue::Close() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
  }
  space_.notify_all();
}

}  // namespace acceptpool
