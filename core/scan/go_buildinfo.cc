#include "core/scan/go_buildinfo.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <utility>

namespace wharf {
namespace {
// A namespace of its own: the core is built in unity batches.
namespace gobuildinfo {

constexpr std::string_view kMagic("\xff Go buildinf:", 14);
constexpr size_t kBlock = 16;            // the header's alignment, and half of it
constexpr size_t kSentinel = 16;         // each of modinfo's framing sentinels
constexpr uint64_t kMaxVersion = 1024;   // "go1.21.3 X:boringcrypto" is 23 bytes
constexpr uint64_t kMaxModInfo = 64ull << 20;
constexpr size_t kMaxModuleLine = 4096;  // a module path is at most a few hundred bytes
constexpr size_t kMaxModules = 100000;

Status invalid(const std::string& path, const std::string& why) {
  return Status(Code::kInvalidArgument, "Go build info of " + path + ": " + why);
}

// The bytes of `read`, consumed piece by piece; nothing is copied.
class Stream {
 public:
  explicit Stream(const ChunkReader& read) : read_(read) {}

  // Makes at least one byte available: false at the end of the stream.
  Result<bool> fill() {
    while (cur_.empty() && !eof_) {
      Result<std::string_view> chunk = read_();
      if (!chunk.isOk()) return chunk.status();
      if (chunk->empty()) {
        eof_ = true;
      } else {
        cur_ = *chunk;
      }
    }
    return !cur_.empty();
  }
  std::string_view avail() const { return cur_; }
  void consume(size_t n) {
    cur_.remove_prefix(n);
    pos_ += n;
  }
  uint64_t pos() const { return pos_; }

 private:
  const ChunkReader& read_;
  std::string_view cur_;
  uint64_t pos_ = 0;  // the file offset of cur_.data()
  bool eof_ = false;
};

// Finds the header, one 16-aligned block at a time.
class HeaderScan {
 public:
  // True when `b` (16 bytes) completes a plausible inline-format header.
  bool onBlock(const char* b) {
    if (in_pointers_) {
      in_pointers_ = false;
      if (std::all_of(b, b + kBlock, [](char c) { return c == 0; })) return true;
      // Not zeros: the candidate was a look-alike; this block may start a header itself.
    }
    if (b[0] != kMagic[0] || std::memcmp(b, kMagic.data(), kMagic.size()) != 0) return false;
    const auto ptr_size = static_cast<uint8_t>(b[14]);
    const auto flags = static_cast<uint8_t>(b[15]);
    if (ptr_size != 4 && ptr_size != 8) return false;
    if (flags == 2 || flags == 3) {
      in_pointers_ = true;
      header_offset_ = offset_;
    }
    // flags 0 or 1: the pointer-based layout of Go 1.13-1.17, not covered; searching on
    // finds nothing more in such a binary, and an empty list results.
    return false;
  }
  void advance() { offset_ += kBlock; }
  uint64_t headerOffset() const { return header_offset_; }

 private:
  bool in_pointers_ = false;
  uint64_t offset_ = 0;  // of the block being looked at
  uint64_t header_offset_ = 0;
};

// Searches the stream for the header and leaves it just after the 32 bytes. False when
// the stream ended without one.
Result<bool> findHeader(Stream& in, HeaderScan& scan) {
  std::array<char, kBlock> block{};
  size_t have = 0;  // bytes of a block begun in an earlier chunk; == pos % 16
  for (;;) {
    Result<bool> more = in.fill();
    if (!more.isOk()) return more.status();
    if (!*more) return false;
    std::string_view a = in.avail();
    if (have == 0) {
      size_t off = 0;
      for (; off + kBlock <= a.size(); off += kBlock) {
        const bool found = scan.onBlock(a.data() + off);
        scan.advance();
        if (found) {
          in.consume(off + kBlock);
          return true;
        }
      }
      in.consume(off);
      a = in.avail();
    }
    const size_t n = std::min(kBlock - have, a.size());
    std::memcpy(block.data() + have, a.data(), n);
    have += n;
    in.consume(n);
    if (have == kBlock) {
      have = 0;
      const bool found = scan.onBlock(block.data());
      scan.advance();
      if (found) return true;
    }
  }
}

// An unsigned LEB128 varint as encoding/binary.Uvarint reads it (at most 10 bytes).
Result<uint64_t> readUvarint(Stream& in, const std::string& path, const char* what) {
  uint64_t value = 0;
  for (int i = 0; i < 10; ++i) {
    Result<bool> more = in.fill();
    if (!more.isOk()) return more.status();
    if (!*more) return invalid(path, std::string("truncated before the length of ") + what);
    const auto byte = static_cast<uint8_t>(in.avail()[0]);
    in.consume(1);
    if (i == 9 && byte > 1) break;
    value |= static_cast<uint64_t>(byte & 0x7f) << (7 * i);
    if ((byte & 0x80) == 0) return value;
  }
  return invalid(path, std::string("the length of ") + what + " overflows");
}

// Passes the next n bytes to sink(std::string_view), a piece at a time.
template <typename Sink>
Status readBytes(Stream& in, uint64_t n, const std::string& path, const char* what, Sink&& sink) {
  while (n > 0) {
    Result<bool> more = in.fill();
    if (!more.isOk()) return more.status();
    if (!*more) return invalid(path, std::string("truncated in ") + what);
    std::string_view a = in.avail();
    const size_t take = static_cast<size_t>(std::min<uint64_t>(n, a.size()));
    sink(a.substr(0, take));
    in.consume(take);
    n -= take;
  }
  return Status::ok();
}

struct Module {
  std::string path;
  std::string version;
  bool main = false;
};

std::vector<std::string_view> splitTabs(std::string_view s) {
  std::vector<std::string_view> out;
  for (;;) {
    const size_t tab = s.find('\t');
    out.push_back(s.substr(0, tab));
    if (tab == std::string_view::npos) return out;
    s.remove_prefix(tab + 1);
  }
}

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool isModuleLine(std::string_view line) {
  return startsWith(line, "mod\t") || startsWith(line, "dep\t") || startsWith(line, "=>\t");
}

// runtime/debug.ParseBuildInfo's reading of module lines, fed as the bytes stream.
class ModInfoParser {
 public:
  explicit ModInfoParser(const std::string& path) : path_(path) {}

  void feed(std::string_view data) {
    if (!data.empty()) last_byte_ = data.back();
    while (!data.empty() && err_.isOk()) {
      const size_t nl = data.find('\n');
      const std::string_view piece = data.substr(0, nl);
      if (!skipping_) {
        if (line_.size() + piece.size() > kMaxModuleLine) {
          line_.append(piece.substr(0, kMaxModuleLine - line_.size()));
          if (isModuleLine(line_)) {
            err_ = invalid(path_, "modinfo line " + std::to_string(line_no_) + ": a module line over " +
                                      std::to_string(kMaxModuleLine) + " bytes");
            return;
          }
          skipping_ = true;  // a long build setting (-ldflags): not needed
          line_.clear();
        } else {
          line_.append(piece);
        }
      }
      if (nl == std::string_view::npos) return;
      data.remove_prefix(nl + 1);
      if (!skipping_) onLine(line_);
      skipping_ = false;
      line_.clear();
      ++line_no_;
    }
  }

  bool endsWithNewline() const { return last_byte_ == '\n'; }
  const Status& error() const { return err_; }
  std::vector<Module>& modules() { return modules_; }

 private:
  void onLine(std::string_view line) {
    const bool main = startsWith(line, "mod\t");
    if (main || startsWith(line, "dep\t")) {
      std::vector<std::string_view> cols = splitTabs(line.substr(4));
      if (cols.size() != 2 && cols.size() != 3) {
        err_ = invalid(path_, lineError("expected 2 or 3 columns, got " + std::to_string(cols.size())));
        return;
      }
      if (modules_.size() >= kMaxModules) {
        err_ = Status(Code::kTooLarge, "Go build info of " + path_ + ": over " +
                                           std::to_string(kMaxModules) + " modules");
        return;
      }
      modules_.push_back(Module{std::string(cols[0]), std::string(cols[1]), main});
      last_ = static_cast<long>(modules_.size()) - 1;
    } else if (startsWith(line, "=>\t")) {
      std::vector<std::string_view> cols = splitTabs(line.substr(3));
      if (cols.size() != 3) {
        err_ = invalid(path_, lineError("expected 3 columns for a replacement, got " +
                                        std::to_string(cols.size())));
        return;
      }
      if (last_ < 0) {
        err_ = invalid(path_, lineError("a replacement with no module on the previous line"));
        return;
      }
      modules_[static_cast<size_t>(last_)].path = std::string(cols[0]);
      modules_[static_cast<size_t>(last_)].version = std::string(cols[1]);
      last_ = -1;
    }
    // path, build and anything newer: not needed.
  }

  std::string lineError(const std::string& why) const {
    return "modinfo line " + std::to_string(line_no_) + ": " + why;
  }

  const std::string& path_;
  std::string line_;
  bool skipping_ = false;
  size_t line_no_ = 1;
  char last_byte_ = 0;
  long last_ = -1;  // the module an `=>` line replaces
  std::vector<Module> modules_;
  Status err_;
};

bool isDigit(char c) { return c >= '0' && c <= '9'; }

std::string_view takeDigits(std::string_view& s) {
  size_t n = 0;
  while (n < s.size() && isDigit(s[n])) ++n;
  std::string_view d = s.substr(0, n);
  s.remove_prefix(n);
  return d;
}

std::string toolchainSemver(std::string_view v) {
  v = v.substr(0, v.find_first_of(" \t"));  // "go1.21.3 X:boringcrypto"
  if (!startsWith(v, "go")) return "";      // "devel go1.22-abcdef ..."
  v.remove_prefix(2);
  if (v == "1") return "v1.0.0";
  const std::string_view major = takeDigits(v);
  if (major.empty() || v.empty() || v[0] != '.') return "";
  v.remove_prefix(1);
  const std::string_view minor = takeDigits(v);
  if (minor.empty()) return "";
  std::string out = "v" + std::string(major) + "." + std::string(minor);
  if (!v.empty() && v[0] == '.') {
    v.remove_prefix(1);
    const std::string_view patch = takeDigits(v);
    if (patch.empty()) return "";
    out += "." + std::string(patch);
  } else {
    out += ".0";
  }
  for (std::string_view pre : {std::string_view("beta"), std::string_view("rc"), std::string_view("-pre")}) {
    if (startsWith(v, pre) && v.size() > pre.size() && isDigit(v[pre.size()])) {
      v.remove_prefix(pre.size());
      const std::string_view n = takeDigits(v);
      out += "-" + std::string(pre[0] == '-' ? pre.substr(1) : pre) + "." + std::string(n);
      break;
    }
  }
  if (!v.empty() && v[0] != '-') return "";  // "-bigcorp": a vendor's build of that release
  return out;
}

Result<std::vector<Package>> readBuildInfo(const ChunkReader& read, const std::string& path) {
  Stream in(read);
  HeaderScan scan;
  Result<bool> found = findHeader(in, scan);
  if (!found.isOk()) return found.status();
  if (!*found) return std::vector<Package>{};  // not Go, or Go before 1.18

  Result<uint64_t> version_len = readUvarint(in, path, "the Go version");
  if (!version_len.isOk()) return version_len.status();
  if (*version_len > kMaxVersion) {
    return invalid(path, "a Go version of " + std::to_string(*version_len) + " bytes at offset " +
                             std::to_string(scan.headerOffset()));
  }
  std::string go_version;
  WHARF_RETURN_IF_ERROR(readBytes(in, *version_len, path, "the Go version",
                                  [&](std::string_view s) { go_version.append(s); }));
  if (go_version.empty()) return std::vector<Package>{};  // debug/buildinfo: not a Go executable

  Result<uint64_t> mod_len = readUvarint(in, path, "the modinfo");
  if (!mod_len.isOk()) return mod_len.status();
  if (*mod_len > kMaxModInfo) {
    return Status(Code::kTooLarge, "Go build info of " + path + ": a modinfo of " +
                                       std::to_string(*mod_len) + " bytes");
  }
  std::vector<Module> modules;
  // As debug/buildinfo: the modinfo counts when framed (at least 33 bytes, '\n' last
  // before the end sentinel); otherwise the binary was built without modules.
  if (*mod_len >= 2 * kSentinel + 1) {
    ModInfoParser parser(path);
    WHARF_RETURN_IF_ERROR(readBytes(in, kSentinel, path, "the modinfo", [](std::string_view) {}));
    WHARF_RETURN_IF_ERROR(readBytes(in, *mod_len - 2 * kSentinel, path, "the modinfo",
                                    [&](std::string_view s) { parser.feed(s); }));
    // The end sentinel is not needed: reading stops here.
    if (parser.endsWithNewline()) {
      if (!parser.error().isOk()) return parser.error();
      modules = std::move(parser.modules());
    }
  }

  std::vector<Package> out;
  auto add = [&](std::string name, std::string version) {
    Package p;
    p.type = "golang";
    p.name = std::move(name);
    p.version = std::move(version);
    p.path = path;
    out.push_back(std::move(p));
  };
  for (Module& m : modules) {
    if (m.version == "(devel)") m.version.clear();
    if (m.path.empty()) continue;                 // old toolchains' empty dep lines
    if (m.main && m.version.empty()) continue;  // the main module without a version
    add(std::move(m.path), std::move(m.version));
  }
  std::string stdlib = toolchainSemver(go_version);
  if (!stdlib.empty()) add("stdlib", std::move(stdlib));
  return out;
}

}  // namespace gobuildinfo
}  // namespace

std::string goToolchainSemver(std::string_view go_version) { return gobuildinfo::toolchainSemver(go_version); }

Result<std::vector<Package>> readGoBuildInfo(const ChunkReader& read, const std::string& path) {
  return gobuildinfo::readBuildInfo(read, path);
}

}  // namespace wharf
