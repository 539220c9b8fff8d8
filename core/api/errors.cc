#include <nlohmann/json.hpp>

#include "core/api/api.h"
#include "shared/base/clock.h"
#include "shared/base/log.h"
#include "shared/http/url.h"
#include "shared/metrics/metrics.h"

namespace wharf {

Response errorResponse(const Status& status) { return Response::error(status); }

void reply(const ExchangePtr& ex, Response response) {
  if (ex->detached() || ex->responded()) return;
  response.headers.add("Docker-Distribution-API-Version", "registry/2.0");
  const Request& req = ex->request();
  if (ApiContext::access_log && logEnabled(LogLevel::kInfo)) {
    logInfo("request", {{"method", req.method},
                        {"path", req.path},
                        {"query", req.query},
                        {"status", response.status},
                        {"bytes", response.bodyLength()},
                        {"peer", req.peer}});
  }
  ex->respond(std::move(response));
}

void replyError(const ExchangePtr& ex, const Status& status) {
  if (status.code() == Code::kCancelled) return;  // the client is gone
  if (errorInfo(status.code()).http_status >= 500) {
    logError("request failed", {{"method", ex->request().method}, {"path", ex->request().path}, {"error", status.toString()}});
  }
  reply(ex, errorResponse(status));
}

Status pageParams(const Request& req, size_t max_page, size_t* n, std::string* last) {
  *n = max_page;
  if (auto v = req.queryParam("n")) {
    if (v->empty() || v->size() > 9 || v->find_first_not_of("0123456789") != std::string::npos) {
      return Status(Code::kInvalidArgument, "n must be a non-negative integer");
    }
    *n = std::min<size_t>(std::stoul(*v), max_page);
  }
  *last = req.queryParam("last").value_or("");
  return Status::ok();
}

std::string nextLink(const std::string& path, size_t n, const std::string& last) {
  return "<" + path + "?n=" + std::to_string(n) + "&last=" + percentEncode(last) + ">; rel=\"next\"";
}

}  // namespace wharf
