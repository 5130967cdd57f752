// The JS-visible native server: argument checks, the engine and its driver,
// batches out to one JS callback. The TypeScript facade (src/endpoint.ts)
// keeps this object private and is the only caller; src/options.ts validates
// and completes its options.
#ifndef ACCEPTPOOL_ADDON_NATIVE_SERVER_H_
#define ACCEPTPOOL_ADDON_NATIVE_SERVER_H_

#include <memory>
#include <string>

#include "addon/js.h"
#include "drivers/drivers.h"
#include "core/engine.h"
#include "core/engine_group.h"

namespace acceptpool {

// Every method copes with an environment that is going away (see js.h): no
// Node-API failure throws or aborts, and once the environment's cleanup hook
// has stopped the driver nothing here touches JS again.
class NativeServer final : public js::Wrapped {
 public:
  static napi_value Define(napi_env env);

  explicit NativeServer(napi_env env);
  ~NativeServer() override;
  // new NativeServer(options, records: Float64Array, onBatch(count, data?, base))
  bool Init(const js::Args& args);

 private:
  napi_value Listen(const js::Args& args);
  napi_value ListenPath(const js::Args& args);
  napi_value ListenFd(const js::Args& args);
  napi_value Listening(const Status& listened, const SocketAddress& bound, const std::string& path);
  napi_value Connect(const js::Args& args);
  napi_value AbortConnect(const js::Args& args);
  // Creates and starts the driver on first use (listen or connect).
  Status EnsureDriver();
  napi_value Send(const js::Args& args);
  napi_value CloseSession(const js::Args& args);
  napi_value Control(const js::Args& args);
  napi_value Query(const js::Args& args);
  napi_value Broadcast(const js::Args& args);
  napi_value BufferedAmount(const js::Args& args);
  napi_value Shutdown(const js::Args& args);
  napi_value Drain(const js::Args& args);
  napi_value GetStats(const js::Args& args);
  napi_value SetRef(const js::Args& args);
  napi_value Destroy(const js::Args& args);
  napi_value SetGenerationForTesting(const js::Args& args);
  napi_value ThreadOf(const js::Args& args);

  // One engine's counters (or the sum) as JS sees them.
  napi_value StatsObject(const Stats& s);
  void Deliver(EventBatch& batch);
  // Where a batch's bytes go for JS: the current slab (small batches) or a
  // buffer of their own (large ones). Sets *base to their offset.
  napi_value DataFor(const EventBatch& batch, size_t* base);
  void StopAll();
  static void CleanupHook(void* self);

  EngineConfig config_;
  bool threaded_ = false;
  // Why options.backend 'auto' passed over the backends before the one
  // that runs (stats().backendFallback); empty when it did not.
  std::string backend_skipped_;
  ListenerSharing sharing_ = ListenerSharing::kReusePort;
  uint32_t threads_ = 1;  // engines, one per I/O thread
  BatchLimits limits_;
  // One engine per I/O thread (one for the inline driver).
  std::unique_ptr<EngineGroup> engines_;
  std::unique_ptr<Driver> driver_;
  js::Reference on_batch_;
  js::Reference records_ref_;
  double* records_ = nullptr;
  size_t records_capacity_ = 0;  // in records
  napi_async_context async_context_ = nullptr;
  // Small batches are copied into a shared slab Buffer, one allocation per
  // slab instead of one per batch (as Node pools small Buffers). A slab is
  // never reused: JS may keep views into it; GC frees it.
  js::Reference slab_;
  char* slab_data_ = nullptr;
  size_t slab_used_ = 0;
  bool running_ = false;  // driver started (listen or connect)
  bool destroyed_ = false;
  js::EnvCleanupHook cleanup_;
};

}  // namespace acceptpool

#endif  // ACCEPTPOOL_ADDON_NATIVE_SERVER_H_
