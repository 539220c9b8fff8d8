#include "core/metadata/policy.h"

#include "shared/base/clock.h"

#include "shared/base/json_body.h"
#include "shared/oci/names.h"
#include "shared/tuf/tuf_crypto.h"

namespace wharf {

bool globMatch(std::string_view p, std::string_view t) {
  size_t pi = 0, ti = 0, star = std::string_view::npos, mark = 0;
  while (ti < t.size()) {
    if (pi < p.size() && (p[pi] == '?' || p[pi] == t[ti])) {
      ++pi;
      ++ti;
    } else if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = ti;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      ti = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

bool scopeCovers(const std::string& scope, const std::string& repo) {
  if (scope == repo) return true;
  if (scope.size() >= 2 && scope.compare(scope.size() - 2, 2, "/*") == 0) {
    return repo.size() > scope.size() - 1 && repo.compare(0, scope.size() - 1, scope, 0, scope.size() - 1) == 0;
  }
  return false;
}

std::optional<std::string> immutableRule(const std::vector<Policy>& policies, const std::string& repo,
                                         const std::string& tag) {
  for (const auto& p : policies) {
    if (!scopeCovers(p.scope, repo)) continue;
    for (const auto& rule : p.immutable) {
      if (globMatch(rule, tag)) return "\"" + rule + "\" (policy " + p.scope + ")";
    }
  }
  return std::nullopt;
}

nlohmann::json Policy::toJson() const {
  nlohmann::json j = {{"scope", scope}, {"immutable", immutable}};
  if (keep_last >= 0 || keep_days >= 0) {
    j["retention"] = {{"match", match}};
    if (keep_last >= 0) j["retention"]["keep_last"] = keep_last;
    if (keep_days >= 0) j["retention"]["keep_days"] = keep_days;
  }
  if (scan_on_push || !block_severity.empty() || !exemptions.empty()) {
    j["scan"] = nlohmann::json::object();
    if (scan_on_push) j["scan"]["on_push"] = *scan_on_push;
    if (!block_severity.empty()) j["scan"]["block_severity"] = block_severity;
    if (!exemptions.empty()) {
      nlohmann::json ex = nlohmann::json::array();
      for (const auto& e : exemptions)
        ex.push_back({{"advisory", e.advisory}, {"reason", e.reason}, {"expires", formatRfc3339(e.expires_ms)}});
      j["scan"]["exemptions"] = std::move(ex);
    }
  }
  if (!trust.require.empty()) {
    j["trust"] = {{"require", trust.require}};
    if (!trust.roles.empty()) j["trust"]["roles"] = trust.roles;
    if (!trust.keys.empty()) j["trust"]["keys"] = trust.keys;
    if (!trust.cosign_keys.empty()) j["trust"]["cosign_keys"] = trust.cosign_keys;
  }
  return j;
}

Result<Policy> Policy::fromJson(const std::string& scope, const nlohmann::json& j) {
  Policy p;
  p.scope = scope;
  std::string base = scope.size() >= 2 && scope.compare(scope.size() - 2, 2, "/*") == 0 ? scope.substr(0, scope.size() - 2)
                                                                                          : scope;
  if (!validateRepositoryName(base).isOk()) {
    return Status(Code::kInvalidArgument, "policy scope must be a repository (team/app) or a namespace (team/*): " + scope);
  }
  JsonBody b(j, "policy");
  b.string("scope", {.max = 512});  // accepted (GET's output) and ignored: the path names the scope
  if (auto imm = b.strings("immutable", {.max_items = 100, .max = 128})) {
    for (const auto& r : *imm) {
      if (r.empty()) b.fail("immutable", "tag patterns are not empty");
    }
    p.immutable = std::move(*imm);
  }
  if (auto r = b.object("retention")) {
    if (auto m = r->string("match", {.max = 128, .non_empty = true})) p.match = *m;
    if (auto n = r->integer("keep_last", {.min = 0, .max = 1000000})) p.keep_last = *n;
    if (auto n = r->integer("keep_days", {.min = 0, .max = 1000000})) p.keep_days = *n;
    WHARF_RETURN_IF_ERROR(r->finish());
    if (p.keep_last < 0 && p.keep_days < 0) {
      return Status(Code::kInvalidArgument, "policy.retention: needs keep_last or keep_days");
    }
  }
  if (auto sc = b.object("scan")) {
    p.scan_on_push = sc->boolean("on_push");
    if (auto sev = sc->string("block_severity", {.max = 16})) {
      if (*sev != "" && *sev != "NONE" && *sev != "LOW" && *sev != "MEDIUM" && *sev != "HIGH" && *sev != "CRITICAL")
        sc->fail("block_severity", "is one of LOW, MEDIUM, HIGH, CRITICAL, or NONE (a repository opting out of its namespace's)");
      p.block_severity = *sev;
    }
    if (auto ex = sc->rawArray("exemptions")) {
      if (ex->size() > 1000) sc->fail("exemptions", "has at most 1000 items");
      for (size_t i = 0; i < ex->size() && sc->status().isOk(); ++i) {
        JsonBody e((*ex)[i], sc->fieldName("exemptions") + "[" + std::to_string(i) + "]");
        VulnExemption v;
        v.advisory = e.string("advisory", {.required = true, .max = 128, .non_empty = true}).value_or("");
        v.reason = e.string("reason", {.required = true, .max = 1024, .non_empty = true}).value_or("");
        if (auto t = e.string("expires", {.required = true, .max = 64, .non_empty = true})) {
          auto ms = parseTimeBound(*t);
          if (!ms.isOk()) e.fail("expires", "is an RFC 3339 time");
          else v.expires_ms = *ms;
        }
        WHARF_RETURN_IF_ERROR(e.finish());
        p.exemptions.push_back(std::move(v));
      }
    }
    WHARF_RETURN_IF_ERROR(sc->finish());
  }
  if (auto tr = b.object("trust")) {
    TrustPolicy& t = p.trust;
    t.require = tr->string("require", {.required = true, .max = 16}).value_or("");
    if (t.require != "none" && !t.enforced())
      tr->fail("require", "is one of notary, cosign, either, both, or none (a repository opting out of its namespace's)");
    t.roles = tr->strings("roles", {.max_items = 32, .max = 255}).value_or(std::vector<std::string>{});
    for (const auto& r : t.roles)
      if (r != "targets" && r.rfind("targets/", 0) != 0) tr->fail("roles", "are targets or delegations (targets/...)");
    t.keys = tr->strings("keys", {.max_items = 64, .max = 64}).value_or(std::vector<std::string>{});
    for (const auto& k : t.keys)
      if (k.size() != 64 || k.find_first_not_of("0123456789abcdef") != std::string::npos)
        tr->fail("keys", "are TUF key ids (64 lower-case hex digits)");
    t.cosign_keys = tr->strings("cosign_keys", {.max_items = 32, .max = 4096}).value_or(std::vector<std::string>{});
    for (const auto& pem : t.cosign_keys)
      if (auto k = tuf::CosignKey::fromPem(pem); !k.isOk()) tr->fail("cosign_keys", k.status().message());
    if (t.wantsCosign() && t.cosign_keys.empty()) tr->fail("cosign_keys", "are needed to accept cosign signatures");
    if (!t.wantsNotary() && (!t.roles.empty() || !t.keys.empty())) tr->fail("roles", "and keys apply to Notary signatures");
    WHARF_RETURN_IF_ERROR(tr->finish());
  }
  WHARF_RETURN_IF_ERROR(b.finish());
  return p;
}

const Policy* mostSpecificPolicy(const std::vector<Policy>& policies, const std::string& repo,
                                 const std::function<bool(const Policy&)>& has) {
  const Policy* best = nullptr;
  for (const auto& p : policies) {
    if (!scopeCovers(p.scope, repo) || !has(p)) continue;
    if (best == nullptr || p.scope.size() > best->scope.size() ||
        (p.scope == repo && best->scope != repo))
      best = &p;
  }
  return best;
}

}  // namespace wharf
