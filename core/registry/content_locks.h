// ContentLocks: what serializes, per digest, storing content (file, then record) and
// collecting it (record, then file), so that a collected file never takes a record
// written after the collector looked with it.
//
// In one core, striped mutexes. With replicas sharing the index (PostgreSQL), also a
// PostgreSQL advisory lock per digest (pg_advisory_lock(1472, hashtext(digest))), held
// on a connection of its own for as long as the lock is: a push on one replica and the
// collector on another exclude each other too, and a replica that dies drops its locks
// with its connection.
#pragma once

#include <array>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "shared/base/status.h"
#include "shared/store/pg.h"

namespace wharf {

// Locks held; released when it goes.
struct ContentHold {
  std::vector<std::unique_lock<std::mutex>> local;
  std::unique_ptr<PgPool::Session> cluster;  // its advisory locks; null in one core
  ContentHold() = default;
  ContentHold(ContentHold&&) = default;
  // Releases what this holds, then takes over o's locks.
  ContentHold& operator=(ContentHold&& o) noexcept;
  ~ContentHold() { release(); }
  // Lets go of every lock (the session goes back to the pool without them).
  void release();
};

class ContentLocks {
 public:
  // cluster: the shared database, or null for one core.
  explicit ContentLocks(std::shared_ptr<PgPool> cluster = nullptr) : cluster_(std::move(cluster)) {}

  // The locks of the digests, waiting for them, taken in a fixed order (no deadlock with
  // another holder of several). kUnavailable when the database is away.
  Result<ContentHold> lock(const std::vector<std::string>& digests);
  // The locks of the digests free now, without waiting (a collector never queues behind
  // a long push while holding other digests' locks); (*locked)[i] says whether
  // digests[i] is covered.
  Result<ContentHold> tryLock(const std::vector<std::string>& digests, std::vector<bool>* locked);
  bool clusterWide() const { return cluster_ != nullptr; }

 private:
  size_t stripe(const std::string& digest) const;
  std::shared_ptr<PgPool> cluster_;
  std::array<std::mutex, 1024> stripes_;
};

}  // namespace wharf
