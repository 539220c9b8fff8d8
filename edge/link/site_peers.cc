#include "edge/link/site_peers.h"

#include <atomic>
#include <cstring>
#include <map>

#include "shared/base/log.h"
#include "shared/metrics/metrics.h"

namespace wharf {
namespace {

Gauge& peersGauge() {
  static Gauge& g = MetricsRegistry::global().gauge("wharf_edge_site_peers", "Other edges of this edge's site, as the core lists them.");
  return g;
}

uint64_t mix(uint64_t x) {  // splitmix64's finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

uint64_t SitePeers::score(std::string_view edge, std::string_view digest) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a over edge \0 digest, then mixed
  auto feed = [&h](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 0x100000001b3ull;
    }
  };
  feed(edge);
  feed(std::string_view("\0", 1));
  feed(digest);
  return mix(h);
}

bool SitePeers::update(const std::vector<std::pair<std::string, std::string>>& listed) {
  static std::atomic<uint64_t> generations{0};
  std::map<std::string, Member> known;
  std::string self_url;
  {
    std::lock_guard lock(mu_);
    for (auto& m : peers_) known[m.peer->name] = m;
    self_url = self_url_;
  }
  std::vector<Member> next;
  for (const auto& [name, url] : listed) {
    if (name == self_) continue;
    if (url == self_url) {
      logWarn("a peer edge of the site is listed at this edge's own URL: left out", {{"peer", name}, {"url", url}});
      continue;
    }
    auto it = known.find(name);
    bool failing = it != known.end() && it->second.skip_until_ms != 0;
    if (it != known.end() && it->second.peer->url == url && !failing) {
      next.push_back(it->second);
      continue;
    }
    auto address = Upstream::resolve(url);  // blocks: the channel thread
    if (!address.isOk()) {
      logWarn("cannot resolve a peer edge of the site", {{"peer", name}, {"url", url}, {"error", address.status().message()}});
      continue;
    }
    bool same = it != known.end() && it->second.peer->url == url &&
                std::memcmp(&it->second.peer->address.addr, &address->addr, sizeof address->addr) == 0;
    if (same) {  // failing, but where it was: keep its skip
      next.push_back(it->second);
      continue;
    }
    next.push_back({std::make_shared<const SitePeer>(SitePeer{name, url, std::move(address).value(), ++generations}), 0});
    logInfo("peer edge of the site", {{"peer", name}, {"url", url}});
  }
  std::lock_guard lock(mu_);
  bool changed = next.size() != peers_.size();
  for (size_t i = 0; !changed && i < next.size(); ++i) changed = next[i].peer != peers_[i].peer;
  peers_ = std::move(next);
  peersGauge().set(static_cast<int64_t>(peers_.size()));
  return changed;
}

std::shared_ptr<const SitePeer> SitePeers::owner(std::string_view digest, int64_t now_ms) {
  std::lock_guard lock(mu_);
  if (peers_.empty()) return nullptr;
  uint64_t best = score(self_, digest);
  const Member* chosen = nullptr;
  for (const auto& m : peers_) {
    if (m.skip_until_ms > now_ms) continue;
    uint64_t s = score(m.peer->name, digest);
    if (s > best) {
      best = s;
      chosen = &m;
    }
  }
  return chosen != nullptr ? chosen->peer : nullptr;
}

void SitePeers::setSelfUrl(std::string url) {
  std::lock_guard lock(mu_);
  self_url_ = std::move(url);
}

bool SitePeers::ownedElsewhere(std::string_view digest) {
  std::lock_guard lock(mu_);
  uint64_t mine = score(self_, digest);
  for (const auto& m : peers_) {
    if (score(m.peer->name, digest) > mine) return true;
  }
  return false;
}

void SitePeers::failed(const std::string& name, int64_t now_ms) {
  std::lock_guard lock(mu_);
  for (auto& m : peers_) {
    if (m.peer->name != name) continue;
    if (m.skip_until_ms <= now_ms) logWarn("skipping a peer edge that failed", {{"peer", name}, {"for_ms", kSkipMs}});
    m.skip_until_ms = now_ms + kSkipMs;
  }
}

size_t SitePeers::size() {
  std::lock_guard lock(mu_);
  return peers_.size();
}

}  // namespace wharf
