#include "core/auth/audit_log.h"

#include "shared/base/log.h"

namespace wharf {

AuditLog::AuditLog(IdentityStore& store, Clock& clock, int64_t retention_ms)
    : store_(store), clock_(clock), retention_ms_(retention_ms) {
  thread_ = std::thread([this] { run(); });
}

AuditLog::~AuditLog() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void AuditLog::record(std::string actor, std::string source, std::string action, std::string object,
                      std::string outcome, std::string detail) {
  AuditEntry e;
  e.time_ms = clock_.nowMillis();
  e.actor = actor.empty() ? "anonymous" : std::move(actor);
  e.source = std::move(source);
  e.action = std::move(action);
  e.object = std::move(object);
  e.outcome = std::move(outcome);
  e.detail = std::move(detail);
  bool wake;
  {
    std::lock_guard lock(mu_);
    if (e.action == "pull" && e.outcome == "success") {
      std::string key = e.actor + '\0' + e.source + '\0' + e.object;
      auto it = pulls_.find(key);
      if (it != pulls_.end()) {
        auto& [index, count] = it->second;
        queue_[index].detail = "count=" + std::to_string(++count);
        return;
      }
      pulls_[key] = {queue_.size(), 1};
    }
    if (queue_.size() >= 100000) return;  // the writer is stuck; never grow without bound
    queue_.push_back(std::move(e));
    ++queued_;
    // The writer wakes on its own every 200 ms; waking it per entry would cost a context
    // switch per request.
    wake = queue_.size() == 4096;
  }
  if (wake) cv_.notify_one();
}

void AuditLog::flush() {
  std::unique_lock lock(mu_);
  uint64_t target = queued_;
  flush_requested_ = true;
  cv_.notify_one();
  flushed_cv_.wait(lock, [&] { return flushed_ >= target; });
}

void AuditLog::run() {
  int64_t last_prune = 0;
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait_for(lock, std::chrono::milliseconds(200), [this] { return stop_ || flush_requested_ || queue_.size() >= 4096; });
    flush_requested_ = false;
    std::vector<AuditEntry> batch;
    batch.swap(queue_);
    pulls_.clear();
    bool stopping = stop_;
    lock.unlock();
    if (!batch.empty()) {
      Status st = store_.appendAudit(batch);
      if (!st.isOk()) logError("audit log write failed", {{"error", st.toString()}, {"entries", batch.size()}});
    }
    int64_t now = clock_.nowMillis();
    if (retention_ms_ > 0 && now - last_prune > 3'600'000) {
      last_prune = now;
      size_t n = store_.pruneAudit(now - retention_ms_);
      if (n > 0) logInfo("pruned audit entries", {{"removed", n}});
    }
    lock.lock();
    flushed_ += batch.size();
    flushed_cv_.notify_all();
    if (stopping && queue_.empty()) return;
  }
}

}  // namespace wharf
