// The event log on PostgreSQL, shared by the replicas (layout in event_store.h).
#include <climits>
#include <mutex>

#include "core/events/event_store.h"
#include "shared/base/ids.h"
#include "shared/store/pg_migrations.h"

namespace wharf {
namespace {

using nlohmann::json;

constexpr const char* kChannel = "wharf_events";

// Inserts the events (their seq set) and tells every replica's listener at commit.
Status insertEvents(PgConn& c, const std::vector<Event>& events, uint64_t last) {
  std::vector<std::string> seqs, times, bodies;
  for (const auto& e : events) {
    seqs.push_back(std::to_string(e.seq));
    times.push_back(std::to_string(e.ts_ms));
    bodies.push_back(storedEventBody(e));
  }
  WHARF_RETURN_IF_ERROR(
      c.exec("INSERT INTO events (seq, ts_ms, body) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[])",
             {pgArray(seqs), pgArray(times), pgArray(bodies)})
          .status());
  return c.exec("SELECT pg_notify($1, $2)", {std::string(kChannel), std::to_string(last)}).status();
}

class PgEventStore final : public EventStore {
 public:
  explicit PgEventStore(std::shared_ptr<PgPool> db) : db_(std::move(db)) {}
  ~PgEventStore() override { listener_.reset(); }

  Status init() {
    auto applied = applyMigrations(*db_, "events", eventMigrations());
    if (!applied.isOk()) return applied.status();
    auto ins = db_->query("INSERT INTO event_meta (id, last_seq, instance) VALUES (1, 0, $1) ON CONFLICT DO NOTHING",
                          {newUuid()});
    if (!ins.isOk()) return ins.status();
    auto r = db_->query("SELECT instance FROM event_meta WHERE id = 1");
    if (!r.isOk()) return r.status();
    if (r->rows() != 1) return Status(Code::kCorruption, "event_meta has no row");
    instance_ = std::string(r->text(0, 0));
    return Status::ok();
  }

  const std::string& instanceId() const override { return instance_; }

  Result<uint64_t> lastSeq() override {
    auto r = db_->query("SELECT last_seq FROM event_meta WHERE id = 1");
    if (!r.isOk()) return r.status();
    if (r->rows() != 1) return Status(Code::kCorruption, "event_meta has no row");
    return static_cast<uint64_t>(r->integer(0, 0));
  }

  Result<uint64_t> append(std::vector<Event>& batch) override {
    uint64_t last = 0;
    Status st = db_->transact([&](PgConn& c) -> Status {
      // The row lock orders the writers: numbers are committed in the order they are
      // taken, so a reader past n never finds a later commit below n.
      auto r = c.exec("UPDATE event_meta SET last_seq = last_seq + $1 WHERE id = 1 RETURNING last_seq",
                      {std::to_string(batch.size())});
      if (!r.isOk()) return r.status();
      if (r->rows() != 1) return Status(Code::kCorruption, "event_meta has no row");
      last = static_cast<uint64_t>(r->integer(0, 0));
      uint64_t seq = last - batch.size();
      for (auto& e : batch) e.seq = ++seq;
      return insertEvents(c, batch, last);
    });
    if (!st.isOk()) return st;
    return last;
  }

  Status import(const std::string& instance, const std::vector<Event>& events) override {
    Status st = db_->transact([&](PgConn& c) -> Status {
      auto r = c.exec("SELECT last_seq, instance FROM event_meta WHERE id = 1 FOR UPDATE");
      if (!r.isOk()) return r.status();
      if (r->rows() != 1) return Status(Code::kCorruption, "event_meta has no row");
      uint64_t last = static_cast<uint64_t>(r->integer(0, 0));
      if (r->text(0, 1) != instance && last != 0) return Status(Code::kConflict, "the event log has events of its own");
      std::vector<Event> fresh;
      for (const auto& e : events) {
        if (e.seq <= last) continue;
        last = e.seq;
        fresh.push_back(e);
      }
      WHARF_RETURN_IF_ERROR(c.exec("UPDATE event_meta SET last_seq = $1::bigint, instance = $2 WHERE id = 1",
                                   {std::to_string(last), instance})
                                .status());
      return insertEvents(c, fresh, last);
    });
    if (st.isOk()) instance_ = instance;
    return st;
  }

  Status scan(uint64_t since, size_t max, const std::function<bool(Event)>& fn) const override {
    auto r = db_->query("SELECT seq, body FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
                        {std::to_string(since), std::to_string(max)});
    if (!r.isOk()) return r.status();
    for (int i = 0; i < r->rows(); ++i) {
      json j = json::parse(r->text(i, 1), nullptr, false);
      if (!j.is_object()) continue;
      if (!fn(Event::fromJson(static_cast<uint64_t>(r->integer(i, 0)), j))) break;
    }
    return Status::ok();
  }

  size_t prune(int64_t cutoff, uint64_t max_events) override {
    size_t removed = 0;
    if (cutoff != INT64_MIN) {
      auto r = db_->query("DELETE FROM events WHERE ts_ms < $1", {std::to_string(cutoff)});
      if (r.isOk()) removed += static_cast<size_t>(r->affected());
    }
    if (max_events > 0) {
      auto r = db_->query("DELETE FROM events WHERE seq <= (SELECT last_seq FROM event_meta WHERE id = 1) - $1",
                          {std::to_string(max_events)});
      if (r.isOk()) removed += static_cast<size_t>(r->affected());
    }
    return removed;
  }

  void watch(std::function<void(uint64_t)> fn) override {
    listener_ = std::make_unique<PgListener>(db_->url(), kChannel, [fn = std::move(fn)](const std::string& payload) {
      if (payload == "*" || payload.empty() || payload.size() > 19 ||
          payload.find_first_not_of("0123456789") != std::string::npos) {
        return fn(0);  // missed notifications, or one not of ours: read the last seq
      }
      fn(std::stoull(payload));
    });
  }

 private:
  std::shared_ptr<PgPool> db_;
  std::string instance_;
  std::unique_ptr<PgListener> listener_;
};

}  // namespace

const std::vector<PgMigration>& eventMigrations() {
  static const std::vector<PgMigration> all = {
      {1, "the event log: events by sequence number, the last number and the log's id",
       R"sql(
CREATE TABLE events (seq bigint PRIMARY KEY, ts_ms bigint NOT NULL, body text NOT NULL);
CREATE INDEX events_by_time ON events (ts_ms);
CREATE TABLE event_meta (id int PRIMARY KEY CHECK (id = 1), last_seq bigint NOT NULL, instance text NOT NULL);
)sql"},
  };
  return all;
}

Result<std::unique_ptr<EventStore>> openPgEventStore(std::shared_ptr<PgPool> db) {
  auto store = std::make_unique<PgEventStore>(std::move(db));
  WHARF_RETURN_IF_ERROR(store->init());
  return std::unique_ptr<EventStore>(std::move(store));
}

}  // namespace wharf
