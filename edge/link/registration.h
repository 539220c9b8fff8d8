// Registration: the edge's standing with its core.
//
// Joining happens once: an administrator creates a join token on the core (`wharfctl
// edge add`), and `wharf-edge --core URL --join-token T` exchanges it (POST
// /api/v1/edges/register) for the edge's own credential, the core's token realm and
// signing keys, and the settings the core keeps for this edge. All of it is kept in
// <data_dir>/edge.json (mode 0600), so restarts need no token. Afterwards the edge
// refreshes keys and settings with its credential (GET /api/v1/edges/self); the core
// answering 401 means it removed this edge, which then serves nothing.
//
// These calls block: make them at start-up or from the refresher thread.
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "shared/base/status.h"
#include "shared/http/client.h"

namespace wharf {

struct EdgeIdentity {
  std::string core;  // the core's base URL
  std::string name, site;
  std::string credential;  // secret: never logged
  std::string realm, service;
  std::map<std::string, std::string> keys;  // kid -> PEM public key
  nlohmann::json settings = nlohmann::json::object();
  nlohmann::json trust_policies = nlohmann::json::array();  // the core's, for edge/trust
  nlohmann::json jwks;  // the key set as the core published it

  nlohmann::json toJson() const;
  static Result<EdgeIdentity> fromJson(const nlohmann::json& j);
};

// Exchanges a join token for an identity.
Result<EdgeIdentity> joinCore(const std::string& core, const std::string& join_token, const ClientOptions& tls);
// Fresh keys and settings; kUnauthorized when the core no longer knows this edge.
Result<EdgeIdentity> refreshIdentity(const EdgeIdentity& current, const ClientOptions& tls);

// <data_dir>/edge.json: kNotFound when the edge has not joined yet.
Result<EdgeIdentity> loadIdentity(const std::string& path);
Status saveIdentity(const std::string& path, const EdgeIdentity& identity);

}  // namespace wharf
