#include "addon/native_server.h"

#if defined(_WIN32)
#include <winsock2.h>
#include <ws2tcpip.h>
#include <iphlpapi.h>
#else
#include <arpa/inet.h>
#include <net/if.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backends/make_backend.h"

namespace acceptpool {
namespace {

constexpr double kMaxSafeInteger = 9007199254740991.0;
constexpr size_t kSlabBytes = 64 * 1024;

Napi::Value ThrowInvalid(Napi::Env env, const std::string& message) {
  Napi::TypeError error = Napi::TypeError::New(env, message);
  error.Set("code", Napi::String::New(env, "ERR_ACCEPTPOOL_INVALID_ARG"));
  error.ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value ThrowState(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  error.ThrowAsJavaScriptException();
  return env.Undefined();
}

// An integer option within [min, max], or `fallback` when absent.
bool ReadOption(Napi::Object options, const char* key, double min, double max, double fallback,
                double* out) {
  Napi::Value v = options.Get(key);
  if (v.IsUndefined() || v.IsNull()) {
    *out = fallback;
    return true;
  }
  if (!v.IsNumber()) return false;
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d < min || d > max || std::floor(d) != d) return false;
  *out = d;
  return true;
}

// The hot-path readers use raw Node-API calls: one call per argument
// instead of node-addon-api's type check plus accessor per property.
bool ReadId(Napi::Value v, SessionId* out) {
  double d;
  if (napi_get_value_double(v.Env(), v, &d) != napi_ok) return false;
  if (!(d >= 0) || d > kMaxSafeInteger || std::floor(d) != d) return false;
  *out = static_cast<SessionId>(d);
  return true;
}

size_t ElementBytes(napi_typedarray_type type) {
  switch (type) {
    case napi_int8_array:
    case napi_uint8_array:
    case napi_uint8_clamped_array:
      return 1;
    case napi_int16_array:
    case napi_uint16_array:
      return 2;
    case napi_int32_array:
    case napi_uint32_array:
    case napi_float32_array:
      return 4;
    default:
      return 8;
  }
}

// Bytes of a Buffer / TypedArray / DataView / ArrayBuffer.
bool ReadBytes(Napi::Value v, const char** data, size_t* size) {
  napi_env env = v.Env();
  bool is = false;
  void* base = nullptr;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type type;
    size_t length;
    if (napi_get_typedarray_info(env, v, &type, &length, &base, nullptr, nullptr) != napi_ok) return false;
    *size = length * ElementBytes(type);
  } else if (napi_is_dataview(env, v, &is) == napi_ok && is) {
    if (napi_get_dataview_info(env, v, size, &base, nullptr, nullptr) != napi_ok) return false;
  } else if (napi_is_arraybuffer(env, v, &is) == napi_ok && is) {
    if (napi_get_arraybuffer_info(env, v, &base, size) != napi_ok) return false;
  } else {
    return false;
  }
  // A zero-length view may have no backing store at all.
  *data = base != nullptr ? static_cast<const char*>(base) : "";
  return true;
}

bool ParseAddress(const std::string& host, uint16_t port, SocketAddress* out) {
  out->port = port;
  if (inet_pton(AF_INET, host.c_str(), out->addr) == 1) {
    out->family = 4;
    return true;
  }
  std::string ip = host;
  size_t pct = ip.find('%');
  if (pct != std::string::npos) {
    std::string zone = ip.substr(pct + 1);
    out->scope_id = if_nametoindex(zone.c_str());
    if (out->scope_id == 0) out->scope_id = static_cast<uint32_t>(std::strtoul(zone.c_str(), nullptr, 10));
    ip = ip.substr(0, pct);
  }
  if (inet_pton(AF_INET6, ip.c_str(), out->addr) == 1) {
    out->family = 6;
    return true;
  }
  return false;
}

std::string FormatAddress(const SocketAddress& a) {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(a.family == 6 ? AF_INET6 : AF_INET, a.addr, text, sizeof(text));
  return text;
}

Napi::Object SystemErrorInfo(Napi::Env env, const Status& st) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("code", Napi::String::New(env, SysErrorName(st.sys)));
  o.Set("errno", Napi::Number::New(env, -st.raw));
  o.Set("syscall", Napi::String::New(env, st.syscall != nullptr ? st.syscall : "unknown"));
  return o;
}

}  // namespace

Napi::Function NativeServer::Define(Napi::Env env) {
  return DefineClass(env, "NativeServer",
                     {
                         InstanceMethod<&NativeServer::Listen>("listen"),
                         InstanceMethod<&NativeServer::Connect>("connect"),
                         InstanceMethod<&NativeServer::AbortConnect>("abortConnect"),
                         InstanceMethod<&NativeServer::Send>("send"),
                         InstanceMethod<&NativeServer::CloseSession>("closeSession"),
                         InstanceMethod<&NativeServer::Broadcast>("broadcast"),
                         InstanceMethod<&NativeServer::BufferedAmount>("bufferedAmount"),
                         InstanceMethod<&NativeServer::Shutdown>("shutdown"),
                         InstanceMethod<&NativeServer::GetStats>("stats"),
                         InstanceMethod<&NativeServer::SetRef>("setRef"),
                         InstanceMethod<&NativeServer::Destroy>("destroy"),
                         InstanceMethod<&NativeServer::SetGenerationForTesting>(
                             "setGenerationForTesting"),
                     });
}

NativeServer::NativeServer(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<NativeServer>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsObject() || !info[1].IsTypedArray() ||
      !info[2].IsFunction()) {
    ThrowInvalid(env, "NativeServer(options, records, onBatch)");
    return;
  }
  Napi::TypedArray records = info[1].As<Napi::TypedArray>();
  if (records.TypedArrayType() != napi_float64_array || records.ElementLength() < 64) {
    ThrowInvalid(env, "records must be a Float64Array of at least 64 elements");
    return;
  }
  Napi::Object o = info[0].As<Napi::Object>();
  double max_connections, pool_size, pool_growth, backlog, hwm, max_queued, accept_batch,
      idle_timeout, shrink_ticks, read_chunk, linger_ticks;
  // src/options.ts validates first; these ranges only keep bad values out
  // of the engine, so reaching one is a facade bug: name the option.
  const char* bad = nullptr;
  auto read = [&](const char* key, double min, double max, double fallback, double* out) {
    if (bad == nullptr && !ReadOption(o, key, min, max, fallback, out)) bad = key;
  };
  read("maxConnections", 1, kMaxSlots, 1 << 20, &max_connections);
  read("poolSize", 1, kMaxSlots, 1024, &pool_size);
  read("poolGrowth", 1, kMaxSlots, 1024, &pool_growth);
  read("backlog", 1, 65535, 511, &backlog);
  read("highWaterMark", 0, 1u << 30, 64 * 1024, &hwm);
  read("maxQueuedBytes", 1, 1u << 30, 4 * 1024 * 1024, &max_queued);
  read("acceptBatch", 1, 65536, 128, &accept_batch);
  read("idleTimeoutSeconds", 0, 1u << 30, 0, &idle_timeout);
  read("shrinkDelaySeconds", 0, 1u << 30, 30, &shrink_ticks);
  read("readChunk", 1024, 1 << 20, 64 * 1024, &read_chunk);
  read("closeLingerSeconds", 0, 1u << 30, config_.close_linger_ticks, &linger_ticks);
  if (bad != nullptr) {
    ThrowInvalid(env, std::string("invalid native server option ") + bad);
    return;
  }
  config_.pool.max_sessions = static_cast<uint32_t>(max_connections);
  config_.pool.initial = static_cast<uint32_t>(pool_size);
  config_.pool.chunk = static_cast<uint32_t>(pool_growth);
  config_.pool.low_water = std::max<uint32_t>(1, config_.pool.chunk / 16);
  config_.pool.shrink_idle_ticks = static_cast<uint32_t>(shrink_ticks);
  config_.listen.backlog = static_cast<int>(backlog);
  config_.high_water_mark = static_cast<size_t>(hwm);
  config_.max_queued_bytes = static_cast<size_t>(max_queued);
  config_.accept_batch = static_cast<uint32_t>(accept_batch);
  config_.idle_timeout_ticks = static_cast<uint32_t>(idle_timeout);
  config_.read_chunk = static_cast<size_t>(read_chunk);
  config_.close_linger_ticks = static_cast<uint32_t>(linger_ticks);
  config_.no_delay = !o.Get("noDelay").IsBoolean() || o.Get("noDelay").As<Napi::Boolean>().Value();
  threaded_ = o.Get("driver").IsString() &&
              o.Get("driver").As<Napi::String>().Utf8Value() == "threaded";

  records_capacity_ = records.ElementLength() / 4;
  records_ = reinterpret_cast<double*>(static_cast<char*>(records.ArrayBuffer().Data()) +
                                       records.ByteOffset());
  records_ref_ = Napi::Reference<Napi::Float64Array>::New(records.As<Napi::Float64Array>(), 1);
  on_batch_ = Napi::Persistent(info[2].As<Napi::Function>());
  async_context_ = std::make_unique<Napi::AsyncContext>(env, "acceptpool:batch");
  limits_.records = records_capacity_;

  engine_ = std::make_unique<Engine>(config_, MakePlatformBackend());
  Status st = engine_->Init();
  if (!st.ok()) {
    Napi::Object e = SystemErrorInfo(env, st);
    ThrowState(env, e.Get("code").As<Napi::String>().Utf8Value().c_str(),
               std::string("acceptpool: backend init failed: ") + SysErrorName(st.sys));
    engine_.reset();
    return;
  }
  // A backend without a pollable descriptor (IOCP) can only run threaded.
  if (engine_->backend().PollDescriptor() < 0) threaded_ = true;
  napi_add_env_cleanup_hook(env, &NativeServer::CleanupHook, this);
  hook_added_ = true;
}

NativeServer::~NativeServer() {
  StopAll();
  if (hook_added_) napi_remove_env_cleanup_hook(env_, &NativeServer::CleanupHook, this);
}

void NativeServer::CleanupHook(void* self) {
  NativeServer* server = static_cast<NativeServer*>(self);
  server->hook_added_ = false;
  // The environment is going away: no reference juggling, just stop.
  server->running_ = false;
  server->StopAll();
}

void NativeServer::StopAll() {
  destroyed_ = true;
  if (running_) {
    running_ = false;
    Unref();
  }
  if (driver_) driver_->Stop();
  driver_.reset();
  engine_.reset();
}

Napi::Value NativeServer::Listen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (destroyed_ || !engine_) return ThrowState(env, "ERR_ACCEPTPOOL_SERVER_CLOSED", "server is closed");
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber()) {
    return ThrowInvalid(env, "listen(host: string, port: number)");
  }
  double port = info[1].As<Napi::Number>().DoubleValue();
  if (!(port >= 0 && port <= 65535) || std::floor(port) != port) {
    return ThrowInvalid(env, "port must be an integer from 0 to 65535");
  }
  SocketAddress address;
  if (!ParseAddress(info[0].As<Napi::String>().Utf8Value(), static_cast<uint16_t>(port), &address)) {
    return ThrowInvalid(env, "host must be a numeric IPv4 or IPv6 address");
  }
  ListenOptions listen_options = config_.listen;
  listen_options.ipv6_only = info.Length() > 2 && info[2].ToBoolean().Value();
  SocketAddress bound;
  Status st = engine_->Listen(address, listen_options, &bound);
  if (!st.ok()) {
    if (st.code == Code::kSystem) return SystemErrorInfo(env, st);
    return ThrowState(env, "ERR_ACCEPTPOOL_INVALID_STATE", "already listening or shutting down");
  }
  st = EnsureDriver();
  if (!st.ok()) return ThrowState(env, "ERR_ACCEPTPOOL_INTERNAL", "driver failed to start");
  Napi::Object result = Napi::Object::New(env);
  result.Set("address", Napi::String::New(env, FormatAddress(bound)));
  result.Set("family", Napi::String::New(env, bound.family == 6 ? "IPv6" : "IPv4"));
  result.Set("port", Napi::Number::New(env, bound.port));
  return result;
}

// Raw Node-API here, with every status checked: during environment teardown
// these calls fail (JS can no longer run), and node-addon-api would turn the
// failure into a fatal error instead of a quiet no-op.
napi_value NativeServer::DataFor(const EventBatch& batch, size_t* base) {
  size_t size = batch.data_used();
  *base = 0;
  napi_value out = nullptr;
  if (size == 0) return napi_get_undefined(env_, &out) == napi_ok ? out : nullptr;
  if (size > kSlabBytes / 4) {
    void* copy = nullptr;
    return napi_create_buffer_copy(env_, size, batch.data(), &copy, &out) == napi_ok ? out : nullptr;
  }
  if (slab_.IsEmpty() || slab_used_ + size > kSlabBytes) {
    void* data = nullptr;
    napi_value slab;
    if (napi_create_buffer(env_, kSlabBytes, &data, &slab) != napi_ok) return nullptr;
    slab_data_ = static_cast<char*>(data);
    slab_used_ = 0;
    slab_.Reset(Napi::Buffer<char>(env_, slab), 1);
  }
  std::memcpy(slab_data_ + slab_used_, batch.data(), size);
  *base = slab_used_;
  // Keep every batch 8-byte aligned within the slab, like the arena.
  slab_used_ += (size + 7) & ~static_cast<size_t>(7);
  return slab_.Value();
}

Status NativeServer::EnsureDriver() {
  if (driver_) return Status::Ok();
  auto deliver = [this](EventBatch& batch) { Deliver(batch); };
  driver_ = threaded_ ? MakeThreadedDriver(engine_.get(), limits_, deliver)
                      : MakeInlineDriver(engine_.get(), limits_, deliver);
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env_, &loop);
  Status st = driver_->Start(loop);
  if (!st.ok()) {
    driver_.reset();
    return st;
  }
  // A running endpoint stays alive without JS references, as net.Server
  // does; StopAll() lets go.
  running_ = true;
  Ref();
  return st;
}

// connect(token, host, port, localHost?, localPort?) -> true | {code, errno, syscall}
// for an OS failure | the Code of a library failure (as kConnectFailed
// carries it)
Napi::Value NativeServer::Connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (destroyed_ || !engine_) return ThrowState(env, "ERR_ACCEPTPOOL_CLIENT_CLOSED", "client is closed");
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsString() || !info[2].IsNumber()) {
    return ThrowInvalid(env, "connect(token, host: string, port: number, localHost?, localPort?)");
  }
  double port = info[2].As<Napi::Number>().DoubleValue();
  if (!(port >= 1 && port <= 65535) || std::floor(port) != port) {
    return ThrowInvalid(env, "port must be an integer from 1 to 65535");
  }
  SocketAddress remote;
  if (!ParseAddress(info[1].As<Napi::String>().Utf8Value(), static_cast<uint16_t>(port), &remote)) {
    return ThrowInvalid(env, "host must be a numeric IPv4 or IPv6 address");
  }
  SocketAddress local;
  bool has_local = info.Length() > 3 && info[3].IsString();
  if (has_local) {
    double local_port = info.Length() > 4 && info[4].IsNumber() ? info[4].As<Napi::Number>().DoubleValue() : 0;
    if (!(local_port >= 0 && local_port <= 65535) || std::floor(local_port) != local_port) {
      return ThrowInvalid(env, "localPort must be an integer from 0 to 65535");
    }
    if (!ParseAddress(info[3].As<Napi::String>().Utf8Value(), static_cast<uint16_t>(local_port), &local)) {
      return ThrowInvalid(env, "localAddress must be a numeric IPv4 or IPv6 address");
    }
  }
  Status st = EnsureDriver();
  if (!st.ok()) return ThrowState(env, "ERR_ACCEPTPOOL_INTERNAL", "driver failed to start");
  uint32_t token = static_cast<uint32_t>(info[0].As<Napi::Number>().Int64Value());
  st = driver_->Connect(token, remote, has_local ? &local : nullptr);
  if (st.ok()) return Napi::Boolean::New(env, true);
  if (st.code == Code::kSystem) return SystemErrorInfo(env, st);
  return Napi::Number::New(env, static_cast<double>(st.code));
}

Napi::Value NativeServer::AbortConnect(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) return ThrowInvalid(info.Env(), "abortConnect(token)");
  if (driver_) driver_->AbortConnect(static_cast<uint32_t>(info[0].As<Napi::Number>().Int64Value()));
  return info.Env().Undefined();
}

void NativeServer::Deliver(EventBatch& batch) {
  Napi::Env env = env_;
  Napi::HandleScope scope(env);
  size_t count = batch.count();
  std::memcpy(records_, batch.records(), count * sizeof(EventRecord));
  size_t base = 0;
  napi_value data = DataFor(batch, &base);
  batch.Clear();
  napi_value args[3];
  if (data == nullptr || napi_create_double(env, static_cast<double>(count), &args[0]) != napi_ok ||
      napi_create_double(env, static_cast<double>(base), &args[2]) != napi_ok) {
    return;  // the environment is going away; nobody is left to tell
  }
  args[1] = data;
  napi_value result;
  napi_status st = napi_make_callback(env, *async_context_, Value(), on_batch_.Value(), 3, args, &result);
  if (st != napi_ok && st != napi_pending_exception) return;
  if (env.IsExceptionPending()) {
    // The facade catches handler errors itself; anything else is a bug that
    // must surface as an uncaught exception, not vanish.
    Napi::Error error = env.GetAndClearPendingException();
    napi_fatal_exception(env, error.Value());
  }
}

Napi::Value NativeServer::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SessionId id;
  const char* data;
  size_t size;
  if (info.Length() < 2 || !ReadId(info[0], &id)) return ThrowInvalid(env, "session id must be a non-negative integer");
  if (!ReadBytes(info[1], &data, &size)) return ThrowInvalid(env, "data must be a Buffer, TypedArray, DataView or ArrayBuffer");
  if (!driver_) return Napi::Number::New(env, static_cast<double>(SendResult::kStale));
  return Napi::Number::New(env, static_cast<double>(driver_->Send(id, data, size)));
}

Napi::Value NativeServer::CloseSession(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SessionId id;
  if (info.Length() < 1 || !ReadId(info[0], &id)) return ThrowInvalid(env, "session id must be a non-negative integer");
  double mode = 0;
  if (info.Length() > 1 && info[1].IsNumber()) mode = info[1].As<Napi::Number>().DoubleValue();
  if (mode != 0 && mode != 1 && mode != 2) return ThrowInvalid(env, "close mode must be 0, 1 or 2");
  if (!driver_) return Napi::Boolean::New(env, false);
  return Napi::Boolean::New(env, driver_->Close(id, static_cast<CloseMode>(static_cast<int>(mode))));
}

Napi::Value NativeServer::Broadcast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* data;
  size_t size;
  if (info.Length() < 1 || !ReadBytes(info[0], &data, &size)) {
    return ThrowInvalid(env, "data must be a Buffer, TypedArray, DataView or ArrayBuffer");
  }
  std::vector<SessionId> ids;
  bool all = info.Length() < 2 || info[1].IsUndefined() || info[1].IsNull();
  if (!all) {
    if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
      return ThrowInvalid(env, "ids must be a Float64Array");
    }
    Napi::Float64Array list = info[1].As<Napi::Float64Array>();
    ids.reserve(list.ElementLength());
    for (size_t i = 0; i < list.ElementLength(); ++i) {
      SessionId id;
      if (!ReadId(Napi::Number::New(env, list[i]), &id)) return ThrowInvalid(env, "every id must be a non-negative integer");
      ids.push_back(id);
    }
  }
  if (!driver_) return Napi::Number::New(env, 0);
  uint32_t reached = driver_->Broadcast(data, size, all ? nullptr : ids.data(), ids.size());
  return Napi::Number::New(env, reached);
}

Napi::Value NativeServer::BufferedAmount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SessionId id;
  if (info.Length() < 1 || !ReadId(info[0], &id)) return ThrowInvalid(env, "session id must be a non-negative integer");
  if (!driver_) return Napi::Number::New(env, -1);
  return Napi::Number::New(env, static_cast<double>(driver_->BufferedAmount(id)));
}

Napi::Value NativeServer::Shutdown(const Napi::CallbackInfo& info) {
  if (driver_) driver_->Shutdown();
  return Napi::Boolean::New(info.Env(), driver_ != nullptr);
}

Napi::Value NativeServer::GetStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Stats s;
  if (driver_) {
    s = driver_->GetStats();
  } else if (engine_) {
    s = engine_->SnapshotStats();
  }
  Napi::Object o = Napi::Object::New(env);
  auto put = [&](const char* key, uint64_t value) {
    o.Set(key, Napi::Number::New(env, static_cast<double>(value)));
  };
  put("poolSize", s.pool_size);
  put("poolFree", s.pool_free);
  put("inUse", s.in_use);
  put("retiredSlots", s.retired_slots);
  put("peakInUse", s.peak_in_use);
  put("growths", s.growths);
  put("shrinks", s.shrinks);
  put("accepts", s.accepts);
  put("connects", s.connects);
  put("connectErrors", s.connect_errors);
  put("acceptErrors", s.accept_errors);
  put("acceptAborts", s.accept_aborts);
  put("emfile", s.emfile);
  put("shed", s.shed);
  put("acceptPauses", s.accept_pauses);
  put("staleCommands", s.stale_commands);
  put("overflows", s.overflows);
  put("timeouts", s.timeouts);
  put("bytesIn", s.bytes_in);
  put("bytesOut", s.bytes_out);
  put("sendBlocks", s.send_blocks);
  put("lingers", s.lingers);
  put("lingerEnds", s.linger_ends);
  put("lingerTimeouts", s.linger_timeouts);
  put("bytesDiscarded", s.bytes_discarded);
  if (engine_) {
    const char* const* names = nullptr;
    size_t n = std::min(engine_->backend().CounterNames(&names), Stats::kBackendCounters);
    if (n > 0) {
      Napi::Object counters = Napi::Object::New(env);
      for (size_t i = 0; i < n; ++i) {
        counters.Set(names[i], Napi::Number::New(env, static_cast<double>(s.backend[i])));
      }
      o.Set("backendCounters", counters);
    }
  }
  o.Set("backend", Napi::String::New(env, engine_ ? engine_->backend().name() : "none"));
  o.Set("driver", Napi::String::New(env, threaded_ ? "threaded" : "inline"));
  return o;
}

Napi::Value NativeServer::SetRef(const Napi::CallbackInfo& info) {
  if (driver_) driver_->SetRef(info.Length() > 0 && info[0].ToBoolean().Value());
  return info.Env().Undefined();
}

// setGenerationForTesting(slot, generation): only for tests of slot
// retirement, which cannot make 2^29 connections. Allowed before listen() or
// the first connect(): the engine has no I/O thread yet, so the table can be
// touched from here.
Napi::Value NativeServer::SetGenerationForTesting(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (destroyed_ || !engine_) return ThrowState(env, "ERR_ACCEPTPOOL_SERVER_CLOSED", "server is closed");
  if (driver_) return ThrowState(env, "ERR_ACCEPTPOOL_INVALID_STATE", "only before listen() or connect()");
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    return ThrowInvalid(env, "setGenerationForTesting(slot, generation)");
  }
  double slot = info[0].As<Napi::Number>().DoubleValue();
  double generation = info[1].As<Napi::Number>().DoubleValue();
  if (!(slot >= 0 && slot < kMaxSlots) || std::floor(slot) != slot || !(generation >= 1) ||
      !(generation < kGenerationLimit) || std::floor(generation) != generation ||
      !engine_->SetGenerationForTesting(static_cast<uint32_t>(slot), static_cast<uint32_t>(generation))) {
    return ThrowInvalid(env, "slot must be a free slot below the slot limit and generation from 1 to 2^29 - 1");
  }
  return env.Undefined();
}

Napi::Value NativeServer::Destroy(const Napi::CallbackInfo& info) {
  StopAll();
  return info.Env().Undefined();
}

}  // namespace acceptpool
