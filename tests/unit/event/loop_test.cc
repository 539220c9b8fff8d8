#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "shared/event/work_queue.h"
#include "tests/support/loop_thread.h"
#include "tests/support/temp_dir.h"

// Each file's own names: the test binaries are unity builds.
namespace loop_test {

using namespace wharf;
using namespace wharf::test;

TEST_CASE("loop: post from other threads runs in order on the loop thread", "[event]") {
  LoopThread lt;
  std::vector<int> order;
  std::atomic<bool> on_loop{true};
  for (int i = 0; i < 100; ++i) {
    lt.loop.post([&, i] {
      if (!lt.loop.inLoopThread()) on_loop = false;
      order.push_back(i);
    });
  }
  lt.call([] { return 0; });  // everything posted before has run
  REQUIRE(order.size() == 100);
  CHECK(std::is_sorted(order.begin(), order.end()));
  CHECK(on_loop);
}

TEST_CASE("timer: fires once, repeats, and stop() drops the callback", "[event]") {
  LoopThread lt;
  std::atomic<int> fired{0};
  auto timer = lt.call([&] { return std::make_shared<Timer>(lt.loop); });
  lt.call([&] {
    timer->start(1, [&] { ++fired; }, 1);
    return 0;
  });
  REQUIRE(waitFor([&] { return fired >= 3; }));
  lt.call([&] {
    timer->stop();
    return 0;
  });
  int after = fired;
  // A self-owning timer is released by stop() (LeakSanitizer checks this in CI's ASan build).
  lt.call([&] {
    auto self = std::make_shared<Timer>(lt.loop);
    self->start(1, [self] { self->stop(); });
    return 0;
  });
  lt.call([&] {
    timer.reset();
    return 0;
  });
  CHECK(fired == after);
}

TEST_CASE("work queue: runs every task, including those queued at shutdown", "[event]") {
  std::atomic<int> ran{0};
  WorkQueue q(3);
  for (int i = 0; i < 500; ++i) q.submit([&] { ++ran; });
  q.shutdown();
  CHECK(ran == 500);
  q.submit([&] { ++ran; });  // after shutdown: dropped, never run
  CHECK(ran == 500);
}

TEST_CASE("work queue: runAsync returns results to the loop", "[event]") {
  LoopThread lt;
  WorkQueue q(2);
  std::promise<std::pair<int, bool>> done;
  runAsync<int>(q, lt.loop, [] { return 42; },
                [&](int v) { done.set_value({v, lt.loop.inLoopThread()}); });
  auto [value, on_loop] = done.get_future().get();
  CHECK(value == 42);
  CHECK(on_loop);
}

}  // namespace loop_test
