#include "addon/js.h"

#include <cmath>
#include <cstdio>

namespace acceptpool {
namespace js {

napi_value Undefined(napi_env env) {
  napi_value v = nullptr;
  return napi_get_undefined(env, &v) == napi_ok ? v : nullptr;
}

napi_value Null(napi_env env) {
  napi_value v = nullptr;
  return napi_get_null(env, &v) == napi_ok ? v : nullptr;
}

napi_value Number(napi_env env, double value) {
  napi_value v = nullptr;
  return napi_create_double(env, value, &v) == napi_ok ? v : nullptr;
}

napi_value Boolean(napi_env env, bool value) {
  napi_value v = nullptr;
  return napi_get_boolean(env, value, &v) == napi_ok ? v : nullptr;
}

napi_value String(napi_env env, const char* text) {
  napi_value v = nullptr;
  return napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &v) == napi_ok ? v : nullptr;
}

napi_valuetype TypeOf(napi_env env, napi_value value) {
  napi_valuetype t = napi_undefined;
  if (value == nullptr || napi_typeof(env, value, &t) != napi_ok) return napi_undefined;
  return t;
}

bool GetNumber(napi_env env, napi_value value, double* out) {
  return value != nullptr && napi_get_value_double(env, value, out) == napi_ok;
}

bool GetString(napi_env env, napi_value value, std::string* out) {
  size_t length = 0;
  if (value == nullptr || napi_get_value_string_utf8(env, value, nullptr, 0, &length) != napi_ok) {
    return false;
  }
  out->resize(length + 1);
  if (napi_get_value_string_utf8(env, value, &(*out)[0], length + 1, &length) != napi_ok)
    return false;
  out->resize(length);
  return true;
}

bool GetProperty(napi_env env, napi_value object, const char* key, napi_value* out) {
  *out = nullptr;
  if (napi_get_named_property(env, object, key, out) != napi_ok) {
    *out = Undefined(env);
    return false;
  }
  return true;
}

bool GetTypedArray(napi_env env, napi_value value, napi_typedarray_type* type, size_t* length,
                   void** data) {
  bool is = false;
  if (value == nullptr || napi_is_typedarray(env, value, &is) != napi_ok || !is) return false;
  return napi_get_typedarray_info(env, value, type, length, data, nullptr, nullptr) == napi_ok;
}

namespace {

using CreateError = napi_status (*)(napi_env, napi_value, napi_value, napi_value*);

napi_value MakeError(napi_env env, CreateError create, const char* code,
                     const std::string& message) {
  napi_value text = nullptr;
  napi_value code_value = nullptr;
  napi_value error = nullptr;
  if (napi_create_string_utf8(env, message.data(), message.size(), &text) != napi_ok ||
      napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_value) != napi_ok ||
      create(env, nullptr, text, &error) != napi_ok ||
      napi_set_named_property(env, error, "code", code_value) != napi_ok) {
    return nullptr;
  }
  return error;
}

}  // namespace

napi_value NewError(napi_env env, const char* code, const std::string& message) {
  return MakeError(env, &napi_create_error, code, message);
}

napi_value Throw(napi_env env, napi_value error) {
  // An exception already pending (or JS gone) wins; never stack a second one.
  bool pending = false;
  if (error == nullptr || napi_is_exception_pending(env, &pending) != napi_ok || pending)
    return nullptr;
  napi_throw(env, error);
  return nullptr;
}

napi_value ThrowError(napi_env env, const char* code, const std::string& message) {
  return Throw(env, NewError(env, code, message));
}

napi_value ThrowTypeError(napi_env env, const char* code, const std::string& message) {
  return Throw(env, MakeError(env, &napi_create_type_error, code, message));
}

napi_value ThrowInvalidArg(napi_env env, const std::string& message) {
  return ThrowTypeError(env, "ERR_ACCEPTPOOL_INVALID_ARG", message);
}

ObjectBuilder::ObjectBuilder(napi_env env) : env_(env) {
  if (napi_create_object(env, &object_) != napi_ok) object_ = nullptr;
}

ObjectBuilder& ObjectBuilder::Set(const char* key, napi_value value) {
  if (object_ == nullptr) return *this;
  if (value == nullptr || napi_set_named_property(env_, object_, key, value) != napi_ok) {
    object_ = nullptr;
  }
  return *this;
}

ObjectBuilder& ObjectBuilder::Set(const char* key, double value) {
  return object_ == nullptr ? *this : Set(key, Number(env_, value));
}

ObjectBuilder& ObjectBuilder::Set(const char* key, const char* value) {
  return object_ == nullptr ? *this : Set(key, String(env_, value));
}

bool OptionReader::Read(const char* key, napi_valuetype type, napi_value* out) {
  if (!error_.empty()) return false;
  return GetProperty(env_, options_, key, out) && TypeOf(env_, *out) == type;
}

void OptionReader::Fail(const char* key, const std::string& wanted) {
  if (error_.empty()) error_ = std::string(what_) + " option " + key + " must be " + wanted;
}

double OptionReader::Integer(const char* key, double min, double max) {
  napi_value v = nullptr;
  double d = NAN;
  if (Read(key, napi_number, &v)) GetNumber(env_, v, &d);
  if (std::isfinite(d) && std::floor(d) == d && d >= min && d <= max) return d;
  char range[96];
  std::snprintf(range, sizeof(range), "an integer from %.0f to %.0f", min, max);
  Fail(key, range);
  return 0;
}

bool OptionReader::Boolean(const char* key) {
  napi_value v = nullptr;
  bool b = false;
  if (Read(key, napi_boolean, &v) && napi_get_value_bool(env_, v, &b) == napi_ok) return b;
  Fail(key, "a boolean");
  return false;
}

size_t OptionReader::Choice(const char* key, const char* const* choices, size_t count) {
  napi_value v = nullptr;
  std::string text;
  if (Read(key, napi_string, &v) && GetString(env_, v, &text)) {
    for (size_t i = 0; i < count; ++i) {
      if (text == choices[i]) return i;
    }
  }
  std::string wanted = "one of";
  for (size_t i = 0; i < count; ++i) wanted += std::string(i == 0 ? " " : ", ") + choices[i];
  Fail(key, wanted);
  return 0;
}

bool OptionReader::Check() {
  if (error_.empty()) return true;
  ThrowInvalidArg(env_, error_);
  return false;
}

Args::Args(napi_env env, napi_callback_info info) : env_(env) {
  size_t argc = kMax;
  if (napi_get_cb_info(env, info, &argc, argv_, &self_, nullptr) != napi_ok) return;
  undefined_ = Undefined(env);
  if (undefined_ == nullptr) return;
  size_ = argc;
  ok_ = true;
}

bool Args::Truthy(size_t i) const {
  napi_value b = nullptr;
  bool out = false;
  if (napi_coerce_to_bool(env_, (*this)[i], &b) != napi_ok) return false;
  return napi_get_value_bool(env_, b, &out) == napi_ok && out;
}

bool Reference::Set(napi_env env, napi_value value, uint32_t count) {
  Reset();
  if (value == nullptr || napi_create_reference(env, value, count, &ref_) != napi_ok) {
    ref_ = nullptr;
    return false;
  }
  env_ = env;
  return true;
}

void Reference::Reset() {
  if (ref_ != nullptr) napi_delete_reference(env_, ref_);
  ref_ = nullptr;
}

napi_value Reference::Get() const {
  napi_value v = nullptr;
  if (ref_ == nullptr || napi_get_reference_value(env_, ref_, &v) != napi_ok) return nullptr;
  return v;
}

void Reference::Ref() {
  uint32_t count = 0;
  if (ref_ != nullptr) napi_reference_ref(env_, ref_, &count);
}

void Reference::Unref() {
  uint32_t count = 0;
  if (ref_ != nullptr) napi_reference_unref(env_, ref_, &count);
}

bool EnvCleanupHook::Add(napi_env env, Fn fn, void* arg) {
  Remove();
  fn_ = fn;
  arg_ = arg;
  if (napi_add_env_cleanup_hook(env, &EnvCleanupHook::Run, this) != napi_ok) return false;
  env_ = env;
  return true;
}

void EnvCleanupHook::Remove() {
  if (env_ == nullptr) return;
  napi_remove_env_cleanup_hook(env_, &EnvCleanupHook::Run, this);
  env_ = nullptr;
}

void EnvCleanupHook::Run(void* self) {
  EnvCleanupHook* hook = static_cast<EnvCleanupHook*>(self);
  // Node has dropped the registration: nothing to remove any more.
  hook->env_ = nullptr;
  hook->fn_(hook->arg_);
}

void* UnwrapThis(const Args& args) {
  void* native = nullptr;
  napi_status st = napi_unwrap(args.env(), args.self(), &native);
  if (st == napi_ok) return native;
  // A method called on a foreign `this` is misuse; a failure because JS is
  // going away is not, and gets no exception.
  if (st == napi_invalid_arg || st == napi_object_expected) {
    ThrowTypeError(args.env(), "ERR_ACCEPTPOOL_INVALID_ARG",
                   "method called on an incompatible receiver");
  }
  return nullptr;
}

}  // namespace js
}  // namespace acceptpool
