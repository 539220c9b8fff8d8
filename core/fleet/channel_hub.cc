#include "core/fleet/channel_hub.h"

#include <chrono>
#include <vector>

#include "shared/event/loop.h"

namespace wharf {

uint64_t ChannelHub::generationLocked(const std::string& edge) const {
  auto it = per_edge_.find(edge);
  return all_ + (it == per_edge_.end() ? 0 : it->second);
}

uint64_t ChannelHub::generation(const std::string& edge) {
  std::lock_guard lock(mu_);
  return generationLocked(edge);
}

uint64_t ChannelHub::wait(const std::string& edge, uint64_t seen, Loop& loop, std::function<void()> wake) {
  std::lock_guard lock(mu_);
  uint64_t id = next_id_++;
  if (closed_ || generationLocked(edge) != seen) {
    loop.post(std::move(wake));
    return id;
  }
  waiters_.emplace(id, Waiter{edge, &loop, std::move(wake)});
  return id;
}

void ChannelHub::cancel(uint64_t id) {
  std::lock_guard lock(mu_);
  waiters_.erase(id);
}

void ChannelHub::wakeLocked(const std::string* edge) {
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    if (edge == nullptr || it->second.edge == *edge) {
      it->second.loop->post(std::move(it->second.wake));
      it = waiters_.erase(it);
    } else {
      ++it;
    }
  }
}

void ChannelHub::notify(const std::string& edge) {
  std::lock_guard lock(mu_);
  ++per_edge_[edge];
  wakeLocked(&edge);
}

void ChannelHub::notifyAll() {
  std::lock_guard lock(mu_);
  ++all_;
  wakeLocked(nullptr);
}

void ChannelHub::close() {
  std::lock_guard lock(mu_);
  closed_ = true;
  ++all_;
  wakeLocked(nullptr);
}

bool ChannelHub::closed() {
  std::lock_guard lock(mu_);
  return closed_;
}

void ChannelHub::notifySiteLocked(const std::string& site, const std::string& except) {
  for (const auto& [name, p] : presence_) {
    if (name == except || p.site != site) continue;
    ++per_edge_[name];
    wakeLocked(&name);
  }
}

void ChannelHub::announce(const std::string& edge, const std::string& site, const std::string& url, int64_t now_ms) {
  if (site.empty()) return;  // an edge without a site has no peers
  std::lock_guard lock(mu_);
  auto& p = presence_[edge];
  // New to its peers: never seen, moved, back after they stopped listing it, or gone from
  // their lists (no URL: drained, or not sharing its cache).
  bool listed_before = !p.url.empty() && now_ms - p.seen_ms <= kPeerTtlMs;
  bool changed = p.site != site || p.url != url || (!url.empty() && !listed_before);
  std::string old_site = p.site;
  p.site = site;
  p.url = url;
  p.seen_ms = now_ms;
  if (!changed || (url.empty() && !listed_before)) return;
  site_versions_[site] = nextVersionLocked();
  notifySiteLocked(site, edge);
  if (!old_site.empty() && old_site != site) {
    site_versions_[old_site] = nextVersionLocked();
    notifySiteLocked(old_site, edge);
  }
}

uint64_t ChannelHub::nextVersionLocked() {
  if (next_version_ == 0) {
    // Versions from before a restart of the core never match the new ones.
    next_version_ = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  }
  return ++next_version_;
}

uint64_t ChannelHub::siteVersion(const std::string& site) {
  std::lock_guard lock(mu_);
  auto [it, fresh] = site_versions_.try_emplace(site, 0);
  if (fresh) it->second = nextVersionLocked();
  return it->second;
}

std::vector<std::pair<std::string, std::string>> ChannelHub::peers(const std::string& edge, const std::string& site,
                                                                   int64_t now_ms) {
  std::vector<std::pair<std::string, std::string>> out;
  if (site.empty()) return out;
  std::lock_guard lock(mu_);
  for (const auto& [name, p] : presence_) {
    if (name != edge && p.site == site && !p.url.empty() && now_ms - p.seen_ms <= kPeerTtlMs) out.emplace_back(name, p.url);
  }
  return out;
}

void ChannelHub::forget(const std::string& edge) {
  std::lock_guard lock(mu_);
  auto it = presence_.find(edge);
  if (it == presence_.end()) return;
  std::string site = it->second.site;
  presence_.erase(it);
  site_versions_[site] = nextVersionLocked();
  notifySiteLocked(site, edge);
}

size_t ChannelHub::waiting() {
  std::lock_guard lock(mu_);
  return waiters_.size();
}

}  // namespace wharf
