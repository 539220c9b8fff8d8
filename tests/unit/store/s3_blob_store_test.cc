#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <fstream>
#include <thread>
#include <chrono>
#include <mutex>
#include <tuple>
#include <vector>

#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <memory>
#include <string>

#include "shared/base/ids.h"
#include "core/metadata/lmdb_metadata_store.h"
#include "core/registry/registry.h"
#include "shared/base/clock.h"
#include "shared/http/blocking_client.h"
#include "shared/metrics/metrics.h"
#include "shared/store/blob_store.h"
#include "shared/store/s3_client.h"
#include "tests/support/ceph.h"
#include "tests/support/raw_peer.h"
#include "tests/support/temp_dir.h"

// Each file's own names: the test binaries are unity builds.
namespace s3_blob_store_test {

using namespace wharf;
using wharf::test::MicroCeph;
using wharf::test::RgwDown;

namespace {

// AWS's published example credentials (Signature Version 4 examples for S3).
const S3Credentials kAwsExample{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"};

EnvLookup envOf(std::map<std::string, std::string> vars) {
  auto shared = std::make_shared<std::map<std::string, std::string>>(std::move(vars));
  return [shared](const char* name) -> const char* {
    auto it = shared->find(name);
    return it == shared->end() ? nullptr : it->second.c_str();
  };
}

const EnvLookup kKeys = envOf({{"AWS_ACCESS_KEY_ID", "AK"}, {"AWS_SECRET_ACCESS_KEY", "SK"}});

S3Location locationOf(const std::string& url) {
  auto loc = parseS3Url(url, [](const char* n) { return std::getenv(n); });
  INFO(loc.status().toString());
  REQUIRE(loc.isOk());
  return *loc;
}

std::unique_ptr<BlobStore> openStore(const std::string& url) {
  auto s = openS3BlobStore(locationOf(url));
  INFO(s.status().toString());
  REQUIRE(s.isOk());
  return std::move(s).value();
}

std::string readBlob(BlobStore& store, const Digest& d) {
  auto size = store.size(d);
  REQUIRE(size.isOk());
  std::string out(*size, '\0');
  REQUIRE(store.read(d, 0, out.data(), out.size()).isOk());
  return out;
}

std::string pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

// Objects of the store's bucket under a key prefix (relative to the store's prefix).
size_t countObjects(const S3Location& loc, const std::string& prefix) {
  S3Client s3(loc);
  size_t n = 0;
  REQUIRE(s3.list(prefix, [&](const S3Client::Listed&) { return ++n, true; }).isOk());
  return n;
}

// The size of one object (relative to the store's prefix); -1 when there is none.
int64_t objectSize(const S3Location& loc, const std::string& key) {
  S3Client s3(loc);
  int64_t size = -1;
  REQUIRE(s3.list(key, [&](const S3Client::Listed& l) {
                if (l.key == key) size = static_cast<int64_t>(l.size);
                return true;
              }).isOk());
  return size;
}

// GET of an http:// URL (a presigned one).
std::string fetch(const std::string& url) {
  REQUIRE(url.rfind("http://", 0) == 0);
  std::string rest = url.substr(7);
  std::string host = rest.substr(0, rest.find('/')), target = rest.substr(rest.find('/'));
  BlockingClient c(host.substr(0, host.find(':')), std::stoi(host.substr(host.find(':') + 1)), 10000);
  auto r = c.request("GET", target, {}, "");
  REQUIRE(r.isOk());
  INFO(r->body.substr(0, 300));
  REQUIRE(r->status == 200);
  return r->body;
}

// The ids of the multipart uploads in progress under a key prefix.
std::vector<std::string> multipartIds(const S3Location& loc, const std::string& prefix) {
  S3Client s3(loc);
  S3Client::Call c;
  c.bucket_only = true;
  c.query["uploads"] = "";
  c.query["prefix"] = loc.prefix + prefix;
  auto r = s3.call(c);
  REQUIRE(r.isOk());
  return xmlValues(r->body, "UploadId");
}
size_t countMultipart(const S3Location& loc, const std::string& prefix) { return multipartIds(loc, prefix).size(); }

#define REQUIRE_CEPH()                                                         \
  do {                                                                         \
    if (!MicroCeph::available()) {                                             \
      WARN("Ceph is not installed: skipped (apt-get install ceph-mon ceph-osd radosgw)"); \
      return;                                                                  \
    }                                                                          \
  } while (0)

}  // namespace

TEST_CASE("SigV4 signs AWS's GET Object example") {
  // https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html
  SigV4Input in;
  in.method = "GET";
  in.host = "examplebucket.s3.amazonaws.com";
  in.path = "/test.txt";
  in.headers = {{"host", in.host},
                {"range", "bytes=0-9"},
                {"x-amz-content-sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
                {"x-amz-date", "20130524T000000Z"}};
  in.payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  CHECK(sigV4Authorization(in, kAwsExample, "us-east-1", "20130524T000000Z") ==
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST_CASE("SigV4 presigns AWS's query-string example") {
  // https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
  SigV4Input in;
  in.method = "GET";
  in.host = "examplebucket.s3.amazonaws.com";
  in.path = "/test.txt";
  in.headers = {{"host", in.host}};
  std::string q = sigV4PresignQuery(in, kAwsExample, "us-east-1", "20130524T000000Z", 86400);
  CHECK(q.find("X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request") != std::string::npos);
  CHECK(q.find("X-Amz-Expires=86400") != std::string::npos);
  CHECK(q.find("X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404") != std::string::npos);
}

TEST_CASE("S3 URLs: endpoint, style, region, prefix and credentials") {
  auto aws = parseS3Url("s3://my-bucket/a/b/?region=eu-west-3", kKeys);
  REQUIRE(aws.isOk());
  CHECK(aws->host == "s3.eu-west-3.amazonaws.com");
  CHECK(aws->tls);
  CHECK(aws->port == 443);
  CHECK(aws->virtual_host);
  CHECK(aws->prefix == "a/b/");
  CHECK(aws->credentials.access_key == "AK");

  auto ceph = parseS3Url("s3://registry?endpoint=http://127.0.0.1:7480&part_size_mb=5", kKeys);
  REQUIRE(ceph.isOk());
  CHECK_FALSE(ceph->tls);
  CHECK(ceph->host == "127.0.0.1");
  CHECK(ceph->port == 7480);
  CHECK_FALSE(ceph->virtual_host);
  CHECK(ceph->prefix.empty());
  CHECK(ceph->part_size == 5u << 20);
  // The display form carries no credentials.
  CHECK(ceph->display.find("SK") == std::string::npos);

  auto virt = parseS3Url("s3://registry?endpoint=https://s3.example.com&style=virtual", kKeys);
  REQUIRE(virt.isOk());
  CHECK(virt->virtual_host);
  // Bodies go unsigned over TLS, signed over plain HTTP, unless the URL says.
  CHECK(aws->unsigned_payload);
  CHECK_FALSE(ceph->unsigned_payload);
  CHECK(parseS3Url("s3://registry?endpoint=http://127.0.0.1:7480&payload=unsigned", kKeys)->unsigned_payload);
  CHECK_FALSE(parseS3Url("s3://registry?endpoint=https://s3.example.com&payload=signed", kKeys)->unsigned_payload);

  for (const char* bad : {"http://bucket", "s3://B", "s3://ab", "s3://bucket?unknown=1", "s3://bucket?part_size_mb=4",
                          "s3://bucket?endpoint=ftp://x", "s3://bucket?endpoint=http://h:99999",
                          "s3://bucket?style=sideways", "s3://bucket/../x", "s3://bucket?region=us east",
                          "s3://bucket?payload=maybe"}) {
    INFO(bad);
    CHECK_FALSE(parseS3Url(bad, kKeys).isOk());
  }
  auto none = parseS3Url("s3://bucket", envOf({}));
  REQUIRE_FALSE(none.isOk());
  CHECK(none.status().message().find("AWS_ACCESS_KEY_ID") != std::string::npos);
  CHECK_FALSE(parseS3Url("s3://bucket?credentials=/nonexistent/file", kKeys).isOk());
}

TEST_CASE("S3 XML answers: values, entities, times") {
  auto keys = xmlValues("<a><Key>x&amp;y</Key><Key>&lt;z&gt;</Key></a>", "Key");
  REQUIRE(keys.size() == 2);
  CHECK(keys[0] == "x&y");
  CHECK(keys[1] == "<z>");
  CHECK(parseIsoTimeMs("2026-12-07T05:00:01.250Z") == 1796619601250);
  CHECK(parseIsoTimeMs("garbage") == 0);
}

// An S3-compatible store that refuses streamed (aws-chunked) PUTs, as some do: every
// other request it needs for uploads in parts is answered, one per connection. Records
// each request's line and, for PUTs, whether the body came aws-chunked.
class NoStreamingStore {
 public:
  NoStreamingStore()
      : peer_([this](int fd) {
          std::string head = test::readRequestHead(fd);
          if (head.empty()) return;
          size_t end = head.find("\r\n\r\n") + 4;
          std::string lower = head.substr(0, end);
          for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
          size_t length = 0;
          if (auto cl = lower.find("content-length:"); cl != std::string::npos) length = std::stoull(lower.substr(cl + 15));
          std::string line = head.substr(0, head.find("\r\n"));
          if (lower.find("content-encoding: aws-chunked") != std::string::npos) {
            // Refused from the head, before the body (then read, and dropped).
            {
              std::lock_guard lock(mu_);
              requests_.push_back(line + " [aws-chunked]");
            }
            std::string no = "<Error><Code>NotImplemented</Code><Message>aws-chunked</Message></Error>";
            std::string out = "HTTP/1.1 501 Not Implemented\r\nContent-Length: " + std::to_string(no.size()) +
                              "\r\nConnection: close\r\n\r\n" + no;
            (void)::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
            ::shutdown(fd, SHUT_WR);
            char drain[65536];
            while (::recv(fd, drain, sizeof drain, 0) > 0) {
            }
            return;
          }
          std::string body = head.substr(end);
          char buf[65536];
          while (body.size() < length) {
            ssize_t r = ::recv(fd, buf, sizeof buf, 0);
            if (r <= 0) return;
            body.append(buf, static_cast<size_t>(r));
          }
          {
            // With the body's x-amz-content-sha256: signed (a hash) or not.
            std::string hash;
            if (auto h = lower.find("x-amz-content-sha256:"); h != std::string::npos) {
              hash = lower.substr(h + 21, lower.find("\r\n", h) - h - 21);
              while (!hash.empty() && hash.front() == ' ') hash.erase(0, 1);
            }
            std::lock_guard lock(mu_);
            requests_.push_back(line + " [" + (hash == "unsigned-payload" ? "unsigned" : "signed") + "]");
          }
          std::string status = "200 OK", answer;
          if (line.rfind("GET ", 0) == 0 && line.find("/layout ") != std::string::npos) {
            answer = "wharf-blobstore 1\n";
          } else if (line.rfind("POST ", 0) == 0 && line.find("uploads") != std::string::npos &&
                     line.find("uploadId") == std::string::npos) {
            answer = "<InitiateMultipartUploadResult><UploadId>up-1</UploadId></InitiateMultipartUploadResult>";
          }
          std::string out = "HTTP/1.1 " + status + "\r\nETag: \"e" + std::to_string(requests().size()) +
                            "\"\r\nContent-Length: " + std::to_string(answer.size()) + "\r\nConnection: close\r\n\r\n" + answer;
          (void)::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
        }) {}
  std::string url() const { return "s3://fake-store?endpoint=" + peer_.url() + "&part_size_mb=5"; }
  std::vector<std::string> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> requests_;  // GUARDED_BY(mu_)
  test::RawPeer peer_;                 // last: stops first
};

TEST_CASE("S3 blob store: a store that refuses streamed PUTs gets announced uploads in parts") {
  NoStreamingStore fake;
  test::TempDir dir;
  std::ofstream(dir / "credentials") << "[default]\naws_access_key_id = AK\naws_secret_access_key = SK\n";
  auto store = openStore(fake.url() + "&credentials=" + dir / "credentials");
  const std::string blob = pattern(6 * 1024 * 1024, 36);
  std::string id = newUuid();
  REQUIRE(store->createUpload(id).isOk());
  store->announceAppend(id, 0, blob.size());
  REQUIRE(store->append(id, 0, blob).isOk());
  REQUIRE(store->flushUpload(id).isOk());
  auto asked = fake.requests();
  size_t chunked = 0, parts = 0;
  for (const auto& r : asked) {
    if (r.find("[aws-chunked]") != std::string::npos) ++chunked;
    if (r.rfind("PUT ", 0) == 0 && r.find("partNumber=1") != std::string::npos) ++parts;
  }
  INFO(asked.size());
  CHECK(chunked == 1);  // the probe at start, and no other
  CHECK(parts == 1);
}

TEST_CASE("S3 blob store: with an unsigned payload an announced upload is one plain PUT, and bodies go unsigned") {
  NoStreamingStore fake;  // it refuses aws-chunked, not plain PUTs
  test::TempDir dir;
  std::ofstream(dir / "credentials") << "[default]\naws_access_key_id = AK\naws_secret_access_key = SK\n";
  const std::string blob = pattern(6 * 1024 * 1024, 37);
  for (bool unsigned_payload : {true, false}) {
    INFO((unsigned_payload ? "payload=unsigned" : "payload=signed"));
    size_t before = fake.requests().size();
    auto store = openStore(fake.url() + "&credentials=" + dir / "credentials" +
                           (unsigned_payload ? "&payload=unsigned" : "&payload=signed"));
    std::string id = newUuid();
    REQUIRE(store->createUpload(id).isOk());
    store->announceAppend(id, 0, blob.size());
    REQUIRE(store->append(id, 0, blob).isOk());
    REQUIRE(store->flushUpload(id).isOk());
    auto asked = fake.requests();
    size_t whole = 0, parts = 0, unsigned_bodies = 0, signed_bodies = 0, chunked = 0;
    for (size_t i = before; i < asked.size(); ++i) {
      const std::string& r = asked[i];
      if (r.find("[aws-chunked]") != std::string::npos) ++chunked;
      // (This stand-in keeps no metadata: the whole goes where blobs are copied from.)
      if (r.rfind("PUT ", 0) == 0 && r.find("/uploads/" + id + "/whole ") != std::string::npos) ++whole;
      if (r.find("partNumber=") != std::string::npos) ++parts;
      if (r.rfind("PUT ", 0) == 0 && r.find("[unsigned]") != std::string::npos) ++unsigned_bodies;
      if (r.rfind("PUT ", 0) == 0 && r.find("[signed]") != std::string::npos) ++signed_bodies;
    }
    CHECK(chunked == (unsigned_payload ? 0 : 1));  // the signed store's probe, refused
    if (unsigned_payload) {
      // The probe, the state twice and the whole: every body unsigned, no parts.
      CHECK(whole == 1);
      CHECK(parts == 0);
      CHECK(signed_bodies == 0);
      CHECK(unsigned_bodies >= 3);
    } else {
      // Signed, the store's refusal of aws-chunked sends the upload in parts.
      CHECK(whole == 0);
      CHECK(parts == 1);
      CHECK(unsigned_bodies == 0);
      CHECK(signed_bodies >= 2);
    }
  }
}

TEST_CASE("S3 blob store on Ceph: blobs", "[s3]") {
  REQUIRE_CEPH();
  auto& ceph = MicroCeph::shared();
  std::string url = ceph.freshBlobsUrl();
  auto store = openStore(url);
  CHECK_FALSE(store->hasFiles());

  Digest absent = digestOf("absent");
  CHECK(store->size(absent).status().code() == Code::kBlobUnknown);
  CHECK(store->open(absent).status().code() == Code::kBlobUnknown);
  char byte;
  CHECK(store->read(absent, 0, &byte, 1).code() == Code::kBlobUnknown);
  CHECK(store->remove(absent).code() == Code::kBlobUnknown);

  auto d = store->put("hello blobs", DigestAlgorithm::kSha256);
  REQUIRE(d.isOk());
  CHECK(*d == digestOf("hello blobs"));
  CHECK(*store->size(*d) == 11);
  auto f = store->open(*d);
  REQUIRE(f.isOk());
  CHECK(f->fd == nullptr);
  CHECK(f->size == 11);
  CHECK(readBlob(*store, *d) == "hello blobs");
  char part[5];
  REQUIRE(store->read(*d, 6, part, 5).isOk());
  CHECK(std::string(part, 5) == "blobs");
  CHECK(store->put("hello blobs", DigestAlgorithm::kSha256).isOk());  // idempotent

  std::vector<Digest> listed;
  store->forEachBlob([&](const Digest& x, uint64_t size, int64_t mtime) {
    CHECK(size == 11);
    CHECK(mtime > 0);
    listed.push_back(x);
    return true;
  });
  REQUIRE(listed.size() == 1);
  CHECK(listed[0] == *d);

  // A presigned URL serves the bytes without credentials.
  auto direct = store->directUrl(*d, 60);
  REQUIRE(direct.has_value());
  std::string rest = direct->substr(std::string("http://").size());
  std::string hostport = rest.substr(0, rest.find('/'));
  BlockingClient c(hostport.substr(0, hostport.find(':')), std::stoi(hostport.substr(hostport.find(':') + 1)));
  auto got = c.request("GET", rest.substr(rest.find('/')));
  REQUIRE(got.isOk());
  CHECK(got->status == 200);
  CHECK(got->body == "hello blobs");
  // ... and only for that blob: another key with the same signature is refused.
  std::string other = rest.substr(rest.find('/'));
  other.replace(other.find(d->hex()), d->hex().size(), digestOf("x").hex());
  auto refused = c.request("GET", other);
  REQUIRE(refused.isOk());
  CHECK(refused->status == 403);

  REQUIRE(store->remove(*d).isOk());
  CHECK(store->size(*d).status().code() == Code::kBlobUnknown);

  // Reopened, the layout is recognized; another layout is refused.
  openStore(url);
  S3Client s3(locationOf(url));
  S3Client::Call put;
  put.method = "PUT";
  put.key = "layout";
  put.body = "something else\n";
  REQUIRE(s3.call(put).isOk());
  auto refusedStore = openS3BlobStore(locationOf(url));
  REQUIRE_FALSE(refusedStore.isOk());
  CHECK(refusedStore.status().code() == Code::kCorruption);
}

TEST_CASE("S3 blob store on Ceph: a small upload continued by another replica", "[s3]") {
  REQUIRE_CEPH();
  std::string url = MicroCeph::shared().freshBlobsUrl();
  auto a = openStore(url);
  auto b = openStore(url);  // another replica
  std::string id = newUuid();
  REQUIRE(a->createUpload(id).isOk());
  CHECK(*b->uploadSize(id) == 0);
  REQUIRE(a->append(id, 0, "hello ").isOk());
  REQUIRE(a->flushUpload(id).isOk());
  REQUIRE(*b->resumeUpload(id) == 6);
  REQUIRE(b->append(id, 6, "world").isOk());
  // A status request meanwhile (GET of the upload) reads the stored size and leaves the
  // request in progress alone: its bytes are still flushed.
  CHECK(*b->uploadSize(id) == 6);
  REQUIRE(b->flushUpload(id).isOk());
  CHECK(*a->uploadSize(id) == 11);
  // Replica a comes back for the next request: what it held in memory is stale and is
  // not used.
  REQUIRE(*a->resumeUpload(id) == 11);
  CHECK(a->append(id, 6, "x").code() == Code::kRangeInvalid);
  REQUIRE(*a->resumeUpload(id) == 11);

  // A wrong digest: nothing becomes visible, the upload stays as it was.
  Digest right = digestOf("hello world");
  auto wrong = a->commitUpload(id, digestOf("other"), nullptr);
  CHECK(wrong.status().code() == Code::kDigestInvalid);
  CHECK(a->size(digestOf("other")).status().code() == Code::kBlobUnknown);
  CHECK(a->size(right).status().code() == Code::kBlobUnknown);
  CHECK(*a->uploadSize(id) == 11);

  auto size = a->commitUpload(id, right, nullptr);
  REQUIRE(size.isOk());
  CHECK(*size == 11);
  CHECK(readBlob(*b, right) == "hello world");
  CHECK(b->uploadSize(id).status().code() == Code::kBlobUploadUnknown);
  CHECK(countObjects(locationOf(url), "uploads/") == 0);
}

TEST_CASE("S3 blob store on Ceph: a large upload goes in parts, across replicas", "[s3]") {
  REQUIRE_CEPH();
  std::string url = MicroCeph::shared().freshBlobsUrl(GENERATE(std::string("part_size_mb=5"),
                                                               std::string("part_size_mb=5&payload=unsigned")));
  INFO(url);
  S3Location loc = locationOf(url);
  std::vector<std::unique_ptr<BlobStore>> replicas;
  for (int i = 0; i < 3; ++i) replicas.push_back(openStore(url));
  const std::string blob = pattern(13 * 1024 * 1024 + 12345, 7);
  std::string id = newUuid();
  REQUIRE(replicas[0]->createUpload(id).isOk());
  // Requests of 3 MiB (in pieces of 256 KiB), each on the next replica.
  size_t offset = 0;
  int request = 0;
  BlobStore* last = nullptr;  // the replica that took the last chunk
  while (offset < blob.size()) {
    BlobStore& r = *replicas[request++ % 3];
    last = &r;
    REQUIRE(*r.resumeUpload(id) == offset);
    size_t end = std::min(blob.size(), offset + (3u << 20));
    while (offset < end) {
      size_t n = std::min<size_t>(256 * 1024, end - offset);
      REQUIRE(r.append(id, offset, std::string_view(blob).substr(offset, n)).isOk());
      offset += n;
    }
    REQUIRE(r.flushUpload(id).isOk());
  }
  // One multipart upload, of the object the blob will name.
  CHECK(countMultipart(loc, "contents/" + id) == 1);
  CHECK(countMultipart(loc, "uploads/") == 0);
  // Bytes went to parts, not to the tail: what the state holds between requests stays
  // under one part.
  size_t tail_bytes = 0;
  S3Client s3(loc);
  REQUIRE(s3.list("uploads/" + id + "/tail", [&](const S3Client::Listed& l) {
                return tail_bytes += l.size, true;
              }).isOk());
  CHECK(tail_bytes < (5u << 20));

  // Finished on a replica that saw no byte: the assembled object is hashed back.
  S3Client::Call get;
  get.key = "uploads/" + id + "/state";
  auto before = s3.call(get);
  REQUIRE(before.isOk());
  Digest d = digestOf(blob);
  auto store = openStore(url);
  REQUIRE(*store->resumeUpload(id) == blob.size());
  auto size = store->commitUpload(id, d, nullptr);
  INFO(size.status().toString());
  REQUIRE(size.isOk());
  CHECK(*size == blob.size());
  CHECK(readBlob(*replicas[1], d) == blob);
  // Stored by reference: the assembled parts are the blob's bytes, not copied.
  CHECK(objectSize(loc, "contents/" + id) == static_cast<int64_t>(blob.size()));
  CHECK(objectSize(loc, "blobs/sha256/" + d.hex().substr(0, 2) + "/" + d.hex()) == 0);
  CHECK(*replicas[2]->size(d) == blob.size());
  CHECK(countMultipart(loc, "contents/") == 0);
  CHECK(countObjects(loc, "uploads/") == 0);
  // A commit whose answer was lost, tried again on the replica that took the last chunk
  // (the state back as the commit left it once the blob was named: what that replica
  // holds is stale): nothing is assembled again, and the bytes the blob names stay, also
  // through a purge of the upload.
  auto state = nlohmann::json::parse(before->body);
  CHECK(state.value("parts_in_contents", false));
  state["committing"] = d.str();
  uint64_t in_parts = 0;  // the tail went as the last part
  for (const auto& p : state["parts"]) in_parts += p["size"].get<uint64_t>();
  state["parts"].push_back({{"n", state["parts"].size() + 1}, {"etag", ""}, {"size", blob.size() - in_parts}});
  S3Client::Call put;
  put.method = "PUT";
  put.key = "uploads/" + id + "/state";
  std::string body = state.dump();
  put.body = body;
  REQUIRE(s3.call(put).isOk());
  REQUIRE(*last->resumeUpload(id) == blob.size());  // as each request starts
  auto retried = last->commitUpload(id, d, nullptr);
  INFO(retried.status().toString());
  CHECK(retried.isOk());
  REQUIRE(s3.call(put).isOk());
  REQUIRE(replicas[0]->removeUpload(id).isOk());
  CHECK(readBlob(*replicas[1], d) == blob);
  CHECK(objectSize(loc, "contents/" + id) == static_cast<int64_t>(blob.size()));
  CHECK(countObjects(loc, "uploads/") == 0);
  // Pushed again in parts: the blob is there, the second assembly goes.
  std::string again = newUuid();
  REQUIRE(replicas[1]->createUpload(again).isOk());
  REQUIRE(replicas[1]->append(again, 0, blob).isOk());
  REQUIRE(replicas[1]->commitUpload(again, d, &d).isOk());
  CHECK(objectSize(loc, "contents/" + again) == -1);
  CHECK(countMultipart(loc, "contents/") == 0);
  // Collected: the name and the assembled bytes go.
  REQUIRE(replicas[0]->remove(d, false).isOk());
  CHECK(countObjects(loc, "contents/") == 0);
  CHECK(countObjects(loc, "blobs/") == 0);
}

// Requests of an operation to S3 stores so far (wharf_s3_request_seconds's count).
uint64_t s3Requests(const std::string& op) {
  std::string text = MetricsRegistry::global().render();
  std::string key = "wharf_s3_request_seconds_count{op=\"" + op + "\"} ";
  auto at = text.find(key);
  return at == std::string::npos ? 0 : std::stoull(text.substr(at + key.size()));
}

// The part numbers S3 holds of the one multipart upload in progress of key.
std::vector<std::string> partsOf(const S3Location& loc, const std::string& key) {
  auto ids = multipartIds(loc, key);
  REQUIRE(ids.size() <= 1);
  if (ids.empty()) return {};
  S3Client s3(loc);
  S3Client::Call lp;
  lp.key = key;
  lp.query["uploadId"] = ids[0];
  auto parts = s3.call(lp);
  REQUIRE(parts.isOk());
  return xmlValues(parts->body, "PartNumber");
}

TEST_CASE("S3 blob store on Ceph: a body of unknown length streams its parts after the first as they arrive",
          "[s3]") {
  REQUIRE_CEPH();
  std::string url = MicroCeph::shared().freshBlobsUrl(GENERATE(std::string("part_size_mb=5"),
                                                               std::string("part_size_mb=5&payload=unsigned")));
  INFO(url);
  S3Location loc = locationOf(url);
  auto store = openStore(url);
  const std::string blob = pattern(17 * 1024 * 1024 + 123, 51);
  const size_t part = 5u << 20;
  std::string id = newUuid();
  REQUIRE(store->createUpload(id).isOk());
  const uint64_t streamed_before = s3Requests("put_part_streamed");
  // As a chunked PATCH arrives: pieces of 256 KiB, no length announced. The first part
  // goes once full, with the multipart upload's start; once the store has it (bytes
  // arrive over the network for that long), the next part streams as its bytes arrive:
  // once two parts and a byte are in, the second part is at the store already.
  size_t offset = 0;
  auto appendTo = [&](size_t end) {
    while (offset < end) {
      size_t n = std::min<size_t>(256 * 1024, end - offset);
      REQUIRE(store->append(id, offset, std::string_view(blob).substr(offset, n)).isOk());
      offset += n;
    }
  };
  appendTo(part + 1);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (partsOf(loc, "contents/" + id).empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling the store, with a deadline
  }
  REQUIRE(partsOf(loc, "contents/" + id).size() == 1);
  appendTo(2 * part + 1);
  auto held = partsOf(loc, "contents/" + id);
  CHECK(std::find(held.begin(), held.end(), "2") != held.end());
  appendTo(blob.size());
  REQUIRE(store->flushUpload(id).isOk());  // the fourth part, under way, stops: its bytes are the tail
  CHECK(s3Requests("put_part_streamed") - streamed_before == 2);
  CHECK(partsOf(loc, "contents/" + id).size() == 3);
  // Finished on another replica: the tail is the last part.
  auto other = openStore(url);
  REQUIRE(*other->resumeUpload(id) == blob.size());
  Digest d = digestOf(blob);
  auto size = other->commitUpload(id, d, nullptr);
  INFO(size.status().toString());
  REQUIRE(size.isOk());
  CHECK(readBlob(*store, d) == blob);
  CHECK(countMultipart(loc, "") == 0);
  CHECK(countObjects(loc, "uploads/") == 0);
}

TEST_CASE("S3 blob store on Ceph: a commit cut short once its parts were assembled is finished when tried again",
          "[s3]") {
  REQUIRE_CEPH();
  std::string url = MicroCeph::shared().freshBlobsUrl("part_size_mb=5");
  S3Location loc = locationOf(url);
  S3Client s3(loc);
  auto a = openStore(url), b = openStore(url);
  const std::string blob = pattern(11 * 1024 * 1024 + 7, 61);
  Digest d = digestOf(blob);
  std::string id = newUuid();
  REQUIRE(a->createUpload(id).isOk());
  REQUIRE(a->append(id, 0, blob).isOk());
  REQUIRE(a->flushUpload(id).isOk());
  // The upload's objects as the flush left them (state, tail).
  std::map<std::string, std::string> saved;
  REQUIRE(s3.list("uploads/" + id + "/", [&](const S3Client::Listed& l) { return saved[l.key], true; }).isOk());
  REQUIRE(saved.size() == 2);
  for (auto& [key, body] : saved) {
    S3Client::Call get;
    get.key = key;
    auto r = s3.call(get);
    REQUIRE(r.isOk());
    body = r->body;
  }
  REQUIRE(a->commitUpload(id, d, &d).isOk());
  // Back to where a commit cut short between assembling the parts and marking the state
  // stands: the assembled bytes, no name, the state and tail of the last flush.
  S3Client::Call del;
  del.method = "DELETE";
  del.key = "blobs/sha256/" + d.hex().substr(0, 2) + "/" + d.hex();
  REQUIRE(s3.call(del).isOk());
  for (const auto& [key, body] : saved) {
    S3Client::Call put;
    put.method = "PUT";
    put.key = key;
    put.body = body;
    REQUIRE(s3.call(put).isOk());
  }
  REQUIRE(objectSize(loc, "contents/" + id) == static_cast<int64_t>(blob.size()));
  // Tried again on the other replica: the store knows the multipart upload no more, the
  // assembled object is there, its digest is checked (read back), and it is named.
  REQUIRE(*b->resumeUpload(id) == blob.size());
  auto size = b->commitUpload(id, d, nullptr);
  INFO(size.status().toString());
  REQUIRE(size.isOk());
  CHECK(readBlob(*a, d) == blob);
  CHECK(countObjects(loc, "uploads/") == 0);
  CHECK(countMultipart(loc, "") == 0);
}

// Bytes under uploads/<id>/ by object name (state, whole, tail.*).
// A new upload of bytes, announced whole and appended in one piece (as a PATCH with a
// Content-Length); returns its id.
std::string streamed(BlobStore& store, const std::string& bytes) {
  std::string id = newUuid();
  REQUIRE(store.createUpload(id).isOk());
  store.announceAppend(id, 0, bytes.size());
  REQUIRE(store.append(id, 0, bytes).isOk());
  return id;
}

std::map<std::string, uint64_t> uploadObjects(const S3Location& loc, const std::string& id) {
  S3Client s3(loc);
  std::map<std::string, uint64_t> out;
  REQUIRE(s3.list("uploads/" + id + "/", [&](const S3Client::Listed& l) {
                out[l.key.substr(l.key.rfind('/') + 1)] = l.size;
                return true;
              }).isOk());
  return out;
}

TEST_CASE("S3 blob store on Ceph: an announced upload is one streamed PUT, finished on another replica", "[s3]") {
  REQUIRE_CEPH();
  // Signed in aws-chunked chunks, or (payload=unsigned) as the bytes are.
  std::string url = MicroCeph::shared().freshBlobsUrl(GENERATE(std::string("part_size_mb=5"),
                                                               std::string("part_size_mb=5&payload=unsigned")));
  INFO(url);
  S3Location loc = locationOf(url);
  auto a = openStore(url), b = openStore(url);
  // Not a multiple of the 1 MiB chunks, in pieces that do not line up with them.
  const std::string blob = pattern(11 * 1024 * 1024 + 4321, 31);
  std::string id = newUuid();
  REQUIRE(a->createUpload(id).isOk());
  REQUIRE(*a->resumeUpload(id) == 0);
  a->announceAppend(id, 0, blob.size());
  for (size_t off = 0; off < blob.size(); off += 300000) {
    REQUIRE(a->append(id, off, std::string_view(blob).substr(off, 300000)).isOk());
  }
  REQUIRE(a->flushUpload(id).isOk());
  // No multipart upload, no tail: the bytes are the one object.
  CHECK(countMultipart(loc, "uploads/" + id + "/") == 0);
  auto objects = uploadObjects(loc, id);
  CHECK(objects.size() == 1);  // the state
  CHECK(objectSize(loc, "contents/" + id) == static_cast<int64_t>(blob.size()));
  // The other replica hashes it back and commits it: by reference, without a copy.
  Digest d = digestOf(blob);
  REQUIRE(*b->resumeUpload(id) == blob.size());
  auto size = b->commitUpload(id, d, nullptr);
  INFO(size.status().toString());
  REQUIRE(size.isOk());
  CHECK(readBlob(*a, d) == blob);
  CHECK(*a->size(d) == blob.size());
  CHECK(countObjects(loc, "uploads/") == 0);
  std::string name = "blobs/sha256/" + d.hex().substr(0, 2) + "/" + d.hex();
  CHECK(objectSize(loc, name) == 0);
  CHECK(objectSize(loc, "contents/" + id) == static_cast<int64_t>(blob.size()));
  // A presigned GET (a redirect) reaches the bytes themselves.
  auto url_of = a->directUrl(d, 60);
  REQUIRE(url_of.has_value());
  CHECK(url_of->find("/contents/" + id) != std::string::npos);
  CHECK(fetch(*url_of) == blob);

  // A wrong digest: nothing under a content address, the upload left as it was.
  const std::string other = pattern(6 * 1024 * 1024, 32);
  std::string id2 = newUuid();
  REQUIRE(a->createUpload(id2).isOk());
  a->announceAppend(id2, 0, other.size());
  REQUIRE(a->append(id2, 0, other).isOk());
  Digest wrong = digestOf(std::string("not these bytes"));
  auto bad = a->commitUpload(id2, wrong, nullptr);
  CHECK(bad.status().code() == Code::kDigestInvalid);
  CHECK(a->size(wrong).status().code() == Code::kBlobUnknown);
  CHECK(a->size(digestOf(other)).status().code() == Code::kBlobUnknown);
  // And with the right one (the bytes hashed as they came), committed straight from the
  // request that sent them (a PUT with a body: no flush in between).
  Digest known = digestOf(other);
  REQUIRE(a->commitUpload(id2, known, &known).isOk());
  CHECK(readBlob(*b, known) == other);
  CHECK(countObjects(loc, "uploads/") == 0);
}

TEST_CASE("S3 blob store on Ceph: a blob stored by reference is removed whole; a purge never takes its bytes",
          "[s3]") {
  REQUIRE_CEPH();
  std::string url = MicroCeph::shared().freshBlobsUrl("part_size_mb=5");
  S3Location loc = locationOf(url);
  auto a = openStore(url), b = openStore(url);
  const std::string blob = pattern(6 * 1024 * 1024 + 17, 41);
  Digest d = digestOf(blob);
  std::string id = streamed(*a, blob);
  REQUIRE(a->commitUpload(id, d, &d).isOk());
  CHECK(readBlob(*b, d) == blob);  // b remembers where its bytes are
  // The same bytes pushed again: the blob is there, the second copy goes.
  std::string again = streamed(*b, blob);
  REQUIRE(b->commitUpload(again, d, &d).isOk());
  CHECK(objectSize(loc, "contents/" + again) == -1);
  CHECK(objectSize(loc, "contents/" + id) == static_cast<int64_t>(blob.size()));
  // Removed (by the collector on a): the name and the bytes; b, which remembered them,
  // finds it gone.
  REQUIRE(a->remove(d, false).isOk());
  CHECK(objectSize(loc, "contents/" + id) == -1);
  CHECK(countObjects(loc, "blobs/") == 0);
  std::string buf(10, '\0');
  CHECK(b->read(d, 0, buf.data(), buf.size()).code() == Code::kBlobUnknown);
  CHECK(b->size(d).status().code() == Code::kBlobUnknown);
  // Pushed again after that: b reads the new bytes, not what it remembered.
  std::string third = streamed(*a, blob);
  REQUIRE(a->commitUpload(third, d, &d).isOk());
  CHECK(readBlob(*b, d) == blob);
  // Streamed, then more bytes (copied under its name), read by b, collected, then
  // streamed again (by reference): b reads the bytes, not the empty name.
  REQUIRE(a->remove(d, false).isOk());
  std::string parts = newUuid();
  REQUIRE(a->createUpload(parts).isOk());
  a->announceAppend(parts, 0, 5u << 20);
  REQUIRE(a->append(parts, 0, std::string_view(blob).substr(0, 5u << 20)).isOk());
  REQUIRE(a->flushUpload(parts).isOk());
  REQUIRE(a->append(parts, 5u << 20, std::string_view(blob).substr(5u << 20)).isOk());
  REQUIRE(a->commitUpload(parts, d, &d).isOk());
  CHECK(objectSize(loc, "blobs/sha256/" + d.hex().substr(0, 2) + "/" + d.hex()) == static_cast<int64_t>(blob.size()));
  CHECK(readBlob(*b, d) == blob);
  REQUIRE(a->remove(d, false).isOk());
  std::string fourth = streamed(*a, blob);
  REQUIRE(a->commitUpload(fourth, d, &d).isOk());
  CHECK(readBlob(*b, d) == blob);
  auto redirect = b->directUrl(d, 60);
  REQUIRE(redirect.has_value());
  CHECK(fetch(*redirect) == blob);

  // A commit cut short after the blob was named: the state still says so, and a purge
  // of the upload (or its cancel) keeps the bytes the blob names.
  const std::string other = pattern(5 * 1024 * 1024 + 3, 42);
  Digest od = digestOf(other);
  std::string cut = streamed(*a, other);
  REQUIRE(a->commitUpload(cut, od, &od).isOk());
  S3Client s3(loc);
  S3Client::Call put;
  put.method = "PUT";
  put.key = "uploads/" + cut + "/state";
  std::string state = R"({"size":)" + std::to_string(other.size()) + R"(,"whole":)" + std::to_string(other.size()) +
                      R"(,"multipart":"","tail":"","whole_in_parts":false,"parts":[],"committing":")" + od.str() + R"("})";
  put.body = state;
  REQUIRE(s3.call(put).isOk());
  auto listed = a->listUploads();
  REQUIRE(listed.size() == 1);
  REQUIRE(b->removeUpload(cut).isOk());
  CHECK(countObjects(loc, "uploads/") == 0);
  CHECK(readBlob(*a, od) == other);
  // A commit whose answer was lost, tried again (its state back as it was): the blob
  // names this upload's bytes, which stay.
  REQUIRE(s3.call(put).isOk());
  REQUIRE(b->commitUpload(cut, od, &od).isOk());
  CHECK(readBlob(*a, od) == other);
  CHECK(objectSize(loc, "contents/" + cut) == static_cast<int64_t>(other.size()));
  // Removing a committed upload (its state gone: a cancel after the commit) keeps them.
  REQUIRE(a->removeUpload(cut).isOk());
  CHECK(readBlob(*b, od) == other);
  // An upload abandoned before its commit: its streamed bytes go with it.
  std::string left = streamed(*a, pattern(5 * 1024 * 1024, 43));
  REQUIRE(a->flushUpload(left).isOk());
  CHECK(objectSize(loc, "contents/" + left) == 5 * 1024 * 1024);
  REQUIRE(b->removeUpload(left).isOk());
  CHECK(objectSize(loc, "contents/" + left) == -1);
}

TEST_CASE("S3 blob store on Ceph: a removal cut short between a blob's name and its bytes is finished later",
          "[s3]") {
  REQUIRE_CEPH();
  std::string url = MicroCeph::shared().freshBlobsUrl("part_size_mb=5");
  S3Location loc = locationOf(url);
  S3Client s3(loc);
  auto a = openStore(url), b = openStore(url);
  auto stored = [&](int seed) {
    std::string bytes = pattern(5 * 1024 * 1024 + seed, seed);
    Digest d = digestOf(bytes);
    std::string id = streamed(*a, bytes);
    REQUIRE(a->commitUpload(id, d, &d).isOk());
    return std::make_tuple(bytes, d, id);
  };
  auto put = [&](const std::string& key, const std::string& body) {
    S3Client::Call c;
    c.method = "PUT";
    c.key = key;
    c.body = body;
    REQUIRE(s3.call(c).isOk());
  };
  // Removed whole: no marker stays.
  auto [whole, wd, wid] = stored(71);
  REQUIRE(a->remove(wd, false).isOk());
  CHECK(countObjects(loc, "removing/") == 0);
  CHECK(objectSize(loc, "contents/" + wid) == -1);
  // Cut short after the name went: the bytes nothing names are found by their marker.
  auto [cut, cd, cid] = stored(72);
  put("removing/" + cid, cd.str());
  S3Client::Call del;
  del.method = "DELETE";
  del.key = "blobs/sha256/" + cd.hex().substr(0, 2) + "/" + cd.hex();
  REQUIRE(s3.call(del).isOk());
  // Cut short before the name went: the blob stays as it is.
  auto [kept, kd, kid] = stored(73);
  put("removing/" + kid, kd.str());
  // Markers younger than the bound are a removal under way: left alone.
  auto none = b->finishRemovals(0);
  REQUIRE(none.isOk());
  CHECK(none->blobs == 0);
  CHECK(countObjects(loc, "removing/") == 2);
  auto finished = b->finishRemovals(RealClock::instance().nowMillis() + 3'600'000);
  INFO(finished.status().toString());
  REQUIRE(finished.isOk());
  CHECK(finished->blobs == 1);
  CHECK(finished->bytes == cut.size());
  CHECK(objectSize(loc, "contents/" + cid) == -1);
  CHECK(countObjects(loc, "removing/") == 0);
  CHECK(readBlob(*a, kd) == kept);
  CHECK(objectSize(loc, "contents/" + kid) == static_cast<int64_t>(kept.size()));
}

TEST_CASE("S3 blob store on Ceph: a store of layout 1 copies blobs until it is upgraded, then stores references",
          "[s3]") {
  REQUIRE_CEPH();
  std::string url = MicroCeph::shared().freshBlobsUrl("part_size_mb=5");
  S3Location loc = locationOf(url);
  { auto first = openStore(url); }  // creates the bucket and the layout
  S3Client s3(loc);
  S3Client::Call put;
  put.method = "PUT";
  put.key = "layout";
  std::string old_tag = "wharf-blobstore 1\n";
  put.body = old_tag;
  REQUIRE(s3.call(put).isOk());
  auto old_store = openStore(url);
  // Layout 1: a streamed upload's bytes where that layout keeps them, copied at commit.
  const std::string blob = pattern(6 * 1024 * 1024 + 5, 44);
  Digest d = digestOf(blob);
  std::string id = streamed(*old_store, blob);
  REQUIRE(old_store->flushUpload(id).isOk());
  CHECK(uploadObjects(loc, id)["whole"] == blob.size());
  REQUIRE(old_store->commitUpload(id, d, &d).isOk());
  std::string name = "blobs/sha256/" + d.hex().substr(0, 2) + "/" + d.hex();
  CHECK(objectSize(loc, name) == static_cast<int64_t>(blob.size()));
  CHECK(countObjects(loc, "contents/") == 0);
  // An upload streamed under layout 1, left open across the upgrade.
  const std::string pending = pattern(5 * 1024 * 1024 + 9, 45);
  Digest pd = digestOf(pending);
  std::string open_id = streamed(*old_store, pending);
  REQUIRE(old_store->flushUpload(open_id).isOk());

  CHECK(*upgradeS3BlobStoreLayout(loc));
  CHECK_FALSE(*upgradeS3BlobStoreLayout(loc));  // again: nothing to do
  auto store = openStore(url);
  CHECK(readBlob(*store, d) == blob);
  // The open upload finishes from where layout 1 put its bytes (copied).
  REQUIRE(*store->resumeUpload(open_id) == pending.size());
  REQUIRE(store->commitUpload(open_id, pd, nullptr).isOk());
  CHECK(readBlob(*store, pd) == pending);
  CHECK(countObjects(loc, "uploads/") == 0);
  // New uploads are stored by reference.
  const std::string fresh = pattern(5 * 1024 * 1024 + 11, 46);
  Digest fd = digestOf(fresh);
  std::string fresh_id = streamed(*store, fresh);
  REQUIRE(store->commitUpload(fresh_id, fd, &fd).isOk());
  CHECK(objectSize(loc, "contents/" + fresh_id) == static_cast<int64_t>(fresh.size()));
  CHECK(readBlob(*old_store, fd) == fresh);  // a core started before the upgrade reads it too
  // Another layout is refused.
  put.body = std::string("wharf-blobstore 9\n");
  REQUIRE(s3.call(put).isOk());
  CHECK(openS3BlobStore(loc).status().code() == Code::kCorruption);
  CHECK_FALSE(upgradeS3BlobStoreLayout(loc).isOk());
}

TEST_CASE("S3 blob store on Ceph: an announced request that breaks off stores nothing of it", "[s3]") {
  REQUIRE_CEPH();
  std::string url = MicroCeph::shared().freshBlobsUrl("part_size_mb=5");
  S3Location loc = locationOf(url);
  auto store = openStore(url);
  const std::string blob = pattern(7 * 1024 * 1024, 33);
  std::string id = newUuid();
  REQUIRE(store->createUpload(id).isOk());
  store->announceAppend(id, 0, blob.size());
  REQUIRE(store->append(id, 0, std::string_view(blob).substr(0, 3 << 20)).isOk());
  // The client went away: the next request on the upload starts from the stored state.
  REQUIRE(*store->resumeUpload(id) == 0);
  auto objects = uploadObjects(loc, id);
  CHECK(objects.count("whole") == 0);
  CHECK(objects.size() == 1);  // the state
  // More bytes than announced are refused, and so is a flush short of them.
  std::string id2 = newUuid();
  REQUIRE(store->createUpload(id2).isOk());
  store->announceAppend(id2, 0, blob.size());
  REQUIRE(store->append(id2, 0, std::string_view(blob).substr(0, 1 << 20)).isOk());
  CHECK_FALSE(store->flushUpload(id2).isOk());
  CHECK(*store->resumeUpload(id2) == 0);
  // Then the whole again, announced, works.
  store->announceAppend(id, 0, blob.size());
  REQUIRE(store->append(id, 0, blob).isOk());
  REQUIRE(store->flushUpload(id).isOk());
  Digest d = digestOf(blob);
  REQUIRE(store->commitUpload(id, d, nullptr).isOk());
  CHECK(readBlob(*store, d) == blob);
}

TEST_CASE("S3 blob store on Ceph: chunks after a streamed whole go on in parts, across replicas", "[s3]") {
  REQUIRE_CEPH();
  std::string url = MicroCeph::shared().freshBlobsUrl("part_size_mb=5");
  S3Location loc = locationOf(url);
  auto a = openStore(url), b = openStore(url), c = openStore(url);
  const std::string blob = pattern(19 * 1024 * 1024 + 77, 34);
  const size_t first = 6 * 1024 * 1024, second = 12 * 1024 * 1024;
  std::string id = newUuid();
  REQUIRE(a->createUpload(id).isOk());
  a->announceAppend(id, 0, first);
  REQUIRE(a->append(id, 0, std::string_view(blob).substr(0, first)).isOk());
  REQUIRE(a->flushUpload(id).isOk());
  // The next chunk, on another replica, announced too: not streamed (not the whole
  // upload), so the whole object becomes part 1.
  REQUIRE(*b->resumeUpload(id) == first);
  b->announceAppend(id, first, second - first);
  REQUIRE(b->append(id, first, std::string_view(blob).substr(first, second - first)).isOk());
  REQUIRE(b->flushUpload(id).isOk());
  CHECK(countMultipart(loc, "uploads/" + id + "/") == 1);
  // The last, small one on a third; then committed there, hashed back.
  REQUIRE(*c->resumeUpload(id) == second);
  REQUIRE(c->append(id, second, std::string_view(blob).substr(second)).isOk());
  REQUIRE(c->flushUpload(id).isOk());
  Digest d = digestOf(blob);
  REQUIRE(*a->resumeUpload(id) == blob.size());
  auto size = a->commitUpload(id, d, nullptr);
  INFO(size.status().toString());
  REQUIRE(size.isOk());
  CHECK(readBlob(*c, d) == blob);
  CHECK(countMultipart(loc, "uploads/") == 0);
  CHECK(countObjects(loc, "uploads/") == 0);

  // A streamed whole and a small tail, committed without a flush in between.
  const std::string two = pattern(5 * 1024 * 1024 + 999, 35);
  std::string id2 = newUuid();
  REQUIRE(a->createUpload(id2).isOk());
  a->announceAppend(id2, 0, 5 * 1024 * 1024);
  REQUIRE(a->append(id2, 0, two).isOk());
  Digest d2 = digestOf(two);
  REQUIRE(a->commitUpload(id2, d2, &d2).isOk());
  CHECK(readBlob(*b, d2) == two);
  CHECK(countObjects(loc, "uploads/") == 0);
}

TEST_CASE("S3 blob store on Ceph: a mismatching large upload never shows under a digest", "[s3]") {
  REQUIRE_CEPH();
  std::string url = MicroCeph::shared().freshBlobsUrl("part_size_mb=5");
  auto store = openStore(url);
  const std::string blob = pattern(6 * 1024 * 1024, 9);
  std::string id = newUuid();
  REQUIRE(store->createUpload(id).isOk());
  REQUIRE(store->append(id, 0, blob).isOk());
  Digest claimed = digestOf("not these bytes");
  // Known digest (hashed as the bytes arrived) differs from the claim.
  Digest known = digestOf(blob);
  CHECK(store->commitUpload(id, claimed, &known).status().code() == Code::kDigestInvalid);
  CHECK(store->size(claimed).status().code() == Code::kBlobUnknown);
  REQUIRE(store->removeUpload(id).isOk());
  CHECK(countMultipart(locationOf(url), "") == 0);
  CHECK(countObjects(locationOf(url), "uploads/") == 0);
  CHECK(countObjects(locationOf(url), "contents/") == 0);
}

TEST_CASE("S3 blob store on Ceph: an upload a crash left behind is listed and purged", "[s3]") {
  REQUIRE_CEPH();
  std::string url = MicroCeph::shared().freshBlobsUrl("part_size_mb=5");
  S3Location loc = locationOf(url);
  std::string id = newUuid();
  {
    auto store = openStore(url);
    REQUIRE(store->createUpload(id).isOk());
    // A part went out, then the replica died before the request ended (no flush).
    REQUIRE(store->append(id, 0, pattern(6 * 1024 * 1024, 3)).isOk());
  }
  CHECK(countMultipart(loc, "contents/" + id) == 1);
  auto store = openStore(url);
  CHECK(*store->uploadSize(id) == 0);  // what was acknowledged: nothing
  auto uploads = store->listUploads();
  REQUIRE(uploads.size() == 1);
  CHECK(uploads[0].first == id);
  CHECK(uploads[0].second > 0);
  REQUIRE(store->removeUpload(id).isOk());
  CHECK(countMultipart(loc, "contents/") == 0);
  CHECK(countObjects(loc, "uploads/") == 0);
  CHECK(store->listUploads().empty());
  CHECK(store->uploadSize(id).status().code() == Code::kBlobUploadUnknown);
}

TEST_CASE("S3 blob store on Ceph: the purge removes a multipart upload left without a state", "[s3]") {
  REQUIRE_CEPH();
  std::string url = MicroCeph::shared().freshBlobsUrl("part_size_mb=5");
  S3Location loc = locationOf(url);
  auto store = openStore(url);
  // What a request whose part went out before it failed leaves, once the upload was
  // pushed again and committed (its state gone): a multipart upload of contents/<id>.
  std::string id = newUuid();
  S3Client s3(loc);
  S3Client::Call start;
  start.method = "POST";
  start.key = "contents/" + id;
  start.query["uploads"] = "";
  REQUIRE(s3.call(start).isOk());
  REQUIRE(countMultipart(loc, "contents/") == 1);
  test::TempDir dir;
  LmdbMetadataOptions o;
  o.map_size = 64ull << 20;
  o.durable = false;
  auto meta = openLmdbMetadataStore(dir / "meta", o);
  REQUIRE(meta.isOk());
  FakeClock clock(RealClock::instance().nowMillis() + 2 * 3'600'000);
  Registry registry(*store, **meta, clock);
  CHECK(registry.purgeUploads(3'600'000) == 1);
  CHECK(countMultipart(loc, "") == 0);
  CHECK(store->listUploads().empty());
}

TEST_CASE("S3 blob store on Ceph: parts on their way when the store goes away fail the request; the stored "
          "upload is as it was and goes on from there",
          "[s3]") {
  REQUIRE_CEPH();
  auto& ceph = MicroCeph::shared();
  std::string url = ceph.freshBlobsUrl("part_size_mb=5");
  auto store = openStore(url);
  const std::string blob = pattern(26 * 1024 * 1024 + 777, 11);
  const size_t first = 11u << 20;  // two parts and a tail, flushed
  std::string id = newUuid();
  REQUIRE(store->createUpload(id).isOk());
  REQUIRE(store->append(id, 0, std::string_view(blob).substr(0, first)).isOk());
  REQUIRE(store->flushUpload(id).isOk());

  // Three more parts' worth while radosgw is down: the parts go to sender threads, so an
  // append may still say yes; the request fails by its flush at the latest, even with
  // radosgw back by then (a part that failed on its way is never skipped).
  REQUIRE(*store->resumeUpload(id) == first);
  RgwDown down(ceph);
  Status st;
  for (size_t off = first; off < first + (15u << 20) && st.isOk(); off += 1u << 20) {
    st = store->append(id, off, std::string_view(blob).substr(off, 1u << 20));
  }
  down.back();
  if (st.isOk()) st = store->flushUpload(id);
  CHECK(st.code() == Code::kUnavailable);

  // Another replica sees what was acknowledged and finishes the upload from there.
  auto other = openStore(url);
  REQUIRE(*other->resumeUpload(id) == first);
  for (size_t off = first; off < blob.size(); off += 3u << 20) {
    REQUIRE(other->append(id, off, std::string_view(blob).substr(off, std::min<size_t>(3u << 20, blob.size() - off)))
                .isOk());
  }
  Digest d = digestOf(blob);
  auto size = other->commitUpload(id, d, nullptr);
  INFO(size.status().toString());
  REQUIRE(size.isOk());
  CHECK(readBlob(*store, d) == blob);
  CHECK(countMultipart(locationOf(url), "") == 0);
}

TEST_CASE("S3 blob store on Ceph: the store away is kUnavailable, and then it is back", "[s3]") {
  REQUIRE_CEPH();
  auto& ceph = MicroCeph::shared();
  std::string url = ceph.freshBlobsUrl();
  auto store = openStore(url);
  auto d = store->put("before", DigestAlgorithm::kSha256);
  REQUIRE(d.isOk());
  std::string id = newUuid();
  REQUIRE(store->createUpload(id).isOk());
  // An upload whose first part (and so the start of its multipart upload, sent with it on
  // a sender thread) meets the store away.
  auto parts = openStore(ceph.freshBlobsUrl("part_size_mb=5"));
  const std::string large = pattern(6 * 1024 * 1024, 21);
  std::string large_id = newUuid();
  REQUIRE(parts->createUpload(large_id).isOk());
  RgwDown down(ceph);
  CHECK(store->size(*d).status().code() == Code::kUnavailable);
  CHECK(store->put("during", DigestAlgorithm::kSha256).status().code() == Code::kUnavailable);
  REQUIRE(store->append(id, 0, "during").isOk());  // in memory until the request ends
  CHECK(store->flushUpload(id).code() == Code::kUnavailable);
  CHECK(openS3BlobStore(locationOf(url)).status().code() == Code::kUnavailable);
  Status st = parts->append(large_id, 0, large);  // may say yes: the part is on its way
  if (st.isOk()) st = parts->flushUpload(large_id);
  CHECK(st.code() == Code::kUnavailable);
  down.back();
  CHECK(readBlob(*store, *d) == "before");
  CHECK(*store->uploadSize(id) == 0);  // the failed flush acknowledged nothing
  CHECK(store->size(digestOf("during")).status().code() == Code::kBlobUnknown);
  // The large upload goes on from what was acknowledged: nothing.
  REQUIRE(*parts->resumeUpload(large_id) == 0);
  REQUIRE(parts->append(large_id, 0, large).isOk());
  Digest ld = digestOf(large);
  REQUIRE(parts->commitUpload(large_id, ld, &ld).isOk());
  CHECK(readBlob(*parts, ld) == large);
}

}  // namespace s3_blob_store_test
