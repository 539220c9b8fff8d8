// Policies: retention and tag immutability rules per repository or namespace (the
// Policy record is in metadata_store.h), and how they match.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/metadata/metadata_store.h"

namespace wharf {

// Shell-style pattern: '*' any run of characters, '?' one character.
bool globMatch(std::string_view pattern, std::string_view text);
// Whether a policy scope ("team/app", or "team/*" for every repository under team/)
// covers repo.
bool scopeCovers(const std::string& scope, const std::string& repo);
// The rule that makes repo:tag immutable ("v* (policy team/*)"), if any.
std::optional<std::string> immutableRule(const std::vector<Policy>& policies, const std::string& repo,
                                         const std::string& tag);

// The policy that decides a setting for repo: the one naming the repository, else the
// namespace covering it with the longest scope, among those for which has() is true.
const Policy* mostSpecificPolicy(const std::vector<Policy>& policies, const std::string& repo,
                                 const std::function<bool(const Policy&)>& has);

}  // namespace wharf
