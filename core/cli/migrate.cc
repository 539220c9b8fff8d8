// wharfctl migrate: moves an embedded installation (LMDB and files in a data directory)
// to the scale-out one (PostgreSQL, and S3 or a shared directory), reading and writing
// the stores directly through their interfaces:
//
//   wharfctl migrate --from DATA_DIR --to postgres://... --blobs s3://...|file:///... [--dry-run]
//
// Blobs first, each streamed through an upload of the destination store, which checks
// the digest before the blob becomes visible under it; then the registry's index in the
// order a push writes it (links, manifests with their children before them, tags) and
// the policies; then users and access, trust data (every version of every role, and the
// server's sealed keys), settings and token keys, the audit log, jobs, webhooks with the
// event log, scan results, and the edges' usage. Everything written is written as a push would write
// it, so a run cut short is re-run: what the destination has already is found and left
// alone.
#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include <unistd.h>

#include "core/auth/key_ring.h"
#include "core/auth/lmdb_identity_store.h"
#include "core/auth/pg_identity_store.h"
#include "core/cli/cli.h"
#include "core/events/event_store.h"
#include "core/events/webhooks.h"
#include "core/fleet/lmdb_usage_store.h"
#include "core/fleet/pg_usage_store.h"
#include "core/jobs/job_store.h"
#include "core/metadata/lmdb_metadata_store.h"
#include "core/metadata/pg_metadata_store.h"
#include "core/scan/lmdb_scan_store.h"
#include "core/scan/pg_scan_store.h"
#include "core/trust/lmdb_trust_store.h"
#include "core/trust/pg_trust_store.h"
#include "shared/auth/revocation.h"
#include "shared/base/clock.h"
#include "shared/base/fs.h"
#include "shared/base/ids.h"
#include "shared/oci/digest.h"
#include "shared/store/blob_store.h"
#include "shared/store/pg.h"
#include "shared/store/shared_document.h"
#include "shared/store/s3_client.h"
#include "shared/tls/crypto.h"

namespace wharf::cli {

const char* kMigrateHelp = R"(Usage: wharfctl migrate --from DATA_DIR --to postgres://USER:PASSWORD@HOST/DB
                        --blobs s3://BUCKET/PREFIX?endpoint=...|file:///PATH
                        [--trust-key-file FILE] [--dry-run]

Moves an embedded installation (wharf-core's data directory: meta.lmdb and the blob
files) to a scale-out one: the registry's index to PostgreSQL, the blobs to S3 (or a
shared directory). Stop the core that uses DATA_DIR first. Each blob is streamed to the
destination and its digest checked before it is stored under it; the index is written
as pushes write it (links, manifests, tags), then the repository policies, then users
and access (users with their password hashes, organizations with their members and
teams, repository settings and grants, access tokens, edges), the trust server's data
(every version of every role's metadata, and its keys as they are sealed), the settings
(the LDAP directory's), the token signing keys and revocations (tokens issued by the
old core stay valid, revoked ones revoked), the audit log, the jobs with their logs and
the schedules, the webhooks (their secrets sealed again) with the event log, their
cursors and delivery logs, and the scanner's results, state and vulnerability
database, and the edges' status, report counters and bandwidth history. Audit entries,
jobs and events keep their numbers: followers and webhooks go on where they were.
A run cut short is simply run again: what the destination already has is left as it
is (accounts, grants, settings and webhooks are written again as the source has them).
Move into a database no core has used: a log or job numbered the same there as
another at the source is not moved (said on stderr; the exit status is then 1).
The sealing key is DATA_DIR/trust.key unless --trust-key-file says otherwise: every
replica must run with --trust-key-file naming a copy of it (the trust server's keys
and the token signing keys are sealed with it).
--dry-run counts what would be moved. S3 credentials as wharf-core takes them
(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or credentials_file in the URL).

Not moved: team descriptions (no API shows them).
)";

namespace {

std::unique_ptr<BlobStore> openBlobs(const std::string& url) {
  Result<std::unique_ptr<BlobStore>> store = Status(Code::kInternal, "no blob store");
  if (url.rfind("s3://", 0) == 0) {
    auto location = parseS3Url(url, [](const char* name) { return std::getenv(name); });
    if (!location.isOk()) die("--blobs: " + location.status().message(), 2);
    store = openS3BlobStore(*location);
  } else if (url.rfind("file:///", 0) == 0) {
    store = openFsBlobStore(url.substr(std::string("file://").size()));
  } else {
    die("--blobs: expected s3://bucket/prefix?... or file:///path", 2);
  }
  if (!store.isOk()) die("--blobs: " + store.status().message());
  return std::move(store).value();
}

// Copies one blob through an upload of the destination; the digest is checked before
// it is stored under it.
Status copyBlob(BlobStore& from, BlobStore& to, const Digest& d, uint64_t size) {
  std::string id = "migrate-" + hexEncode(randomBytes(8));
  WHARF_RETURN_IF_ERROR(to.createUpload(id));
  to.announceAppend(id, 0, size);  // S3: one streamed PUT, no multipart upload
  std::string buf(8u << 20, '\0');
  uint64_t off = 0;
  Status st;
  while (st.isOk() && off < size) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - off));
    st = from.read(d, off, buf.data(), n);
    if (st.isOk()) st = to.append(id, off, std::string_view(buf.data(), n));
    off += n;
  }
  if (st.isOk()) st = to.flushUpload(id);
  if (st.isOk()) {
    auto committed = to.commitUpload(id, d, nullptr);
    if (committed.isOk()) return Status::ok();
    st = committed.status();
  }
  (void)to.removeUpload(id);
  return st;
}

bool pathExists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// What a part could not move because the destination holds data of that kind of its
// own (a core ran on it first): said on stderr, the rest goes on, and the run ends with
// status 1. The source keeps everything.
struct Moving {
  bool dry = false;
  int refused = 0;
  void refuse(const std::string& what, const Status& why) {
    std::fprintf(stderr, "wharfctl: %s not moved: %s (move into a database no core has used yet)\n", what.c_str(),
                 why.message().c_str());
    ++refused;
  }
  const char* done() const { return dry ? "to write" : "written"; }
};

// Runs step unless dry; a conflict refuses `what`, another error stops the run.
bool apply(Moving& m, const std::string& what, const std::function<Status()>& step) {
  if (m.dry) return true;
  Status s = step();
  if (s.isOk()) return true;
  if (s.code() != Code::kConflict) die(what + ": " + s.message() + " (run again to go on)");
  m.refuse(what, s);
  return false;
}

// The key-value settings (the LDAP directory's configuration), the token signing keys
// (tokens issued before keep working) and the revocations that go with them.
void moveSettingsAndKeys(IdentityStore& from, IdentityStore& to, const std::string& data_dir,
                         const std::shared_ptr<LmdbEnv>& env, const std::shared_ptr<PgPool>& pool,
                         const std::string& sealing_key, Moving& m) {
  auto settings = from.settings();
  for (const auto& [key, value] : settings) apply(m, "setting " + key, [&, &key = key, &value = value] {
    return to.putSetting(key, value);
  });
  // Both rings' keys, oldest first: the newest signs, every one verifies until retired.
  size_t nkeys = 0;
  std::string key_file = data_dir + "/auth/keys.json";
  if (pathExists(key_file)) {
    auto src = openFileDocument(key_file);
    if (!src.isOk()) die("--from: " + src.status().message());
    auto ring = (*src)->read();
    if (!ring.isOk() || !*ring) die("--from: " + key_file + ": cannot read the token signing keys");
    auto theirs = nlohmann::json::parse(**ring, nullptr, false);
    if (!theirs.is_object() || !theirs.contains("keys") || !theirs["keys"].is_array()) {
      die("--from: " + key_file + " is not a key ring");
    }
    nkeys = theirs["keys"].size();
    auto dst = openPgDocument(pool, "token_keys", sealing_key);
    if (!dst.isOk()) die("--to: " + dst.status().message());
    apply(m, "the token signing keys", [&]() -> Status {
      return (*dst)->update([&](const std::optional<std::string>& current) -> Result<std::string> {
        nlohmann::json keys = theirs["keys"];
        if (current) {
          auto ours = nlohmann::json::parse(*current, nullptr, false);
          if (!ours.is_object() || !ours.contains("keys") || !ours["keys"].is_array()) {
            return Status(Code::kCorruption, "token_keys is not a key ring");
          }
          for (const auto& k : ours["keys"])
            if (std::none_of(keys.begin(), keys.end(),
                             [&](const nlohmann::json& t) { return t.value("kid", "") == k.value("kid", ""); }))
              keys.push_back(k);
        }
        std::stable_sort(keys.begin(), keys.end(), [](const nlohmann::json& x, const nlohmann::json& y) {
          return x.value("created", int64_t{0}) < y.value("created", int64_t{0});
        });
        return nlohmann::json{{"keys", keys}}.dump(2);
      }).status();
    });
  }
  // Tokens revoked at the source stay revoked: both lists' entries, under a version
  // above both (edges take the list again).
  size_t nrevoked = 0;
  auto src_revoked = openLmdbDocument(env, "revocations", "list");
  if (!src_revoked.isOk()) die("--from: " + src_revoked.status().message());
  auto revoked = (*src_revoked)->read();
  if (!revoked.isOk()) die("--from: revocations: " + revoked.status().message());
  if (*revoked) {
    auto theirs = RevocationList::fromJson(nlohmann::json::parse(**revoked, nullptr, false));
    if (!theirs.isOk()) die("--from: revocations: " + theirs.status().message());
    nrevoked = theirs->entries.size();
    auto dst = openPgDocument(pool, "revocations");
    if (!dst.isOk()) die("--to: " + dst.status().message());
    apply(m, "the token revocations", [&]() -> Status {
      return (*dst)->update([&](const std::optional<std::string>& current) -> Result<std::string> {
        RevocationList merged = *theirs;
        if (current) {
          auto ours = RevocationList::fromJson(nlohmann::json::parse(*current, nullptr, false));
          if (!ours.isOk()) return ours.status();
          for (const auto& e : ours->entries) {
            bool known = std::any_of(merged.entries.begin(), merged.entries.end(), [&](const Revocation& x) {
              return x.kind == e.kind && x.value == e.value && x.before_s == e.before_s;
            });
            if (!known) merged.entries.push_back(e);
          }
          merged.version = std::max(merged.version, ours->version) + 1;
        }
        return merged.toJson().dump();
      }).status();
    });
  }
  std::printf("settings: %zu settings, %zu token signing keys, %zu revocations %s\n", settings.size(), nkeys, nrevoked,
              m.done());
}

void moveAuditLog(IdentityStore& from, IdentityStore& to, Moving& m) {
  AuditQuery q;
  q.limit = 1000;
  size_t n = 0;
  for (;;) {
    auto page = from.queryAudit(q);
    if (page.empty()) break;
    if (!apply(m, "the audit log", [&] { return to.importAudit(page); })) return;
    n += page.size();
    q.after_seq = page.back().seq;
  }
  std::printf("audit log: %zu entries %s\n", n, m.done());
}

// Jobs with their logs and ids, and the schedules.
void moveJobs(JobStore& from, JobStore& to, Moving& m) {
  size_t n = 0, lines = 0;
  for (std::string before;;) {
    std::string next;
    auto page = from.list(JobFilter{}, 500, before, &next);
    for (const auto& job : page) {
      std::vector<JobLogLine> log;
      for (uint64_t after = 0;;) {
        auto more = from.logs(job.id, after, 10000);
        if (more.empty()) break;
        after = more.back().seq;
        log.insert(log.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
      }
      if (!apply(m, "job " + job.id, [&] { return to.importJob(job, log); })) return;
      ++n;
      lines += log.size();
    }
    if (next.empty()) break;
    before = next;
  }
  auto schedules = from.schedules();
  for (const auto& s : schedules) apply(m, "schedule " + s.name, [&] { return to.putSchedule(s); });
  std::printf("jobs: %zu jobs (%zu log lines), %zu schedules %s\n", n, lines, schedules.size(), m.done());
}

// The event log (its sequence numbers kept, so followers and webhooks go on where they
// were), then the webhooks' cursors and delivery logs.
void moveEvents(EventStore& from, EventStore& to, WebhookStore& from_hooks, WebhookStore& to_hooks,
                const std::vector<Webhook>& hooks, Moving& m) {
  size_t n = 0;
  bool moved = true;
  for (uint64_t since = 0;;) {
    std::vector<Event> page;
    Status st = from.scan(since, 1000, [&](Event e) {
      page.push_back(std::move(e));
      return true;
    });
    if (!st.isOk()) die("--from: events: " + st.message());
    if (page.empty()) break;
    if (!apply(m, "the event log", [&] { return to.import(from.instanceId(), page); })) {
      moved = false;
      break;
    }
    n += page.size();
    since = page.back().seq;
  }
  std::printf("events: %zu events %s\n", n, m.done());
  size_t records = 0;
  for (const auto& h : hooks) {
    // Where each hook was in the log: only worth moving with the log itself.
    if (moved) apply(m, "webhook " + h.id + "'s cursor", [&] { return to_hooks.setCursor(h.id, from_hooks.cursor(h.id)); });
    std::set<std::string> there;
    if (!m.dry)
      for (const auto& d : to_hooks.deliveries(h.id, 100000)) there.insert(d.toJson().dump());
    auto log = from_hooks.deliveries(h.id, 100000);
    for (auto d = log.rbegin(); d != log.rend(); ++d) {  // oldest first
      if (there.count(d->toJson().dump())) continue;
      ++records;
      apply(m, "webhook " + h.id + "'s deliveries", [&] { return to_hooks.addDelivery(*d); });
    }
  }
  std::printf("webhook deliveries: %zu records %s\n", records, m.done());
}

// Layer and image results (images are not scanned again), the scanner's state and the
// vulnerability database, which the destination takes as a new generation when it does
// not have the same one.
void moveScans(ScanStore& from, ScanStore& to, Moving& m) {
  size_t counts[2] = {0, 0};
  for (auto kind : {ScanStore::Results::kLayers, ScanStore::Results::kImages}) {
    bool layers = kind == ScanStore::Results::kLayers;
    for (std::string after;;) {
      auto page = from.digests(kind, after, 500);
      if (!page.isOk()) die("--from: scan results: " + page.status().message());
      if (page->empty()) break;
      for (const auto& d : *page) {
        auto doc = layers ? from.layer(d) : from.image(d);
        if (!doc.isOk()) die("--from: the scan result of " + d + ": " + doc.status().message());
        apply(m, "the scan result of " + d, [&] { return layers ? to.putLayer(d, *doc) : to.putImage(d, *doc); });
        ++counts[layers ? 0 : 1];
      }
      after = page->back();
    }
  }
  auto keys = from.stateKeys();
  for (const auto& k : keys) apply(m, "scanner state " + k, [&] { return to.setState(k, from.state(k)); });
  size_t advisories = 0;
  nlohmann::json meta = from.dbMeta();
  bool have = from.dbGeneration() != 0;
  bool already = have && to.dbGeneration() != 0 && to.dbMeta() == meta;
  if (have && !already) {
    auto generation = m.dry ? Result<uint64_t>(0) : to.beginGeneration();
    if (!generation.isOk()) die("--to: vulnerability database: " + generation.status().message());
    std::vector<std::pair<std::string, std::string>> batch;
    auto flush = [&]() -> Status {
      if (!m.dry && !batch.empty()) WHARF_RETURN_IF_ERROR(to.addAdvisories(*generation, batch));
      advisories += batch.size();
      batch.clear();
      return Status::ok();
    };
    Status st = from.forEachAdvisory([&](std::string_view id, std::string_view osv) {
      batch.emplace_back(id, osv);
      return batch.size() >= 1000 ? flush() : Status::ok();
    });
    if (st.isOk()) st = flush();
    if (st.isOk() && !m.dry) st = to.commitGeneration(*generation, meta);
    if (!st.isOk()) die("vulnerability database: " + st.message() + " (run again to go on)");
  }
  std::string database = !have ? "none" : already ? "already there" : std::to_string(advisories) + " advisories " + m.done();
  std::printf("scans: %zu layer results, %zu image results, %zu state keys, vulnerability database: %s\n", counts[0],
              counts[1], keys.size(), database.c_str());
}

// The edges' status, counter state and bandwidth history, whole, in one transaction.
void moveUsage(UsageStore& from, UsageStore& to, Moving& m) {
  auto snapshot = from.snapshot();
  if (!snapshot.isOk()) die("--from: usage: " + snapshot.status().message());
  std::vector<EdgeStatus> theirs;
  for (const auto& e : snapshot->edges) theirs.push_back(e.status);
  const char* outcome = m.done();
  if (!m.dry) {
    auto ours = to.statuses();
    if (!ours.empty() && ours == theirs) {
      outcome = "already there";
    } else if (!apply(m, "the edges' usage", [&] { return to.restore(*snapshot); })) {
      return;
    }
  }
  std::printf("usage: %zu edges, %zu series rows %s\n", snapshot->edges.size(), snapshot->rows.size(), outcome);
}

}  // namespace

int migrate(const Args& a) {
  std::string from = a.get("from"), to = a.get("to"), blobs_url = a.get("blobs");
  if (from.empty() || to.empty() || blobs_url.empty()) die("--from, --to and --blobs are required (see --help)", 2);
  bool dry = a.has("dry-run");
  LmdbMetadataOptions options;
  options.durable = false;  // read only here
  auto env = openMetadataEnv(from + "/meta.lmdb", options);
  if (!env.isOk()) die("--from: " + env.status().message());
  auto source = openLmdbMetadataStore(*env);
  if (!source.isOk()) die("--from: " + source.status().message());
  auto source_blobs = openFsBlobStore(from);
  if (!source_blobs.isOk()) die("--from: " + source_blobs.status().message());
  auto pool = PgPool::open(to, 4);
  if (!pool.isOk()) die("--to: " + pool.status().message());
  auto dest = openPgMetadataStore(std::shared_ptr<PgPool>(std::move(pool).value()));
  if (!dest.isOk()) die("--to: " + dest.status().message());
  auto dest_blobs = openBlobs(blobs_url);
  MetadataStore& src = **source;
  MetadataStore& dst = **dest;
  int64_t now = RealClock::instance().nowMillis();

  // --- blobs ---
  std::vector<std::pair<std::string, uint64_t>> blobs;
  Status st = src.forEachBlob([&](const std::string& digest, const BlobRecord& r) {
    blobs.emplace_back(digest, r.size);
    return true;
  });
  if (!st.isOk()) die("reading the blobs: " + st.message());
  uint64_t total = 0;
  for (const auto& b : blobs) total += b.second;
  std::printf("blobs: %zu (%s) in %s\n", blobs.size(), humanSize(total).c_str(), from.c_str());
  size_t copied = 0, present = 0, missing = 0, n = 0;
  uint64_t copied_bytes = 0;
  int64_t last_report = monotonicMillis();
  for (const auto& [digest, size] : blobs) {
    ++n;
    auto d = Digest::parse(digest);
    if (!d.isOk()) die("a stored blob has a bad digest: " + digest);
    auto there = dest_blobs->size(*d);
    if (there.isOk() && *there == size) {
      ++present;
      continue;
    }
    auto here = (*source_blobs)->size(*d);
    if (!here.isOk()) {
      // Recorded but not on disk (a damaged installation): reported, the rest goes on.
      std::fprintf(stderr, "wharfctl: %s is recorded but its file is missing: not moved\n", digest.c_str());
      ++missing;
      continue;
    }
    if (!dry) {
      Status c = copyBlob(**source_blobs, *dest_blobs, *d, *here);
      if (!c.isOk()) die("copying " + digest + ": " + c.message() + " (run again to go on)");
    }
    ++copied;
    copied_bytes += *here;
    if (monotonicMillis() - last_report >= 2000) {
      last_report = monotonicMillis();
      std::printf("  %zu/%zu blobs, %s %s\n", n, blobs.size(), humanSize(copied_bytes).c_str(),
                  dry ? "to copy" : "copied");
      std::fflush(stdout);
    }
  }
  std::printf("blobs: %zu %s (%s), %zu already there%s\n", copied, dry ? "to copy" : "copied, digests checked",
              humanSize(copied_bytes).c_str(), present,
              missing > 0 ? (", " + std::to_string(missing) + " missing from " + from).c_str() : "");

  // --- the index ---
  std::map<std::string, std::vector<std::string>> links;  // repo -> digests
  st = src.forEachLink([&](const std::string& repo, const std::string& digest) {
    links[repo].push_back(digest);
    return true;
  });
  if (!st.isOk()) die("reading the links: " + st.message());
  struct Manifest {
    std::string digest;
    ManifestRecord record;
    std::vector<std::string> refs;  // config, layers, index children
  };
  std::map<std::string, std::vector<Manifest>> manifests;  // repo -> manifests
  st = src.forEachManifest([&](const std::string& repo, const std::string& digest, const ManifestRecord& r) {
    manifests[repo].push_back({digest, r, {}});
    return true;
  });
  for (auto& [repo, ms] : manifests)
    for (auto& m : ms) m.refs = src.manifestRefs(m.digest).value_or(std::vector<std::string>());
  if (!st.isOk()) die("reading the manifests: " + st.message());
  std::set<std::string> repos;
  for (std::string last;;) {
    auto page = src.repositories(last, 1000);
    for (const auto& r : page.items) repos.insert(r);
    if (page.items.size() < 1000) break;
    last = page.items.back();
  }
  size_t nlinks = 0, nmanifests = 0, ntags = 0;
  for (const auto& [repo, ds] : links) nlinks += ds.size();
  for (const auto& [repo, ms] : manifests) nmanifests += ms.size();
  std::printf("index: %zu repositories, %zu links, %zu manifests\n", repos.size(), nlinks, nmanifests);
  std::set<std::string> blob_set;
  for (const auto& b : blobs) blob_set.insert(b.first);
  for (const auto& repo : repos) {
    if (!dry) {
      if (Status s = dst.createRepository(repo, now); !s.isOk()) die(repo + ": " + s.message());
    }
    for (const auto& digest : links[repo]) {
      auto size = src.blobSize(digest);
      if (!size.isOk() || dry) continue;
      if (Status s = dst.commitBlob(repo, digest, *size, "", now); !s.isOk()) die(repo + "@" + digest + ": " + s.message());
    }
    // Manifests whose children are in place first (an index after its manifests).
    std::set<std::string> in_repo, done;
    for (const auto& m : manifests[repo]) in_repo.insert(m.digest);
    auto write = [&](const Manifest& m, std::optional<std::string> tag) -> Status {
      ManifestWrite w;
      w.repository = repo;
      w.digest = m.digest;
      w.record = m.record;
      w.tag = std::move(tag);
      for (const auto& ref : m.refs) (in_repo.count(ref) ? w.manifests : w.blobs).push_back(ref);
      if (!m.record.subject.empty()) {
        for (const auto& d : src.referrers(repo, m.record.subject))
          if (d.value("digest", "") == m.digest) w.referrer_descriptor = d;
      }
      return dry ? Status::ok() : dst.putManifest(w, m.record.pushed_ms > 0 ? m.record.pushed_ms : now);
    };
    std::vector<Manifest> pending = manifests[repo];
    while (!pending.empty()) {
      std::vector<Manifest> later;
      for (const auto& m : pending) {
        bool ready = std::all_of(m.refs.begin(), m.refs.end(),
                                 [&](const std::string& r) { return !in_repo.count(r) || done.count(r) || r == m.digest; });
        if (!ready) {
          later.push_back(m);
          continue;
        }
        if (Status s = write(m, std::nullopt); !s.isOk()) die(repo + "@" + m.digest + ": " + s.message());
        done.insert(m.digest);
      }
      if (later.size() == pending.size()) die(repo + ": manifests that refer to each other in a cycle");
      pending = std::move(later);
    }
    auto tags = src.tagRecords(repo);
    if (!tags.isOk()) die(repo + ": reading the tags: " + tags.status().message());
    std::map<std::string, const Manifest*> by_digest;
    for (const auto& m : manifests[repo]) by_digest[m.digest] = &m;
    for (const auto& t : *tags) {
      auto m = by_digest.find(t.digest);
      if (m == by_digest.end()) continue;
      if (Status s = write(*m->second, t.tag); !s.isOk()) die(repo + ":" + t.tag + ": " + s.message());
      ++ntags;
    }
  }
  auto policies = src.policies();
  for (const auto& p : policies) {
    if (dry) continue;
    if (Status s = dst.setPolicy(p); !s.isOk()) die("policy " + p.scope + ": " + s.message());
  }
  std::printf("index: %zu repositories, %zu links, %zu manifests, %zu tags, %zu policies %s\n", repos.size(), nlinks,
              nmanifests, ntags, policies.size(), dry ? "to write" : "written");

  // --- users and access ---
  auto src_id = openLmdbIdentityStore(*env);
  if (!src_id.isOk()) die("--from: " + src_id.status().message());
  auto id_pool = PgPool::open(to, 2);
  if (!id_pool.isOk()) die("--to: " + id_pool.status().message());
  auto dst_id = openPgIdentityStore(std::shared_ptr<PgPool>(std::move(id_pool).value()));
  if (!dst_id.isOk()) die("--to: " + dst_id.status().message());
  IdentityStore& from_id = **src_id;
  IdentityStore& to_id = **dst_id;
  auto check = [&](const std::string& what, const Status& s) {
    // Already there (a second run): kept; anything else stops the run.
    if (!s.isOk() && s.code() != Code::kConflict) die(what + ": " + s.message() + " (run again to go on)");
  };
  std::vector<User> users;
  for (std::string after;;) {
    auto page = from_id.users(after, 1000);
    users.insert(users.end(), page.begin(), page.end());
    if (page.size() < 1000) break;
    after = page.back().name;
  }
  std::vector<std::string> orgs;
  for (std::string after;;) {
    auto page = from_id.orgs(after, 1000);
    orgs.insert(orgs.end(), page.begin(), page.end());
    if (page.size() < 1000) break;
    after = page.back();
  }
  size_t ntokens = 0, nteams = 0, ngrants = 0;
  for (const auto& u : users) {
    if (!dry) check("user " + u.name, to_id.putUser(u));
    for (const auto& t : from_id.accessTokens(u.name)) {
      ++ntokens;
      if (!dry) check("access token " + t.id, to_id.putAccessToken(t));
    }
  }
  for (const auto& org : orgs) {
    auto members = from_id.orgMembers(org);
    if (!dry) {
      check("organization " + org, to_id.createOrg(org, ""));
      for (const auto& [user, role] : members) check(org + " member " + user, to_id.setOrgMember(org, user, role));
    }
    for (const auto& team : from_id.teams(org)) {
      ++nteams;
      if (dry) continue;
      check("team " + org + "/" + team, to_id.createTeam(org, team, ""));
      for (const auto& user : from_id.teamMembers(org, team))
        check("team " + org + "/" + team + " member " + user, to_id.addTeamMember(org, team, user));
    }
  }
  for (const auto& repo : repos) {
    if (auto settings = from_id.repoSettings(repo); settings && !dry) {
      check(repo + " settings", to_id.putRepoSettings(repo, *settings));
    }
    for (const auto& g : from_id.grants(repo)) {
      ++ngrants;
      if (!dry) check(repo + " grant to " + g.principal, to_id.setGrant(repo, g));
    }
  }
  auto edges = from_id.edges();
  for (const auto& e : edges) {
    if (!dry) check("edge " + e.name, to_id.createEdge(e));
  }
  std::printf("access: %zu users, %zu access tokens, %zu organizations, %zu teams, %zu grants, %zu edges %s\n",
              users.size(), ntokens, orgs.size(), nteams, ngrants, edges.size(), dry ? "to write" : "written");

  // --- trust data and webhooks ---
  std::string key_path = a.get("trust-key-file");
  if (key_path.empty()) key_path = from + "/trust.key";
  std::string sealing_key;
  if (Status s = readFile(key_path, &sealing_key); !s.isOk() || sealing_key.size() != 32) {
    die("the sealing key " + key_path + " is missing or not 32 bytes (--trust-key-file)");
  }
  auto src_trust = LmdbTrustStore::open(*env);
  if (!src_trust.isOk()) die("--from: " + src_trust.status().message());
  auto trust_pool = PgPool::open(to, 2);
  if (!trust_pool.isOk()) die("--to: " + trust_pool.status().message());
  auto dst_trust = openPgTrustStore(std::shared_ptr<PgPool>(std::move(trust_pool).value()));
  if (!dst_trust.isOk()) die("--to: " + dst_trust.status().message());
  auto guns = (*src_trust)->guns();
  if (!guns.isOk()) die("--from: trust: " + guns.status().message());
  size_t nfiles = 0, nkeys = 0;
  for (const auto& gun : *guns) {
    auto current = (*src_trust)->currentAll(gun);
    if (!current.isOk()) die("--from: trust " + gun + ": " + current.status().message());
    // Every version of every role, oldest first (clients fetch older ones by checksum).
    for (const auto& latest : *current) {
      for (int64_t v = 1; v <= latest.version; ++v) {
        auto f = (*src_trust)->byVersion(gun, latest.role, v);
        if (!f.isOk()) continue;  // a version the source never had
        ++nfiles;
        if (!dry) check("trust " + gun + " " + f->role + " v" + std::to_string(v), (*dst_trust)->update(gun, {*f}, f->stored_ms));
      }
    }
    for (const char* role : {"timestamp", "snapshot"}) {
      auto sealed = (*src_trust)->serverKey(gun, role);
      if (!sealed.isOk()) continue;
      ++nkeys;
      if (!dry) check("trust " + gun + " " + role + " key", (*dst_trust)->putServerKey(gun, role, *sealed));
    }
  }
  std::printf("trust: %zu repositories, %zu metadata files, %zu server keys %s\n", guns->size(), nfiles, nkeys,
              dry ? "to write" : "written");

  // --- settings, the logs, jobs, webhooks, scans ---
  Moving moving;
  moving.dry = dry;
  auto shared_pool = PgPool::open(to, 2);
  if (!shared_pool.isOk()) die("--to: " + shared_pool.status().message());
  std::shared_ptr<PgPool> pg = std::move(shared_pool).value();
  moveSettingsAndKeys(from_id, to_id, from, *env, pg, sealing_key, moving);
  moveAuditLog(from_id, to_id, moving);
  auto src_jobs = openLmdbJobStore(*env);
  if (!src_jobs.isOk()) die("--from: jobs: " + src_jobs.status().message());
  auto dst_jobs = openPgJobStore(pg);
  if (!dst_jobs.isOk()) die("--to: jobs: " + dst_jobs.status().message());
  moveJobs(**src_jobs, **dst_jobs, moving);

  LmdbEnv::Options events_options;
  events_options.durable = false;
  auto events_env = LmdbEnv::open(from + "/events.lmdb", events_options);
  if (!events_env.isOk()) die("--from: " + events_env.status().message());
  std::shared_ptr<LmdbEnv> events_shared = std::move(events_env).value();
  auto src_hooks = openLmdbWebhookStore(events_shared);
  if (!src_hooks.isOk()) die("--from: webhooks: " + src_hooks.status().message());
  auto dst_hooks = openPgWebhookStore(pg, sealing_key);
  if (!dst_hooks.isOk()) die("--to: webhooks: " + dst_hooks.status().message());
  auto hooks = (*src_hooks)->list();
  for (const auto& h : hooks) {
    if (!dry) check("webhook " + h.id, (*dst_hooks)->put(h));
  }
  std::printf("webhooks: %zu %s; sealing key %s (every replica needs --trust-key-file with a copy of it)\n",
              hooks.size(), dry ? "to write" : "written", key_path.c_str());
  auto src_events = openLmdbEventStore(events_shared);
  if (!src_events.isOk()) die("--from: events: " + src_events.status().message());
  auto dst_events = openPgEventStore(pg);
  if (!dst_events.isOk()) die("--to: events: " + dst_events.status().message());
  moveEvents(**src_events, **dst_events, **src_hooks, **dst_hooks, hooks, moving);

  if (pathExists(from + "/scan.lmdb")) {
    LmdbEnv::Options scan_options;
    scan_options.durable = false;
    auto scan_env = LmdbEnv::open(from + "/scan.lmdb", scan_options);
    if (!scan_env.isOk()) die("--from: " + scan_env.status().message());
    auto src_scans = LmdbScanStore::open(std::move(scan_env).value());
    if (!src_scans.isOk()) die("--from: scans: " + src_scans.status().message());
    auto dst_scans = openPgScanStore(pg);
    if (!dst_scans.isOk()) die("--to: scans: " + dst_scans.status().message());
    moveScans(**src_scans, **dst_scans, moving);
  }
  if (pathExists(from + "/usage.lmdb")) {
    LmdbEnv::Options usage_options;
    usage_options.durable = false;
    auto usage_env = LmdbEnv::open(from + "/usage.lmdb", usage_options);
    if (!usage_env.isOk()) die("--from: " + usage_env.status().message());
    // The retention of the destination's cores applies when they prune.
    LmdbUsageOptions keep_all;
    keep_all.hourly_retention_ms = keep_all.daily_retention_ms = INT64_MAX / 4;
    auto src_usage = LmdbUsageStore::open(std::move(usage_env).value(), RealClock::instance(), keep_all);
    if (!src_usage.isOk()) die("--from: usage: " + src_usage.status().message());
    auto dst_usage = openPgUsageStore(pg, RealClock::instance(), keep_all);
    if (!dst_usage.isOk()) die("--to: usage: " + dst_usage.status().message());
    moveUsage(**src_usage, **dst_usage, moving);
  }
  if (moving.refused > 0) return 1;
  return missing > 0 ? 1 : 0;
}

}  // namespace wharf::cli
