#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "core/metadata/lmdb_metadata_store.h"
#include "core/registry/registry.h"
#include "core/registry/upload_sessions.h"
#include "shared/base/clock.h"
#include "shared/base/fs.h"
#include "shared/base/ids.h"
#include "shared/event/work_queue.h"
#include "shared/oci/media_types.h"
#include "tests/support/oci_layout.h"
#include "tests/support/temp_dir.h"

// Each file's own names: the test binaries are unity builds.
namespace registry_test {

using namespace wharf;
using nlohmann::json;
using wharf::test::TempDir;

namespace {

constexpr int64_t kNow = 2'000'000'000'000;  // 2033: later than any real file mtime

struct Fixture {
  Fixture() : clock(kNow) { open(); }

  void open() {
    auto b = openFsBlobStore(dir / "blobs");
    REQUIRE(b.isOk());
    blobs = std::move(b).value();
    LmdbMetadataOptions o;
    o.map_size = 64ull << 20;
    o.durable = false;
    auto m = openLmdbMetadataStore(dir / "meta", o);
    REQUIRE(m.isOk());
    meta = std::move(m).value();
    registry = std::make_unique<Registry>(*blobs, *meta, clock);
  }
  // A restart: new stores and a new Registry over the same directories.
  void reopen() {
    registry.reset();
    meta.reset();
    blobs.reset();
    open();
  }

  std::unique_ptr<UploadSessions::Lease> lease(const std::string& id) {
    auto l = registry->sessions().acquire(id);
    INFO(l.status().toString());
    REQUIRE(l.isOk());
    return std::move(l).value();
  }

  // Uploads content as a blob of repo through the registry; returns its digest.
  Digest pushBlob(const std::string& repo, const std::string& content) {
    auto id = registry->startUpload(repo);
    REQUIRE(id.isOk());
    auto l = lease(*id);
    REQUIRE(registry->append(*l, content, hashq).isOk());
    Digest d = digestOf(content);
    auto size = registry->finishUpload(repo, *l, d, true);
    INFO(size.status().toString());
    REQUIRE(size.isOk());
    CHECK(*size == content.size());
    return d;
  }

  void setUploadMtime(const std::string& id, int64_t ms) {
    struct timespec t[2];
    t[0].tv_sec = t[1].tv_sec = ms / 1000;
    t[0].tv_nsec = t[1].tv_nsec = (ms % 1000) * 1'000'000;
    REQUIRE(::utimensat(AT_FDCWD, (dir / "blobs/uploads/" + id).c_str(), t, 0) == 0);
  }

  TempDir dir;
  FakeClock clock;
  WorkQueue hashq{1};
  std::unique_ptr<BlobStore> blobs;
  std::unique_ptr<MetadataStore> meta;
  std::unique_ptr<Registry> registry;
};

json descriptor(std::string_view media_type, const std::string& content) {
  return {{"mediaType", media_type}, {"digest", digestOf(content).str()}, {"size", content.size()}};
}

std::string imageManifest(const std::string& config, const std::string& layer) {
  return json{{"schemaVersion", 2},
              {"mediaType", media::kOciManifest},
              {"config", descriptor(media::kOciConfig, config)},
              {"layers", json::array({descriptor("application/vnd.oci.image.layer.v1.tar+gzip", layer)})}}
      .dump();
}

std::string readBlob(const BlobFile& f) {
  std::string out(f.size, '\0');
  REQUIRE(preadAll(f.fd->get(), out.data(), out.size(), 0).isOk());
  return out;
}

const std::string kOciManifestType(media::kOciManifest);

}  // namespace

// --- UploadSessions ---

TEST_CASE("UploadSessions: a lease is exclusive until released") {
  TempDir dir;
  auto blobs = openFsBlobStore(dir / "blobs");
  REQUIRE(blobs.isOk());
  UploadSessions sessions(**blobs);
  std::string id = newUuid();
  REQUIRE((*blobs)->createUpload(id).isOk());
  sessions.create(id);
  CHECK(sessions.size() == 1);

  auto first = sessions.acquire(id);
  REQUIRE(first.isOk());
  CHECK((*first)->id() == id);
  CHECK((*first)->session().offset == 0);
  CHECK((*first)->session().hasher.has_value());
  CHECK((*first)->session().busy);

  auto second = sessions.acquire(id);
  CHECK_FALSE(second.isOk());
  CHECK(second.status().code() == Code::kRangeInvalid);

  (*first)->release();
  (*first)->release();  // idempotent
  auto third = sessions.acquire(id);
  REQUIRE(third.isOk());
  // The first lease's destructor must not release the third's hold.
  first = Status(Code::kInternal, "dropped");
  CHECK(sessions.acquire(id).status().code() == Code::kRangeInvalid);
  // Destroying a lease releases it.
  third = Status(Code::kInternal, "dropped");
  CHECK(sessions.acquire(id).isOk());  // (and this one is released at once)
  CHECK(sessions.acquire(id).isOk());

  sessions.erase(id);
  CHECK(sessions.size() == 0);
}

TEST_CASE("UploadSessions: state carries across leases") {
  TempDir dir;
  auto blobs = openFsBlobStore(dir / "blobs");
  REQUIRE(blobs.isOk());
  UploadSessions sessions(**blobs);
  std::string id = newUuid();
  REQUIRE((*blobs)->createUpload(id).isOk());
  sessions.create(id);
  {
    auto l = sessions.acquire(id);
    REQUIRE(l.isOk());
    REQUIRE((*blobs)->append(id, 0, "abc").isOk());
    (*l)->session().offset = 3;
    (*l)->session().hasher->update("abc");
  }
  auto l = sessions.acquire(id);
  REQUIRE(l.isOk());
  CHECK((*l)->session().offset == 3);
  CHECK((*l)->session().hasher->digest() == digestOf("abc"));
}

TEST_CASE("UploadSessions: bytes another replica added are not assumed hashed") {
  TempDir dir;
  auto blobs = openFsBlobStore(dir / "blobs");
  REQUIRE(blobs.isOk());
  UploadSessions sessions(**blobs);
  std::string id = newUuid();
  REQUIRE((*blobs)->createUpload(id).isOk());
  sessions.create(id);
  // This replica's session saw nothing; another one took a chunk in between.
  REQUIRE((*blobs)->append(id, 0, "abcd").isOk());
  auto l = sessions.acquire(id);
  REQUIRE(l.isOk());
  CHECK((*l)->session().offset == 4);
  CHECK_FALSE((*l)->session().hasher.has_value());
}

TEST_CASE("UploadSessions: a session is rebuilt from the upload file") {
  TempDir dir;
  auto blobs = openFsBlobStore(dir / "blobs");
  REQUIRE(blobs.isOk());
  std::string id = newUuid(), empty = newUuid();
  REQUIRE((*blobs)->createUpload(id).isOk());
  REQUIRE((*blobs)->append(id, 0, "0123456789").isOk());
  REQUIRE((*blobs)->createUpload(empty).isOk());

  UploadSessions fresh(**blobs);  // as after a restart: nothing in memory
  CHECK(fresh.size() == 0);
  auto l = fresh.acquire(id);
  REQUIRE(l.isOk());
  CHECK((*l)->session().offset == 10);
  CHECK_FALSE((*l)->session().hasher.has_value());  // the bytes were never hashed
  CHECK(fresh.size() == 1);
  CHECK(fresh.acquire(id).status().code() == Code::kRangeInvalid);
  (*l)->release();
  CHECK(fresh.acquire(id).isOk());

  // An empty upload gets a hasher: there is nothing to have missed.
  auto e = fresh.acquire(empty);
  REQUIRE(e.isOk());
  CHECK((*e)->session().offset == 0);
  CHECK((*e)->session().hasher.has_value());

  CHECK(fresh.acquire(newUuid()).status().code() == Code::kBlobUploadUnknown);
  CHECK(fresh.size() == 2);
}

TEST_CASE("UploadSessions: acquire reports kBlobUploadUnknown once the upload file is gone", "[regression]") {
  // upload_sessions.h: acquire() gives "kBlobUploadUnknown when its file is gone". A
  // session still in memory is handed out without looking at the file.
  TempDir dir;
  auto blobs = openFsBlobStore(dir / "blobs");
  REQUIRE(blobs.isOk());
  UploadSessions sessions(**blobs);
  std::string id = newUuid();
  REQUIRE((*blobs)->createUpload(id).isOk());
  sessions.create(id);
  REQUIRE((*blobs)->removeUpload(id).isOk());
  CHECK(sessions.acquire(id).status().code() == Code::kBlobUploadUnknown);
}

// --- Registry: uploads ---

TEST_CASE("Registry: an upload is started, appended in chunks and finished") {
  Fixture f;
  auto id = f.registry->startUpload("org/app");
  REQUIRE(id.isOk());
  CHECK(isUuid(*id));
  auto rec = f.meta->upload(*id);
  REQUIRE(rec.isOk());
  CHECK(rec->repository == "org/app");
  CHECK(rec->started_ms == kNow);
  CHECK(f.registry->checkUpload("org/app", *id).isOk());
  CHECK(f.registry->checkUpload("org/other", *id).code() == Code::kBlobUploadUnknown);
  CHECK(f.registry->checkUpload("org/app", "../../etc/passwd").code() == Code::kBlobUploadUnknown);
  CHECK(f.registry->checkUpload("org/app", newUuid()).code() == Code::kBlobUploadUnknown);
  CHECK(*f.registry->uploadOffset("org/app", *id) == 0);
  CHECK(f.registry->uploadOffset("org/other", *id).status().code() == Code::kBlobUploadUnknown);

  std::string a = wharf::test::randomData(10'000, 1), b = wharf::test::randomData(333, 2);
  {
    auto l = f.lease(*id);
    REQUIRE(f.registry->append(*l, a, f.hashq).isOk());
  }
  CHECK(*f.registry->uploadOffset("org/app", *id) == a.size());
  auto l = f.lease(*id);
  REQUIRE(f.registry->append(*l, b, f.hashq).isOk());
  CHECK(l->session().offset == a.size() + b.size());
  Digest d = digestOf(a + b);
  f.clock.advance(5000);
  auto size = f.registry->finishUpload("org/app", *l, d, true);
  REQUIRE(size.isOk());
  CHECK(*size == a.size() + b.size());

  CHECK(*f.meta->blobLinked("org/app", d.str()));
  CHECK(*f.meta->blobSize(d.str()) == a.size() + b.size());
  CHECK(f.meta->upload(*id).status().code() == Code::kBlobUploadUnknown);
  CHECK(f.blobs->uploadSize(*id).status().code() == Code::kBlobUploadUnknown);
  CHECK(f.registry->sessions().size() == 0);
  auto blob = f.registry->openBlob("org/app", d);
  REQUIRE(blob.isOk());
  CHECK(readBlob(*blob) == a + b);
  CHECK(f.registry->openBlob("org/other", d).status().code() == Code::kBlobUnknown);
  CHECK(f.registry->openContent(d.str()).isOk());
  CHECK(f.registry->openContent("sha256:bad").status().code() == Code::kDigestInvalid);
}

TEST_CASE("Registry: finishUpload with the wrong digest drops the upload") {
  Fixture f;
  auto id = f.registry->startUpload("r");
  REQUIRE(id.isOk());
  auto l = f.lease(*id);
  REQUIRE(f.registry->append(*l, "actual bytes", f.hashq).isOk());
  Digest wrong = digestOf("claimed bytes");
  auto r = f.registry->finishUpload("r", *l, wrong, true);
  CHECK(r.status().code() == Code::kDigestInvalid);
  CHECK(f.blobs->uploadSize(*id).status().code() == Code::kBlobUploadUnknown);
  CHECK(f.meta->upload(*id).status().code() == Code::kBlobUploadUnknown);
  CHECK(f.registry->sessions().size() == 0);
  CHECK_FALSE(*f.meta->blobLinked("r", wrong.str()));
  CHECK_FALSE(*f.meta->blobLinked("r", digestOf("actual bytes").str()));
  CHECK(f.blobs->open(wrong).status().code() == Code::kBlobUnknown);
  CHECK(f.blobs->open(digestOf("actual bytes")).status().code() == Code::kBlobUnknown);
  l->release();
  CHECK(f.registry->sessions().acquire(*id).status().code() == Code::kBlobUploadUnknown);
}

TEST_CASE("Registry: an unrecorded (monolithic) upload and a sha512 digest") {
  Fixture f;
  auto id = f.registry->startUpload("r", /*recorded=*/false);
  REQUIRE(id.isOk());
  CHECK(f.meta->upload(*id).status().code() == Code::kBlobUploadUnknown);
  CHECK(*f.blobs->uploadSize(*id) == 0);
  auto l = f.lease(*id);
  REQUIRE(f.registry->append(*l, "monolithic", f.hashq).isOk());
  Digest d = digestOf("monolithic", DigestAlgorithm::kSha512);  // the session hashed sha256
  auto size = f.registry->finishUpload("r", *l, d, false);
  REQUIRE(size.isOk());
  CHECK(*size == 10);
  CHECK(*f.meta->blobLinked("r", d.str()));
}

TEST_CASE("Registry: an upload resumed after a restart is hashed from its file") {
  Fixture f;
  auto id = f.registry->startUpload("r");
  REQUIRE(id.isOk());
  {
    auto l = f.lease(*id);
    REQUIRE(f.registry->append(*l, "first half, ", f.hashq).isOk());
  }
  f.reopen();
  CHECK(f.registry->sessions().size() == 0);
  CHECK(f.registry->checkUpload("r", *id).isOk());
  CHECK(*f.registry->uploadOffset("r", *id) == 12);
  auto l = f.lease(*id);
  CHECK(l->session().offset == 12);
  CHECK_FALSE(l->session().hasher.has_value());
  REQUIRE(f.registry->append(*l, "second half", f.hashq).isOk());
  CHECK(l->session().offset == 23);
  auto size = f.registry->finishUpload("r", *l, digestOf("first half, second half"), true);
  REQUIRE(size.isOk());
  CHECK(*size == 23);
  CHECK(*f.meta->blobLinked("r", digestOf("first half, second half").str()));
}

TEST_CASE("Registry: a failed append leaves the offset and drops the running hash") {
  Fixture f;
  auto id = f.registry->startUpload("r");
  REQUIRE(id.isOk());
  auto l = f.lease(*id);
  REQUIRE(f.registry->append(*l, "abc", f.hashq).isOk());
  REQUIRE(l->session().hasher.has_value());
  CHECK(l->session().hasher->digest() == digestOf("abc"));
  REQUIRE(f.blobs->removeUpload(*id).isOk());  // the file vanishes under the upload
  Status st = f.registry->append(*l, "def", f.hashq);
  CHECK(st.code() == Code::kBlobUploadUnknown);
  CHECK(l->session().offset == 3);
  CHECK_FALSE(l->session().hasher.has_value());
}

TEST_CASE("Registry: cancelUpload and discardUpload") {
  Fixture f;
  auto id = f.registry->startUpload("r");
  REQUIRE(id.isOk());
  CHECK(f.registry->cancelUpload("other", *id).code() == Code::kBlobUploadUnknown);
  {
    auto l = f.lease(*id);
    // In use: refused, and nothing is removed.
    CHECK(f.registry->cancelUpload("r", *id).code() == Code::kRangeInvalid);
    CHECK(f.registry->checkUpload("r", *id).isOk());
  }
  REQUIRE(f.registry->cancelUpload("r", *id).isOk());
  CHECK(f.registry->checkUpload("r", *id).code() == Code::kBlobUploadUnknown);
  CHECK(f.blobs->uploadSize(*id).status().code() == Code::kBlobUploadUnknown);
  CHECK(f.registry->sessions().size() == 0);
  CHECK(f.registry->cancelUpload("r", *id).code() == Code::kBlobUploadUnknown);

  auto id2 = f.registry->startUpload("r", false);
  REQUIRE(id2.isOk());
  auto l = f.lease(*id2);
  REQUIRE(f.registry->append(*l, "x", f.hashq).isOk());
  f.registry->discardUpload(*l);
  CHECK(f.blobs->uploadSize(*id2).status().code() == Code::kBlobUploadUnknown);
  CHECK(f.registry->sessions().size() == 0);
}

// --- Registry: manifests ---

TEST_CASE("Registry: putManifest by tag and by digest, resolve, delete") {
  Fixture f;
  f.pushBlob("r", "config");
  f.pushBlob("r", "layer");
  std::string body = imageManifest("config", "layer");
  Digest d = digestOf(body);

  auto put = f.registry->putManifest("r", "v1", body, kOciManifestType);
  REQUIRE(put.isOk());
  CHECK(put->digest == d.str());
  CHECK(put->subject.empty());

  auto byTag = f.registry->resolveManifest("r", "v1");
  REQUIRE(byTag.isOk());
  CHECK(byTag->digest == d.str());
  CHECK(byTag->record.media_type == kOciManifestType);
  CHECK(byTag->record.size == body.size());
  CHECK(byTag->record.artifact_type == media::kOciConfig);
  CHECK(byTag->record.created_ms == kNow);
  auto byDigest = f.registry->resolveManifest("r", d.str());
  REQUIRE(byDigest.isOk());
  CHECK(byDigest->digest == d.str());
  // The manifest is content of its repository.
  auto content = f.registry->openBlob("r", d);
  REQUIRE(content.isOk());
  CHECK(readBlob(*content) == body);

  CHECK(f.registry->resolveManifest("r", "v2").status().code() == Code::kManifestUnknown);
  CHECK(f.registry->resolveManifest("r", "-bad").status().code() == Code::kTagInvalid);
  CHECK(f.registry->resolveManifest("r", "sha256:123").status().code() == Code::kDigestInvalid);
  CHECK(f.registry->resolveManifest("other", "v1").status().code() == Code::kManifestUnknown);

  // By its own digest: accepted, no tag.
  auto again = f.registry->putManifest("r", d.str(), body, kOciManifestType);
  REQUIRE(again.isOk());
  CHECK(again->digest == d.str());

  CHECK(f.registry->deleteManifest("r", "v1").isOk());
  CHECK(f.registry->resolveManifest("r", "v1").status().code() == Code::kManifestUnknown);
  CHECK(f.registry->resolveManifest("r", d.str()).isOk());
  CHECK(f.registry->deleteManifest("r", "v1").code() == Code::kManifestUnknown);
  CHECK(f.registry->deleteManifest("r", "bad/tag").code() == Code::kTagInvalid);
  CHECK(f.registry->deleteManifest("r", "sha256:zz").code() == Code::kDigestInvalid);
  CHECK(f.registry->deleteManifest("r", d.str()).isOk());
  CHECK(f.registry->resolveManifest("r", d.str()).status().code() == Code::kManifestUnknown);
}

TEST_CASE("Registry: putManifest refuses a digest mismatch, bad references and missing blobs") {
  Fixture f;
  f.pushBlob("r", "config");
  f.pushBlob("r", "layer");
  std::string body = imageManifest("config", "layer");
  Digest other = digestOf(body + " ");

  auto mismatch = f.registry->putManifest("r", other.str(), body, kOciManifestType);
  CHECK(mismatch.status().code() == Code::kDigestInvalid);
  CHECK(f.meta->manifest("r", digestOf(body).str()).status().code() == Code::kManifestUnknown);
  CHECK(f.meta->manifest("r", other.str()).status().code() == Code::kManifestUnknown);

  CHECK(f.registry->putManifest("r", "sha256:short", body, kOciManifestType).status().code() == Code::kDigestInvalid);
  CHECK(f.registry->putManifest("r", ".tag", body, kOciManifestType).status().code() == Code::kTagInvalid);
  CHECK(f.registry->putManifest("r", std::string(129, 't'), body, kOciManifestType).status().code() ==
        Code::kTagInvalid);
  CHECK(f.registry->putManifest("r", "v1", "{not json", kOciManifestType).status().code() == Code::kManifestInvalid);

  // A layer the repository does not have.
  std::string missing = imageManifest("config", "absent layer");
  auto unknown = f.registry->putManifest("r", "v1", missing, kOciManifestType);
  CHECK(unknown.status().code() == Code::kManifestBlobUnknown);
  CHECK(unknown.status().message().find(digestOf("absent layer").str()) != std::string::npos);
  CHECK(f.registry->resolveManifest("r", "v1").status().code() == Code::kManifestUnknown);
  // Blobs of another repository do not count.
  f.pushBlob("other", "other layer");
  CHECK(f.registry->putManifest("r", "v1", imageManifest("config", "other layer"), kOciManifestType)
            .status()
            .code() == Code::kManifestBlobUnknown);

  // A sha512 digest reference is honoured.
  std::string ok = imageManifest("config", "layer");
  Digest d512 = digestOf(ok, DigestAlgorithm::kSha512);
  auto put512 = f.registry->putManifest("r", d512.str(), ok, kOciManifestType);
  REQUIRE(put512.isOk());
  CHECK(put512->digest == d512.str());
  CHECK(f.registry->resolveManifest("r", d512.str()).isOk());
}

TEST_CASE("Registry: foreign layers with urls need not be pushed") {
  Fixture f;
  f.pushBlob("r", "config");
  json doc = json::parse(imageManifest("config", "layer"));
  doc["layers"][0]["mediaType"] = std::string(media::kDockerForeignLayer);
  doc["layers"][0]["urls"] = json::array({"https://example.com/layer"});
  CHECK(f.registry->putManifest("r", "win", doc.dump(), kOciManifestType).isOk());
  doc["layers"][0].erase("urls");  // without urls it must be in the registry
  CHECK(f.registry->putManifest("r", "win2", doc.dump(), kOciManifestType).status().code() ==
        Code::kManifestBlobUnknown);
}

TEST_CASE("Registry: an index, and an artifact whose subject lists it as a referrer") {
  Fixture f;
  f.pushBlob("r", "config");
  f.pushBlob("r", "layer");
  std::string image = imageManifest("config", "layer");
  REQUIRE(f.registry->putManifest("r", "img", image, kOciManifestType).isOk());
  json idx = {{"schemaVersion", 2},
              {"mediaType", media::kOciIndex},
              {"manifests", json::array({descriptor(media::kOciManifest, image)})}};
  auto putIdx = f.registry->putManifest("r", "multi", idx.dump(), std::string(media::kOciIndex));
  REQUIRE(putIdx.isOk());
  CHECK(f.registry->resolveManifest("r", "multi")->record.media_type == media::kOciIndex);
  json bad_idx = idx;
  bad_idx["manifests"][0] = descriptor(media::kOciManifest, "not pushed");
  CHECK(f.registry->putManifest("r", "multi2", bad_idx.dump(), "").status().code() == Code::kManifestBlobUnknown);

  f.pushBlob("r", "{}");
  f.pushBlob("r", "signature");
  json art = {{"schemaVersion", 2},
              {"mediaType", media::kOciManifest},
              {"artifactType", "application/vnd.example.sig"},
              {"config", descriptor(media::kOciEmpty, "{}")},
              {"layers", json::array({descriptor("application/octet-stream", "signature")})},
              {"subject", descriptor(media::kOciManifest, image)},
              {"annotations", {{"org.example.signer", "me"}}}};
  std::string artBody = art.dump();
  auto put = f.registry->putManifest("r", digestOf(artBody).str(), artBody, "");
  REQUIRE(put.isOk());
  CHECK(put->subject == digestOf(image).str());
  auto refs = f.meta->referrers("r", digestOf(image).str());
  REQUIRE(refs.size() == 1);
  CHECK(refs[0]["digest"] == digestOf(artBody).str());
  CHECK(refs[0]["mediaType"] == kOciManifestType);
  CHECK(refs[0]["size"] == artBody.size());
  CHECK(refs[0]["artifactType"] == "application/vnd.example.sig");
  CHECK(refs[0]["annotations"]["org.example.signer"] == "me");
  CHECK(f.registry->resolveManifest("r", put->digest)->record.subject == digestOf(image).str());

  REQUIRE(f.registry->deleteManifest("r", put->digest).isOk());
  CHECK(f.meta->referrers("r", digestOf(image).str()).empty());
}

// --- Registry: blobs ---

TEST_CASE("Registry: mount with from, without from, and unknown") {
  Fixture f;
  Digest d = f.pushBlob("src", "shared layer");

  auto fromSrc = f.registry->mount("dst", "src", d);
  REQUIRE(fromSrc.isOk());
  CHECK(*fromSrc);
  CHECK(*f.meta->blobLinked("dst", d.str()));
  CHECK(f.registry->openBlob("dst", d).isOk());

  // `from` does not have it, though the registry does.
  auto wrongFrom = f.registry->mount("dst2", "elsewhere", d);
  REQUIRE(wrongFrom.isOk());
  CHECK_FALSE(*wrongFrom);
  CHECK_FALSE(*f.meta->blobLinked("dst2", d.str()));

  // Without from: any blob the registry holds.
  auto anywhere = f.registry->mount("dst3", "", d);
  REQUIRE(anywhere.isOk());
  CHECK(*anywhere);
  CHECK(*f.meta->blobLinked("dst3", d.str()));

  Digest unknown = digestOf("nobody has this");
  auto u1 = f.registry->mount("dst4", "src", unknown);
  REQUIRE(u1.isOk());
  CHECK_FALSE(*u1);
  auto u2 = f.registry->mount("dst4", "", unknown);
  REQUIRE(u2.isOk());
  CHECK_FALSE(*u2);
  CHECK_FALSE(*f.meta->repositoryExists("dst4"));

  CHECK(f.registry->mount("dst5", "Bad_Name_", d).status().code() == Code::kNameInvalid);
}

TEST_CASE("Registry: deleteBlob unlinks from one repository only") {
  Fixture f;
  Digest d = f.pushBlob("a", "layer");
  REQUIRE(*f.registry->mount("b", "a", d));
  REQUIRE(f.registry->deleteBlob("a", d).isOk());
  CHECK(f.registry->openBlob("a", d).status().code() == Code::kBlobUnknown);
  CHECK(f.registry->openBlob("b", d).isOk());
  CHECK(f.registry->deleteBlob("a", d).code() == Code::kBlobUnknown);
}

// --- Registry: purging ---

TEST_CASE("Registry: purgeUploads removes only uploads older than the age") {
  Fixture f;
  const int64_t hour = 3'600'000;
  auto oldRecorded = f.registry->startUpload("r");
  auto freshRecorded = f.registry->startUpload("r");
  auto oldUnrecorded = f.registry->startUpload("r", false);
  auto oldBusy = f.registry->startUpload("r");
  auto exactlyAtCutoff = f.registry->startUpload("r");
  REQUIRE(oldRecorded.isOk());
  REQUIRE(freshRecorded.isOk());
  REQUIRE(oldUnrecorded.isOk());
  REQUIRE(oldBusy.isOk());
  REQUIRE(exactlyAtCutoff.isOk());
  f.setUploadMtime(*oldRecorded, kNow - 2 * hour);
  f.setUploadMtime(*freshRecorded, kNow - hour / 6);
  f.setUploadMtime(*oldUnrecorded, kNow - 3 * hour);
  f.setUploadMtime(*oldBusy, kNow - 5 * hour);
  f.setUploadMtime(*exactlyAtCutoff, kNow - hour + 1);  // 1 ms younger than the age
  // Records whose files are gone (a crash between the two removals).
  const std::string orphanOld = newUuid(), orphanFresh = newUuid();
  REQUIRE(f.meta->createUpload(orphanOld, UploadRecord{"r", kNow - 4 * hour, ""}).isOk());
  REQUIRE(f.meta->createUpload(orphanFresh, UploadRecord{"r", kNow - 1000, ""}).isOk());

  auto busy = f.lease(*oldBusy);
  size_t removed = f.registry->purgeUploads(hour);
  CHECK(removed == 3);
  CHECK(f.blobs->uploadSize(*oldRecorded).status().code() == Code::kBlobUploadUnknown);
  CHECK(f.meta->upload(*oldRecorded).status().code() == Code::kBlobUploadUnknown);
  CHECK(f.blobs->uploadSize(*oldUnrecorded).status().code() == Code::kBlobUploadUnknown);
  CHECK(f.meta->upload(orphanOld).status().code() == Code::kBlobUploadUnknown);
  // Kept: young, in use, or young orphan.
  CHECK(f.registry->checkUpload("r", *freshRecorded).isOk());
  CHECK(f.blobs->uploadSize(*freshRecorded).isOk());
  CHECK(f.registry->checkUpload("r", *oldBusy).isOk());
  CHECK(f.blobs->uploadSize(*oldBusy).isOk());
  CHECK(f.blobs->uploadSize(*exactlyAtCutoff).isOk());
  CHECK(f.meta->upload(orphanFresh).isOk());
  // The busy lease is still held by its owner.
  CHECK(f.registry->sessions().acquire(*oldBusy).status().code() == Code::kRangeInvalid);

  busy->release();
  f.clock.advance(2);  // now exactlyAtCutoff is older than the age too
  CHECK(f.registry->purgeUploads(hour) == 2);
  CHECK(f.blobs->uploadSize(*oldBusy).status().code() == Code::kBlobUploadUnknown);
  CHECK(f.meta->upload(*oldBusy).status().code() == Code::kBlobUploadUnknown);
  CHECK(f.blobs->uploadSize(*exactlyAtCutoff).status().code() == Code::kBlobUploadUnknown);
  CHECK(f.blobs->uploadSize(*freshRecorded).isOk());

  // Time passes: everything goes.
  f.clock.advance(10 * hour);
  CHECK(f.registry->purgeUploads(hour) == 2);
  CHECK(f.meta->uploads().empty());
  CHECK(f.blobs->listUploads().empty());
  CHECK(f.registry->sessions().size() == 0);
  CHECK(f.registry->purgeUploads(hour) == 0);
}

}  // namespace registry_test
