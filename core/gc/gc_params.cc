// gcOptionsFromParams (gc_job.h), alone: the fuzzers link it without the job machinery.
#include "core/gc/gc_job.h"

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

}  // namespace wharf
