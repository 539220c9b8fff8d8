// WorkQueue: a fixed pool of threads for blocking work (hashing, fsync, LMDB write
// transactions). Results go back to a Loop with Loop::post().
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "shared/event/loop.h"

namespace wharf {

class WorkQueue {
 public:
  explicit WorkQueue(size_t threads);
  // Calls shutdown().
  ~WorkQueue();
  // Runs every task already submitted (and those they submit), then joins the
  // threads; submits after that are dropped. Call it before destroying the loops that tasks post results to.
  // Idempotent.
  void shutdown();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // Thread-safe.
  void submit(std::function<void()> task);
  size_t size() const { return threads_.size(); }

 private:
  void worker();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;  // GUARDED_BY(mu_)
  bool stopping_ = false;                    // GUARDED_BY(mu_)
  bool threads_joined_ = false;              // GUARDED_BY(mu_)
  std::vector<std::thread> threads_;
};

// Runs work() on the queue, then done(result) on loop's thread.
template <typename T>
void runAsync(WorkQueue& queue, Loop& loop, std::function<T()> work, std::function<void(T)> done) {
  queue.submit([&loop, work = std::move(work), done = std::move(done)]() mutable {
    auto result = std::make_shared<T>(work());
    loop.post([done = std::move(done), result]() mutable { done(std::move(*result)); });
  });
}

}  // namespace wharf
