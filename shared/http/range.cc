#include "shared/http/range.h"

namespace wharf {

Result<std::optional<ByteRange>> parseRange(const std::string& h, uint64_t size) {
  if (h.rfind("bytes=", 0) != 0 || h.find(',') != std::string::npos) return std::optional<ByteRange>();
  std::string spec = h.substr(6);
  auto dash = spec.find('-');
  if (dash == std::string::npos) return Status(Code::kRangeInvalid, "malformed Range");
  std::string a = spec.substr(0, dash), b = spec.substr(dash + 1);
  auto num = [](const std::string& s, uint64_t* out) {
    if (s.empty() || s.size() > 19 || s.find_first_not_of("0123456789") != std::string::npos) return false;
    *out = std::stoull(s);
    return true;
  };
  uint64_t x = 0, y = 0;
  if (a.empty()) {
    if (!num(b, &y) || y == 0 || size == 0) return Status(Code::kRangeInvalid, "unsatisfiable Range");
    y = std::min(y, size);
    return std::optional<ByteRange>(ByteRange{size - y, size - 1});
  }
  if (!num(a, &x)) return Status(Code::kRangeInvalid, "malformed Range");
  if (b.empty()) {
    y = size - 1;
  } else if (!num(b, &y) || y < x) {
    return Status(Code::kRangeInvalid, "malformed Range");
  }
  if (x >= size) return Status(Code::kRangeInvalid, "unsatisfiable Range");
  return std::optional<ByteRange>(ByteRange{x, std::min(y, size - 1)});
}

std::optional<ByteSpan> applyRange(const Request& req, uint64_t size, Response* r, Response* refusal) {
  const std::string* header = req.headers.get("range");
  if (header == nullptr) return ByteSpan{0, size};
  auto parsed = parseRange(*header, size);
  if (!parsed.isOk()) {
    *refusal = Response::error(parsed.status());
    refusal->headers.add("Content-Range", "bytes */" + std::to_string(size));
    return std::nullopt;
  }
  if (!parsed->has_value()) return ByteSpan{0, size};
  const ByteRange& b = **parsed;
  r->status = 206;
  r->headers.add("Content-Range",
                 "bytes " + std::to_string(b.start) + "-" + std::to_string(b.end) + "/" + std::to_string(size));
  return ByteSpan{b.start, b.end - b.start + 1};
}

}  // namespace wharf
