#include "core/metadata/pg_metadata_store.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_map>

#include "core/metadata/policy.h"
#include "core/metadata/pg_schema.h"
#include "shared/base/ids.h"
#include "shared/base/log.h"
#include "shared/tls/crypto.h"

namespace wharf {

namespace {

std::string num(int64_t v) { return std::to_string(v); }

ManifestRecord manifestOf(const PgResult& r, int row, int col) {
  ManifestRecord m;
  m.media_type = std::string(r.text(row, col));
  m.size = static_cast<uint64_t>(r.integer(row, col + 1));
  m.subject = std::string(r.text(row, col + 2));
  m.artifact_type = std::string(r.text(row, col + 3));
  m.created_ms = r.integer(row, col + 4);
  m.pushed_ms = r.integer(row, col + 5);
  return m;
}
constexpr const char* kManifestColumns = "media_type, size, subject, artifact_type, created_ms, pushed_ms";

BlobRecord blobOf(const PgResult& r, int row, int col) {
  BlobRecord b;
  b.size = static_cast<uint64_t>(r.integer(row, col));
  b.created_ms = r.integer(row, col + 1);
  b.touched_ms = r.integer(row, col + 2);
  return b;
}

UploadRecord uploadOf(const PgResult& r, int row, int col) {
  UploadRecord u;
  u.repository = std::string(r.text(row, col));
  u.started_ms = r.integer(row, col + 1);
  u.owner = std::string(r.text(row, col + 2));
  return u;
}

// What this core read of tags and manifest records, per repository: a manifest GET by
// tag asks PostgreSQL nothing once both are here. A repository's entries go when a write
// to it commits on this core (before the write returns) or a notification says one
// committed on another (the write sends it in its transaction: delivered at commit).
// The cache is used only while the notification connection is up: a change made while
// it was down would go unheard, so it starts empty at each (re)connection.
//
// A reader takes a ticket before it asks PostgreSQL and keeps the answer only if no
// invalidation of the repository came in between (its answer may predate the write).
class ReadCache {
 public:
  static constexpr size_t kMaxEntries = 500'000;  // then everything goes (and refills)
  struct Ticket {
    uint64_t epoch = 0, gen = 0;
  };

  bool enabled() const { return enabled_.load(std::memory_order_acquire); }
  Ticket ticket(const std::string& repo) {
    std::lock_guard lock(mu_);
    auto it = repos_.find(repo);
    return Ticket{epoch_, it == repos_.end() ? 0 : it->second.gen};
  }
  std::optional<std::string> tag(const std::string& repo, const std::string& tag) {
    return lookup(repo, &Repo::tags, tag);
  }
  std::optional<ManifestRecord> manifest(const std::string& repo, const std::string& digest) {
    return lookup(repo, &Repo::manifests, digest);
  }
  void putTag(const std::string& repo, const std::string& tag, const std::string& digest, Ticket t) {
    put(repo, t, [&](Repo& r) { return r.tags.insert_or_assign(tag, digest).second; });
  }
  void putManifest(const std::string& repo, const std::string& digest, const ManifestRecord& m, Ticket t) {
    put(repo, t, [&](Repo& r) { return r.manifests.insert_or_assign(digest, m).second; });
  }
  void invalidate(const std::string& repo) {
    std::lock_guard lock(mu_);
    Repo& r = repos_[repo];
    entries_ -= r.tags.size() + r.manifests.size();
    r.tags.clear();
    r.manifests.clear();
    ++r.gen;
  }
  void clear() {
    std::lock_guard lock(mu_);
    repos_.clear();
    entries_ = 0;
    ++epoch_;
  }
  // The notification connection: up (after a clear) or lost.
  void listening(bool up) {
    if (!up) enabled_.store(false, std::memory_order_release);
    clear();
    if (up) enabled_.store(true, std::memory_order_release);
  }

 private:
  struct Repo {
    uint64_t gen = 0;
    std::unordered_map<std::string, std::string> tags;
    std::unordered_map<std::string, ManifestRecord> manifests;
  };
  template <typename V>
  std::optional<V> lookup(const std::string& repo, std::unordered_map<std::string, V> Repo::*entries,
                          const std::string& key) {
    if (!enabled()) return std::nullopt;
    std::lock_guard lock(mu_);
    auto r = repos_.find(repo);
    if (r == repos_.end()) return std::nullopt;
    auto& map = r->second.*entries;
    auto it = map.find(key);
    if (it == map.end()) return std::nullopt;
    return it->second;
  }
  template <typename F>
  void put(const std::string& repo, Ticket t, F&& insert) {
    if (!enabled()) return;
    std::lock_guard lock(mu_);
    if (t.epoch != epoch_) return;
    auto it = repos_.find(repo);
    if ((it == repos_.end() ? 0 : it->second.gen) != t.gen) return;
    if (entries_ >= kMaxEntries) {
      repos_.clear();
      entries_ = 0;
      ++epoch_;
      return;
    }
    if (insert(repos_[repo])) ++entries_;
  }

  std::atomic<bool> enabled_{false};
  std::mutex mu_;
  uint64_t epoch_ = 1;                            // GUARDED_BY(mu_)
  std::unordered_map<std::string, Repo> repos_;   // GUARDED_BY(mu_)
  size_t entries_ = 0;                            // GUARDED_BY(mu_)
};

class PgMetadataStore final : public MetadataStore {
 public:
  explicit PgMetadataStore(std::shared_ptr<PgPool> db) : db_(std::move(db)) {
    // Notifications: a repository written on another core ("repo:<name>"), policies, and
    // "*" (the connection was made again: anything may have changed).
    listener_ = std::make_unique<PgListener>(
        db_->url(), kChannel,
        [this](const std::string& what) {
          if (what.rfind("repo:", 0) == 0) return heardWrite(what.substr(5));
          if (what.rfind("ack:", 0) == 0) return acks_.heard(what.substr(4));
          if (what == "*") {
            cache_.listening(true);
            acks_.abandonAll();
          }
          std::lock_guard lock(change_mu_);
          if (on_change_) on_change_(what);
        },
        [this] {
          cache_.listening(false);
          acks_.abandonAll();
        },
        kListenerName + acks_.self());
  }

  // --- reads ---
  Result<std::string> resolveTag(const std::string& repo, const std::string& tag) override {
    if (auto hit = cache_.tag(repo, tag)) return *hit;
    auto ticket = cache_.ticket(repo);
    auto r = db_->query("SELECT digest FROM tags WHERE repository = $1 AND tag = $2", {repo, tag});
    if (!r.isOk()) return r.status();
    if (r->rows() == 0) return Status(Code::kManifestUnknown, "manifest unknown: tag " + tag);
    std::string digest(r->text(0, 0));
    cache_.putTag(repo, tag, digest, ticket);
    return digest;
  }

  Result<ManifestRecord> manifest(const std::string& repo, const std::string& digest) override {
    if (auto hit = cache_.manifest(repo, digest)) return *hit;
    auto ticket = cache_.ticket(repo);
    auto r = db_->query(std::string("SELECT ") + kManifestColumns + " FROM manifests WHERE repository = $1 AND digest = $2",
                        {repo, digest});
    if (!r.isOk()) return r.status();
    if (r->rows() == 0) return Status(Code::kManifestUnknown, "manifest unknown: " + digest);
    ManifestRecord m = manifestOf(*r, 0, 0);
    cache_.putManifest(repo, digest, m, ticket);
    return m;
  }

  Result<bool> blobLinked(const std::string& repo, const std::string& digest) override {
    auto r = db_->query("SELECT 1 FROM links WHERE repository = $1 AND digest = $2", {repo, digest});
    if (!r.isOk()) return r.status();
    return r->rows() == 1;
  }

  Result<uint64_t> blobSize(const std::string& digest) override {
    auto r = db_->query("SELECT size FROM blobs WHERE digest = $1", {digest});
    if (!r.isOk()) return r.status();
    if (r->rows() == 0) return Status(Code::kBlobUnknown, "blob unknown to registry");
    return static_cast<uint64_t>(r->integer(0, 0));
  }

  Result<bool> repositoryExists(const std::string& repo) override {
    auto r = db_->query("SELECT 1 FROM repositories WHERE name = $1", {repo});
    if (!r.isOk()) return r.status();
    return r->rows() == 1;
  }

  Result<UploadRecord> upload(const std::string& id) override {
    auto r = db_->query("SELECT repository, started_ms, owner FROM uploads WHERE id = $1", {id});
    if (!r.isOk()) return r.status();
    if (r->rows() == 0) return Status(Code::kBlobUploadUnknown, "blob upload unknown to registry");
    return uploadOf(*r, 0, 0);
  }

  Result<Page> tags(const std::string& repo, const std::string& last, size_t n) override {
    auto exists = repositoryExists(repo);
    if (!exists.isOk()) return exists.status();
    if (!*exists) return Status(Code::kNameUnknown, "repository name not known to registry");
    auto r = db_->query("SELECT tag FROM tags WHERE repository = $1 AND tag > $2 ORDER BY tag LIMIT $3",
                        {repo, last, num(static_cast<int64_t>(n) + 1)});
    if (!r.isOk()) return r.status();
    return pageOf(*r, n);
  }

  Page repositories(const std::string& last, size_t n, bool descending) override {
    auto r = descending
                 ? db_->query("SELECT name FROM repositories WHERE $1 = '' OR name < $1 ORDER BY name DESC LIMIT $2",
                              {last, num(static_cast<int64_t>(n) + 1)})
                 : db_->query("SELECT name FROM repositories WHERE name > $1 ORDER BY name LIMIT $2",
                              {last, num(static_cast<int64_t>(n) + 1)});
    if (!r.isOk()) return Page{};
    return pageOf(*r, n);
  }

  std::vector<nlohmann::json> referrers(const std::string& repo, const std::string& subject) override {
    std::vector<nlohmann::json> out;
    auto r = db_->query("SELECT descriptor FROM referrers WHERE repository = $1 AND subject = $2 ORDER BY digest",
                        {repo, subject});
    if (!r.isOk()) return out;
    for (int i = 0; i < r->rows(); ++i) {
      auto j = nlohmann::json::parse(r->text(i, 0), nullptr, false);
      if (j.is_object() && !j.empty()) out.push_back(std::move(j));
    }
    return out;
  }

  std::vector<std::pair<std::string, UploadRecord>> uploads() override {
    std::vector<std::pair<std::string, UploadRecord>> out;
    auto r = db_->query("SELECT id, repository, started_ms, owner FROM uploads ORDER BY id");
    if (!r.isOk()) return out;
    for (int i = 0; i < r->rows(); ++i) out.emplace_back(std::string(r->text(i, 0)), uploadOf(*r, i, 1));
    return out;
  }

  // --- scans over one snapshot, a batch at a time ---
  Status forEachBlob(const std::function<bool(const std::string&, const BlobRecord&)>& fn) override {
    return scan("SELECT digest, size, created_ms, touched_ms FROM blobs ORDER BY digest",
                [&](const PgResult& r, int i) { return fn(std::string(r.text(i, 0)), blobOf(r, i, 1)); });
  }

  Status forEachManifest(
      const std::function<bool(const std::string&, const std::string&, const ManifestRecord&)>& fn) override {
    return scan(std::string("SELECT repository, digest, ") + kManifestColumns + " FROM manifests ORDER BY repository, digest",
                [&](const PgResult& r, int i) {
                  return fn(std::string(r.text(i, 0)), std::string(r.text(i, 1)), manifestOf(r, i, 2));
                });
  }

  Status forEachLink(const std::function<bool(const std::string&, const std::string&)>& fn) override {
    return scan("SELECT repository, digest FROM links ORDER BY repository, digest",
                [&](const PgResult& r, int i) { return fn(std::string(r.text(i, 0)), std::string(r.text(i, 1))); });
  }

  Result<std::vector<TagRecord>> tagRecords(const std::string& repo) override {
    auto r = db_->query("SELECT tag, digest, pushed_ms FROM tags WHERE repository = $1 ORDER BY tag", {repo});
    if (!r.isOk()) return r.status();
    std::vector<TagRecord> out;
    for (int i = 0; i < r->rows(); ++i) {
      out.push_back(TagRecord{repo, std::string(r->text(i, 0)), std::string(r->text(i, 1)), r->integer(i, 2)});
    }
    return out;
  }

  std::optional<std::vector<std::string>> manifestRefs(const std::string& digest) override {
    auto r = db_->query("SELECT array_to_json(refs)::text FROM manifest_refs WHERE digest = $1", {digest});
    if (!r.isOk() || r->rows() == 0) return std::nullopt;
    auto j = nlohmann::json::parse(r->text(0, 0), nullptr, false);
    if (!j.is_array()) return std::nullopt;
    std::vector<std::string> out;
    for (const auto& e : j)
      if (e.is_string()) out.push_back(e.get<std::string>());
    return out;
  }

  Result<BlobRecord> blobRecord(const std::string& digest) override {
    auto r = db_->query("SELECT size, created_ms, touched_ms FROM blobs WHERE digest = $1", {digest});
    if (!r.isOk()) return r.status();
    if (r->rows() == 0) return Status(Code::kBlobUnknown, "blob unknown to registry");
    return blobOf(*r, 0, 0);
  }

  std::vector<Policy> policies() override {
    std::vector<Policy> out;
    auto r = db_->query("SELECT scope, body FROM policies ORDER BY scope");
    if (!r.isOk()) return out;
    for (int i = 0; i < r->rows(); ++i) {
      auto j = nlohmann::json::parse(r->text(i, 1), nullptr, false);
      auto p = Policy::fromJson(std::string(r->text(i, 0)), j.is_object() ? j : nlohmann::json::object());
      if (p.isOk()) out.push_back(std::move(p).value());
    }
    return out;
  }

  // --- writes ---
  Status createUpload(const std::string& id, const UploadRecord& record) override {
    return db_->query("INSERT INTO uploads (id, repository, started_ms, owner) VALUES ($1, $2, $3, $4)",
                      {id, record.repository, num(record.started_ms), record.owner})
        .status();
  }

  Status deleteUpload(const std::string& id) override {
    auto r = db_->query("DELETE FROM uploads WHERE id = $1", {id});
    if (!r.isOk()) return r.status();
    if (r->affected() == 0) return Status(Code::kBlobUploadUnknown, "blob upload unknown to registry");
    return Status::ok();
  }

  Status commitBlob(const std::string& repo, const std::string& digest, uint64_t size, const std::string& upload_id,
                    int64_t now_ms) override {
    return write(repo, [&](PgConn& c) -> Status {
      auto stamped = stamp(c, now_ms);
      if (!stamped.isOk()) return stamped.status();
      WHARF_RETURN_IF_ERROR(c.exec("INSERT INTO blobs (digest, size, created_ms, touched_ms) VALUES ($1, $2, $3, $3) "
                                   "ON CONFLICT (digest) DO UPDATE SET touched_ms = GREATEST(blobs.touched_ms, EXCLUDED.touched_ms)",
                                   {digest, num(static_cast<int64_t>(size)), num(*stamped)})
                                .status());
      WHARF_RETURN_IF_ERROR(ensureRepo(c, repo, now_ms));
      WHARF_RETURN_IF_ERROR(link(c, repo, digest));
      if (!upload_id.empty()) WHARF_RETURN_IF_ERROR(c.exec("DELETE FROM uploads WHERE id = $1", {upload_id}).status());
      return Status::ok();
    });
  }

  Status linkBlob(const std::string& repo, const std::string& digest, int64_t now_ms) override {
    return write(repo, [&](PgConn& c) -> Status {
      auto stamped = stamp(c, now_ms);
      if (!stamped.isOk()) return stamped.status();
      // A mount makes the content wanted again.
      auto r = c.exec("UPDATE blobs SET touched_ms = GREATEST(touched_ms, $2) WHERE digest = $1", {digest, num(*stamped)});
      if (!r.isOk()) return r.status();
      if (r->affected() == 0) return Status(Code::kBlobUnknown, "blob unknown to registry");
      WHARF_RETURN_IF_ERROR(ensureRepo(c, repo, now_ms));
      return link(c, repo, digest);
    });
  }

  Status unlinkBlob(const std::string& repo, const std::string& digest) override {
    return write(repo, [&](PgConn& c) -> Status {
      auto r = c.exec("DELETE FROM links WHERE repository = $1 AND digest = $2", {repo, digest});
      if (!r.isOk()) return r.status();
      if (r->affected() == 0) return Status(Code::kBlobUnknown, "blob unknown to registry");
      return Status::ok();
    });
  }

  Status putManifest(const ManifestWrite& w, int64_t now_ms) override {
    return write(w.repository, [&](PgConn& c) -> Status {
      if (!w.blobs.empty()) {
        // Linked, and still stored (a collection removes both together; never trust one).
        auto missing = c.exec(
            "SELECT d FROM unnest($2::text[]) WITH ORDINALITY AS u(d, i) WHERE NOT EXISTS "
            "(SELECT 1 FROM links l JOIN blobs b ON b.digest = l.digest WHERE l.repository = $1 AND l.digest = u.d) "
            "ORDER BY i LIMIT 1",
            {w.repository, pgArray(w.blobs)});
        if (!missing.isOk()) return missing.status();
        if (missing->rows() > 0) {
          return Status(Code::kManifestBlobUnknown, "blob unknown to registry: " + std::string(missing->text(0, 0)));
        }
      }
      if (!w.manifests.empty()) {
        auto missing = c.exec(
            "SELECT d FROM unnest($2::text[]) WITH ORDINALITY AS u(d, i) WHERE NOT EXISTS "
            "(SELECT 1 FROM manifests m WHERE m.repository = $1 AND m.digest = u.d) ORDER BY i LIMIT 1",
            {w.repository, pgArray(w.manifests)});
        if (!missing.isOk()) return missing.status();
        if (missing->rows() > 0) {
          return Status(Code::kManifestBlobUnknown, "manifest unknown to registry: " + std::string(missing->text(0, 0)));
        }
      }
      WHARF_RETURN_IF_ERROR(ensureRepo(c, w.repository, now_ms));
      // The manifest and everything it references are wanted from now on: a garbage
      // collection running meanwhile sees it in its own transaction and keeps them.
      auto stamped = stamp(c, now_ms);
      if (!stamped.isOk()) return stamped.status();
      WHARF_RETURN_IF_ERROR(c.exec("INSERT INTO blobs (digest, size, created_ms, touched_ms) VALUES ($1, $2, $3, $3) "
                                   "ON CONFLICT (digest) DO UPDATE SET touched_ms = GREATEST(blobs.touched_ms, EXCLUDED.touched_ms)",
                                   {w.digest, num(static_cast<int64_t>(w.record.size)), num(*stamped)})
                                .status());
      std::vector<std::string> refs = w.blobs;
      refs.insert(refs.end(), w.manifests.begin(), w.manifests.end());
      std::vector<std::string> wanted = refs;
      // A referrer keeps its subject: the subject is wanted too.
      if (!w.record.subject.empty()) wanted.push_back(w.record.subject);
      if (!wanted.empty()) {
        WHARF_RETURN_IF_ERROR(
            c.exec("UPDATE blobs SET touched_ms = GREATEST(touched_ms, $2) WHERE digest = ANY($1::text[])", {pgArray(wanted), num(*stamped)})
                .status());
      }
      WHARF_RETURN_IF_ERROR(c.exec("INSERT INTO manifest_refs (digest, refs) VALUES ($1, $2::text[]) "
                                   "ON CONFLICT (digest) DO UPDATE SET refs = EXCLUDED.refs",
                                   {w.digest, pgArray(refs)})
                                .status());
      WHARF_RETURN_IF_ERROR(
          c.exec("INSERT INTO manifests (repository, digest, media_type, size, subject, artifact_type, created_ms, "
                 "pushed_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (repository, digest) DO UPDATE SET "
                 "media_type = EXCLUDED.media_type, size = EXCLUDED.size, subject = EXCLUDED.subject, "
                 "artifact_type = EXCLUDED.artifact_type, pushed_ms = EXCLUDED.pushed_ms",
                 {w.repository, w.digest, w.record.media_type, num(static_cast<int64_t>(w.record.size)),
                  w.record.subject, w.record.artifact_type, num(now_ms), num(*stamped)})
              .status());
      if (w.tag) {
        if (w.immutable_rule) {
          auto current = c.exec("SELECT digest FROM tags WHERE repository = $1 AND tag = $2", {w.repository, *w.tag});
          if (!current.isOk()) return current.status();
          if (current->rows() > 0 && current->text(0, 0) != w.digest) {
            return Status(Code::kDenied, "tag " + *w.tag + " is immutable: rule " + *w.immutable_rule);
          }
        }
        WHARF_RETURN_IF_ERROR(c.exec("INSERT INTO tags (repository, tag, digest, pushed_ms) VALUES ($1, $2, $3, $4) "
                                     "ON CONFLICT (repository, tag) DO UPDATE SET digest = EXCLUDED.digest, "
                                     "pushed_ms = EXCLUDED.pushed_ms",
                                     {w.repository, *w.tag, w.digest, num(now_ms)})
                                  .status());
      }
      if (!w.record.subject.empty()) {
        WHARF_RETURN_IF_ERROR(c.exec("INSERT INTO referrers (repository, subject, digest, descriptor) "
                                     "VALUES ($1, $2, $3, $4) ON CONFLICT (repository, subject, digest) DO UPDATE SET "
                                     "descriptor = EXCLUDED.descriptor",
                                     {w.repository, w.record.subject, w.digest, w.referrer_descriptor.dump()})
                                  .status());
      }
      return Status::ok();
    }, /*changes_reads=*/true);
  }

  Status deleteTag(const std::string& repo, const std::string& tag) override {
    return write(repo, [&](PgConn& c) -> Status {
      auto r = c.exec("DELETE FROM tags WHERE repository = $1 AND tag = $2", {repo, tag});
      if (!r.isOk()) return r.status();
      if (r->affected() == 0) return Status(Code::kManifestUnknown, "manifest unknown: tag " + tag);
      return Status::ok();
    }, /*changes_reads=*/true);
  }

  Status deleteManifest(const std::string& repo, const std::string& digest, const std::vector<Policy>& policies) override {
    return write(repo, [&](PgConn& c) -> Status {
      auto m = c.exec("SELECT subject FROM manifests WHERE repository = $1 AND digest = $2", {repo, digest});
      if (!m.isOk()) return m.status();
      if (m->rows() == 0) return Status(Code::kManifestUnknown, "manifest unknown: " + digest);
      std::string subject(m->text(0, 0));
      auto tags = c.exec("SELECT tag FROM tags WHERE repository = $1 AND digest = $2 ORDER BY tag", {repo, digest});
      if (!tags.isOk()) return tags.status();
      for (int i = 0; i < tags->rows(); ++i) {
        std::string tag(tags->text(i, 0));
        if (auto rule = immutableRule(policies, repo, tag)) {
          return Status(Code::kDenied, "tag " + tag + " is immutable: rule " + *rule);
        }
      }
      WHARF_RETURN_IF_ERROR(c.exec("DELETE FROM tags WHERE repository = $1 AND digest = $2", {repo, digest}).status());
      WHARF_RETURN_IF_ERROR(c.exec("DELETE FROM manifests WHERE repository = $1 AND digest = $2", {repo, digest}).status());
      if (!subject.empty()) {
        WHARF_RETURN_IF_ERROR(c.exec("DELETE FROM referrers WHERE repository = $1 AND subject = $2 AND digest = $3",
                                     {repo, subject, digest})
                                  .status());
      }
      return Status::ok();
    }, /*changes_reads=*/true);
  }

  Status beginCollection(int64_t started) override {
    return write("", [&](PgConn& c) {
      return c.exec("INSERT INTO gc_state (id, epoch_ms) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET epoch_ms = $1",
                    {num(started)})
          .status();
    });
  }

  Result<bool> deleteTagIf(const TagRecord& expected) override {
    bool deleted = false;
    Status st = invalidating(expected.repo, [&](PgConn& c, const std::function<Status()>& notify) -> Status {
      auto r = c.exec("DELETE FROM tags WHERE repository = $1 AND tag = $2 AND digest = $3 AND pushed_ms = $4",
                      {expected.repo, expected.tag, expected.digest, num(expected.pushed_ms)});
      if (!r.isOk()) return r.status();
      deleted = r->affected() == 1;
      return deleted ? notify() : Status::ok();
    });
    if (!st.isOk()) return st;
    return deleted;
  }

  Result<std::vector<bool>> collectManifests(const std::string& repo, const std::vector<std::string>& digests,
                                             int64_t touched_before) override {
    std::vector<bool> out;
    // Under the collection lock alone, as the other collection batches.
    Status st = invalidating(repo, [&](PgConn& c, const std::function<Status()>& notify) -> Status {
      WHARF_RETURN_IF_ERROR(lockCollection(c));
      out.clear();
      // Tags of the repository, read once: a manifest tagged meanwhile stays.
      auto t = c.exec("SELECT DISTINCT digest FROM tags WHERE repository = $1", {repo});
      if (!t.isOk()) return t.status();
      std::set<std::string> tagged;
      for (int i = 0; i < t->rows(); ++i) tagged.insert(std::string(t->text(i, 0)));
      auto touchedSince = [&](const std::string& d) -> Result<bool> {
        auto b = c.exec("SELECT touched_ms >= $2 FROM blobs WHERE digest = $1", {d, num(touched_before)});
        if (!b.isOk()) return b.status();
        return b->rows() > 0 && b->boolean(0, 0);
      };
      for (const auto& digest : digests) {
        auto m = c.exec("SELECT subject, pushed_ms FROM manifests WHERE repository = $1 AND digest = $2", {repo, digest});
        if (!m.isOk()) return m.status();
        if (m->rows() == 0 || tagged.count(digest)) {
          out.push_back(false);
          continue;
        }
        std::string subject(m->text(0, 0));
        bool touched = m->integer(0, 1) >= touched_before;
        if (!touched) {
          auto s = touchedSince(digest);
          if (!s.isOk()) return s.status();
          touched = *s;
        }
        // A referrer whose subject was tagged or pushed meanwhile follows it.
        if (!touched && !subject.empty()) {
          touched = tagged.count(subject) > 0;
          if (!touched) {
            auto s = touchedSince(subject);
            if (!s.isOk()) return s.status();
            touched = *s;
          }
        }
        if (!touched) {
          WHARF_RETURN_IF_ERROR(
              c.exec("DELETE FROM manifests WHERE repository = $1 AND digest = $2", {repo, digest}).status());
          if (!subject.empty()) {
            WHARF_RETURN_IF_ERROR(c.exec("DELETE FROM referrers WHERE repository = $1 AND subject = $2 AND digest = $3",
                                         {repo, subject, digest})
                                      .status());
          }
        }
        out.push_back(!touched);
      }
      return notify();
    });
    if (!st.isOk()) return st;
    return out;
  }

  Result<std::vector<bool>> collectBlobs(const std::vector<Collectable>& batch, int64_t touched_before) override {
    std::vector<bool> out;
    Status st = write("", [&](PgConn& c) -> Status {
      out.clear();
      for (const auto& item : batch) {
        auto r = c.exec("DELETE FROM blobs WHERE digest = $1 AND touched_ms < $2", {item.digest, num(touched_before)});
        if (!r.isOk()) return r.status();
        if (r->affected() == 0) {
          out.push_back(false);
          continue;
        }
        // Every link of it (those the collector saw, and any made since: none, as a link
        // touches the record, but the table says so itself).
        WHARF_RETURN_IF_ERROR(c.exec("DELETE FROM links WHERE digest = $1", {item.digest}).status());
        WHARF_RETURN_IF_ERROR(c.exec("DELETE FROM manifest_refs WHERE digest = $1", {item.digest}).status());
        out.push_back(true);
      }
      return Status::ok();
    });
    if (!st.isOk()) return st;
    return out;
  }

  // Policy changes notify the other cores (at commit) that their cached policies are stale.
  Status setPolicy(const Policy& policy) override {
    return write("", [&](PgConn& c) -> Status {
      WHARF_RETURN_IF_ERROR(
          c.exec("INSERT INTO policies (scope, body) VALUES ($1, $2) ON CONFLICT (scope) DO UPDATE SET body = $2",
                 {policy.scope, policy.toJson().dump()})
              .status());
      return c.exec(std::string("SELECT pg_notify('") + kChannel + "', 'policies')").status();
    });
  }

  Status deletePolicy(const std::string& scope) override {
    return write("", [&](PgConn& c) -> Status {
      auto r = c.exec("DELETE FROM policies WHERE scope = $1", {scope});
      if (!r.isOk()) return r.status();
      if (r->affected() == 0) return Status(Code::kNotFound, "no policy for " + scope);
      return c.exec(std::string("SELECT pg_notify('") + kChannel + "', 'policies')").status();
    });
  }

  void onChange(std::function<void(const std::string&)> fn) override {
    std::lock_guard lock(change_mu_);
    on_change_ = std::move(fn);
  }

  Status createRepository(const std::string& repo, int64_t now_ms) override {
    return write(repo, [&](PgConn& c) { return ensureRepo(c, repo, now_ms); });
  }

  Status deleteRepository(const std::string& repo) override {
    return write(repo, [&](PgConn& c) -> Status {
      auto r = c.exec("DELETE FROM repositories WHERE name = $1", {repo});
      if (!r.isOk()) return r.status();
      if (r->affected() == 0) return Status(Code::kNameUnknown, "repository name not known to registry");
      for (const char* table : {"tags", "manifests", "links", "referrers"}) {
        WHARF_RETURN_IF_ERROR(c.exec(std::string("DELETE FROM ") + table + " WHERE repository = $1", {repo}).status());
      }
      return Status::ok();
    }, /*changes_reads=*/true);
  }

 private:
  static Page pageOf(const PgResult& r, size_t n) {
    Page page;
    for (int i = 0; i < r.rows(); ++i) {
      if (page.items.size() == n) {
        page.more = true;
        break;
      }
      page.items.emplace_back(r.text(i, 0));
    }
    return page;
  }

  // Runs select over one snapshot, a batch of rows at a time, until fn returns false.
  Status scan(const std::string& select, const std::function<bool(const PgResult&, int)>& fn) {
    return db_->transact(
        [&](PgConn& c) -> Status {
          WHARF_RETURN_IF_ERROR(c.exec("DECLARE wharf_scan NO SCROLL CURSOR FOR " + select).status());
          for (;;) {
            auto r = c.exec("FETCH 1000 FROM wharf_scan");
            if (!r.isOk()) return r.status();
            for (int i = 0; i < r->rows(); ++i)
              if (!fn(*r, i)) return Status::ok();
            if (r->rows() < 1000) return Status::ok();
          }
        },
        PgIsolation::kSnapshot);
  }

  // The time a write stamps on what it touches: never before the start of a collection
  // that began before this transaction (see beginCollection).
  static Result<int64_t> stamp(PgConn& c, int64_t now_ms) {
    auto r = c.exec("SELECT epoch_ms FROM gc_state WHERE id = 1");
    if (!r.isOk()) return r.status();
    return r->rows() == 0 ? now_ms : std::max(now_ms, r->integer(0, 0));
  }

  // Writers are ordered as LMDB's single writer orders them, per repository: a write to a
  // repository holds its lock (and the collection lock, shared); a collection's batch and
  // beginCollection hold the collection lock alone, so no write runs beside them.
  static Status lockRepository(PgConn& c, const std::string& repo) {
    WHARF_RETURN_IF_ERROR(c.exec("SELECT pg_advisory_xact_lock_shared(1470, 0)").status());
    return c.exec("SELECT pg_advisory_xact_lock(1471, hashtext($1))", {repo}).status();
  }
  static Status lockCollection(PgConn& c) { return c.exec("SELECT pg_advisory_xact_lock(1470, 0)").status(); }

  // A write transaction: READ COMMITTED after the locks (each statement sees what the
  // writers before it committed); retried on deadlocks.
  // A write to repo (or, repo empty, to what no repository owns) in one transaction.
  // changes_reads: it changes tags or manifest records, which cores cache (see
  // invalidating()).
  Status write(const std::string& repo, const std::function<Status(PgConn&)>& fn, bool changes_reads = false) {
    if (changes_reads) return invalidating(repo, [&](PgConn& c, const std::function<Status()>& notify) {
      WHARF_RETURN_IF_ERROR(lockRepository(c, repo));
      WHARF_RETURN_IF_ERROR(fn(c));
      return notify();
    });
    return db_->transact([&](PgConn& c) -> Status {
      WHARF_RETURN_IF_ERROR(repo.empty() ? lockCollection(c) : lockRepository(c, repo));
      return fn(c);
    });
  }

  // A transaction that changes what the cores cache of repo. fn calls notify() in it
  // (when it changed something): the notification "repo:<token>:<name>" goes out at
  // commit. Then this core's cache drops the repository, and the write returns once
  // every other core listening (the connections named kListenerName in
  // pg_stat_activity) has said it dropped it too ("ack:<token>:<core>"), or after
  // kAckWaitMs (a core that did not answer is logged).
  Status invalidating(const std::string& repo,
                      const std::function<Status(PgConn&, const std::function<Status()>&)>& fn) {
    std::string token;
    Status st = db_->transact([&](PgConn& c) -> Status {
      return fn(c, [&]() -> Status {
        if (token.empty()) token = acks_.token();
        return c.exec("SELECT pg_notify($1, $2)", {std::string(kChannel), "repo:" + token + ":" + repo}).status();
      });
    });
    cache_.invalidate(repo);
    if (token.empty()) return st;
    if (!st.isOk()) {
      acks_.forget(token);
      return st;
    }
    // Who must answer: the cores listening now (one that starts listening after the
    // commit starts with an empty cache).
    auto r = db_->query("SELECT substr(application_name, $1::int) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND application_name LIKE $2",
                        {std::to_string(kListenerName.size() + 1), kListenerName + "%"});
    if (!r.isOk()) {  // committed; the cores hear it all the same
      acks_.forget(token);
      return st;
    }
    std::set<std::string> others;
    for (int i = 0; i < r->rows(); ++i) {
      std::string core(r->text(i, 0));
      if (core != acks_.self()) others.insert(core);
    }
    auto silent = acks_.wait(token, others, kAckWaitMs);
    if (!silent.empty()) {
      logWarn("cores did not confirm dropping cached reads of a repository in time",
              {{"repository", repo}, {"cores", std::vector<std::string>(silent.begin(), silent.end())},
               {"self", acks_.self()}, {"waited_ms", kAckWaitMs}});
    }
    return st;
  }

  // A write notified by a core (this one included): the repository's entries go, then
  // the writer hears that they did.
  void heardWrite(const std::string& payload) {
    size_t colon = payload.find(':');
    if (colon == std::string::npos) return;
    std::string token = payload.substr(0, colon);
    cache_.invalidate(payload.substr(colon + 1));
    if (token.rfind(acks_.self() + "-", 0) == 0) return;  // this core's own write
    auto st = db_->query("SELECT pg_notify($1, $2)", {std::string(kChannel), "ack:" + token + ":" + acks_.self()});
    if (!st.isOk()) logWarn("cannot confirm a cache invalidation", {{"error", st.status().message()}});
  }

  // Acknowledgements awaited by writes, by token ("<core>-<n>").
  class Acks {
   public:
    const std::string& self() const { return self_; }
    // A new token, whose acknowledgements are kept from now on (they may come before
    // wait()); wait() or forget() ends that.
    std::string token() {
      std::lock_guard lock(mu_);
      std::string t = self_ + "-" + std::to_string(++next_);
      waiting_[t] = abandoned_;
      return t;
    }
    void forget(const std::string& token) {
      std::lock_guard lock(mu_);
      waiting_.erase(token);
      heard_.erase(token);
    }
    // "<token>:<core>"
    void heard(const std::string& what) {
      size_t colon = what.rfind(':');
      if (colon == std::string::npos) return;
      std::lock_guard lock(mu_);
      auto it = waiting_.find(what.substr(0, colon));
      if (it == waiting_.end()) return;
      heard_[it->first].insert(what.substr(colon + 1));
      cv_.notify_all();
    }
    // The connection was lost or made again: an acknowledgement may never come.
    void abandonAll() {
      std::lock_guard lock(mu_);
      ++abandoned_;
      cv_.notify_all();
    }
    // Waits for every one of cores; returns those that did not answer.
    std::set<std::string> wait(const std::string& token, const std::set<std::string>& cores, int64_t ms) {
      std::unique_lock lock(mu_);
      auto w = waiting_.find(token);
      uint64_t abandoned = w == waiting_.end() ? abandoned_ : w->second;
      auto missing = [&] {
        std::set<std::string> out;
        auto h = heard_.find(token);
        for (const auto& c : cores)
          if (h == heard_.end() || h->second.count(c) == 0) out.insert(c);
        return out;
      };
      cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return abandoned_ != abandoned || missing().empty(); });
      auto out = abandoned_ != abandoned ? std::set<std::string>() : missing();
      waiting_.erase(token);
      heard_.erase(token);
      return out;
    }

   private:
    std::mutex mu_;
    std::condition_variable cv_;
    const std::string self_ = hexEncode(randomBytes(6));
    uint64_t next_ = 0, abandoned_ = 0;                        // GUARDED_BY(mu_)
    std::map<std::string, uint64_t> waiting_;                  // GUARDED_BY(mu_): token -> abandoned_ then
    std::map<std::string, std::set<std::string>> heard_;       // GUARDED_BY(mu_)
  };
  static constexpr int64_t kAckWaitMs = 2000;
  inline static const std::string kListenerName = "wharf-metadata ";

  static Status ensureRepo(PgConn& c, const std::string& repo, int64_t now_ms) {
    return c.exec("INSERT INTO repositories (name, created_ms) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                  {repo, num(now_ms)})
        .status();
  }

  static Status link(PgConn& c, const std::string& repo, const std::string& digest) {
    return c.exec("INSERT INTO links (repository, digest) VALUES ($1, $2) ON CONFLICT DO NOTHING", {repo, digest})
        .status();
  }

  static constexpr const char* kChannel = "wharf_metadata";

  std::shared_ptr<PgPool> db_;
  std::mutex change_mu_;  // held while on_change_ runs: onChange(nullptr) waits for it
  std::function<void(const std::string&)> on_change_;
  ReadCache cache_;
  Acks acks_;
  std::unique_ptr<PgListener> listener_;  // last: stopped before the rest goes
};

}  // namespace

Result<std::unique_ptr<MetadataStore>> openPgMetadataStore(std::shared_ptr<PgPool> db) {
  auto applied = applyMigrations(*db, "metadata", metadataMigrations());
  if (!applied.isOk()) return applied.status();
  return std::unique_ptr<MetadataStore>(std::make_unique<PgMetadataStore>(std::move(db)));
}

}  // namespace wharf
