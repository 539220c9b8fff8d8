#include <nlohmann/json.hpp>

#include "core/api/api.h"
#include "shared/base/clock.h"
#include "shared/base/log.h"
#include "shared/http/url.h"
#include "shared/metrics/metrics.h"

namespace wharf {

Response errorResponse(const Status& status) { return Response::error(status); }

nlohmann::json errorJson(const Status& status) {
  const ErrorInfo& info = errorInfo(status.code());
  return {{"errors", nlohmann::json::array({{{"code", info.oci_code}, {"message", status.message()}}})}};
}

std::vector<std::string> splitPath(std::string_view path) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (end > start) out.emplace_back(path.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

Result<nlohmann::json> parseJsonObject(const std::string& raw) {
  if (raw.empty()) return nlohmann::json::object();
  auto body = nlohmann::json::parse(raw, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    return Status(Code::kInvalidArgument, "the request body must be a JSON object");
  }
  return body;
}

Status allowFields(const nlohmann::json& body, const std::set<std::string>& allowed) {
  if (!body.is_object()) return Status(Code::kInvalidArgument, "the request body must be a JSON object");
  for (auto it = body.begin(); it != body.end(); ++it) {
    if (!allowed.count(it.key())) return Status(Code::kInvalidArgument, "unknown or read-only field \"" + it.key() + "\"");
  }
  return Status::ok();
}

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
