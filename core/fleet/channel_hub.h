// ChannelHub: wakes the edges' waiting channel polls when something is queued for them.
//
// Each edge has a generation that moves whenever something is posted for it (a command)
// or for every edge. A poll reads the generation, then looks for work; finding none, it
// waits with the generation it read, so a command queued in between wakes it at once
// instead of being missed until the poll times out. Thread-safe; wake callbacks run on
// the waiter's loop, once.
//
// It also knows where the edges that poll serve clients (the URL each announces with its
// polls, kept in memory: every edge polls again within a minute of a core restart), so
// an edge learns the other edges of its site, its peers (edge/link/site_peers.h). An edge
// that appears in a site or changes its URL wakes the polls of the site's other edges,
// and moves the site's version: a poll from an edge holding another version (a new or
// restarted edge) is answered at once, with the peers.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

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

  // --- sites ---
  // An edge's poll: it serves on url (empty: it does not say, or no longer) at site. An
  // edge without a site has no peers.
  void announce(const std::string& edge, const std::string& site, const std::string& url, int64_t now_ms);
  // The other edges of the site that announced a URL within kPeerTtlMs: {name, url}.
  std::vector<std::pair<std::string, std::string>> peers(const std::string& edge, const std::string& site,
                                                         int64_t now_ms);
  // A removed edge: its site's other edges learn it at once.
  void forget(const std::string& edge);
  // Moves whenever the site's edges or their URLs change (and differs across core
  // restarts).
  uint64_t siteVersion(const std::string& site);
  static constexpr int64_t kPeerTtlMs = 90'000;  // the polls come every 20 s at most

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
  struct Presence {
    std::string site, url;
    int64_t seen_ms = 0;
  };
  std::map<std::string, Presence> presence_;  // GUARDED_BY(mu_): by edge
  std::map<std::string, uint64_t> site_versions_;  // GUARDED_BY(mu_)
  uint64_t next_version_ = 0;                      // GUARDED_BY(mu_): from the start time
  void notifySiteLocked(const std::string& site, const std::string& except);
  uint64_t nextVersionLocked();
};

}  // namespace wharf
