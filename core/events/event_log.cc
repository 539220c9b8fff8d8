#include "core/events/event_log.h"

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

std::string eventSeqKey(uint64_t seq) { return bigEndian64(seq); }
uint64_t eventSeqOf(std::string_view key) { return fromBigEndian64(key); }

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

Result<std::unique_ptr<EventLog>> EventLog::open(std::shared_ptr<LmdbEnv> env, Clock& clock, EventLogOptions options) {
  auto events = env->openDb("events");
  if (!events.isOk()) return events.status();
  auto meta = env->openDb("events_meta");
  if (!meta.isOk()) return meta.status();
  std::unique_ptr<EventLog> log(new EventLog(env, *events, *meta, clock, options));
  {
    auto txn = env->write();
    if (!txn.isOk()) return txn.status();
    std::string_view v;
    if (txn->get(*meta, "schema", &v).isOk()) {
      if (v != std::to_string(kEventLogSchemaVersion)) {
        return Status(Code::kCorruption, "the event log has layout version " + std::string(v) + ", this build reads " +
                                             std::to_string(kEventLogSchemaVersion));
      }
    } else {
      WHARF_RETURN_IF_ERROR(txn->put(*meta, "schema", std::to_string(kEventLogSchemaVersion)));
    }
    if (txn->get(*meta, "instance", &v).isOk()) {
      log->instance_id_ = std::string(v);
    } else {
      log->instance_id_ = newUuid();
      WHARF_RETURN_IF_ERROR(txn->put(*meta, "instance", log->instance_id_));
    }
    if (txn->get(*meta, "last_seq", &v).isOk()) log->last_seq_ = std::strtoull(std::string(v).c_str(), nullptr, 10);
    WHARF_RETURN_IF_ERROR(txn->commit());
  }
  log->prune();
  log->thread_ = std::thread([l = log.get()] { l->run(); });
  return log;
}

EventLog::EventLog(std::shared_ptr<LmdbEnv> env, Dbi events, Dbi meta, Clock& clock, EventLogOptions options)
    : env_(std::move(env)), events_db_(events), meta_db_(meta), clock_(clock), options_(options) {}

EventLog::~EventLog() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
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
      Status st;
      {
        std::lock_guard w(write_mu_);
        st = writeBatch(batch);
      }
      if (!st.isOk()) {
        logError("event log write failed", {{"error", st.toString()}, {"events", batch.size()}});
      } else {
        auto& m = EventMetrics::get();
        m.written.inc(batch.size());
        m.last_batch.set(static_cast<int64_t>(batch.size()));
        m.batch_seconds.observe(static_cast<double>(monotonicMillis() - start) / 1000.0);
        uint64_t last = last_seq_.load();
        std::lock_guard s(sub_mu_);
        if (commit_hook_) commit_hook_(last);
        for (auto& [id, sub] : subscribers_) {
          auto listener = sub.listener;
          sub.loop->post([listener, last] { (*listener)(last); });
        }
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

Status EventLog::writeBatch(std::vector<Event>& batch) {
  // One transaction per batch. The sequence numbers are assigned here, in queue order,
  // and only published (last_seq_) once the transaction committed.
  uint64_t seq = last_seq_.load();
  auto txn = env_->write();
  if (!txn.isOk()) return txn.status();
  for (auto& e : batch) {
    e.seq = ++seq;
    json j = e.toJson();
    j.erase("seq");
    j.erase("time");
    WHARF_RETURN_IF_ERROR(txn->put(events_db_, eventSeqKey(e.seq), j.dump(-1, ' ', false, json::error_handler_t::replace)));
  }
  WHARF_RETURN_IF_ERROR(txn->put(meta_db_, "last_seq", std::to_string(seq)));
  WHARF_RETURN_IF_ERROR(txn->commit());
  last_seq_ = seq;
  return Status::ok();
}

size_t EventLog::prune() {
  std::lock_guard w(write_mu_);
  size_t n = pruneLocked();
  if (n > 0) {
    EventMetrics::get().pruned.inc(n);
    logInfo("pruned events", {{"removed", n}});
  }
  return n;
}

size_t EventLog::pruneLocked() {
  // Events are keyed by sequence number and appended in time order, so both bounds
  // remove a prefix of the log; deletes go in transactions of at most 10,000 keys so
  // that a large prune never holds the write lock for long.
  size_t removed = 0;
  int64_t cutoff = options_.retention_ms > 0 ? clock_.nowMillis() - options_.retention_ms : INT64_MIN;
  for (;;) {
    std::vector<std::string> keys;
    {
      auto txn = env_->read();
      if (!txn.isOk()) return removed;
      auto c = txn->cursor(events_db_);
      uint64_t first = 0;
      if (c.first()) first = eventSeqOf(c.key());
      uint64_t last = last_seq_.load();
      uint64_t count = first == 0 ? 0 : last - first + 1;
      for (bool ok = first != 0; ok && keys.size() < 10'000; ok = c.next()) {
        bool over_count = options_.max_events > 0 && count > options_.max_events;
        bool too_old = false;
        if (!over_count && options_.retention_ms > 0) {
          json j = json::parse(c.value(), nullptr, false);
          too_old = j.is_object() && j.value("ts_ms", int64_t{0}) < cutoff;
        }
        if (!over_count && !too_old) break;
        keys.emplace_back(c.key());
        --count;
      }
    }
    if (keys.empty()) return removed;
    auto txn = env_->write();
    if (!txn.isOk()) return removed;
    for (const auto& k : keys) (void)txn->del(events_db_, k);
    if (!txn->commit().isOk()) return removed;
    removed += keys.size();
    if (keys.size() < 10'000) return removed;
  }
}

Result<EventPage> EventLog::query(const EventFilter& filter, uint64_t since, size_t limit) const {
  EventPage page;
  page.scanned_to = since;
  auto txn = env_->read();
  if (!txn.isOk()) return txn.status();
  std::unordered_map<std::string, bool> visible;
  auto c = txn->cursor(events_db_);
  size_t scanned = 0;
  bool more = false;
  for (bool ok = c.seek(eventSeqKey(since + 1)); ok; ok = c.next()) {
    if (page.events.size() >= limit || scanned >= options_.max_scan) {
      more = true;
      break;
    }
    ++scanned;
    uint64_t seq = eventSeqOf(c.key());
    page.scanned_to = seq;
    json j = json::parse(c.value(), nullptr, false);
    if (!j.is_object()) continue;
    Event e = Event::fromJson(seq, j);
    if (!filter.matches(e)) continue;
    if (filter.visible) {
      auto it = visible.find(e.repository);
      if (it == visible.end()) it = visible.emplace(e.repository, filter.visible(e.repository)).first;
      if (!it->second) continue;
    }
    page.events.push_back(std::move(e));
  }
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
