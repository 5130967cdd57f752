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

#include "addon/backend_choice.h"
#include "addon/uv_event_loop.h"

namespace acceptpool {
namespace {

constexpr double kMaxSafeInteger = 9007199254740991.0;
constexpr size_t kSlabBytes = 64 * 1024;

napi_value ThrowState(napi_env env, const char* code, const std::string& message) {
  return js::ThrowError(env, code, message);
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
    case napi_uint8_clamped_array: return 1;
    case napi_int16_array:
    case napi_uint16_array: return 2;
    case napi_int32_array:
    case napi_uint32_array:
    case napi_float32_array: return 4;
    default: return 8;
  }
}

// Bytes of a Buffer / TypedArray / DataView / ArrayBuffer.
bool ReadBytes(napi_env env, napi_value v, const char** data, size_t* size) {
  bool is = false;
  void* base = nullptr;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type type;
    size_t length;
    if (napi_get_typedarray_info(env, v, &type, &length, &base, nullptr, nullptr) != napi_ok)
      return false;
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
    if (out->scope_id == 0)
      out->scope_id = static_cast<uint32_t>(std::strtoul(zone.c_str(), nullptr, 10));
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

// The address of args[host_at] (a numeric IP) and args[port_at] (an integer
// from min_port to 65535; when absent, 0 if min_port allows it), or false
// after throwing for the one that is bad, by the name JS knows it by.
bool ReadAddress(const js::Args& args, size_t host_at, const char* host_name, size_t port_at,
                 const char* port_name, double min_port, SocketAddress* out) {
  double port = 0;
  bool bad = args.IsAbsent(port_at)
                 ? min_port > 0
                 : !args.IsNumber(port_at) || !args.Number(port_at, &port) ||
                       !(port >= min_port && port <= 65535) || std::floor(port) != port;
  if (bad) {
    js::ThrowInvalidArg(args.env(), std::string(port_name) + " must be an integer from " +
                                        std::to_string(static_cast<int>(min_port)) + " to 65535");
    return false;
  }
  std::string host;
  if (!args.IsString(host_at) || !args.String(host_at, &host) ||
      !ParseAddress(host, static_cast<uint16_t>(port), out)) {
    js::ThrowInvalidArg(args.env(),
                        std::string(host_name) + " must be a numeric IPv4 or IPv6 address");
    return false;
  }
  return true;
}

napi_value SystemErrorInfo(napi_env env, const Status& st) {
  return js::ObjectBuilder(env)
      .Set("code", SysErrorName(st.sys))
      .Set("errno", static_cast<double>(-st.raw))
      .Set("syscall", st.syscall != nullptr ? st.syscall : "unknown")
      .value();
}

// options.proxyTrusted: the ranges src/options.ts parsed, kTrustedEntryBytes
// each (family 4 or 6, prefix bits, 16 address bytes).
constexpr size_t kTrustedEntryBytes = 18;

bool ReadTrusted(napi_env env, napi_value options, std::vector<CidrRange>* out) {
  napi_value list = nullptr;
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (napi_get_named_property(env, options, "proxyTrusted", &list) != napi_ok ||
      !js::GetTypedArray(env, list, &type, &length, &data) || type != napi_uint8_array ||
      length % kTrustedEntryBytes != 0) {
    js::ThrowInvalidArg(env,
                        "native server option proxyTrusted must be a Uint8Array of 18-byte ranges");
    return false;
  }
  const uint8_t* bytes = static_cast<const uint8_t*>(data);
  for (size_t at = 0; at < length; at += kTrustedEntryBytes) {
    CidrRange range;
    range.family = bytes[at];
    range.prefix = bytes[at + 1];
    if ((range.family != 4 && range.family != 6) || range.prefix > (range.family == 4 ? 32 : 128)) {
      js::ThrowInvalidArg(env, "native server option proxyTrusted holds a bad range");
      return false;
    }
    std::memcpy(range.addr, bytes + at + 2, sizeof(range.addr));
    out->push_back(range);
  }
  return true;
}

}  // namespace

napi_value NativeServer::Define(napi_env env) {
  const napi_property_descriptor methods[] = {
      js::Method<NativeServer, &NativeServer::Listen>("listen"),
      js::Method<NativeServer, &NativeServer::ListenPath>("listenPath"),
      js::Method<NativeServer, &NativeServer::ListenFd>("listenFd"),
      js::Method<NativeServer, &NativeServer::Connect>("connect"),
      js::Method<NativeServer, &NativeServer::AbortConnect>("abortConnect"),
      js::Method<NativeServer, &NativeServer::Send>("send"),
      js::Method<NativeServer, &NativeServer::CloseSession>("closeSession"),
      js::Method<NativeServer, &NativeServer::Control>("control"),
      js::Method<NativeServer, &NativeServer::Query>("query"),
      js::Method<NativeServer, &NativeServer::Broadcast>("broadcast"),
      js::Method<NativeServer, &NativeServer::BufferedAmount>("bufferedAmount"),
      js::Method<NativeServer, &NativeServer::Shutdown>("shutdown"),
      js::Method<NativeServer, &NativeServer::Drain>("drain"),
      js::Method<NativeServer, &NativeServer::GetStats>("stats"),
      js::Method<NativeServer, &NativeServer::SetRef>("setRef"),
      js::Method<NativeServer, &NativeServer::Destroy>("destroy"),
      js::Method<NativeServer, &NativeServer::SetGenerationForTesting>("setGenerationForTesting"),
      js::Method<NativeServer, &NativeServer::ThreadOf>("threadOf"),
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
  // Every option, complete: its default and range are src/options.ts's.
  js::OptionReader read(env, args[0], "native server");
  config_.pool.max_sessions = static_cast<uint32_t>(read.Integer("maxConnections", 0, kMaxSlots));
  config_.pool.initial = static_cast<uint32_t>(read.Integer("poolSize", 0, kMaxSlots));
  config_.pool.chunk = static_cast<uint32_t>(read.Integer("poolGrowth", 0, kMaxSlots));
  config_.pool.low_water = std::max<uint32_t>(1, config_.pool.chunk / 16);
  config_.pool.shrink_idle_ticks = read.Whole<uint32_t>("shrinkDelaySeconds");
  config_.listen.backlog = read.Whole<int>("backlog");
  config_.high_water_mark = static_cast<size_t>(read.Integer("highWaterMark", 0, kMaxQueuedBytes));
  config_.max_queued_bytes =
      static_cast<size_t>(read.Integer("maxQueuedBytes", 0, kMaxQueuedBytes));
  config_.accept_batch = read.Whole<uint32_t>("acceptBatch");
  config_.idle_timeout_ms = read.Whole<uint32_t>("idleTimeoutMs");
  config_.close_linger_ms = read.Whole<uint32_t>("closeLingerMs");
  config_.no_delay = read.Boolean("noDelay");
  config_.listen.reuse_port = read.Boolean("reusePort");
  config_.proxy_protocol = read.Boolean("proxyProtocol");
  config_.proxy_timeout_ms = read.Whole<uint32_t>("proxyTimeoutMs");
  const char* const kDrivers[] = {"inline", "threaded"};
  threaded_ = read.Choice("driver", kDrivers, 2) == 1;
  uint32_t threads = static_cast<uint32_t>(read.Integer("threads", 1, kMaxThreads));
  // 'auto' or a backend this build has (src/options.ts checked which).
  size_t compiled = 0;
  const BackendChoice* backends = CompiledBackends(&compiled);
  std::vector<const char*> backend_names{"auto"};
  for (size_t i = 0; i < compiled; ++i) backend_names.push_back(backends[i].name);
  size_t backend = read.Choice("backend", backend_names.data(), backend_names.size());
  const char* const kSharings[] = {"reuseport", "shared"};
  sharing_ = read.Choice("threadListeners", kSharings, 2) == 1 ? ListenerSharing::kShared
                                                               : ListenerSharing::kReusePort;
  if (!read.Check()) return false;
  threads_ = threads;
  if (!threaded_ && threads > 1) {
    js::ThrowInvalidArg(env, "native server option threads must be 1 for the inline driver");
    return false;
  }
  if (!ReadTrusted(env, args[0], &config_.proxy_trusted)) return false;

  napi_value resource_name = js::String(env, "acceptpool:batch");
  if (!records_ref_.Set(env, args[1]) || !on_batch_.Set(env, args[2]) || resource_name == nullptr ||
      napi_async_init(env, nullptr, resource_name, &async_context_) != napi_ok) {
    async_context_ = nullptr;
    return false;
  }
  records_capacity_ = records_length / 4;
  records_ = static_cast<double*>(records_data);
  limits_.records = records_capacity_;

  const BackendChoice* chosen = nullptr;
  std::string why;
  Status st = ChooseBackend(backend_names[backend], &chosen, &why);
  if (!st.ok()) {
    ThrowState(env, "ERR_ACCEPTPOOL_UNSUPPORTED",
               std::string("acceptpool: backend '") + backend_names[backend] +
                   "' cannot run here: " + why);
    return false;
  }
  backend_skipped_ = why;
  engines_ = std::make_unique<EngineGroup>(config_, threads, chosen->make);
  st = engines_->Init();
  if (!st.ok()) {
    engines_.reset();
    ThrowState(env, SysErrorName(st.sys),
               std::string("acceptpool: backend init failed: ") + SysErrorName(st.sys));
    return false;
  }
  // A backend without a pollable descriptor (IOCP) can only run threaded.
  if (engines_->at(0).PollDescriptor() < 0) threaded_ = true;
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
  engines_.reset();
}

napi_value NativeServer::Listen(const js::Args& args) {
  napi_env env = env_;
  if (destroyed_ || !engines_)
    return ThrowState(env, "ERR_ACCEPTPOOL_SERVER_CLOSED", "server is closed");
  // listen(host, port, ipv6Only)
  SocketAddress address;
  if (!ReadAddress(args, 0, "host", 1, "port", 0, &address)) return nullptr;
  ListenOptions listen_options = config_.listen;
  listen_options.ipv6_only = args.size() > 2 && args.Truthy(2);
  SocketAddress bound;
  return Listening(engines_->Listen(address, listen_options, sharing_, &bound), bound, "");
}

// listenPath(path): a Unix domain socket.
napi_value NativeServer::ListenPath(const js::Args& args) {
  napi_env env = env_;
  if (destroyed_ || !engines_)
    return ThrowState(env, "ERR_ACCEPTPOOL_SERVER_CLOSED", "server is closed");
  std::string path;
  if (!args.IsString(0) || !args.String(0, &path) || path.empty() ||
      path.find('\0') != std::string::npos) {
    return js::ThrowInvalidArg(env, "path must be a non-empty string");
  }
  SocketAddress bound;
  return Listening(engines_->ListenPath(path.c_str(), config_.listen, &bound), bound, path);
}

// listenFd(fd): a listening socket this process inherited; the server owns it.
napi_value NativeServer::ListenFd(const js::Args& args) {
  napi_env env = env_;
  if (destroyed_ || !engines_)
    return ThrowState(env, "ERR_ACCEPTPOOL_SERVER_CLOSED", "server is closed");
  double fd = -1;
  if (!args.IsNumber(0) || !args.Number(0, &fd) || !(fd >= 0 && fd <= 2147483647.0) ||
      std::floor(fd) != fd) {
    return js::ThrowInvalidArg(env, "fd must be a non-negative integer");
  }
  SocketAddress bound;
  return Listening(engines_->ListenOn(static_cast<SocketHandle>(fd), config_.listen, &bound), bound,
                   "");
}

// What listen*() answer: the bound address, or the OS error's info.
napi_value NativeServer::Listening(const Status& listened, const SocketAddress& bound,
                                   const std::string& path) {
  napi_env env = env_;
  if (!listened.ok()) {
    if (listened.code == Code::kSystem) return SystemErrorInfo(env, listened);
    if (listened.code == Code::kUnsupported) {
      return ThrowState(env, "ERR_ACCEPTPOOL_UNSUPPORTED",
                        "this platform cannot share a port between listeners (reusePort, threads)");
    }
    return ThrowState(env, "ERR_ACCEPTPOOL_INVALID_STATE", "already listening or shutting down");
  }
  Status st = EnsureDriver();
  if (!st.ok()) return ThrowState(env, "ERR_ACCEPTPOOL_INTERNAL", "driver failed to start");
  if (bound.family == kLocalFamily) {
    return js::ObjectBuilder(env)
        .Set("address", path.c_str())
        .Set("family", "unix")
        .Set("port", 0.0)
        .value();
  }
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
    return napi_create_buffer_copy(env_, size, batch.data(), &copy, &out) == napi_ok ? out
                                                                                     : nullptr;
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
  driver_ = threaded_ ? MakeThreadedDriver(engines_->engines(), limits_, deliver)
                      : MakeInlineDriver(&engines_->at(0), limits_, deliver);
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

// connect(token, host, port, localHost?, localPort?) -> 0 when started, else
// the error word of why not (as a kConnectFailed record carries it)
napi_value NativeServer::Connect(const js::Args& args) {
  napi_env env = env_;
  if (destroyed_ || !engines_)
    return ThrowState(env, "ERR_ACCEPTPOOL_CLIENT_CLOSED", "client is closed");
  double token_value;
  if (!args.IsNumber(0) || !args.Number(0, &token_value))
    return js::ThrowInvalidArg(env, "token must be a number");
  SocketAddress remote;
  SocketAddress local;
  bool has_local = !args.IsAbsent(3);
  if (!ReadAddress(args, 1, "host", 2, "port", 1, &remote) ||
      (has_local && !ReadAddress(args, 3, "localAddress", 4, "localPort", 0, &local))) {
    return nullptr;
  }
  Status st = EnsureDriver();
  if (!st.ok()) return ThrowState(env, "ERR_ACCEPTPOOL_INTERNAL", "driver failed to start");
  uint32_t token = static_cast<uint32_t>(static_cast<int64_t>(token_value));
  st = driver_->Connect(token, remote, has_local ? &local : nullptr);
  return js::Number(env, EncodeErrorWord(RecordError::Of(st)));
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
  if (args.size() < 2 || !ReadId(env, args[0], &id))
    return js::ThrowInvalidArg(env, "session id must be a non-negative integer");
  if (!ReadBytes(env, args[1], &data, &size))
    return js::ThrowInvalidArg(env, "data must be a Buffer, TypedArray, DataView or ArrayBuffer");
  if (!driver_) return js::Number(env, static_cast<double>(SendResult::kStale));
  return js::Number(env, static_cast<double>(driver_->Send(id, data, size)));
}

napi_value NativeServer::CloseSession(const js::Args& args) {
  napi_env env = env_;
  SessionId id;
  if (args.size() < 1 || !ReadId(env, args[0], &id))
    return js::ThrowInvalidArg(env, "session id must be a non-negative integer");
  double mode = 0;
  if (args.size() > 1 && args.IsNumber(1) && !args.Number(1, &mode)) return nullptr;
  if (mode != 0 && mode != 1 && mode != 2)
    return js::ThrowInvalidArg(env, "close mode must be 0, 1 or 2");
  if (!driver_) return js::Boolean(env, false);
  return js::Boolean(env, driver_->Close(id, static_cast<CloseMode>(static_cast<int>(mode))));
}

// control(id, control, a, b): the facade has checked the arguments' ranges;
// this only refuses what would not fit.
napi_value NativeServer::Control(const js::Args& args) {
  napi_env env = env_;
  SessionId id;
  if (args.size() < 4 || !ReadId(env, args[0], &id))
    return js::ThrowInvalidArg(env, "session id must be a non-negative integer");
  double values[3];
  for (size_t i = 0; i < 3; ++i) {
    if (!args.IsNumber(i + 1) || !args.Number(i + 1, &values[i]) || !(values[i] >= 0) ||
        values[i] > 4294967295.0 || std::floor(values[i]) != values[i]) {
      return js::ThrowInvalidArg(env, "control(id, control, a, b) takes unsigned 32-bit integers");
    }
  }
  int control = static_cast<int>(values[0]);
  bool known = false;
#define ACCEPTPOOL_KNOWN_CONTROL(name, value) known = known || control == (value);
  ACCEPTPOOL_SESSION_CONTROLS(ACCEPTPOOL_KNOWN_CONTROL)
#undef ACCEPTPOOL_KNOWN_CONTROL
  if (!known) return js::ThrowInvalidArg(env, "unknown session control");
  if (!driver_) return js::Boolean(env, false);
  return js::Boolean(
      env, driver_->Control(id, static_cast<SessionControl>(control),
                            static_cast<uint32_t>(values[1]), static_cast<uint32_t>(values[2])));
}

// query(id, withAddress, withOptions) -> { bytesWritten, localAddress?,
// localPort?, localFamily?, noDelay?, keepAlive?, keepAliveDelay? } or null
// for a stale id
napi_value NativeServer::Query(const js::Args& args) {
  napi_env env = env_;
  SessionId id;
  if (args.size() < 1 || !ReadId(env, args[0], &id))
    return js::ThrowInvalidArg(env, "session id must be a non-negative integer");
  SessionInfo info;
  info.want_local = args.size() > 1 && args.Truthy(1);
  info.want_options = args.size() > 2 && args.Truthy(2);
  if (!driver_ || !driver_->Query(id, &info)) return js::Null(env);
  js::ObjectBuilder o(env);
  o.Set("bytesWritten", static_cast<double>(info.bytes_written));
  if (info.has_local) {
    o.Set("localAddress", FormatAddress(info.local).c_str())
        .Set("localPort", static_cast<double>(info.local.port))
        .Set("localFamily", info.local.family == 6 ? "IPv6" : "IPv4");
  }
  if (info.has_options) {
    o.Set("noDelay", js::Boolean(env, info.options.no_delay))
        .Set("keepAlive", js::Boolean(env, info.options.keep_alive))
        .Set("keepAliveDelay", static_cast<double>(info.options.keep_alive_delay_s));
  }
  return o.value();
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
  if (args.size() < 1 || !ReadId(env, args[0], &id))
    return js::ThrowInvalidArg(env, "session id must be a non-negative integer");
  if (!driver_) return js::Number(env, -1);
  return js::Number(env, static_cast<double>(driver_->BufferedAmount(id)));
}

napi_value NativeServer::Shutdown(const js::Args&) {
  if (driver_) driver_->Shutdown();
  return js::Boolean(env_, driver_ != nullptr);
}

napi_value NativeServer::Drain(const js::Args&) {
  if (driver_) driver_->Drain();
  return js::Boolean(env_, driver_ != nullptr);
}

napi_value NativeServer::StatsObject(const Stats& s) {
  js::ObjectBuilder o(env_);
#define ACCEPTPOOL_PUT_STAT(member, js_name) o.Set(#js_name, static_cast<double>(s.member));
  ACCEPTPOOL_STATS_FIELDS(ACCEPTPOOL_PUT_STAT)
#undef ACCEPTPOOL_PUT_STAT
  if (engines_) {
    const char* const* names = nullptr;
    size_t n = std::min(engines_->at(0).BackendCounterNames(&names), Stats::kBackendCounters);
    if (n > 0) {
      js::ObjectBuilder counters(env_);
      for (size_t i = 0; i < n; ++i) counters.Set(names[i], static_cast<double>(s.backend[i]));
      o.Set("backendCounters", counters.value());
    }
  }
  return o.value();
}

napi_value NativeServer::GetStats(const js::Args&) {
  napi_env env = env_;
  Stats total;
  std::vector<Stats> per_thread;
  if (driver_) {
    total = driver_->GetStats(&per_thread);
  } else if (engines_) {
    total = engines_->SnapshotStats(&per_thread);
  }
  if (engines_ && per_thread.size() > 1) {
    // A mode or a flag does not add up over the threads.
    uint32_t settings = engines_->at(0).BackendSettingCounters();
    for (size_t i = 0; i < Stats::kBackendCounters; ++i) {
      if ((settings >> i & 1u) == 0) continue;
      total.backend[i] = 0;
      for (const Stats& one : per_thread)
        total.backend[i] = std::max(total.backend[i], one.backend[i]);
    }
  }
  napi_value threads = nullptr;
  if (napi_create_array_with_length(env, per_thread.size(), &threads) != napi_ok) return nullptr;
  for (size_t t = 0; t < per_thread.size(); ++t) {
    napi_value one = StatsObject(per_thread[t]);
    if (one == nullptr || napi_set_element(env, threads, static_cast<uint32_t>(t), one) != napi_ok)
      return nullptr;
  }
  napi_value out = StatsObject(total);
  if (out == nullptr) return nullptr;
  napi_value backend = js::String(env, engines_ ? engines_->at(0).backend_name() : "none");
  napi_value driver = js::String(env, threaded_ ? "threaded" : "inline");
  if (backend == nullptr || driver == nullptr ||
      napi_set_named_property(env, out, "backend", backend) != napi_ok ||
      napi_set_named_property(env, out, "driver", driver) != napi_ok ||
      napi_set_named_property(env, out, "perThread", threads) != napi_ok) {
    return nullptr;
  }
  if (!backend_skipped_.empty()) {
    napi_value skipped = js::String(env, backend_skipped_.c_str());
    if (skipped == nullptr ||
        napi_set_named_property(env, out, "backendFallback", skipped) != napi_ok)
      return nullptr;
  }
  return out;
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
  if (destroyed_ || !engines_)
    return ThrowState(env, "ERR_ACCEPTPOOL_SERVER_CLOSED", "server is closed");
  if (driver_)
    return ThrowState(env, "ERR_ACCEPTPOOL_INVALID_STATE", "only before listen() or connect()");
  double slot;
  double generation;
  if (args.size() < 2 || !args.IsNumber(0) || !args.IsNumber(1) || !args.Number(0, &slot) ||
      !args.Number(1, &generation)) {
    return js::ThrowInvalidArg(env, "setGenerationForTesting(slot, generation)");
  }
  if (!(slot >= 0 && slot < kMaxSlots) || std::floor(slot) != slot || !(generation >= 1) ||
      !(generation < kGenerationLimit) || std::floor(generation) != generation ||
      !engines_->SetGenerationForTesting(static_cast<uint32_t>(slot),
                                         static_cast<uint32_t>(generation))) {
    return js::ThrowInvalidArg(
        env, "slot must be a free slot below the slot limit and generation from 1 to 2^29 - 1");
  }
  return js::Undefined(env);
}

// threadOf(id): the I/O thread (engine) that owns the session `id` names
// (session_table.h has the rule), whether or not the session still lives,
// and after destroy() too.
napi_value NativeServer::ThreadOf(const js::Args& args) {
  SessionId id;
  if (args.size() < 1 || !ReadId(env_, args[0], &id))
    return js::ThrowInvalidArg(env_, "session id must be a non-negative integer");
  return js::Number(env_, acceptpool::ThreadOf(id, threads_));
}

napi_value NativeServer::Destroy(const js::Args&) {
  StopAll();
  return js::Undefined(env_);
}

}  // namespace acceptpool
