// Request-target handling. Routing and authorization both see the path produced here, so
// there is exactly one normalization.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shared/base/status.h"

namespace wharf {

// Splits an origin-form request-target into a decoded path and the raw query. Refuses
// (kInvalidArgument) anything that could make two spellings of one path: non-origin
// forms, encoded '/', '\\' or NUL, '.' or '..' segments, empty segments ("//"), invalid
// percent escapes and control characters.
Status splitTarget(std::string_view target, std::string* path, std::string* query);

std::vector<std::pair<std::string, std::string>> parseQuery(std::string_view query);
std::string percentDecode(std::string_view s, bool plus_as_space);
std::string percentEncode(std::string_view s);  // encodes all but unreserved characters

}  // namespace wharf
