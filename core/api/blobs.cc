// GET|HEAD|DELETE /v2/<name>/blobs/<digest>
#include "core/api/api.h"

namespace wharf {
namespace {

struct ByteRange {
  uint64_t start, end;  // inclusive
};

// Parses a single "bytes=a-b", "bytes=a-" or "bytes=-n" range against size. Returns
// nullopt (serve the whole blob) for forms it does not handle, such as several ranges,
// and kRangeInvalid for an unsatisfiable range.
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

}  // namespace

void handleBlob(ApiContext& ctx, const ExchangePtr& ex, const Route& route, const Caller& caller) {
  const Request& req = ex->request();
  auto digest = Digest::parse(route.reference);
  if (!digest.isOk()) return replyError(ex, digest.status());
  if (req.method == "DELETE") {
    Digest d = *digest;
    std::string name = route.name;
    offload<Status>(
        ctx, ex, [&ctx, name, d] { return ctx.registry.deleteBlob(name, d); },
        [&ctx, ex, name, d, caller](Status st) {
          audit(ctx, caller, "delete", name + "@" + d.str(), st.isOk() ? "success" : "failure");
          if (!st.isOk()) return replyError(ex, st);
          Response r;
          r.status = 202;
          reply(ex, std::move(r));
        });
    return;
  }
  if (req.method != "GET" && req.method != "HEAD") return replyError(ex, Status(Code::kMethodNotAllowed, "method not allowed"));
  auto file = ctx.registry.openBlob(route.name, *digest);
  if (!file.isOk()) return replyError(ex, file.status());
  std::string d = digest->str();
  Response r;
  r.headers.add("Content-Type", "application/octet-stream");
  r.headers.add("Docker-Content-Digest", d);
  r.headers.add("ETag", "\"" + d + "\"");
  r.headers.add("Accept-Ranges", "bytes");
  r.headers.add("Cache-Control", "max-age=31536000");
  uint64_t start = 0, length = file->size;
  if (const std::string* range = req.headers.get("range")) {
    auto parsed = parseRange(*range, file->size);
    if (!parsed.isOk()) {
      Response e = errorResponse(parsed.status());
      e.headers.add("Content-Range", "bytes */" + std::to_string(file->size));
      return reply(ex, std::move(e));
    }
    if (parsed->has_value()) {
      start = (*parsed)->start;
      length = (*parsed)->end - start + 1;
      r.status = 206;
      r.headers.add("Content-Range", "bytes " + std::to_string(start) + "-" + std::to_string((*parsed)->end) + "/" +
                                         std::to_string(file->size));
    }
  }
  if (req.isHead()) {
    r.head_length = length;
  } else {
    r.body = FileBody{file->fd, start, length};
  }
  reply(ex, std::move(r));
}

}  // namespace wharf
