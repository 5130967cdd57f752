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

#include "addon/uv_event_loop.h"
#include "backends/make_backend.h"

namespace acceptpool {
namespace {

constexpr double kMaxSafeInteger = 9007199254740991.0;
constexpr size_t kSlabBytes = 64 * 1024;

napi_value ThrowState(napi_env env, const char* code, const std::string& message) {
  return js::ThrowError(env, code, message);
}

// An integer option within [min, max], or `fallback` when absent.
bool ReadOption(napi_env env, napi_value options, const char* key, double min, double max,
                double fallback, double* out) {
  napi_value v;
  if (!js::GetProperty(env, options, key, &v)) return false;
  napi_valuetype t = js::TypeOf(env, v);
  if (t == napi_undefined || t == napi_null) {
    *out = fallback;
    return true;
  }
  double d;
  if (t != napi_number || !js::GetNumber(env, v, &d)) return false;
  if (!std::isfinite(d) || d < min || d > max || std::floor(d) != d) return false;
  *out = d;
  return true;
}

bool IdFromDouble(double d, SessionId* out) {
  if (!(d >= 0) || d > kMaxSafeInteger || std::floor(d) != d) return false;
  *out = static_cast<SessionId>(d);
  return true;
}

// One call per argument on the hot path: napi_get_value_double fails for
// anything but a number.
bool ReadId(napi_env env, napi_value v, SessionId* out) {
  double d;
  return js::GetNumber(env, v, &d) && IdFromDouble(d, out);
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
bool ReadBytes(napi_env env, napi_value v, const char** data, size_t* size) {
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

napi_value SystemErrorInfo(napi_env env, const Status& st) {
  return js::ObjectBuilder(env)
      .Set("code", SysErrorName(st.sys))
      .Set("errno", static_cast<double>(-st.raw))
      .Set("syscall", st.syscall != nullptr ? st.syscall : "unknown")
      .value();
}

}  // namespace

napi_value NativeServer::Define(napi_env env) {
  const napi_property_descriptor methods[] = {
      js::Method<NativeServer, &NativeServer::Listen>("listen"),
      js::Method<NativeServer, &NativeServer::Connect>("connect"),
      js::Method<NativeServer, &NativeServer::AbortConnect>("abortConnect"),
      js::Method<NativeServer, &NativeServer::Send>("send"),
      js::Method<NativeServer, &NativeServer::CloseSession>("closeSession"),
      js::Method<NativeServer, &NativeServer::Broadcast>("broadcast"),
      js::Method<NativeServer, &NativeServer::BufferedAmount>("bufferedAmount"),
      js::Method<NativeServer, &NativeServer::Shutdown>("shutdown"),
      js::Method<NativeServer, &NativeServer::GetStats>("stats"),
      js::Method<NativeServer, &NativeServer::SetRef>("setRef"),
      js::Method<NativeServer, &NativeServer::Destroy>("destroy"),
      js::Method<NativeServer, &NativeServer::SetGenerationForTesting>("setGenerationForTesting"),
  };
  return js::DefineClass<NativeServer>(env, "NativeServer", methods);
}

NativeServer::NativeServer(napi_env env) : js::Wrapped(env) {}

bool NativeServer::Init(const js::Args& args) {
  napi_env env = env_;
  napi_typedarray_type records_type;
  size_t records_length = 0;
  void* records_data = nullptr;
  if (args.size() < 3 || args.Type(0) != napi_object || args.Type(2) != napi_function ||
      !js::GetTypedArray(env, args[1], &records_type, &records_length, &records_data)) {
    js::ThrowInvalidArg(env, "NativeServer(options, records, onBatch)");
    return false;
  }
  if (records_type != napi_float64_array || records_length < 64) {
    js::ThrowInvalidArg(env, "records must be a Float64Array of at least 64 elements");
    return false;
  }
  napi_value o = args[0];
  double max_connections, pool_size, pool_growth, backlog, hwm, max_queued, accept_batch,
      idle_timeout, shrink_ticks, read_chunk, linger_ticks;
  // src/options.ts validates first; these ranges only keep bad values out
  // of the engine, so reaching one is a facade bug: name the option.
  const char* bad = nullptr;
  auto read = [&](const char* key, double min, double max, double fallback, double* out) {
    if (bad == nullptr && !ReadOption(env, o, key, min, max, fallback, out)) bad = key;
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
    js::ThrowInvalidArg(env, std::string("invalid native server option ") + bad);
    return false;
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
  napi_value no_delay;
  napi_value driver;
  std::string driver_name;
  if (!js::GetProperty(env, o, "noDelay", &no_delay) || !js::GetProperty(env, o, "driver", &driver)) {
    return false;
  }
  bool no_delay_value = true;
  if (js::TypeOf(env, no_delay) == napi_boolean) napi_get_value_bool(env, no_delay, &no_delay_value);
  config_.no_delay = no_delay_value;
  threaded_ = js::TypeOf(env, driver) == napi_string && js::GetString(env, driver, &driver_name) &&
              driver_name == "threaded";

  napi_value resource_name = js::String(env, "acceptpool:batch");
  if (!records_ref_.Set(env, args[1]) || !on_batch_.Set(env, args[2]) || resource_name == nullptr ||
      napi_async_init(env, nullptr, resource_name, &async_context_) != napi_ok) {
    async_context_ = nullptr;
    return false;
  }
  records_capacity_ = records_length / 4;
  records_ = static_cast<double*>(records_data);
  limits_.records = records_capacity_;

  engine_ = std::make_unique<Engine>(config_, MakePlatformBackend());
  Status st = engine_->Init();
  if (!st.ok()) {
    engine_.reset();
    ThrowState(env, SysErrorName(st.sys), std::string("acceptpool: backend init failed: ") + SysErrorName(st.sys));
    return false;
  }
  // A backend without a pollable descriptor (IOCP) can only run threaded.
  if (engine_->PollDescriptor() < 0) threaded_ = true;
  cleanup_.Add(env, &NativeServer::CleanupHook, this);
  return true;
}

NativeServer::~NativeServer() {
  StopAll();
  if (async_context_ != nullptr) napi_async_destroy(env_, async_context_);
}

void NativeServer::CleanupHook(void* self) {
  NativeServer* server = static_cast<NativeServer*>(self);
  // The environment is going away: no reference juggling, just stop the
  // driver (its thread joined, its handles closed) before the env dies.
  server->running_ = false;
  server->StopAll();
}

void NativeServer::StopAll() {
  destroyed_ = true;
  if (running_) {
    running_ = false;
    Release();
  }
  if (driver_) driver_->Stop();
  driver_.reset();
  engine_.reset();
}

napi_value NativeServer::Listen(const js::Args& args) {
  napi_env env = env_;
  if (destroyed_ || !engine_) return ThrowState(env, "ERR_ACCEPTPOOL_SERVER_CLOSED", "server is closed");
  double port;
  std::string host;
  if (args.size() < 2 || !args.IsString(0) || !args.IsNumber(1) || !args.String(0, &host) ||
      !args.Number(1, &port)) {
    return js::ThrowInvalidArg(env, "listen(host: string, port: number)");
  }
  if (!(port >= 0 && port <= 65535) || std::floor(port) != port) {
    return js::ThrowInvalidArg(env, "port must be an integer from 0 to 65535");
  }
  SocketAddress address;
  if (!ParseAddress(host, static_cast<uint16_t>(port), &address)) {
    return js::ThrowInvalidArg(env, "host must be a numeric IPv4 or IPv6 address");
  }
  ListenOptions listen_options = config_.listen;
  listen_options.ipv6_only = args.size() > 2 && args.Truthy(2);
  SocketAddress bound;
  Status st = engine_->Listen(address, listen_options, &bound);
  if (!st.ok()) {
    if (st.code == Code::kSystem) return SystemErrorInfo(env, st);
    return ThrowState(env, "ERR_ACCEPTPOOL_INVALID_STATE", "already listening or shutting down");
  }
  st = EnsureDriver();
  if (!st.ok()) return ThrowState(env, "ERR_ACCEPTPOOL_INTERNAL", "driver failed to start");
  return js::ObjectBuilder(env)
      .Set("address", FormatAddress(bound).c_str())
      .Set("family", bound.family == 6 ? "IPv6" : "IPv4")
      .Set("port", static_cast<double>(bound.port))
      .value();
}

napi_value NativeServer::DataFor(const EventBatch& batch, size_t* base) {
  size_t size = batch.data_used();
  *base = 0;
  napi_value out = nullptr;
  if (size == 0) return js::Undefined(env_);
  if (size > kSlabBytes / 4) {
    void* copy = nullptr;
    return napi_create_buffer_copy(env_, size, batch.data(), &copy, &out) == napi_ok ? out : nullptr;
  }
  if (slab_.empty() || slab_used_ + size > kSlabBytes) {
    void* data = nullptr;
    napi_value slab;
    if (napi_create_buffer(env_, kSlabBytes, &data, &slab) != napi_ok || !slab_.Set(env_, slab)) {
      slab_.Reset();
      return nullptr;
    }
    slab_data_ = static_cast<char*>(data);
    slab_used_ = 0;
  }
  napi_value slab = slab_.Get();
  if (slab == nullptr) return nullptr;
  std::memcpy(slab_data_ + slab_used_, batch.data(), size);
  *base = slab_used_;
  // Keep every batch 8-byte aligned within the slab, like the arena.
  slab_used_ += (size + 7) & ~static_cast<size_t>(7);
  return slab;
}

Status NativeServer::EnsureDriver() {
  if (driver_) return Status::Ok();
  auto deliver = [this](EventBatch& batch) { Deliver(batch); };
  driver_ = threaded_ ? MakeThreadedDriver(engine_.get(), limits_, deliver)
                      : MakeInlineDriver(engine_.get(), limits_, deliver);
  // The handles the driver makes live on Node's loop; this object only
  // makes them.
  std::unique_ptr<EventLoop> loop = MakeNodeEventLoop(env_);
  if (!loop) {
    driver_.reset();
    return Status::Of(Code::kClosed);
  }
  Status st = driver_->Start(loop.get());
  if (!st.ok()) {
    driver_.reset();
    return st;
  }
  // A running endpoint stays alive without JS references, as net.Server
  // does; StopAll() lets go.
  running_ = true;
  Hold();
  return st;
}

// connect(token, host, port, localHost?, localPort?) -> true | {code, errno, syscall}
// for an OS failure | the Code of a library failure (as kConnectFailed
// carries it)
napi_value NativeServer::Connect(const js::Args& args) {
  napi_env env = env_;
  if (destroyed_ || !engine_) return ThrowState(env, "ERR_ACCEPTPOOL_CLIENT_CLOSED", "client is closed");
  double token_value;
  double port;
  std::string host;
  if (args.size() < 3 || !args.IsNumber(0) || !args.IsString(1) || !args.IsNumber(2) ||
      !args.Number(0, &token_value) || !args.String(1, &host) || !args.Number(2, &port)) {
    return js::ThrowInvalidArg(env, "connect(token, host: string, port: number, localHost?, localPort?)");
  }
  if (!(port >= 1 && port <= 65535) || std::floor(port) != port) {
    return js::ThrowInvalidArg(env, "port must be an integer from 1 to 65535");
  }
  SocketAddress remote;
  if (!ParseAddress(host, static_cast<uint16_t>(port), &remote)) {
    return js::ThrowInvalidArg(env, "host must be a numeric IPv4 or IPv6 address");
  }
  SocketAddress local;
  bool has_local = args.size() > 3 && args.IsString(3);
  if (has_local) {
    double local_port = 0;
    std::string local_host;
    if (args.size() > 4 && args.IsNumber(4) && !args.Number(4, &local_port)) return nullptr;
    if (!(local_port >= 0 && local_port <= 65535) || std::floor(local_port) != local_port) {
      return js::ThrowInvalidArg(env, "localPort must be an integer from 0 to 65535");
    }
    if (!args.String(3, &local_host) ||
        !ParseAddress(local_host, static_cast<uint16_t>(local_port), &local)) {
      return js::ThrowInvalidArg(env, "localAddress must be a numeric IPv4 or IPv6 address");
    }
  }
  Status st = EnsureDriver();
  if (!st.ok()) return ThrowState(env, "ERR_ACCEPTPOOL_INTERNAL", "driver failed to start");
  uint32_t token = static_cast<uint32_t>(static_cast<int64_t>(token_value));
  st = driver_->Connect(token, remote, has_local ? &local : nullptr);
  if (st.ok()) return js::Boolean(env, true);
  if (st.code == Code::kSystem) return SystemErrorInfo(env, st);
  return js::Number(env, static_cast<double>(st.code));
}

napi_value NativeServer::AbortConnect(const js::Args& args) {
  double token;
  if (args.size() < 1 || !args.IsNumber(0) || !args.Number(0, &token)) {
    return js::ThrowInvalidArg(env_, "abortConnect(token)");
  }
  if (driver_) driver_->AbortConnect(static_cast<uint32_t>(static_cast<int64_t>(token)));
  return js::Undefined(env_);
}

void NativeServer::Deliver(EventBatch& batch) {
  napi_env env = env_;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) {
    batch.Clear();
    return;
  }
  size_t count = batch.count();
  std::memcpy(records_, batch.records(), count * sizeof(EventRecord));
  size_t base = 0;
  napi_value data = DataFor(batch, &base);
  batch.Clear();
  napi_value args[3] = {js::Number(env, static_cast<double>(count)), data,
                        js::Number(env, static_cast<double>(base))};
  napi_value self = Self();
  napi_value callback = on_batch_.Get();
  napi_value result;
  // Every step can fail once the environment is going away; nobody is left
  // to tell then.
  if (args[0] != nullptr && data != nullptr && args[2] != nullptr && self != nullptr &&
      callback != nullptr &&
      napi_make_callback(env, async_context_, self, callback, 3, args, &result) ==
          napi_pending_exception) {
    // The facade catches handler errors itself; anything else is a bug that
    // must surface as an uncaught exception, not vanish. While the
    // environment is being torn down the exception is the termination
    // itself, and napi_fatal_exception declines (it cannot run JS).
    napi_value error = nullptr;
    if (napi_get_and_clear_last_exception(env, &error) == napi_ok && error != nullptr) {
      napi_fatal_exception(env, error);
    }
  }
  napi_close_handle_scope(env, scope);
}

napi_value NativeServer::Send(const js::Args& args) {
  napi_env env = env_;
  SessionId id;
  const char* data;
  size_t size;
  if (args.size() < 2 || !ReadId(env, args[0], &id)) return js::ThrowInvalidArg(env, "session id must be a non-negative integer");
  if (!ReadBytes(env, args[1], &data, &size)) return js::ThrowInvalidArg(env, "data must be a Buffer, TypedArray, DataView or ArrayBuffer");
  if (!driver_) return js::Number(env, static_cast<double>(SendResult::kStale));
  return js::Number(env, static_cast<double>(driver_->Send(id, data, size)));
}

napi_value NativeServer::CloseSession(const js::Args& args) {
  napi_env env = env_;
  SessionId id;
  if (args.size() < 1 || !ReadId(env, args[0], &id)) return js::ThrowInvalidArg(env, "session id must be a non-negative integer");
  double mode = 0;
  if (args.size() > 1 && args.IsNumber(1) && !args.Number(1, &mode)) return nullptr;
  if (mode != 0 && mode != 1 && mode != 2) return js::ThrowInvalidArg(env, "close mode must be 0, 1 or 2");
  if (!driver_) return js::Boolean(env, false);
  return js::Boolean(env, driver_->Close(id, static_cast<CloseMode>(static_cast<int>(mode))));
}

napi_value NativeServer::Broadcast(const js::Args& args) {
  napi_env env = env_;
  const char* data;
  size_t size;
  if (args.size() < 1 || !ReadBytes(env, args[0], &data, &size)) {
    return js::ThrowInvalidArg(env, "data must be a Buffer, TypedArray, DataView or ArrayBuffer");
  }
  std::vector<SessionId> ids;
  bool all = args.size() < 2 || args.IsAbsent(1);
  if (!all) {
    napi_typedarray_type type;
    size_t length = 0;
    void* list = nullptr;
    if (!js::GetTypedArray(env, args[1], &type, &length, &list) || type != napi_float64_array) {
      return js::ThrowInvalidArg(env, "ids must be a Float64Array");
    }
    ids.reserve(length);
    for (size_t i = 0; i < length; ++i) {
      SessionId id;
      if (!IdFromDouble(static_cast<const double*>(list)[i], &id)) {
        return js::ThrowInvalidArg(env, "every id must be a non-negative integer");
      }
      ids.push_back(id);
    }
  }
  if (!driver_) return js::Number(env, 0);
  uint32_t reached = driver_->Broadcast(data, size, all ? nullptr : ids.data(), ids.size());
  return js::Number(env, reached);
}

napi_value NativeServer::BufferedAmount(const js::Args& args) {
  napi_env env = env_;
  SessionId id;
  if (args.size() < 1 || !ReadId(env, args[0], &id)) return js::ThrowInvalidArg(env, "session id must be a non-negative integer");
  if (!driver_) return js::Number(env, -1);
  return js::Number(env, static_cast<double>(driver_->BufferedAmount(id)));
}

napi_value NativeServer::Shutdown(const js::Args&) {
  if (driver_) driver_->Shutdown();
  return js::Boolean(env_, driver_ != nullptr);
}

napi_value NativeServer::GetStats(const js::Args&) {
  napi_env env = env_;
  Stats s;
  if (driver_) {
    s = driver_->GetStats();
  } else if (engine_) {
    s = engine_->SnapshotStats();
  }
  js::ObjectBuilder o(env);
  auto put = [&](const char* key, uint64_t value) { o.Set(key, static_cast<double>(value)); };
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
    size_t n = std::min(engine_->BackendCounterNames(&names), Stats::kBackendCounters);
    if (n > 0) {
      js::ObjectBuilder counters(env);
      for (size_t i = 0; i < n; ++i) counters.Set(names[i], static_cast<double>(s.backend[i]));
      o.Set("backendCounters", counters.value());
    }
  }
  o.Set("backend", engine_ ? engine_->backend_name() : "none");
  o.Set("driver", threaded_ ? "threaded" : "inline");
  return o.value();
}

napi_value NativeServer::SetRef(const js::Args& args) {
  if (driver_) driver_->SetRef(args.size() > 0 && args.Truthy(0));
  return js::Undefined(env_);
}

// setGenerationForTesting(slot, generation): only for tests of slot
// retirement, which cannot make 2^29 connections. Allowed before listen() or
// the first connect(): the engine has no I/O thread yet, so the table can be
// touched from here.
napi_value NativeServer::SetGenerationForTesting(const js::Args& args) {
  napi_env env = env_;
  if (destroyed_ || !engine_) return ThrowState(env, "ERR_ACCEPTPOOL_SERVER_CLOSED", "server is closed");
  if (driver_) return ThrowState(env, "ERR_ACCEPTPOOL_INVALID_STATE", "only before listen() or connect()");
  double slot;
  double generation;
  if (args.size() < 2 || !args.IsNumber(0) || !args.IsNumber(1) || !args.Number(0, &slot) ||
      !args.Number(1, &generation)) {
    return js::ThrowInvalidArg(env, "setGenerationForTesting(slot, generation)");
  }
  if (!(slot >= 0 && slot < kMaxSlots) || std::floor(slot) != slot || !(generation >= 1) ||
      !(generation < kGenerationLimit) || std::floor(generation) != generation ||
      !engine_->SetGenerationForTesting(static_cast<uint32_t>(slot), static_cast<uint32_t>(generation))) {
    return js::ThrowInvalidArg(env, "slot must be a free slot below the slot limit and generation from 1 to 2^29 - 1");
  }
  return js::Undefined(env);
}

napi_value NativeServer::Destroy(const js::Args&) {
  StopAll();
  return js::Undefined(env_);
}

}  // namespace acceptpool
