#include "core/jobs/scheduler.h"

#include <cctype>

#include "shared/base/log.h"

namespace wharf {

using nlohmann::json;

Status validateScheduleName(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 63 && std::isalnum(static_cast<unsigned char>(name[0]));
  for (char c : name) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.');
  }
  if (!ok) {
    return Status(Code::kInvalidArgument, "schedule name \"" + name +
                                              "\": 1-63 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit");
  }
  return Status::ok();
}

Scheduler::Scheduler(JobStore& store, JobRunner& runner, Clock& clock)
    : store_(store), runner_(runner), clock_(clock) {}

Scheduler::~Scheduler() { stop(); }

Status Scheduler::ensureDefault(const std::string& name, const std::string& cron, const std::string& kind,
                                const json& params, bool enabled) {
  auto c = CronSchedule::parse(cron);
  if (!c.isOk()) return Status(Code::kInvalidArgument, "schedule " + name + ": " + c.status().message());
  std::lock_guard lock(tick_mu_);
  int64_t now = clock_.nowMillis();
  auto existing = store_.schedule(name);
  if (!existing.isOk()) {
    if (existing.status().code() != Code::kNotFound) return existing.status();
    if (!enabled) return Status::ok();
    Schedule s;
    s.name = name;
    s.cron = c->text();
    s.kind = kind;
    s.params = params;
    s.enabled = true;
    s.next_run_ms = c->next(now);
    s.origin = "config";
    s.updated_by = "config";
    s.updated_ms = now;
    logInfo("schedule created from the configuration", {{"schedule", name}, {"cron", s.cron}, {"kind", kind}});
    return store_.putSchedule(s);
  }
  if (existing->origin != "config") return Status::ok();
  if (existing->cron == c->text() && existing->kind == kind && existing->params == params &&
      existing->enabled == enabled) {
    return Status::ok();  // unchanged: keep next_run, so a run missed while down still happens
  }
  auto updated = store_.updateSchedule(name, [&](Schedule& s) {
    bool replan = s.cron != c->text() || (enabled && !s.enabled);
    s.cron = c->text();
    s.kind = kind;
    s.params = params;
    s.enabled = enabled;
    if (replan) s.next_run_ms = c->next(now);
    s.updated_by = "config";
    s.updated_ms = now;
    return Status::ok();
  });
  if (updated.isOk()) {
    logInfo("schedule updated from the configuration",
            {{"schedule", name}, {"cron", updated->cron}, {"enabled", updated->enabled}});
  }
  return updated.isOk() ? Status::ok() : updated.status();
}

Result<Schedule> Scheduler::put(const std::string& name, const std::string& cron, const std::string& kind,
                                const json& params, bool enabled, const std::string& actor, bool* created) {
  WHARF_RETURN_IF_ERROR(validateScheduleName(name));
  auto c = CronSchedule::parse(cron);
  if (!c.isOk()) return c.status();
  WHARF_RETURN_IF_ERROR(runner_.checkParams(kind, params));
  std::lock_guard lock(tick_mu_);
  int64_t now = clock_.nowMillis();
  Schedule s;
  auto existing = store_.schedule(name);
  if (existing.isOk()) {
    s = *existing;
  } else if (existing.status().code() != Code::kNotFound) {
    return existing.status();
  }
  bool replan = !existing.isOk() || s.cron != c->text() || (enabled && !s.enabled) || s.next_run_ms <= 0;
  s.name = name;
  s.cron = c->text();
  s.kind = kind;
  s.params = params;
  s.enabled = enabled;
  if (replan) s.next_run_ms = c->next(now);
  s.origin = "api";
  s.updated_by = actor;
  s.updated_ms = now;
  WHARF_RETURN_IF_ERROR(store_.putSchedule(s));
  if (created != nullptr) *created = !existing.isOk();
  return s;
}

Status Scheduler::remove(const std::string& name) {
  std::lock_guard lock(tick_mu_);
  return store_.deleteSchedule(name);
}

Result<Schedule> Scheduler::get(const std::string& name) const { return store_.schedule(name); }

std::vector<Schedule> Scheduler::list() const { return store_.schedules(); }

std::vector<std::string> Scheduler::tick() {
  std::vector<std::string> submitted;
  std::lock_guard lock(tick_mu_);
  int64_t now = clock_.nowMillis();
  for (const Schedule& s : store_.schedules()) {
    if (!s.enabled || s.next_run_ms <= 0 || s.next_run_ms > now) continue;
    auto c = CronSchedule::parse(s.cron);
    if (!c.isOk()) {
      logWarn("schedule has a bad cron expression", {{"schedule", s.name}, {"error", c.status().message()}});
      continue;
    }
    int64_t next = c->next(now);
    // The slot is taken in one transaction on the schedule's record: of the replicas that
    // see it due, one moves next_run on and submits; the others find it moved.
    std::string last_job;
    auto taken = store_.updateSchedule(s.name, [&](Schedule& x) -> Status {
      if (!x.enabled || x.next_run_ms <= 0 || x.next_run_ms > now) return Status(Code::kConflict, "taken");
      x.next_run_ms = next;
      last_job = x.last_job;
      return Status::ok();
    });
    if (!taken.isOk()) {
      if (taken.status().code() != Code::kConflict && taken.status().code() != Code::kNotFound) {
        logWarn("cannot update a schedule", {{"schedule", s.name}, {"error", taken.status().message()}});
      }
      continue;
    }
    if (!last_job.empty()) {
      auto last = runner_.get(last_job);
      if (last.isOk() && !jobFinished(last->state)) {
        logInfo("scheduled run skipped: the previous job has not finished", {{"schedule", s.name}, {"job", last_job}});
        continue;
      }
    }
    auto id = runner_.submit(s.kind, s.params, "schedule:" + s.name);
    if (!id.isOk()) {
      logWarn("scheduled job not submitted", {{"schedule", s.name}, {"error", id.status().message()}});
      if (runner_.stopping()) {
        // Tried again at the next start: the slot is given back.
        (void)store_.updateSchedule(s.name, [&](Schedule& x) {
          if (x.next_run_ms == next) x.next_run_ms = s.next_run_ms;
          return Status::ok();
        });
        return submitted;
      }
      continue;
    }
    submitted.push_back(*id);
    auto st = store_.updateSchedule(s.name, [&](Schedule& x) {
      x.last_run_ms = now;
      x.last_job = *id;
      return Status::ok();
    });
    if (!st.isOk()) logWarn("cannot update a schedule", {{"schedule", s.name}, {"error", st.status().message()}});
  }
  return submitted;
}

void Scheduler::start(int64_t period_ms) {
  std::lock_guard lock(mu_);
  if (thread_.joinable() || stop_) return;
  thread_ = std::thread([this, period_ms] {
    std::unique_lock l(mu_);
    while (!stop_) {
      l.unlock();
      tick();
      l.lock();
      cv_.wait_for(l, std::chrono::milliseconds(period_ms), [this] { return stop_; });
    }
  });
}

void Scheduler::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace wharf
