// An EventLoop of the tests' own (POSIX: poll() and an eventfd), so the
// drivers run in native tests without libuv or Node: the test's thread plays
// the JS thread, and RunOnce() is one turn of its loop.
#ifndef ACCEPTPOOL_NATIVE_TESTS_TEST_LOOP_H_
#define ACCEPTPOOL_NATIVE_TESTS_TEST_LOOP_H_

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include "drivers/event_loop.h"

namespace acceptpool_test {

using acceptpool::EventLoop;
using acceptpool::LoopAsync;
using acceptpool::LoopCallback;
using acceptpool::LoopWatcher;
using acceptpool::Status;

class TestLoop final : public EventLoop {
 public:
  TestLoop() : wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  ~TestLoop() override {
    if (wake_fd_ >= 0) close(wake_fd_);
  }
  TestLoop(const TestLoop&) = delete;
  TestLoop& operator=(const TestLoop&) = delete;

  Status NewAsync(LoopCallback callback, void* context, std::unique_ptr<LoopAsync>* out) override {
    auto async = std::make_unique<Async>(this, callback, context);
    asyncs_.push_back(async.get());
    *out = std::move(async);
    return Status::Ok();
  }

  Status WatchReadable(int descriptor, LoopCallback callback, void* context,
                       std::unique_ptr<LoopWatcher>* out) override {
    auto watcher = std::make_unique<Watcher>(this, descriptor, callback, context);
    watchers_.push_back(watcher.get());
    *out = std::move(watcher);
    return Status::Ok();
  }

  // One turn: waits up to `ms` for a wake or a readable descriptor, then
  // runs what is due. Returns the number of callbacks run.
  int RunOnce(int ms) {
    std::vector<pollfd> fds;
    fds.push_back(pollfd{wake_fd_, POLLIN, 0});
    for (Watcher* w : watchers_) fds.push_back(pollfd{w->descriptor, POLLIN, 0});
    int ready = poll(fds.data(), fds.size(), ms);
    if (ready < 0 && errno != EINTR) return 0;
    uint64_t drained;
    while (read(wake_fd_, &drained, sizeof(drained)) > 0) {
    }
    int ran = 0;
    // Callbacks may destroy handles (their own too): run from copies and
    // skip what is gone.
    std::vector<Async*> asyncs = asyncs_;
    for (Async* a : asyncs) {
      if (Has(asyncs_, a) && a->pending.exchange(false)) {
        a->callback(a->context);
        ++ran;
      }
    }
    std::vector<Watcher*> watchers = watchers_;
    for (size_t i = 0; i < watchers.size(); ++i) {
      if ((fds[i + 1].revents & (POLLIN | POLLERR | POLLHUP)) != 0 && Has(watchers_, watchers[i])) {
        watchers[i]->callback(watchers[i]->context);
        ++ran;
      }
    }
    callbacks_ += ran;
    return ran;
  }

  // Turns the loop until `done` holds or `ms` pass; true if it held.
  bool RunUntil(const std::function<bool()>& done, int ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      RunOnce(5);
    }
    return true;
  }

  // Handles that exist now (a stopped driver must leave none).
  size_t handles() const { return asyncs_.size() + watchers_.size(); }
  uint64_t callbacks() const { return callbacks_; }

 private:
  struct Async final : LoopAsync {
    Async(TestLoop* l, LoopCallback cb, void* ctx) : loop(l), callback(cb), context(ctx) {}
    ~Async() override { loop->Forget(&loop->asyncs_, this); }
    void Send() override {
      pending.store(true);
      uint64_t one = 1;
      ssize_t n = write(loop->wake_fd_, &one, sizeof(one));
      (void)n;
    }
    void SetRef(bool) override {}
    TestLoop* loop;
    LoopCallback callback;
    void* context;
    std::atomic<bool> pending{false};
  };

  struct Watcher final : LoopWatcher {
    Watcher(TestLoop* l, int fd, LoopCallback cb, void* ctx)
        : loop(l), descriptor(fd), callback(cb), context(ctx) {}
    ~Watcher() override { loop->Forget(&loop->watchers_, this); }
    void SetRef(bool) override {}
    TestLoop* loop;
    int descriptor;
    LoopCallback callback;
    void* context;
  };

  template <typename T>
  static bool Has(const std::vector<T*>& list, T* item) {
    return std::find(list.begin(), list.end(), item) != list.end();
  }
  template <typename T>
  void Forget(std::vector<T*>* list, T* item) {
    list->erase(std::remove(list->begin(), list->end(), item), list->end());
  }

  int wake_fd_;
  std::vector<Async*> asyncs_;
  std::vector<Watcher*> watchers_;
  uint64_t callbacks_ = 0;
};

}  // namespace acceptpool_test

#endif  // ACCEPTPOOL_NATIVE_TESTS_TEST_LOOP_H_
