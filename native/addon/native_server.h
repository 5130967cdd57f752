// The JS-visible native server: argument checks, the engine and its driver,
// batches out to one JS callback. The TypeScript facade (src/server.ts) keeps
// this object private and is the only caller.
#ifndef ACCEPTPOOL_ADDON_NATIVE_SERVER_H_
#define ACCEPTPOOL_ADDON_NATIVE_SERVER_H_

#include <napi.h>

#include <memory>

#include "addon/drivers.h"
#include "core/engine.h"

namespace acceptpool {

class NativeServer : public Napi::ObjectWrap<NativeServer> {
 public:
  static Napi::Function Define(Napi::Env env);

  // new NativeServer(options, records: Float64Array, onBatch(count, data?))
  explicit NativeServer(const Napi::CallbackInfo& info);
  ~NativeServer() override;

 private:
  Napi::Value Listen(const Napi::CallbackInfo& info);
  Napi::Value Connect(const Napi::CallbackInfo& info);
  Napi::Value AbortConnect(const Napi::CallbackInfo& info);
  // Creates and starts the driver on first use (listen or connect).
  Status EnsureDriver();
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value CloseSession(const Napi::CallbackInfo& info);
  Napi::Value Broadcast(const Napi::CallbackInfo& info);
  Napi::Value BufferedAmount(const Napi::CallbackInfo& info);
  Napi::Value Shutdown(const Napi::CallbackInfo& info);
  Napi::Value GetStats(const Napi::CallbackInfo& info);
  Napi::Value SetRef(const Napi::CallbackInfo& info);
  Napi::Value Destroy(const Napi::CallbackInfo& info);
  Napi::Value SetGenerationForTesting(const Napi::CallbackInfo& info);

  void Deliver(EventBatch& batch);
  // Where a batch's bytes go for JS: the current slab (small batches) or a
  // buffer of their own (large ones). Sets *base to their offset.
  napi_value DataFor(const EventBatch& batch, size_t* base);
  void StopAll();
  static void CleanupHook(void* self);

  Napi::Env env_;
  EngineConfig config_;
  bool threaded_ = false;
  BatchLimits limits_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Driver> driver_;
  Napi::FunctionReference on_batch_;
  Napi::Reference<Napi::Float64Array> records_ref_;
  double* records_ = nullptr;
  size_t records_capacity_ = 0;  // in records
  std::unique_ptr<Napi::AsyncContext> async_context_;
  // Small batches are copied into a shared slab Buffer, one allocation per
  // slab instead of one per batch (as Node pools small Buffers). A slab is
  // never reused: JS may keep views into it; GC frees it.
  Napi::Reference<Napi::Buffer<char>> slab_;
  char* slab_data_ = nullptr;
  size_t slab_used_ = 0;
  bool running_ = false;  // driver started (listen or connect)
  bool destroyed_ = false;
  bool hook_added_ = false;
};

}  // namespace acceptpool

#endif  // ACCEPTPOOL_ADDON_NATIVE_SERVER_H_
