// CachePolicy: every admission and eviction decision of the edge's cache, as a pure
// component (no I/O, no clock of its own, no locks): CacheIndex drives it for the running
// edge, bench/wharf-cachesim drives it over the fleet traces with a simulated clock, and
// the same code decides in both.
//
// Objects (blobs and manifests) are named by a dense Id the caller assigns. The policy
// keeps, per cached object, its size, how often it was asked for, its priority and its
// flags; choosing victims takes the lowest priorities from an ordered set, so it costs
// O(victims * log n) whatever the cache holds.
//
// Kinds:
//   lru     every miss admitted; the least recently used goes first (the textbook
//           baseline; the replay reproduces the reference LRU with it).
//   lfuda   LFU with dynamic ageing in its byte-hit form (priority = L + hits, L the
//           priority of the last victim), objects of 1 MiB or more admitted on their
//           second miss (the reference "lfuda2").
//   wharf   the edge's default: LFU-DA's ageing frequency, with
//             - image awareness: the objects that the current image of a repository
//               uses (the newest this site pulled, or that a prefetch brought after its
//               tag moved) count their hits twice and one more; once a tag moves and the
//               site pulled the new image, the old image's own layers lose that and go
//               first (what the core deletes or makes private is purged at once:
//               CacheIndex's purges, from the fleet channel);
//             - size awareness for whole pulls: objects under 1 MiB are worth up to 5 hits
//               more (configs, manifests and small layers cost little and a pull is fast
//               only when every one of its objects hits);
//             - admission: a miss of 1 MiB or more is kept only when the ghost list
//               (recently evicted or refused objects, up to twice the capacity in bytes)
//               remembers it, so a large object asked for once does not flush the cache;
//             - prefetch: valued as the pulls its tag had before it moved, and held for a
//               day before its first hit;
//             - the site: a copy another edge of the site owns (it is asked there first,
//               edge/link/site_peers.h) is worth half as much, as losing it costs a LAN
//               fetch, not a WAN one; the site keeps more distinct bytes.
//
// Not thread-safe: the owner serializes calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "shared/base/status.h"

namespace wharf {

class CachePolicy {
 public:
  using Id = uint64_t;
  enum class Kind { kLru, kLfuDa, kWharf };
  static Result<Kind> parseKind(std::string_view name);
  static const char* kindName(Kind kind);

  struct Options {
    Kind kind = Kind::kWharf;
    uint64_t capacity = 10ull << 30;  // bytes
    // makeRoom() evicts when the cache would go above high * capacity, down to
    // low * capacity (the replay uses 1 and 1: a hard budget, as the reference does).
    double high_watermark = 0.90;
    double low_watermark = 0.80;
    // Misses of objects at least this large are admitted only when the ghost list
    // remembers them (lfuda, wharf).
    uint64_t admit_min_size = 1ull << 20;
    // A prefetched object is not evicted before its first hit for this long: a rollout
    // takes hours (kWharf; in the fleet traces the median first pull comes 5 h after the
    // push, and holding a day keeps prefetch waste near 23 % instead of 40 %).
    int64_t prefetch_hold_ms = 24 * 3'600'000ll;
  };

  explicit CachePolicy(Options options);

  // --- requests ---
  bool contains(Id id) const { return entries_.count(id) > 0; }
  // A request served from the cache.
  void hit(Id id, int64_t now_ms);
  // A miss was fetched for `asks` requests (the one that led the fetch and those that
  // joined it): whether to keep it. Asked for by several at once counts as asked again.
  // Remembers the miss in the ghost list either way. An object larger than the whole
  // capacity is never admitted.
  bool admit(Id id, uint64_t size, int64_t now_ms, uint32_t asks = 1);
  // Enters an object admitted after a miss. Already there: only its size is refreshed.
  void insert(Id id, uint64_t size, int64_t now_ms);
  // Enters an object a prefetch brought in, valued as if it had been asked for
  // expected_hits times (the pulls its tag had before it moved: the nodes that will
  // roll the new image out); prefetched until its first hit, and not evicted before it
  // for prefetch_hold_ms.
  void insertPrefetched(Id id, uint64_t size, int64_t now_ms, uint32_t expected_hits);
  // Re-enters an object known from before a restart, with its statistics (hits: the
  // requests served from the cache).
  void restore(Id id, uint64_t size, int64_t last_ms, uint32_t hits, bool prefetched);
  // Gone for another reason (a purge, the scrub): no ghost.
  void erase(Id id);
  // A new budget (the core changed the edge's settings); evicting is makeRoom()'s job.
  void setCapacity(uint64_t capacity, double high_watermark, double low_watermark);

  // Victims so that incoming more bytes fit (see Options), least valuable first; they
  // are removed from the policy (and remembered in the ghost list). Pinned objects are
  // never chosen, nor objects used at or after protect_since_ms (when > 0), nor held
  // prefetches.
  struct Victim {
    Id id;
    uint64_t size;
    bool prefetched;  // never read since its prefetch: wasted
  };
  // At most max_victims at a time (the caller holds its lock meanwhile: it may call again).
  std::vector<Victim> makeRoom(uint64_t incoming, int64_t now_ms, int64_t protect_since_ms = 0,
                               size_t max_victims = SIZE_MAX);
  // Whether incoming bytes fit once every evictable object (not pinned, not used since
  // protect_since_ms) went; no change.
  bool roomFor(uint64_t incoming, int64_t protect_since_ms) const;

  // --- what the edge knows beyond single requests ---
  void pin(Id id, bool pinned);
  // Another edge of the site owns the object (kWharf: worth half; see above).
  void setReplica(Id id, bool replica);
  // A client pulled image (its manifest) through tag (the edge: a repository and tag; the
  // replay: a repository); refs are its config and layers. The tag's current image at
  // this site becomes image when it was pushed later than the current one (pushed_ms;
  // 0 when unknown: the latest pull wins). Objects no current image references any more
  // lose their image bonus (kWharf).
  void imagePulled(Id tag, Id image, int64_t pushed_ms, const std::vector<Id>& refs);

  uint64_t sizeOf(Id id) const {
    auto it = entries_.find(id);
    return it == entries_.end() ? 0 : it->second.size;
  }
  uint64_t used() const { return used_; }
  size_t size() const { return entries_.size(); }
  const Options& options() const { return options_; }

 private:
  struct Entry {
    uint64_t size = 0;
    double priority = 0;
    int64_t last_ms = 0;
    uint32_t hits = 0;
    uint16_t live = 0;  // current images (one per tag) that reference it
    bool pinned = false;
    bool prefetched = false;
    bool replica = false;
  };
  double priorityOf(const Entry& e) const;
  double valueOf(const Entry& e) const;  // kWharf: the priority above the age
  void reorder(Id id, Entry& e);
  // Into the ghost list (to its young end), with at least `hits` requests seen.
  void remember(Id id, uint64_t size, uint32_t hits);
  uint32_t ghostHits(Id id) const;
  // The high and low watermarks in bytes.
  std::pair<uint64_t, uint64_t> watermarks() const;

  Options options_;
  uint64_t used_ = 0;
  uint64_t clock_ = 0;  // LRU: a counter of accesses
  double age_ = 0;      // LFU-DA's L
  std::unordered_map<Id, Entry> entries_;
  std::set<std::pair<double, Id>> order_;  // evictable entries, lowest priority first

  // Ghost list: recently evicted or refused ids with their request count, up to
  // kGhostFactor * capacity bytes of them.
  static constexpr uint64_t kGhostFactor = 2;
  struct Ghost {
    uint32_t hits;
    uint64_t size;
    std::list<Id>::iterator pos;  // in ghost_order_
  };
  std::unordered_map<Id, Ghost> ghosts_;
  std::list<Id> ghost_order_;  // oldest first
  uint64_t ghost_bytes_ = 0;

  // Image awareness (kWharf).
  struct Image {
    int64_t pushed_ms = 0;
    std::vector<Id> refs;
    uint32_t tags = 0;  // tags naming it here
  };
  std::unordered_map<Id, Image> images_;  // current images only
  std::unordered_map<Id, Id> current_;  // tag -> its current image here
  std::unordered_map<Id, uint16_t> live_;  // object -> current images referencing it (cached or not)
};

}  // namespace wharf
