// A full disk against the real wharf-core, on a small tmpfs: an upload that runs out of
// space is answered 507 with the registry's error body and leaves no partial files; the
// core keeps serving reads; under the free-space reserve pushes are refused up front
// (507) while reads go on, /healthz and /metrics say so, and pushes resume once space
// is freed. Needs root (mount); skipped otherwise.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "shared/oci/digest.h"
#include "tests/support/http_client.h"
#include "tests/support/oci_layout.h"
#include "tests/support/process.h"

// Each file's own names: the test binaries are unity builds.
namespace disk_full_test {

using namespace wharf;
using namespace wharf::test;
using nlohmann::json;

namespace {

// A tmpfs mounted for the test's life.
class Tmpfs {
 public:
  Tmpfs(const std::string& path, const std::string& size) : path_(path) {
    std::filesystem::create_directories(path);
    mounted_ = ::mount("tmpfs", path.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
  }
  ~Tmpfs() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }

 private:
  std::string path_;
  bool mounted_ = false;
};

std::string errorCode(const HttpResponse& r) {
  auto j = json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("errors") || j["errors"].empty()) return "(none: " + r.body + ")";
  return j["errors"][0].value("code", "");
}

size_t entries(const std::string& dir) {
  std::error_code ec;
  size_t n = 0;
  for (auto it = std::filesystem::directory_iterator(dir, ec); !ec && it != std::filesystem::directory_iterator(); ++it) ++n;
  return n;
}

uint64_t freeBytes(const std::string& path) {
  struct statvfs v {};
  ::statvfs(path.c_str(), &v);
  return static_cast<uint64_t>(v.f_bavail) * v.f_frsize;
}

}  // namespace

TEST_CASE("a full disk answers 507, leaves no partial files, and reads go on", "[hardening][disk]") {
  if (::geteuid() != 0) {
    WARN("not root: cannot mount a tmpfs; skipped");
    return;
  }
  TempDir temp;
  Tmpfs fs(temp / "disk", "48m");
  if (!fs.mounted()) {
    WARN("cannot mount a tmpfs here; skipped");
    return;
  }
  std::string data = temp / "disk/core";
  CoreServer core(data);  // reserve: min(1 GiB, 5 % of 48 MiB) = 2.4 MiB
  HttpClient c("127.0.0.1", core.port());

  std::string small = randomData(4 << 20, 1);
  std::string small_digest = digestOf(small).str();
  auto put = c.request("POST", "/v2/full/app/blobs/uploads/?digest=" + small_digest, {}, small);
  REQUIRE(put.isOk());
  REQUIRE(put->status == 201);

  SECTION("an upload that runs out of space mid-way") {
    auto start = c.request("POST", "/v2/full/app/blobs/uploads/");
    REQUIRE(start.isOk());
    REQUIRE(start->status == 202);
    std::string location = start->header("location");
    std::string chunk = randomData(8 << 20, 2);
    HttpResponse last;
    for (int i = 0; i < 10; ++i) {
      auto r = c.request("PATCH", location, {{"Content-Type", "application/octet-stream"}}, chunk);
      REQUIRE(r.isOk());
      last = *r;
      if (r->status != 202) break;
    }
    CHECK(last.status == 507);
    CHECK(errorCode(last) == "UNKNOWN");
    CHECK(last.body.find("insufficient storage") != std::string::npos);
    // The upload's bytes are gone at once, and nothing half-written stays.
    CHECK(waitFor([&] { return entries(data + "/uploads") == 0; }, 10000));
    CHECK(entries(data + "/tmp") == 0);
    // A monolithic push that cannot fit fails the same way.
    std::string big = randomData(60 << 20, 3);
    auto mono = c.request("POST", "/v2/full/app/blobs/uploads/?digest=" + digestOf(big).str(), {}, big);
    REQUIRE(mono.isOk());
    CHECK(mono->status == 507);
    CHECK(waitFor([&] { return entries(data + "/uploads") == 0 && entries(data + "/tmp") == 0; }, 10000));
  }

  SECTION("under the reserve pushes are refused up front and reads go on") {
    // Fill the disk outside the data directory until less than the reserve is free.
    std::string filler = temp / "disk/filler";
    {
      uint64_t leave = 1 << 20;  // 1 MiB free: under the 2.4 MiB reserve
      uint64_t fill = freeBytes(data) - leave;
      std::ofstream f(filler, std::ios::binary);
      std::string block(1 << 20, 'f');
      for (uint64_t done = 0; done + block.size() <= fill && f; done += block.size()) f.write(block.data(), block.size());
    }
    REQUIRE(waitFor([&] {
      auto h = c.request("GET", "/healthz");
      return h.isOk() && h->status == 200 && h->body.find("\"low_space\"") != std::string::npos;
    }, 5000));
    auto refused = c.request("POST", "/v2/full/app/blobs/uploads/");
    REQUIRE(refused.isOk());
    CHECK(refused->status == 507);
    CHECK(refused->body.find("reserve") != std::string::npos);
    auto manifest = c.request("PUT", "/v2/full/app/manifests/v1",
                              {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}}, "{}");
    REQUIRE(manifest.isOk());
    CHECK(manifest->status == 507);
    auto read = c.request("GET", "/v2/full/app/blobs/" + small_digest);
    REQUIRE(read.isOk());
    CHECK(read->status == 200);
    CHECK(read->body == small);
    auto metrics = c.request("GET", "/metrics");
    REQUIRE(metrics.isOk());
    CHECK(metrics->body.find("wharf_disk_low 1") != std::string::npos);
    // Space comes back: pushes resume by themselves.
    std::filesystem::remove(filler);
    CHECK(waitFor([&] {
      auto r = c.request("POST", "/v2/full/app/blobs/uploads/");
      return r.isOk() && r->status == 202;
    }, 5000));
  }
  CHECK(core.process().running());
}

}  // namespace disk_full_test
