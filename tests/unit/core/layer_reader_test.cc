#include <catch2/catch.hpp>

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/scan/layer_reader.h"
#include "shared/base/clock.h"
#include "tests/support/temp_dir.h"

// Each file's own names: the test binaries are unity builds.
namespace layer_reader_test {

using namespace wharf;
using wharf::test::TempDir;

namespace {

// --- Writing layers ---

struct TarEntry {
  enum class Kind { kFile, kDir, kSymlink, kHardlink };
  std::string path;
  Kind kind = Kind::kFile;
  std::string content;
  std::string link;
  uint64_t zeros = 0;  // a file of this many zero bytes instead of content (written in chunks)
  unsigned mode = 0644;
};

TarEntry file(std::string path, std::string content, unsigned mode = 0644) {
  TarEntry e;
  e.path = std::move(path);
  e.content = std::move(content);
  e.mode = mode;
  return e;
}
TarEntry dir(std::string path) {
  TarEntry e;
  e.path = std::move(path);
  e.kind = TarEntry::Kind::kDir;
  e.mode = 0755;
  return e;
}
TarEntry symlink(std::string path, std::string target) {
  TarEntry e;
  e.path = std::move(path);
  e.kind = TarEntry::Kind::kSymlink;
  e.link = std::move(target);
  e.mode = 0777;
  return e;
}
TarEntry hardlink(std::string path, std::string target) {
  TarEntry e;
  e.path = std::move(path);
  e.kind = TarEntry::Kind::kHardlink;
  e.link = std::move(target);
  return e;
}

using Sink = std::function<void(const char*, size_t)>;

la_ssize_t writeToSink(struct archive*, void* opaque, const void* buf, size_t n) {
  (*static_cast<Sink*>(opaque))(static_cast<const char*>(buf), n);
  return la_ssize_t(n);
}

// A tar stream of the entries, in the given format, to sink.
void writeTar(const std::vector<TarEntry>& entries, Sink sink, bool gnu = false) {
  struct archive* a = archive_write_new();
  REQUIRE(a != nullptr);
  REQUIRE((gnu ? archive_write_set_format_gnutar(a) : archive_write_set_format_pax_restricted(a)) == ARCHIVE_OK);
  REQUIRE(archive_write_set_bytes_in_last_block(a, 1) == ARCHIVE_OK);
  REQUIRE(archive_write_open(a, &sink, nullptr, writeToSink, nullptr) == ARCHIVE_OK);
  std::string zeros(1 << 20, '\0');
  for (const auto& t : entries) {
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, t.path.c_str());
    archive_entry_set_mtime(e, 1700000000, 0);
    switch (t.kind) {
      case TarEntry::Kind::kFile:
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, t.mode);
        archive_entry_set_size(e, la_int64_t(t.zeros > 0 ? t.zeros : t.content.size()));
        break;
      case TarEntry::Kind::kDir:
        archive_entry_set_filetype(e, AE_IFDIR);
        archive_entry_set_perm(e, t.mode);
        break;
      case TarEntry::Kind::kSymlink:
        archive_entry_set_filetype(e, AE_IFLNK);
        archive_entry_set_perm(e, t.mode);
        archive_entry_set_symlink(e, t.link.c_str());
        break;
      case TarEntry::Kind::kHardlink:
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, t.mode);
        archive_entry_set_hardlink(e, t.link.c_str());
        archive_entry_set_size(e, 0);
        break;
    }
    INFO(t.path);
    REQUIRE(archive_write_header(a, e) == ARCHIVE_OK);
    if (t.kind == TarEntry::Kind::kFile) {
      if (t.zeros > 0) {
        for (uint64_t left = t.zeros; left > 0;) {
          size_t n = size_t(std::min<uint64_t>(left, zeros.size()));
          REQUIRE(archive_write_data(a, zeros.data(), n) == la_ssize_t(n));
          left -= n;
        }
      } else if (!t.content.empty()) {
        REQUIRE(archive_write_data(a, t.content.data(), t.content.size()) == la_ssize_t(t.content.size()));
      }
    }
    archive_entry_free(e);
  }
  REQUIRE(archive_write_close(a) == ARCHIVE_OK);
  archive_write_free(a);
}

std::string makeTar(const std::vector<TarEntry>& entries, bool gnu = false) {
  std::string out;
  writeTar(entries, [&](const char* p, size_t n) { out.append(p, n); }, gnu);
  return out;
}

// Streaming gzip (zlib) and zstd compressors.
class GzipWriter {
 public:
  explicit GzipWriter(std::string* out, int level = 6) : out_(out) {
    std::memset(&z_, 0, sizeof z_);
    REQUIRE(deflateInit2(&z_, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  }
  ~GzipWriter() { deflateEnd(&z_); }
  void write(const char* p, size_t n) { run(p, n, Z_NO_FLUSH); }
  void finish() { run(nullptr, 0, Z_FINISH); }

 private:
  void run(const char* p, size_t n, int flush) {
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(p));
    z_.avail_in = uInt(n);
    char buf[65536];
    for (;;) {
      z_.next_out = reinterpret_cast<Bytef*>(buf);
      z_.avail_out = sizeof buf;
      int rc = deflate(&z_, flush);
      REQUIRE((rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR));
      out_->append(buf, sizeof buf - z_.avail_out);
      if (flush == Z_FINISH ? rc == Z_STREAM_END : (z_.avail_in == 0 && z_.avail_out != 0)) break;
    }
  }
  std::string* out_;
  z_stream z_;
};

class ZstdWriter {
 public:
  explicit ZstdWriter(std::string* out, int level = 3) : out_(out), cs_(ZSTD_createCStream()) {
    REQUIRE(cs_ != nullptr);
    REQUIRE(!ZSTD_isError(ZSTD_initCStream(cs_, level)));
  }
  ~ZstdWriter() { ZSTD_freeCStream(cs_); }
  void write(const char* p, size_t n) {
    ZSTD_inBuffer in{p, n, 0};
    char buf[65536];
    while (in.pos < in.size) {
      ZSTD_outBuffer o{buf, sizeof buf, 0};
      REQUIRE(!ZSTD_isError(ZSTD_compressStream(cs_, &o, &in)));
      out_->append(buf, o.pos);
    }
  }
  void finish() {
    char buf[65536];
    for (;;) {
      ZSTD_outBuffer o{buf, sizeof buf, 0};
      size_t left = ZSTD_endStream(cs_, &o);
      REQUIRE(!ZSTD_isError(left));
      out_->append(buf, o.pos);
      if (left == 0) break;
    }
  }

 private:
  std::string* out_;
  ZSTD_CStream* cs_;
};

std::string gzip(const std::string& data, int level = 6) {
  std::string out;
  GzipWriter w(&out, level);
  w.write(data.data(), data.size());
  w.finish();
  return out;
}

// Without a checksum, as ZSTD_compress writes frames.
std::string zstd(const std::string& data, int level = 3) {
  std::string out(ZSTD_compressBound(data.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), level);
  REQUIRE(!ZSTD_isError(n));
  out.resize(n);
  return out;
}

// With the content checksum (zstd -C, the command's default).
std::string zstdChecked(const std::string& data) {
  ZSTD_CCtx* c = ZSTD_createCCtx();
  REQUIRE(c != nullptr);
  REQUIRE(!ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1)));
  std::string out(ZSTD_compressBound(data.size()), '\0');
  size_t n = ZSTD_compress2(c, out.data(), out.size(), data.data(), data.size());
  ZSTD_freeCCtx(c);
  REQUIRE(!ZSTD_isError(n));
  out.resize(n);
  return out;
}

// Bytes that do not compress much: a simple generator, the same every run.
std::string noise(size_t n, uint32_t seed = 12345) {
  std::string s(n, '\0');
  uint32_t x = seed;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    s[i] = char(x >> 24);
  }
  return s;
}

// --- Reading layers ---

// A ByteSource over a string, chunk bytes at a time; counts what it served.
struct StringSource {
  explicit StringSource(std::string d, size_t c = 1 << 20) : data(std::move(d)), chunk(c) {}
  std::string data;
  size_t chunk;
  size_t pos = 0;
  ByteSource source() {
    return [this](char* buf, size_t n) -> Result<size_t> {
      size_t k = std::min({n, chunk, data.size() - pos});
      std::memcpy(buf, data.data() + pos, k);
      pos += k;
      return k;
    };
  }
};

struct Seen {
  LayerEntry::Type type;
  std::string path;
  std::string link;
  uint64_t size = 0;
  uint32_t mode = 0;
  std::string content;  // read for files the reader asked for
};

struct Walk {
  Result<LayerStats> stats = Status(Code::kInternal, "not walked");
  std::vector<Seen> seen;
  const Seen* find(const std::string& path) const {
    for (const auto& s : seen)
      if (s.path == path) return &s;
    return nullptr;
  }
};

// Walks the layer, reading the content of the files for which read(path) is true.
Walk walk(const std::string& blob, const LayerLimits& limits = LayerLimits(),
          std::function<bool(const std::string&)> read = [](const std::string&) { return true; },
          size_t chunk = 1 << 20) {
  StringSource src(blob, chunk);
  Walk w;
  w.stats = walkLayer(src.source(), blob.size(), limits, [&](const LayerEntry& e, const ChunkReader& content) -> Status {
    Seen s{e.type, e.path, e.link, e.size, e.mode, {}};
    if (e.type == LayerEntry::Type::kFile && read(e.path)) {
      auto text = readAllContent(content, 512u << 20);
      if (!text.isOk()) return text.status();
      s.content = std::move(*text);
    }
    w.seen.push_back(std::move(s));
    return Status::ok();
  });
  return w;
}

std::vector<TarEntry> sampleEntries() {
  return {dir("./"),
          dir("./etc/"),
          file("./etc/x", "hello\n"),
          file("./etc//y", "why\n"),
          dir("./usr/lib/"),
          file("usr/lib/big.bin", noise(700 * 1024)),
          file("usr/bin/tool", "#!/bin/sh\necho tool\n", 0755),
          symlink("./etc/localtime", "/usr/share/zoneinfo/Etc/UTC"),
          symlink("lib", "usr/lib"),
          hardlink("./usr/bin/tool2", "./usr/bin/tool"),
          file("./a/.wh.b", ""),
          file("./a/.wh..wh..opq", ""),
          file(".wh.rootfile", ""),
          file("./etc/after", "after the links\n")};
}

void checkSample(const Walk& w) {
  INFO(w.stats.status().message());
  REQUIRE(w.stats.isOk());
  CHECK(w.stats->members == 14);

  std::vector<std::string> paths;
  for (const auto& s : w.seen) paths.push_back(s.path);
  CHECK(paths == std::vector<std::string>{"", "etc", "etc/x", "etc/y", "usr/lib", "usr/lib/big.bin", "usr/bin/tool",
                                          "etc/localtime", "lib", "usr/bin/tool2", "a/b", "a", "rootfile",
                                          "etc/after"});
  REQUIRE(w.find("etc/x") != nullptr);
  CHECK(w.find("etc/x")->type == LayerEntry::Type::kFile);
  CHECK(w.find("etc/x")->content == "hello\n");
  CHECK(w.find("etc/x")->size == 6);
  CHECK(w.find("etc/y")->content == "why\n");
  CHECK(w.find("etc")->type == LayerEntry::Type::kDirectory);
  CHECK(w.find("")->type == LayerEntry::Type::kDirectory);
  CHECK(w.find("usr/lib/big.bin")->content == noise(700 * 1024));
  CHECK(w.find("usr/lib/big.bin")->size == 700 * 1024);
  CHECK((w.find("usr/bin/tool")->mode & 0777) == 0755);
  CHECK((w.find("etc/x")->mode & 0777) == 0644);

  const Seen* localtime = w.find("etc/localtime");
  CHECK(localtime->type == LayerEntry::Type::kSymlink);
  CHECK(localtime->link == "/usr/share/zoneinfo/Etc/UTC");  // as written, never followed
  CHECK(w.find("lib")->type == LayerEntry::Type::kSymlink);
  CHECK(w.find("lib")->link == "usr/lib");
  CHECK(w.find("usr/bin/tool2")->type == LayerEntry::Type::kHardlink);
  CHECK(w.find("usr/bin/tool2")->link == "usr/bin/tool");

  CHECK(w.find("a/b")->type == LayerEntry::Type::kWhiteout);
  CHECK(w.find("a")->type == LayerEntry::Type::kOpaque);
  CHECK(w.find("rootfile")->type == LayerEntry::Type::kWhiteout);
  CHECK(w.find("etc/after")->content == "after the links\n");
}

}  // namespace

TEST_CASE("layer reader: whiteouts and opaque markers, wherever they are", "[core][scan]") {
  Walk w = walk(makeTar({file("a/.wh.b", ""), file("./a/b/.wh..wh..opq", ""), file(".wh..wh..opq", ""),
                         file("x/y/.wh.z.conf", ""), file("x/.wh.", ""), file("x/.wh..wh.plnk", "")}));
  INFO(w.stats.status().message());
  REQUIRE(w.stats.isOk());
  std::vector<std::string> got;
  for (const auto& s : w.seen)
    got.push_back((s.type == LayerEntry::Type::kWhiteout ? "whiteout " : s.type == LayerEntry::Type::kOpaque ? "opaque " : "other ") + s.path);
  CHECK(got == std::vector<std::string>{"whiteout a/b", "opaque a/b", "opaque ", "whiteout x/y/z.conf",
                                        "whiteout x",  // the directory itself, never "x/"
                                        "whiteout x/.wh.plnk"});
}

TEST_CASE("layer reader: sniffCompression from the first bytes", "[core][scan]") {
  CHECK(sniffCompression(std::string_view("\x1f\x8b\x08\x00", 4)) == LayerCompression::kGzip);
  CHECK(sniffCompression(std::string_view("\x28\xb5\x2f\xfd\x00", 5)) == LayerCompression::kZstd);
  CHECK(sniffCompression(gzip("abc")) == LayerCompression::kGzip);
  CHECK(sniffCompression(zstd("abc")) == LayerCompression::kZstd);
  CHECK(sniffCompression(makeTar({file("a", "b")})) == LayerCompression::kNone);
  CHECK(sniffCompression("") == LayerCompression::kNone);
  CHECK(sniffCompression(std::string_view("\x1f", 1)) == LayerCompression::kNone);
  CHECK(sniffCompression(std::string_view("\x28\xb5\x2f", 3)) == LayerCompression::kNone);
  CHECK(sniffCompression(std::string_view("\x1f\x8c", 2)) == LayerCompression::kNone);
}

TEST_CASE("layer reader: members of an uncompressed, gzip and zstd layer, paths normalised", "[core][scan]") {
  const std::string tar = makeTar(sampleEntries());
  SECTION("uncompressed") { checkSample(walk(tar)); }
  SECTION("gzip") { checkSample(walk(gzip(tar))); }
  SECTION("gzip, two members concatenated") {
    size_t half = tar.size() / 2 + 123;  // mid-member
    std::string blob = gzip(tar.substr(0, half)) + gzip(tar.substr(half));
    checkSample(walk(blob));
  }
  SECTION("gzip, many members, one per 10 KiB") {
    std::string blob;
    for (size_t at = 0; at < tar.size(); at += 10240) blob += gzip(tar.substr(at, 10240), 1);
    checkSample(walk(blob));
  }
  SECTION("zstd") { checkSample(walk(zstd(tar))); }
  SECTION("zstd, two frames concatenated") {
    size_t half = tar.size() / 3;
    checkSample(walk(zstd(tar.substr(0, half)) + zstd(tar.substr(half))));
  }
  SECTION("gzip followed by an empty member (an eStargz footer) or by zeros") {
    checkSample(walk(gzip(tar) + gzip("")));
    checkSample(walk(gzip(tar) + std::string(1024, '\0')));
  }
  SECTION("zstd followed by a skippable frame (zstd:chunked's manifest)") {
    std::string skippable("\x50\x2a\x4d\x18", 4);
    std::string payload = "{\"version\": 1, \"entries\": []}";
    for (int i = 0; i < 4; ++i) skippable += char((payload.size() >> (8 * i)) & 0xff);
    checkSample(walk(zstd(tar) + skippable + payload));
  }
  SECTION("GNU tar format") {
    std::string gnu = makeTar(sampleEntries(), true);
    checkSample(walk(gzip(gnu)));
  }
}

TEST_CASE("layer reader: the source may hand out bytes in any chunk size", "[core][scan]") {
  std::vector<TarEntry> entries = {file("etc/x", "hello\n"), file("usr/lib/mid.bin", noise(40 * 1024)),
                                   file("etc/y", std::string(100000, 'y'))};
  const std::string tar = makeTar(entries);
  for (size_t chunk : {size_t(1), size_t(7), size_t(4096), size_t(300 * 1024)}) {
    for (int mode = 0; mode < 3; ++mode) {
      std::string blob = mode == 0 ? tar : mode == 1 ? gzip(tar) : zstd(tar);
      INFO("chunk " << chunk << " mode " << mode);
      Walk w = walk(blob, LayerLimits(), [](const std::string&) { return true; }, chunk);
      INFO(w.stats.status().message());
      REQUIRE(w.stats.isOk());
      REQUIRE(w.seen.size() == 3);
      CHECK(w.seen[0].content == "hello\n");
      CHECK(w.seen[1].content == noise(40 * 1024));
      CHECK(w.seen[2].content == std::string(100000, 'y'));
      CHECK(w.stats->compressed_bytes == blob.size());
      CHECK(w.stats->expanded_bytes == tar.size());
      CHECK(w.stats->members == 3);
    }
  }
}

TEST_CASE("layer reader: large members expand fully, whatever the compression", "[core][scan]") {
  // Highly compressible members: the decompressor's output runs far ahead of its input,
  // and the stream ends with output still to deliver.
  for (uint64_t size : {uint64_t(1) << 20, uint64_t(3) << 20, (uint64_t(5) << 20) + 4321}) {
    std::vector<TarEntry> entries;
    TarEntry z;
    z.path = "zeros";
    z.zeros = size;
    entries.push_back(z);
    entries.push_back(file("tail", "the end\n"));
    const std::string tar = makeTar(entries);
    for (int mode = 0; mode < 3; ++mode) {
      std::string blob = mode == 0 ? tar : mode == 1 ? gzip(tar, 9) : zstd(tar, 19);
      INFO("size " << size << " mode " << mode << " blob " << blob.size());
      Walk w = walk(blob);
      INFO(w.stats.status().message());
      REQUIRE(w.stats.isOk());
      REQUIRE(w.seen.size() == 2);
      CHECK(w.seen[0].content == std::string(size, '\0'));
      CHECK(w.seen[1].content == "the end\n");
      CHECK(w.stats->expanded_bytes == tar.size());
    }
  }
}

TEST_CASE("layer reader: streams end cleanly whatever their size", "[core][scan]") {
  // Output sizes around the reader's buffer multiples: the last of the stream may come out
  // of the decompressor after its input is all consumed.
  auto text = [](size_t n) {
    std::string s;
    for (int i = 0; s.size() < n; ++i) s += "line " + std::to_string(i % 977) + " of the text\n";
    s.resize(n);
    return s;
  };
  for (size_t base : {size_t(256) << 10, size_t(512) << 10, size_t(1024) << 10}) {
    for (long delta = -4096; delta <= 4096; delta += 512) {
      size_t size = size_t(long(base) + delta - 2048 + 100000);
      const std::string tar = makeTar({file("t", text(size))});
      for (int mode = 0; mode < 2; ++mode) {
        // Two frames (members), the first of an odd size, as chunked writers make them.
        const size_t split = 100000;
        std::string blob = mode == 0 ? zstd(tar.substr(0, split)) + zstd(tar.substr(split))
                                     : gzip(tar.substr(0, split)) + gzip(tar.substr(split));
        INFO("tar " << tar.size() << " mode " << mode);
        Walk w = walk(blob);
        INFO(w.stats.status().message());
        REQUIRE(w.stats.isOk());
        REQUIRE(w.seen.size() == 1);
        CHECK(w.seen[0].content.size() == size);
        CHECK(w.stats->expanded_bytes == tar.size());
      }
    }
  }
}

TEST_CASE("layer reader: members not read are skipped, the next ones read whole", "[core][scan]") {
  std::vector<TarEntry> entries = {file("skip/a.bin", noise(300 * 1024, 1)), file("want/a", "first wanted\n"),
                                   file("skip/b.bin", noise(1000 * 1024, 2)), file("want/b", noise(5000, 3))};
  const std::string tar = makeTar(entries);
  for (const std::string& blob : {tar, gzip(tar), zstd(tar)}) {
    Walk w = walk(blob, LayerLimits(), [](const std::string& p) { return p.rfind("want/", 0) == 0; });
    INFO(w.stats.status().message());
    REQUIRE(w.stats.isOk());
    REQUIRE(w.seen.size() == 4);
    CHECK(w.seen[0].content.empty());
    CHECK(w.seen[0].size == 300 * 1024);
    CHECK(w.seen[1].content == "first wanted\n");
    CHECK(w.seen[2].content.empty());
    CHECK(w.seen[3].content == noise(5000, 3));
    // Skipped bytes are still decompressed and counted.
    CHECK(w.stats->expanded_bytes == tar.size());
  }

  SECTION("a member read in part: the rest is skipped") {
    StringSource src(gzip(tar));
    std::vector<std::string> got;
    auto stats = walkLayer(src.source(), src.data.size(), LayerLimits(), [&](const LayerEntry& e, const ChunkReader& content) -> Status {
      auto first = content();
      if (!first.isOk()) return first.status();
      got.push_back(e.path + ":" + std::string(first->substr(0, 5)));
      return Status::ok();
    });
    INFO(stats.status().message());
    REQUIRE(stats.isOk());
    CHECK(got == std::vector<std::string>{"skip/a.bin:" + noise(5, 1), "want/a:first", "skip/b.bin:" + noise(5, 2),
                                          "want/b:" + noise(5, 3)});
  }
}

TEST_CASE("layer reader: readAllContent stops at its limit", "[core][scan]") {
  const std::string tar = makeTar({file("f", std::string(10000, 'f')), file("g", "g")});
  StringSource src(tar);
  std::vector<Status> results;
  auto stats = walkLayer(src.source(), 0, LayerLimits(), [&](const LayerEntry& e, const ChunkReader& content) -> Status {
    auto r = readAllContent(content, e.path == "f" ? 9999 : 1);
    results.push_back(r.status());
    if (r.isOk()) CHECK(*r == "g");
    return Status::ok();
  });
  REQUIRE(stats.isOk());
  REQUIRE(results.size() == 2);
  CHECK(results[0].code() == Code::kTooLarge);
  CHECK(results[0].message().find("9999") != std::string::npos);
  CHECK(results[1].isOk());
}

TEST_CASE("layer reader: an error from the visitor ends the walk with it", "[core][scan]") {
  const std::string tar = makeTar({file("a", "1"), file("b", "2"), file("c", "3")});
  StringSource src(tar);
  int visits = 0;
  auto stats = walkLayer(src.source(), 0, LayerLimits(), [&](const LayerEntry& e, const ChunkReader&) -> Status {
    ++visits;
    if (e.path == "b") return Status(Code::kConflict, "stop at b");
    return Status::ok();
  });
  REQUIRE(!stats.isOk());
  CHECK(stats.status().code() == Code::kConflict);
  CHECK(stats.status().message() == "stop at b");
  CHECK(visits == 2);
}

TEST_CASE("layer reader: empty layers", "[core][scan]") {
  SECTION("no bytes at all") {
    Walk w = walk("");
    INFO(w.stats.status().message());
    REQUIRE(w.stats.isOk());
    CHECK(w.seen.empty());
    CHECK(w.stats->members == 0);
  }
  SECTION("a tar with no members, gzip") {
    Walk w = walk(gzip(makeTar({})));
    INFO(w.stats.status().message());
    REQUIRE(w.stats.isOk());
    CHECK(w.seen.empty());
  }
  SECTION("a tar with no members, zstd") {
    Walk w = walk(zstd(makeTar({})));
    INFO(w.stats.status().message());
    REQUIRE(w.stats.isOk());
    CHECK(w.seen.empty());
  }
}

TEST_CASE("layer reader: fdByteSource reads a file from its start", "[core][scan]") {
  TempDir tmp;
  const std::string tar = gzip(makeTar({file("etc/x", "from a file\n"), file("etc/big", noise(600 * 1024))}));
  std::string path = tmp / "layer.tar.gz";
  {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, tar.data(), tar.size()) == ssize_t(tar.size()));
    ::close(fd);
  }
  int fd = ::open(path.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  std::map<std::string, std::string> files;
  auto stats = walkLayer(fdByteSource(fd), tar.size(), LayerLimits(), [&](const LayerEntry& e, const ChunkReader& content) -> Status {
    auto text = readAllContent(content, 1 << 20);
    if (!text.isOk()) return text.status();
    files[e.path] = *text;
    return Status::ok();
  });
  ::close(fd);
  INFO(stats.status().message());
  REQUIRE(stats.isOk());
  CHECK(files["etc/x"] == "from a file\n");
  CHECK(files["etc/big"] == noise(600 * 1024));
  CHECK(stats->compressed_bytes == tar.size());

  // A descriptor that cannot be read: an error, not a crash.
  auto bad = walkLayer(fdByteSource(-1), 0, LayerLimits(), [](const LayerEntry&, const ChunkReader&) { return Status::ok(); });
  CHECK(!bad.isOk());
}

TEST_CASE("layer reader: paths that leave the layer are refused", "[core][scan]") {
  for (const std::string& bad : {std::string("/etc/passwd"), std::string("../x"), std::string("a/../../x"),
                                 std::string("./a/b/../c"), std::string("etc/.."), std::string("//x")}) {
    const std::string tar = makeTar({file("ok", "fine"), file(bad, "evil")});
    for (const std::string& blob : {tar, gzip(tar)}) {
      INFO(bad);
      Walk w = walk(blob);
      REQUIRE(!w.stats.isOk());
      CHECK(w.stats.status().code() == Code::kInvalidArgument);
      CHECK(w.stats.status().message().find(bad) != std::string::npos);
      // The members before it were visited; the hostile one never was.
      REQUIRE(w.seen.size() == 1);
      CHECK(w.seen[0].path == "ok");
    }
  }
  SECTION("absolute and climbing paths name which") {
    Walk abs = walk(makeTar({file("/etc/passwd", "root")}));
    REQUIRE(!abs.stats.isOk());
    CHECK(abs.stats.status().message().find("absolute") != std::string::npos);
    Walk up = walk(makeTar({file("a/../../x", "up")}));
    REQUIRE(!up.stats.isOk());
    CHECK(up.stats.status().message().find("..") != std::string::npos);
  }
  SECTION("a hardlink whose target climbs out") {
    Walk w = walk(makeTar({hardlink("h", "../../etc/shadow")}));
    REQUIRE(!w.stats.isOk());
    CHECK(w.stats.status().code() == Code::kInvalidArgument);
    CHECK(w.stats.status().message().find("hardlink") != std::string::npos);
    CHECK(w.seen.empty());
  }
  SECTION("names with dots that do not climb are fine") {
    Walk w = walk(makeTar({file("a/..b", "1"), file("a/b..", "2"), file("...", "3"), file("./a/./c", "4")}));
    INFO(w.stats.status().message());
    REQUIRE(w.stats.isOk());
    REQUIRE(w.seen.size() == 4);
    CHECK(w.seen[0].path == "a/..b");
    CHECK(w.seen[1].path == "a/b..");
    CHECK(w.seen[2].path == "...");
    CHECK(w.seen[3].path == "a/c");
  }
}

TEST_CASE("layer reader: a decompression bomb ends at the expansion limit, quickly", "[core][scan]") {
  // One member of 300 MB of zeros: about 300 KB of gzip, far less of zstd.
  constexpr uint64_t kBomb = 300ull << 20;
  std::vector<TarEntry> entries;
  TarEntry z;
  z.path = "bomb";
  z.zeros = kBomb;
  entries.push_back(z);
  LayerLimits limits;
  limits.max_expanded_bytes = 10ull << 20;

  for (int mode = 0; mode < 2; ++mode) {
    std::string blob;
    {
      std::unique_ptr<GzipWriter> g;
      std::unique_ptr<ZstdWriter> s;
      if (mode == 0) g = std::make_unique<GzipWriter>(&blob, 1);
      else s = std::make_unique<ZstdWriter>(&blob, 1);
      writeTar(entries, [&](const char* p, size_t n) { mode == 0 ? g->write(p, n) : s->write(p, n); });
      mode == 0 ? g->finish() : s->finish();
    }
    INFO("mode " << mode << ", " << blob.size() << " compressed bytes");
    CHECK(blob.size() < (2u << 20));
    for (bool read : {true, false}) {
      auto start = std::chrono::steady_clock::now();
      Walk w = walk(blob, limits, [&](const std::string&) { return read; });
      auto took = std::chrono::steady_clock::now() - start;
      REQUIRE(!w.stats.isOk());
      CHECK(w.stats.status().code() == Code::kTooLarge);
      CHECK(w.stats.status().message().find(std::to_string(10ull << 20)) != std::string::npos);
      CHECK(took < std::chrono::seconds(5));
    }
  }

  SECTION("the ratio to the compressed size bounds it too") {
    LayerLimits ratio;
    ratio.max_ratio = 1;
    ratio.max_expanded_bytes = 1ull << 40;
    // compressed_size * max_ratio + 1 GiB: a 100 KB layer may expand to 1 GiB + 100 KB.
    const std::string tar = makeTar({file("small", "x")});
    StringSource src(tar);
    auto ok = walkLayer(src.source(), 100000, ratio, [](const LayerEntry&, const ChunkReader&) { return Status::ok(); });
    CHECK(ok.isOk());
  }
}

TEST_CASE("layer reader: corrupt and truncated streams are errors", "[core][scan]") {
  std::vector<TarEntry> entries = {file("etc/a", noise(200 * 1024, 7)), file("etc/b", std::string(300000, 'b')),
                                   file("etc/c", "c")};
  const std::string tar = makeTar(entries);

  SECTION("gzip with bytes flipped in the middle") {
    std::string blob = gzip(tar);
    for (size_t i = blob.size() / 2; i < blob.size() / 2 + 16; ++i) blob[i] = char(~uint8_t(blob[i]));
    Walk w = walk(blob);
    REQUIRE(!w.stats.isOk());
    CHECK(w.stats.status().code() == Code::kInvalidArgument);
  }
  SECTION("gzip with its checksum wrong") {
    std::string blob = gzip(tar);
    blob[blob.size() - 6] ^= 0x55;  // in the CRC-32 of the trailer
    Walk w = walk(blob);
    REQUIRE(!w.stats.isOk());
    CHECK(w.stats.status().code() == Code::kInvalidArgument);
  }
  SECTION("zstd with bytes flipped in the middle") {
    std::string blob = zstdChecked(tar);
    for (size_t i = blob.size() / 2; i < blob.size() / 2 + 16; ++i) blob[i] = char(~uint8_t(blob[i]));
    Walk w = walk(blob);
    REQUIRE(!w.stats.isOk());
    CHECK(w.stats.status().code() == Code::kInvalidArgument);
  }
  SECTION("gzip truncated") {
    for (double frac : {0.1, 0.5, 0.9, 0.999}) {
      std::string blob = gzip(tar);
      blob.resize(size_t(blob.size() * frac));
      INFO(frac);
      Walk w = walk(blob);
      REQUIRE(!w.stats.isOk());
      CHECK(w.stats.status().code() == Code::kInvalidArgument);
      CHECK(!w.stats.status().message().empty());
    }
  }
  SECTION("gzip truncated just before its trailer") {
    std::string blob = gzip(tar);
    blob.resize(blob.size() - 8);
    Walk w = walk(blob);
    REQUIRE(!w.stats.isOk());
    CHECK(w.stats.status().code() == Code::kInvalidArgument);
  }
  SECTION("zstd with its checksum wrong") {
    std::string blob = zstdChecked(tar);
    blob[blob.size() - 2] ^= 0x55;
    Walk w = walk(blob);
    REQUIRE(!w.stats.isOk());
    CHECK(w.stats.status().code() == Code::kInvalidArgument);
    CHECK(w.stats.status().message().find("zstd") != std::string::npos);
  }
  SECTION("zstd truncated at the end of the tar, before the frame's end") {
    std::string blob = zstdChecked(tar);
    blob.resize(blob.size() - 4);  // its checksum
    Walk w = walk(blob);
    REQUIRE(!w.stats.isOk());
    CHECK(w.stats.status().code() == Code::kInvalidArgument);
  }
  SECTION("zstd truncated") {
    for (double frac : {0.1, 0.5, 0.9, 0.999}) {
      std::string blob = zstd(tar);
      blob.resize(size_t(blob.size() * frac));
      INFO(frac);
      Walk w = walk(blob);
      REQUIRE(!w.stats.isOk());
      CHECK(w.stats.status().code() == Code::kInvalidArgument);
    }
  }
  SECTION("uncompressed tar truncated in a member") {
    std::string blob = tar.substr(0, 100 * 1024);
    Walk w = walk(blob);
    REQUIRE(!w.stats.isOk());
    CHECK(w.stats.status().code() == Code::kInvalidArgument);
  }
  SECTION("not a tar at all") {
    Walk w = walk(gzip(std::string(5000, 'x')));
    REQUIRE(!w.stats.isOk());
    CHECK(w.stats.status().code() == Code::kInvalidArgument);
  }
  SECTION("a source that fails") {
    int calls = 0;
    ByteSource failing = [&](char* buf, size_t n) -> Result<size_t> {
      if (++calls > 1) return Status(Code::kIoError, "disk on fire");
      std::string head = gzip(tar).substr(0, 1000);
      size_t k = std::min(n, head.size());
      std::memcpy(buf, head.data(), k);
      return k;
    };
    auto r = walkLayer(failing, 0, LayerLimits(), [](const LayerEntry&, const ChunkReader&) { return Status::ok(); });
    REQUIRE(!r.isOk());
    CHECK(r.status().code() == Code::kIoError);
    CHECK(r.status().message().find("disk on fire") != std::string::npos);
  }
}

TEST_CASE("layer reader: limits on members, names and time", "[core][scan]") {
  SECTION("more members than the limit") {
    std::vector<TarEntry> entries;
    for (int i = 0; i < 1000; ++i) entries.push_back(file("f/" + std::to_string(i), ""));
    const std::string tar = gzip(makeTar(entries));
    LayerLimits limits;
    limits.max_members = 100;
    Walk w = walk(tar, limits);
    REQUIRE(!w.stats.isOk());
    CHECK(w.stats.status().code() == Code::kTooLarge);
    CHECK(w.stats.status().message().find("100 members") != std::string::npos);
    CHECK(w.seen.size() == 100);

    limits.max_members = 1000;
    Walk all = walk(tar, limits);
    INFO(all.stats.status().message());
    REQUIRE(all.stats.isOk());
    CHECK(all.stats->members == 1000);
  }
  SECTION("a member name longer than max_path") {
    std::string long_name = "d/" + std::string(5000, 'n');
    Walk w = walk(gzip(makeTar({file("ok", "1"), file(long_name, "2")})));
    REQUIRE(!w.stats.isOk());
    CHECK(w.stats.status().code() == Code::kInvalidArgument);
    CHECK(w.stats.status().message().find("longer than 4096") != std::string::npos);
    CHECK(w.seen.size() == 1);

    LayerLimits small;
    small.max_path = 64;
    Walk s = walk(makeTar({file(std::string(65, 'a'), "x")}), small);
    REQUIRE(!s.stats.isOk());
    CHECK(s.stats.status().message().find("longer than 64") != std::string::npos);
    Walk fits = walk(makeTar({file(std::string(64, 'a'), "x")}), small);
    CHECK(fits.stats.isOk());
  }
  SECTION("long names under the limit (pax and GNU long names)") {
    std::string name = std::string(150, 'p') + "/" + std::string(150, 'q');
    for (bool gnu : {false, true}) {
      Walk w = walk(makeTar({file("./" + name, "long")}, gnu));
      INFO(w.stats.status().message());
      REQUIRE(w.stats.isOk());
      REQUIRE(w.seen.size() == 1);
      CHECK(w.seen[0].path == name);
      CHECK(w.seen[0].content == "long");
    }
  }
  SECTION("a symlink target longer than max_path") {
    LayerLimits small;
    small.max_path = 64;
    Walk w = walk(makeTar({symlink("l", std::string(100, 't'))}), small);
    REQUIRE(!w.stats.isOk());
    CHECK(w.stats.status().code() == Code::kInvalidArgument);
  }
  SECTION("a deadline already passed") {
    LayerLimits limits;
    limits.deadline_ms = monotonicMillis() - 1;
    Walk w = walk(gzip(makeTar({file("a", "1")})), limits);
    REQUIRE(!w.stats.isOk());
    CHECK(w.stats.status().code() == Code::kTimeout);
    CHECK(w.seen.empty());
  }
  SECTION("a deadline in the future") {
    LayerLimits limits;
    limits.deadline_ms = monotonicMillis() + 60000;
    Walk w = walk(gzip(makeTar({file("a", "1")})), limits);
    CHECK(w.stats.isOk());
  }
}

}  // namespace layer_reader_test
