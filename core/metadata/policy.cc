#include "core/metadata/policy.h"

#include "shared/oci/names.h"

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
  if (!j.is_object()) return Status(Code::kInvalidArgument, "a policy is a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() != "retention" && it.key() != "immutable" && it.key() != "scope") {
      return Status(Code::kInvalidArgument, "policy: unknown key \"" + it.key() + "\"");
    }
  }
  if (j.contains("immutable")) {
    if (!j["immutable"].is_array()) return Status(Code::kInvalidArgument, "policy: immutable must be a list of tag patterns");
    for (const auto& r : j["immutable"]) {
      if (!r.is_string() || r.get<std::string>().empty() || r.get<std::string>().size() > 128) {
        return Status(Code::kInvalidArgument, "policy: immutable must be a list of tag patterns");
      }
      p.immutable.push_back(r.get<std::string>());
    }
  }
  if (j.contains("retention")) {
    const auto& r = j["retention"];
    if (!r.is_object()) return Status(Code::kInvalidArgument, "policy: retention must be an object");
    for (auto it = r.begin(); it != r.end(); ++it) {
      const std::string& k = it.key();
      if (k == "match") {
        if (!it->is_string() || it->get<std::string>().empty()) {
          return Status(Code::kInvalidArgument, "policy: retention.match must be a tag pattern");
        }
        p.match = it->get<std::string>();
      } else if (k == "keep_last" || k == "keep_days") {
        if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > 1000000) {
          return Status(Code::kInvalidArgument, "policy: retention." + k + " must be a non-negative integer");
        }
        (k == "keep_last" ? p.keep_last : p.keep_days) = it->get<int64_t>();
      } else {
        return Status(Code::kInvalidArgument, "policy: unknown key \"retention." + k + "\"");
      }
    }
    if (p.keep_last < 0 && p.keep_days < 0) {
      return Status(Code::kInvalidArgument, "policy: retention needs keep_last or keep_days");
    }
  }
  return p;
}

}  // namespace wharf
