// Revocations at the core (the list is shared/auth/revocation.h): one document (the list
// is short, each entry lives a token lifetime) in meta.lmdb, or in the shared database
// where every replica hears of a change and reloads it; read lock-free by the request
// path through an immutable snapshot, and pushed down the edges' channels.
//
// Thread-safe. add() writes: call it on a worker.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "shared/auth/revocation.h"
#include "shared/base/clock.h"
#include "shared/base/status.h"

namespace wharf {

class SharedDocument;

class Revocations {
 public:
  // lifetime_s: how long a token issued just before a revocation stays valid (token
  // TTL plus the verifiers' leeway).
  static Result<std::unique_ptr<Revocations>> open(std::unique_ptr<SharedDocument> doc, Clock& clock, int64_t lifetime_s);
  ~Revocations();

  // Covers every token of kind/value issued up to now (see RevocationList).
  Status add(const std::string& kind, const std::string& value);
  std::shared_ptr<const RevocationList> current();
  // The iat a token issued now must have so that no entry covers it.
  int64_t issuedAt(int64_t now_s) const { return std::max(now_s, next_iat_.load()); }
  // Called after each change, this core's or another replica's (the edges' channels wake
  // up). Set before the first change.
  void onChange(std::function<void()> cb) { on_change_ = std::move(cb); }

 private:
  Revocations(std::unique_ptr<SharedDocument> doc, Clock& clock, int64_t lifetime_s);
  // Adopts a stored list (REQUIRES: mu_ held).
  Status adopt(const std::optional<std::string>& text);
  void reload();

  std::unique_ptr<SharedDocument> doc_;
  Clock& clock_;
  int64_t lifetime_s_;
  std::mutex mu_;  // one change at a time; readers take the snapshot
  std::shared_ptr<const RevocationList> list_;  // GUARDED_BY(mu_) for writes
  std::atomic<int64_t> next_iat_{0};
  std::function<void()> on_change_;
};

}  // namespace wharf
