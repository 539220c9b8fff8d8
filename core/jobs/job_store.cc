#include "core/jobs/job_store.h"

#include <algorithm>

#include "shared/base/clock.h"
#include "shared/base/json_body.h"

namespace wharf {
namespace {

using nlohmann::json;

constexpr std::string_view kStateNames[] = {"queued", "running", "succeeded", "failed", "cancelled"};

}  // namespace

std::string_view jobStateName(JobState s) { return kStateNames[static_cast<size_t>(s)]; }

bool parseJobState(std::string_view s, JobState* out) {
  for (size_t i = 0; i < std::size(kStateNames); ++i) {
    if (s == kStateNames[i]) {
      *out = static_cast<JobState>(i);
      return true;
    }
  }
  return false;
}

// --- records ---------------------------------------------------------------------

std::string Job::record() const {
  return json{{"id", id},
              {"kind", kind},
              {"state", jobStateName(state)},
              {"actor", actor},
              {"params", params},
              {"created", created_ms},
              {"started", started_ms},
              {"finished", finished_ms},
              {"progress", {{"done", progress.done}, {"total", progress.total}, {"message", progress.message}}},
              {"result", result},
              {"error", error},
              {"error_code", error_code},
              {"retry_of", retry_of},
              {"interrupted", interrupted},
              {"cancel_requested", cancel_requested},
              {"cancelled_by", cancelled_by},
              {"log_lines", log_lines},
              {"owner", owner},
              {"lease_until", lease_until_ms},
              {"runs", runs},
              {"pinned", pinned}}
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<Job> Job::fromRecord(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return Status(Code::kCorruption, "job record is not a JSON object");
  try {
    Job out;
    out.id = j.value("id", "");
    out.kind = j.value("kind", "");
    if (!parseJobState(j.value("state", ""), &out.state)) return Status(Code::kCorruption, "job record: bad state");
    out.actor = j.value("actor", "");
    out.params = j.value("params", json::object());
    out.created_ms = j.value("created", int64_t{0});
    out.started_ms = j.value("started", int64_t{0});
    out.finished_ms = j.value("finished", int64_t{0});
    json p = j.value("progress", json::object());
    out.progress.done = p.value("done", uint64_t{0});
    out.progress.total = p.value("total", uint64_t{0});
    out.progress.message = p.value("message", "");
    out.result = j.value("result", json());
    out.error = j.value("error", "");
    out.error_code = j.value("error_code", "");
    out.retry_of = j.value("retry_of", "");
    out.interrupted = j.value("interrupted", false);
    out.cancel_requested = j.value("cancel_requested", false);
    out.cancelled_by = j.value("cancelled_by", "");
    out.log_lines = j.value("log_lines", uint64_t{0});
    out.owner = j.value("owner", "");
    out.lease_until_ms = j.value("lease_until", int64_t{0});
    out.runs = j.value("runs", uint32_t{0});
    out.pinned = j.value("pinned", "");
    return out;
  } catch (const json::exception& e) {
    return Status(Code::kCorruption, std::string("job record: ") + e.what());
  }
}

Status Job::failure() const {
  if (state != JobState::kFailed && state != JobState::kCancelled) return Status::ok();
  Code code = state == JobState::kCancelled ? Code::kCancelled : Code::kInternal;
  for (int c = 1; c <= static_cast<int>(Code::kMethodNotAllowed); ++c) {
    if (codeName(static_cast<Code>(c)) == error_code) code = static_cast<Code>(c);
  }
  return Status(code, error.empty() ? "job " + std::string(jobStateName(state)) : error);
}

json Job::toJson() const {
  json j = {{"id", id},
            {"kind", kind},
            {"state", jobStateName(state)},
            {"actor", actor},
            {"params", params},
            {"created_at", rfc3339OrNull(created_ms)},
            {"started_at", rfc3339OrNull(started_ms)},
            {"finished_at", rfc3339OrNull(finished_ms)},
            {"progress", {{"done", progress.done}, {"total", progress.total}, {"message", progress.message}}},
            {"result", result},
            {"error", error.empty() ? json(nullptr) : json(error)},
            {"retry_of", retry_of.empty() ? json(nullptr) : json(retry_of)},
            {"interrupted", interrupted},
            {"cancel_requested", cancel_requested},
            {"log_lines", log_lines},
            {"runs", runs},
            {"runner", owner.empty() ? json(nullptr) : json(owner)},
            {"pinned", pinned.empty() ? json(nullptr) : json(pinned)}};
  if (started_ms > 0 && finished_ms >= started_ms) j["duration_ms"] = finished_ms - started_ms;
  return j;
}

json JobLogLine::toJson() const { return {{"seq", seq}, {"ts", formatRfc3339(ts_ms)}, {"line", line}}; }

std::string Schedule::record() const {
  return json{{"name", name},         {"cron", cron},           {"kind", kind},
              {"params", params},     {"enabled", enabled},     {"last_run", last_run_ms},
              {"next_run", next_run_ms}, {"last_job", last_job}, {"origin", origin},
              {"updated_by", updated_by}, {"updated", updated_ms}}
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<Schedule> Schedule::fromRecord(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return Status(Code::kCorruption, "schedule record is not a JSON object");
  try {
    Schedule s;
    s.name = j.value("name", "");
    s.cron = j.value("cron", "");
    s.kind = j.value("kind", "");
    s.params = j.value("params", json::object());
    s.enabled = j.value("enabled", true);
    s.last_run_ms = j.value("last_run", int64_t{0});
    s.next_run_ms = j.value("next_run", int64_t{0});
    s.last_job = j.value("last_job", "");
    s.origin = j.value("origin", "api");
    s.updated_by = j.value("updated_by", "");
    s.updated_ms = j.value("updated", int64_t{0});
    return s;
  } catch (const json::exception& e) {
    return Status(Code::kCorruption, std::string("schedule record: ") + e.what());
  }
}

json Schedule::toJson() const {
  return {{"name", name},
          {"cron", cron},
          {"kind", kind},
          {"params", params},
          {"enabled", enabled},
          {"last_run", rfc3339OrNull(last_run_ms)},
          {"next_run", enabled ? rfc3339OrNull(next_run_ms) : json(nullptr)},
          {"last_job", last_job.empty() ? json(nullptr) : json(last_job)},
          {"origin", origin},
          {"updated_by", updated_by},
          {"updated_at", rfc3339OrNull(updated_ms)}};
}

bool JobFilter::matches(const Job& j) const {
  return (kind.empty() || j.kind == kind) && (actor.empty() || j.actor == actor) && (!state || j.state == *state);
}

// --- ids ---------------------------------------------------------------------------

Result<uint64_t> jobSeqOf(const std::string& id) {
  if (id.empty() || id.size() > 19 || id.find_first_not_of("0123456789") != std::string::npos) {
    return Status(Code::kInvalidArgument, "\"" + id + "\" is not a job id (a number such as 0000000042)");
  }
  uint64_t v = std::stoull(id);
  if (v == 0) return Status(Code::kInvalidArgument, "\"" + id + "\" is not a job id (they start at 1)");
  return v;
}

std::string jobIdOf(uint64_t seq) {
  std::string digits = std::to_string(seq);
  return digits.size() >= 10 ? digits : std::string(10 - digits.size(), '0') + digits;
}

bool fillJobPage(std::vector<Job>& page, Result<Job> record, const JobFilter& f, size_t limit, std::string* more) {
  if (!record.isOk() || !f.matches(*record)) return true;
  if (page.size() == limit) {
    *more = page.back().id;
    return false;
  }
  page.push_back(std::move(record).value());
  return true;
}

Result<std::string> JobStore::normalizeId(const std::string& id) {
  auto seq = jobSeqOf(id);
  if (!seq.isOk()) return seq.status();
  return jobIdOf(*seq);
}

}  // namespace wharf
