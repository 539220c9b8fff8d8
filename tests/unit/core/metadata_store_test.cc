#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/metadata/lmdb_metadata_store.h"
#include "shared/oci/digest.h"
#include "shared/store/lmdb.h"
#include "tests/unit/core/metadata_backends.h"
#include "tests/support/temp_dir.h"

// Each file's own names: the test binaries are unity builds.
namespace metadata_store_test {

using namespace wharf;
using wharf::test::TempDir;

namespace {

std::unique_ptr<MetadataStore> openMeta(const std::string& path,
                                        test::MetadataBackend backend = test::MetadataBackend::kLmdb) {
  std::string url;
  return test::openMetadataBackend(backend, path, &url);
}

std::string dg(const std::string& content) { return digestOf(content).str(); }

// Stores a blob in repo (as a finished upload would).
void addBlob(MetadataStore& m, const std::string& repo, const std::string& content, int64_t now = 1000) {
  REQUIRE(m.commitBlob(repo, dg(content), content.size(), "", now).isOk());
}

ManifestWrite manifestWrite(const std::string& repo, const std::string& content, std::optional<std::string> tag = {},
                            std::vector<std::string> blobs = {}) {
  ManifestWrite w;
  w.repository = repo;
  w.digest = dg(content);
  w.record.media_type = "application/vnd.oci.image.manifest.v1+json";
  w.record.size = content.size();
  w.tag = std::move(tag);
  w.blobs = std::move(blobs);
  return w;
}

void putTagged(MetadataStore& m, const std::string& repo, const std::string& content, const std::string& tag) {
  Status st = m.putManifest(manifestWrite(repo, content, tag), 1000);
  INFO(st.toString());
  REQUIRE(st.isOk());
}

}  // namespace

TEST_CASE("metadata: blobs are committed, linked, sized, mounted and unlinked") {
  TempDir dir;
  auto m = openMeta(dir / "meta", GENERATE(from_range(test::metadataBackends())));
  std::string d = dg("layer");
  CHECK_FALSE(*m->repositoryExists("a"));
  CHECK(m->blobSize(d).status().code() == Code::kBlobUnknown);
  CHECK_FALSE(*m->blobLinked("a", d));

  REQUIRE(m->commitBlob("a", d, 5, "", 1000).isOk());
  CHECK(*m->repositoryExists("a"));
  CHECK(*m->blobLinked("a", d));
  CHECK(*m->blobSize(d) == 5);
  CHECK_FALSE(*m->blobLinked("b", d));
  CHECK_FALSE(*m->blobLinked("a", dg("other")));

  // Mount into another repository.
  REQUIRE(m->linkBlob("b", d, 2000).isOk());
  CHECK(*m->blobLinked("b", d));
  CHECK(*m->repositoryExists("b"));
  CHECK(m->linkBlob("b", dg("nothing"), 2000).code() == Code::kBlobUnknown);
  CHECK_FALSE(*m->repositoryExists("c"));
  CHECK(m->linkBlob("c", dg("nothing"), 2000).code() == Code::kBlobUnknown);
  CHECK_FALSE(*m->repositoryExists("c"));  // a failed write leaves nothing

  REQUIRE(m->unlinkBlob("a", d).isOk());
  CHECK_FALSE(*m->blobLinked("a", d));
  CHECK(*m->blobLinked("b", d));
  CHECK(m->unlinkBlob("a", d).code() == Code::kBlobUnknown);
  CHECK(*m->blobSize(d) == 5);  // still stored in the registry
}

TEST_CASE("metadata: upload records") {
  TempDir dir;
  auto m = openMeta(dir / "meta", GENERATE(from_range(test::metadataBackends())));
  const std::string id1 = "11111111-1111-4111-8111-111111111111";
  const std::string id2 = "22222222-2222-4222-8222-222222222222";
  CHECK(m->upload(id1).status().code() == Code::kBlobUploadUnknown);
  CHECK(m->uploads().empty());
  REQUIRE(m->createUpload(id1, UploadRecord{"repo/a", 111, ""}).isOk());
  REQUIRE(m->createUpload(id2, UploadRecord{"repo/b", 222, ""}).isOk());
  auto r = m->upload(id1);
  REQUIRE(r.isOk());
  CHECK(r->repository == "repo/a");
  CHECK(r->started_ms == 111);
  auto all = m->uploads();
  REQUIRE(all.size() == 2);
  CHECK(all[0].first == id1);
  CHECK(all[1].first == id2);
  CHECK(all[1].second.repository == "repo/b");
  CHECK(all[1].second.started_ms == 222);

  REQUIRE(m->deleteUpload(id1).isOk());
  CHECK(m->upload(id1).status().code() == Code::kBlobUploadUnknown);
  CHECK(m->deleteUpload(id1).code() == Code::kBlobUploadUnknown);

  // Committing a blob drops its upload record in the same transaction.
  REQUIRE(m->commitBlob("repo/b", dg("x"), 1, id2, 5).isOk());
  CHECK(m->upload(id2).status().code() == Code::kBlobUploadUnknown);
  CHECK(m->uploads().empty());
  // A commit naming an unknown upload still succeeds.
  CHECK(m->commitBlob("repo/b", dg("y"), 1, id1, 5).isOk());
  CHECK(*m->blobLinked("repo/b", dg("y")));
}

TEST_CASE("metadata: tags are paginated with last and more") {
  TempDir dir;
  auto m = openMeta(dir / "meta", GENERATE(from_range(test::metadataBackends())));
  CHECK(m->tags("r", "", 10).status().code() == Code::kNameUnknown);
  for (const char* t : {"e", "b", "a", "d", "c"}) putTagged(*m, "r", std::string("manifest-") + t, t);
  // Neighbouring repositories whose tags must not leak in.
  putTagged(*m, "r2", "other", "z");
  putTagged(*m, "r/sub", "other", "y");
  putTagged(*m, "q", "other", "x");

  auto all = m->tags("r", "", 100);
  REQUIRE(all.isOk());
  CHECK(all->items == std::vector<std::string>{"a", "b", "c", "d", "e"});
  CHECK_FALSE(all->more);

  auto p1 = m->tags("r", "", 2);
  REQUIRE(p1.isOk());
  CHECK(p1->items == std::vector<std::string>{"a", "b"});
  CHECK(p1->more);
  auto p2 = m->tags("r", "b", 2);
  REQUIRE(p2.isOk());
  CHECK(p2->items == std::vector<std::string>{"c", "d"});
  CHECK(p2->more);
  auto p3 = m->tags("r", "d", 2);
  REQUIRE(p3.isOk());
  CHECK(p3->items == std::vector<std::string>{"e"});
  CHECK_FALSE(p3->more);
  auto exact = m->tags("r", "", 5);
  REQUIRE(exact.isOk());
  CHECK(exact->items.size() == 5);
  CHECK_FALSE(exact->more);  // nothing after the fifth
  auto after_last = m->tags("r", "e", 2);
  REQUIRE(after_last.isOk());
  CHECK(after_last->items.empty());
  CHECK_FALSE(after_last->more);
  // `last` need not be a tag that exists.
  auto between = m->tags("r", "bb", 10);
  REQUIRE(between.isOk());
  CHECK(between->items == std::vector<std::string>{"c", "d", "e"});
  auto beyond = m->tags("r", "zzz", 10);
  REQUIRE(beyond.isOk());
  CHECK(beyond->items.empty());

  auto r2 = m->tags("r2", "", 10);
  REQUIRE(r2.isOk());
  CHECK(r2->items == std::vector<std::string>{"z"});

  // A repository with blobs but no tags.
  addBlob(*m, "blobsonly", "data");
  auto none = m->tags("blobsonly", "", 10);
  REQUIRE(none.isOk());
  CHECK(none->items.empty());
  CHECK_FALSE(none->more);
}

TEST_CASE("metadata: repositories are paginated with last and more") {
  TempDir dir;
  auto m = openMeta(dir / "meta", GENERATE(from_range(test::metadataBackends())));
  CHECK(m->repositories("", 10).items.empty());
  for (const char* r : {"b/x", "a", "c", "b", "a-b"}) addBlob(*m, r, "blob");
  Page all = m->repositories("", 100);
  CHECK(all.items == std::vector<std::string>{"a", "a-b", "b", "b/x", "c"});
  CHECK_FALSE(all.more);
  Page p1 = m->repositories("", 2);
  CHECK(p1.items == std::vector<std::string>{"a", "a-b"});
  CHECK(p1.more);
  Page p2 = m->repositories("a-b", 2);
  CHECK(p2.items == std::vector<std::string>{"b", "b/x"});
  CHECK(p2.more);
  Page p3 = m->repositories("b/x", 2);
  CHECK(p3.items == std::vector<std::string>{"c"});
  CHECK_FALSE(p3.more);
  Page exact = m->repositories("", 5);
  CHECK(exact.items.size() == 5);
  CHECK_FALSE(exact.more);
  Page between = m->repositories("a-a", 1);
  CHECK(between.items == std::vector<std::string>{"a-b"});
  CHECK(between.more);

  // Descending: the reverse order, after `last` in it (also a `last` that is not a name).
  CHECK(m->repositories("", 100, true).items == std::vector<std::string>{"c", "b/x", "b", "a-b", "a"});
  Page d1 = m->repositories("", 2, true);
  CHECK(d1.items == std::vector<std::string>{"c", "b/x"});
  CHECK(d1.more);
  Page d2 = m->repositories("b/x", 2, true);
  CHECK(d2.items == std::vector<std::string>{"b", "a-b"});
  CHECK(d2.more);
  Page d3 = m->repositories("a-b", 2, true);
  CHECK(d3.items == std::vector<std::string>{"a"});
  CHECK_FALSE(d3.more);
  CHECK(m->repositories("bz", 1, true).items == std::vector<std::string>{"b/x"});
  CHECK(m->repositories("zz", 1, true).items == std::vector<std::string>{"c"});
  CHECK(m->repositories("a", 1, true).items.empty());
  CHECK(m->repositories("c", 10).items.empty());
}

TEST_CASE("metadata: putManifest stores the record, its tag and keeps created on re-put") {
  TempDir dir;
  auto m = openMeta(dir / "meta", GENERATE(from_range(test::metadataBackends())));
  addBlob(*m, "r", "config");
  addBlob(*m, "r", "layer");
  ManifestWrite w = manifestWrite("r", "manifest", "v1", {dg("config"), dg("layer")});
  w.record.artifact_type = "application/vnd.oci.image.config.v1+json";
  REQUIRE(m->putManifest(w, 5000).isOk());
  auto rec = m->manifest("r", dg("manifest"));
  REQUIRE(rec.isOk());
  CHECK(rec->media_type == "application/vnd.oci.image.manifest.v1+json");
  CHECK(rec->size == 8);
  CHECK(rec->artifact_type == "application/vnd.oci.image.config.v1+json");
  CHECK(rec->subject.empty());
  CHECK(rec->created_ms == 5000);
  CHECK(*m->resolveTag("r", "v1") == dg("manifest"));
  CHECK(*m->blobSize(dg("manifest")) == 8);

  // Another tag for the same manifest; created does not change.
  w.tag = "v2";
  REQUIRE(m->putManifest(w, 9000).isOk());
  CHECK(m->manifest("r", dg("manifest"))->created_ms == 5000);
  CHECK(*m->resolveTag("r", "v1") == dg("manifest"));
  CHECK(*m->resolveTag("r", "v2") == dg("manifest"));

  CHECK(m->resolveTag("r", "nope").status().code() == Code::kManifestUnknown);
  CHECK(m->resolveTag("other", "v1").status().code() == Code::kManifestUnknown);
  CHECK(m->manifest("r", dg("nope")).status().code() == Code::kManifestUnknown);
  CHECK(m->manifest("other", dg("manifest")).status().code() == Code::kManifestUnknown);
}

TEST_CASE("metadata: putManifest refuses missing blobs and child manifests") {
  TempDir dir;
  auto m = openMeta(dir / "meta", GENERATE(from_range(test::metadataBackends())));
  addBlob(*m, "r", "config");
  addBlob(*m, "elsewhere", "layer");  // stored, but not linked to r

  Status st = m->putManifest(manifestWrite("r", "m", "t", {dg("config"), dg("layer")}), 1);
  CHECK(st.code() == Code::kManifestBlobUnknown);
  CHECK(st.message().find(dg("layer")) != std::string::npos);
  CHECK(m->manifest("r", dg("m")).status().code() == Code::kManifestUnknown);
  CHECK(m->resolveTag("r", "t").status().code() == Code::kManifestUnknown);

  // The first missing one is named.
  Status two = m->putManifest(manifestWrite("r", "m", "t", {dg("config"), dg("a"), dg("b")}), 1);
  CHECK(two.code() == Code::kManifestBlobUnknown);
  CHECK(two.message().find(dg("a")) != std::string::npos);

  // Nothing is stored for a manifest of a new repository that fails.
  CHECK(m->putManifest(manifestWrite("fresh", "m", "t", {dg("config")}), 1).code() == Code::kManifestBlobUnknown);
  CHECK_FALSE(*m->repositoryExists("fresh"));

  // An index whose child manifest is missing.
  putTagged(*m, "r", "child1", "c1");
  putTagged(*m, "elsewhere", "child2", "c2");
  ManifestWrite idx = manifestWrite("r", "index", "i");
  idx.record.media_type = "application/vnd.oci.image.index.v1+json";
  idx.manifests = {dg("child1"), dg("child2")};
  Status ist = m->putManifest(idx, 1);
  CHECK(ist.code() == Code::kManifestBlobUnknown);
  CHECK(ist.message().find(dg("child2")) != std::string::npos);
  CHECK(m->manifest("r", dg("index")).status().code() == Code::kManifestUnknown);
  // A blob with the child's digest does not count as a manifest.
  addBlob(*m, "r", "child2");
  CHECK(m->putManifest(idx, 1).code() == Code::kManifestBlobUnknown);
  putTagged(*m, "r", "child2", "c2");
  REQUIRE(m->putManifest(idx, 1).isOk());
  CHECK(*m->resolveTag("r", "i") == dg("index"));
}

TEST_CASE("metadata: a tag moves to the latest manifest put with it") {
  TempDir dir;
  auto m = openMeta(dir / "meta", GENERATE(from_range(test::metadataBackends())));
  putTagged(*m, "r", "first", "latest");
  CHECK(*m->resolveTag("r", "latest") == dg("first"));
  putTagged(*m, "r", "second", "latest");
  CHECK(*m->resolveTag("r", "latest") == dg("second"));
  CHECK(m->manifest("r", dg("first")).isOk());  // the old manifest stays
  auto tags = m->tags("r", "", 10);
  REQUIRE(tags.isOk());
  CHECK(tags->items == std::vector<std::string>{"latest"});

  REQUIRE(m->deleteTag("r", "latest").isOk());
  CHECK(m->resolveTag("r", "latest").status().code() == Code::kManifestUnknown);
  CHECK(m->deleteTag("r", "latest").code() == Code::kManifestUnknown);
  CHECK(m->manifest("r", dg("second")).isOk());  // deleting a tag keeps the manifest
}

TEST_CASE("metadata: referrers are listed by subject in digest order") {
  TempDir dir;
  auto m = openMeta(dir / "meta", GENERATE(from_range(test::metadataBackends())));
  putTagged(*m, "r", "subject", "s");
  putTagged(*m, "r", "subject2", "s2");
  std::vector<std::string> contents = {"sig", "sbom", "attestation"};
  for (const auto& c : contents) {
    ManifestWrite w = manifestWrite("r", c);
    w.record.subject = dg("subject");
    w.record.artifact_type = "application/vnd.example." + c;
    w.referrer_descriptor = {{"mediaType", w.record.media_type}, {"digest", w.digest}, {"size", c.size()},
                             {"artifactType", w.record.artifact_type}};
    REQUIRE(m->putManifest(w, 1).isOk());
  }
  ManifestWrite other = manifestWrite("r", "other-subject");
  other.record.subject = dg("subject2");
  other.referrer_descriptor = {{"digest", other.digest}};
  REQUIRE(m->putManifest(other, 1).isOk());

  auto refs = m->referrers("r", dg("subject"));
  REQUIRE(refs.size() == 3);
  std::vector<std::string> digests;
  for (const auto& j : refs) digests.push_back(j["digest"].get<std::string>());
  std::vector<std::string> sorted = {dg("sig"), dg("sbom"), dg("attestation")};
  std::sort(sorted.begin(), sorted.end());
  CHECK(digests == sorted);
  for (const auto& j : refs) {
    std::string d = j["digest"];
    std::string name = d == dg("sig") ? "sig" : d == dg("sbom") ? "sbom" : "attestation";
    CHECK(j["artifactType"] == "application/vnd.example." + name);
  }
  CHECK(m->manifest("r", dg("sig"))->subject == dg("subject"));
  CHECK(m->referrers("r", dg("subject2")).size() == 1);
  CHECK(m->referrers("other-repo", dg("subject")).empty());
  CHECK(m->referrers("r", dg("nothing")).empty());
  // The subject need not exist (referrers may be pushed first).
  ManifestWrite early = manifestWrite("r", "early");
  early.record.subject = dg("not yet pushed");
  early.referrer_descriptor = {{"digest", early.digest}};
  REQUIRE(m->putManifest(early, 1).isOk());
  CHECK(m->referrers("r", dg("not yet pushed")).size() == 1);
}

TEST_CASE("metadata: deleteManifest removes its tags and its referrer entry") {
  TempDir dir;
  auto m = openMeta(dir / "meta", GENERATE(from_range(test::metadataBackends())));
  putTagged(*m, "r", "subject", "s");
  putTagged(*m, "r", "keep", "keep");
  ManifestWrite sig = manifestWrite("r", "sig", std::string("v1"));
  sig.record.subject = dg("subject");
  sig.referrer_descriptor = {{"digest", sig.digest}};
  REQUIRE(m->putManifest(sig, 1).isOk());
  sig.tag = "v2";
  REQUIRE(m->putManifest(sig, 1).isOk());
  // Same tag name in another repository, same digest.
  putTagged(*m, "r2", "sig", "v1");
  REQUIRE(m->referrers("r", dg("subject")).size() == 1);

  REQUIRE(m->deleteManifest("r", dg("sig")).isOk());
  CHECK(m->manifest("r", dg("sig")).status().code() == Code::kManifestUnknown);
  CHECK(m->resolveTag("r", "v1").status().code() == Code::kManifestUnknown);
  CHECK(m->resolveTag("r", "v2").status().code() == Code::kManifestUnknown);
  CHECK(m->referrers("r", dg("subject")).empty());
  CHECK(*m->resolveTag("r", "keep") == dg("keep"));
  CHECK(*m->resolveTag("r", "s") == dg("subject"));
  CHECK(*m->resolveTag("r2", "v1") == dg("sig"));
  auto tags = m->tags("r", "", 10);
  REQUIRE(tags.isOk());
  CHECK(tags->items == std::vector<std::string>{"keep", "s"});

  CHECK(m->deleteManifest("r", dg("sig")).code() == Code::kManifestUnknown);
  CHECK(m->deleteManifest("nope", dg("sig")).code() == Code::kManifestUnknown);
}

TEST_CASE("metadata: reopening keeps everything") {
  TempDir dir;
  const std::string id = "33333333-3333-4333-8333-333333333333";
  {
    auto m = openMeta(dir / "meta");
    addBlob(*m, "r", "layer");
    putTagged(*m, "r", "manifest", "latest");
    REQUIRE(m->createUpload(id, UploadRecord{"r", 77, ""}).isOk());
  }
  auto m = openMeta(dir / "meta");
  CHECK(*m->repositoryExists("r"));
  CHECK(*m->blobLinked("r", dg("layer")));
  CHECK(*m->resolveTag("r", "latest") == dg("manifest"));
  CHECK(m->upload(id)->started_ms == 77);
  CHECK(m->repositories("", 10).items == std::vector<std::string>{"r"});
}

TEST_CASE("metadata: a store of another schema version is refused") {
  TempDir dir;
  std::string path = dir / "meta";
  { auto m = openMeta(path); }
  auto overwrite = [&](const std::string& version) {
    LmdbEnv::Options o;
    o.map_size = 64ull << 20;
    o.durable = false;
    auto env = LmdbEnv::open(path, o);
    REQUIRE(env.isOk());
    auto meta = (*env)->openDb("meta");
    REQUIRE(meta.isOk());
    auto w = (*env)->write();
    REQUIRE(w.isOk());
    std::string_view current;
    REQUIRE(w->get(*meta, "schema", &current).isOk());
    REQUIRE(w->put(*meta, "schema", version).isOk());
    REQUIRE(w->commit().isOk());
  };
  {
    LmdbEnv::Options o;
    auto env = LmdbEnv::open(path, o);
    REQUIRE(env.isOk());
    auto meta = (*env)->openDb("meta");
    REQUIRE(meta.isOk());
    auto r = (*env)->read();
    REQUIRE(r.isOk());
    std::string_view v;
    REQUIRE(r->get(*meta, "schema", &v).isOk());
    CHECK(v == std::to_string(kMetadataSchemaVersion));
  }
  overwrite("3");  // from a newer build (1 is migrated, see gc_test)
  LmdbMetadataOptions mo;
  mo.map_size = 64ull << 20;
  auto refused = openLmdbMetadataStore(path, mo);
  CHECK_FALSE(refused.isOk());
  CHECK(refused.status().code() == Code::kCorruption);
  CHECK(refused.status().message().find("schema version 3") != std::string::npos);
  // Refusing did not rewrite the version.
  CHECK(openLmdbMetadataStore(path, mo).status().code() == Code::kCorruption);
  overwrite("garbage");
  CHECK(openLmdbMetadataStore(path, mo).status().code() == Code::kCorruption);
  overwrite("1");
  CHECK(openLmdbMetadataStore(path, mo).isOk());
}

}  // namespace metadata_store_test
