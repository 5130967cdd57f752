#include "addon/native_load_generator.h"

#include <cmath>
#include <string>

#include "backends/make_backend.h"

namespace acceptpool {
namespace {

const char* const kPhaseNames[] = {"ramp", "warmup", "measure", "hold", "draining", "done"};

Napi::Value ThrowTyped(Napi::Env env, const std::string& message) {
  Napi::TypeError error = Napi::TypeError::New(env, message);
  error.Set("code", Napi::String::New(env, "ERR_ACCEPTPOOL_INVALID_ARG"));
  error.ThrowAsJavaScriptException();
  return env.Undefined();
}

// Reads the options object; `error` names the first bad field.
class OptionReader {
 public:
  explicit OptionReader(Napi::Object options) : options_(options) {}

  // An integer in [min, max]; required.
  double Int(const char* key, double min, double max) {
    if (!error_.empty()) return min;
    Napi::Value v = options_.Get(key);
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
    if (!std::isfinite(d) || std::floor(d) != d || d < min || d > max) {
      error_ = std::string("load generator option ") + key + " must be an integer from " +
               std::to_string(static_cast<long long>(min)) + " to " +
               std::to_string(static_cast<long long>(max));
      return min;
    }
    return d;
  }
  const std::string& error() const { return error_; }

 private:
  Napi::Object options_;
  std::string error_;
};

SocketAddress Ipv4(double host_order, double port) {
  SocketAddress a;
  a.family = 4;
  uint32_t v = static_cast<uint32_t>(host_order);
  a.addr[0] = static_cast<uint8_t>(v >> 24);
  a.addr[1] = static_cast<uint8_t>(v >> 16);
  a.addr[2] = static_cast<uint8_t>(v >> 8);
  a.addr[3] = static_cast<uint8_t>(v);
  a.port = static_cast<uint16_t>(port);
  return a;
}

Napi::Object ResultObject(Napi::Env env, const LoadResult& r) {
  const LoadCounters& c = r.totals;
  Napi::Object o = Napi::Object::New(env);
  auto put = [env](Napi::Object target, const char* key, double value) {
    target.Set(key, Napi::Number::New(env, value));
  };
  put(o, "threads", r.threads);
  put(o, "connections", r.lanes);
  put(o, "rate", r.rate);
  put(o, "completed", static_cast<double>(c.completed));
  put(o, "total", static_cast<double>(c.total));
  put(o, "connects", static_cast<double>(c.connects));
  put(o, "connected", static_cast<double>(c.connected));
  put(o, "abandoned", static_cast<double>(c.abandoned));
  put(o, "peakOpen", c.peak_open);
  put(o, "windowMs", static_cast<double>(c.window_us) / 1000.0);
  put(o, "rampMs", static_cast<double>(c.ramp_us) / 1000.0);
  put(o, "bytesIn", static_cast<double>(c.bytes_in));
  put(o, "bytesOut", static_cast<double>(c.bytes_out));
  put(o, "errorCount", static_cast<double>(c.ErrorTotal()));
  Napi::Object errors = Napi::Object::New(env);
  for (size_t i = 0; i < static_cast<size_t>(SysError::kCount); ++i) {
    if (c.errors[i] > 0) put(errors, SysErrorName(static_cast<SysError>(i)), static_cast<double>(c.errors[i]));
  }
  if (c.mismatches > 0) put(errors, "mismatch", static_cast<double>(c.mismatches));
  if (c.eofs > 0) put(errors, "eof", static_cast<double>(c.eofs));
  if (c.timeouts > 0) put(errors, "timeout", static_cast<double>(c.timeouts));
  o.Set("errors", errors);
  Napi::Object latency = Napi::Object::New(env);
  put(latency, "count", static_cast<double>(c.latency.count()));
  put(latency, "mean", c.latency.mean());
  put(latency, "p50", static_cast<double>(c.latency.Percentile(0.5)));
  put(latency, "p90", static_cast<double>(c.latency.Percentile(0.9)));
  put(latency, "p99", static_cast<double>(c.latency.Percentile(0.99)));
  put(latency, "p999", static_cast<double>(c.latency.Percentile(0.999)));
  put(latency, "max", static_cast<double>(c.latency.max()));
  o.Set("latencyUs", latency);
  return o;
}

}  // namespace

Napi::Function NativeLoadGenerator::Define(Napi::Env env) {
  return DefineClass(env, "NativeLoadGenerator",
                     {
                         InstanceMethod<&NativeLoadGenerator::Start>("start"),
                         InstanceMethod<&NativeLoadGenerator::Progress>("progress"),
                         InstanceMethod<&NativeLoadGenerator::Stop>("stop"),
                     });
}

NativeLoadGenerator::NativeLoadGenerator(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<NativeLoadGenerator>(info), env_(info.Env()) {
  napi_add_env_cleanup_hook(env_, &NativeLoadGenerator::CleanupHook, this);
  hook_added_ = true;
}

NativeLoadGenerator::~NativeLoadGenerator() {
  Abandon();
  if (hook_added_) napi_remove_env_cleanup_hook(env_, &NativeLoadGenerator::CleanupHook, this);
}

void NativeLoadGenerator::CleanupHook(void* self) {
  auto* gen = static_cast<NativeLoadGenerator*>(self);
  gen->hook_added_ = false;
  gen->Abandon();
}

// The environment or the object is going away: stop the threads and wait
// for them (each drain is bounded), settling nothing more in JS.
void NativeLoadGenerator::Abandon() {
  abandoned_.store(true, std::memory_order_release);
  if (generator_) {
    generator_->Stop();
    generator_->Join();
  }
  generator_.reset();
  running_ = false;
}

// start({ mode, remote, port, firstSource, sources, connections, threads,
//         messageSize, durationMs, warmupMs, rampTimeoutMs, timeoutMs,
//         retryDelayMs, maxConnecting }) -> Promise<result>
Napi::Value NativeLoadGenerator::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (running_) {
    Napi::Error error = Napi::Error::New(env, "a load generator run is already in progress");
    error.Set("code", Napi::String::New(env, "ERR_ACCEPTPOOL_INVALID_STATE"));
    error.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (info.Length() < 1 || !info[0].IsObject()) return ThrowTyped(env, "start(options: object)");
  OptionReader read(info[0].As<Napi::Object>());
  LoadConfig config;
  config.mode = static_cast<LoadMode>(static_cast<int>(read.Int("mode", 0, 3)));
  double remote = read.Int("remote", 0, 4294967295.0);
  double port = read.Int("port", 1, 65535);
  config.remote = Ipv4(remote, port);
  config.first_source = Ipv4(read.Int("firstSource", 0, 4294967295.0), 0);
  config.sources = static_cast<uint32_t>(read.Int("sources", 0, 65536));
  config.threads = static_cast<uint32_t>(read.Int("threads", 1, 64));
  config.connections = static_cast<uint32_t>(read.Int("connections", 1, kMaxLanesPerThread));
  config.message_size = static_cast<uint32_t>(read.Int("messageSize", 1, kMaxLoadMessage));
  constexpr double kDay = 86400000.0;
  config.duration_us = static_cast<int64_t>(read.Int("durationMs", 0, kDay)) * 1000;
  config.warmup_us = static_cast<int64_t>(read.Int("warmupMs", 0, kDay)) * 1000;
  config.ramp_timeout_us = static_cast<int64_t>(read.Int("rampTimeoutMs", 0, kDay)) * 1000;
  config.op_timeout_us = static_cast<int64_t>(read.Int("timeoutMs", 1, kDay)) * 1000;
  config.retry_delay_us = static_cast<int64_t>(read.Int("retryDelayMs", 0, 60000)) * 1000;
  config.max_connecting = static_cast<uint32_t>(read.Int("maxConnecting", 0, kMaxLanesPerThread));
  if (!read.error().empty()) return ThrowTyped(env, read.error());

  generator_ = std::make_unique<LoadGenerator>(config);
  done_ = DoneCall::New(env, "acceptpool:loadgen", 0, 1, this);
  abandoned_.store(false, std::memory_order_release);
  Status st = generator_->Start(MakePlatformBackend, [this] {
    // Never call into a thread-safe function the environment is tearing down.
    if (!abandoned_.load(std::memory_order_acquire)) done_.BlockingCall();
  });
  if (!st.ok()) {
    done_.Release();
    generator_.reset();
    Napi::Error error = Napi::Error::New(
        env, std::string("load generator failed to start: ") +
                 (st.code == Code::kSystem ? SysErrorName(st.sys) : "invalid configuration"));
    error.Set("code", Napi::String::New(env, st.code == Code::kSystem ? SysErrorName(st.sys)
                                                                       : "ERR_ACCEPTPOOL_INVALID_ARG"));
    error.Set("errno", Napi::Number::New(env, -st.raw));
    error.Set("syscall", Napi::String::New(env, st.syscall != nullptr ? st.syscall : "start"));
    error.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  deferred_ = std::make_unique<Napi::Promise::Deferred>(Napi::Promise::Deferred::New(env));
  running_ = true;
  // Stay alive while the threads run, even with no JS reference left.
  Ref();
  return deferred_->Promise();
}

void NativeLoadGenerator::OnFinished(Napi::Env env, Napi::Function, NativeLoadGenerator* self, void*) {
  // A null env means the environment is being torn down: nothing to settle.
  if (env == nullptr || self == nullptr) return;
  self->Finish(env);
}

void NativeLoadGenerator::Finish(Napi::Env env) {
  if (!running_ || !generator_) return;
  Napi::HandleScope scope(env);
  generator_->Join();
  Napi::Object result = ResultObject(env, generator_->Result());
  running_ = false;
  done_.Release();
  std::unique_ptr<Napi::Promise::Deferred> deferred = std::move(deferred_);
  Unref();
  deferred->Resolve(result);
}

Napi::Value NativeLoadGenerator::Progress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  bool live = generator_ != nullptr && generator_->started();
  o.Set("total", Napi::Number::New(env, live ? static_cast<double>(generator_->total()) : 0));
  o.Set("completed", Napi::Number::New(env, live ? static_cast<double>(generator_->completed()) : 0));
  o.Set("errors", Napi::Number::New(env, live ? static_cast<double>(generator_->errors()) : 0));
  o.Set("open", Napi::Number::New(env, live ? generator_->open() : 0));
  LoadPhase phase = live ? generator_->phase() : LoadPhase::kDone;
  o.Set("phase", Napi::String::New(env, kPhaseNames[static_cast<int>(phase)]));
  o.Set("running", Napi::Boolean::New(env, running_));
  return o;
}

Napi::Value NativeLoadGenerator::Stop(const Napi::CallbackInfo& info) {
  if (running_ && generator_) generator_->Stop();
  return info.Env().Undefined();
}

}  // namespace acceptpool
