#include "addon/native_load_generator.h"

#include <cstdint>
#include <limits>
#include <string>

#include "addon/backend_choice.h"
#include "addon/uv_event_loop.h"

namespace acceptpool {
namespace {

#define ACCEPTPOOL_PHASE_NAME(name, text) text,
const char* const kPhaseNames[] = {ACCEPTPOOL_LOAD_PHASES(ACCEPTPOOL_PHASE_NAME)};
#undef ACCEPTPOOL_PHASE_NAME

constexpr double kLoadModes = (0 ACCEPTPOOL_LOAD_MODES(ACCEPTPOOL_COUNT_ENTRY));

// Milliseconds as microseconds, any that int64 microseconds hold.
int64_t Micros(js::OptionReader& read, const char* key) {
  constexpr int64_t kMaxMs = std::numeric_limits<int64_t>::max() / 1000;
  return static_cast<int64_t>(read.Integer(key, 0, static_cast<double>(kMaxMs))) * 1000;
}

SocketAddress Ipv4(uint32_t v, uint16_t port) {
  SocketAddress a;
  a.family = 4;
  a.addr[0] = static_cast<uint8_t>(v >> 24);
  a.addr[1] = static_cast<uint8_t>(v >> 16);
  a.addr[2] = static_cast<uint8_t>(v >> 8);
  a.addr[3] = static_cast<uint8_t>(v);
  a.port = port;
  return a;
}

napi_value ResultObject(napi_env env, const LoadResult& r) {
  const LoadCounters& c = r.totals;
  js::ObjectBuilder errors(env);
  for (size_t i = 0; i < static_cast<size_t>(SysError::kCount); ++i) {
    if (c.errors[i] > 0)
      errors.Set(SysErrorName(static_cast<SysError>(i)), static_cast<double>(c.errors[i]));
  }
  if (c.mismatches > 0) errors.Set("mismatch", static_cast<double>(c.mismatches));
  if (c.eofs > 0) errors.Set("eof", static_cast<double>(c.eofs));
  if (c.timeouts > 0) errors.Set("timeout", static_cast<double>(c.timeouts));
  napi_value latency = js::ObjectBuilder(env)
                           .Set("count", static_cast<double>(c.latency.count()))
                           .Set("mean", c.latency.mean())
                           .Set("p50", static_cast<double>(c.latency.Percentile(0.5)))
                           .Set("p90", static_cast<double>(c.latency.Percentile(0.9)))
                           .Set("p99", static_cast<double>(c.latency.Percentile(0.99)))
                           .Set("p999", static_cast<double>(c.latency.Percentile(0.999)))
                           .Set("max", static_cast<double>(c.latency.max()))
                           .value();
  return js::ObjectBuilder(env)
      .Set("threads", static_cast<double>(r.threads))
      .Set("connections", static_cast<double>(r.lanes))
      .Set("rate", r.rate)
      .Set("completed", static_cast<double>(c.completed))
      .Set("total", static_cast<double>(c.total))
      .Set("connects", static_cast<double>(c.connects))
      .Set("connected", static_cast<double>(c.connected))
      .Set("abandoned", static_cast<double>(c.abandoned))
      .Set("peakOpen", static_cast<double>(c.peak_open))
      .Set("windowMs", static_cast<double>(c.window_us) / 1000.0)
      .Set("rampMs", static_cast<double>(c.ramp_us) / 1000.0)
      .Set("bytesIn", static_cast<double>(c.bytes_in))
      .Set("bytesOut", static_cast<double>(c.bytes_out))
      .Set("errorCount", static_cast<double>(c.ErrorTotal()))
      .Set("errors", errors.value())
      .Set("latencyUs", latency)
      .value();
}

}  // namespace

napi_value NativeLoadGenerator::Define(napi_env env) {
  const napi_property_descriptor methods[] = {
      js::Method<NativeLoadGenerator, &NativeLoadGenerator::Start>("start"),
      js::Method<NativeLoadGenerator, &NativeLoadGenerator::Progress>("progress"),
      js::Method<NativeLoadGenerator, &NativeLoadGenerator::Stop>("stop"),
  };
  return js::DefineClass<NativeLoadGenerator>(env, "NativeLoadGenerator", methods);
}

NativeLoadGenerator::NativeLoadGenerator(napi_env env) : js::Wrapped(env) {}

bool NativeLoadGenerator::Init(const js::Args&) {
  return cleanup_.Add(env_, &NativeLoadGenerator::CleanupHook, this);
}

NativeLoadGenerator::~NativeLoadGenerator() { Abandon(); }

void NativeLoadGenerator::CleanupHook(void* self) {
  static_cast<NativeLoadGenerator*>(self)->Abandon();
}

void NativeLoadGenerator::Abandon() {
  if (generator_) {
    generator_->Stop();
    generator_->Join();
  }
  done_.reset();
  generator_.reset();
  // An unsettled promise is left to the environment (settling it would run JS).
  deferred_ = nullptr;
  running_ = false;
}

// start({ mode, remote, port, firstSource, sources, connections, threads,
//         messageSize, durationMs, warmupMs, rampTimeoutMs, timeoutMs,
//         retryDelayMs, maxConnecting, proxyHeader }) -> Promise<result>
napi_value NativeLoadGenerator::Start(const js::Args& args) {
  napi_env env = env_;
  if (running_)
    return js::ThrowError(env, "ERR_ACCEPTPOOL_INVALID_STATE",
                          "a load generator run is already in progress");
  if (args.size() < 1 || args.Type(0) != napi_object)
    return js::ThrowInvalidArg(env, "start(options: object)");
  // Every option, complete: its default and range are src/options.ts's.
  // What the generator itself cannot run with (no lanes, too many threads,
  // an oversized message) it refuses in Start().
  js::OptionReader read(env, args[0], "load generator");
  LoadConfig config;
  config.mode = static_cast<LoadMode>(read.Integer("mode", 0, kLoadModes - 1));
  uint32_t remote = read.Whole<uint32_t>("remote");
  config.remote = Ipv4(remote, read.Whole<uint16_t>("port"));
  config.first_source = Ipv4(read.Whole<uint32_t>("firstSource"), 0);
  config.sources = read.Whole<uint32_t>("sources");
  config.threads = read.Whole<uint32_t>("threads");
  config.connections = read.Whole<uint32_t>("connections");
  config.message_size = read.Whole<uint32_t>("messageSize");
  config.duration_us = Micros(read, "durationMs");
  config.warmup_us = Micros(read, "warmupMs");
  config.ramp_timeout_us = Micros(read, "rampTimeoutMs");
  config.op_timeout_us = Micros(read, "timeoutMs");
  config.retry_delay_us = Micros(read, "retryDelayMs");
  config.max_connecting = read.Whole<uint32_t>("maxConnecting");
  config.proxy_v2 = read.Boolean("proxyHeader");
  if (!read.Check()) return nullptr;

  // The generator is a client of the engine on the platform's default
  // backend, whatever the servers it drives run: one client for every
  // column of a bench (not 'auto', which prefers io_uring where it runs).
  const BackendChoice* backend = nullptr;
  std::string why;
  if (!ChooseBackend(DefaultBackend(), &backend, &why).ok()) {
    return js::ThrowError(env, "ERR_ACCEPTPOOL_UNSUPPORTED",
                          "load generator: no backend can run here: " + why);
  }

  std::unique_ptr<EventLoop> loop = MakeNodeEventLoop(env);
  if (!loop ||
      !loop->NewAsync([](void* self) { static_cast<NativeLoadGenerator*>(self)->Finish(); }, this,
                      &done_)
           .ok()) {
    done_.reset();
    return js::ThrowError(env, "ERR_ACCEPTPOOL_INTERNAL", "load generator: no event loop");
  }
  generator_ = std::make_unique<LoadGenerator>(config);
  LoopAsync* done = done_.get();
  Status st = generator_->Start(backend->make, [done] { done->Send(); });
  if (!st.ok()) {
    generator_.reset();
    done_.reset();
    napi_value error = js::NewError(
        env, st.code == Code::kSystem ? SysErrorName(st.sys) : "ERR_ACCEPTPOOL_INVALID_ARG",
        std::string("load generator failed to start: ") +
            (st.code == Code::kSystem ? SysErrorName(st.sys) : "invalid configuration"));
    napi_value err_no = js::Number(env, static_cast<double>(-st.raw));
    napi_value syscall = js::String(env, st.syscall != nullptr ? st.syscall : "start");
    if (error == nullptr || err_no == nullptr || syscall == nullptr ||
        napi_set_named_property(env, error, "errno", err_no) != napi_ok ||
        napi_set_named_property(env, error, "syscall", syscall) != napi_ok) {
      return nullptr;
    }
    return js::Throw(env, error);
  }
  napi_value promise = nullptr;
  if (napi_create_promise(env, &deferred_, &promise) != napi_ok) {
    Abandon();
    return nullptr;
  }
  running_ = true;
  // Stay alive while the threads run, even with no JS reference left.
  Hold();
  return promise;
}

void NativeLoadGenerator::Finish() {
  if (!running_ || !generator_ || deferred_ == nullptr) return;
  generator_->Join();
  running_ = false;
  // The handle is closed from its own callback, which libuv allows.
  done_.reset();
  napi_deferred deferred = deferred_;
  deferred_ = nullptr;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env_, &scope) == napi_ok) {
    napi_value result = ResultObject(env_, generator_->Result());
    if (result != nullptr) napi_resolve_deferred(env_, deferred, result);
    napi_close_handle_scope(env_, scope);
  }
  Release();
}

napi_value NativeLoadGenerator::Progress(const js::Args&) {
  bool live = generator_ != nullptr && generator_->started();
  LoadPhase phase = live ? generator_->phase() : LoadPhase::kDone;
  return js::ObjectBuilder(env_)
      .Set("total", live ? static_cast<double>(generator_->total()) : 0.0)
      .Set("completed", live ? static_cast<double>(generator_->completed()) : 0.0)
      .Set("errors", live ? static_cast<double>(generator_->errors()) : 0.0)
      .Set("open", live ? static_cast<double>(generator_->open()) : 0.0)
      .Set("phase", kPhaseNames[static_cast<int>(phase)])
      .Set("running", js::Boolean(env_, running_))
      .value();
}

napi_value NativeLoadGenerator::Stop(const js::Args&) {
  if (running_ && generator_) generator_->Stop();
  return js::Undefined(env_);
}

}  // namespace acceptpool
