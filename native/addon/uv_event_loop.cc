#include "addon/uv_event_loop.h"

#include "addon/uv_compat.h"

namespace acceptpool {
namespace {

// Owns a libuv handle. uv_close() is asynchronous, so the memory is handed to
// the close callback, which frees it; no callback of the handle runs after
// uv_close().
template <typename T>
class UvHandle {
 public:
  UvHandle() : handle_(std::make_unique<T>()) {}
  UvHandle(const UvHandle&) = delete;
  UvHandle& operator=(const UvHandle&) = delete;
  ~UvHandle() {
    if (!initialized_) return;
    uv_close(reinterpret_cast<uv_handle_t*>(handle_.release()),
             [](uv_handle_t* h) { std::unique_ptr<T> owned(reinterpret_cast<T*>(h)); });
  }

  T* get() { return handle_.get(); }
  void MarkInitialized() { initialized_ = true; }
  void SetRef(bool ref) {
    if (!initialized_) return;
    uv_handle_t* h = reinterpret_cast<uv_handle_t*>(handle_.get());
    if (ref) {
      uv_ref(h);
    } else {
      uv_unref(h);
    }
  }

 private:
  std::unique_ptr<T> handle_;
  bool initialized_ = false;
};

Status UvStatus(int rc, const char* call) { return Status::System(SysError::kUnknown, rc, call); }

class UvAsync final : public LoopAsync {
 public:
  UvAsync(LoopCallback callback, void* context) : callback_(callback), context_(context) {}

  Status Init(uv_loop_t* loop) {
    handle_.get()->data = this;
    int rc = uv_async_init(loop, handle_.get(), [](uv_async_t* h) {
      UvAsync* self = static_cast<UvAsync*>(h->data);
      self->callback_(self->context_);
    });
    if (rc != 0) return UvStatus(rc, "uv_async_init");
    handle_.MarkInitialized();
    return Status::Ok();
  }

  void Send() override { uv_async_send(handle_.get()); }
  void SetRef(bool ref) override { handle_.SetRef(ref); }

 private:
  LoopCallback callback_;
  void* context_;
  UvHandle<uv_async_t> handle_;
};

class UvPollWatcher final : public LoopWatcher {
 public:
  UvPollWatcher(LoopCallback callback, void* context) : callback_(callback), context_(context) {}

  Status Init(uv_loop_t* loop, int descriptor) {
    handle_.get()->data = this;
    int rc = uv_poll_init(loop, handle_.get(), descriptor);
    if (rc != 0) return UvStatus(rc, "uv_poll_init");
    handle_.MarkInitialized();
    rc = uv_poll_start(handle_.get(), UV_READABLE, [](uv_poll_t* h, int, int) {
      UvPollWatcher* self = static_cast<UvPollWatcher*>(h->data);
      self->callback_(self->context_);
    });
    if (rc != 0) return UvStatus(rc, "uv_poll_start");
    return Status::Ok();
  }

  void SetRef(bool ref) override { handle_.SetRef(ref); }

 private:
  LoopCallback callback_;
  void* context_;
  UvHandle<uv_poll_t> handle_;
};

class UvEventLoop final : public EventLoop {
 public:
  explicit UvEventLoop(uv_loop_t* loop) : loop_(loop) {}

  Status NewAsync(LoopCallback callback, void* context, std::unique_ptr<LoopAsync>* out) override {
    auto async = std::make_unique<UvAsync>(callback, context);
    Status st = async->Init(loop_);
    if (st.ok()) *out = std::move(async);
    return st;
  }

  Status WatchReadable(int descriptor, LoopCallback callback, void* context,
                       std::unique_ptr<LoopWatcher>* out) override {
    auto watcher = std::make_unique<UvPollWatcher>(callback, context);
    Status st = watcher->Init(loop_, descriptor);
    if (st.ok()) *out = std::move(watcher);
    return st;
  }

 private:
  uv_loop_t* loop_;
};

}  // namespace

std::unique_ptr<EventLoop> MakeNodeEventLoop(napi_env env) {
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) return nullptr;
  return std::make_unique<UvEventLoop>(loop);
}

}  // namespace acceptpool
