#include "edge/cache/cache_index.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "shared/base/fs.h"
#include "shared/base/log.h"
#include "shared/metrics/metrics.h"

namespace wharf {
namespace {

// The index layout; a different value on disk means the index is rebuilt from the files.
constexpr std::string_view kSchema = "edge-cache-index-1";

struct IndexMetrics {
  Counter& evictions = MetricsRegistry::global().counter("wharf_edge_evictions_total", "Blobs evicted.");
  Counter& evicted_bytes = MetricsRegistry::global().counter("wharf_edge_evicted_bytes_total", "Bytes evicted.");
  Counter& refused = MetricsRegistry::global().counter(
      "wharf_edge_admission_refused_total", "Fetched blobs served but not kept (the cache policy's admission).");
  Gauge& bytes = MetricsRegistry::global().gauge("wharf_edge_cache_bytes", "Bytes of committed blobs in the cache.");
  Gauge& blobs = MetricsRegistry::global().gauge("wharf_edge_cache_blobs", "Committed blobs in the cache.");
  static IndexMetrics& get() {
    static IndexMetrics m;
    return m;
  }
};

// "<size> <last access ms> <hits>[ <repository it was prefetched for>]"
std::string blobValue(const CachedBlob& b) {
  std::string v = std::to_string(b.size) + " " + std::to_string(b.last_access_ms) + " " + std::to_string(b.hits);
  if (!b.prefetched_for.empty()) v += " " + b.prefetched_for;
  return v;
}

bool parseBlobValue(std::string_view v, CachedBlob* b) {
  unsigned long long size, hits;
  long long last;
  int used = 0;
  std::string s(v);
  if (std::sscanf(s.c_str(), "%llu %lld %llu%n", &size, &last, &hits, &used) != 3) return false;
  b->size = size;
  b->last_access_ms = last;
  b->hits = hits;
  if (static_cast<size_t>(used) + 1 < s.size() && s[static_cast<size_t>(used)] == ' ') {
    b->prefetched_for = s.substr(static_cast<size_t>(used) + 1);
  }
  return true;
}

std::vector<std::string> splitLines(std::string_view v) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < v.size()) {
    size_t end = v.find('\n', start);
    if (end == std::string_view::npos) end = v.size();
    if (end > start) out.emplace_back(v.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<CacheIndex>> CacheIndex::open(const std::string& path, FillCoordinator& fills,
                                                     const std::string& manifests_dir, Clock& clock, CacheBudget budget) {
  WHARF_RETURN_IF_ERROR(makeDirs(manifests_dir));
  LmdbEnv::Options options;
  options.map_size = 16ull << 30;
  options.max_dbs = 8;
  auto env = LmdbEnv::open(path, options);
  if (!env.isOk()) return env.status();
  std::unique_ptr<CacheIndex> index(new CacheIndex(std::move(env).value(), fills, manifests_dir, clock, budget));
  for (auto [name, dbi] : {std::pair{"blobs", &index->blobs_db_}, std::pair{"images", &index->images_db_},
                           std::pair{"tags", &index->tags_db_}, std::pair{"links", &index->links_db_},
                           std::pair{"meta", &index->meta_db_}, std::pair{"pins", &index->pins_db_},
                           std::pair{"manifests", &index->manifests_db_}}) {
    auto d = index->env_->openDb(name);
    if (!d.isOk()) return d.status();
    *dbi = *d;
  }
  WHARF_RETURN_IF_ERROR(index->load());
  index->reconcile();
  {
    std::lock_guard lock(index->mu_);
    index->feedPolicyLocked();
    index->publishGauges();
  }
  WHARF_RETURN_IF_ERROR(index->flush());
  return index;
}

Status CacheIndex::load() {
  auto txn = env_->read();
  if (!txn.isOk()) return txn.status();
  std::string_view schema;
  if (!txn->get(meta_db_, "schema", &schema).isOk() || schema != kSchema) {
    // New, or from another layout: start empty (the files are adopted by reconcile()).
    auto w = env_->write();
    if (!w.isOk()) return w.status();
    for (Dbi db : {blobs_db_, images_db_, tags_db_, links_db_, pins_db_, manifests_db_}) {
      std::vector<std::string> keys;
      {
        Cursor c = w->cursor(db);
        for (bool ok = c.first(); ok; ok = c.next()) keys.emplace_back(c.key());
      }
      for (const auto& k : keys) WHARF_RETURN_IF_ERROR(w->del(db, k));
    }
    WHARF_RETURN_IF_ERROR(w->put(meta_db_, "schema", kSchema));
    return w->commit();
  }
  std::lock_guard lock(mu_);
  for (Dbi db : {blobs_db_, manifests_db_}) {
    Cursor c = txn->cursor(db);
    for (bool ok = c.first(); ok; ok = c.next()) {
      CachedBlob b;
      b.digest = std::string(c.key());
      b.manifest = db == manifests_db_;
      if (parseBlobValue(c.value(), &b)) blobs_[b.digest] = b;
    }
  }
  {
    Cursor c = txn->cursor(images_db_);
    for (bool ok = c.first(); ok; ok = c.next()) images_[std::string(c.key())] = splitLines(c.value());
  }
  {
    Cursor c = txn->cursor(tags_db_);
    for (bool ok = c.first(); ok; ok = c.next()) {
      std::string v(c.value());
      auto space = v.find(' ');
      if (space == std::string::npos) continue;
      tags_[std::string(c.key())] = Tag{v.substr(0, space), std::atoll(v.c_str() + space + 1)};
    }
  }
  {
    Cursor c = txn->cursor(pins_db_);
    for (bool ok = c.first(); ok; ok = c.next()) pins_[std::string(c.key())] = splitLines(c.value());
  }
  {
    Cursor c = txn->cursor(links_db_);
    for (bool ok = c.first(); ok; ok = c.next()) {
      std::string_view k = c.key();
      auto nul = k.find('\0');
      if (nul == std::string_view::npos) continue;
      links_[std::string(k.substr(0, nul))].emplace_back(k.substr(nul + 1));
    }
  }
  return Status::ok();
}

void CacheIndex::reconcile() {
  std::lock_guard lock(mu_);
  std::set<std::string> on_disk;
  size_t adopted = 0, dropped = 0;
  auto found = [&](const std::string& digest, const std::string& path, bool manifest) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return;
    if (manifest && on_disk.count(digest) > 0 && !blobs_[digest].manifest) {
      // Both a blob file and a manifest of one digest: the manifest stays (manifestStored).
      if (auto d = Digest::parse(digest); d.isOk()) ::unlink(fills_.blobPath(*d).c_str());
    }
    on_disk.insert(digest);
    auto& b = blobs_[digest];
    if (b.digest.empty() || b.manifest != manifest) {
      b = CachedBlob{digest, 0, static_cast<int64_t>(st.st_mtim.tv_sec) * 1000, 0, "", manifest};
      dirty_blobs_.insert(digest);
      ++adopted;
    }
    if (b.size != static_cast<uint64_t>(st.st_size)) {
      b.size = static_cast<uint64_t>(st.st_size);
      dirty_blobs_.insert(digest);
    }
  };
  for (const char* algo : {"sha256", "sha512"}) {
    std::string dir = fills_.blobsDir() + "/" + algo;
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) continue;
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      std::string digest = std::string(algo) + ":" + name;
      if (!Digest::parse(digest).isOk()) {
        ::unlink((dir + "/" + name).c_str());  // not ours
        continue;
      }
      found(digest, dir + "/" + name, false);
    }
    ::closedir(d);
  }
  // Manifests: <hex> with its <hex>.type (sha256 or sha512 by the length of the hex;
  // temporaries and strays are removed).
  if (DIR* d = ::opendir(manifests_dir_.c_str())) {
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) names.emplace_back(e->d_name);
    ::closedir(d);
    std::set<std::string> all(names.begin(), names.end());
    for (const auto& name : names) {
      if (name == "." || name == "..") continue;
      std::string hex = name.size() > 5 && name.compare(name.size() - 5, 5, ".type") == 0 ? name.substr(0, name.size() - 5)
                                                                                          : name;
      std::string digest = (hex.size() == 128 ? "sha512:" : "sha256:") + hex;
      bool whole = Digest::parse(digest).isOk() && all.count(hex) && all.count(hex + ".type");
      if (!whole) {
        ::unlink((manifests_dir_ + "/" + name).c_str());
        continue;
      }
      if (name == hex) found(digest, manifests_dir_ + "/" + name, true);
    }
  }
  for (auto it = blobs_.begin(); it != blobs_.end();) {
    if (on_disk.count(it->first)) {
      ++it;
      continue;
    }
    dirty_blobs_.insert(it->first);
    it = blobs_.erase(it);
    ++dropped;
  }
  if (adopted || dropped) logInfo("cache index reconciled", {{"adopted", adopted}, {"dropped", dropped}});
  publishGauges();
}

CachePolicy::Options CacheIndex::policyOptions(const CacheBudget& b) {
  CachePolicy::Options o;
  o.kind = CachePolicy::Kind::kWharf;
  o.capacity = b.bytes;
  o.high_watermark = b.high_watermark;
  o.low_watermark = b.low_watermark;
  return o;
}

CachePolicy::Id CacheIndex::idLocked(const std::string& key) {
  auto [it, fresh] = ids_.try_emplace(key, ids_.size() + 1);
  if (fresh) names_[it->second] = &it->first;  // unordered_map nodes never move
  return it->second;
}

bool CacheIndex::pinnedLocked(const std::string& digest) const {
  for (const auto& [label, digests] : pins_) {
    if (std::find(digests.begin(), digests.end(), digest) != digests.end()) return true;
  }
  return false;
}

void CacheIndex::feedPolicyLocked() {
  for (const auto& [d, b] : blobs_) {
    policy_.restore(idLocked(d), b.size, b.last_access_ms, static_cast<uint32_t>(std::min<uint64_t>(b.hits, 1u << 30)),
                    !b.prefetched_for.empty());
  }
  for (const auto& [label, digests] : pins_) {
    for (const auto& d : digests) policy_.pin(idLocked(d), true);
  }
  // Each tag's current image is the one it names.
  for (const auto& [key, t] : tags_) {
    auto img = images_.find(t.digest);
    if (img == images_.end()) continue;
    std::vector<CachePolicy::Id> refs;
    for (const auto& r : img->second) refs.push_back(idLocked(r));
    refs.push_back(idLocked(t.digest));  // as imageCached() does
    policy_.imagePulled(idLocked(key), idLocked(t.digest), 0, refs);
  }
}

void CacheIndex::publishGauges() {
  IndexMetrics::get().bytes.set(static_cast<int64_t>(policy_.used()));
  IndexMetrics::get().blobs.set(static_cast<int64_t>(blobs_.size()));
}

bool CacheIndex::committed(const std::string& digest, uint64_t size, uint32_t asks) {
  {
    std::lock_guard lock(mu_);
    CachePolicy::Id id = idLocked(digest);
    auto it = blobs_.find(digest);
    if (it != blobs_.end() && it->second.manifest) {
      it = blobs_.end();  // cached as a manifest (one entry per digest): served, not kept twice
    } else if (it == blobs_.end()) {
      bool pinned = pinnedLocked(digest);
      if (policy_.admit(id, size, clock_.nowMillis(), asks) || pinned) {
        it = blobs_.emplace(digest, CachedBlob{digest, size, 0, 0, ""}).first;
        policy_.insert(id, size, clock_.nowMillis());
        policy_.pin(id, pinned);
        if (owned_elsewhere_) policy_.setReplica(id, owned_elsewhere_(digest));
      }
    }
    if (it != blobs_.end()) {
      it->second.last_access_ms = clock_.nowMillis();
      dirty_blobs_.insert(digest);
      publishGauges();
      return true;
    }
    IndexMetrics::get().refused.inc();
  }
  // Served to the clients that asked, not kept: the policy expects no second ask soon.
  // (Removed without the lock: requests wait on it.)
  if (auto d = Digest::parse(digest); d.isOk()) ::unlink(fills_.blobPath(*d).c_str());
  return false;
}

void CacheIndex::committedPrefetch(const std::string& digest, uint64_t size, const std::string& repo,
                                   uint32_t expected_hits) {
  std::lock_guard lock(mu_);
  CachePolicy::Id id = idLocked(digest);
  auto [it, fresh] = blobs_.emplace(digest, CachedBlob{digest, size, clock_.nowMillis(), 0, repo});
  if (!fresh) return;  // a client's fill got there first
  policy_.insertPrefetched(id, size, clock_.nowMillis(), expected_hits);
  policy_.pin(id, pinnedLocked(digest));
  if (owned_elsewhere_) policy_.setReplica(id, owned_elsewhere_(digest));
  dirty_blobs_.insert(digest);
  publishGauges();
}

void CacheIndex::setOwnership(std::function<bool(const std::string&)> owned_elsewhere) {
  {
    std::lock_guard lock(mu_);
    owned_elsewhere_ = std::move(owned_elsewhere);
  }
  reassessOwnership();
}

void CacheIndex::reassessOwnership() {
  std::lock_guard lock(mu_);
  if (!owned_elsewhere_) return;
  for (const auto& [digest, b] : blobs_) policy_.setReplica(idLocked(digest), owned_elsewhere_(digest));
}

void CacheIndex::manifestStored(const std::string& digest, uint64_t size) {
  std::vector<std::string> stale;
  {
    std::lock_guard lock(mu_);
    CachePolicy::Id id = idLocked(digest);
    auto [it, fresh] = blobs_.try_emplace(digest, CachedBlob{digest, size, clock_.nowMillis(), 0, "", true});
    if (!fresh && !it->second.manifest) {
      // Fetched as a blob before (GET /blobs/<a manifest's digest>): one entry per digest,
      // and the manifest is what pulls need.
      stale = pathsOf(digest, false);
      policy_.erase(id);
      it->second = CachedBlob{digest, size, clock_.nowMillis(), 0, "", true};
      fresh = true;
    }
    if (!fresh) {
      it->second.last_access_ms = clock_.nowMillis();
      it->second.size = size;
    }
    policy_.insert(id, size, clock_.nowMillis());
    if (fresh) policy_.pin(id, pinnedLocked(digest));
    dirty_blobs_.insert(digest);
    publishGauges();
  }
  for (const auto& f : stale) ::unlink(f.c_str());
}

void CacheIndex::accessed(const std::string& digest) {
  std::lock_guard lock(mu_);
  auto it = blobs_.find(digest);
  if (it == blobs_.end()) return;
  hitLocked(*it);
}

void CacheIndex::hitLocked(std::pair<const std::string, CachedBlob>& blob) {
  auto& [digest, b] = blob;
  b.last_access_ms = clock_.nowMillis();
  ++b.hits;
  policy_.hit(idLocked(digest), clock_.nowMillis());
  dirty_blobs_.insert(digest);
  if (!b.prefetched_for.empty()) {
    // The first client read of a prefetched blob: the prefetch paid off.
    if (listener_.prefetch_used) listener_.prefetch_used(b.prefetched_for, b.size);
    b.prefetched_for.clear();
  }
}

std::vector<std::string> CacheIndex::blobDigests() {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  out.reserve(blobs_.size());
  for (const auto& [d, b] : blobs_) {
    if (!b.manifest) out.push_back(d);
  }
  return out;
}

std::vector<std::string> CacheIndex::pathsOf(const std::string& digest, bool manifest) const {
  auto d = Digest::parse(digest);
  if (!d.isOk()) return {};
  if (!manifest) return {fills_.blobPath(*d)};
  // The body first: without it the entry is gone at the next open, whatever else remains.
  return {manifests_dir_ + "/" + d->hex(), manifests_dir_ + "/" + d->hex() + ".type"};
}

void CacheIndex::dropLocked(const std::string& digest) {
  auto it = blobs_.find(digest);
  if (it == blobs_.end()) return;
  blobs_.erase(it);
  policy_.erase(idLocked(digest));
  dirty_blobs_.insert(digest);
  // Its links go with it: a refetch is confirmed by the upstream again.
  auto l = links_.find(digest);
  if (l != links_.end()) {
    for (const auto& repo : l->second) dirty_links_.insert(digest + '\0' + repo);
    links_.erase(l);
  }
}

bool CacheIndex::drop(const std::string& digest) {
  std::vector<std::string> files;
  bool had;
  {
    std::lock_guard lock(mu_);
    auto it = blobs_.find(digest);
    had = it != blobs_.end();
    files = pathsOf(digest, had && it->second.manifest);
    dropLocked(digest);
    publishGauges();
  }
  for (const auto& f : files) ::unlink(f.c_str());  // open descriptors keep reading what they had
  return had;
}

uint64_t CacheIndex::used() {
  std::lock_guard lock(mu_);
  return policy_.used();
}

void CacheIndex::setBudget(CacheBudget budget) {
  std::lock_guard lock(mu_);
  budget_ = budget;
  policy_.setCapacity(budget.bytes, budget.high_watermark, budget.low_watermark);
}

CacheBudget CacheIndex::budget() {
  std::lock_guard lock(mu_);
  return budget_;
}

size_t CacheIndex::blobCount() {
  std::lock_guard lock(mu_);
  return blobs_.size();
}

std::optional<CachedBlob> CacheIndex::blob(const std::string& digest) {
  std::lock_guard lock(mu_);
  auto it = blobs_.find(digest);
  if (it == blobs_.end()) return std::nullopt;
  return it->second;
}

uint64_t CacheIndex::enforce(int64_t protect_since_ms) {
  // A batch at a time, and the files removed without the lock, so that requests
  // (hitIfLinked takes the same lock) wait for one batch's bookkeeping at most: a sweep of
  // a million-blob cache is 100,000 victims.
  constexpr size_t kBatch = 1024;
  uint64_t freed = 0;
  size_t count = 0;
  while (true) {
    std::vector<std::string> files;
    size_t chosen;
    {
      std::lock_guard lock(mu_);
      auto victims = policy_.makeRoom(0, clock_.nowMillis(), protect_since_ms, kBatch);
      chosen = victims.size();
      files = dropVictimsLocked(victims, &freed);
    }
    for (const auto& f : files) {
      // Readers that have it open keep their descriptor.
      if (::unlink(f.c_str()) != 0 && errno != ENOENT) {
        logWarn("cannot remove an evicted blob", {{"path", f}, {"error", std::strerror(errno)}});
      }
    }
    count += files.size();
    if (chosen < kBatch) break;
  }
  IndexMetrics::get().evicted_bytes.inc(freed);
  if (freed > 0) logInfo("evicted cached blobs", {{"blobs", count}, {"bytes", freed}});
  return freed;
}

std::vector<std::string> CacheIndex::dropVictimsLocked(const std::vector<CachePolicy::Victim>& victims,
                                                       uint64_t* freed) {
  std::vector<std::string> files;
  for (const auto& v : victims) {
    auto name = names_.find(v.id);
    if (name == names_.end()) continue;
    std::string d = *name->second;
    auto it = blobs_.find(d);
    if (it == blobs_.end()) continue;
    for (auto& f : pathsOf(d, it->second.manifest)) files.push_back(std::move(f));
    *freed += it->second.size;
    if (listener_.evicted) listener_.evicted(it->second.size);
    if (!it->second.prefetched_for.empty() && listener_.prefetch_wasted) {
      listener_.prefetch_wasted(it->second.prefetched_for, it->second.size);
    }
    dropLocked(d);
    IndexMetrics::get().evictions.inc();
  }
  publishGauges();
  return files;
}

void CacheIndex::imageCached(const std::string& repo, const std::string& tag, const std::string& manifest_digest,
                             const std::vector<std::string>& listed) {
  // Each blob once per image, however often the manifest lists it (artifacts often use
  // one empty descriptor as config and layer).
  std::vector<std::string> refs = listed;
  std::sort(refs.begin(), refs.end());
  refs.erase(std::unique(refs.begin(), refs.end()), refs.end());
  std::lock_guard lock(mu_);
  if (!tag.empty()) {
    std::vector<CachePolicy::Id> ids;
    ids.reserve(refs.size() + 1);
    for (const auto& r : refs) ids.push_back(idLocked(r));
    ids.push_back(idLocked(manifest_digest));  // a pull needs the manifest as much as its blobs
    policy_.imagePulled(idLocked(repo + '\0' + tag), idLocked(manifest_digest), 0, ids);
  }
  auto& stored = images_[manifest_digest];
  if (stored == refs) return;
  stored = std::move(refs);
  dirty_images_.insert(manifest_digest);
}

void CacheIndex::setTag(const std::string& repo, const std::string& tag, const std::string& digest) {
  std::lock_guard lock(mu_);
  std::string key = repo + '\0' + tag;
  tags_[key] = Tag{digest, clock_.nowMillis()};
  dirty_tags_.insert(std::move(key));
}

std::optional<CacheIndex::Tag> CacheIndex::tag(const std::string& repo, const std::string& tag) {
  std::lock_guard lock(mu_);
  auto it = tags_.find(repo + '\0' + tag);
  if (it == tags_.end()) return std::nullopt;
  return it->second;
}

void CacheIndex::link(const std::string& repo, const std::string& digest) {
  std::lock_guard lock(mu_);
  auto& repos = links_[digest];
  if (std::find(repos.begin(), repos.end(), repo) != repos.end()) return;
  repos.push_back(repo);
  dirty_links_.insert(digest + '\0' + repo);
}

bool CacheIndex::linked(const std::string& repo, const std::string& digest) {
  std::lock_guard lock(mu_);
  auto it = links_.find(digest);
  return it != links_.end() && std::find(it->second.begin(), it->second.end(), repo) != it->second.end();
}

std::vector<std::string> CacheIndex::linkedRepositories(const std::string& digest) {
  std::lock_guard lock(mu_);
  auto it = links_.find(digest);
  return it == links_.end() ? std::vector<std::string>{} : it->second;
}

bool CacheIndex::hitIfLinked(const std::string& repo, const std::string& digest) {
  std::lock_guard lock(mu_);
  auto it = links_.find(digest);
  if (it == links_.end() || std::find(it->second.begin(), it->second.end(), repo) == it->second.end()) return false;
  if (auto b = blobs_.find(digest); b != blobs_.end()) hitLocked(*b);
  return true;
}

bool CacheIndex::roomFor(uint64_t bytes, int64_t protect_since_ms) {
  std::lock_guard lock(mu_);
  return policy_.roomFor(bytes, protect_since_ms);
}

Status CacheIndex::flush() {
  std::lock_guard flushing(flush_mu_);
  // Take the changes and their current values under the lock; write them without it.
  std::vector<std::pair<std::string, std::optional<std::string>>> blobs, manifests, images, tags, links, pins;
  {
    std::lock_guard lock(mu_);
    for (const auto& d : dirty_blobs_) {
      auto it = blobs_.find(d);
      if (it == blobs_.end()) {
        blobs.emplace_back(d, std::nullopt);
        manifests.emplace_back(d, std::nullopt);
        continue;
      }
      (it->second.manifest ? manifests : blobs).emplace_back(d, blobValue(it->second));
      (it->second.manifest ? blobs : manifests).emplace_back(d, std::nullopt);  // it was the other kind
    }
    for (const auto& d : dirty_images_) {
      auto it = images_.find(d);
      std::string v;
      if (it != images_.end()) {
        for (const auto& r : it->second) v += r + "\n";
      }
      images.emplace_back(d, it == images_.end() ? std::nullopt : std::optional(v));
    }
    for (const auto& k : dirty_tags_) {
      auto it = tags_.find(k);
      tags.emplace_back(k, it == tags_.end() ? std::nullopt
                                             : std::optional(it->second.digest + " " +
                                                             std::to_string(it->second.fetched_ms)));
    }
    for (const auto& k : dirty_links_) {
      auto nul = k.find('\0');
      auto it = links_.find(k.substr(0, nul));
      bool present = it != links_.end() &&
                     std::find(it->second.begin(), it->second.end(), k.substr(nul + 1)) != it->second.end();
      links.emplace_back(k, present ? std::optional(std::string()) : std::nullopt);
    }
    for (const auto& label : dirty_pins_) {
      auto it = pins_.find(label);
      std::string v;
      if (it != pins_.end()) {
        for (const auto& d : it->second) v += d + "\n";
      }
      pins.emplace_back(label, it == pins_.end() ? std::nullopt : std::optional(v));
    }
    dirty_pins_.clear();
    dirty_blobs_.clear();
    dirty_images_.clear();
    dirty_tags_.clear();
    dirty_links_.clear();
  }
  if (blobs.empty() && images.empty() && tags.empty() && links.empty() && pins.empty()) return Status::ok();
  auto txn = env_->write();
  if (!txn.isOk()) return txn.status();
  for (auto [db, changes] : {std::pair{blobs_db_, &blobs}, std::pair{manifests_db_, &manifests},
                             std::pair{images_db_, &images}, std::pair{tags_db_, &tags}, std::pair{links_db_, &links},
                             std::pair{pins_db_, &pins}}) {
    for (const auto& [k, v] : *changes) {
      Status st = v ? txn->put(db, k, *v) : txn->del(db, k);
      if (!st.isOk() && st.code() != Code::kNotFound) return st;
    }
  }
  return txn->commit();
}

// --- central administration ---

void CacheIndex::unlinkLocked(const std::string& repo, const std::string& digest, Purged* out) {
  auto it = links_.find(digest);
  if (it == links_.end()) return;
  auto pos = std::find(it->second.begin(), it->second.end(), repo);
  if (pos == it->second.end()) return;
  it->second.erase(pos);
  dirty_links_.insert(digest + '\0' + repo);
  ++out->links;
  if (it->second.empty()) links_.erase(it);
}

void CacheIndex::dropUnlinkedLocked(const std::vector<std::string>& candidates, Purged* out) {
  for (const auto& d : candidates) {
    if (links_.count(d) > 0) continue;  // another repository still has it
    if (images_.erase(d) > 0) dirty_images_.insert(d);
    auto b = blobs_.find(d);
    if (b == blobs_.end()) continue;
    for (const auto& f : pathsOf(d, b->second.manifest)) ::unlink(f.c_str());  // open descriptors keep reading
    ++out->blobs;
    out->bytes += b->second.size;
    dropLocked(d);
  }
  publishGauges();
}

CacheIndex::Purged CacheIndex::purgeRepository(const std::string& repo) {
  Purged out;
  std::lock_guard lock(mu_);
  std::string prefix = repo + '\0';
  for (auto it = tags_.begin(); it != tags_.end();) {
    if (it->first.compare(0, prefix.size(), prefix) == 0) {
      dirty_tags_.insert(it->first);
      it = tags_.erase(it);
      ++out.tags;
    } else {
      ++it;
    }
  }
  std::vector<std::string> candidates;
  for (const auto& [digest, repos] : links_) {
    if (std::find(repos.begin(), repos.end(), repo) != repos.end()) candidates.push_back(digest);
  }
  for (const auto& d : candidates) unlinkLocked(repo, d, &out);
  dropUnlinkedLocked(candidates, &out);
  return out;
}

std::vector<std::string> CacheIndex::closure(const std::string& repo, const std::string& reference) {
  std::lock_guard lock(mu_);
  std::string root = reference;
  if (!Digest::parse(reference).isOk()) {
    auto t = tags_.find(repo + '\0' + reference);
    if (t == tags_.end()) return {};
    root = t->second.digest;
  }
  std::vector<std::string> out{root};
  std::set<std::string> seen{root};
  for (size_t i = 0; i < out.size(); ++i) {
    auto it = images_.find(out[i]);
    if (it == images_.end()) continue;
    for (const auto& r : it->second) {
      if (seen.insert(r).second) out.push_back(r);
    }
  }
  return out;
}

CacheIndex::Purged CacheIndex::purgeImage(const std::string& repo, const std::string& reference) {
  Purged out;
  auto digests = closure(repo, reference);
  std::lock_guard lock(mu_);
  bool by_digest = Digest::parse(reference).isOk();
  std::string prefix = repo + '\0';
  for (auto it = tags_.begin(); it != tags_.end();) {
    bool match = it->first.compare(0, prefix.size(), prefix) == 0 &&
                 (by_digest ? it->second.digest == reference : it->first.substr(prefix.size()) == reference);
    if (match) {
      dirty_tags_.insert(it->first);
      it = tags_.erase(it);
      ++out.tags;
    } else {
      ++it;
    }
  }
  if (by_digest && digests.empty()) digests.push_back(reference);
  for (const auto& d : digests) unlinkLocked(repo, d, &out);
  dropUnlinkedLocked(digests, &out);
  return out;
}

CacheIndex::Purged CacheIndex::purgeDigest(const std::string& digest) {
  Purged out;
  std::lock_guard lock(mu_);
  for (auto it = tags_.begin(); it != tags_.end();) {
    if (it->second.digest == digest) {
      dirty_tags_.insert(it->first);
      it = tags_.erase(it);
      ++out.tags;
    } else {
      ++it;
    }
  }
  if (auto it = links_.find(digest); it != links_.end()) {
    std::vector<std::string> repos = it->second;
    for (const auto& repo : repos) unlinkLocked(repo, digest, &out);
  }
  dropUnlinkedLocked({digest}, &out);
  return out;
}

void CacheIndex::pin(const std::string& label, const std::vector<std::string>& digests) {
  std::lock_guard lock(mu_);
  std::vector<std::string> before = pins_[label];
  pins_[label] = digests;
  dirty_pins_.insert(label);
  for (const auto& d : before) policy_.pin(idLocked(d), pinnedLocked(d));
  for (const auto& d : digests) policy_.pin(idLocked(d), true);
}

bool CacheIndex::unpin(const std::string& label) {
  std::lock_guard lock(mu_);
  auto it = pins_.find(label);
  if (it == pins_.end()) return false;
  std::vector<std::string> digests = std::move(it->second);
  pins_.erase(it);
  dirty_pins_.insert(label);
  for (const auto& d : digests) policy_.pin(idLocked(d), pinnedLocked(d));
  return true;
}

std::map<std::string, std::vector<std::string>> CacheIndex::pins() {
  std::lock_guard lock(mu_);
  return pins_;
}

uint64_t CacheIndex::pinnedBytes() {
  std::lock_guard lock(mu_);
  std::set<std::string> pinned;
  for (const auto& [label, digests] : pins_) pinned.insert(digests.begin(), digests.end());
  uint64_t bytes = 0;
  for (const auto& d : pinned) {
    if (auto it = blobs_.find(d); it != blobs_.end()) bytes += it->second.size;
  }
  return bytes;
}

namespace {
std::vector<CacheIndex::Usage> topOf(std::map<std::string, CacheIndex::Usage>& all, size_t n) {
  std::vector<CacheIndex::Usage> out;
  for (auto& [name, u] : all) {
    u.name = name;
    out.push_back(u);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.bytes > b.bytes; });
  if (out.size() > n) out.resize(n);
  return out;
}
}  // namespace

std::vector<CacheIndex::Usage> CacheIndex::topRepositories(size_t n) {
  std::lock_guard lock(mu_);
  std::map<std::string, Usage> all;
  for (const auto& [digest, repos] : links_) {
    auto b = blobs_.find(digest);
    if (b == blobs_.end()) continue;
    for (const auto& repo : repos) {
      all[repo].bytes += b->second.size;
      ++all[repo].blobs;
    }
  }
  return topOf(all, n);
}

std::vector<CacheIndex::Usage> CacheIndex::topImages(size_t n) {
  std::lock_guard lock(mu_);
  std::map<std::string, Usage> all;
  for (const auto& [manifest, refs] : images_) {
    auto& u = all[manifest];
    for (const auto& r : refs) {
      if (auto b = blobs_.find(r); b != blobs_.end()) {
        u.bytes += b->second.size;
        ++u.blobs;
      }
    }
  }
  return topOf(all, n);
}

void CacheIndex::setListener(Listener listener) {
  std::lock_guard lock(mu_);
  listener_ = std::move(listener);
}

}  // namespace wharf
