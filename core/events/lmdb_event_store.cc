// The event log's embedded store (layout in event_store.h).
#include <atomic>
#include <climits>

#include "core/events/event_store.h"
#include "shared/base/ids.h"

namespace wharf {

std::string eventSeqKey(uint64_t seq) { return bigEndian64(seq); }
uint64_t eventSeqOf(std::string_view key) { return fromBigEndian64(key); }

namespace {

using nlohmann::json;

class LmdbEventStore final : public EventStore {
 public:
  LmdbEventStore(std::shared_ptr<LmdbEnv> env, Dbi events, Dbi meta) : env_(std::move(env)), events_(events), meta_(meta) {}

  Status init() {
    auto txn = env_->write();
    if (!txn.isOk()) return txn.status();
    std::string_view v;
    if (txn->get(meta_, "schema", &v).isOk()) {
      if (v != std::to_string(kEventLogSchemaVersion)) {
        return Status(Code::kCorruption, "the event log has layout version " + std::string(v) + ", this build reads " +
                                             std::to_string(kEventLogSchemaVersion));
      }
    } else {
      WHARF_RETURN_IF_ERROR(txn->put(meta_, "schema", std::to_string(kEventLogSchemaVersion)));
    }
    if (txn->get(meta_, "instance", &v).isOk()) {
      instance_ = std::string(v);
    } else {
      instance_ = newUuid();
      WHARF_RETURN_IF_ERROR(txn->put(meta_, "instance", instance_));
    }
    if (txn->get(meta_, "last_seq", &v).isOk()) last_seq_ = std::strtoull(std::string(v).c_str(), nullptr, 10);
    return txn->commit();
  }

  const std::string& instanceId() const override { return instance_; }
  Result<uint64_t> lastSeq() override { return last_seq_.load(); }

  Result<uint64_t> append(std::vector<Event>& batch) override {
    uint64_t seq = last_seq_.load();
    auto txn = env_->write();
    if (!txn.isOk()) return txn.status();
    for (auto& e : batch) {
      e.seq = ++seq;
      WHARF_RETURN_IF_ERROR(txn->put(events_, eventSeqKey(e.seq), storedEventBody(e)));
    }
    WHARF_RETURN_IF_ERROR(txn->put(meta_, "last_seq", std::to_string(seq)));
    WHARF_RETURN_IF_ERROR(txn->commit());
    last_seq_ = seq;
    return seq;
  }

  Status import(const std::string& instance, const std::vector<Event>& events) override {
    auto txn = env_->write();
    if (!txn.isOk()) return txn.status();
    uint64_t last = last_seq_.load();
    if (instance != instance_) {
      if (last != 0) return Status(Code::kConflict, "the event log has events of its own");
      WHARF_RETURN_IF_ERROR(txn->put(meta_, "instance", instance));
    }
    for (const auto& e : events) {
      if (e.seq <= last) continue;
      WHARF_RETURN_IF_ERROR(txn->put(events_, eventSeqKey(e.seq), storedEventBody(e)));
      last = e.seq;
    }
    WHARF_RETURN_IF_ERROR(txn->put(meta_, "last_seq", std::to_string(last)));
    WHARF_RETURN_IF_ERROR(txn->commit());
    instance_ = instance;
    last_seq_ = last;
    return Status::ok();
  }

  Status scan(uint64_t since, size_t max, const std::function<bool(Event)>& fn) const override {
    auto txn = env_->read();
    if (!txn.isOk()) return txn.status();
    auto c = txn->cursor(events_);
    size_t n = 0;
    for (bool ok = c.seek(eventSeqKey(since + 1)); ok && n < max; ok = c.next(), ++n) {
      json j = json::parse(c.value(), nullptr, false);
      if (!j.is_object()) continue;
      if (!fn(Event::fromJson(eventSeqOf(c.key()), j))) break;
    }
    return Status::ok();
  }

  size_t prune(int64_t cutoff, uint64_t max_events) override {
    // Events are keyed by sequence number and appended in time order, so both bounds
    // remove a prefix of the log; deletes go in transactions of at most 10,000 keys so
    // that a large prune never holds the write lock for long.
    size_t removed = 0;
    for (;;) {
      std::vector<std::string> keys;
      {
        auto txn = env_->read();
        if (!txn.isOk()) return removed;
        auto c = txn->cursor(events_);
        uint64_t first = 0;
        if (c.first()) first = eventSeqOf(c.key());
        uint64_t count = first == 0 ? 0 : last_seq_.load() - first + 1;
        for (bool ok = first != 0; ok && keys.size() < 10'000; ok = c.next()) {
          bool over_count = max_events > 0 && count > max_events;
          bool too_old = false;
          if (!over_count && cutoff != INT64_MIN) {
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
      for (const auto& k : keys) (void)txn->del(events_, k);
      if (!txn->commit().isOk()) return removed;
      removed += keys.size();
      if (keys.size() < 10'000) return removed;
    }
  }

 private:
  std::shared_ptr<LmdbEnv> env_;
  Dbi events_;
  Dbi meta_;
  std::string instance_;
  std::atomic<uint64_t> last_seq_{0};  // changed by the log's writer thread only
};

}  // namespace

Result<std::unique_ptr<EventStore>> openLmdbEventStore(std::shared_ptr<LmdbEnv> env) {
  auto events = env->openDb("events");
  if (!events.isOk()) return events.status();
  auto meta = env->openDb("events_meta");
  if (!meta.isOk()) return meta.status();
  auto store = std::make_unique<LmdbEventStore>(std::move(env), *events, *meta);
  WHARF_RETURN_IF_ERROR(store->init());
  return std::unique_ptr<EventStore>(std::move(store));
}

}  // namespace wharf
