#include "core/gc/gc_job.h"

#include "core/events/event_log.h"

namespace wharf {

void registerGcJob(JobRunner& runner, Registry& registry, EventLog* events, ContentPins pins) {
  runner.registerKind(
      "gc", "garbage collection: retention, untagged manifests, then unreferenced content (dry_run reports only)",
      [&registry, events, pins](JobContext& job) -> Result<nlohmann::json> {
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
        auto report = GarbageCollector(registry, pins).run(*o, observer);
        if (!report.isOk()) return report.status();
        job.log(std::string(o->dry_run ? "dry run: " : "") + std::to_string(report->bytes_freed) + " bytes " +
                (o->dry_run ? "would be freed" : "freed"));
        return report->toJson();
      },
      true);
  runner.setParamsCheck("gc", [](const nlohmann::json& p) { return gcOptionsFromParams(p).status(); });
}

}  // namespace wharf
