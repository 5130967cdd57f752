#include "addon/wire.h"

#include <cstddef>

#include "addon/js.h"
#include "core/address.h"
#include "core/engine.h"
#include "core/event_batch.h"
#include "core/proxy_protocol.h"
#include "loadgen/load_generator.h"
#include "core/session_table.h"
#include "core/stats.h"
#include "core/status.h"
#include "drivers/drivers.h"

namespace acceptpool {
namespace {

// A numbered list's entry, named as in C++ without its leading k.
#define ACCEPTPOOL_WIRE_NUMBER(name, value) .Set(#name + 1, static_cast<double>(value))
// A named list's text.
#define ACCEPTPOOL_WIRE_TEXT(name, text) text,

const char* const kSysErrors[] = {ACCEPTPOOL_SYS_ERRORS(ACCEPTPOOL_WIRE_TEXT)};
const char* const kCloseReasons[] = {ACCEPTPOOL_CLOSE_REASONS(ACCEPTPOOL_WIRE_TEXT)};
const char* const kStaleCommands[] = {ACCEPTPOOL_STALE_COMMANDS(ACCEPTPOOL_WIRE_TEXT)};
const char* const kProxyCommands[] = {ACCEPTPOOL_PROXY_COMMANDS(ACCEPTPOOL_WIRE_TEXT)};
const char* const kProxyFamilies[] = {ACCEPTPOOL_PROXY_FAMILIES(ACCEPTPOOL_WIRE_TEXT)};
const char* const kProxyTransports[] = {ACCEPTPOOL_PROXY_TRANSPORTS(ACCEPTPOOL_WIRE_TEXT)};
const char* const kProxyErrors[] = {ACCEPTPOOL_PROXY_ERRORS(ACCEPTPOOL_WIRE_TEXT)};
const char* const kProxyRejects[] = {ACCEPTPOOL_PROXY_REJECTS(ACCEPTPOOL_WIRE_TEXT)};
const char* const kLoadModes[] = {ACCEPTPOOL_LOAD_MODES(ACCEPTPOOL_WIRE_TEXT)};
const char* const kLoadPhases[] = {ACCEPTPOOL_LOAD_PHASES(ACCEPTPOOL_WIRE_TEXT)};
#define ACCEPTPOOL_WIRE_STATS_NAME(member, js_name) #js_name,
const char* const kStatsFields[] = {ACCEPTPOOL_STATS_FIELDS(ACCEPTPOOL_WIRE_STATS_NAME)};
#undef ACCEPTPOOL_WIRE_STATS_NAME

// JS must not change what it reads its constants from.
napi_value Frozen(napi_env env, napi_value object) {
  return object != nullptr && napi_object_freeze(env, object) == napi_ok ? object : nullptr;
}

template <size_t N>
napi_value Texts(napi_env env, const char* const (&texts)[N]) {
  napi_value array = nullptr;
  if (napi_create_array_with_length(env, N, &array) != napi_ok) return nullptr;
  for (uint32_t i = 0; i < N; ++i) {
    napi_value text = js::String(env, texts[i]);
    if (text == nullptr || napi_set_element(env, array, i, text) != napi_ok) return nullptr;
  }
  return Frozen(env, array);
}

napi_value Numbers(js::ObjectBuilder& builder) { return Frozen(builder.env(), builder.value()); }

}  // namespace

napi_value MakeWire(napi_env env) {
  js::ObjectBuilder event_types(env);
  event_types ACCEPTPOOL_EVENT_TYPES(ACCEPTPOOL_WIRE_NUMBER);
  js::ObjectBuilder send_results(env);
  send_results ACCEPTPOOL_SEND_RESULTS(ACCEPTPOOL_WIRE_NUMBER);
  js::ObjectBuilder close_modes(env);
  close_modes ACCEPTPOOL_CLOSE_MODES(ACCEPTPOOL_WIRE_NUMBER);
  js::ObjectBuilder session_controls(env);
  session_controls ACCEPTPOOL_SESSION_CONTROLS(ACCEPTPOOL_WIRE_NUMBER);
  js::ObjectBuilder codes(env);
  codes ACCEPTPOOL_CODES(ACCEPTPOOL_WIRE_NUMBER);
  js::ObjectBuilder connect_steps(env);
  connect_steps ACCEPTPOOL_CONNECT_STEPS(ACCEPTPOOL_WIRE_NUMBER);

  // Each record field's index among the record's doubles.
  js::ObjectBuilder record(env);
#define ACCEPTPOOL_WIRE_RECORD_FIELD(field) \
  .Set(#field, static_cast<double>(offsetof(EventRecord, field) / sizeof(double)))
  record ACCEPTPOOL_RECORD_FIELDS(ACCEPTPOOL_WIRE_RECORD_FIELD);
#undef ACCEPTPOOL_WIRE_RECORD_FIELD

  // Each error word field as { shift, bits } (event_batch.h has the rule).
  js::ObjectBuilder error_word(env);
#define ACCEPTPOOL_WIRE_WORD_FIELD(name, shift, bits)                   \
  .Set(#name, Frozen(env, js::ObjectBuilder(env)                        \
                              .Set("shift", static_cast<double>(shift)) \
                              .Set("bits", static_cast<double>(bits))   \
                              .value()))
  error_word ACCEPTPOOL_ERROR_WORD(ACCEPTPOOL_WIRE_WORD_FIELD);
#undef ACCEPTPOOL_WIRE_WORD_FIELD

  // Where a kSession record's SocketAddress keeps each part (address.h).
  js::ObjectBuilder address(env);
  address.Set("size", static_cast<double>(sizeof(SocketAddress)))
      .Set("family", static_cast<double>(offsetof(SocketAddress, family)))
      .Set("port", static_cast<double>(offsetof(SocketAddress, port)))
      .Set("addr", static_cast<double>(offsetof(SocketAddress, addr)));

  // A proxied kSession record's head, after its SocketAddress
  // (proxy_protocol.h), and a kProxyRejected record's info.
  js::ObjectBuilder proxy_head(env);
#define ACCEPTPOOL_WIRE_OFFSET(type, field) .Set(#field, static_cast<double>(offsetof(type, field)))
  // Calls chained through a macro, which clang-format would stair-step.
  // clang-format off
  proxy_head.Set("size", static_cast<double>(sizeof(ProxyRecordHead)))
      ACCEPTPOOL_WIRE_OFFSET(ProxyRecordHead, version) ACCEPTPOOL_WIRE_OFFSET(ProxyRecordHead, command)
      ACCEPTPOOL_WIRE_OFFSET(ProxyRecordHead, family) ACCEPTPOOL_WIRE_OFFSET(ProxyRecordHead, transport)
      ACCEPTPOOL_WIRE_OFFSET(ProxyRecordHead, unix_bytes) ACCEPTPOOL_WIRE_OFFSET(ProxyRecordHead, tlv_bytes)
      ACCEPTPOOL_WIRE_OFFSET(ProxyRecordHead, source) ACCEPTPOOL_WIRE_OFFSET(ProxyRecordHead, destination);
  js::ObjectBuilder proxy_reject(env);
  proxy_reject ACCEPTPOOL_WIRE_OFFSET(ProxyRejectInfo, reason) ACCEPTPOOL_WIRE_OFFSET(ProxyRejectInfo, error);
  // clang-format on
#undef ACCEPTPOOL_WIRE_OFFSET

  js::ObjectBuilder wire(env);
  wire.Set("EventType", Numbers(event_types))
      .Set("SendResult", Numbers(send_results))
      .Set("CloseMode", Numbers(close_modes))
      .Set("SessionControl", Numbers(session_controls))
      .Set("Code", Numbers(codes))
      .Set("ConnectStep", Numbers(connect_steps))
      .Set("errorNames", Texts(env, kSysErrors))
      .Set("closeReasons", Texts(env, kCloseReasons))
      .Set("staleCommands", Texts(env, kStaleCommands))
      .Set("loadModes", Texts(env, kLoadModes))
      .Set("loadPhases", Texts(env, kLoadPhases))
      .Set("statsFields", Texts(env, kStatsFields))
      .Set("record", Numbers(record))
      .Set("recordDoubles", static_cast<double>(sizeof(EventRecord) / sizeof(double)))
      .Set("recordsPerBatch", static_cast<double>(BatchLimits().records))
      .Set("errorWord", Numbers(error_word))
      .Set("address", Numbers(address))
      .Set("proxyHead", Numbers(proxy_head))
      .Set("proxyReject", Numbers(proxy_reject))
      .Set("proxyCommands", Texts(env, kProxyCommands))
      .Set("proxyFamilies", Texts(env, kProxyFamilies))
      .Set("proxyTransports", Texts(env, kProxyTransports))
      .Set("proxyErrors", Texts(env, kProxyErrors))
      .Set("proxyRejects", Texts(env, kProxyRejects))
      .Set("proxyUnixPathBytes", static_cast<double>(kProxyUnixPathBytes))
      .Set("slotBits", static_cast<double>(kSlotBits))
      .Set("maxThreads", static_cast<double>(kMaxThreads))
      .Set("maxQueuedBytes", static_cast<double>(kMaxQueuedBytes))
      .Set("readChunk", static_cast<double>(kReadChunk))
      .Set("threadedBatches", static_cast<double>(kThreadedBatches))
      .Set("maxLoadThreads", static_cast<double>(kMaxLoadThreads))
      .Set("maxLoadMessage", static_cast<double>(kMaxLoadMessage));
  return Frozen(env, wire.value());
}

}  // namespace acceptpool
