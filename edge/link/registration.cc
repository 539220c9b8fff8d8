#include "edge/link/registration.h"

#include <cerrno>

#include "shared/base/fs.h"
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

// Reads the core's answer into an identity (register and self share the shape).
Result<EdgeIdentity> identityFrom(const std::string& core, const HttpResponse& r, const std::string& what) {
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (r.status == 401) {
    std::string msg;
    if (j.is_object() && j.contains("errors") && j["errors"].is_array() && !j["errors"].empty() &&
        j["errors"][0].is_object()) {
      msg = j["errors"][0].value("message", "");
    }
    return Status(Code::kUnauthorized, what + " refused by the core" + (msg.empty() ? "" : ": " + msg));
  }
  if (r.status != 200) return Status(Code::kUnavailable, what + ": the core answered " + std::to_string(r.status));
  if (!j.is_object()) return Status(Code::kUnavailable, what + ": the core's answer is not JSON");
  EdgeIdentity id;
  id.core = core;
  id.name = j.value("name", "");
  id.site = j.value("site", "");
  id.credential = j.value("credential", "");
  id.realm = j.value("realm", "");
  id.service = j.value("service", "");
  if (j.contains("settings") && j["settings"].is_object()) id.settings = j["settings"];
  id.jwks = j.contains("keys") ? j["keys"] : nlohmann::json();
  auto keys = keysOf(id.jwks);
  if (!keys.isOk()) return Status(keys.status().code(), what + ": " + keys.status().message());
  id.keys = std::move(keys).value();
  if (id.name.empty() || id.realm.empty()) return Status(Code::kUnavailable, what + ": the core's answer lacks name or realm");
  return id;
}

Result<std::unique_ptr<BlockingClient>> clientFor(const std::string& core, const ClientOptions& tls) {
  auto url = parseBaseUrl(core);
  if (!url.isOk()) return url.status();
  auto c = std::make_unique<BlockingClient>(url->host, url->port, 15000);
  if (url->tls) c->useTls(tls.ca_file, tls.insecure);
  return c;
}

}  // namespace

nlohmann::json EdgeIdentity::toJson() const {
  return {{"core", core},   {"name", name},       {"site", site}, {"credential", credential},
          {"realm", realm}, {"service", service}, {"keys", jwks}, {"settings", settings}};
}

Result<EdgeIdentity> EdgeIdentity::fromJson(const nlohmann::json& j) {
  if (!j.is_object()) return Status(Code::kInvalidArgument, "not a JSON object");
  EdgeIdentity id;
  id.core = j.value("core", "");
  id.name = j.value("name", "");
  id.site = j.value("site", "");
  id.credential = j.value("credential", "");
  id.realm = j.value("realm", "");
  id.service = j.value("service", "");
  if (j.contains("settings") && j["settings"].is_object()) id.settings = j["settings"];
  id.jwks = j.contains("keys") ? j["keys"] : nlohmann::json();
  auto keys = keysOf(id.jwks);
  if (!keys.isOk()) return keys.status();
  id.keys = std::move(keys).value();
  if (id.core.empty() || id.name.empty() || id.credential.empty() || id.realm.empty()) {
    return Status(Code::kInvalidArgument, "incomplete (core, name, credential and realm are required)");
  }
  return id;
}

Result<EdgeIdentity> joinCore(const std::string& core, const std::string& join_token, const ClientOptions& tls) {
  auto client = clientFor(core, tls);
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
  auto client = clientFor(current.core, tls);
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
  auto j = nlohmann::json::parse(text, nullptr, false);
  auto id = EdgeIdentity::fromJson(j);
  if (!id.isOk()) return Status(Code::kInvalidArgument, path + ": " + id.status().message());
  return id;
}

Status saveIdentity(const std::string& path, const EdgeIdentity& identity) {
  return writeFileDurable(path, identity.toJson().dump(2) + "\n", 0600);
}

}  // namespace wharf
