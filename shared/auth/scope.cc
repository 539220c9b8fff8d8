#include "shared/auth/scope.h"

#include <algorithm>

namespace wharf {

bool Scope::allows(std::string_view action) const {
  for (const auto& a : actions) {
    if (a == action || a == "*") return true;
  }
  return false;
}

std::string Scope::str() const {
  std::string out = type + ":" + name + ":";
  for (size_t i = 0; i < actions.size(); ++i) {
    if (i > 0) out += ',';
    out += actions[i];
  }
  return out;
}

nlohmann::json Scope::toJson() const { return {{"type", type}, {"name", name}, {"actions", actions}}; }

Result<Scope> parseScope(std::string_view s) {
  if (s.size() > 512) return Status(Code::kInvalidArgument, "scope too long");
  auto first = s.find(':');
  auto last = s.rfind(':');
  if (first == std::string_view::npos || first == last) {
    return Status(Code::kInvalidArgument, "scope must be type:name:actions");
  }
  Scope scope;
  scope.type = std::string(s.substr(0, first));
  scope.name = std::string(s.substr(first + 1, last - first - 1));
  if (scope.type.empty() || scope.name.empty()) return Status(Code::kInvalidArgument, "scope has an empty type or name");
  std::string_view acts = s.substr(last + 1);
  size_t start = 0;
  while (start <= acts.size()) {
    size_t comma = acts.find(',', start);
    if (comma == std::string_view::npos) comma = acts.size();
    std::string a(acts.substr(start, comma - start));
    if (!a.empty()) scope.actions.push_back(a);
    start = comma + 1;
  }
  std::sort(scope.actions.begin(), scope.actions.end());
  scope.actions.erase(std::unique(scope.actions.begin(), scope.actions.end()), scope.actions.end());
  return scope;
}

Result<Scope> scopeFromJson(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string() || !j.contains("name") || !j["name"].is_string() ||
      !j.contains("actions") || !j["actions"].is_array()) {
    return Status(Code::kInvalidArgument, "malformed access entry");
  }
  Scope s;
  s.type = j["type"].get<std::string>();
  s.name = j["name"].get<std::string>();
  for (const auto& a : j["actions"]) {
    if (!a.is_string()) return Status(Code::kInvalidArgument, "malformed access action");
    s.actions.push_back(a.get<std::string>());
  }
  return s;
}

std::string bearerChallenge(const std::string& realm, const std::string& service, const std::vector<Scope>& scopes,
                            bool insufficient) {
  std::string out = "Bearer realm=\"" + realm + "\",service=\"" + service + "\"";
  if (!scopes.empty()) {
    out += ",scope=\"";
    for (size_t i = 0; i < scopes.size(); ++i) {
      if (i > 0) out += ' ';
      out += scopes[i].str();
    }
    out += "\"";
  }
  if (insufficient) out += ",error=\"insufficient_scope\"";
  return out;
}

}  // namespace wharf
