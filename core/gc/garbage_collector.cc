#include "core/gc/garbage_collector.h"

#include <chrono>
#include <deque>
#include <map>
#include <thread>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "shared/base/log.h"
#include "shared/metrics/metrics.h"
#include "shared/oci/manifest.h"

namespace wharf {
namespace {

struct GcMetrics {
  MetricsRegistry& r = MetricsRegistry::global();
  Counter& runs = r.counter("wharf_gc_runs_total", "Garbage collection runs (dry runs included).");
  Counter& manifests = r.counter("wharf_gc_manifests_deleted_total", "Manifests deleted by garbage collection.");
  Counter& blobs = r.counter("wharf_gc_blobs_deleted_total", "Content records and files deleted by garbage collection.");
  Counter& bytes = r.counter("wharf_gc_bytes_freed_total", "Bytes freed by garbage collection.");
  static GcMetrics& get() {
    static GcMetrics m;
    return m;
  }
};

constexpr size_t kSampleSize = 50;
// Objects collected per transaction (and per sync).
constexpr size_t kBatch = 64;

// What a manifest references: recorded at push, else read from its content. An error
// (content unreadable) stops the run: what it references cannot be known.
Result<std::vector<std::string>> refsOf(Registry& registry, const std::string& digest, const std::string& media_type) {
  if (auto refs = registry.metadata().manifestRefs(digest)) return *refs;
  auto body = registry.readContent(digest, kMaxManifestBytes);
  if (!body.isOk()) return Status(body.status().code(), "manifest " + digest + ": " + body.status().message());
  auto m = parseManifest(*body, media_type);
  if (!m.isOk()) return Status(Code::kCorruption, "manifest " + digest + ": " + m.status().message());
  std::vector<std::string> out;
  if (m->config) out.push_back(m->config->digest.str());
  for (const auto& l : m->layers) out.push_back(l.digest.str());
  for (const auto& c : m->manifests) out.push_back(c.digest.str());
  return out;
}

// Throttling, not synchronization: the collector is background work and leaves the
// writer to pushes for a while after each batch.
void pace(const GcOptions& o, std::chrono::steady_clock::time_point batch_start) {
  if (o.yield <= 0) return;
  auto took = std::chrono::steady_clock::now() - batch_start;
  std::this_thread::sleep_for(std::chrono::duration_cast<std::chrono::microseconds>(took * o.yield));
}

struct RepoManifest {
  std::string digest;
  ManifestRecord record;
};

}  // namespace

nlohmann::json GcReport::toJson() const {
  return {{"dry_run", dry_run},
          {"tags_expired", tags_expired},
          {"manifests_deleted", manifests_deleted},
          {"blobs_deleted", blobs_deleted},
          {"bytes_freed", bytes_freed},
          {"orphan_files_deleted", orphan_files_deleted},
          {"blobs_kept", blobs_kept},
          {"manifests_scanned", manifests_scanned},
          {"duration_ms", duration_ms},
          {"sample", sample}};
}

Result<GcReport> GarbageCollector::run(const GcOptions& o, const GcObserver& observer) {
  MetadataStore& meta = registry_.metadata();
  Clock& clock = registry_.clock();
  const int64_t started = clock.nowMillis();
  const int64_t cutoff = started - o.grace_ms;  // content touched before this may go
  // Orders the run against concurrent writes by commit, not by clocks read before a lock.
  if (!o.dry_run) WHARF_RETURN_IF_ERROR(meta.beginCollection(started));
  GcReport report;
  report.dry_run = o.dry_run;
  GcMetrics::get().runs.inc();
  auto note = [&](const std::string& what) {
    if (report.sample.size() < kSampleSize) report.sample.push_back(what);
  };
  auto cancelled = [&] { return observer.cancelled(); };
  const std::string verb = o.dry_run ? "would delete " : "deleted ";

  // The manifests of every repository, from one snapshot.
  std::map<std::string, std::vector<RepoManifest>> repos;
  WHARF_RETURN_IF_ERROR(
      meta.forEachManifest([&](const std::string& repo, const std::string& digest, const ManifestRecord& r) {
        repos[repo].push_back(RepoManifest{digest, r});
        return true;
      }));
  for (const auto& [repo, ms] : repos) report.manifests_scanned += ms.size();

  // 1. Retention.
  std::set<std::pair<std::string, std::string>> expired_tags;  // (repo, tag)
  if (o.retention && !registry_.policies()->empty()) {
    observer.progress(0, repos.size(), "retention");
    size_t i = 0;
    for (const auto& [repo, ms] : repos) {
      if (cancelled()) return Status(Code::kCancelled, "cancelled");
      auto expired = registry_.applyRetention(repo, o.dry_run);
      if (!expired.isOk()) return expired.status();
      for (const auto& t : *expired) {
        expired_tags.insert({repo, t});
        if (!o.dry_run) observer.deleted(GcObserver::Deleted::kTag, repo, t);
        observer.log(verb + "tag " + repo + ":" + t + " (retention)");
        note("tag " + repo + ":" + t);
      }
      report.tags_expired += expired->size();
      observer.progress(++i, repos.size(), "retention");
    }
  }

  // 2. Untagged manifests.
  std::set<std::pair<std::string, std::string>> deleted_manifests;  // (repo, digest)
  if (o.untagged_older_than_ms >= 0) {
    observer.progress(0, repos.size(), "untagged manifests");
    size_t i = 0;
    for (const auto& [repo, ms] : repos) {
      if (cancelled()) return Status(Code::kCancelled, "cancelled");
      std::unordered_map<std::string, const RepoManifest*> by_digest;
      std::unordered_map<std::string, std::vector<std::string>> referrers_of;
      for (const auto& m : ms) {
        by_digest[m.digest] = &m;
        if (!m.record.subject.empty()) referrers_of[m.record.subject].push_back(m.digest);
      }
      // Roots: tagged (tags retention expired no longer count), or young.
      std::vector<std::string> work;
      std::unordered_set<std::string> kept;
      auto keep = [&](const std::string& d) {
        if (by_digest.count(d) && kept.insert(d).second) work.push_back(d);
      };
      auto tags = meta.tagRecords(repo);
      if (!tags.isOk()) return tags.status();
      for (const auto& t : *tags) {
        if (!expired_tags.count({repo, t.tag})) keep(t.digest);
      }
      if (pins_)
        for (const auto& d : pins_(repo)) keep(d);
      for (const auto& m : ms) {
        if (started - m.record.pushed_ms < o.untagged_older_than_ms) keep(m.digest);
      }
      // Closure: children of kept indexes, subjects of kept referrers, referrers of kept
      // manifests.
      while (!work.empty()) {
        std::string d = work.back();
        work.pop_back();
        const RepoManifest* m = by_digest[d];
        auto refs = refsOf(registry_, d, m->record.media_type);
        if (!refs.isOk()) return refs.status();
        for (const auto& r : *refs) keep(r);
        if (!m->record.subject.empty()) keep(m->record.subject);
        if (auto it = referrers_of.find(d); it != referrers_of.end()) {
          for (const auto& r : it->second) keep(r);
        }
      }
      std::vector<std::string> doomed;
      for (const auto& m : ms) {
        if (!kept.count(m.digest)) doomed.push_back(m.digest);
      }
      for (size_t at = 0; at < doomed.size(); at += kBatch) {
        std::vector<std::string> batch(doomed.begin() + at, doomed.begin() + std::min(doomed.size(), at + kBatch));
        std::vector<bool> gone(batch.size(), true);
        if (!o.dry_run) {
          auto batch_start = std::chrono::steady_clock::now();
          auto collected = meta.collectManifests(repo, batch, started);
          if (!collected.isOk()) return collected.status();
          gone = std::move(collected).value();
          pace(o, batch_start);
        }
        for (size_t k = 0; k < batch.size(); ++k) {
          if (!gone[k]) continue;  // pushed or tagged meanwhile
          deleted_manifests.insert({repo, batch[k]});
          ++report.manifests_deleted;
          if (!o.dry_run) observer.deleted(GcObserver::Deleted::kManifest, repo, batch[k]);
          observer.log(verb + "untagged manifest " + repo + "@" + batch[k]);
          note("manifest " + repo + "@" + batch[k]);
        }
      }
      observer.progress(++i, repos.size(), "untagged manifests");
    }
    if (!o.dry_run) GcMetrics::get().manifests.inc(report.manifests_deleted);
  }

  // 3. Mark: every manifest left, and what it references.
  observer.progress(0, 1, "mark");
  std::unordered_set<std::string> referenced;
  {
    std::vector<std::pair<std::string, std::string>> left;  // (digest, media type)
    WHARF_RETURN_IF_ERROR(
        meta.forEachManifest([&](const std::string& repo, const std::string& digest, const ManifestRecord& r) {
          if (!deleted_manifests.count({repo, digest})) left.emplace_back(digest, r.media_type);
          return true;
        }));
    std::unordered_set<std::string> expanded;
    for (const auto& [digest, type] : left) {
      if (cancelled()) return Status(Code::kCancelled, "cancelled");
      referenced.insert(digest);
      if (!expanded.insert(digest).second) continue;  // the same manifest in another repository
      auto refs = refsOf(registry_, digest, type);
      if (!refs.isOk()) return refs.status();
      for (auto& r : *refs) referenced.insert(std::move(r));
    }
  }
  observer.progress(1, 1, "mark");

  // 4. Sweep records (then files).
  std::vector<std::pair<std::string, uint64_t>> candidates;
  WHARF_RETURN_IF_ERROR(meta.forEachBlob([&](const std::string& digest, const BlobRecord& b) {
    if (referenced.count(digest) || b.touched_ms >= cutoff) {
      ++report.blobs_kept;
    } else {
      candidates.emplace_back(digest, b.size);
    }
    return true;
  }));
  std::unordered_map<std::string, std::vector<std::string>> links;
  if (!candidates.empty()) {
    std::unordered_set<std::string> wanted;
    for (const auto& [d, size] : candidates) wanted.insert(d);
    WHARF_RETURN_IF_ERROR(meta.forEachLink([&](const std::string& repo, const std::string& digest) {
      if (wanted.count(digest)) links[digest].push_back(repo);
      return true;
    }));
  }
  observer.progress(0, candidates.size(), "sweep");
  // Work items: (candidate, times deferred). A digest whose lock is busy (a push of the
  // same stripe in progress) is retried later instead of waited for; after 3 deferrals
  // it is taken alone, waiting for its one lock.
  std::deque<std::pair<size_t, int>> work;
  for (size_t i = 0; i < candidates.size(); ++i) work.emplace_back(i, 0);
  size_t swept = 0;
  while (!work.empty()) {
    if (cancelled()) return Status(Code::kCancelled, "cancelled");
    std::vector<std::pair<size_t, int>> items;
    if (work.front().second >= 3) {
      items.push_back(work.front());
      work.pop_front();
    } else {
      while (items.size() < kBatch && !work.empty() && work.front().second < 3) {
        items.push_back(work.front());
        work.pop_front();
      }
    }
    std::vector<bool> gone(items.size(), true);
    if (!o.dry_run) {
      auto batch_start = std::chrono::steady_clock::now();
      std::vector<std::string> digests;
      for (const auto& [i, tries] : items) digests.push_back(candidates[i].first);
      // Records, then files, under the batch's content locks: a push of the same content
      // waits, and then stores it anew.
      ContentHold locks;
      if (items.size() == 1 && items[0].second >= 3) {
        auto held = registry_.lockContents(digests);
        if (!held.isOk()) return held.status();
        locks = std::move(held).value();
      } else {
        std::vector<bool> locked;
        auto held = registry_.tryLockContents(digests, &locked);
        if (!held.isOk()) return held.status();
        locks = std::move(held).value();
        std::vector<std::pair<size_t, int>> ready;
        for (size_t k = 0; k < items.size(); ++k) {
          if (locked[k]) {
            ready.push_back(items[k]);
          } else {
            work.emplace_back(items[k].first, items[k].second + 1);
          }
        }
        items = std::move(ready);
        gone.assign(items.size(), true);
        if (items.empty()) continue;
      }
      std::vector<MetadataStore::Collectable> batch;
      for (const auto& [i, tries] : items) batch.push_back({candidates[i].first, links[candidates[i].first]});
      auto collected = meta.collectBlobs(batch, cutoff);
      if (!collected.isOk()) return collected.status();
      gone = std::move(collected).value();
      for (size_t k = 0; k < batch.size(); ++k) {
        auto d = Digest::parse(batch[k].digest);
        if (!gone[k] || !d.isOk()) continue;
        Status st = registry_.blobStore().remove(*d, false);
        if (!st.isOk() && st.code() != Code::kBlobUnknown) {
          observer.log("cannot remove " + batch[k].digest + ": " + st.message() + " (removed at the next run)");
        }
      }
      locks.release();
      pace(o, batch_start);
    }
    for (size_t k = 0; k < items.size(); ++k) {
      const auto& [digest, size] = candidates[items[k].first];
      if (gone[k]) {
        ++report.blobs_deleted;
        if (!o.dry_run) observer.deleted(GcObserver::Deleted::kBlob, "", digest);
        report.bytes_freed += size;
        observer.log(verb + digest + " (" + std::to_string(size) + " bytes)");
        note("blob " + digest);
      } else {
        ++report.blobs_kept;  // wanted again while we ran
      }
    }
    swept += items.size();
    observer.progress(swept, candidates.size(), "sweep");
  }
  observer.progress(candidates.size(), candidates.size(), "sweep");

  // 5. Files without a record, and removals a crash cut short.
  observer.progress(0, 1, "orphan files");
  if (!o.dry_run) {
    auto finished = registry_.blobStore().finishRemovals(cutoff);
    if (!finished.isOk()) {
      observer.log("cannot finish removals cut short: " + finished.status().message());
    } else if (finished->blobs > 0) {
      report.orphan_files_deleted += finished->blobs;
      report.bytes_freed += finished->bytes;
      observer.log("finished " + std::to_string(finished->blobs) + " removals cut short (" +
                   std::to_string(finished->bytes) + " bytes)");
    }
  }
  std::vector<std::pair<Digest, uint64_t>> orphans;
  registry_.blobStore().forEachBlob([&](const Digest& d, uint64_t size, int64_t mtime_ms) {
    if (mtime_ms < cutoff && !meta.blobRecord(d.str()).isOk()) orphans.emplace_back(d, size);
    return !cancelled();
  });
  for (auto [d, size] : orphans) {
    if (cancelled()) return Status(Code::kCancelled, "cancelled");
    // A listing gives an S3 blob stored by reference as its empty name.
    if (auto stored = registry_.blobStore().size(d); stored.isOk()) size = *stored;
    if (!o.dry_run) {
      auto content = registry_.lockContent(d.str());
      if (!content.isOk()) return content.status();
      if (meta.blobRecord(d.str()).isOk()) continue;  // stored meanwhile
      if (!registry_.blobStore().remove(d, false).isOk()) continue;
    }
    ++report.orphan_files_deleted;
    report.bytes_freed += size;
    observer.log(verb + "orphan file " + d.str());
  }
  observer.progress(1, 1, "orphan files");

  report.duration_ms = clock.nowMillis() - started;
  if (!o.dry_run) {
    GcMetrics::get().blobs.inc(report.blobs_deleted + report.orphan_files_deleted);
    GcMetrics::get().bytes.inc(report.bytes_freed);
  }
  logInfo(o.dry_run ? "garbage collection dry run" : "garbage collection",
          {{"tags_expired", report.tags_expired},
           {"manifests_deleted", report.manifests_deleted},
           {"blobs_deleted", report.blobs_deleted},
           {"orphan_files_deleted", report.orphan_files_deleted},
           {"bytes_freed", report.bytes_freed},
           {"duration_ms", report.duration_ms}});
  return report;
}

Result<StorageUsage> storageUsage(Registry& registry, const std::string& scope) {
  MetadataStore& meta = registry.metadata();
  StorageUsage usage;
  std::set<std::string> repos;
  std::vector<std::pair<std::string, std::string>> manifests;  // (digest, media type)
  WHARF_RETURN_IF_ERROR(
      meta.forEachManifest([&](const std::string& repo, const std::string& digest, const ManifestRecord& r) {
        if (scope == "*" || scopeCovers(scope, repo)) {
          repos.insert(repo);
          manifests.emplace_back(digest, r.media_type);
        }
        return true;
      }));
  std::unordered_set<std::string> counted;
  auto count = [&](const std::string& digest) {
    if (!counted.insert(digest).second) return;
    auto rec = meta.blobRecord(digest);
    if (rec.isOk()) {
      usage.bytes += rec->size;
      ++usage.blobs;
    }
  };
  std::unordered_set<std::string> seen_manifests;
  for (const auto& [digest, type] : manifests) {
    if (!seen_manifests.insert(digest).second) continue;  // the same image in several repositories
    ++usage.manifests;
    count(digest);
    auto refs = refsOf(registry, digest, type);
    if (!refs.isOk()) return refs.status();
    for (const auto& r : *refs) count(r);
  }
  usage.repositories = repos.size();
  return usage;
}

}  // namespace wharf
