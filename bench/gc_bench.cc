// wharf-gcbench: garbage collection at scale, in process, over the real stores.
//
//   wharf-gcbench [--blobs 100000] [--manifests 10000] [--pushers 4] [--dir DIR]
//
// 1. Populates a registry: --blobs small blobs over 100 repositories and --manifests
//    manifests (config + 4 layers each), half of them tagged; a third of the blobs are
//    referenced by no manifest. To be quick, the files are written straight into the
//    blob store's layout (v1) and the records through a non-durable LMDB environment;
//    the collection itself then runs on the durable one, as in production.
// 2. Pushes with --pushers threads (upload 4 KiB, commit, push a manifest: durable, as
//    through the API minus HTTP) for a few seconds: the baseline rate.
// 3. Runs the collection (untagged manifests older than 0 s, grace 0) while the same
//    pushers run, and reports its time, its peak RSS (VmHWM reset before it) and the
//    push rate during it, as a ratio to the baseline (target: >= 0.8).
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/gc/garbage_collector.h"
#include "core/metadata/lmdb_metadata_store.h"
#include "core/registry/registry.h"
#include "shared/base/clock.h"
#include "shared/base/fs.h"
#include "shared/base/log.h"
#include "shared/event/work_queue.h"
#include "shared/oci/media_types.h"

using namespace wharf;
using nlohmann::json;

namespace {

int64_t vmHwmKiB() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::atoll(line.c_str() + 6);
  }
  return 0;
}

void resetHwm() { std::ofstream("/proc/self/clear_refs") << "5"; }

double seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

std::string blobContent(uint64_t i) {
  std::string s(1024, '\0');
  std::mt19937_64 rng(i * 7919 + 1);
  for (size_t k = 0; k < s.size(); k += 8) {
    uint64_t v = rng();
    std::memcpy(&s[k], &v, 8);
  }
  return s;
}

json descriptor(std::string_view type, const std::string& digest, uint64_t size) {
  return {{"mediaType", type}, {"digest", digest}, {"size", size}};
}

// Writes a blob file where FsBlobStore (layout v1) keeps it, without syncing.
void writeBlobFile(const std::string& root, const std::string& content, const Digest& d) {
  std::string dir = root + "/blobs/sha256/" + d.hex().substr(0, 2);
  (void)makeDirs(dir);
  std::ofstream(dir + "/" + d.hex(), std::ios::binary) << content;
}

struct Pushers {
  explicit Pushers(Registry& r) : registry(r) {}
  Registry& registry;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> pushed{0};
  std::vector<std::thread> threads;
  WorkQueue hashq{2};

  void start(int n, int round) {
    stop = false;
    pushed = 0;
    for (int t = 0; t < n; ++t) {
      threads.emplace_back([this, t, round] {
        for (uint64_t i = 0; !stop; ++i) {
          std::string repo = "push/r" + std::to_string(t);
          std::string layer = blobContent(1'000'000'000ull + round * 10'000'000ull + t * 1'000'000ull + i);
          layer.resize(4096, 'x');
          auto id = registry.startUpload(repo);
          if (!id.isOk()) continue;
          auto lease = registry.sessions().acquire(*id);
          if (!lease.isOk()) continue;
          Digest d = digestOf(layer);
          if (!registry.append(**lease, layer, hashq).isOk()) continue;
          if (!registry.finishUpload(repo, **lease, d, true).isOk()) continue;
          json m = {{"schemaVersion", 2},
                    {"mediaType", media::kOciManifest},
                    {"config", descriptor(media::kOciConfig, d.str(), layer.size())},
                    {"layers", json::array({descriptor("application/vnd.oci.image.layer.v1.tar", d.str(), layer.size())})}};
          if (registry.putManifest(repo, "t" + std::to_string(i % 8), m.dump(), std::string(media::kOciManifest)).isOk()) {
            ++pushed;
          }
        }
      });
    }
  }
  uint64_t finish() {
    stop = true;
    for (auto& t : threads) t.join();
    threads.clear();
    return pushed.load();
  }
};

}  // namespace

int main(int argc, char** argv) {
  uint64_t n_blobs = 100'000, n_manifests = 10'000;
  int pushers = 4;
  std::string dir;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--blobs") n_blobs = std::stoull(argv[i + 1]);
    else if (a == "--manifests") n_manifests = std::stoull(argv[i + 1]);
    else if (a == "--pushers") pushers = std::atoi(argv[i + 1]);
    else if (a == "--dir") dir = argv[i + 1];
    else {
      std::fprintf(stderr, "usage: wharf-gcbench [--blobs N] [--manifests N] [--pushers N] [--dir DIR]\n");
      return 2;
    }
  }
  if (argc == 2) {
    std::fprintf(stderr, "usage: wharf-gcbench [--blobs N] [--manifests N] [--pushers N] [--dir DIR]\n");
    return 2;
  }
  setLogLevel(LogLevel::kWarn);
  if (dir.empty()) {
    char tmpl[] = "/tmp/wharf-gcbench-XXXXXX";
    dir = ::mkdtemp(tmpl);
  }
  std::string root = dir + "/store";

  // 1. Populate.
  auto t0 = std::chrono::steady_clock::now();
  {
    auto blobs = std::move(openFsBlobStore(root)).value();
    LmdbMetadataOptions fast;
    fast.durable = false;
    auto meta = std::move(openLmdbMetadataStore(dir + "/meta.lmdb", fast)).value();
    int64_t long_ago = RealClock::instance().nowMillis() - 30ll * 86'400'000;
    std::vector<std::string> digests(n_blobs);
    for (uint64_t i = 0; i < n_blobs; ++i) {
      std::string c = blobContent(i);
      Digest d = digestOf(c);
      digests[i] = d.str();
      writeBlobFile(root, c, d);
      if (!meta->commitBlob("bench/r" + std::to_string(i % 100), d.str(), c.size(), "", long_ago).isOk()) return 1;
    }
    // Manifests reference the first two thirds of the blobs.
    uint64_t referenced = n_blobs * 2 / 3;
    for (uint64_t m = 0; m < n_manifests; ++m) {
      std::string repo = "bench/r" + std::to_string(m % 100);
      std::vector<std::string> refs;
      json layers = json::array();
      for (int k = 0; k < 5; ++k) {
        // Blobs of the same repository (links), spread over the referenced range.
        uint64_t b = ((m * 5 + k) * 100 + m % 100) % referenced;
        b = b - b % 100 + m % 100;
        if (b >= n_blobs) b = m % 100;
        refs.push_back(digests[b]);
        if (k > 0) layers.push_back(descriptor("application/vnd.oci.image.layer.v1.tar", digests[b], 1024));
      }
      json body = {{"schemaVersion", 2},
                   {"mediaType", media::kOciManifest},
                   {"config", descriptor(media::kOciConfig, refs[0], 1024)},
                   {"layers", layers},
                   {"annotations", {{"n", std::to_string(m)}}}};
      std::string text = body.dump();
      Digest d = digestOf(text);
      writeBlobFile(root, text, d);
      ManifestWrite w;
      w.repository = repo;
      w.digest = d.str();
      w.record.media_type = std::string(media::kOciManifest);
      w.record.size = text.size();
      if (m % 2 == 0) w.tag = "v" + std::to_string(m);
      w.blobs = refs;
      if (Status st = meta->putManifest(w, long_ago); !st.isOk()) {
        std::fprintf(stderr, "populate: %s\n", st.message().c_str());
        return 1;
      }
    }
  }
  double populate_s = seconds(t0);

  // 2. and 3. On the durable environment, as the core runs.
  auto blobs = std::move(openFsBlobStore(root)).value();
  auto meta = std::move(openLmdbMetadataStore(dir + "/meta.lmdb", LmdbMetadataOptions{})).value();
  Registry registry(*blobs, *meta, RealClock::instance());
  Pushers p(registry);
  const double baseline_s = 5;
  p.start(pushers, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(baseline_s * 1000)));  // a timed window, not synchronization
  double baseline_rate = p.finish() / baseline_s;

  resetHwm();
  int64_t hwm_before = vmHwmKiB();
  p.start(pushers, 1);
  auto g0 = std::chrono::steady_clock::now();
  GcOptions o;
  o.untagged_older_than_ms = 0;
  o.grace_ms = 0;
  o.retention = false;
  GcObserver observer;
  std::string phase;
  std::vector<std::pair<std::string, double>> phases;
  observer.progress = [&](uint64_t, uint64_t, const std::string& name) {
    if (name == phase) return;
    phase = name;
    phases.emplace_back(name, seconds(g0));
  };
  auto report = GarbageCollector(registry).run(o, observer);
  double gc_s = seconds(g0);
  uint64_t during = p.finish();
  double during_rate = during / gc_s;
  int64_t hwm = vmHwmKiB();
  if (!report.isOk()) {
    std::fprintf(stderr, "gc failed: %s\n", report.status().message().c_str());
    return 1;
  }
  std::printf("Wharf GC bench: %llu blobs, %llu manifests (populated in %.1f s, %s)\n",
              static_cast<unsigned long long>(n_blobs), static_cast<unsigned long long>(n_manifests), populate_s,
              dir.c_str());
  std::printf("  collection: %.2f s; %llu manifests and %llu blobs deleted, %llu bytes freed, %llu kept\n", gc_s,
              static_cast<unsigned long long>(report->manifests_deleted),
              static_cast<unsigned long long>(report->blobs_deleted),
              static_cast<unsigned long long>(report->bytes_freed), static_cast<unsigned long long>(report->blobs_kept));
  for (size_t i = 0; i < phases.size(); ++i) {
    double end = i + 1 < phases.size() ? phases[i + 1].second : gc_s;
    std::printf("    %-20s %.2f s\n", phases[i].first.c_str(), end - phases[i].second);
  }
  std::printf("  peak RSS during the collection: %.1f MiB (process before it: %.1f MiB)\n", hwm / 1024.0,
              hwm_before / 1024.0);
  std::printf("  concurrent pushes (%d threads, durable): %.0f/s alone, %.0f/s during the collection: %.2fx "
              "(target >= 0.80)\n",
              pushers, baseline_rate, during_rate, baseline_rate > 0 ? during_rate / baseline_rate : 0.0);
  return 0;
}
