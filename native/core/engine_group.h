// The engines of one endpoint: one per I/O thread (threads: N), each with its
// own session table, pool and backend, so the threads share nothing on the
// hot path. Their ids interleave (IdSpace, session_table.h): ThreadOf(id)
// names the engine that owns a session, which is where its commands go.
//
// A server's engines all listen on its port, in one of two ways
// (ListenerSharing); README "Threads" says which is the default and why.
#ifndef ACCEPTPOOL_CORE_ENGINE_GROUP_H_
#define ACCEPTPOOL_CORE_ENGINE_GROUP_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "core/engine.h"

namespace acceptpool {

enum class ListenerSharing : uint8_t {
  // A listening socket per engine, each bound with SO_REUSEPORT: the kernel
  // hashes every new connection to one of them, busy or not.
  kReusePort,
  // One listening socket in every engine's poller (ListenOptions::shared):
  // the kernel wakes one waiting engine per connection (IOCP: completes one
  // engine's AcceptEx). The only way for a socket that cannot be bound twice
  // (an inherited one, a Unix socket), and for a backend without a balancing
  // SO_REUSEPORT (IOCP), which Listen() falls back to.
  kShared,
};

// Engine `thread` of `threads`: the endpoint's configuration with the ids
// of that thread and its share of the pool (each size divided by the
// thread count, rounded up, within what its id space holds).
EngineConfig ThreadConfig(const EngineConfig& endpoint, uint32_t thread, uint32_t threads);

class EngineGroup {
 public:
  using BackendFactory = std::unique_ptr<Backend> (*)();

  // `threads` from 1 to kMaxThreads.
  EngineGroup(const EngineConfig& config, uint32_t threads, BackendFactory make_backend);
  EngineGroup(const EngineGroup&) = delete;
  EngineGroup& operator=(const EngineGroup&) = delete;

  Status Init();
  // Every engine listens on `address`: the first binds (port 0 picks the
  // port), the others bind to its port or share its socket. On failure no
  // engine listens.
  Status Listen(const SocketAddress& address, const ListenOptions& options, ListenerSharing sharing,
                SocketAddress* bound);
  // A Unix domain socket, or a listening socket the process inherited
  // (owned from here on success): the first engine listens on it, the
  // others share it (ListenerSharing::kShared, the only way for these).
  Status ListenPath(const char* path, const ListenOptions& options, SocketAddress* bound);
  Status ListenOn(SocketHandle listener, const ListenOptions& options, SocketAddress* bound);

  uint32_t size() const { return static_cast<uint32_t>(engines_.size()); }
  Engine& at(uint32_t thread) { return *engines_[thread]; }
  const Engine& at(uint32_t thread) const { return *engines_[thread]; }
  const std::vector<Engine*>& engines() const { return pointers_; }
  uint32_t ThreadOfId(SessionId id) const { return ThreadOf(id, size()); }

  // The endpoint's counters (the sum) and, if asked, each engine's. Only
  // while no driver runs the engines (drivers publish their own).
  Stats SnapshotStats(std::vector<Stats>* per_thread) const;
  // Engine::SetGenerationForTesting on the engine that owns id slot `slot`.
  bool SetGenerationForTesting(uint32_t slot, uint32_t generation);

 private:
  // The other engines listen beside the first (Engine::ListenBeside).
  Status ShareFirstListener(const ListenOptions& options);
  void CancelListen();

  std::vector<std::unique_ptr<Engine>> engines_;
  std::vector<Engine*> pointers_;
};

}  // namespace acceptpool

#endif  // ACCEPTPOOL_CORE_ENGINE_GROUP_H_
