// ChannelHub: wakes the edges' waiting channel polls when something is queued for them.
//
// Each edge has a generation that moves whenever something is posted for it (a command)
// or for every edge. A poll reads the generation, then looks for work; finding none, it
// waits with the generation it read, so a command queued in between wakes it at once
// instead of being missed until the poll times out. Thread-safe; wake callbacks run on
// the waiter's loop, once.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>

namespace wharf {

class Loop;

class ChannelHub {
 public:
  uint64_t generation(const std::string& edge);
  // Calls wake once on loop when the edge's generation is past seen (soon, if it is
  // already). Returns an id for cancel().
  uint64_t wait(const std::string& edge, uint64_t seen, Loop& loop, std::function<void()> wake);
  void cancel(uint64_t id);
  void notify(const std::string& edge);
  void notifyAll();
  // Shutting down: every waiter wakes now, and later waits wake at once (the polls answer
  // without waiting, so they never hold the server's shutdown).
  void close();
  bool closed();
  size_t waiting();

 private:
  struct Waiter {
    std::string edge;
    Loop* loop;
    std::function<void()> wake;
  };
  uint64_t generationLocked(const std::string& edge) const;
  void wakeLocked(const std::string* edge);  // null: every waiter

  std::mutex mu_;
  uint64_t all_ = 0;                          // GUARDED_BY(mu_)
  bool closed_ = false;                       // GUARDED_BY(mu_)
  std::map<std::string, uint64_t> per_edge_;  // GUARDED_BY(mu_)
  std::map<uint64_t, Waiter> waiters_;        // GUARDED_BY(mu_)
  uint64_t next_id_ = 1;                      // GUARDED_BY(mu_)
};

}  // namespace wharf
