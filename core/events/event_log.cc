#include "core/events/event_log.h"

#include "core/events/event_store.h"

#include <ctime>

#include "shared/base/ids.h"
#include "shared/base/json_body.h"
#include "shared/base/log.h"
#include "shared/event/loop.h"
#include "shared/metrics/metrics.h"

namespace wharf {
namespace {

using nlohmann::json;

struct EventMetrics {
  Counter& appended;
  Counter& written;
  Counter& dropped;
  Counter& coalesced;
  Counter& pruned;
  Histogram& batch_seconds;
  Gauge& queue_depth;
  Gauge& last_batch;
  static EventMetrics& get() {
    static EventMetrics m{
        MetricsRegistry::global().counter("wharf_events_appended_total", "Events appended (coalesced pulls included)."),
        MetricsRegistry::global().counter("wharf_events_written_total", "Events committed to the event log."),
        MetricsRegistry::global().counter("wharf_events_dropped_total", "Events dropped because the writer fell behind."),
        MetricsRegistry::global().counter("wharf_events_coalesced_total", "Manifest pulls folded into an earlier event."),
        MetricsRegistry::global().counter("wharf_events_pruned_total", "Events removed by retention."),
        MetricsRegistry::global().histogram("wharf_events_batch_seconds", "Time to commit one batch of events."),
        MetricsRegistry::global().gauge("wharf_events_queue_depth", "Events waiting for the writer."),
        MetricsRegistry::global().gauge("wharf_events_last_batch_size", "Events in the last committed batch."),
    };
    return m;
  }
};


}  // namespace

const std::vector<std::string>& knownEventTypes() {
  static const std::vector<std::string> kTypes = {
      event_type::kBlobPush,        event_type::kManifestPush, event_type::kTagPush,
      event_type::kTagMove,         event_type::kManifestPull, event_type::kManifestDelete,
      event_type::kTagDelete,       event_type::kBlobDelete,   event_type::kRepositoryDelete,
      event_type::kPolicySet,       event_type::kPolicyRemove, event_type::kScanCompleted,
      event_type::kScanFailed,      event_type::kScanUpdated,  event_type::kVulnDbUpdated,
      event_type::kTrustPublished,  event_type::kTrustDeleted};
  return kTypes;
}

bool eventTypeMatches(const std::string& pattern, const std::string& type) {
  if (pattern == "*" || pattern == type) return true;
  if (pattern.size() >= 2 && pattern.compare(pattern.size() - 2, 2, ".*") == 0) {
    return type.compare(0, pattern.size() - 1, pattern, 0, pattern.size() - 1) == 0;
  }
  return false;
}


json Event::toJson() const {
  json t = {{"mediaType", target.media_type}, {"digest", target.digest}, {"size", target.size}};
  if (!target.tag.empty()) t["tag"] = target.tag;
  if (!target.previous_digest.empty()) t["previousDigest"] = target.previous_digest;
  json j = {{"seq", seq},
            {"time", formatRfc3339(ts_ms)},
            {"ts_ms", ts_ms},
            {"type", type},
            {"actor", actor},
            {"repository", repository},
            {"target", t},
            {"request", {{"addr", addr}, {"method", method}}},
            {"count", count}};
  return j;
}

std::string storedEventBody(const Event& e) {
  json j = e.toJson();
  j.erase("seq");
  j.erase("time");
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Event Event::fromJson(uint64_t seq, const json& j) {
  Event e;
  e.seq = seq;
  e.ts_ms = j.value("ts_ms", int64_t{0});
  e.type = jsonStringOr(j, "type");
  e.actor = jsonStringOr(j, "actor");
  e.repository = jsonStringOr(j, "repository");
  if (auto t = j.find("target"); t != j.end() && t->is_object()) {
    e.target.media_type = jsonStringOr(*t, "mediaType");
    e.target.digest = jsonStringOr(*t, "digest");
    e.target.size = t->value("size", uint64_t{0});
    e.target.tag = jsonStringOr(*t, "tag");
    e.target.previous_digest = jsonStringOr(*t, "previousDigest");
  }
  if (auto r = j.find("request"); r != j.end() && r->is_object()) {
    e.addr = jsonStringOr(*r, "addr");
    e.method = jsonStringOr(*r, "method");
  }
  e.count = j.value("count", uint64_t{1});
  return e;
}

bool EventFilter::matches(const Event& e) const {
  if (!repository.empty() && e.repository != repository) return false;
  if (!ns.empty() && e.repository.compare(0, ns.size() + 1, ns + "/") != 0) return false;
  if (!actor.empty() && e.actor != actor) return false;
  if (from_ms != 0 && e.ts_ms < from_ms) return false;
  if (to_ms != 0 && e.ts_ms > to_ms) return false;
  if (!types.empty()) {
    bool any = false;
    for (const auto& p : types) any = any || eventTypeMatches(p, e.type);
    if (!any) return false;
  }
  return true;
}

Result<std::unique_ptr<EventLog>> EventLog::open(std::unique_ptr<EventStore> store, Clock& clock,
                                                 EventLogOptions options) {
  auto last = store->lastSeq();
  if (!last.isOk()) return last.status();
  std::unique_ptr<EventLog> log(new EventLog(std::move(store), clock, options));
  log->last_seq_ = *last;
  log->prune();
  // Other replicas' commits: the live feeds follow them as they follow this core's.
  // (The store's own pointer: store_ is already null while the store stops its thread.)
  log->store_->watch([l = log.get(), store = log->store_.get()](uint64_t last_seq) {
    if (last_seq == 0) {
      auto now = store->lastSeq();
      if (!now.isOk()) return;
      last_seq = *now;
    }
    l->published(last_seq);
  });
  log->thread_ = std::thread([l = log.get()] { l->run(); });
  return log;
}

EventLog::EventLog(std::unique_ptr<EventStore> store, Clock& clock, EventLogOptions options)
    : store_(std::move(store)), clock_(clock), options_(options), instance_id_(store_->instanceId()) {}

void EventLog::published(uint64_t last) {
  std::lock_guard s(sub_mu_);
  // Only news: a replica's notification of what this core already told (its own
  // commits come back that way too), or a late one, changes nothing.
  if (last <= last_seq_.load()) return;
  last_seq_ = last;
  if (commit_hook_) commit_hook_(last);
  for (auto& [id, sub] : subscribers_) {
    auto listener = sub.listener;
    sub.loop->post([listener, last] { (*listener)(last); });
  }
}

EventLog::~EventLog() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // The store's notification thread calls into this log: it stops first.
  store_.reset();
  closeSubscribers();
}

void EventLog::append(std::vector<Event> events) {
  int64_t now = clock_.nowMillis();
  {
    std::lock_guard lock(mu_);
    for (auto& e : events) {
      if (e.ts_ms == 0) e.ts_ms = now;
      ++stats_.appended;
      EventMetrics::get().appended.inc();
      if (queue_.size() >= options_.queue_max) {
        ++stats_.dropped;
        EventMetrics::get().dropped.inc();
        continue;
      }
      queue_.push_back(std::move(e));
      ++queued_;
    }
  }
}

void EventLog::append(Event e) {
  if (e.ts_ms == 0) e.ts_ms = clock_.nowMillis();
  auto& metrics = EventMetrics::get();
  metrics.appended.inc();
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    ++stats_.appended;
    if (e.type == event_type::kManifestPull) {
      std::string key;
      key.reserve(e.actor.size() + e.repository.size() + e.target.digest.size() + e.target.tag.size() +
                  e.addr.size() + 4);
      key.append(e.actor).push_back('\0');
      key.append(e.repository).push_back('\0');
      key.append(e.target.digest).push_back('\0');
      key.append(e.target.tag).push_back('\0');
      key.append(e.addr);
      auto [it, inserted] = pulls_.try_emplace(std::move(key), queue_.size());
      if (!inserted) {
        queue_[it->second].count += e.count;
        ++stats_.coalesced;
        metrics.coalesced.inc();
        return;
      }
    }
    if (queue_.size() >= options_.queue_max) {
      ++stats_.dropped;
      metrics.dropped.inc();
      return;
    }
    queue_.push_back(std::move(e));
    ++queued_;
    metrics.queue_depth.set(static_cast<int64_t>(queue_.size()));
    // The writer wakes on its own every batch_interval; waking it per event would cost a
    // context switch per request.
    wake = queue_.size() == options_.batch_max;
  }
  if (wake) cv_.notify_one();
}

void EventLog::flush() {
  std::unique_lock lock(mu_);
  uint64_t target = queued_;
  if (flushed_ >= target) return;
  flush_requested_ = true;
  cv_.notify_one();
  flushed_cv_.wait(lock, [&] { return flushed_ >= target; });
}

void EventLog::run() {
  int64_t last_prune = monotonicMillis();
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait_for(lock, std::chrono::milliseconds(options_.batch_interval_ms),
                 [this] { return stop_ || flush_requested_ || queue_.size() >= options_.batch_max; });
    flush_requested_ = false;
    // A flush() request, a full batch or the interval: take whatever waits.
    std::vector<Event> batch;
    batch.swap(queue_);
    pulls_.clear();
    bool stopping = stop_;
    lock.unlock();
    EventMetrics::get().queue_depth.set(0);
    if (!batch.empty()) {
      int64_t start = monotonicMillis();
      Result<uint64_t> last = Status(Code::kInternal, "not written");
      {
        std::lock_guard w(write_mu_);
        last = store_->append(batch);
      }
      if (!last.isOk()) {
        logError("event log write failed", {{"error", last.status().toString()}, {"events", batch.size()}});
      } else {
        auto& m = EventMetrics::get();
        m.written.inc(batch.size());
        m.last_batch.set(static_cast<int64_t>(batch.size()));
        m.batch_seconds.observe(static_cast<double>(monotonicMillis() - start) / 1000.0);
        published(*last);
      }
    }
    int64_t now = monotonicMillis();
    if (now - last_prune >= options_.prune_interval_ms) {
      last_prune = now;
      prune();
    }
    lock.lock();
    if (!batch.empty()) {
      flushed_ += batch.size();
      ++stats_.batches;
      stats_.written += batch.size();
    }
    flushed_cv_.notify_all();
    if (stopping && queue_.empty()) return;
  }
}

size_t EventLog::prune() {
  std::lock_guard w(write_mu_);
  int64_t cutoff = options_.retention_ms > 0 ? clock_.nowMillis() - options_.retention_ms : INT64_MIN;
  size_t n = store_->prune(cutoff, options_.max_events);
  if (n > 0) {
    EventMetrics::get().pruned.inc(n);
    logInfo("pruned events", {{"removed", n}});
  }
  return n;
}

Result<EventPage> EventLog::query(const EventFilter& filter, uint64_t since, size_t limit) const {
  EventPage page;
  page.scanned_to = since;
  std::unordered_map<std::string, bool> visible;
  size_t scanned = 0;
  bool more = false;
  // One more than max_scan is read: its presence says there is more.
  Status st = store_->scan(since, options_.max_scan + 1, [&](Event e) {
    if (page.events.size() >= limit || scanned >= options_.max_scan) {
      more = true;
      return false;
    }
    ++scanned;
    page.scanned_to = e.seq;
    if (!filter.matches(e)) return true;
    if (filter.visible) {
      auto it = visible.find(e.repository);
      if (it == visible.end()) it = visible.emplace(e.repository, filter.visible(e.repository)).first;
      if (!it->second) return true;
    }
    page.events.push_back(std::move(e));
    return true;
  });
  if (!st.isOk()) return st;
  if (more) page.next = page.scanned_to;
  return page;
}

uint64_t EventLog::lastSeq() const { return last_seq_.load(); }

uint64_t EventLog::subscribe(Loop& loop, Listener listener) {
  std::lock_guard lock(sub_mu_);
  if (closed_) return 0;
  uint64_t id = next_sub_++;
  subscribers_[id] = Subscriber{&loop, std::make_shared<Listener>(std::move(listener))};
  return id;
}

void EventLog::unsubscribe(uint64_t id) {
  std::lock_guard lock(sub_mu_);
  subscribers_.erase(id);
}

void EventLog::setCommitHook(std::function<void(uint64_t)> hook) {
  std::lock_guard lock(sub_mu_);
  commit_hook_ = std::move(hook);
}

void EventLog::closeSubscribers() {
  std::lock_guard lock(sub_mu_);
  closed_ = true;
  for (auto& [id, sub] : subscribers_) {
    auto listener = sub.listener;
    sub.loop->post([listener] { (*listener)(0); });
  }
  subscribers_.clear();
}

EventLog::Stats EventLog::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}


}  // namespace wharf
