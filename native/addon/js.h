// Node-API with every status checked: what the addon's objects are built on.
//
// Any call into the addon can meet an environment that is going away. A
// worker_thread terminated from another thread stops JS at once, and from
// then on every Node-API call that could run JS fails (napi_pending_exception),
// even in the middle of a native method. node-addon-api turns such a failure
// into napi_fatal_error, which aborts the whole process. Nothing here does:
// a failed step yields nullptr / false, the caller returns, and the native
// side is never left half-changed.
#ifndef ACCEPTPOOL_ADDON_JS_H_
#define ACCEPTPOOL_ADDON_JS_H_

#include <node_api.h>

#include <cstddef>
#include <limits>
#include <memory>
#include <string>

namespace acceptpool {
namespace js {

napi_value Undefined(napi_env env);
napi_value Null(napi_env env);
napi_value Number(napi_env env, double value);
napi_value Boolean(napi_env env, bool value);
napi_value String(napi_env env, const char* text);

napi_valuetype TypeOf(napi_env env, napi_value value);  // napi_undefined on failure
bool GetNumber(napi_env env, napi_value value, double* out);
bool GetString(napi_env env, napi_value value, std::string* out);
// False for a missing property too (then *out is undefined).
bool GetProperty(napi_env env, napi_value object, const char* key, napi_value* out);
// The element type of a typed array, its length in elements and its bytes.
bool GetTypedArray(napi_env env, napi_value value, napi_typedarray_type* type, size_t* length,
                   void** data);

// A new Error whose `code` property is `code` (null on failure).
napi_value NewError(napi_env env, const char* code, const std::string& message);
// Throws `error` unless it is null or an exception is already pending.
// Returns nullptr, what a callback returns after throwing (or failing to).
napi_value Throw(napi_env env, napi_value error);
// Throw an Error / TypeError whose `code` property is `code`.
napi_value ThrowError(napi_env env, const char* code, const std::string& message);
napi_value ThrowTypeError(napi_env env, const char* code, const std::string& message);
// A TypeError with code ERR_ACCEPTPOOL_INVALID_ARG.
napi_value ThrowInvalidArg(napi_env env, const std::string& message);

// An object built one property at a time; after any failed step value() is
// null, and further steps do nothing.
class ObjectBuilder {
 public:
  explicit ObjectBuilder(napi_env env);
  ObjectBuilder& Set(const char* key, napi_value value);
  ObjectBuilder& Set(const char* key, double value);
  ObjectBuilder& Set(const char* key, const char* value);
  napi_value value() const { return object_; }
  napi_env env() const { return env_; }

 private:
  napi_env env_;
  napi_value object_ = nullptr;
};

// Reads an options object that the facade has already validated and
// completed (src/options.ts owns every default and range). Each read checks
// only that the value is there and fits what it fills; the first that does
// not is a facade bug, thrown as ERR_ACCEPTPOOL_INVALID_ARG naming the option
// (never a crash, never a guess).
class OptionReader {
 public:
  // `what` names the options in messages ("native server").
  OptionReader(napi_env env, napi_value options, const char* what)
      : env_(env), options_(options), what_(what) {}

  // An integer from min to max (0 once a read has failed).
  double Integer(const char* key, double min, double max);
  // An integer that type T holds, from `min`.
  template <typename T>
  T Whole(const char* key, T min = 0) {
    return static_cast<T>(
        Integer(key, static_cast<double>(min), static_cast<double>(std::numeric_limits<T>::max())));
  }
  bool Boolean(const char* key);
  // The index of the value among `choices` (strings).
  size_t Choice(const char* key, const char* const* choices, size_t count);
  // After the reads: throws for the first bad option and returns false, or
  // returns true when every option was good.
  bool Check();

 private:
  bool Read(const char* key, napi_valuetype type, napi_value* out);
  void Fail(const char* key, const std::string& wanted);

  napi_env env_;
  napi_value options_;
  const char* what_;
  std::string error_;
};

// The arguments of one callback.
class Args {
 public:
  static constexpr size_t kMax = 8;
  Args(napi_env env, napi_callback_info info);

  bool ok() const { return ok_; }
  napi_env env() const { return env_; }
  // As many as JS passed (the first kMax are readable).
  size_t size() const { return size_; }
  // Undefined past the end.
  napi_value operator[](size_t i) const { return i < kMax && i < size_ ? argv_[i] : undefined_; }
  napi_value self() const { return self_; }
  napi_valuetype Type(size_t i) const { return TypeOf(env_, (*this)[i]); }
  bool IsNumber(size_t i) const { return Type(i) == napi_number; }
  bool IsString(size_t i) const { return Type(i) == napi_string; }
  bool IsAbsent(size_t i) const {
    napi_valuetype t = Type(i);
    return t == napi_undefined || t == napi_null;
  }
  bool Number(size_t i, double* out) const { return GetNumber(env_, (*this)[i], out); }
  bool String(size_t i, std::string* out) const { return GetString(env_, (*this)[i], out); }
  // JS truthiness (false if it cannot be told).
  bool Truthy(size_t i) const;

 private:
  napi_env env_;
  bool ok_ = false;
  size_t size_ = 0;
  napi_value argv_[kMax] = {};
  napi_value self_ = nullptr;
  napi_value undefined_ = nullptr;
};

// A reference to a JS value, deleted with this object (deleting a reference
// is allowed at any time, teardown included).
class Reference {
 public:
  Reference() = default;
  Reference(const Reference&) = delete;
  Reference& operator=(const Reference&) = delete;
  ~Reference() { Reset(); }

  // Refers to `value` with `count` strong references (0 = weak).
  bool Set(napi_env env, napi_value value, uint32_t count = 1);
  void Reset();
  bool empty() const { return ref_ == nullptr; }
  // The value, or null if it is gone or cannot be had.
  napi_value Get() const;
  void Ref();
  void Unref();

 private:
  napi_env env_ = nullptr;
  napi_ref ref_ = nullptr;
};

// A napi_add_env_cleanup_hook registration of `fn(arg)`, removed on
// destruction unless the hook has run. Not movable: Node holds its address.
class EnvCleanupHook {
 public:
  using Fn = void (*)(void* arg);
  EnvCleanupHook() = default;
  EnvCleanupHook(const EnvCleanupHook&) = delete;
  EnvCleanupHook& operator=(const EnvCleanupHook&) = delete;
  ~EnvCleanupHook() { Remove(); }

  bool Add(napi_env env, Fn fn, void* arg);
  void Remove();

 private:
  static void Run(void* self);

  napi_env env_ = nullptr;  // set while registered
  Fn fn_ = nullptr;
  void* arg_ = nullptr;
};

// The base of a native object owned by its JS wrapper: the wrapper's
// finalizer (GC, or the environment's teardown) deletes it.
class Wrapped {
 public:
  Wrapped(const Wrapped&) = delete;
  Wrapped& operator=(const Wrapped&) = delete;
  virtual ~Wrapped() = default;

 protected:
  explicit Wrapped(napi_env env) : env_(env) {}
  // Keeps the wrapper, and so this object, alive without JS references
  // (Hold), or lets go (Release). Balanced by the caller.
  void Hold() { self_.Ref(); }
  void Release() { self_.Unref(); }
  napi_value Self() const { return self_.Get(); }

  napi_env env_;

 private:
  template <typename T>
  friend napi_value Construct(napi_env env, napi_callback_info info);
  Reference self_;  // weak until held
};

// The constructor of class T: T(napi_env) then T::Init(args), which throws
// and returns false when the arguments are bad.
template <typename T>
napi_value Construct(napi_env env, napi_callback_info info) {
  Args args(env, info);
  if (!args.ok()) return nullptr;
  napi_value target = nullptr;
  if (napi_get_new_target(env, info, &target) != napi_ok || target == nullptr) {
    return ThrowTypeError(env, "ERR_ACCEPTPOOL_INVALID_STATE", "a class constructor needs 'new'");
  }
  std::unique_ptr<T> native = std::make_unique<T>(env);
  if (!native->Init(args)) return nullptr;
  auto finalize = [](napi_env, void* data, void*) {
    std::unique_ptr<T> owned(static_cast<T*>(data));
  };
  // Weak until Hold(): JS decides the object's life.
  if (!native->self_.Set(env, args.self(), 0)) return nullptr;
  if (napi_wrap(env, args.self(), native.get(), finalize, nullptr, nullptr) != napi_ok)
    return nullptr;
  native.release();  // owned by the wrapper from here on
  return args.self();
}

// The native object behind a method call's `this`, or null (after throwing
// when `this` is not one; quietly when JS can no longer run).
void* UnwrapThis(const Args& args);

template <typename T, napi_value (T::*kMethod)(const Args&)>
napi_value CallMethod(napi_env env, napi_callback_info info) {
  Args args(env, info);
  void* native = args.ok() ? UnwrapThis(args) : nullptr;
  if (native == nullptr) return nullptr;
  return (static_cast<T*>(native)->*kMethod)(args);
}

template <typename T, napi_value (T::*kMethod)(const Args&)>
napi_property_descriptor Method(const char* name) {
  return {name, nullptr, &CallMethod<T, kMethod>, nullptr, nullptr, nullptr, napi_default, nullptr};
}

template <typename T, size_t N>
napi_value DefineClass(napi_env env, const char* name,
                       const napi_property_descriptor (&methods)[N]) {
  napi_value cls = nullptr;
  if (napi_define_class(env, name, NAPI_AUTO_LENGTH, &Construct<T>, nullptr, N, methods, &cls) !=
      napi_ok) {
    return nullptr;
  }
  return cls;
}

}  // namespace js
}  // namespace acceptpool

#endif  // ACCEPTPOOL_ADDON_JS_H_
