#include <catch2/catch.hpp>

#include <archive.h>
#include <archive_entry.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <string>
#include <tuple>
#include <vector>

#include "core/scan/layer_scan.h"

// Each file's own names: the test binaries are unity builds.
namespace layer_scan_test {

using namespace wharf;

namespace {

struct Member {
  std::string path;
  std::string content;
  unsigned mode = 0644;
  bool is_symlink = false;
  bool is_dir = false;
};

Member file(std::string path, std::string content, unsigned mode = 0644) {
  return Member{std::move(path), std::move(content), mode, false, false};
}
Member link(std::string path, std::string target) { return Member{std::move(path), std::move(target), 0777, true, false}; }
Member directory(std::string path) { return Member{std::move(path), "", 0755, false, true}; }

la_ssize_t appendTo(struct archive*, void* opaque, const void* buf, size_t n) {
  static_cast<std::string*>(opaque)->append(static_cast<const char*>(buf), n);
  return la_ssize_t(n);
}

std::string tarOf(const std::vector<Member>& members) {
  std::string out;
  struct archive* a = archive_write_new();
  REQUIRE(a != nullptr);
  REQUIRE(archive_write_set_format_pax_restricted(a) == ARCHIVE_OK);
  REQUIRE(archive_write_open(a, &out, nullptr, appendTo, nullptr) == ARCHIVE_OK);
  for (const auto& m : members) {
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, m.path.c_str());
    archive_entry_set_perm(e, m.mode);
    if (m.is_symlink) {
      archive_entry_set_filetype(e, AE_IFLNK);
      archive_entry_set_symlink(e, m.content.c_str());
    } else if (m.is_dir) {
      archive_entry_set_filetype(e, AE_IFDIR);
    } else {
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_size(e, la_int64_t(m.content.size()));
    }
    REQUIRE(archive_write_header(a, e) == ARCHIVE_OK);
    if (!m.is_symlink && !m.is_dir && !m.content.empty())
      REQUIRE(archive_write_data(a, m.content.data(), m.content.size()) == la_ssize_t(m.content.size()));
    archive_entry_free(e);
  }
  REQUIRE(archive_write_close(a) == ARCHIVE_OK);
  archive_write_free(a);
  return out;
}

std::string gzip(const std::string& data) {
  uLongf bound = compressBound(uLong(data.size())) + 64;
  std::string out(bound, '\0');
  z_stream z;
  std::memset(&z, 0, sizeof z);
  REQUIRE(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = uInt(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = uInt(out.size());
  REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// The layer's bytes, handed out chunk bytes at a time.
Result<LayerScan> scan(const std::string& blob, const ScanLimits& limits = ScanLimits(), size_t chunk = 1 << 20) {
  size_t pos = 0;
  ByteSource src = [&](char* buf, size_t n) -> Result<size_t> {
    size_t k = std::min({n, chunk, blob.size() - pos});
    std::memcpy(buf, blob.data() + pos, k);
    pos += k;
    return k;
  };
  return scanLayer(src, blob.size(), limits);
}

LayerScan scanOk(const std::vector<Member>& members) {
  auto r = scan(gzip(tarOf(members)));
  INFO(r.status().message());
  REQUIRE(r.isOk());
  return *r;
}

std::string dpkgStanza(const std::string& name, const std::string& version, const std::string& source = "") {
  std::string s = "Package: " + name + "\nStatus: install ok installed\nArchitecture: amd64\n";
  if (!source.empty()) s += "Source: " + source + "\n";
  return s + "Version: " + version + "\nDescription: " + name + "\n the package " + name + "\n\n";
}

// A Go executable as far as the scanner looks: an ELF header, then the linker's build
// info blob (Go 1.18+ inline format) at a 16-aligned offset.
std::string goBinary() {
  auto uvarint = [](uint64_t v) {
    std::string out;
    do {
      uint8_t b = v & 0x7f;
      v >>= 7;
      if (v != 0) b |= 0x80;
      out += char(b);
    } while (v != 0);
    return out;
  };
  const std::string info_start("\x30\x77\xaf\x0c\x92\x74\x08\x02\x41\xe1\xc1\x07\xe6\xd6\x18\xe6", 16);
  const std::string info_end("\xf9\x32\x43\x31\x86\x18\x20\x72\x00\x82\x42\x10\x41\x16\xd8\xf2", 16);
  const std::string modinfo = info_start +
                              "path\texample.com/server\n"
                              "mod\texample.com/server\t(devel)\t\n"
                              "dep\tgolang.org/x/net\tv0.15.0\th1:abc=\n"
                              "build\tGOOS=linux\n" +
                              info_end;
  std::string b("\xff Go buildinf:", 14);
  b += char(8);
  b += char(2);
  b += std::string(16, '\0');
  const std::string version = "go1.21.1";
  b += uvarint(version.size()) + version + uvarint(modinfo.size()) + modinfo;
  while (b.size() % 16 != 0) b += '\0';
  std::string f("\x7f" "ELF\x02\x01\x01\x00", 8);
  f += std::string(4096 - 8, 'j');
  f += b;
  f += std::string(3000, 'k');
  return f;
}

const char* kDebianOsRelease =
    "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n";

// "type:name@version<layer" for each package of the inventory, in its order.
std::vector<std::string> summary(const ImageInventory& inv) {
  std::vector<std::string> out;
  for (const auto& p : inv.packages) out.push_back(p.type + ":" + p.name + "@" + p.version + "<" + p.layer);
  return out;
}

bool contains(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

}  // namespace

TEST_CASE("layer scan: packages of every kind in one layer", "[core][scan]") {
  LayerScan s = scanOk({
      directory("./"),
      directory("./etc/"),
      file("./etc/os-release", kDebianOsRelease),
      link("./usr/lib/os-release", "../../etc/os-release"),  // symlinks are not read
      file("./var/lib/dpkg/status", dpkgStanza("libc6", "2.36-9+deb12u1", "glibc") + dpkgStanza("bash", "5.2.15-2+b2", "bash (5.2.15-2)")),
      file("./var/lib/dpkg/status-old", dpkgStanza("old", "1.0")),
      file("./lib/apk/db/installed", "P:musl\nV:1.2.4-r2\nA:x86_64\no:musl\n\nP:libcrypto3\nV:3.1.4-r0\no:openssl\n"),
      file("./usr/lib/python3/dist-packages/Django-4.2.6.dist-info/METADATA", "Name: Django\nVersion: 4.2.6\n\nbody\n"),
      file("./app/node_modules/x/package.json", R"({"name": "x", "version": "1.2.3"})"),
      file("./app/package.json", R"({"name": "app", "version": "0.0.1"})"),
      file("./app/package-lock.json",
           R"({"lockfileVersion": 3, "packages": {"": {"name": "app"}, "node_modules/x": {"version": "1.2.3"}}})"),
      file("./usr/bin/script", "#!/bin/sh\nexit 0\n" + std::string(100, '#'), 0755),
      file("./usr/bin/not-go", std::string("\x7f" "ELF", 4) + std::string(200, '\0'), 0755),
      file("./var/lib/dpkg/.wh.available", ""),
      file("./opt/.wh..wh..opq", ""),
  });

  std::vector<std::string> got;
  for (const auto& p : s.packages) got.push_back(p.type + ":" + p.name + "@" + p.version + " " + p.path);
  std::sort(got.begin(), got.end());
  CHECK(got == std::vector<std::string>{
                   "apk:libcrypto3@3.1.4-r0 lib/apk/db/installed",
                   "apk:musl@1.2.4-r2 lib/apk/db/installed",
                   "deb:bash@5.2.15-2+b2 var/lib/dpkg/status",
                   "deb:libc6@2.36-9+deb12u1 var/lib/dpkg/status",
                   "npm:x@1.2.3 app/node_modules/x/package.json",
                   "npm:x@1.2.3 app/package-lock.json",
                   "pypi:django@4.2.6 usr/lib/python3/dist-packages/Django-4.2.6.dist-info/METADATA",
               });
  for (const auto& p : s.packages) CHECK(p.layer.empty());
  for (const auto& p : s.packages)
    if (p.name == "libc6") CHECK(p.source_name == "glibc");

  REQUIRE(s.os.size() == 1);
  CHECK(s.os[0].id == "debian");
  CHECK(s.os[0].version_id == "12");
  CHECK(s.os[0].path == "etc/os-release");
  CHECK(s.whiteouts == std::vector<std::string>{"var/lib/dpkg/available"});
  CHECK(s.opaque == std::vector<std::string>{"opt"});
  CHECK(s.warnings.empty());
  CHECK(contains(s.recorded, "var/lib/dpkg/status"));
  CHECK(contains(s.recorded, "lib/apk/db/installed"));
  CHECK(contains(s.recorded, "app/package-lock.json"));
  CHECK(!contains(s.recorded, "var/lib/dpkg/status-old"));
  CHECK(!contains(s.recorded, "usr/bin/not-go"));  // an ELF without Go build info
  CHECK(!contains(s.recorded, "app/package.json"));
  CHECK(s.stats.members == 15);
  CHECK(s.stats.expanded_bytes > 0);
}

TEST_CASE("layer scan: Go executables are found whatever the chunking of the stream", "[core][scan]") {
  const std::string tar = tarOf({file("etc/hostname", "h\n"), file("usr/bin/server", goBinary(), 0755),
                                 file("usr/share/server.bin", goBinary(), 0644)});  // not executable: not read
  for (const std::string& blob : {tar, gzip(tar)}) {
    for (size_t chunk : {size_t(1), size_t(2), size_t(3), size_t(511), size_t(4096), size_t(1) << 20}) {
      INFO("chunk " << chunk << ", " << (blob.size() == tar.size() ? "tar" : "gzip"));
      auto r = scan(blob, ScanLimits(), chunk);
      INFO(r.status().message());
      REQUIRE(r.isOk());
      std::vector<std::string> got;
      for (const auto& p : r->packages) got.push_back(p.type + ":" + p.name + "@" + p.version + " " + p.path);
      std::sort(got.begin(), got.end());
      CHECK(got == std::vector<std::string>{"golang:golang.org/x/net@v0.15.0 usr/bin/server",
                                            "golang:stdlib@v1.21.1 usr/bin/server"});
      CHECK(r->recorded == std::vector<std::string>{"usr/bin/server"});
      CHECK(r->warnings.empty());
    }
  }
}

TEST_CASE("layer scan: files that do not parse are warnings, not failures", "[core][scan]") {
  ScanLimits limits;
  limits.max_manifest_bytes = 4096;
  std::string blob = gzip(tarOf({
      file("app/node_modules/broken/package.json", "{\"name\": \"broken\", "),
      file("app/package-lock.json", "not json at all"),
      file("var/lib/dpkg/status", dpkgStanza("huge", "1.0") + std::string(5000, '#')),
      file("app/node_modules/fine/package.json", R"({"name": "fine", "version": "2.0.0"})"),
  }));
  auto r = scan(blob, limits);
  INFO(r.status().message());
  REQUIRE(r.isOk());
  REQUIRE(r->packages.size() == 1);
  CHECK(r->packages[0].name == "fine");
  REQUIRE(r->warnings.size() == 3);
  CHECK(r->warnings[0].find("app/node_modules/broken/package.json") == 0);
  CHECK(r->warnings[1].find("app/package-lock.json") == 0);
  CHECK(r->warnings[2].find("var/lib/dpkg/status") == 0);
  CHECK(r->warnings[2].find("4096") != std::string::npos);
  // A file that did not parse is not a recording: what lower layers recorded stands.
  CHECK(r->recorded == std::vector<std::string>{"app/node_modules/fine/package.json"});
}

TEST_CASE("layer scan: a broken stream fails the layer", "[core][scan]") {
  std::string blob = gzip(tarOf({file("var/lib/dpkg/status", dpkgStanza("a", "1") + std::string(200000, 'x')),
                                 file("etc/os-release", kDebianOsRelease)}));
  SECTION("truncated") {
    auto r = scan(blob.substr(0, blob.size() / 2));
    REQUIRE(!r.isOk());
    CHECK(r.status().code() == Code::kInvalidArgument);
  }
  SECTION("a path climbing out") {
    auto r = scan(tarOf({file("../etc/os-release", kDebianOsRelease)}));
    REQUIRE(!r.isOk());
    CHECK(r.status().message().find("../etc/os-release") != std::string::npos);
  }
  SECTION("over the expansion limit") {
    ScanLimits limits;
    limits.layer.max_expanded_bytes = 100000;
    auto r = scan(blob, limits);
    REQUIRE(!r.isOk());
    CHECK(r.status().code() == Code::kTooLarge);
  }
}

TEST_CASE("layer scan: to JSON and back", "[core][scan]") {
  LayerScan s = scanOk({
      file("etc/os-release", kDebianOsRelease),
      file("usr/lib/os-release", "ID=debian\nVERSION_ID=11\n"),
      file("var/lib/dpkg/status", dpkgStanza("libc6", "2.36-9+deb12u1", "glibc") + dpkgStanza("bash", "5.2.15-2+b2", "bash (5.2.15-2)")),
      file("var/lib/dpkg/status.d/empty", ""),
      file("app/node_modules/broken/package.json", "{"),
      file("a/.wh.b", ""),
      file("c/.wh..wh..opq", ""),
  });
  REQUIRE(s.packages.size() == 2);
  REQUIRE(s.warnings.size() == 1);
  auto j = layerScanToJson(s);
  CHECK(j["version"] == kLayerScanVersion);
  // Through text, as the store keeps it.
  auto back = layerScanFromJson(nlohmann::json::parse(j.dump()));
  INFO(back.status().message());
  REQUIRE(back.isOk());
  CHECK(back->packages == s.packages);
  CHECK(back->recorded == s.recorded);
  CHECK(back->recorded == std::vector<std::string>{"var/lib/dpkg/status", "var/lib/dpkg/status.d/empty"});
  REQUIRE(back->os.size() == 2);
  for (size_t i = 0; i < 2; ++i) {
    CHECK(back->os[i].id == s.os[i].id);
    CHECK(back->os[i].version_id == s.os[i].version_id);
    CHECK(back->os[i].pretty_name == s.os[i].pretty_name);
    CHECK(back->os[i].path == s.os[i].path);
  }
  CHECK(back->whiteouts == std::vector<std::string>{"a/b"});
  CHECK(back->opaque == std::vector<std::string>{"c"});
  CHECK(back->warnings == s.warnings);
  CHECK(back->stats.members == s.stats.members);
  CHECK(back->stats.compressed_bytes == s.stats.compressed_bytes);
  CHECK(back->stats.expanded_bytes == s.stats.expanded_bytes);
  CHECK(layerScanToJson(*back) == j);

  auto other = j;
  other["version"] = kLayerScanVersion + 1;
  CHECK(layerScanFromJson(other).status().code() == Code::kNotFound);
  CHECK(!layerScanFromJson(nlohmann::json::array()).isOk());
  auto bad = j;
  bad["packages"] = nlohmann::json::array({nlohmann::json{{"name", "no type"}}});
  CHECK(!layerScanFromJson(bad).isOk());

  // Documents of the wrong shape are refused or read around, never thrown at the caller.
  for (const char* field : {"version", "members", "compressed_bytes", "expanded_bytes"}) {
    auto odd = j;
    odd[field] = "1";
    INFO(field);
    Result<LayerScan> r = Status(Code::kInternal, "not run");
    CHECK_NOTHROW(r = layerScanFromJson(odd));
    if (std::string(field) == "version") CHECK(!r.isOk());
  }
  auto odd_os = j;
  odd_os["os"] = nlohmann::json::array({nlohmann::json{{"id", 12}, {"version_id", nlohmann::json::array()}, {"path", "etc/os-release"}}});
  Result<LayerScan> r = Status(Code::kInternal, "not run");
  CHECK_NOTHROW(r = layerScanFromJson(odd_os));
  if (r.isOk() && !r->os.empty()) CHECK(r->os[0].path == "etc/os-release");
}

TEST_CASE("layer scan: stacking layers", "[core][scan]") {
  LayerScan base = scanOk({
      file("usr/lib/os-release", "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"),
      link("etc/os-release", "../usr/lib/os-release"),
      file("var/lib/dpkg/status", dpkgStanza("libc6", "2.36-9+deb12u1", "glibc") + dpkgStanza("zlib1g", "1:1.2.13.dfsg-1", "zlib")),
      file("usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA", "Name: six\nVersion: 1.16.0\n"),
      file("usr/lib/python3/dist-packages/idna-3.3.dist-info/METADATA", "Name: idna\nVersion: 3.3\n"),
      file("app/node_modules/x/package.json", R"({"name": "x", "version": "1.0.0"})"),
  });

  SECTION("one layer") {
    ImageInventory inv = stackLayers({{"sha256:base", &base}});
    CHECK(summary(inv) == std::vector<std::string>{"deb:libc6@2.36-9+deb12u1<sha256:base",
                                                   "deb:zlib1g@1:1.2.13.dfsg-1<sha256:base",
                                                   "npm:x@1.0.0<sha256:base", "pypi:idna@3.3<sha256:base",
                                                   "pypi:six@1.16.0<sha256:base"});
    // etc/os-release is a symlink here: usr/lib/os-release is the one read.
    CHECK(inv.os.id == "debian");
    CHECK(inv.os.version_id == "12");
    CHECK(inv.os.path == "usr/lib/os-release");
  }

  SECTION("a later layer rewriting the status file with one more package") {
    LayerScan upper = scanOk({file("var/lib/dpkg/status", dpkgStanza("libc6", "2.36-9+deb12u1", "glibc") +
                                                               dpkgStanza("zlib1g", "1:1.2.13.dfsg-1", "zlib") +
                                                               dpkgStanza("curl", "7.88.1-10+deb12u4"))});
    ImageInventory inv = stackLayers({{"sha256:base", &base}, {"sha256:upper", &upper}});
    auto s = summary(inv);
    CHECK(contains(s, "deb:libc6@2.36-9+deb12u1<sha256:base"));
    CHECK(contains(s, "deb:zlib1g@1:1.2.13.dfsg-1<sha256:base"));
    CHECK(contains(s, "deb:curl@7.88.1-10+deb12u4<sha256:upper"));
    CHECK(s.size() == 6);

    // And a third that upgrades one and removes another.
    LayerScan third = scanOk({file("var/lib/dpkg/status", dpkgStanza("libc6", "2.36-9+deb12u3", "glibc") +
                                                               dpkgStanza("curl", "7.88.1-10+deb12u4"))});
    ImageInventory inv3 = stackLayers({{"sha256:base", &base}, {"sha256:upper", &upper}, {"sha256:third", &third}});
    auto s3 = summary(inv3);
    CHECK(contains(s3, "deb:libc6@2.36-9+deb12u3<sha256:third"));
    CHECK(contains(s3, "deb:curl@7.88.1-10+deb12u4<sha256:upper"));
    CHECK(!contains(s3, "deb:zlib1g@1:1.2.13.dfsg-1<sha256:base"));
    CHECK(!contains(s3, "deb:libc6@2.36-9+deb12u1<sha256:base"));
    CHECK(s3.size() == 5);
  }

  SECTION("a whiteout of the status file removes its packages") {
    LayerScan upper = scanOk({file("var/lib/dpkg/.wh.status", "")});
    REQUIRE(upper.whiteouts == std::vector<std::string>{"var/lib/dpkg/status"});
    ImageInventory inv = stackLayers({{"sha256:base", &base}, {"sha256:upper", &upper}});
    for (const auto& p : inv.packages) CHECK(p.type != "deb");
    CHECK(inv.packages.size() == 3);

    // Written again later: its packages start over in that layer.
    LayerScan again = scanOk({file("var/lib/dpkg/status", dpkgStanza("libc6", "2.36-9+deb12u1", "glibc"))});
    ImageInventory inv2 = stackLayers({{"sha256:base", &base}, {"sha256:upper", &upper}, {"sha256:again", &again}});
    CHECK(contains(summary(inv2), "deb:libc6@2.36-9+deb12u1<sha256:again"));
  }

  SECTION("a whiteout of a directory removes what was recorded under it") {
    LayerScan upper = scanOk({file("usr/lib/python3/dist-packages/.wh.six-1.16.0.dist-info", ""),
                              file("app/.wh.node_modules", "")});
    ImageInventory inv = stackLayers({{"sha256:base", &base}, {"sha256:upper", &upper}});
    auto s = summary(inv);
    CHECK(!contains(s, "pypi:six@1.16.0<sha256:base"));
    CHECK(contains(s, "pypi:idna@3.3<sha256:base"));
    CHECK(!contains(s, "npm:x@1.0.0<sha256:base"));
    CHECK(s.size() == 3);
  }

  SECTION("a whiteout of a sibling with a common prefix removes nothing") {
    LayerScan upper = scanOk({file("var/lib/dpkg/.wh.stat", ""), file("usr/lib/python3/.wh.dist-pack", "")});
    ImageInventory inv = stackLayers({{"sha256:base", &base}, {"sha256:upper", &upper}});
    CHECK(inv.packages.size() == 5);
  }

  SECTION("an opaque directory hides lower contents, not its own layer's") {
    LayerScan upper = scanOk({
        file("usr/lib/python3/dist-packages/.wh..wh..opq", ""),
        file("usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA", "Name: requests\nVersion: 2.31.0\n"),
    });
    ImageInventory inv = stackLayers({{"sha256:base", &base}, {"sha256:upper", &upper}});
    auto s = summary(inv);
    CHECK(!contains(s, "pypi:six@1.16.0<sha256:base"));
    CHECK(!contains(s, "pypi:idna@3.3<sha256:base"));
    CHECK(contains(s, "pypi:requests@2.31.0<sha256:upper"));
    CHECK(contains(s, "deb:libc6@2.36-9+deb12u1<sha256:base"));
    CHECK(s.size() == 4);

    // The order of members within the layer does not matter: opaque markers come first.
    LayerScan reordered = scanOk({
        file("usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA", "Name: requests\nVersion: 2.31.0\n"),
        file("usr/lib/python3/dist-packages/.wh..wh..opq", ""),
    });
    CHECK(summary(stackLayers({{"sha256:base", &base}, {"sha256:upper", &reordered}})) == s);
  }

  SECTION("an opaque root hides everything below") {
    LayerScan upper = scanOk({file(".wh..wh..opq", ""), file("etc/os-release", "ID=alpine\nVERSION_ID=3.18.4\n")});
    REQUIRE(upper.opaque == std::vector<std::string>{""});
    ImageInventory inv = stackLayers({{"sha256:base", &base}, {"sha256:upper", &upper}});
    CHECK(inv.packages.empty());
    CHECK(inv.os.id == "alpine");
  }

  SECTION("os-release: etc over usr/lib, and the upper layer's") {
    LayerScan upper = scanOk({file("etc/os-release", "ID=ubuntu\nVERSION_ID=\"22.04\"\n")});
    ImageInventory inv = stackLayers({{"sha256:base", &base}, {"sha256:upper", &upper}});
    CHECK(inv.os.id == "ubuntu");
    CHECK(inv.os.path == "etc/os-release");

    // Both in one layer: etc/os-release wins whatever the order.
    LayerScan both = scanOk({file("etc/os-release", "ID=debian\nVERSION_ID=12\n"),
                             file("usr/lib/os-release", "ID=debian\nVERSION_ID=11\n")});
    ImageInventory inv2 = stackLayers({{"sha256:both", &both}});
    CHECK(inv2.os.version_id == "12");

    // A later whiteout of etc/os-release: usr/lib/os-release again.
    LayerScan gone = scanOk({file("etc/.wh.os-release", "")});
    ImageInventory inv3 = stackLayers({{"sha256:both", &both}, {"sha256:gone", &gone}});
    CHECK(inv3.os.version_id == "11");
    CHECK(inv3.os.path == "usr/lib/os-release");

    ImageInventory none = stackLayers({});
    CHECK(none.os.empty());
    CHECK(none.packages.empty());
  }

  SECTION("the same layer twice keeps the lower as the introducer") {
    ImageInventory inv = stackLayers({{"sha256:base", &base}, {"sha256:base2", &base}});
    for (const auto& p : inv.packages) CHECK(p.layer == "sha256:base");
  }

  SECTION("an emptied status file removes everything it listed") {
    LayerScan upper = scanOk({file("var/lib/dpkg/status", "")});
    REQUIRE(upper.recorded == std::vector<std::string>{"var/lib/dpkg/status"});
    ImageInventory inv = stackLayers({{"sha256:base", &base}, {"sha256:upper", &upper}});
    for (const auto& p : inv.packages) CHECK(p.type != "deb");
  }

  SECTION("the inventory is sorted by type, name, version, path") {
    ImageInventory inv = stackLayers({{"sha256:base", &base}});
    CHECK(std::is_sorted(inv.packages.begin(), inv.packages.end(), [](const Package& a, const Package& b) {
      return std::tie(a.type, a.name, a.version, a.path) < std::tie(b.type, b.name, b.version, b.path);
    }));
  }
}

}  // namespace layer_scan_test
