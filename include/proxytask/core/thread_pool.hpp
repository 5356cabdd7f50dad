#pragma once
/// @file
/// A small fixed-size thread pool (std::jthread) with one operation: parallel_for. Work items are
/// handed out dynamically, but each item's result depends only on its index, so results do not
/// depend on the number of threads or on scheduling.

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace proxytask {

class thread_pool {
 public:
  /// A pool of `threads` threads in all: threads - 1 workers, and the caller of parallel_for.
  /// 0 means std::thread::hardware_concurrency().
  explicit thread_pool(unsigned threads = 1) {
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    workers_.reserve(threads - 1);
    for (unsigned w = 1; w < threads; ++w)
      workers_.emplace_back([this, w](std::stop_token stop) { work(stop, w); });
  }
  thread_pool(thread_pool const&) = delete;
  thread_pool& operator=(thread_pool const&) = delete;
  ~thread_pool() {
    {
      // Under the lock, so that no worker can miss the wake-up between its check and its wait.
      std::lock_guard lock(mutex_);
      for (auto& t : workers_) t.request_stop();
    }
    wake_.notify_all();
    workers_.clear();  // join before the mutex and condition variables go
  }

  /// Threads in all, the caller included.
  unsigned size() const noexcept { return static_cast<unsigned>(workers_.size()) + 1; }

  /// Calls body(index, thread) for every index in [0, count), on all threads of the pool, and
  /// returns when all calls have returned. `thread` is in [0, size()): per-thread scratch space
  /// can be indexed by it. The first exception thrown by a call is rethrown here (the remaining
  /// indices are skipped). Not reentrant: body must not call parallel_for on the same pool.
  void parallel_for(std::size_t count, std::function<void(std::size_t, unsigned)> const& body) {
    if (count == 0) return;
    if (workers_.empty() || count == 1) {
      for (std::size_t i = 0; i < count; ++i) body(i, 0);
      return;
    }
    {
      std::lock_guard lock(mutex_);
      job_ = {&body, count};
      next_.store(0);
      active_ = static_cast<unsigned>(workers_.size());
      error_ = nullptr;
      ++generation_;
    }
    wake_.notify_all();
    run_items(0);
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return active_ == 0; });
    job_ = {};
    if (error_) std::rethrow_exception(error_);
  }

 private:
  struct job {
    std::function<void(std::size_t, unsigned)> const* body = nullptr;
    std::size_t count = 0;
  };

  void run_items(unsigned thread) {
    for (;;) {
      std::size_t const i = next_.fetch_add(1);
      if (i >= job_.count) return;
      try {
        (*job_.body)(i, thread);
      } catch (...) {
        std::lock_guard lock(mutex_);
        if (!error_) error_ = std::current_exception();
        next_.store(job_.count);  // skip the rest
      }
    }
  }

  void work(std::stop_token const& stop, unsigned thread) {
    std::size_t seen = 0;
    for (;;) {
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return stop.stop_requested() || generation_ != seen; });
        if (stop.stop_requested()) return;
        seen = generation_;
      }
      run_items(thread);
      std::lock_guard lock(mutex_);
      if (--active_ == 0) done_.notify_one();
    }
  }

  std::vector<std::jthread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  job job_;
  std::atomic<std::size_t> next_{0};
  unsigned active_ = 0;
  std::size_t generation_ = 0;
  std::exception_ptr error_;
};

}  // namespace proxytask
