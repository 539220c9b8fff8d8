#include "shared/event/loop.h"

#include <uv.h>

#include "shared/base/log.h"
#include "shared/base/status.h"

namespace wharf {

Loop::Loop() : loop_(new uv_loop_t), async_(new uv_async_t), thread_id_(std::this_thread::get_id()) {
  WHARF_ASSERT(uv_loop_init(loop_) == 0);
  WHARF_ASSERT(uv_async_init(loop_, async_, &Loop::onAsync) == 0);
  async_->data = this;
}

Loop::~Loop() {
  uv_close(reinterpret_cast<uv_handle_t*>(async_), [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
  // Runs the remaining close callbacks; returns once no handle is active.
  uv_run(loop_, UV_RUN_DEFAULT);
  uv_loop_close(loop_);
  delete loop_;
}

void Loop::run() {
  thread_id_ = std::this_thread::get_id();
  uv_run(loop_, UV_RUN_DEFAULT);
  // Stopped. Owners of handles close them before stopping the loop (see Server::stop);
  // let their close callbacks run.
  uv_run(loop_, UV_RUN_NOWAIT);
}

void Loop::post(std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    pending_.push_back(std::move(fn));
  }
  uv_async_send(async_);
}

void Loop::stop() {
  post([this] {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    uv_stop(loop_);
  });
}

void Loop::onAsync(uv_async_t* handle) { static_cast<Loop*>(handle->data)->drain(); }

void Loop::drain() {
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(pending_);
  }
  for (auto& fn : batch) runTask(fn, "loop");
}

Timer::Timer(Loop& loop) : timer_(new uv_timer_t) {
  WHARF_ASSERT(uv_timer_init(loop.raw(), timer_) == 0);
  timer_->data = this;
}

Timer::~Timer() {
  timer_->data = nullptr;
  if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(timer_))) {
    uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  }
}

void Timer::start(uint64_t timeout_ms, std::function<void()> cb, uint64_t repeat_ms) {
  cb_ = std::move(cb);
  uv_timer_start(timer_, &Timer::onTimer, timeout_ms, repeat_ms);
}

void Timer::stop() {
  uv_timer_stop(timer_);
  cb_ = nullptr;
}

void Timer::onTimer(uv_timer_t* t) {
  auto* self = static_cast<Timer*>(t->data);
  if (self != nullptr && self->cb_) {
    auto cb = self->cb_;  // the callback may destroy the Timer
    runTask(cb, "timer");
  }
}

}  // namespace wharf
