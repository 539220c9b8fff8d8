#include "shared/event/work_queue.h"

#include "shared/base/log.h"

namespace wharf {

void runTask(const std::function<void()>& task, const char* where) {
  // The last resort: a task that throws is a bug, logged; the thread goes on.
  try {
    task();
  } catch (const std::exception& e) {
    logError("task failed with an exception", {{"where", where}, {"error", e.what()}});
  } catch (...) {
    logError("task failed with an exception", {{"where", where}, {"error", "unknown"}});
  }
}

WorkQueue::WorkQueue(size_t threads) {
  if (threads == 0) threads = 1;
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { worker(); });
}

WorkQueue::~WorkQueue() { shutdown(); }

void WorkQueue::shutdown() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  std::lock_guard lock(mu_);
  threads_joined_ = true;
}

void WorkQueue::submit(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && threads_joined_) return;
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
}

void WorkQueue::worker() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    runTask(task, "work queue");
  }
}

}  // namespace wharf
