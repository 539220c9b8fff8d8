#include "core/jobs/core_jobs.h"

#include <chrono>
#include <thread>

#include "core/auth/ldap_directory.h"
#include "shared/base/log.h"
#include "shared/config/config.h"

namespace wharf {

using nlohmann::json;

namespace {

// max_age: a duration string ("24h", "90m") or a number of seconds.
Result<int64_t> maxAgeMs(const json& params) {
  auto it = params.find("max_age");
  if (it == params.end()) return Status(Code::kInvalidArgument, "params.max_age is required (a duration such as 24h)");
  if (it->is_number_integer() && it->get<int64_t>() >= 0) return it->get<int64_t>() * 1000;
  if (it->is_string()) {
    auto ms = parseDurationMs(it->get<std::string>());
    if (ms.isOk()) return ms;
  }
  return Status(Code::kInvalidArgument, "params.max_age: " + it->dump() + " is not a duration such as 24h or 90m");
}

Status onlyKeys(const json& params, std::initializer_list<const char*> keys) {
  for (auto it = params.begin(); it != params.end(); ++it) {
    bool known = false;
    for (const char* k : keys) known = known || it.key() == k;
    if (!known) return Status(Code::kInvalidArgument, "params: unknown field \"" + it.key() + "\"");
  }
  return Status::ok();
}

}  // namespace

std::string formatDuration(int64_t ms) {
  if (ms > 0 && ms % 86'400'000 == 0) return std::to_string(ms / 86'400'000) + "d";
  if (ms > 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms > 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  return std::to_string((ms + 999) / 1000) + "s";
}

void registerCoreJobKinds(JobRunner& runner, Registry& registry, IdentityStore& identity, AuthService* auth,
                          Clock& clock, bool test_kinds) {
  runner.registerKind(
      "upload-purge", "Remove uploads untouched for longer than params.max_age (e.g. \"24h\").",
      [&registry](JobContext& ctx) -> Result<json> {
        auto max_age = maxAgeMs(ctx.params());
        if (!max_age.isOk()) return max_age.status();
        ctx.log("removing uploads untouched for more than " + formatDuration(*max_age));
        size_t removed = registry.purgeUploads(*max_age);
        if (removed > 0) logInfo("purged stale uploads", {{"removed", removed}, {"job", ctx.id()}});
        ctx.progress(removed, removed);
        ctx.log("removed " + std::to_string(removed) + " stale upload(s)");
        return json{{"removed", removed}, {"max_age", formatDuration(*max_age)}};
      });
  runner.setParamsCheck("upload-purge", [](const json& p) -> Status {
    WHARF_RETURN_IF_ERROR(onlyKeys(p, {"max_age"}));
    auto ms = maxAgeMs(p);
    return ms.isOk() ? Status::ok() : ms.status();
  });

  runner.registerKind(
      "ldap-sync", "Sync users and mapped teams from the configured LDAP/AD directory.",
      [&identity, auth, &clock](JobContext& ctx) -> Result<json> {
        auto stored = identity.setting("ldap");
        if (!stored) return Status(Code::kNotFound, "no directory is configured");
        auto c = LdapConfig::fromJson(*stored);
        if (!c.isOk()) return c.status();
        ctx.log("syncing from " + c->url);
        auto report = LdapDirectory::sync(*c, identity, clock);
        if (auth != nullptr) auth->forgetCaches();
        if (!report.isOk()) return report.status();
        if (auth != nullptr) auth->revokeSubjects(report->narrowed);
        for (const auto& p : report->problems) ctx.log("problem: " + p);
        json r = report->toJson();
        ctx.log("sync done: " + r.dump());
        return r;
      });
  runner.setParamsCheck("ldap-sync", [](const json& p) { return onlyKeys(p, {}); });

  if (!test_kinds) return;
  runner.registerKind(
      "sleep", "Test only (WHARF_TEST_JOBS=1): sleep params.seconds, fail with params.fail.",
      [](JobContext& ctx) -> Result<json> {
        double seconds = ctx.params().value("seconds", 1.0);
        uint64_t steps = static_cast<uint64_t>(seconds * 20);
        ctx.log("sleeping " + json(seconds).dump() + "s");
        for (uint64_t i = 0; i < steps; ++i) {
          if (ctx.cancelled()) return Status(Code::kCancelled, "stopped at step " + std::to_string(i));
          ctx.progress(i, steps, "sleeping");
          if (i % 20 == 0) ctx.log("step " + std::to_string(i) + " of " + std::to_string(steps));
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        ctx.progress(steps, steps, "done");
        if (ctx.params().contains("fail")) return Status(Code::kInternal, ctx.params().value("fail", "failed"));
        return json{{"slept_seconds", seconds}};
      },
      /*exclusive=*/false);
  runner.setParamsCheck("sleep", [](const json& p) -> Status {
    WHARF_RETURN_IF_ERROR(onlyKeys(p, {"seconds", "fail"}));
    if (p.contains("seconds") && (!p["seconds"].is_number() || p["seconds"].get<double>() < 0 ||
                                  p["seconds"].get<double>() > 3600)) {
      return Status(Code::kInvalidArgument, "params.seconds is a number from 0 to 3600");
    }
    if (p.contains("fail") && !p["fail"].is_string()) return Status(Code::kInvalidArgument, "params.fail is a string");
    return Status::ok();
  });
}

Status ensureDefaultSchedules(Scheduler& scheduler, IdentityStore& identity, int64_t upload_purge_interval_ms,
                              int64_t upload_purge_after_ms) {
  WHARF_RETURN_IF_ERROR(scheduler.ensureDefault("upload-purge", "@every " + formatDuration(upload_purge_interval_ms),
                                                "upload-purge", {{"max_age", formatDuration(upload_purge_after_ms)}},
                                                upload_purge_interval_ms > 0));
  bool sync = false;
  int64_t interval = 3'600'000;
  if (auto stored = identity.setting("ldap")) {
    auto c = LdapConfig::fromJson(*stored);
    if (c.isOk() && c->enabled && c->sync_interval_ms > 0) {
      sync = true;
      interval = c->sync_interval_ms;
    }
  }
  return scheduler.ensureDefault("ldap-sync", "@every " + formatDuration(interval), "ldap-sync", json::object(), sync);
}

}  // namespace wharf
