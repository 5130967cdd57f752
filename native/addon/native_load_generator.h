// The JS-visible load generator: one run at a time of the core's
// LoadGenerator (its own threads, its own engines, no JS per connection).
// src/options.ts validates and completes the options; the TypeScript wrapper
// (src/loadgen.ts) is the only caller.
//
//   const gen = new NativeLoadGenerator();
//   const result = await gen.start(options);  // resolves when the run ends
//   gen.progress();  // { total, completed, errors, open, phase } while it runs
//   gen.stop();      // ends the run early (idle: the hold); start() resolves
#ifndef ACCEPTPOOL_ADDON_NATIVE_LOAD_GENERATOR_H_
#define ACCEPTPOOL_ADDON_NATIVE_LOAD_GENERATOR_H_

#include <memory>

#include "addon/js.h"
#include "drivers/event_loop.h"
#include "loadgen/load_generator.h"

namespace acceptpool {

// Like NativeServer, safe against an environment that is going away: its
// cleanup hook stops and joins the generator's threads, and nothing touches
// JS after that.
class NativeLoadGenerator final : public js::Wrapped {
 public:
  static napi_value Define(napi_env env);

  explicit NativeLoadGenerator(napi_env env);
  ~NativeLoadGenerator() override;
  bool Init(const js::Args& args);

 private:
  napi_value Start(const js::Args& args);
  napi_value Progress(const js::Args& args);
  napi_value Stop(const js::Args& args);
  // On the JS thread, once the last generator thread has finished.
  void Finish();
  // Stops the threads and waits for them (each drain is bounded), settling
  // nothing more in JS.
  void Abandon();
  static void CleanupHook(void* self);

  std::unique_ptr<LoadGenerator> generator_;
  // Woken by the last generator thread; exists from start() until the run is
  // finished or abandoned (after the threads are joined).
  std::unique_ptr<LoopAsync> done_;
  napi_deferred deferred_ = nullptr;
  bool running_ = false;
  js::EnvCleanupHook cleanup_;
};

}  // namespace acceptpool

#endif  // ACCEPTPOOL_ADDON_NATIVE_LOAD_GENERATOR_H_
