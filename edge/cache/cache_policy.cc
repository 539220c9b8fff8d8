#include "edge/cache/cache_policy.h"

#include <algorithm>
#include <limits>

namespace wharf {

Result<CachePolicy::Kind> CachePolicy::parseKind(std::string_view name) {
  if (name == "lru") return Kind::kLru;
  if (name == "lfuda") return Kind::kLfuDa;
  if (name == "wharf") return Kind::kWharf;
  return Status(Code::kInvalidArgument, "unknown cache policy \"" + std::string(name) + "\" (lru, lfuda, wharf)");
}

const char* CachePolicy::kindName(Kind kind) {
  switch (kind) {
    case Kind::kLru: return "lru";
    case Kind::kLfuDa: return "lfuda";
    case Kind::kWharf: return "wharf";
  }
  return "?";
}

CachePolicy::CachePolicy(Options options) : options_(options) {}

double CachePolicy::priorityOf(const Entry& e) const {
  switch (options_.kind) {
    case Kind::kLru:
      return static_cast<double>(clock_);
    case Kind::kLfuDa:
      return age_ + static_cast<double>(e.hits);
    case Kind::kWharf:
      if (e.dead) return -1;
      return age_ + static_cast<double>(e.hits) + (e.live > 0 ? 1.0 : 0.0);
  }
  return 0;
}

void CachePolicy::reorder(Id id, Entry& e) {
  if (!e.pinned) order_.erase({e.priority, id});
  e.priority = priorityOf(e);
  if (!e.pinned) order_.insert({e.priority, id});
}

void CachePolicy::hit(Id id, int64_t now_ms) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  Entry& e = it->second;
  ++clock_;
  ++e.hits;
  e.last_ms = now_ms;
  e.prefetched = false;
  reorder(id, e);
}

uint32_t CachePolicy::ghostHits(Id id) const {
  auto it = ghosts_.find(id);
  return it == ghosts_.end() ? 0 : it->second.hits;
}

bool CachePolicy::admit(Id id, uint64_t size, int64_t) {
  if (size > options_.capacity) return false;
  if (options_.kind == Kind::kLru) return true;
  bool known = ghostHits(id) > 0;
  if (!known) {
    // Remember the refused miss (an evicted one is remembered by makeRoom).
    ghosts_[id] = Ghost{0, size, ghost_order_.end()};
    remember(id);
  }
  return size < options_.admit_min_size || known;
}

void CachePolicy::remember(Id id) {
  auto it = ghosts_.find(id);
  if (it == ghosts_.end()) return;
  Ghost& g = it->second;
  if (g.pos != ghost_order_.end()) {
    ghost_order_.erase(g.pos);
  } else {
    ghost_bytes_ += g.size;
  }
  ++g.hits;
  g.pos = ghost_order_.insert(ghost_order_.end(), id);
  while (ghost_bytes_ > kGhostFactor * options_.capacity && !ghost_order_.empty()) {
    auto old = ghosts_.find(ghost_order_.front());
    ghost_bytes_ -= old->second.size;
    ghost_order_.pop_front();
    ghosts_.erase(old);
  }
}

void CachePolicy::insert(Id id, uint64_t size, int64_t now_ms, bool prefetched) {
  auto [it, fresh] = entries_.try_emplace(id);
  Entry& e = it->second;
  if (!fresh) {
    used_ -= e.size;
    e.size = size;
    used_ += size;
    return;
  }
  e.size = size;
  e.last_ms = now_ms;
  e.prefetched = prefetched;
  auto g = ghosts_.find(id);
  if (g != ghosts_.end()) {
    // What the ghost list remembered counts (LFU-DA keeps frequency across evictions).
    e.hits = options_.kind == Kind::kLfuDa ? 1 : g->second.hits;
    if (g->second.pos != ghost_order_.end()) {
      ghost_order_.erase(g->second.pos);
      ghost_bytes_ -= g->second.size;
    }
    ghosts_.erase(g);
  } else {
    e.hits = 1;
  }
  auto l = live_.find(id);
  e.live = l == live_.end() ? 0 : l->second;
  used_ += size;
  ++clock_;
  e.priority = priorityOf(e);
  order_.insert({e.priority, id});
}

void CachePolicy::erase(Id id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  if (!it->second.pinned) order_.erase({it->second.priority, id});
  used_ -= it->second.size;
  entries_.erase(it);
}

std::vector<CachePolicy::Victim> CachePolicy::makeRoom(uint64_t incoming, int64_t protect_since_ms) {
  std::vector<Victim> out;
  auto cap = static_cast<double>(options_.capacity);
  auto high = static_cast<uint64_t>(cap * options_.high_watermark);
  auto low = static_cast<uint64_t>(cap * options_.low_watermark);
  if (used_ + incoming <= high) return out;
  std::vector<std::pair<double, Id>> kept;  // protected ones passed over
  auto it = order_.begin();
  while (used_ + incoming > low && it != order_.end()) {
    Id id = it->second;
    Entry& e = entries_.at(id);
    if (protect_since_ms > 0 && e.last_ms >= protect_since_ms) {
      ++it;
      continue;
    }
    if (options_.kind != Kind::kLru) age_ = std::max(age_, it->first);
    out.push_back({id, e.size, e.prefetched});
    used_ -= e.size;
    uint32_t hits = e.hits;
    uint64_t size = e.size;
    it = order_.erase(it);
    entries_.erase(id);
    if (options_.kind != Kind::kLru) {
      auto [g, fresh] = ghosts_.try_emplace(id, Ghost{0, size, ghost_order_.end()});
      g->second.hits = std::max(g->second.hits, hits > 0 ? hits - 1 : 0);
      remember(id);
    }
  }
  return out;
}

bool CachePolicy::roomFor(uint64_t incoming, int64_t protect_since_ms) const {
  auto cap = static_cast<double>(options_.capacity);
  auto high = static_cast<uint64_t>(cap * options_.high_watermark);
  auto low = static_cast<uint64_t>(cap * options_.low_watermark);
  if (used_ + incoming <= high) return true;
  if (incoming > low) return false;
  uint64_t evictable = 0;
  for (const auto& [priority, id] : order_) {
    const Entry& e = entries_.at(id);
    if (protect_since_ms <= 0 || e.last_ms < protect_since_ms) evictable += e.size;
    if (used_ + incoming - std::min(used_, evictable) <= low) return true;
  }
  return false;
}

void CachePolicy::pin(Id id, bool pinned) {
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second.pinned == pinned) return;
  Entry& e = it->second;
  if (pinned) {
    order_.erase({e.priority, id});
    e.pinned = true;
  } else {
    e.pinned = false;
    e.priority = priorityOf(e);
    order_.insert({e.priority, id});
  }
}

void CachePolicy::imagePulled(Id repo, Id image, int64_t pushed_ms, const std::vector<Id>& refs) {
  if (options_.kind != Kind::kWharf) return;  // the textbook policies know single requests only
  auto& img = images_[image];
  img.repo = repo;
  img.pushed_ms = pushed_ms;
  img.refs = refs;
  auto cur = current_.find(repo);
  if (cur != current_.end()) {
    if (cur->second == image) return;
    const Image& old = images_[cur->second];
    if (pushed_ms > 0 && old.pushed_ms > pushed_ms) return;  // an older image: not current
  }
  auto adjust = [&](Id id, int delta) {
    auto& n = live_[id];
    n = static_cast<uint16_t>(std::max(0, static_cast<int>(n) + delta));
    auto e = entries_.find(id);
    if (e != entries_.end()) {
      e->second.live = n;
      reorder(id, e->second);
    }
    if (n == 0) live_.erase(id);
  };
  if (cur != current_.end()) {
    for (Id r : images_[cur->second].refs) adjust(r, -1);
  }
  for (Id r : refs) adjust(r, +1);
  current_[repo] = image;
}

void CachePolicy::imageGone(Id image) {
  auto it = images_.find(image);
  if (it == images_.end()) return;
  for (Id r : it->second.refs) {
    auto e = entries_.find(r);
    if (e == entries_.end()) continue;
    e->second.dead = true;
    reorder(r, e->second);
  }
}

}  // namespace wharf
