// The edge's request handling: the pull side of the distribution API, served from the
// cache, with misses filled from the core once per blob (FillCoordinator) and streamed to
// every client waiting for it. Tokens are the core's, verified here offline.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "edge/cache/blob_index.h"
#include "edge/cache/fill_coordinator.h"
#include "edge/cache/links.h"
#include "edge/cache/manifest_cache.h"
#include "shared/auth/token.h"
#include "shared/event/work_queue.h"
#include "shared/http/client.h"
#include "shared/http/server.h"

namespace wharf {

struct EdgeContext {
  FillCoordinator* fills = nullptr;
  ManifestCache* manifests = nullptr;
  BlobIndex* index = nullptr;
  WorkQueue* work = nullptr;  // blocking work: verifying and syncing fills
  Links links;
  std::string upstream;          // the core's base URL (for messages)
  Upstream upstream_address;     // resolved at start-up
  ClientOptions upstream_options;
  std::string realm;             // the core's token realm (clients get tokens there)
  std::string service;
  bool access_log = true;

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
  VerifiedTokenCache tokens;  // tokens that verified, until they expire
  mutable std::mutex mu;
  std::shared_ptr<const TokenVerifier> verifier_;  // GUARDED_BY(mu)
};

void handleEdgeRequest(EdgeContext& ctx, const std::shared_ptr<Exchange>& ex);

}  // namespace wharf
