// Small string helpers shared across modules.
#pragma once

#include <string>
#include <string_view>

namespace wharf {

// s without leading and trailing spaces, tabs, carriage returns and newlines.
std::string trimSpace(std::string_view s);

}  // namespace wharf
