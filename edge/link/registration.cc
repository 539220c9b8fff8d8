#include "edge/link/registration.h"

#include <cerrno>

#include "shared/base/fs.h"
#include "shared/base/json_body.h"
#include "shared/http/blocking_client.h"
#include "shared/tls/crypto.h"

namespace wharf {
namespace {

Result<std::map<std::string, std::string>> keysOf(const nlohmann::json& jwks) {
  if (!jwks.is_object() || !jwks.contains("keys") || !jwks["keys"].is_array()) {
    return Status(Code::kUnavailable, "the core sent no key set");
  }
  std::map<std::string, std::string> keys;
  for (const auto& k : jwks["keys"]) {
    auto pem = publicPemFromJwk(k);
    if (pem.isOk() && k.contains("kid") && k["kid"].is_string()) keys[k["kid"].get<std::string>()] = *pem;
  }
  if (keys.empty()) return Status(Code::kUnavailable, "the core published no usable key");
  return keys;
}

// Reads the fields the core's answers and edge.json share. Fields the edge does not know
// are left alone (a newer core may send more); known ones must have their types.
Status readIdentity(JsonBody& b, EdgeIdentity* id) {
  id->name = b.string("name", {.max = 63}).value_or("");
  id->site = b.string("site", {.max = 256}).value_or("");
  id->credential = b.string("credential", {.max = 1024}).value_or(id->credential);
  id->realm = b.string("realm", {.max = 2048}).value_or("");
  id->service = b.string("service", {.max = 256}).value_or("");
  id->settings = b.rawObject("settings").value_or(nlohmann::json());
  id->trust_policies = b.rawArray("trust_policies").value_or(nlohmann::json::array());
  if (b.has("keys")) {
    id->jwks = b.rawObject("keys").value_or(nlohmann::json());
  }
  WHARF_RETURN_IF_ERROR(b.status());
  auto keys = keysOf(id->jwks);
  if (!keys.isOk()) return keys.status();
  id->keys = std::move(keys).value();
  return Status::ok();
}

// Reads the core's answer into an identity (register and self share the shape).
Result<EdgeIdentity> identityFrom(const std::string& core, const HttpResponse& r, const std::string& what) {
  auto body = JsonBody::parse(r.body);
  if (r.status == 401) {
    std::string msg;
    if (body.isOk() && body->raw().contains("errors")) {
      const auto& errors = body->raw()["errors"];
      if (errors.is_array() && !errors.empty()) msg = JsonBody(errors[0]).string("message").value_or("");
    }
    return Status(Code::kUnauthorized, what + " refused by the core" + (msg.empty() ? "" : ": " + msg));
  }
  if (r.status != 200) return Status(Code::kUnavailable, what + ": the core answered " + std::to_string(r.status));
  if (!body.isOk()) return Status(Code::kUnavailable, what + ": the core's answer: " + body.status().message());
  EdgeIdentity id;
  id.core = core;
  Status st = readIdentity(*body, &id);
  if (!st.isOk()) return Status(Code::kUnavailable, what + ": the core's answer: " + st.message());
  if (id.name.empty() || id.realm.empty()) return Status(Code::kUnavailable, what + ": the core's answer lacks name or realm");
  return id;
}

Result<std::unique_ptr<BlockingClient>> coreClient(const std::string& core, const ClientOptions& tls) {
  auto url = parseBaseUrl(core);
  if (!url.isOk()) return url.status();
  auto c = std::make_unique<BlockingClient>(url->host, url->port, 15000);
  if (url->tls) c->useTls(tls.ca_file, tls.insecure);
  return c;
}

}  // namespace

nlohmann::json EdgeIdentity::toJson() const {
  return {{"core", core},   {"name", name},       {"site", site}, {"credential", credential},
          {"realm", realm}, {"service", service}, {"keys", jwks}, {"settings", settings},
          {"trust_policies", trust_policies}};
}

Result<EdgeIdentity> EdgeIdentity::fromJson(const nlohmann::json& j) {
  JsonBody b(j);
  EdgeIdentity id;
  id.core = b.string("core", {.max = 2048}).value_or("");
  WHARF_RETURN_IF_ERROR(readIdentity(b, &id));
  if (id.core.empty() || id.name.empty() || id.credential.empty() || id.realm.empty()) {
    return Status(Code::kInvalidArgument, "incomplete (core, name, credential and realm are required)");
  }
  return id;
}

Result<EdgeIdentity> joinCore(const std::string& core, const std::string& join_token, const ClientOptions& tls) {
  auto client = coreClient(core, tls);
  if (!client.isOk()) return client.status();
  nlohmann::json body = {{"join_token", join_token}};
  auto r = (*client)->request("POST", "/api/v1/edges/register", {{"Content-Type", "application/json"}}, body.dump());
  if (!r.isOk()) return Status(Code::kUnavailable, "cannot reach the core at " + core + ": " + r.status().message());
  auto id = identityFrom(core, *r, "joining");
  if (!id.isOk()) return id;
  if (id->credential.empty()) return Status(Code::kUnavailable, "joining: the core sent no credential");
  return id;
}

Result<EdgeIdentity> refreshIdentity(const EdgeIdentity& current, const ClientOptions& tls) {
  auto client = coreClient(current.core, tls);
  if (!client.isOk()) return client.status();
  auto r = (*client)->request("GET", "/api/v1/edges/self", {{"Authorization", "Bearer " + current.credential}});
  if (!r.isOk()) return Status(Code::kUnavailable, "cannot reach the core at " + current.core + ": " + r.status().message());
  auto id = identityFrom(current.core, *r, "refreshing");
  if (!id.isOk()) return id;
  id->credential = current.credential;
  return id;
}

Result<EdgeIdentity> loadIdentity(const std::string& path) {
  std::string text;
  Status st = readFile(path, &text);
  if (!st.isOk()) {
    if (st.code() == Code::kNotFound) return st;
    return Status(st.code(), path + ": " + st.message());
  }
  auto j = JsonBody::parse(text);
  if (!j.isOk()) return Status(Code::kInvalidArgument, path + ": " + j.status().message());
  auto id = EdgeIdentity::fromJson(j->raw());
  if (!id.isOk()) return Status(Code::kInvalidArgument, path + ": " + id.status().message());
  return id;
}

Status saveIdentity(const std::string& path, const EdgeIdentity& identity) {
  return writeFileDurable(path, identity.toJson().dump(2) + "\n", 0600);
}

}  // namespace wharf
