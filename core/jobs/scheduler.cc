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
    std::string job_id;
    if (!s.last_job.empty()) {
      auto last = runner_.get(s.last_job);
      if (last.isOk() && !jobFinished(last->state)) {
        logInfo("scheduled run skipped: the previous job has not finished",
                {{"schedule", s.name}, {"job", s.last_job}});
        job_id = s.last_job;
      }
    }
    bool ran = false;
    if (job_id.empty()) {
      auto id = runner_.submit(s.kind, s.params, "schedule:" + s.name);
      if (id.isOk()) {
        job_id = *id;
        ran = true;
        submitted.push_back(job_id);
      } else {
        logWarn("scheduled job not submitted", {{"schedule", s.name}, {"error", id.status().message()}});
        if (runner_.stopping()) return submitted;  // try again at the next start
      }
    }
    auto st = store_.updateSchedule(s.name, [&](Schedule& x) {
      x.next_run_ms = next;
      if (ran) {
        x.last_run_ms = now;
        x.last_job = job_id;
      }
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
