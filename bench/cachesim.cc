// wharf-cachesim: replays a fleet trace (../shared/fleet-traces/<seed>/, see its README)
// through the edge's own CachePolicy (edge/cache/cache_policy.h) and, with --prefetch,
// the edge's own PrefetchPolicy; only disk and network are replaced by object sizes and
// the trace's clock. Each site is one edge whose budget is --share of the site's working
// set (reference.json's working_set_bytes); the first 7 days (measured_from_t) warm the
// cache and are not counted.
//
//   wharf-cachesim --trace DIR [--share 0.10] [--policy wharf|lfuda|lru] [--prefetch]
//                  [--json] [--compare]
//
// Counts as the reference does: a request for a cached object is a hit for its whole
// size; a miss fetches the whole object (wan_bytes) and may then be admitted; an object
// larger than the budget is never cached. pulls_full: the share of pulls every request of
// which hit. With --prefetch, a push that moves a tag the site pulled enough (PrefetchPolicy's
// follow-the-previous-tag rule) fetches the image's manifest and blobs at once (prefetch_bytes, counted in wan_bytes);
// prefetch_waste is the share of those bytes evicted (or left at the end) unread.
// --compare prints reference.json's figures for the same share beside ours.
#include <malloc.h>
#include <zstd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "edge/cache/cache_index.h"
#include "edge/cache/cache_policy.h"
#include "edge/cache/fill_coordinator.h"
#include "shared/base/clock.h"
#include "shared/base/fs.h"
#include "shared/oci/digest.h"
#include "shared/fleet/prefetch_policy.h"

using nlohmann::json;
using wharf::CachePolicy;
using wharf::Status;

namespace {

[[noreturn]] void die(const std::string& msg) {
  std::cerr << "wharf-cachesim: " << msg << "\n";
  std::exit(2);
}

// The whole decompressed text of a .zst file.
std::string readZstd(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) die("cannot read " + path);
  std::string in((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> ctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  std::string out;
  std::vector<char> buf(ZSTD_DStreamOutSize());
  ZSTD_inBuffer input{in.data(), in.size(), 0};
  while (input.pos < input.size) {
    ZSTD_outBuffer output{buf.data(), buf.size(), 0};
    size_t r = ZSTD_decompressStream(ctx.get(), &output, &input);
    if (ZSTD_isError(r)) die(path + ": " + ZSTD_getErrorName(r));
    out.append(buf.data(), output.pos);
  }
  return out;
}

// Splits s at sep (no quoting: the traces have none).
std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t p = s.find(sep, start);
    out.push_back(s.substr(start, p == std::string_view::npos ? std::string_view::npos : p - start));
    if (p == std::string_view::npos) break;
    start = p + 1;
  }
  return out;
}

uint64_t num(std::string_view s) { return std::strtoull(std::string(s).c_str(), nullptr, 10); }
double real(std::string_view s) { return std::strtod(std::string(s).c_str(), nullptr); }

struct Push {
  double t;
  uint64_t repo, image, manifest, manifest_size;
  std::vector<std::pair<uint64_t, uint64_t>> blobs;  // object, size
};

struct Row {
  double t;
  uint64_t pull, image, repo;
  char kind;  // 'm', 'c', 'l'
  uint64_t object, size;
};

// Calls row(fields) for each line of a trace file after its header; short lines are fatal.
template <typename F>
void forEachRow(const std::string& path, size_t fields, F row) {
  std::string text = readZstd(path);
  bool header = true;
  for (auto line : split(text, '\n')) {
    if (line.empty()) continue;
    if (header) {
      header = false;
      continue;
    }
    auto f = split(line, ',');
    if (f.size() < fields) die(path + ": short line");
    row(f);
  }
}

std::vector<Push> readPushes(const std::string& dir) {
  std::vector<Push> out;
  forEachRow(dir + "/pushes.csv.zst", 6, [&](const std::vector<std::string_view>& f) {
    Push p{real(f[0]), num(f[1]), num(f[2]), num(f[3]), num(f[4]), {}};
    for (auto b : split(f[5], ';')) {
      auto kv = split(b, ':');
      if (kv.size() == 2) p.blobs.emplace_back(num(kv[0]), num(kv[1]));
    }
    out.push_back(std::move(p));
  });
  std::stable_sort(out.begin(), out.end(), [](const Push& a, const Push& b) { return a.t < b.t; });
  return out;
}

std::vector<Row> readSite(const std::string& path) {
  std::vector<Row> out;
  forEachRow(path, 7, [&](const std::vector<std::string_view>& f) {
    out.push_back(Row{real(f[0]), num(f[1]), num(f[2]), num(f[3]), f[4].empty() ? '?' : f[4][0], num(f[5]), num(f[6])});
  });
  return out;
}

struct Figures {
  uint64_t requested = 0, hit = 0, wan = 0, prefetch = 0, prefetch_waste = 0;
  uint64_t pulls = 0, pulls_full = 0;
  void add(const Figures& o) {
    requested += o.requested, hit += o.hit, wan += o.wan, prefetch += o.prefetch;
    prefetch_waste += o.prefetch_waste, pulls += o.pulls, pulls_full += o.pulls_full;
  }
  json toJson() const {
    auto ratio = [](uint64_t a, uint64_t b) { return b == 0 ? 0.0 : static_cast<double>(a) / static_cast<double>(b); };
    return {{"byte_hit", ratio(hit, requested)},     {"pulls_full", ratio(pulls_full, pulls)},
            {"wan_bytes", wan},                      {"prefetch_bytes", prefetch},
            {"prefetch_waste", ratio(prefetch_waste, prefetch)}, {"requested_bytes", requested}};
  }
};

// Image ids and object ids share the policy's id space with a tag bit.
constexpr uint64_t kImageBit = 1ull << 62;

Figures replaySite(const std::vector<Row>& rows, const std::vector<Push>& pushes,
                   const std::unordered_map<uint64_t, const Push*>& by_image, CachePolicy::Options options,
                   double measured_from, const wharf::PrefetchPolicy* prefetch) {
  CachePolicy policy(options);
  Figures fig;
  // Per repository, as the edge's PullHistory keeps per tag: the image its tag names, and
  // the pulls of it since the tag moved there.
  struct TagPulls {
    uint64_t image = 0;
    uint32_t count = 0;
    int64_t last_ms = 0;
  };
  std::unordered_map<uint64_t, TagPulls> tag_pulls;
  std::unordered_map<uint64_t, bool> prefetched;     // prefetched and not read yet -> in the measured window
  size_t next_push = 0;
  uint64_t current_pull = UINT64_MAX;
  bool pull_full = true, pull_measured = false;
  auto endPull = [&] {
    if (current_pull != UINT64_MAX && pull_measured) {
      ++fig.pulls;
      if (pull_full) ++fig.pulls_full;
    }
  };
  auto evictFor = [&](uint64_t incoming, int64_t now_ms) {
    for (const auto& v : policy.makeRoom(incoming, now_ms)) {
      auto p = v.prefetched ? prefetched.find(v.id) : prefetched.end();
      if (p == prefetched.end()) continue;
      if (p->second) fig.prefetch_waste += v.size;
      prefetched.erase(p);
    }
  };
  auto refsOf = [&](const Push& p) {
    std::vector<CachePolicy::Id> refs;
    refs.reserve(p.blobs.size() + 1);
    refs.push_back(p.manifest);
    for (const auto& [o, s] : p.blobs) refs.push_back(o);
    return refs;
  };
  for (const Row& r : rows) {
    // Pushes up to now: the core's events (prefetch).
    while (next_push < pushes.size() && pushes[next_push].t <= r.t) {
      const Push& p = pushes[next_push++];
      // The repository's tag moves to this image: what clients pulled by tag so far was
      // the previous one (the trace has one tag per repository).
      TagPulls before = tag_pulls[p.repo];
      tag_pulls[p.repo] = TagPulls{p.image, 0, 0};
      if (prefetch == nullptr || p.t < 0) continue;
      auto now_ms = static_cast<int64_t>(p.t * 1000);
      if (!prefetch->wants(std::to_string(p.repo), "latest", before.last_ms, before.count, now_ms)) continue;
      bool measured = p.t >= measured_from;
      // The tag moved: the new image is the repository's current one here.
      policy.imagePulled(p.repo, p.image | kImageBit, now_ms, refsOf(p));
      std::vector<std::pair<uint64_t, uint64_t>> objects = p.blobs;
      objects.emplace_back(p.manifest, p.manifest_size);
      // Nodes that ran the previous image have its layers: only what is new is fetched.
      std::unordered_set<uint64_t> had;
      if (auto prev = by_image.find(before.image); prev != by_image.end()) {
        for (const auto& [o, size] : prev->second->blobs) had.insert(o);
      }
      for (const auto& [o, size] : objects) {
        if (policy.contains(o) || size > options.capacity || had.count(o)) continue;
        evictFor(size, now_ms);
        policy.insertPrefetched(o, size, now_ms, before.count);
        prefetched[o] = measured;
        if (measured) fig.prefetch += size, fig.wan += size;
      }
    }
    if (r.pull != current_pull) {
      endPull();
      current_pull = r.pull;
      pull_full = true;
      pull_measured = r.t >= measured_from;
    }
    auto now_ms = static_cast<int64_t>(r.t * 1000);
    bool measured = r.t >= measured_from;
    if (r.kind == 'm') {
      auto& tp = tag_pulls[r.repo];
      if (tp.image == r.image) ++tp.count, tp.last_ms = now_ms;  // else an older image, by digest
      auto p = by_image.find(r.image);
      if (p != by_image.end()) {
        policy.imagePulled(r.repo, r.image | kImageBit, static_cast<int64_t>(p->second->t * 1000), refsOf(*p->second));
      }
    }
    if (measured) fig.requested += r.size;
    if (policy.contains(r.object)) {
      policy.hit(r.object, now_ms);
      prefetched.erase(r.object);
      if (measured) fig.hit += r.size;
      continue;
    }
    pull_full = false;
    if (measured) fig.wan += r.size;
    if (!policy.admit(r.object, r.size, now_ms)) continue;
    evictFor(r.size, now_ms);
    policy.insert(r.object, r.size, now_ms);
  }
  endPull();
  // Prefetched in the measured window and still unread at the end: wasted too.
  for (const auto& [id, measured] : prefetched) {
    if (measured && policy.contains(id)) fig.prefetch_waste += policy.sizeOf(id);
  }
  return fig;
}

size_t heapInUse() { return mallinfo2().uordblks; }

// --cost N: the policy's price at the scale of a large edge. N cached blobs of random
// sizes (a third of them in the current images of N/20 tags), then victims for 10 % of
// the budget; and the memory per cached blob of the policy alone and of the whole index
// (CacheIndex over a scratch directory: its maps, the policy, the ids).
int cost(size_t n) {
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> size_of(14.0, 2.0);  // median ~1.2 MB
  std::vector<uint64_t> sizes(n);
  uint64_t total = 0;
  for (auto& s : sizes) total += s = std::max<uint64_t>(100, static_cast<uint64_t>(size_of(rng)));
  CachePolicy::Options o;
  o.capacity = total + total / 10;  // all fit (under the high watermark at 90 %)
  o.high_watermark = 1.0;
  o.low_watermark = 0.9;
  size_t heap0 = heapInUse();
  auto policy = std::make_unique<CachePolicy>(o);
  for (size_t i = 0; i < n; ++i) policy->restore(i + 1, sizes[i], static_cast<int64_t>(i), 1 + (rng() % 20), false);
  for (size_t t = 0; t < n / 20; ++t) {
    std::vector<CachePolicy::Id> refs;
    for (int k = 0; k < 7; ++k) refs.push_back(1 + rng() % n);
    policy->imagePulled(10'000'000'000ull + t, 20'000'000'000ull + t, 0, refs);
  }
  size_t policy_bytes = heapInUse() - heap0;
  policy->setCapacity(total, 0.9, 0.8);  // now over its high watermark: 20 % to go
  auto t0 = std::chrono::steady_clock::now();
  auto batch = policy->makeRoom(0, 1, 0, 1024);  // one batch, as CacheIndex::enforce takes them
  double batch_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  auto rest = policy->makeRoom(0, 1);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("policy: %zu blobs, %.1f GB; one batch of %zu victims in %.2f ms; the whole sweep (%.1f GB, %zu victims) "
              "in %.1f ms\n",
              n, static_cast<double>(total) / 1e9, batch.size(), batch_ms, static_cast<double>(total) * 0.2 / 1e9,
              batch.size() + rest.size(), ms);
  std::printf("policy memory: %.0f bytes per cached blob\n", static_cast<double>(policy_bytes) / static_cast<double>(n));
  policy.reset();

  // The whole index, as the edge holds it.
  char tmpl[] = "/tmp/wharf-cachesim-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) die("cannot make a scratch directory");
  std::string dir = tmpl;
  {
    auto fills = wharf::FillCoordinator::open(dir + "/cache");
    if (!fills.isOk()) die(fills.status().message());
    wharf::FakeClock clock;
    size_t heap1 = heapInUse();
    auto index = wharf::CacheIndex::open(dir + "/index.lmdb", **fills, dir + "/manifests", clock,
                                         wharf::CacheBudget{total * 2, 0.9, 0.8});
    if (!index.isOk()) die(index.status().message());
    for (size_t i = 0; i < n; ++i) {
      (*index)->committed(wharf::digestOf("blob " + std::to_string(i)).str(), 1000);  // small: always kept
    }
    if (Status st = (*index)->flush(); !st.isOk()) die(st.message());  // the steady state: nothing dirty
    size_t index_bytes = heapInUse() - heap1;
    std::printf("index memory (CacheIndex: its blob map, the policy, the ids): %.0f bytes per cached blob\n",
                static_cast<double>(index_bytes) / static_cast<double>(n));
  }
  (void)wharf::removeTree(dir);
  return 0;
}

void usage() {
  std::cout << R"(Usage: wharf-cachesim --trace DIR [--share 0.10] [--policy wharf|lfuda|lru] [--prefetch]
                      [--prefetch-policy JSON] [--json] [--compare]

Replays a fleet trace (DIR holds pushes.csv.zst, site-*.csv.zst and reference.json)
through the edge's own cache policy and prints, per site and in total, the byte-hit
ratio, the pulls served fully from cache, WAN bytes, prefetch bytes and prefetch waste.
  --share F     the cache budget as a fraction of each site's working set (0.10)
  --policy P    wharf (the edge's default), lfuda (LFU-DA, second-miss admission at 1 MiB)
                or lru
  --prefetch-policy JSON
                the edge's "prefetch" setting to replay (implies --prefetch)
  --prefetch    prefetch the new image of a tag pulled at least twice in the 3 days
                before it moved (the edge's default rule)
  --json        one JSON object on stdout
  --compare     also print reference.json's figures for the same share

wharf-cachesim --cost N   the policy's price with N cached blobs: time to choose victims,
                          memory per blob (the policy's, and the whole cache index's)
)";
}

}  // namespace

int main(int argc, char** argv) {
  std::string trace;
  double share = 0.10;
  std::string policy_name = "wharf";
  bool as_json = false, compare = false, with_prefetch = false;
  std::string prefetch_json = "{}";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") return usage(), 0;
    if (a == "--cost") return cost(static_cast<size_t>(std::strtoull(value().c_str(), nullptr, 10)));
    if (a == "--trace") trace = value();
    else if (a == "--share") share = std::strtod(value().c_str(), nullptr);
    else if (a == "--policy") policy_name = value();
    else if (a == "--json") as_json = true;
    else if (a == "--compare") compare = true;
    else if (a == "--prefetch") with_prefetch = true;
    else if (a == "--prefetch-policy") with_prefetch = true, prefetch_json = value();
    else die("unknown argument " + a + " (see --help)");
  }
  if (trace.empty()) die("--trace DIR is required (see --help)");
  if (!(share > 0 && share <= 1)) die("--share must be in (0, 1]");
  auto kind = CachePolicy::parseKind(policy_name);
  if (!kind.isOk()) die(kind.status().message());

  json reference;
  try {
    std::ifstream f(trace + "/reference.json");
    if (!f) die("cannot read " + trace + "/reference.json");
    reference = json::parse(f);
  } catch (const std::exception& e) {
    die(trace + "/reference.json: " + e.what());
  }
  double measured_from = reference.value("measured_from_t", 604800.0);
  auto pushes = readPushes(trace);
  std::unordered_map<uint64_t, const Push*> by_image;
  for (const auto& p : pushes) by_image[p.image] = &p;
  auto parsed = json::parse(prefetch_json, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) die("--prefetch-policy: not JSON");
  auto prefetch_policy = wharf::PrefetchPolicy::fromJson(parsed);
  if (!prefetch_policy.isOk()) die(prefetch_policy.status().message());
  const wharf::PrefetchPolicy& prefetch = *prefetch_policy;

  Figures total;
  json sites = json::object();
  for (const auto& [site, ws] : reference.at("working_set_bytes").items()) {
    auto rows = readSite(trace + "/site-" + site + ".csv.zst");
    CachePolicy::Options o;
    o.kind = *kind;
    o.capacity = static_cast<uint64_t>(share * ws.get<double>());
    o.high_watermark = o.low_watermark = 1.0;
    Figures f = replaySite(rows, pushes, by_image, o, measured_from, with_prefetch ? &prefetch : nullptr);
    total.add(f);
    sites[site] = f.toJson();
  }
  json out = {{"policy", policy_name}, {"share", share}, {"prefetch", with_prefetch}, {"total", total.toJson()}, {"sites", sites}};
  if (as_json) {
    std::cout << out.dump() << "\n";
    return 0;
  }
  char key[64];
  std::snprintf(key, sizeof key, "lru|%g", share);
  std::printf("policy %s, share %g%s (%s)\n", policy_name.c_str(), share, with_prefetch ? ", prefetch" : "", trace.c_str());
  std::printf("%-6s %9s %11s %16s %16s %9s\n", "SITE", "BYTE HIT", "PULLS FULL", "WAN BYTES", "PREFETCH", "WASTE");
  auto line = [](const std::string& name, const json& j) {
    std::printf("%-6s %8.2f%% %10.2f%% %16.0f %16.0f %8.1f%%\n", name.c_str(), j["byte_hit"].get<double>() * 100,
                j["pulls_full"].get<double>() * 100, j["wan_bytes"].get<double>(), j["prefetch_bytes"].get<double>(),
                j["prefetch_waste"].get<double>() * 100);
  };
  for (const auto& [site, j] : sites.items()) line(site, j);
  line("total", out["total"]);
  if (compare) {
    std::printf("\nreference at share %g:\n", share);
    for (const char* p : {"lru", "img", "lfuda2", "belady"}) {
      std::snprintf(key, sizeof key, "%s|%g", p, share);
      auto it = reference["results"].find(key);
      if (it == reference["results"].end()) continue;
      std::printf("%-7s byte_hit %6.2f%%  pulls_full %6.2f%%   (ours/ref byte_hit %.3f)\n", p,
                  (*it)["byte_hit"].get<double>() * 100, (*it)["pulls_full"].get<double>() * 100,
                  out["total"]["byte_hit"].get<double>() / (*it)["byte_hit"].get<double>());
    }
  }
  return 0;
}
