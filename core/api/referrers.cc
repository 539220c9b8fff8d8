// GET /v2/<name>/referrers/<digest>[?artifactType=]
#include <nlohmann/json.hpp>

#include "core/api/api.h"
#include "shared/oci/media_types.h"

namespace wharf {

void handleReferrers(ApiContext& ctx, const ExchangePtr& ex, const Route& route, const Caller&) {
  const Request& req = ex->request();
  if (req.method != "GET") return replyError(ex, Status(Code::kMethodNotAllowed, "method not allowed"));
  auto subject = Digest::parse(route.reference);
  if (!subject.isOk()) return replyError(ex, subject.status());
  auto filter = req.queryParam("artifactType");
  nlohmann::json manifests = nlohmann::json::array();
  for (auto& d : ctx.registry.metadata().referrers(route.name, subject->str())) {
    if (filter && d.value("artifactType", "") != *filter) continue;
    manifests.push_back(std::move(d));
  }
  nlohmann::json body = {{"schemaVersion", 2}, {"mediaType", media::kOciIndex}, {"manifests", std::move(manifests)}};
  Response r = Response::text(200, body.dump(), std::string(media::kOciIndex));
  if (filter) r.headers.add("OCI-Filters-Applied", "artifactType");
  reply(ex, std::move(r));
}

}  // namespace wharf
