// EventLog: the core's ordered log of what happened to repositories (pushes, pulls,
// deletes, tag moves; later scans, signatures and policy changes), with a sequence
// number per event. The events API, the live feed (SSE), webhooks and edges read it.
//
// append() is what request handlers call, on loop threads included: it copies a small
// struct into a queue under a mutex and never touches the disk. A writer thread takes
// the queue every batch_interval (or sooner when batch_max events wait) and commits it
// to the EventStore (event_store.h: LMDB, or PostgreSQL shared by replicas), which
// assigns the sequence numbers in queue order; then it tells subscribers. So the log's
// order is the order of append() calls, and readers (query(), subscribers) only ever see
// committed events. Events still queued at a crash are lost; a committed event is
// durable. With a shared store, other replicas' commits reach this log's subscribers
// too.
//
// Coalescing: within one batch, repeated successful manifest pulls with the same actor,
// repository, digest, tag and client address become one event whose `count` says how
// many pulls it stands for (so a busy registry does not write one event per pull). Every
// other event type is never coalesced (count 1).
//
// Retention: the writer thread removes events older than retention_ms and, with
// max_events, the oldest beyond that many (at start and then every prune_interval).
// Sequence numbers are never reused, also after everything was pruned.
//
// Threading: every method is thread-safe. Listeners run on the loop they subscribed
// with (see subscribe()).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/base/clock.h"
#include "shared/base/status.h"

namespace wharf {

class Loop;
class EventStore;

// Event types. Others ("scan.*", "signature.*", "policy.*") are added by their features;
// a type is a dotted "<object>.<action>" string.
namespace event_type {
inline constexpr const char* kBlobPush = "blob.push";
inline constexpr const char* kManifestPush = "manifest.push";
inline constexpr const char* kTagPush = "tag.push";        // a new tag
inline constexpr const char* kTagMove = "tag.move";        // an existing tag now names another manifest
inline constexpr const char* kManifestPull = "manifest.pull";
inline constexpr const char* kManifestDelete = "manifest.delete";
inline constexpr const char* kTagDelete = "tag.delete";
inline constexpr const char* kBlobDelete = "blob.delete";
inline constexpr const char* kRepositoryDelete = "repository.delete";
inline constexpr const char* kPolicySet = "policy.set";        // repository: the policy's scope
inline constexpr const char* kPolicyRemove = "policy.remove";
inline constexpr const char* kScanCompleted = "scan.completed";  // target.digest: the manifest scanned
inline constexpr const char* kScanFailed = "scan.failed";
inline constexpr const char* kScanUpdated = "scan.updated";      // findings changed with a new database
inline constexpr const char* kTrustPublished = "trust.published";  // Notary metadata of a GUN of the repository
inline constexpr const char* kTrustDeleted = "trust.deleted";
inline constexpr const char* kVulnDbUpdated = "vulndb.updated";  // repository "": the whole registry
}  // namespace event_type

// The types above, for validating filters and webhook subscriptions.
const std::vector<std::string>& knownEventTypes();
// True when pattern ("manifest.push", "manifest.*" or "*") matches type.
bool eventTypeMatches(const std::string& pattern, const std::string& type);

struct EventTarget {
  std::string media_type;
  std::string digest;
  uint64_t size = 0;
  std::string tag;
  std::string previous_digest;  // tag.move: what the tag named before
};

struct Event {
  uint64_t seq = 0;     // assigned by the writer; 0 until committed
  int64_t ts_ms = 0;    // set by append() when 0
  std::string type;
  std::string actor;    // account name, "anonymous", or "" for the system
  std::string repository;
  EventTarget target;
  std::string addr;     // the client's address
  std::string method;   // the HTTP method of the request
  uint64_t count = 1;   // coalesced manifest pulls (see above)

  // {"seq","time","ts_ms","type","actor","repository","target":{...},"request":{"addr","method"},"count"}
  nlohmann::json toJson() const;
  static Event fromJson(uint64_t seq, const nlohmann::json& j);
};

struct EventFilter {
  std::string repository;          // exact name
  std::string ns;                  // repositories under "<ns>/"
  std::vector<std::string> types;  // patterns (eventTypeMatches); empty: all
  std::string actor;
  int64_t from_ms = 0;             // inclusive; 0: no bound
  int64_t to_ms = 0;               // inclusive; 0: no bound
  // Whether the reader may see events of a repository; null: all. Called at most once
  // per repository per query.
  std::function<bool(const std::string& repository)> visible;

  bool matches(const Event& e) const;  // everything but `visible`
};

struct EventPage {
  std::vector<Event> events;
  // The cursor to pass as `since` for the next page; nullopt when the log has nothing
  // more right now.
  std::optional<uint64_t> next;
  uint64_t scanned_to = 0;  // the last sequence number looked at (>= since)
};

struct EventLogOptions {
  int64_t retention_ms = 90ll * 86'400'000;  // 0: keep by age forever
  uint64_t max_events = 0;                   // 0: no cap
  int64_t batch_interval_ms = 25;
  size_t batch_max = 4096;          // a batch is written early once this many wait
  size_t queue_max = 1'000'000;     // beyond this the writer is stuck: events are dropped and counted
  int64_t prune_interval_ms = 3'600'000;
  size_t max_scan = 10'000;         // events one query() looks at, visible or not
};

class EventLog {
 public:
  static Result<std::unique_ptr<EventLog>> open(std::unique_ptr<EventStore> store, Clock& clock,
                                                EventLogOptions options);
  ~EventLog();  // commits what is queued, then stops the writer

  // Never blocks on disk. Sets ts_ms when 0.
  void append(Event event);
  // Appends events that belong together (a manifest push and its tag): they get
  // consecutive sequence numbers and go out in one batch.
  void append(std::vector<Event> events);
  // Returns once everything appended before the call is committed (tests, shutdown).
  void flush();

  // Committed events with seq > since matching filter, oldest first, at most limit, and
  // at most options.max_scan looked at. One read of the store (LMDB: cheap enough for
  // loop threads).
  Result<EventPage> query(const EventFilter& filter, uint64_t since, size_t limit) const;
  // The last committed sequence number (0 when none yet).
  uint64_t lastSeq() const;
  // A random id of this log, kept across restarts (webhook envelopes' source.instanceID).
  const std::string& instanceId() const { return instance_id_; }

  // Live feed: after each committed batch (this core's or, with a shared store, another
  // replica's), listener(last_seq) runs on `loop` (posted).
  // When the log closes (closeSubscribers(), destruction), listener(0) runs once and no
  // more. Returns an id for unsubscribe(); 0 when the log is already closed (listener is
  // not called).
  using Listener = std::function<void(uint64_t last_seq)>;
  uint64_t subscribe(Loop& loop, Listener listener);
  void unsubscribe(uint64_t id);
  // Called after each committed batch (as the live feed) with its last seq, on the
  // writer thread or the store's; must not block nor call into the log (the webhook
  // dispatcher uses it to wake up). Replace it with nullptr before whatever it refers to
  // goes away.
  void setCommitHook(std::function<void(uint64_t last_seq)> hook);
  // Ends every live feed (listener(0)) and refuses new ones: call before stopping the
  // HTTP server, so that streams do not hold its shutdown grace.
  void closeSubscribers();

  // Applies retention now (the writer does it periodically). Returns events removed.
  size_t prune();

  struct Stats {
    uint64_t appended = 0;   // append() calls (coalesced pulls included)
    uint64_t written = 0;    // events committed
    uint64_t batches = 0;
    uint64_t dropped = 0;
    uint64_t coalesced = 0;
  };
  Stats stats() const;

 private:
  EventLog(std::unique_ptr<EventStore> store, Clock& clock, EventLogOptions options);
  void run();
  // Tells the live feeds and the commit hook that the log holds events up to last.
  void published(uint64_t last);

  std::unique_ptr<EventStore> store_;
  Clock& clock_;
  EventLogOptions options_;
  std::string instance_id_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Event> queue_;  // GUARDED_BY(mu_)
  // Coalescing of pulls in queue_: key -> index in queue_.
  std::unordered_map<std::string, size_t> pulls_;  // GUARDED_BY(mu_)
  bool stop_ = false;                               // GUARDED_BY(mu_)
  bool flush_requested_ = false;                    // GUARDED_BY(mu_)
  uint64_t queued_ = 0, flushed_ = 0;               // GUARDED_BY(mu_): queue entries, for flush()
  std::condition_variable flushed_cv_;
  Stats stats_;                                     // GUARDED_BY(mu_)

  std::mutex write_mu_;            // one writer of the store at a time (appends, prunes)
  std::atomic<uint64_t> last_seq_{0};  // the highest committed seq published here (under sub_mu_)

  struct Subscriber {
    Loop* loop;
    std::shared_ptr<Listener> listener;
  };
  mutable std::mutex sub_mu_;
  std::map<uint64_t, Subscriber> subscribers_;  // GUARDED_BY(sub_mu_)
  uint64_t next_sub_ = 1;                       // GUARDED_BY(sub_mu_)
  bool closed_ = false;                         // GUARDED_BY(sub_mu_)
  std::function<void(uint64_t)> commit_hook_;  // GUARDED_BY(sub_mu_)

  std::thread thread_;
};

// The big-endian key of a sequence number, and back.
std::string eventSeqKey(uint64_t seq);
uint64_t eventSeqOf(std::string_view key);

}  // namespace wharf
