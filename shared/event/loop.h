// Loop: owns one uv_loop_t and the thread that runs it.
//
// Threading: every method except post(), stop() and inLoopThread() must be called on the
// loop's thread. post() is the only way into a loop from another thread. Handles are heap
// blocks closed with uv_close and freed in the close callback, so their owners may die
// at any time (see Timer).
#pragma once

#include <functional>
#include <mutex>
#include <thread>
#include <vector>

typedef struct uv_loop_s uv_loop_t;
typedef struct uv_async_s uv_async_t;
typedef struct uv_timer_s uv_timer_t;

namespace wharf {

// Runs task, logging (never propagating) an exception it throws: the last resort of the
// loops and work queues, so that a bug in one task cannot stop the process.
void runTask(const std::function<void()>& task, const char* where);

class Loop {
 public:
  Loop();
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // Runs the loop on the calling thread until stop(); then closes every remaining handle.
  void run();
  // Thread-safe. Runs fn on the loop thread, in order with other posted functions.
  // Functions posted after the loop stopped are destroyed without running.
  void post(std::function<void()> fn);
  // Thread-safe. Makes run() return after closing all handles.
  void stop();
  bool inLoopThread() const { return std::this_thread::get_id() == thread_id_; }
  uv_loop_t* raw() { return loop_; }

 private:
  static void onAsync(uv_async_t* handle);
  void drain();

  uv_loop_t* loop_;
  uv_async_t* async_;
  std::thread::id thread_id_;
  std::mutex mu_;
  std::vector<std::function<void()>> pending_;  // GUARDED_BY(mu_)
  bool stopping_ = false;                       // GUARDED_BY(mu_)
};

// A one-shot or repeating timer on a Loop. Destroying the Timer stops it; the uv handle is
// freed later in its close callback.
class Timer {
 public:
  explicit Timer(Loop& loop);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // Calls cb after timeout_ms, then every repeat_ms if repeat_ms > 0. Replaces any
  // previous schedule.
  void start(uint64_t timeout_ms, std::function<void()> cb, uint64_t repeat_ms = 0);
  // Stops the timer and drops its callback (and what the callback holds: a callback may
  // own the Timer itself and call stop() to release it).
  void stop();

 private:
  static void onTimer(uv_timer_t* t);
  uv_timer_t* timer_;
  std::function<void()> cb_;
};

}  // namespace wharf
