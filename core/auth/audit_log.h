// AuditLog: records who did what, from where, with what outcome.
//
// record() is cheap and callable from any thread (loop threads included): entries are
// queued and a background thread appends them in batches, one transaction per batch,
// so auditing every pull does not cost a write transaction per pull. Repeated pulls of
// one object by one actor from one address within a batch become one entry whose
// detail counts them ("count=N"), so a busy registry does not grow its log per request. Entries queued at
// a crash may be lost; everything flushed is durable. Retention prunes old entries.
#pragma once

#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/auth/identity_store.h"
#include "shared/base/clock.h"

namespace wharf {

class AuditLog {
 public:
  AuditLog(IdentityStore& store, Clock& clock, int64_t retention_ms);
  ~AuditLog();  // flushes

  void record(std::string actor, std::string source, std::string action, std::string object, std::string outcome,
              std::string detail = "");
  // Writes everything queued so far (tests, shutdown).
  void flush();

 private:
  void run();
  IdentityStore& store_;
  Clock& clock_;
  int64_t retention_ms_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<AuditEntry> queue_;  // GUARDED_BY(mu_)
  std::unordered_map<std::string, std::pair<size_t, uint64_t>> pulls_;  // GUARDED_BY(mu_): key -> index, count
  bool stop_ = false;              // GUARDED_BY(mu_)
  bool flush_requested_ = false;   // GUARDED_BY(mu_)
  uint64_t flushed_ = 0, queued_ = 0;  // GUARDED_BY(mu_)
  std::condition_variable flushed_cv_;
  std::thread thread_;
};

}  // namespace wharf
