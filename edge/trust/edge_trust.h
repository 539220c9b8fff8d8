// EdgeTrust: the core's trust policies enforced by the edge itself, on tags it serves
// from its cache, including while the core is out of reach.
//
// The policies come from the core with the edge's settings (GET /api/v1/edges/self,
// "trust_policies"; kept in edge.json, so a restarted edge enforces them before it
// reaches the core). For a repository whose policy requires Notary signatures the edge
// fetches the GUNs' TUF metadata as stored (GET /api/v1/edges/self/trust?repository=)
// and verifies it itself (shared/tuf/repository.h): it does not take the core's word.
// Each GUN's root is pinned on first sight; a new root must be signed by the pinned one.
// What verified is kept in <data_dir>/trust/ and used while its timestamp is unexpired,
// the core up or down. Metadata older than refresh_ms is fetched again (and at once when
// it would refuse, at most every few seconds per repository).
//
// cosign signatures are the core's to check: when the policy accepts only cosign, a tag
// is served from the cache only while the core can confirm it (never stale).
//
// Thread-safety: thread-safe. refusal() blocks on the network: call it on a worker.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/base/clock.h"
#include "shared/base/status.h"
#include "shared/http/client.h"
#include "shared/tuf/repository.h"

namespace wharf {

struct EdgeTrustOptions {
  std::string dir;         // <data_dir>/trust
  std::string core;        // the core's base URL
  std::string credential;  // the edge's (secret)
  ClientOptions tls;
  int64_t refresh_ms = 60'000;
};

class EdgeTrust {
 public:
  static Result<std::unique_ptr<EdgeTrust>> open(EdgeTrustOptions options, Clock& clock);

  // The core's trust policies: [{"scope","require","roles"?,"keys"?}].
  void setPolicies(const nlohmann::json& policies);
  // Whether a policy asks for signatures on repo's tags (cheap: loop threads).
  bool governs(const std::string& repo) const;
  // Why a tag naming digest (size bytes) may not be served, or nullopt. core_confirmed:
  // the core served or revalidated it just now (so its cosign check has been made).
  std::optional<std::string> refusal(const std::string& repo, const std::string& tag, const std::string& digest,
                                     uint64_t size, bool core_confirmed);

 private:
  struct Rule {
    std::string scope, require;
    std::vector<std::string> roles, keys;
  };
  struct RepoTrust {
    int64_t fetched_ms = 0;     // 0: never fetched (loaded from disk, or nothing)
    int64_t attempted_ms = 0;   // the last fetch tried
    std::string error;          // why that fetch failed
    std::map<std::string, std::string> roots;  // gun -> pinned root bytes
    std::map<std::string, std::shared_ptr<const tuf::TrustedRepository>> verified;  // gun -> what verified
  };
  EdgeTrust(EdgeTrustOptions options, Clock& clock) : options_(std::move(options)), clock_(clock) {}
  std::optional<Rule> ruleFor(const std::string& repo) const;
  // What the edge has for repo (read from disk the first time).
  std::shared_ptr<const RepoTrust> state(const std::string& repo);
  // Fetches again (unless another check did since attempted_before) and returns the new state.
  std::shared_ptr<const RepoTrust> refreshed(const std::string& repo, int64_t attempted_before);
  // Fetches, verifies and stores repo's metadata; keeps what it had when that fails.
  Status refresh(const std::string& repo, RepoTrust& t);
  void load(const std::string& repo, RepoTrust& t);
  std::string pathOf(const std::string& repo) const;

  const EdgeTrustOptions options_;
  Clock& clock_;
  mutable std::mutex mu_;
  std::vector<Rule> rules_;                 // GUARDED_BY(mu_)
  std::map<std::string, std::shared_ptr<const RepoTrust>> repos_;  // GUARDED_BY(mu_); replaced, never changed
  std::mutex fetch_mu_;                                            // one fetch at a time
};

}  // namespace wharf
