// The `gc` job kind: a GarbageCollector run as a job (progress, a log line per deletion,
// cancellable, its report as the result).
//
//   params {"dry_run": false, "untagged_older_than": "7d", "grace": "1h", "retention": true}
//     untagged_older_than  absent: untagged manifests are kept
//     grace                content younger than this is never collected (default 1h)
//     retention            apply the retention policies first (default true)
#pragma once

#include "core/gc/garbage_collector.h"
#include "core/jobs/job_runner.h"

namespace wharf {

class EventLog;

// The params, checked (gc_params.cc).
Result<GcOptions> gcOptionsFromParams(const nlohmann::json& params);
// events: where deletions are recorded (tag.delete, manifest.delete, blob.delete by the
// system; edges purge what they name); null: not recorded.
void registerGcJob(JobRunner& runner, Registry& registry, EventLog* events = nullptr, ContentPins pins = {});

}  // namespace wharf
