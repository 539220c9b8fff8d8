// EdgeAgent: the edge's link to its core, opened by the edge (sites sit behind NAT).
//
// Two threads:
//  - the channel: a long poll (GET /api/v1/edges/self/channel?after=<last command done>)
//    that brings commands down. Each command runs once, in id order; its outcome goes in
//    the journal (<data_dir>/agent/state.json, written durably) before it is acknowledged
//    (POST /api/v1/edges/self/commands/<id>), and unacknowledged outcomes are sent again
//    after a restart or a lost answer. A command killed mid-way (kill -9) runs again: every
//    kind is idempotent. The channel reconnects with jittered exponential backoff (1 s to
//    60 s); while the core is out of reach the edge serves from its cache as before.
//  - the reporter: saves the counters every few seconds and POSTs a report every
//    report_interval and at shutdown (see edge/agent/edge_stats.h).
//
// The drained state is in the journal too, so a drained edge stays drained across restarts.
//
// Each poll tells the core where this edge serves (advertise_url) and brings back the
// other edges of its site (EdgeContext::peers, and the cache's view of which copies a
// peer owns).
//
// The channel also brings the core's push events (for prefetch): the agent hands each to
// the Prefetcher, which queues what its policy wants, and keeps its place in the event log
// in the journal ("events") only once they are queued. The `prefetch` command, and `pin`
// of an image not wholly here, become prefetch jobs: the command counts as done once its
// job is queued (durably), and its outcome is acknowledged when the job ends.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "edge/agent/prefetcher.h"
#include "edge/agent/pull_history.h"
#include "edge/link/registration.h"
#include "edge/pull/pull_handler.h"
#include "shared/http/blocking_client.h"

namespace wharf {

struct AgentOptions {
  std::string state_dir;                 // <data_dir>/agent
  int64_t report_interval_ms = 60'000;
  int64_t save_interval_ms = 2'000;      // counters to disk
  int poll_wait_s = 20;                  // the channel's long poll
  ClientOptions tls;                     // to reach the core
  std::string version;                   // wharf-edge's
  std::function<void()> refresh;         // fetch keys and settings now (the `refresh` command)
  int64_t prefetch_protect_ms = 3'600'000;  // prefetch never evicts content used more recently
};

class EdgeAgent {
 public:
  // Reads the journal (applies a saved drain) and the counters.
  static Result<std::unique_ptr<EdgeAgent>> open(EdgeContext& ctx, const EdgeIdentity& identity, AgentOptions options);
  ~EdgeAgent();
  // Where the site's other edges reach this one (told to the core with each poll); call
  // before start(). Not called: this edge does not take part in its site's cache.
  void advertise(std::string url) { advertise_url_ = std::move(url); }
  void start();
  // Stops both threads, then sends the final report (best effort, a few seconds at most).
  void stop();
  EdgeStats& stats() { return *stats_; }
  Prefetcher& prefetcher() { return *prefetcher_; }
  // The core's settings for this edge changed (or were read at start): the prefetch policy.
  void applySettings(const nlohmann::json& settings);

  // Runs one command (the channel's; public for tests). {"ok","result"|"error"}, or
  // {"pending":true} when a prefetch job will give the outcome.
  nlohmann::json execute(uint64_t id, const std::string& kind, const nlohmann::json& args);

 private:
  EdgeAgent(EdgeContext& ctx, EdgeIdentity identity, AgentOptions options)
      : ctx_(ctx), identity_(std::move(identity)), options_(std::move(options)) {}
  void channelLoop();
  void reportLoop();
  Status sendReport(bool final);
  Status saveJournal();  // REQUIRES: journal_mu_
  void acknowledgePending(BlockingClient& client);
  // A prefetch job's outcome for command id: journaled, then acknowledged.
  void finishCommand(uint64_t id, nlohmann::json outcome);
  // Waits up to ms unless stopping; returns false when stopping.
  bool pause(int64_t ms);
  std::unique_ptr<BlockingClient> client(int timeout_ms);

  EdgeContext& ctx_;
  EdgeIdentity identity_;
  AgentOptions options_;
  std::unique_ptr<EdgeStats> stats_;
  std::unique_ptr<PullHistory> pulls_;
  std::unique_ptr<Prefetcher> prefetcher_;
  int64_t started_ms_ = 0;
  std::string advertise_url_;

  Status saveRevocations(const RevocationList& list);
  uint64_t revocations_version_ = 0;  // channel thread only (and open())
  uint64_t peers_version_ = 0;        // channel thread only: the site's edges as last told

  std::mutex journal_mu_;
  uint64_t last_done_ = 0;                                  // GUARDED_BY(journal_mu_)
  std::optional<uint64_t> events_;                          // GUARDED_BY(journal_mu_): the event log read to
  nlohmann::json unacked_ = nlohmann::json::array();        // GUARDED_BY(journal_mu_)

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;                     // GUARDED_BY(mu_)
  BlockingClient* polling_ = nullptr;         // GUARDED_BY(mu_): interrupted by stop()
  BlockingClient* reporting_ = nullptr;       // GUARDED_BY(mu_): likewise
  std::thread channel_, reporter_;
};

}  // namespace wharf
