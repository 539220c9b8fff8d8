// A temporary directory removed (recursively) when the TempDir goes out of scope.
#pragma once

#include <string>

namespace wharf::test {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Waits until pred() is true or deadline_ms passes; returns pred()'s last value.
// Polls every few milliseconds: a condition with a deadline, not a sleep.
template <typename Pred>
bool waitFor(Pred pred, int deadline_ms = 10000);

}  // namespace wharf::test

#include <chrono>
#include <thread>

namespace wharf::test {
template <typename Pred>
bool waitFor(Pred pred, int deadline_ms) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(deadline_ms);
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}
}  // namespace wharf::test
