// Docker token scopes ("repository:team/app:pull,push") and WWW-Authenticate challenges.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/base/status.h"

namespace wharf {

struct Scope {
  std::string type;                  // "repository", "registry"
  std::string name;                  // repository name, or "catalog"
  std::vector<std::string> actions;  // "pull", "push", "delete", "*"

  bool allows(std::string_view action) const;
  std::string str() const;
  nlohmann::json toJson() const;  // the token's "access" entry
};

// Parses "type:name:actions". The name may itself contain ':' (a host:port prefix), so
// the type ends at the first ':' and the actions start after the last one. Actions are
// de-duplicated and sorted.
Result<Scope> parseScope(std::string_view s);
Result<Scope> scopeFromJson(const nlohmann::json& j);

// `Bearer realm="...",service="...",scope="..."[,error="insufficient_scope"]`
std::string bearerChallenge(const std::string& realm, const std::string& service, const std::vector<Scope>& scopes,
                            bool insufficient);

}  // namespace wharf
