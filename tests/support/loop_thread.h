// A Loop running on its own thread, for tests of loop-bound components.
#pragma once

#include <future>
#include <thread>

#include "shared/event/loop.h"

namespace wharf::test {

struct LoopThread {
  LoopThread() : thread([this] { loop.run(); }) {}
  ~LoopThread() {
    loop.stop();
    thread.join();
  }
  // Runs f on the loop thread and returns its result.
  template <typename F>
  auto call(F f) {
    std::promise<decltype(f())> p;
    loop.post([&] { p.set_value(f()); });
    return p.get_future().get();
  }
  Loop loop;
  std::thread thread;
};

}  // namespace wharf::test
