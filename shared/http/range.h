// Single byte ranges ("Range: bytes=a-b", "a-", "-n").
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "shared/base/status.h"
#include "shared/http/message.h"

namespace wharf {

struct ByteRange {
  uint64_t start, end;  // inclusive
};

// Parses a Range header against a size. nullopt (serve the whole body) for forms it does
// not handle, such as several ranges; kRangeInvalid for an unsatisfiable range.
Result<std::optional<ByteRange>> parseRange(const std::string& header, uint64_t size);

struct ByteSpan {
  uint64_t start, length;
};

// Serves the request's Range, if any, of a body of size bytes: a satisfiable range makes
// *r a 206 with its Content-Range and gives that span; no Range (or a form not handled)
// gives the whole body. An unsatisfiable range gives nullopt and, in *refusal, the 416
// to send instead (with "Content-Range: bytes */size").
std::optional<ByteSpan> applyRange(const Request& req, uint64_t size, Response* r, Response* refusal);

}  // namespace wharf
