// Single byte ranges ("Range: bytes=a-b", "a-", "-n").
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "shared/base/status.h"

namespace wharf {

struct ByteRange {
  uint64_t start, end;  // inclusive
};

// Parses a Range header against a size. nullopt (serve the whole body) for forms it does
// not handle, such as several ranges; kRangeInvalid for an unsatisfiable range.
Result<std::optional<ByteRange>> parseRange(const std::string& header, uint64_t size);

}  // namespace wharf
