#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/scan/go_buildinfo.h"

// Each file's own names: the test binaries are unity builds.
namespace go_buildinfo_test {

using namespace wharf;

namespace {

// cmd/go's modinfo sentinels (modload.infoStart, infoEnd).
const std::string kInfoStart("\x30\x77\xaf\x0c\x92\x74\x08\x02\x41\xe1\xc1\x07\xe6\xd6\x18\xe6", 16);
const std::string kInfoEnd("\xf9\x32\x43\x31\x86\x18\x20\x72\x00\x82\x42\x10\x41\x16\xd8\xf2", 16);
const std::string kMagic("\xff Go buildinf:", 14);

// A realistic modinfo, as `go build` writes it (runtime/debug.BuildInfo.String without
// the go line): a (devel) main module, deps with sums, a replaced dep (its line then
// has no sum), a local directory replacement, build settings.
const std::string kModInfo =
    "path\tgithub.com/example/server/cmd/server\n"
    "mod\tgithub.com/example/server\t(devel)\t\n"
    "dep\tgithub.com/google/uuid\tv1.3.0\th1:t6JiXgmwXMjEs8VusXIJk2BXHsn+wx8BZdTaoZ5fu7I=\n"
    "dep\tgithub.com/sirupsen/logrus\tv1.9.0\n"
    "=>\t../logrus-fork\t(devel)\t\n"
    "dep\tgolang.org/x/net\tv0.7.0\th1:rJrUqqhjsgNp7KqAIc25s9pZnjU7TUcSY7HcVZjdn1g=\n"
    "dep\tgolang.org/x/sys\tv0.5.0\th1:MUK/U/4lj1t1oPg0HfuXDN/Z1wv31ZJ/YcPiGccS4DU=\n"
    "dep\tgolang.org/x/text\tv0.7.0\n"
    "=>\tgolang.org/x/text\tv0.3.8\th1:abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ=\n"
    "build\t-buildmode=exe\n"
    "build\t-compiler=gc\n"
    "build\t-ldflags=\"-s -w -X main.version=1.4.2\"\n"
    "build\tCGO_ENABLED=0\n"
    "build\tGOARCH=amd64\n"
    "build\tGOOS=linux\n"
    "build\tGOAMD64=v1\n"
    "build\tvcs=git\n"
    "build\tvcs.revision=4f1b3c7d2e9a8b6c5d4e3f2a1b0c9d8e7f6a5b4c\n"
    "build\tvcs.time=2023-03-01T10:00:00Z\n"
    "build\tvcs.modified=false\n";

std::string uvarint(uint64_t v) {
  std::string out;
  do {
    uint8_t b = v & 0x7f;
    v >>= 7;
    if (v != 0) b |= 0x80;
    out += static_cast<char>(b);
  } while (v != 0);
  return out;
}

// The linker's blob: 32-byte header, then the two varint-prefixed strings, padded to 16.
std::string blob(const std::string& version, const std::string& modinfo, uint8_t flags = 2, uint8_t ptr_size = 8) {
  std::string b = kMagic;
  b += static_cast<char>(ptr_size);
  b += static_cast<char>(flags);
  b += std::string(16, '\0');
  b += uvarint(version.size()) + version;
  b += uvarint(modinfo.size()) + modinfo;
  while (b.size() % 16 != 0) b += '\0';
  return b;
}

std::string framed(const std::string& modinfo) { return kInfoStart + modinfo + kInfoEnd; }

// Deterministic junk with no 16-aligned magic, but with unaligned copies of it.
std::string junk(size_t n, uint32_t seed) {
  std::string out(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    out[i] = static_cast<char>(x >> 24);
  }
  for (size_t at = 3; at + kMagic.size() < n; at += 4099) out.replace(at, kMagic.size(), kMagic);
  return out;
}

// An "ELF file": a header, junk up to `offset` (16-aligned), the blob, junk after.
std::string elfWith(const std::string& b, size_t offset, size_t after = 5000) {
  REQUIRE(offset % 16 == 0);
  std::string f("\x7f" "ELF\x02\x01\x01\x00", 8);
  f += std::string(56, '\0');
  f += junk(offset - f.size(), static_cast<uint32_t>(offset));
  f += b;
  f += junk(after, 7);
  return f;
}

struct Feeder {
  std::string data;
  size_t chunk;
  size_t pos = 0;
  size_t calls = 0;
  ChunkReader reader() {
    return [this]() -> Result<std::string_view> {
      ++calls;
      const size_t n = std::min(chunk, data.size() - pos);
      std::string_view v(data.data() + pos, n);
      pos += n;
      return v;
    };
  }
};

Result<std::vector<Package>> readAll(const std::string& data, size_t chunk, const std::string& path = "usr/bin/server") {
  Feeder f{data, chunk};
  return readGoBuildInfo(f.reader(), path);
}

std::vector<std::pair<std::string, std::string>> nameVersions(const std::vector<Package>& pkgs) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const Package& p : pkgs) out.emplace_back(p.name, p.version);
  return out;
}

const std::vector<std::pair<std::string, std::string>> kExpected = {
    {"github.com/google/uuid", "v1.3.0"}, {"../logrus-fork", ""},     {"golang.org/x/net", "v0.7.0"},
    {"golang.org/x/sys", "v0.5.0"},       {"golang.org/x/text", "v0.3.8"}, {"stdlib", "v1.21.3"},
};

}  // namespace

TEST_CASE("Go build info: found and parsed whatever the chunking", "[go_buildinfo]") {
  const std::string b = blob("go1.21.3", framed(kModInfo));
  for (size_t offset : {size_t{64}, size_t{4096}, size_t{65536 + 48}, size_t{200000}}) {
    const std::string file = elfWith(b, offset);
    for (size_t chunk : {size_t{1}, size_t{7}, size_t{13}, size_t{16}, size_t{17}, size_t{4093}, size_t{65536},
                         file.size()}) {
      INFO("offset " << offset << " chunk " << chunk);
      auto r = readAll(file, chunk);
      REQUIRE(r.isOk());
      CHECK(nameVersions(*r) == kExpected);
      for (const Package& p : *r) {
        CHECK(p.type == "golang");
        CHECK(p.path == "usr/bin/server");
      }
    }
  }
}

TEST_CASE("Go build info: the main module counts only with a real version", "[go_buildinfo]") {
  const std::string mod =
      "path\tgithub.com/example/tool\n"
      "mod\tgithub.com/example/tool\tv1.2.3\th1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
      "dep\tgolang.org/x/net\tv0.7.0\th1:rJrUqqhjsgNp7KqAIc25s9pZnjU7TUcSY7HcVZjdn1g=\n";
  auto r = readAll(elfWith(blob("go1.22.0 X:boringcrypto", framed(mod)), 1024), 4096);
  REQUIRE(r.isOk());
  CHECK(nameVersions(*r) == std::vector<std::pair<std::string, std::string>>{
                                {"github.com/example/tool", "v1.2.3"}, {"golang.org/x/net", "v0.7.0"},
                                {"stdlib", "v1.22.0"}});
}

TEST_CASE("Go build info: files without it give an empty list", "[go_buildinfo]") {
  // Plain junk (with unaligned copies of the magic).
  auto r = readAll(elfWith("", 4096, 100000), 1000);
  REQUIRE(r.isOk());
  CHECK(r->empty());
  // Tiny and empty files.
  for (const std::string& s : {std::string(), std::string("\x7f" "ELF"), kMagic}) {
    auto e = readAll(s, 3);
    REQUIRE(e.isOk());
    CHECK(e->empty());
  }
  // The magic at an unaligned offset only.
  std::string unaligned = elfWith("", 4096, 0) + std::string(5, 'x') + blob("go1.21.3", framed(kModInfo));
  auto u = readAll(unaligned, 7);
  REQUIRE(u.isOk());
  CHECK(u->empty());
}

TEST_CASE("Go build info: the pointer-based format of Go < 1.18 is not covered", "[go_buildinfo]") {
  std::string old = kMagic + "\x08" + std::string(1, '\0');  // little endian, pointers
  old += "\x10\x20\x30\x40\x00\x00\x00\x00\x50\x60\x70\x80\x00\x00\x00\x00";
  auto r = readAll(elfWith(old, 8192), 64);
  REQUIRE(r.isOk());
  CHECK(r->empty());
}

TEST_CASE("Go build info: look-alikes are passed over", "[go_buildinfo]") {
  const std::string real = blob("go1.21.3", framed(kModInfo));
  // The magic as a string constant, aligned, followed by other data (non-zero "pointers").
  std::string decoy = kMagic + "\x08\x02" + "runtime.buildVersion";
  decoy.resize(32, 'z');
  // A wrong pointer size.
  std::string bad_ptr = kMagic + "\x05\x02" + std::string(16, '\0');
  // A decoy whose second block is the real header.
  std::string adjacent = kMagic + "\x08\x02";
  for (const std::string& before : {decoy, bad_ptr, adjacent}) {
    std::string file = elfWith(before, 4096, 0);
    file += real + junk(100, 3);
    for (size_t chunk : {size_t{1}, size_t{5}, size_t{4096}}) {
      auto r = readAll(file, chunk);
      REQUIRE(r.isOk());
      CHECK(nameVersions(*r) == kExpected);
    }
  }
}

TEST_CASE("Go build info: toolchain versions in module form", "[go_buildinfo]") {
  CHECK(goToolchainSemver("go1.21.3") == "v1.21.3");
  CHECK(goToolchainSemver("go1.20") == "v1.20.0");
  CHECK(goToolchainSemver("go1.21rc2") == "v1.21.0-rc.2");
  CHECK(goToolchainSemver("go1.18beta1") == "v1.18.0-beta.1");
  CHECK(goToolchainSemver("go1.9.2rc2") == "v1.9.2-rc.2");
  CHECK(goToolchainSemver("go1") == "v1.0.0");
  CHECK(goToolchainSemver("go1.22.0 X:boringcrypto") == "v1.22.0");
  CHECK(goToolchainSemver("go1.21.3-bigcorp") == "v1.21.3");
  CHECK(goToolchainSemver("devel go1.22-3f4ab5c Mon Jan 1 00:00:00 2024 +0000") == "");
  CHECK(goToolchainSemver("go1.x") == "");
  CHECK(goToolchainSemver("") == "");
  CHECK(goToolchainSemver("go1.21.3abc") == "");
}

TEST_CASE("Go build info: truncated or malformed data is an error or empty, never a crash", "[go_buildinfo]") {
  const std::string mod = framed(kModInfo);
  const std::string b = blob("go1.21.3", mod);
  const std::string file = elfWith(b, 256, 0);
  // Where the modinfo's end sentinel starts: it is not read.
  const size_t complete = 256 + 32 + 1 + 8 + uvarint(mod.size()).size() + mod.size() - 16;
  // Every cut from inside the header to the end of the blob.
  for (size_t cut = 256; cut <= file.size(); ++cut) {
    auto r = readAll(file.substr(0, cut), cut % 2 == 0 ? 1 : 4096);
    INFO("cut " << cut << ": " << r.status().message());
    if (cut < 256 + 32) {
      REQUIRE(r.isOk());  // no whole header: none found
      CHECK(r->empty());
    } else if (cut < complete) {
      REQUIRE(!r.isOk());
      CHECK(r.status().code() == Code::kInvalidArgument);
      CHECK(r.status().message().find("usr/bin/server") != std::string::npos);
      CHECK(r.status().message().find("truncated") != std::string::npos);
    } else {
      REQUIRE(r.isOk());
      CHECK(nameVersions(*r) == kExpected);
    }
  }

  SECTION("a replacement with no module before it") {
    auto r = readAll(elfWith(blob("go1.21.3", framed("path\tx\n=>\tgolang.org/x/net\tv0.7.0\t\n")), 64), 9);
    REQUIRE(!r.isOk());
    CHECK(r.status().code() == Code::kInvalidArgument);
    CHECK(r.status().message().find("line 2") != std::string::npos);
  }
  SECTION("a module line with a wrong column count") {
    auto r = readAll(elfWith(blob("go1.21.3", framed("dep\tgolang.org/x/net\n")), 64), 9);
    REQUIRE(!r.isOk());
    CHECK(r.status().message().find("columns") != std::string::npos);
  }
  SECTION("a modinfo without framing counts as none, as in debug/buildinfo") {
    auto r = readAll(elfWith(blob("go1.21.3", kInfoStart + "dep\tgolang.org/x/net\tv0.7.0\t\nno newline" + kInfoEnd), 64), 9);
    REQUIRE(r.isOk());
    CHECK(nameVersions(*r) == std::vector<std::pair<std::string, std::string>>{{"stdlib", "v1.21.3"}});
    auto short_mod = readAll(elfWith(blob("go1.21.3", "short"), 64), 9);
    REQUIRE(short_mod.isOk());
    CHECK(short_mod->size() == 1);
  }
  SECTION("an empty Go version: not a Go executable") {
    auto r = readAll(elfWith(blob("", framed(kModInfo)), 64), 9);
    REQUIRE(r.isOk());
    CHECK(r->empty());
  }
  SECTION("a huge version length") {
    std::string h = kMagic + "\x08\x02" + std::string(16, '\0') + uvarint(1u << 30);
    auto r = readAll(elfWith(h, 64), 9);
    REQUIRE(!r.isOk());
    CHECK(r.status().code() == Code::kInvalidArgument);
  }
  SECTION("an overflowing varint") {
    std::string h = kMagic + "\x08\x02" + std::string(16, '\0') + std::string(11, '\xff');
    auto r = readAll(elfWith(h, 64), 9);
    REQUIRE(!r.isOk());
    CHECK(r.status().message().find("overflows") != std::string::npos);
  }
  SECTION("a huge modinfo length") {
    std::string h = kMagic + "\x08\x02" + std::string(16, '\0') + uvarint(8) + "go1.21.3" + uvarint(1ull << 40);
    auto r = readAll(elfWith(h, 64), 9);
    REQUIRE(!r.isOk());
    CHECK(r.status().code() == Code::kTooLarge);
  }
}

TEST_CASE("Go build info: long lines", "[go_buildinfo]") {
  // A long build setting is skipped without being kept.
  std::string mod = "path\tx\nbuild\t-ldflags=\"" + std::string(100000, 'L') +
                    "\"\ndep\tgolang.org/x/net\tv0.7.0\th1:x=\n";
  auto r = readAll(elfWith(blob("go1.21.3", framed(mod)), 64), 4096);
  REQUIRE(r.isOk());
  CHECK(nameVersions(*r) == std::vector<std::pair<std::string, std::string>>{{"golang.org/x/net", "v0.7.0"},
                                                                             {"stdlib", "v1.21.3"}});
  // A module line over 4 KiB is malformed.
  std::string bad = "dep\tgolang.org/x/" + std::string(5000, 'n') + "\tv0.7.0\t\n";
  auto e = readAll(elfWith(blob("go1.21.3", framed(bad)), 64), 4096);
  REQUIRE(!e.isOk());
  CHECK(e.status().code() == Code::kInvalidArgument);
}

TEST_CASE("Go build info: reading stops after the modinfo", "[go_buildinfo]") {
  const std::string file = elfWith(blob("go1.21.3", framed(kModInfo)), 4096, 10 * 1024 * 1024);
  Feeder f{file, 4096};
  auto r = readGoBuildInfo(f.reader(), "bin");
  REQUIRE(r.isOk());
  CHECK(r->size() == kExpected.size());
  CHECK(f.pos < 4096 + 4096 + 2 * 4096);
}

TEST_CASE("Go build info: errors of the reader are returned as they are", "[go_buildinfo]") {
  const std::string file = elfWith(blob("go1.21.3", framed(kModInfo)), 8192);
  for (size_t fail_after : {size_t{1}, size_t{8192 / 512 + 1}}) {  // in the search, in the modinfo
    size_t calls = 0;
    size_t pos = 0;
    ChunkReader read = [&]() -> Result<std::string_view> {
      if (++calls > fail_after) return Status(Code::kIoError, "layer stream broke");
      const size_t n = std::min<size_t>(512, file.size() - pos);
      std::string_view v(file.data() + pos, n);
      pos += n;
      return v;
    };
    auto r = readGoBuildInfo(read, "bin");
    REQUIRE(!r.isOk());
    CHECK(r.status().code() == Code::kIoError);
    CHECK(r.status().message() == "layer stream broke");
  }
}

TEST_CASE("Go build info: a real binary, when go is installed", "[go_buildinfo]") {
  if (std::system("command -v go >/dev/null 2>&1") != 0) {
    WARN("go is not installed: only the built fixtures are read");
    return;
  }
  char tmpl[] = "/tmp/go_buildinfo_test.XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  const std::string dir = tmpl;
  std::ofstream(dir + "/go.mod") << "module example.com/hello\n\ngo 1.18\n";
  std::ofstream(dir + "/main.go") << "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hi\") }\n";
  const std::string env = "cd " + dir + " && GOFLAGS=-mod=mod GOPROXY=off GOCACHE=" + dir + "/cache ";
  REQUIRE(std::system((env + "go build -o hello . >/dev/null 2>&1").c_str()) == 0);
  std::string goversion;
  if (FILE* p = popen((env + "go env GOVERSION").c_str(), "r")) {
    char buf[256];
    while (fgets(buf, sizeof buf, p) != nullptr) goversion += buf;
    pclose(p);
  }
  while (!goversion.empty() && (goversion.back() == '\n' || goversion.back() == '\r')) goversion.pop_back();
  std::ifstream in(dir + "/hello", std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  for (size_t chunk : {size_t{7}, size_t{65536}}) {
    auto r = readAll(ss.str(), chunk, "hello");
    REQUIRE(r.isOk());
    REQUIRE(!r->empty());
    CHECK(r->back().name == "stdlib");
    CHECK(r->back().version == goToolchainSemver(goversion));
  }
  std::system(("rm -rf " + dir).c_str());
}

}  // namespace go_buildinfo_test
