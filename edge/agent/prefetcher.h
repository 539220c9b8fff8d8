// Prefetcher: fetches images into the cache before any client asks, on one background
// thread, with the edge's own pull credential (a token from POST /api/v1/edges/self/token,
// limited to the repositories the core allows this edge).
//
// Jobs come from:
//  - the channel's push events, when the policy (shared/fleet/prefetch_policy.h) wants
//    them: "rule" jobs, which wait for the policy's time window;
//  - the `prefetch` command, and `pin` of an image the edge does not wholly hold: run at
//    once; the command's outcome is reported when the job ends;
//  - the scrub, for a corrupt blob it dropped: fetched again ("refetch").
// The queue is kept in <data_dir>/agent/prefetch.json, written before a job is taken, so
// a restart resumes it (a job cut short runs again: every step is idempotent).
//
// Low priority, always: one blob at a time, at most policy.rate bytes per second (full
// speed once a client joins the fill), a blob starts only while fewer than
// max_client_fills client fills are in flight, and a blob is skipped rather than make room
// by evicting pinned blobs or blobs used in the last protect_ms. Blobs are filled through
// the FillCoordinator like any miss, so a client asking meanwhile follows the prefetch
// instead of fetching again, and bytes are verified against their digest before they
// count. Only repositories the core serves are prefetched (not prefix-mapped registries).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "edge/pull/pull_handler.h"
#include "shared/fleet/prefetch_policy.h"
#include "shared/http/blocking_client.h"

namespace wharf {

// A command's failed outcome, {"ok": false, "error": why}: the agent's, and a prefetch
// job's for the command that queued it.
nlohmann::json commandFailure(const std::string& why);

struct PrefetchJob {
  std::string repository;
  std::string reference;  // a tag or manifest digest; a blob digest for "refetch"
  std::string reason;     // "rule", "command", "pin", "refetch"
  uint64_t command = 0;   // the command waiting for this job's outcome (0: none)
  std::string pin;        // "pin": the label to pin the image's closure under
  std::string previous;   // "rule": the manifest the tag named before (its blobs are not fetched)
  uint32_t expected_hits = 1;  // "rule": the pulls the tag had before it moved

  nlohmann::json toJson() const;
  static Result<PrefetchJob> fromJson(const nlohmann::json& j);
  bool operator==(const PrefetchJob& o) const {
    return repository == o.repository && reference == o.reference && reason == o.reason && command == o.command &&
           pin == o.pin && previous == o.previous;
  }
};

class Prefetcher {
 public:
  struct Options {
    std::string path;        // prefetch.json
    std::string core;        // the core's base URL
    std::string credential;  // the edge's (secret)
    ClientOptions tls;
    int64_t protect_ms = 3'600'000;
    size_t max_client_fills = 2;
    size_t max_queue = 1000;
    // A command's outcome ({"ok","result"|"error"}), when its job ends.
    std::function<void(uint64_t command, nlohmann::json outcome)> finished;
  };

  static Result<std::unique_ptr<Prefetcher>> open(EdgeContext& ctx, Options options);
  ~Prefetcher();
  void start();
  void stop();

  void setPolicy(PrefetchPolicy policy);
  PrefetchPolicy policy();
  // Queues a job durably (an identical one already queued: nothing). kResourceExhausted
  // when max_queue jobs wait.
  Status enqueue(PrefetchJob job);
  // A tag pushed at the core (from the channel): queued when the policy wants it.
  // previous: the manifest digest the tag named before (empty: a new tag).
  void pushed(const std::string& repo, const std::string& tag, const std::string& previous);
  size_t queued();

  // Runs a job on the calling thread; its outcome (tests and the thread).
  nlohmann::json run(const PrefetchJob& job);

 private:
  Prefetcher(EdgeContext& ctx, Options options) : ctx_(ctx), options_(std::move(options)) {}
  void loop();
  Status saveLocked();  // REQUIRES: mu_
  // The next job that may run now (commands first; rule jobs inside the window), or
  // nullopt with *wait_ms set to how long until one may.
  std::optional<PrefetchJob> nextLocked(int64_t* wait_ms);  // REQUIRES: mu_
  Result<std::string> tokenFor(const std::string& repo);
  bool stopping();

  struct Fetched {
    uint64_t blobs = 0, cached = 0, bytes = 0;
    uint32_t expected_hits = 1;  // the value of what is fetched, for the cache policy
    nlohmann::json skipped = nlohmann::json::array();  // [{"digest","why"}]
  };
  // A blob into the cache (from the core, for repo); size 0 when unknown.
  Status fetchBlob(BlockingClient& client, const std::string& repo, const std::string& digest, uint64_t size,
                   Fetched* out);
  // A manifest into the cache; its digest.
  Result<std::string> fetchManifest(BlockingClient& client, const std::string& repo, const std::string& reference,
                                    nlohmann::json* parsed, std::string* media_type);

  EdgeContext& ctx_;
  Options options_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<PrefetchJob> queue_;  // GUARDED_BY(mu_)
  PrefetchPolicy policy_;          // GUARDED_BY(mu_)
  bool stopping_ = false;          // GUARDED_BY(mu_)
  std::thread thread_;

  std::mutex token_mu_;
  struct Token {
    std::string header;
    int64_t expires_ms = 0;
  };
  std::map<std::string, Token> tokens_;  // GUARDED_BY(token_mu_)
};

}  // namespace wharf
