// GET|HEAD|DELETE /v2/<name>/blobs/<digest>
#include "core/api/api.h"
#include "core/events/event_log.h"
#include "shared/http/range.h"

namespace wharf {
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
          emitEvent(ctx, caller, event_type::kBlobDelete, name, EventTarget{"", d.str(), 0, "", ""}, ex->request());
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
  Response refusal;
  auto span = applyRange(req, file->size, &r, &refusal);
  if (!span) return reply(ex, std::move(refusal));
  const auto [start, length] = *span;
  if (req.isHead()) {
    r.head_length = length;
  } else {
    r.body = FileBody{file->fd, start, length};
  }
  reply(ex, std::move(r));
}

}  // namespace wharf
