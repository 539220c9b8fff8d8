#include "edge/cache/cache_policy.h"

#include <algorithm>

namespace wharf {
namespace {
// kWharf's weights, tuned on the fleet traces' replay (bench/wharf-cachesim; README).
constexpr double kLiveHitFactor = 2;         // a hit on an object a current image uses counts twice
constexpr double kLiveBonus = 1;             // and the object is worth one hit more
constexpr double kSmallBonus = 5;            // small objects (configs, manifests, small layers)...
constexpr double kSmallSize = 1 << 20;       // ...below this size: a pull is fast only if all hit
constexpr double kReplicaFactor = 0.5;       // a copy another edge of the site owns
}  // namespace

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
    case Kind::kWharf: return age_ + valueOf(e);
  }
  return 0;
}

double CachePolicy::valueOf(const Entry& e) const {
  double v = static_cast<double>(e.hits) * (e.live > 0 ? kLiveHitFactor : 1.0) + (e.live > 0 ? kLiveBonus : 0.0) +
             kSmallBonus * std::min(1.0, kSmallSize / static_cast<double>(e.size + 1));
  return e.replica ? kReplicaFactor * v : v;
}

void CachePolicy::setReplica(Id id, bool replica) {
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second.replica == replica) return;
  Entry& e = it->second;
  if (options_.kind != Kind::kWharf) {
    e.replica = replica;
    return;
  }
  // Only the value changes: the age the object earned stays.
  if (!e.pinned) order_.erase({e.priority, id});
  double before = valueOf(e);
  e.replica = replica;
  e.priority += valueOf(e) - before;
  if (!e.pinned) order_.insert({e.priority, id});
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

bool CachePolicy::admit(Id id, uint64_t size, int64_t, uint32_t asks) {
  if (size > options_.capacity) return false;
  if (options_.kind == Kind::kLru) return true;
  bool known = ghostHits(id) > 0 || asks > 1;
  remember(id, size, 1);  // a refused miss is remembered here, an evicted object by makeRoom
  return size < options_.admit_min_size || known;
}

void CachePolicy::remember(Id id, uint64_t size, uint32_t hits) {
  auto [it, fresh] = ghosts_.try_emplace(id, Ghost{hits, size, {}});
  Ghost& g = it->second;
  if (fresh) {
    ghost_bytes_ += size;
  } else {
    ghost_order_.erase(g.pos);
    g.hits = std::max(g.hits, hits);
  }
  g.pos = ghost_order_.insert(ghost_order_.end(), id);
  while (ghost_bytes_ > kGhostFactor * options_.capacity && !ghost_order_.empty()) {
    auto old = ghosts_.find(ghost_order_.front());
    ghost_bytes_ -= old->second.size;
    ghost_order_.pop_front();
    ghosts_.erase(old);
  }
}

std::pair<uint64_t, uint64_t> CachePolicy::watermarks() const {
  auto cap = static_cast<double>(options_.capacity);
  return {static_cast<uint64_t>(cap * options_.high_watermark), static_cast<uint64_t>(cap * options_.low_watermark)};
}

void CachePolicy::insertPrefetched(Id id, uint64_t size, int64_t now_ms, uint32_t expected_hits) {
  if (entries_.count(id)) return insert(id, size, now_ms);
  insert(id, size, now_ms);
  Entry& e = entries_.at(id);
  e.prefetched = true;
  e.hits = std::max(e.hits, expected_hits);
  reorder(id, e);
}

void CachePolicy::insert(Id id, uint64_t size, int64_t now_ms) {
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
  e.hits = 1;
  if (auto g = ghosts_.find(id); g != ghosts_.end()) {
    // wharf keeps the frequency the ghost list remembered; LFU-DA starts again.
    if (options_.kind == Kind::kWharf) e.hits = g->second.hits;
    ghost_order_.erase(g->second.pos);
    ghost_bytes_ -= g->second.size;
    ghosts_.erase(g);
  }
  auto l = live_.find(id);
  e.live = l == live_.end() ? 0 : l->second;
  used_ += size;
  ++clock_;
  e.priority = priorityOf(e);
  order_.insert({e.priority, id});
}

void CachePolicy::restore(Id id, uint64_t size, int64_t last_ms, uint32_t hits, bool prefetched) {
  insert(id, size, last_ms);
  Entry& e = entries_.at(id);
  e.hits = hits + 1;  // the miss that brought it counts as one
  e.prefetched = prefetched;
  reorder(id, e);
}

void CachePolicy::setCapacity(uint64_t capacity, double high_watermark, double low_watermark) {
  options_.capacity = capacity;
  options_.high_watermark = high_watermark;
  options_.low_watermark = low_watermark;
}

void CachePolicy::erase(Id id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  if (!it->second.pinned) order_.erase({it->second.priority, id});
  used_ -= it->second.size;
  entries_.erase(it);
}

std::vector<CachePolicy::Victim> CachePolicy::makeRoom(uint64_t incoming, int64_t now_ms, int64_t protect_since_ms,
                                                       size_t max_victims) {
  std::vector<Victim> out;
  auto [high, low] = watermarks();
  if (used_ + incoming <= high) return out;
  auto it = order_.begin();
  while (used_ + incoming > low && it != order_.end() && out.size() < max_victims) {
    Id id = it->second;
    Entry& e = entries_.at(id);
    if ((protect_since_ms > 0 && e.last_ms >= protect_since_ms) ||
        (e.prefetched && now_ms - e.last_ms < options_.prefetch_hold_ms)) {
      ++it;
      continue;
    }
    if (options_.kind != Kind::kLru) age_ = std::max(age_, it->first);
    out.push_back({id, e.size, e.prefetched});
    used_ -= e.size;
    if (options_.kind != Kind::kLru) remember(id, e.size, e.hits);
    it = order_.erase(it);
    entries_.erase(id);
  }
  return out;
}

bool CachePolicy::roomFor(uint64_t incoming, int64_t protect_since_ms) const {
  auto [high, low] = watermarks();
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
  if (!e.pinned) order_.erase({e.priority, id});
  e.pinned = pinned;
  if (!e.pinned) order_.insert({e.priority = priorityOf(e), id});
}

void CachePolicy::imagePulled(Id tag, Id image, int64_t pushed_ms, const std::vector<Id>& refs) {
  if (options_.kind != Kind::kWharf) return;  // the textbook policies know single requests only
  auto cur = current_.find(tag);
  if (cur != current_.end()) {
    if (cur->second == image) return;
    if (pushed_ms > 0 && images_.at(cur->second).pushed_ms > pushed_ms) return;  // an older image: not current
  }
  auto adjust = [&](Id id, int delta) {
    auto& n = live_[id];
    n = static_cast<uint16_t>(std::clamp(static_cast<int>(n) + delta, 0, 0xffff));
    auto e = entries_.find(id);
    if (e != entries_.end()) {
      e->second.live = n;
      reorder(id, e->second);
    }
    if (n == 0) live_.erase(id);
  };
  auto [img, fresh] = images_.try_emplace(image);
  if (fresh) {
    img->second.pushed_ms = pushed_ms;
    img->second.refs = refs;
  }
  ++img->second.tags;
  for (Id r : img->second.refs) adjust(r, +1);
  if (cur != current_.end()) {
    auto old = images_.find(cur->second);
    for (Id r : old->second.refs) adjust(r, -1);
    if (--old->second.tags == 0) images_.erase(old);  // only current images are remembered
  }
  current_[tag] = image;
}


}  // namespace wharf
