#include "shared/auth/revocation.h"

#include "shared/base/json_body.h"
#include "shared/oci/names.h"

namespace wharf {

bool RevocationList::covers(const TokenClaims& c, const std::string& repository) const {
  for (const auto& r : entries) {
    if (c.issued_at > r.before_s) continue;
    if (r.kind == "subject" && !c.subject.empty() && c.subject == r.value) return true;
    if (r.kind == "via" && !c.via.empty() && c.via == r.value) return true;
    if (r.kind == "repository" && !repository.empty() && repositoryPatternMatches(r.value, repository)) return true;
  }
  return false;
}

RevocationList RevocationList::pruned(int64_t now_s) const {
  RevocationList out;
  out.version = version;
  for (const auto& r : entries) {
    if (r.until_s >= now_s) out.entries.push_back(r);
  }
  return out;
}

nlohmann::json RevocationList::toJson() const {
  nlohmann::json items = nlohmann::json::array();
  for (const auto& r : entries) {
    items.push_back({{"kind", r.kind}, {"value", r.value}, {"before", r.before_s}, {"until", r.until_s}});
  }
  return {{"version", version}, {"entries", items}};
}

Result<RevocationList> RevocationList::fromJson(const nlohmann::json& j) {
  if (!j.is_object()) return Status(Code::kInvalidArgument, "revocations: expected an object");
  JsonBody b(j, "revocations");
  RevocationList out;
  out.version = static_cast<uint64_t>(b.integer("version", {.required = true, .min = 0}).value_or(0));
  WHARF_RETURN_IF_ERROR(b.status());
  if (!j.contains("entries") || !j["entries"].is_array() || j["entries"].size() > 100000) {
    return Status(Code::kInvalidArgument, "revocations.entries: expected an array (of at most 100000)");
  }
  for (const auto& e : j["entries"]) {
    if (!e.is_object()) return Status(Code::kInvalidArgument, "revocations.entries: expected objects");
    JsonBody eb(e, "revocations.entries[]");
    Revocation r;
    r.kind = eb.string("kind", {.required = true, .max = 16}).value_or("");
    r.value = eb.string("value", {.required = true, .max = 512}).value_or("");
    r.before_s = eb.integer("before", {.required = true, .min = 0}).value_or(0);
    r.until_s = eb.integer("until", {.required = true, .min = 0}).value_or(0);
    WHARF_RETURN_IF_ERROR(eb.finish());
    if (r.kind != "subject" && r.kind != "via" && r.kind != "repository") {
      return Status(Code::kInvalidArgument, "revocations.entries[].kind: expected subject, via or repository");
    }
    out.entries.push_back(std::move(r));
  }
  return out;
}

}  // namespace wharf
