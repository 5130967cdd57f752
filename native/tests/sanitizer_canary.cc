// A Node-API module with one deliberate error of each kind the ASan + UBSan
// addon build must catch, built beside that addon with the same flags
// (CMakeLists.txt). scripts/test-asan.js loads it with the same preload and
// options as the mocha run and expects an in-range call to return and each
// out-of-range call to end the process with its report: proof that a real
// report during the suite fails the run instead of scrolling past.
//
//   heapWrite(i)  writes byte i of an 8-byte heap block (8: heap-buffer-overflow)
//   signedAdd(n)  returns INT32_MAX + n in int arithmetic (1: signed integer overflow)
#include <node_api.h>

#include <cstdint>
#include <memory>

namespace {

constexpr int32_t kBlockSize = 8;

int32_t Int32Argument(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1] = {nullptr};
  int32_t value = 0;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], &value) != napi_ok) {
    napi_throw_type_error(env, nullptr, "an int32 argument is needed");
  }
  return value;
}

napi_value HeapWrite(napi_env env, napi_callback_info info) {
  const int32_t index = Int32Argument(env, info);
  auto block = std::make_unique<char[]>(kBlockSize);
  // volatile: the write must happen, out of range or not.
  static_cast<volatile char*>(block.get())[index] = 1;
  return nullptr;
}

napi_value SignedAdd(napi_env env, napi_callback_info info) {
  const int32_t n = Int32Argument(env, info);
  volatile int32_t max = INT32_MAX;
  const int32_t sum = max + n;
  napi_value result = nullptr;
  napi_create_int32(env, sum, &result);
  return result;
}

napi_value Init(napi_env env, napi_value exports) {
  const napi_property_descriptor methods[] = {
      {"heapWrite", nullptr, HeapWrite, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"signedAdd", nullptr, SignedAdd, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  if (napi_define_properties(env, exports, 2, methods) != napi_ok) return nullptr;
  return exports;
}

}  // namespace

NAPI_MODULE(acceptpool_sanitizer_canary, Init)
