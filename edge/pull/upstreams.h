// Upstreams: where the edge fetches what it does not hold.
//
// The core serves every repository not otherwise mapped; requests to it carry the
// client's own token, so the core authorizes what the edge fetches for each client.
// Other registries are mapped by namespace prefix: with {"prefix": "hub/", "url":
// "https://registry-1.docker.io"}, the edge's repository hub/library/alpine is
// library/alpine there. The edge authenticates to those with its own credentials for
// each (HTTP basic, or bearer tokens from the registry's realm, anonymous when none are
// configured) and never forwards a client's token to them. Descriptor `urls` are never
// followed: blobs come from the upstream of their repository, or not at all.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "shared/base/status.h"
#include "shared/http/client.h"

namespace wharf {

// An upstream's own credentials and the tokens they buy, for one upstream registry.
// fetch() blocks (HTTP to the registry and its realm): call it off the loop threads.
class RegistryAuth {
 public:
  RegistryAuth(std::string base_url, BaseUrl url, std::string username, std::string password, ClientOptions tls)
      : base_url_(std::move(base_url)), url_(std::move(url)), username_(std::move(username)),
        password_(std::move(password)), tls_(std::move(tls)) {}
  // The Authorization header for pulling repo (the upstream's name), if one is at hand;
  // "" means none is needed.
  std::optional<std::string> cached(const std::string& repo);
  Result<std::string> fetch(const std::string& repo);
  // The upstream refused a header it was given (expired early, revoked): forget it.
  void invalidate(const std::string& repo);

 private:
  Status learnChallenge();  // REQUIRES: mu_ not held
  std::string base_url_;
  BaseUrl url_;
  std::string username_, password_;
  ClientOptions tls_;
  std::mutex mu_;
  bool known_ = false;        // GUARDED_BY(mu_): the challenge was read
  std::string scheme_;        // GUARDED_BY(mu_): "", "basic" or "bearer"
  std::string realm_, service_;  // GUARDED_BY(mu_)
  struct Token {
    std::string header;
    int64_t expires_ms;
  };
  std::map<std::string, Token> tokens_;  // GUARDED_BY(mu_): by repository
};

struct UpstreamSpec {
  std::string prefix;  // "" for the core
  std::string url;
  std::string username, password;
  std::string ca_file;
  bool insecure = false;
};

struct UpstreamTarget {
  std::string prefix;       // "" for the core
  std::string base_url;     // for messages
  Upstream address;         // resolved at start-up
  ClientOptions options;
  bool is_core = false;
  std::unique_ptr<RegistryAuth> auth;  // other registries
  size_t index = 0;         // position in the set (client pools are per upstream)
};

class UpstreamSet {
 public:
  // Parses the JSON array of the `upstreams` setting:
  //   [{"prefix": "hub/", "url": "https://...", "username": "...", "password_file": "...",
  //     "ca_file": "...", "insecure": false}]
  static Result<std::vector<UpstreamSpec>> parseSpecs(const std::string& json);
  // Resolves every upstream (blocks on DNS: call at start-up). core comes first.
  static Result<std::unique_ptr<UpstreamSet>> create(const UpstreamSpec& core, const std::vector<UpstreamSpec>& others);

  // The upstream of an edge repository, and the repository's name there.
  const UpstreamTarget& route(const std::string& repo, std::string* upstream_repo) const;
  const UpstreamTarget& core() const { return *targets_.front(); }
  size_t size() const { return targets_.size(); }

 private:
  std::vector<std::unique_ptr<UpstreamTarget>> targets_;  // the core first, then longest prefix first
};

}  // namespace wharf
