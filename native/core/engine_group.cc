#include "core/engine_group.h"

#include <algorithm>

namespace acceptpool {

namespace {

uint32_t Share(uint32_t total, uint32_t threads) {
  return static_cast<uint32_t>((static_cast<uint64_t>(total) + threads - 1) / threads);
}

}  // namespace

EngineConfig ThreadConfig(const EngineConfig& endpoint, uint32_t thread, uint32_t threads) {
  EngineConfig c = endpoint;
  c.ids.thread = thread;
  c.ids.threads = threads;
  if (threads <= 1) return c;
  // Connections spread over the threads, so does the pool; a thread at its
  // share pauses accepting as one engine does at maxConnections.
  uint32_t most = c.ids.table_slot_limit();
  c.pool.max_sessions = std::min(Share(endpoint.pool.max_sessions, threads), most);
  c.pool.initial = std::min(Share(endpoint.pool.initial, threads), most);
  c.pool.chunk = std::max<uint32_t>(1, std::min(Share(endpoint.pool.chunk, threads), most));
  c.pool.low_water = Share(endpoint.pool.low_water, threads);
  return c;
}

EngineGroup::EngineGroup(const EngineConfig& config, uint32_t threads,
                         BackendFactory make_backend) {
  threads = std::max<uint32_t>(1, std::min(threads, kMaxThreads));
  for (uint32_t t = 0; t < threads; ++t) {
    engines_.push_back(std::make_unique<Engine>(ThreadConfig(config, t, threads), make_backend()));
    pointers_.push_back(engines_.back().get());
  }
}

Status EngineGroup::Init() {
  for (auto& engine : engines_) {
    Status st = engine->Init();
    if (!st.ok()) return st;
  }
  return Status::Ok();
}

Status EngineGroup::Listen(const SocketAddress& address, const ListenOptions& options,
                           ListenerSharing sharing, SocketAddress* bound) {
  ListenOptions first = options;
  bool several = engines_.size() > 1;
  if (several && sharing == ListenerSharing::kReusePort) first.reuse_port = true;
  if (several && sharing == ListenerSharing::kShared) first.shared = true;
  Status st = engines_[0]->Listen(address, first, bound);
  if (st.code == Code::kUnsupported && first.reuse_port && !options.reuse_port) {
    // No balancing SO_REUSEPORT in this backend (IOCP), and nobody asked
    // for one: the engines share one listener instead.
    sharing = ListenerSharing::kShared;
    first = options;
    first.shared = true;
    st = engines_[0]->Listen(address, first, bound);
  }
  if (!st.ok()) return st;
  if (sharing == ListenerSharing::kShared) return ShareFirstListener(first);
  // The others take the port the first one got (port 0 picked it).
  SocketAddress same = address;
  same.port = bound->port;
  for (size_t t = 1; t < engines_.size() && st.ok(); ++t) {
    SocketAddress ignored;
    st = engines_[t]->Listen(same, first, &ignored);
  }
  if (!st.ok()) CancelListen();
  return st;
}

Status EngineGroup::ListenPath(const char* path, const ListenOptions& options,
                               SocketAddress* bound) {
  ListenOptions first = options;
  first.shared = engines_.size() > 1;
  Status st = engines_[0]->ListenPath(path, first, bound);
  return st.ok() ? ShareFirstListener(first) : st;
}

Status EngineGroup::ListenOn(SocketHandle listener, const ListenOptions& options,
                             SocketAddress* bound) {
  ListenOptions first = options;
  first.shared = engines_.size() > 1;
  Status st = engines_[0]->ListenOn(listener, first, bound);
  return st.ok() ? ShareFirstListener(first) : st;
}

Status EngineGroup::ShareFirstListener(const ListenOptions& options) {
  Status st = Status::Ok();
  for (size_t t = 1; t < engines_.size() && st.ok(); ++t) {
    SocketAddress ignored;
    st = engines_[t]->ListenBeside(*engines_[0], options, &ignored);
  }
  if (!st.ok()) CancelListen();
  return st;
}

void EngineGroup::CancelListen() {
  for (auto& engine : engines_) engine->CancelListen();
}

Stats EngineGroup::SnapshotStats(std::vector<Stats>* per_thread) const {
  Stats total;
  if (per_thread != nullptr) per_thread->clear();
  for (const auto& engine : engines_) {
    Stats one = engine->SnapshotStats();
    AddStats(&total, one);
    if (per_thread != nullptr) per_thread->push_back(one);
  }
  return total;
}

bool EngineGroup::SetGenerationForTesting(uint32_t slot, uint32_t generation) {
  return engines_[ThreadOfSlot(slot, size())]->SetGenerationForTesting(slot, generation);
}

}  // namespace acceptpool
