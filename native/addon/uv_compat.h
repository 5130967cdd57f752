// The few libuv calls the drivers make, on every platform.
//
// POSIX builds take them from Node's own <uv.h>. Node's Windows headers are
// not on this build machine (the addon is cross-built with mingw-w64), so on
// Windows the handful of functions node.exe exports are declared here, and
// the handle types are opaque storage: the drivers only ever touch a
// handle's first field (`data`, first in every libuv handle) and hand the
// rest to libuv. The storage is far larger than any libuv handle.
#ifndef ACCEPTPOOL_ADDON_UV_COMPAT_H_
#define ACCEPTPOOL_ADDON_UV_COMPAT_H_

#if !defined(_WIN32)
#include <uv.h>
#else

extern "C" {

typedef struct uv_loop_s uv_loop_t;

#define ACCEPTPOOL_UV_OPAQUE_HANDLE(name) \
  typedef struct name##_s {               \
    void* data;                           \
    alignas(16) unsigned char rest[1024]; \
  } name##_t

ACCEPTPOOL_UV_OPAQUE_HANDLE(uv_handle);
ACCEPTPOOL_UV_OPAQUE_HANDLE(uv_async);
ACCEPTPOOL_UV_OPAQUE_HANDLE(uv_poll);
#undef ACCEPTPOOL_UV_OPAQUE_HANDLE

typedef void (*uv_async_cb)(uv_async_t* handle);
typedef void (*uv_poll_cb)(uv_poll_t* handle, int status, int events);
typedef void (*uv_close_cb)(uv_handle_t* handle);

enum uv_poll_event { UV_READABLE = 1, UV_WRITABLE = 2 };

__declspec(dllimport) int uv_async_init(uv_loop_t* loop, uv_async_t* handle, uv_async_cb cb);
__declspec(dllimport) int uv_async_send(uv_async_t* handle);
__declspec(dllimport) int uv_poll_init(uv_loop_t* loop, uv_poll_t* handle, int fd);
__declspec(dllimport) int uv_poll_start(uv_poll_t* handle, int events, uv_poll_cb cb);
__declspec(dllimport) void uv_close(uv_handle_t* handle, uv_close_cb close_cb);
__declspec(dllimport) void uv_ref(uv_handle_t* handle);
__declspec(dllimport) void uv_unref(uv_handle_t* handle);

}  // extern "C"

#endif  // _WIN32

#endif  // ACCEPTPOOL_ADDON_UV_COMPAT_H_
