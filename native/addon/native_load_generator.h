// The JS-visible load generator: one run at a time of the core's
// LoadGenerator (its own threads, its own engines, no JS per connection).
// The TypeScript wrapper (src/loadgen.ts) validates options and is the only
// caller.
//
//   const gen = new NativeLoadGenerator();
//   const result = await gen.start(options);  // resolves when the run ends
//   gen.progress();  // { total, completed, errors, open, phase } while it runs
//   gen.stop();      // ends the run early (idle: the hold); start() resolves
#ifndef ACCEPTPOOL_ADDON_NATIVE_LOAD_GENERATOR_H_
#define ACCEPTPOOL_ADDON_NATIVE_LOAD_GENERATOR_H_

#include <napi.h>

#include <atomic>
#include <memory>

#include "core/load_generator.h"

namespace acceptpool {

class NativeLoadGenerator : public Napi::ObjectWrap<NativeLoadGenerator> {
 public:
  static Napi::Function Define(Napi::Env env);

  explicit NativeLoadGenerator(const Napi::CallbackInfo& info);
  ~NativeLoadGenerator() override;

 private:
  // Runs on the JS thread once the last worker thread has finished.
  static void OnFinished(Napi::Env env, Napi::Function unused, NativeLoadGenerator* self, void* data);
  using DoneCall = Napi::TypedThreadSafeFunction<NativeLoadGenerator, void, &NativeLoadGenerator::OnFinished>;

  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Progress(const Napi::CallbackInfo& info);
  Napi::Value Stop(const Napi::CallbackInfo& info);
  void Finish(Napi::Env env);
  void Abandon();
  static void CleanupHook(void* self);

  Napi::Env env_;
  std::unique_ptr<LoadGenerator> generator_;
  DoneCall done_;
  std::unique_ptr<Napi::Promise::Deferred> deferred_;
  bool running_ = false;
  bool hook_added_ = false;
  std::atomic<bool> abandoned_{false};
};

}  // namespace acceptpool

#endif  // ACCEPTPOOL_ADDON_NATIVE_LOAD_GENERATOR_H_
