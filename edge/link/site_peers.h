// SitePeers: the other edges of this edge's site, so that the site's edges act as one
// cache.
//
// The core names them: each channel poll tells the core the URL this edge serves on
// (its `advertise_url`) and brings back the edges of the same site that polled lately,
// with theirs. Every digest has one owner among the site's edges, by rendezvous hashing
// (the edge whose score for the digest is highest), so every edge agrees on the owner
// without talking, and an edge joining or leaving moves only its own share. A miss of a
// digest another edge owns asks that edge first (it serves it, or fetches it from the
// core once for the whole site); the bytes are verified against the digest exactly as
// the core's are. A peer that fails (connection refused, 5xx, bytes that do not verify)
// is skipped for kSkipMs, and the owner is chosen again among the rest.
//
// Thread-safe: update() comes from the agent's channel thread, owner() from the loops.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "shared/http/client.h"

namespace wharf {

struct SitePeer {
  std::string name;
  std::string url;
  Upstream address;  // resolved when the core named it, and again after it failed
  uint64_t generation = 0;  // a new address, a new one (connection pools are per generation)
};

class SitePeers {
 public:
  static constexpr int64_t kSkipMs = 30'000;

  explicit SitePeers(std::string self) : self_(std::move(self)) {}
  const std::string& self() const { return self_; }
  // Where this edge serves (its advertise_url): a peer listed at the same URL is this
  // edge itself (a URL copied between hosts, a loopback address) and is left out.
  void setSelfUrl(std::string url);

  // The site's other edges, as the core listed them ({name, url}). Resolves new URLs, and
  // those of peers that failed lately (an address behind a stable name moves); blocks on
  // DNS: call it off the loops. A URL that does not resolve is left out.
  // Returns whether the set of peers changed.
  bool update(const std::vector<std::pair<std::string, std::string>>& peers);

  // The peer that owns digest among this edge and the peers not being skipped; null when
  // this edge owns it (or is alone).
  std::shared_ptr<const SitePeer> owner(std::string_view digest, int64_t now_ms);
  // Whether another edge of the site owns digest (skipped peers count: their copies come
  // back with them). Eviction values such a copy less: losing it costs a LAN fetch.
  bool ownedElsewhere(std::string_view digest);
  // A peer failed a request: skipped until now_ms + kSkipMs.
  void failed(const std::string& name, int64_t now_ms);
  size_t size();

  // Rendezvous score of an edge for a digest (the same on every edge and release).
  static uint64_t score(std::string_view edge, std::string_view digest);

 private:
  struct Member {
    std::shared_ptr<const SitePeer> peer;
    int64_t skip_until_ms = 0;
  };
  const std::string self_;
  std::mutex mu_;
  std::string self_url_;       // GUARDED_BY(mu_)
  std::vector<Member> peers_;  // GUARDED_BY(mu_)
};

}  // namespace wharf
