// The edge's request handling: the pull side of the distribution API, served from the
// cache, with misses filled from the upstream once per blob (FillCoordinator) and
// streamed to every client waiting for it. Tokens are the core's, verified here offline.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "edge/agent/edge_stats.h"
#include "edge/agent/pull_history.h"
#include "edge/cache/cache_index.h"
#include "edge/cache/fill_coordinator.h"
#include "edge/cache/manifest_cache.h"
#include "edge/link/site_peers.h"
#include "edge/pull/upstreams.h"
#include "edge/trust/edge_trust.h"
#include "shared/auth/revocation.h"
#include "shared/auth/token.h"
#include "shared/event/work_queue.h"
#include "shared/http/server.h"

namespace wharf {

struct EdgeContext {
  FillCoordinator* fills = nullptr;
  ManifestCache* manifests = nullptr;
  CacheIndex* index = nullptr;
  WorkQueue* work = nullptr;  // blocking work: verifying and syncing fills, upstream tokens
  UpstreamSet* upstreams = nullptr;
  std::string realm;  // the core's token realm (clients get tokens there)
  std::string service;
  bool access_log = true;
  // Repositories whose cached manifests may be served when the upstream cannot answer:
  // patterns, "*" for all, "team/*" for a namespace, or exact names.
  std::vector<std::string> stale_if_error{"*"};
  // The core removed this edge: it serves nothing until joined again.
  std::atomic<bool> revoked{false};
  // Drained by the core's administrator: registry requests get 503 with Retry-After.
  std::atomic<bool> draining{false};
  std::atomic<int> retry_after_s{60};
  EdgeStats* stats = nullptr;  // null: nothing counted for reports
  PullHistory* pulls = nullptr;  // null: tag pulls not remembered (no prefetch by recency)
  // The site's other edges: a blob one of them owns is asked of it before the core.
  // Null: this edge works alone.
  SitePeers* peers = nullptr;
  // The trust policies checked here (edge/trust). Null: tags are served as the core says.
  EdgeTrust* trust = nullptr;

  // The verifier of the core's tokens; replaced when the core's keys are refreshed.
  std::shared_ptr<const TokenVerifier> verifier() const {
    std::lock_guard lock(mu);
    return verifier_;
  }
  void setVerifier(std::shared_ptr<const TokenVerifier> v) {
    {
      std::lock_guard lock(mu);
      verifier_ = std::move(v);
    }
    tokens.clear();  // keys changed: verify afresh
  }
  // Grants narrowed at the core since tokens were issued (from the channel): tokens they
  // cover are refused, though their signatures verify.
  std::shared_ptr<const RevocationList> revocations() const {
    std::lock_guard lock(mu);
    return revocations_;
  }
  void setRevocations(std::shared_ptr<const RevocationList> r) {
    std::lock_guard lock(mu);
    revocations_ = std::move(r);
  }
  VerifiedTokenCache tokens;  // tokens that verified, until they expire
  mutable std::mutex mu;
  std::shared_ptr<const TokenVerifier> verifier_;  // GUARDED_BY(mu)
  std::shared_ptr<const RevocationList> revocations_ = std::make_shared<const RevocationList>();  // GUARDED_BY(mu)
};

void handleEdgeRequest(EdgeContext& ctx, const std::shared_ptr<Exchange>& ex);

}  // namespace wharf
