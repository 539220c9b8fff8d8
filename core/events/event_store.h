// EventStore: where the event log (event_log.h) keeps its events. Two backends:
//
//   LMDB (embedded)  databases "events" (<seq, 8 bytes big-endian> -> Event JSON without
//                    seq) and "events_meta" ("schema", "last_seq", "instance") in the
//                    core's environment; one core writes.
//   PostgreSQL       tables events (seq, ts_ms, body) and event_meta (last_seq,
//                    instance), shared by every replica. Writers take the event_meta row
//                    for the transaction, so sequence numbers are committed in order and
//                    a reader that has seen seq n never later finds a new event below n;
//                    each commit notifies channel "wharf_events" with its last seq, and
//                    every replica's log tells its live feeds.
//
// Thread-safe. The log calls append() and prune() from its writer thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/events/event_log.h"
#include "shared/base/status.h"
#include "shared/store/lmdb.h"
#include "shared/store/pg.h"
#include "shared/store/pg_migrations.h"

namespace wharf {

class EventStore {
 public:
  virtual ~EventStore() = default;

  // A random id of this log, kept across restarts (and shared by replicas).
  virtual const std::string& instanceId() const = 0;
  // The last committed sequence number (0 when none yet).
  virtual Result<uint64_t> lastSeq() = 0;
  // Assigns the next sequence numbers to the batch, in order, and commits it whole.
  // Returns the batch's last sequence number.
  virtual Result<uint64_t> append(std::vector<Event>& batch) = 0;
  // Events with seq > since, oldest first, until fn returns false or max were read.
  virtual Status scan(uint64_t since, size_t max, const std::function<bool(Event)>& fn) const = 0;
  // Stores events of another log keeping their sequence numbers (wharfctl migrate),
  // oldest first, in one transaction: into an empty log, which takes the other log's
  // instance id, or into one that holds a beginning of that log (the same instance id),
  // where events at or below lastSeq() are skipped. kConflict for a log with events of
  // its own. (A process that opened the store before keeps the instance id it read.)
  virtual Status import(const std::string& instance, const std::vector<Event>& events) = 0;
  // Removes events older than cutoff_ms (INT64_MIN: none) and the oldest beyond
  // max_events (0: no cap). Returns how many went.
  virtual size_t prune(int64_t cutoff_ms, uint64_t max_events) = 0;
  // Other writers' commits (replicas sharing the store): fn(last_seq) from a thread of
  // the store's, after each; fn(0) when notifications may have been missed (read
  // lastSeq()). A store with one writer never calls it.
  virtual void watch(std::function<void(uint64_t last_seq)> fn) { (void)fn; }
};

constexpr int kEventLogSchemaVersion = 1;

// How both stores keep an event: its JSON without seq and time (the key and ts_ms say
// them).
std::string storedEventBody(const Event& e);

Result<std::unique_ptr<EventStore>> openLmdbEventStore(std::shared_ptr<LmdbEnv> env);
// The "events" component's migrations, oldest first (never edit one that shipped).
const std::vector<PgMigration>& eventMigrations();
// Applies the migrations first; listens for other replicas' commits on a connection of
// its own.
Result<std::unique_ptr<EventStore>> openPgEventStore(std::shared_ptr<PgPool> db);

}  // namespace wharf
