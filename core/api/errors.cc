#include <nlohmann/json.hpp>

#include "core/api/api.h"
#include "shared/base/clock.h"
#include "shared/base/log.h"
#include "shared/http/url.h"
#include "shared/metrics/metrics.h"

namespace wharf {

Response errorResponse(const Status& status) {
  Response r = Response::error(status);
  // Unavailable (the metadata database away, shutting down): come back soon.
  if (r.status == 503) r.headers.add("Retry-After", "5");
  return r;
}

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

ApiReply apiOk(nlohmann::json body, int status) {
  ApiReply r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

ApiReply apiFail(const Status& status) {
  ApiReply r;
  r.status = errorInfo(status.code()).http_status;
  r.body = errorJson(status);
  if (r.status == 401) r.challenge = "Basic realm=\"wharf\"";
  return r;
}

void serveApi(ApiContext& ctx, const ExchangePtr& ex, size_t max_body, std::function<ApiReply(std::string body)> handler) {
  ex->readFullBody(max_body, [&ctx, ex, handler = std::move(handler)](Status st, std::string body) {
    if (!st.isOk()) return replyError(ex, st);
    auto shared = std::make_shared<std::string>(std::move(body));
    offload<ApiReply>(
        ctx, ex, [handler, shared] { return handler(std::move(*shared)); },
        [ex](ApiReply r) { replyApi(ex, std::move(r)); });
  });
}

bool fromBrowserScript(const Request& req) {
  const std::string* dest = req.headers.get("sec-fetch-dest");
  return dest != nullptr && *dest == "empty";
}

void replyApi(const ExchangePtr& ex, ApiReply r) {
  if (r.stream) return reply(ex, r.stream(ex->loop()));
  // A Basic challenge would make a browser prompt for credentials over the web UI, which
  // signs in with its own form: scripts' requests (fetch) get the 401 without it.
  if (r.challenge.rfind("Basic", 0) == 0 && fromBrowserScript(ex->request())) r.challenge.clear();
  Response resp;
  resp.status = r.status;
  if (r.status != 204) {
    resp = Response::json(r.status, r.body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  if (!r.challenge.empty()) resp.headers.add("WWW-Authenticate", r.challenge);
  if (!r.location.empty()) resp.headers.add("Location", r.location);
  if (r.status == 503) resp.headers.add("Retry-After", "5");
  if (r.no_store) resp.headers.add("Cache-Control", "no-store");
  reply(ex, std::move(resp));
}

void replyHandlerFailure(const ExchangePtr& ex, const std::string& what) {
  MetricsRegistry::global()
      .counter("wharf_handler_failures_total", "Requests whose handler failed unexpectedly (answered 500).")
      .inc();
  const Request& req = ex->request();
  logError("request handler failed",
           {{"request_id", req.id}, {"method", req.method}, {"path", req.path}, {"error", what}});
  reply(ex, errorResponse(Status(Code::kInternal, "internal error (request " + req.id + ")")));
}

void reply(const ExchangePtr& ex, Response response) {
  if (ex->detached() || ex->responded()) return;
  response.headers.add("Docker-Distribution-API-Version", "registry/2.0");
  const Request& req = ex->request();
  response.headers.add("X-Request-Id", req.id);
  if (ApiContext::access_log && logEnabled(LogLevel::kInfo)) {
    logInfo("request", {{"method", req.method},
                        {"path", req.path},
                        {"query", req.query},
                        {"status", response.status},
                        {"bytes", response.bodyLength()},
                        {"peer", req.peer},
                        {"request_id", req.id}});
  }
  ex->respond(std::move(response));
}

void replyError(const ExchangePtr& ex, const Status& status) {
  if (status.code() == Code::kCancelled) return;  // the client is gone
  if (errorInfo(status.code()).http_status >= 500) {
    logError("request failed", {{"request_id", ex->request().id},
                                {"method", ex->request().method},
                                {"path", ex->request().path},
                                {"error", status.toString()}});
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
