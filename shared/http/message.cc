#include "shared/http/message.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "shared/http/url.h"

namespace wharf {

void Headers::add(std::string name, std::string value) {
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  fields_.push_back({std::move(name), std::move(value)});
}

void Headers::set(std::string name, std::string value) {
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  fields_.erase(std::remove_if(fields_.begin(), fields_.end(), [&](const Field& f) { return f.name == name; }),
                fields_.end());
  fields_.push_back({std::move(name), std::move(value)});
}

const std::string* Headers::get(std::string_view lower_name) const {
  for (const auto& f : fields_) {
    if (f.name == lower_name) return &f.value;
  }
  return nullptr;
}

std::optional<std::string> Request::queryParam(std::string_view name) const {
  auto all = queryParams(name);
  if (all.empty()) return std::nullopt;
  return all.front();
}

std::vector<std::string> Request::queryParams(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : parseQuery(query)) {
    if (k == name) out.push_back(v);
  }
  return out;
}

Response Response::text(int status, std::string body, std::string content_type) {
  Response r;
  r.status = status;
  r.headers.add("Content-Type", std::move(content_type));
  r.body = std::move(body);
  return r;
}

Response Response::json(int status, std::string body) { return text(status, std::move(body), "application/json"); }

Response Response::error(const Status& status) {
  const ErrorInfo& info = errorInfo(status.code());
  nlohmann::json body = {{"errors", nlohmann::json::array({{{"code", info.oci_code}, {"message", status.message()}}})}};
  return json(info.http_status, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

uint64_t Response::bodyLength() const {
  if (const auto* s = std::get_if<std::string>(&body)) return s->size();
  if (const auto* f = std::get_if<FileBody>(&body)) return f->length;
  if (const auto* src = std::get_if<std::shared_ptr<BodySource>>(&body)) return (*src)->length().value_or(0);
  return head_length.value_or(0);
}

std::string_view reasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 507: return "Insufficient Storage";
    default: return "Unknown";
  }
}

}  // namespace wharf
