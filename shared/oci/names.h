// Repository name, tag and reference rules of the OCI distribution spec. Everything a
// client sends is checked here before it touches a key or a path.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "shared/base/status.h"

namespace wharf {

constexpr size_t kMaxRepositoryName = 255;
constexpr size_t kMaxTag = 128;

// [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*, at most 255
// characters. kNameInvalid otherwise.
Status validateRepositoryName(std::string_view name);
// [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}. kTagInvalid otherwise.
Status validateTag(std::string_view tag);
// A manifest reference is a digest when it contains ':', else a tag.
bool isDigestReference(std::string_view reference);

// Repository patterns, as settings, revocations and prefetch rules name repositories:
// "*" (every repository), "team/*" (every repository under team/, at any depth) or an
// exact name. kNameInvalid otherwise.
Status validateRepositoryPattern(std::string_view pattern);
bool repositoryPatternMatches(std::string_view pattern, std::string_view repo);
// One of the patterns matches (none: false).
bool anyRepositoryPatternMatches(const std::vector<std::string>& patterns, std::string_view repo);

}  // namespace wharf
