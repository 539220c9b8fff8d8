#include "core/metadata/lmdb_metadata_store.h"
#include "core/metadata/policy.h"

#include <algorithm>
#include <set>

#include "shared/store/lmdb.h"

namespace wharf {
namespace {

std::string key2(const std::string& a, const std::string& b) {
  std::string k;
  k.reserve(a.size() + b.size() + 1);
  k += a;
  k += '\0';
  k += b;
  return k;
}

// Records are JSON objects; anything else reads as an empty object (value() then gives
// the defaults instead of throwing).
nlohmann::json parseJson(std::string_view v) {
  auto j = nlohmann::json::parse(v, nullptr, false);
  if (!j.is_object()) return nlohmann::json::object();
  return j;
}

class LmdbMetadataStore final : public MetadataStore {
 public:
  Status init(std::shared_ptr<LmdbEnv> env) {
    env_ = std::move(env);
    for (auto [name, dbi] : {std::pair{"meta", &meta_}, {"repos", &repos_}, {"blobs", &blobs_}, {"links", &links_},
                             {"manifests", &manifests_}, {"tags", &tags_}, {"referrers", &referrers_},
                             {"uploads", &uploads_}, {"manifest_refs", &refs_}, {"policies", &policies_}}) {
      auto d = env_->openDb(name);
      if (!d.isOk()) return d.status();
      *dbi = *d;
    }
    auto txn = env_->write();
    if (!txn.isOk()) return txn.status();
    std::string_view version;
    Status st = txn->get(meta_, "schema", &version);
    if (st.code() == Code::kNotFound) {
      WHARF_RETURN_IF_ERROR(txn->put(meta_, "schema", std::to_string(kMetadataSchemaVersion)));
      return txn->commit();
    }
    WHARF_RETURN_IF_ERROR(st);
    if (version == "1") return migrateFrom1(*txn);
    if (version != std::to_string(kMetadataSchemaVersion)) {
      return Status(Code::kCorruption, "the metadata store has schema version " + std::string(version) +
                                           ", this build reads version " + std::to_string(kMetadataSchemaVersion));
    }
    return Status::ok();
  }

  Result<std::string> resolveTag(const std::string& repo, const std::string& tag) override {
    auto txn = env_->read();
    if (!txn.isOk()) return txn.status();
    std::string_view v;
    if (!txn->get(tags_, key2(repo, tag), &v).isOk()) return Status(Code::kManifestUnknown, "manifest unknown: tag " + tag);
    return std::string(tagDigest(v));
  }

  Result<ManifestRecord> manifest(const std::string& repo, const std::string& digest) override {
    auto txn = env_->read();
    if (!txn.isOk()) return txn.status();
    std::string_view v;
    if (!txn->get(manifests_, key2(repo, digest), &v).isOk()) {
      return Status(Code::kManifestUnknown, "manifest unknown: " + digest);
    }
    auto j = parseJson(v);
    ManifestRecord r;
    r.media_type = j.value("mediaType", "");
    r.size = j.value("size", uint64_t{0});
    r.subject = j.value("subject", "");
    r.artifact_type = j.value("artifactType", "");
    r.created_ms = j.value("created", int64_t{0});
    r.pushed_ms = j.value("pushed", r.created_ms);
    return r;
  }

  Result<bool> blobLinked(const std::string& repo, const std::string& digest) override {
    auto txn = env_->read();
    if (!txn.isOk()) return txn.status();
    return txn->has(links_, key2(repo, digest));
  }

  Result<uint64_t> blobSize(const std::string& digest) override {
    auto txn = env_->read();
    if (!txn.isOk()) return txn.status();
    std::string_view v;
    if (!txn->get(blobs_, digest, &v).isOk()) return Status(Code::kBlobUnknown, "blob unknown to registry");
    return parseJson(v).value("size", uint64_t{0});
  }

  Result<bool> repositoryExists(const std::string& repo) override {
    auto txn = env_->read();
    if (!txn.isOk()) return txn.status();
    return txn->has(repos_, repo);
  }

  Result<UploadRecord> upload(const std::string& id) override {
    auto txn = env_->read();
    if (!txn.isOk()) return txn.status();
    std::string_view v;
    if (!txn->get(uploads_, id, &v).isOk()) return Status(Code::kBlobUploadUnknown, "blob upload unknown to registry");
    return uploadRecord(v);
  }

  Result<Page> tags(const std::string& repo, const std::string& last, size_t n) override {
    auto txn = env_->read();
    if (!txn.isOk()) return txn.status();
    if (!txn->has(repos_, repo)) return Status(Code::kNameUnknown, "repository name not known to registry");
    std::string prefix = repo + '\0';
    Page page;
    auto c = txn->cursor(tags_);
    bool ok = last.empty() ? c.seek(prefix) : c.seek(prefix + last);
    if (ok && !last.empty() && c.key() == prefix + last) ok = c.next();
    for (; ok && c.key().substr(0, prefix.size()) == prefix; ok = c.next()) {
      if (page.items.size() == n) {
        page.more = true;
        break;
      }
      page.items.emplace_back(c.key().substr(prefix.size()));
    }
    return page;
  }

  Page repositories(const std::string& last, size_t n, bool descending) override {
    Page page;
    auto txn = env_->read();
    if (!txn.isOk()) return page;
    auto c = txn->cursor(repos_);
    bool ok;
    if (!descending) {
      ok = c.seek(last);
      if (ok && !last.empty() && c.key() == last) ok = c.next();
    } else if (last.empty()) {
      ok = c.last();
    } else {
      // The greatest key below last: from the first key >= last (or the end), one back.
      ok = c.seek(last) ? c.prev() : c.last();
      while (ok && c.key() >= last) ok = c.prev();
    }
    for (; ok; ok = descending ? c.prev() : c.next()) {
      if (page.items.size() == n) {
        page.more = true;
        break;
      }
      page.items.emplace_back(c.key());
    }
    return page;
  }

  std::vector<nlohmann::json> referrers(const std::string& repo, const std::string& subject) override {
    std::vector<nlohmann::json> out;
    auto txn = env_->read();
    if (!txn.isOk()) return out;
    std::string prefix = key2(repo, subject) + '\0';
    auto c = txn->cursor(referrers_);
    for (bool ok = c.seek(prefix); ok && c.key().substr(0, prefix.size()) == prefix; ok = c.next()) {
      auto j = parseJson(c.value());
      if (!j.empty()) out.push_back(std::move(j));
    }
    return out;
  }

  std::vector<std::pair<std::string, UploadRecord>> uploads() override {
    std::vector<std::pair<std::string, UploadRecord>> out;
    auto txn = env_->read();
    if (!txn.isOk()) return out;
    auto c = txn->cursor(uploads_);
    for (bool ok = c.first(); ok; ok = c.next()) out.emplace_back(std::string(c.key()), uploadRecord(c.value()));
    return out;
  }

  Status createUpload(const std::string& id, const UploadRecord& record) override {
    auto txn = env_->write();
    if (!txn.isOk()) return txn.status();
    nlohmann::json j = {{"repo", record.repository}, {"started", record.started_ms}, {"owner", record.owner}};
    WHARF_RETURN_IF_ERROR(txn->put(uploads_, id, j.dump()));
    return txn->commit();
  }

  Status deleteUpload(const std::string& id) override {
    auto txn = env_->write();
    if (!txn.isOk()) return txn.status();
    Status st = txn->del(uploads_, id);
    if (st.code() == Code::kNotFound) return Status(Code::kBlobUploadUnknown, "blob upload unknown to registry");
    WHARF_RETURN_IF_ERROR(st);
    return txn->commit();
  }

  Status commitBlob(const std::string& repo, const std::string& digest, uint64_t size, const std::string& upload_id,
                    int64_t now_ms) override {
    auto txn = env_->write();
    if (!txn.isOk()) return txn.status();
    WHARF_RETURN_IF_ERROR(touch(*txn, digest, stamp(*txn, now_ms), true, size));
    WHARF_RETURN_IF_ERROR(ensureRepo(*txn, repo, now_ms));
    WHARF_RETURN_IF_ERROR(txn->put(links_, key2(repo, digest), ""));
    if (!upload_id.empty()) {
      Status st = txn->del(uploads_, upload_id);
      if (!st.isOk() && st.code() != Code::kNotFound) return st;
    }
    return txn->commit();
  }

  Status linkBlob(const std::string& repo, const std::string& digest, int64_t now_ms) override {
    auto txn = env_->write();
    if (!txn.isOk()) return txn.status();
    if (!txn->has(blobs_, digest)) return Status(Code::kBlobUnknown, "blob unknown to registry");
    WHARF_RETURN_IF_ERROR(touch(*txn, digest, stamp(*txn, now_ms)));  // a mount makes it wanted again
    WHARF_RETURN_IF_ERROR(ensureRepo(*txn, repo, now_ms));
    WHARF_RETURN_IF_ERROR(txn->put(links_, key2(repo, digest), ""));
    return txn->commit();
  }

  Status unlinkBlob(const std::string& repo, const std::string& digest) override {
    auto txn = env_->write();
    if (!txn.isOk()) return txn.status();
    Status st = txn->del(links_, key2(repo, digest));
    if (st.code() == Code::kNotFound) return Status(Code::kBlobUnknown, "blob unknown to registry");
    WHARF_RETURN_IF_ERROR(st);
    return txn->commit();
  }

  Status putManifest(const ManifestWrite& w, int64_t now_ms) override {
    auto txn = env_->write();
    if (!txn.isOk()) return txn.status();
    for (const auto& b : w.blobs) {
      // Linked, and still stored (a collection removes both together; never trust one).
      if (!txn->has(links_, key2(w.repository, b)) || !txn->has(blobs_, b)) {
        return Status(Code::kManifestBlobUnknown, "blob unknown to registry: " + b);
      }
    }
    for (const auto& m : w.manifests) {
      if (!txn->has(manifests_, key2(w.repository, m))) {
        return Status(Code::kManifestBlobUnknown, "manifest unknown to registry: " + m);
      }
    }
    WHARF_RETURN_IF_ERROR(ensureRepo(*txn, w.repository, now_ms));
    // The manifest and everything it references are wanted from now on: a garbage
    // collection running meanwhile sees it in its own transaction and keeps them.
    const int64_t stamped = stamp(*txn, now_ms);
    WHARF_RETURN_IF_ERROR(touch(*txn, w.digest, stamped, true, w.record.size));
    for (const auto& b : w.blobs) WHARF_RETURN_IF_ERROR(touch(*txn, b, stamped));
    for (const auto& m : w.manifests) WHARF_RETURN_IF_ERROR(touch(*txn, m, stamped));
    // A referrer keeps its subject: the subject is wanted too.
    if (!w.record.subject.empty()) WHARF_RETURN_IF_ERROR(touch(*txn, w.record.subject, stamped));
    nlohmann::json refs = nlohmann::json::array();
    for (const auto& b : w.blobs) refs.push_back(b);
    for (const auto& m : w.manifests) refs.push_back(m);
    WHARF_RETURN_IF_ERROR(txn->put(refs_, w.digest, refs.dump()));
    std::string mkey = key2(w.repository, w.digest);
    std::string_view existing;
    int64_t created = now_ms;
    if (txn->get(manifests_, mkey, &existing).isOk()) created = parseJson(existing).value("created", now_ms);
    nlohmann::json rec = {
        {"mediaType", w.record.media_type}, {"size", w.record.size}, {"created", created}, {"pushed", stamped}};
    if (!w.record.subject.empty()) rec["subject"] = w.record.subject;
    if (!w.record.artifact_type.empty()) rec["artifactType"] = w.record.artifact_type;
    WHARF_RETURN_IF_ERROR(txn->put(manifests_, mkey, rec.dump()));
    if (w.tag) {
      std::string_view current;
      if (w.immutable_rule && txn->get(tags_, key2(w.repository, *w.tag), &current).isOk() &&
          tagDigest(current) != w.digest) {
        return Status(Code::kDenied, "tag " + *w.tag + " is immutable: rule " + *w.immutable_rule);
      }
      WHARF_RETURN_IF_ERROR(txn->put(tags_, key2(w.repository, *w.tag), w.digest + " " + std::to_string(now_ms)));
    }
    if (!w.record.subject.empty()) {
      WHARF_RETURN_IF_ERROR(txn->put(referrers_, key2(key2(w.repository, w.record.subject), w.digest),
                                     w.referrer_descriptor.dump()));
    }
    return txn->commit();
  }

  Status deleteTag(const std::string& repo, const std::string& tag) override {
    auto txn = env_->write();
    if (!txn.isOk()) return txn.status();
    Status st = txn->del(tags_, key2(repo, tag));
    if (st.code() == Code::kNotFound) return Status(Code::kManifestUnknown, "manifest unknown: tag " + tag);
    WHARF_RETURN_IF_ERROR(st);
    return txn->commit();
  }

  Status deleteManifest(const std::string& repo, const std::string& digest, const std::vector<Policy>& policies) override {
    auto txn = env_->write();
    if (!txn.isOk()) return txn.status();
    std::string mkey = key2(repo, digest);
    std::string_view v;
    if (!txn->get(manifests_, mkey, &v).isOk()) return Status(Code::kManifestUnknown, "manifest unknown: " + digest);
    std::string subject = parseJson(v).value("subject", "");
    WHARF_RETURN_IF_ERROR(txn->del(manifests_, mkey));
    // Tags pointing at it.
    std::string prefix = repo + '\0';
    std::vector<std::string> doomed;
    {
      auto c = txn->cursor(tags_);
      for (bool ok = c.seek(prefix); ok && c.key().substr(0, prefix.size()) == prefix; ok = c.next()) {
        if (tagDigest(c.value()) == digest) doomed.emplace_back(c.key());
      }
    }
    for (const auto& k : doomed) {
      std::string tag = k.substr(prefix.size());
      if (auto rule = immutableRule(policies, repo, tag)) {
        return Status(Code::kDenied, "tag " + tag + " is immutable: rule " + *rule);
      }
    }
    for (const auto& k : doomed) WHARF_RETURN_IF_ERROR(txn->del(tags_, k));
    if (!subject.empty()) {
      Status st = txn->del(referrers_, key2(key2(repo, subject), digest));
      if (!st.isOk() && st.code() != Code::kNotFound) return st;
    }
    return txn->commit();
  }

  Status forEachBlob(const std::function<bool(const std::string&, const BlobRecord&)>& fn) override {
    auto txn = env_->read();
    if (!txn.isOk()) return txn.status();
    auto c = txn->cursor(blobs_);
    for (bool ok = c.first(); ok; ok = c.next()) {
      if (!fn(std::string(c.key()), blobRecordOf(c.value()))) return Status::ok();
    }
    return c.status();
  }

  Status forEachManifest(
      const std::function<bool(const std::string&, const std::string&, const ManifestRecord&)>& fn) override {
    auto txn = env_->read();
    if (!txn.isOk()) return txn.status();
    auto c = txn->cursor(manifests_);
    for (bool ok = c.first(); ok; ok = c.next()) {
      std::string_view k = c.key();
      auto nul = k.find('\0');
      if (nul == std::string_view::npos) continue;
      auto j = parseJson(c.value());
      ManifestRecord r;
      r.media_type = j.value("mediaType", "");
      r.size = j.value("size", uint64_t{0});
      r.subject = j.value("subject", "");
      r.artifact_type = j.value("artifactType", "");
      r.created_ms = j.value("created", int64_t{0});
      r.pushed_ms = j.value("pushed", r.created_ms);
      if (!fn(std::string(k.substr(0, nul)), std::string(k.substr(nul + 1)), r)) return Status::ok();
    }
    return c.status();
  }

  Status forEachLink(const std::function<bool(const std::string&, const std::string&)>& fn) override {
    auto txn = env_->read();
    if (!txn.isOk()) return txn.status();
    auto c = txn->cursor(links_);
    for (bool ok = c.first(); ok; ok = c.next()) {
      std::string_view k = c.key();
      auto nul = k.find('\0');
      if (nul == std::string_view::npos) continue;
      if (!fn(std::string(k.substr(0, nul)), std::string(k.substr(nul + 1)))) return Status::ok();
    }
    return c.status();
  }

  Result<std::vector<TagRecord>> tagRecords(const std::string& repo) override {
    std::vector<TagRecord> out;
    auto txn = env_->read();
    if (!txn.isOk()) return txn.status();
    std::string prefix = repo + '\0';
    auto c = txn->cursor(tags_);
    for (bool ok = c.seek(prefix); ok && c.key().substr(0, prefix.size()) == prefix; ok = c.next()) {
      TagRecord t;
      t.repo = repo;
      t.tag = std::string(c.key().substr(prefix.size()));
      t.digest = std::string(tagDigest(c.value()));
      t.pushed_ms = tagPushed(c.value());
      out.push_back(std::move(t));
    }
    WHARF_RETURN_IF_ERROR(c.status());
    return out;
  }

  Status beginCollection(int64_t started) override {
    auto txn = env_->write();
    if (!txn.isOk()) return txn.status();
    WHARF_RETURN_IF_ERROR(txn->put(meta_, "gc_epoch", std::to_string(started)));
    return txn->commit();
  }

  Result<bool> deleteTagIf(const TagRecord& expected) override {
    auto txn = env_->write();
    if (!txn.isOk()) return txn.status();
    std::string key = key2(expected.repo, expected.tag);
    std::string_view v;
    if (!txn->get(tags_, key, &v).isOk()) return false;
    if (tagDigest(v) != expected.digest || tagPushed(v) != expected.pushed_ms) return false;
    WHARF_RETURN_IF_ERROR(txn->del(tags_, key));
    WHARF_RETURN_IF_ERROR(txn->commit());
    return true;
  }

  std::optional<std::vector<std::string>> manifestRefs(const std::string& digest) override {
    auto txn = env_->read();
    if (!txn.isOk()) return std::nullopt;
    std::string_view v;
    if (!txn->get(refs_, digest, &v).isOk()) return std::nullopt;
    auto j = nlohmann::json::parse(v, nullptr, false);
    if (!j.is_array()) return std::nullopt;
    std::vector<std::string> out;
    for (const auto& e : j) {
      if (e.is_string()) out.push_back(e.get<std::string>());
    }
    return out;
  }

  Result<BlobRecord> blobRecord(const std::string& digest) override {
    auto txn = env_->read();
    if (!txn.isOk()) return txn.status();
    std::string_view v;
    if (!txn->get(blobs_, digest, &v).isOk()) return Status(Code::kBlobUnknown, "blob unknown to registry");
    return blobRecordOf(v);
  }

  std::vector<Policy> policies() override {
    std::vector<Policy> out;
    auto txn = env_->read();
    if (!txn.isOk()) return out;
    auto c = txn->cursor(policies_);
    for (bool ok = c.first(); ok; ok = c.next()) {
      auto p = Policy::fromJson(std::string(c.key()), parseJson(c.value()));
      if (p.isOk()) out.push_back(std::move(p).value());
    }
    return out;
  }

  Result<std::vector<bool>> collectManifests(const std::string& repo, const std::vector<std::string>& digests,
                                             int64_t touched_before) override {
    auto txn = env_->write();
    if (!txn.isOk()) return txn.status();
    // Tags of the repository, read once: a manifest tagged meanwhile stays.
    std::set<std::string> tagged;
    std::string prefix = repo + '\0';
    {
      auto c = txn->cursor(tags_);
      for (bool ok = c.seek(prefix); ok && c.key().substr(0, prefix.size()) == prefix; ok = c.next()) {
        tagged.insert(std::string(tagDigest(c.value())));
      }
    }
    std::vector<bool> out;
    for (const auto& digest : digests) {
      std::string mkey = key2(repo, digest);
      std::string_view v;
      bool gone = false;
      if (txn->get(manifests_, mkey, &v).isOk() && !tagged.count(digest)) {
        auto rec = parseJson(v);
        auto touchedSince = [&](const std::string& d) {
          std::string_view b;
          return txn->get(blobs_, d, &b).isOk() && blobRecordOf(b).touched_ms >= touched_before;
        };
        std::string subject = rec.value("subject", "");
        bool touched = rec.value("pushed", rec.value("created", int64_t{0})) >= touched_before || touchedSince(digest) ||
                       // a referrer whose subject was tagged or pushed meanwhile follows it
                       (!subject.empty() && (tagged.count(subject) || touchedSince(subject)));
        if (!touched) {
          WHARF_RETURN_IF_ERROR(txn->del(manifests_, mkey));
          if (!subject.empty()) {
            Status st = txn->del(referrers_, key2(key2(repo, subject), digest));
            if (!st.isOk() && st.code() != Code::kNotFound) return st;
          }
          gone = true;
        }
      }
      out.push_back(gone);
    }
    WHARF_RETURN_IF_ERROR(txn->commit());
    return out;
  }

  Result<std::vector<bool>> collectBlobs(const std::vector<Collectable>& batch, int64_t touched_before) override {
    auto txn = env_->write();
    if (!txn.isOk()) return txn.status();
    std::vector<bool> out;
    for (const auto& item : batch) {
      std::string_view v;
      if (!txn->get(blobs_, item.digest, &v).isOk() || blobRecordOf(v).touched_ms >= touched_before) {
        out.push_back(false);
        continue;
      }
      WHARF_RETURN_IF_ERROR(txn->del(blobs_, item.digest));
      for (const auto& repo : item.link_repos) {
        Status st = txn->del(links_, key2(repo, item.digest));
        if (!st.isOk() && st.code() != Code::kNotFound) return st;
      }
      Status st = txn->del(refs_, item.digest);
      if (!st.isOk() && st.code() != Code::kNotFound) return st;
      out.push_back(true);
    }
    WHARF_RETURN_IF_ERROR(txn->commit());
    return out;
  }

  Status setPolicy(const Policy& policy) override {
    auto txn = env_->write();
    if (!txn.isOk()) return txn.status();
    WHARF_RETURN_IF_ERROR(txn->put(policies_, policy.scope, policy.toJson().dump()));
    return txn->commit();
  }

  Status deletePolicy(const std::string& scope) override {
    auto txn = env_->write();
    if (!txn.isOk()) return txn.status();
    Status st = txn->del(policies_, scope);
    if (st.code() == Code::kNotFound) return Status(Code::kNotFound, "no policy for " + scope);
    WHARF_RETURN_IF_ERROR(st);
    return txn->commit();
  }

  Status createRepository(const std::string& repo, int64_t now_ms) override {
    auto txn = env_->write();
    if (!txn.isOk()) return txn.status();
    WHARF_RETURN_IF_ERROR(ensureRepo(*txn, repo, now_ms));
    return txn->commit();
  }

  Status deleteRepository(const std::string& repo) override {
    auto txn = env_->write();
    if (!txn.isOk()) return txn.status();
    Status st = txn->del(repos_, repo);
    if (st.code() == Code::kNotFound) return Status(Code::kNameUnknown, "repository name not known to registry");
    WHARF_RETURN_IF_ERROR(st);
    std::string prefix = repo + '\0';
    for (Dbi dbi : {tags_, manifests_, links_, referrers_}) {
      std::vector<std::string> keys;
      {
        auto c = txn->cursor(dbi);
        for (bool ok = c.seek(prefix); ok && c.key().substr(0, prefix.size()) == prefix; ok = c.next()) {
          keys.emplace_back(c.key());
        }
      }
      for (const auto& k : keys) WHARF_RETURN_IF_ERROR(txn->del(dbi, k));
    }
    return txn->commit();
  }

 private:
  static UploadRecord uploadRecord(std::string_view v) {
    auto j = parseJson(v);
    UploadRecord r;
    r.repository = j.value("repo", "");
    r.started_ms = j.value("started", int64_t{0});
    r.owner = j.value("owner", "");
    return r;
  }

  // Tag values: "<digest> <pushed ms>".
  static std::string_view tagDigest(std::string_view v) { return v.substr(0, v.find(' ')); }
  static int64_t tagPushed(std::string_view v) {
    auto sp = v.find(' ');
    return sp == std::string_view::npos ? 0 : std::atoll(std::string(v.substr(sp + 1)).c_str());
  }

  static BlobRecord blobRecordOf(std::string_view v) {
    auto j = parseJson(v);
    BlobRecord r;
    r.size = j.value("size", uint64_t{0});
    r.created_ms = j.value("created", int64_t{0});
    r.touched_ms = j.value("touched", r.created_ms);
    return r;
  }

  // The time a write stamps on what it touches: never before the start of a collection
  // that began before this transaction (see beginCollection).
  int64_t stamp(WriteTxn& txn, int64_t now_ms) {
    std::string_view v;
    if (!txn.get(meta_, "gc_epoch", &v).isOk()) return now_ms;
    return std::max<int64_t>(now_ms, std::atoll(std::string(v).c_str()));
  }

  // Records content as wanted now; with create, records it (of size) when absent.
  Status touch(WriteTxn& txn, const std::string& digest, int64_t now_ms, bool create = false, uint64_t size = 0) {
    std::string_view v;
    nlohmann::json rec;
    if (txn.get(blobs_, digest, &v).isOk()) {
      rec = parseJson(v);
    } else if (create) {
      rec = {{"size", size}, {"created", now_ms}};
    } else {
      return Status::ok();  // not stored: the caller checked what it needs
    }
    rec["touched"] = now_ms;
    return txn.put(blobs_, digest, rec.dump());
  }

  // Version 1 -> 2: tags gain their push time (the manifest's creation, the best known).
  Status migrateFrom1(WriteTxn& txn) {
    std::vector<std::pair<std::string, std::string>> rewritten;
    {
      auto c = txn.cursor(tags_);
      for (bool ok = c.first(); ok; ok = c.next()) {
        std::string_view k = c.key();
        std::string digest(c.value());
        auto nul = k.find('\0');
        int64_t pushed = 0;
        std::string_view m;
        if (nul != std::string_view::npos &&
            txn.get(manifests_, key2(std::string(k.substr(0, nul)), digest), &m).isOk()) {
          pushed = parseJson(m).value("created", int64_t{0});
        }
        rewritten.emplace_back(std::string(k), digest + " " + std::to_string(pushed));
      }
    }
    for (const auto& [k, v] : rewritten) WHARF_RETURN_IF_ERROR(txn.put(tags_, k, v));
    WHARF_RETURN_IF_ERROR(txn.put(meta_, "schema", std::to_string(kMetadataSchemaVersion)));
    return txn.commit();
  }

  Status ensureRepo(WriteTxn& txn, const std::string& repo, int64_t now_ms) {
    if (txn.has(repos_, repo)) return Status::ok();
    return txn.put(repos_, repo, nlohmann::json{{"created", now_ms}}.dump());
  }

  std::shared_ptr<LmdbEnv> env_;
  Dbi meta_ = 0, repos_ = 0, blobs_ = 0, links_ = 0, manifests_ = 0, tags_ = 0, referrers_ = 0, uploads_ = 0;
  Dbi refs_ = 0, policies_ = 0;
};

}  // namespace

Result<std::shared_ptr<LmdbEnv>> openMetadataEnv(const std::string& path, const LmdbMetadataOptions& options) {
  LmdbEnv::Options eo;
  eo.map_size = options.map_size;
  eo.durable = options.durable;
  auto env = LmdbEnv::open(path, eo);
  if (!env.isOk()) return env.status();
  return std::shared_ptr<LmdbEnv>(std::move(env).value());
}

Result<std::unique_ptr<MetadataStore>> openLmdbMetadataStore(std::shared_ptr<LmdbEnv> env) {
  auto store = std::make_unique<LmdbMetadataStore>();
  WHARF_RETURN_IF_ERROR(store->init(std::move(env)));
  return std::unique_ptr<MetadataStore>(std::move(store));
}

Result<std::unique_ptr<MetadataStore>> openLmdbMetadataStore(const std::string& path, const LmdbMetadataOptions& options) {
  auto env = openMetadataEnv(path, options);
  if (!env.isOk()) return env.status();
  return openLmdbMetadataStore(*env);
}

}  // namespace wharf
