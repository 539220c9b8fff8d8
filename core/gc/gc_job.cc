#include "core/gc/gc_job.h"

#include "core/events/event_log.h"
#include "shared/config/config.h"

namespace wharf {

Result<GcOptions> gcOptionsFromParams(const nlohmann::json& params) {
  GcOptions o;
  if (params.is_null()) return o;
  if (!params.is_object()) return Status(Code::kInvalidArgument, "gc: params must be an object");
  for (auto it = params.begin(); it != params.end(); ++it) {
    const std::string& k = it.key();
    auto flag = [&](bool* target) -> Status {
      if (it->is_boolean()) {
        *target = it->get<bool>();
      } else if (it->is_string() && (*it == "true" || *it == "false")) {
        *target = *it == "true";
      } else {
        return Status(Code::kInvalidArgument, "gc: " + k + " must be true or false");
      }
      return Status::ok();
    };
    auto duration = [&](int64_t* target) -> Status {
      if (!it->is_string()) return Status(Code::kInvalidArgument, "gc: " + k + " must be a duration like \"7d\"");
      auto ms = parseDurationMs(it->get<std::string>());
      if (!ms.isOk()) return Status(Code::kInvalidArgument, "gc: " + k + ": " + ms.status().message());
      *target = *ms;
      return Status::ok();
    };
    Status st;
    if (k == "dry_run") st = flag(&o.dry_run);
    else if (k == "retention") st = flag(&o.retention);
    else if (k == "untagged_older_than") st = duration(&o.untagged_older_than_ms);
    else if (k == "grace") st = duration(&o.grace_ms);
    else if (k == "yield") {
      if (!it->is_number() || it->get<double>() < 0 || it->get<double>() > 100) {  // NaN fails too
        st = Status(Code::kInvalidArgument, "gc: yield must be a number from 0 to 100");
      } else {
        o.yield = it->get<double>();
      }
    }
    else st = Status(Code::kInvalidArgument, "gc: unknown parameter \"" + k + "\"");
    if (!st.isOk()) return st;
  }
  return o;
}

void registerGcJob(JobRunner& runner, Registry& registry, EventLog* events) {
  runner.registerKind(
      "gc", "garbage collection: retention, untagged manifests, then unreferenced content (dry_run reports only)",
      [&registry, events](JobContext& job) -> Result<nlohmann::json> {
        auto o = gcOptionsFromParams(job.params());
        if (!o.isOk()) return o.status();
        GcObserver observer;
        observer.progress = [&job](uint64_t done, uint64_t total, const std::string& phase) {
          job.progress(done, total, phase);
        };
        observer.log = [&job](const std::string& line) { job.log(line); };
        observer.cancelled = [&job] { return job.cancelled(); };
        if (events != nullptr) {
          observer.deleted = [events](GcObserver::Deleted what, const std::string& repo, const std::string& ref) {
            Event e;
            e.actor = "gc";
            e.repository = repo;
            if (what == GcObserver::Deleted::kTag) {
              e.type = event_type::kTagDelete;
              e.target.tag = ref;
            } else {
              e.type = what == GcObserver::Deleted::kManifest ? event_type::kManifestDelete : event_type::kBlobDelete;
              e.target.digest = ref;
            }
            events->append(std::move(e));
          };
        }
        auto report = GarbageCollector(registry).run(*o, observer);
        if (!report.isOk()) return report.status();
        job.log(std::string(o->dry_run ? "dry run: " : "") + std::to_string(report->bytes_freed) + " bytes " +
                (o->dry_run ? "would be freed" : "freed"));
        return report->toJson();
      },
      true);
  runner.setParamsCheck("gc", [](const nlohmann::json& p) { return gcOptionsFromParams(p).status(); });
}

}  // namespace wharf
