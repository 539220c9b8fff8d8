#include "core/scan/java_archive.h"

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <set>
#include <utility>

namespace wharf {
namespace {
// A namespace of its own: the core is built in unity batches.
namespace javaarchive {

constexpr int kMaxDepth = 3;                          // archives nested deeper are skipped
constexpr size_t kMaxEntries = 100000;                // per archive
constexpr size_t kMaxPomProperties = 64 * 1024;       // read of a pom.properties
constexpr uint64_t kMaxManifest = 1024 * 1024;        // read of a MANIFEST.MF
constexpr size_t kMaxManifestLine = 64 * 1024;        // kept of one physical manifest line
constexpr size_t kMaxAttribute = 4096;                // kept of an attribute's value
constexpr uint64_t kMaxNestedBytes = 2ull << 30;      // read out of nested archives, in all
constexpr int kMaxEmptyBlocks = 1000000;              // libarchive giving nothing, repeatedly

struct Budget {
  uint64_t nested_bytes = 0;
};

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool equalsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool isBlank(char c) { return c == ' ' || c == '\t' || c == '\f'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (isBlank(s.front()) || s.front() == '\r' || s.front() == '\n')) s.remove_prefix(1);
  while (!s.empty() && (isBlank(s.back()) || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

std::string_view baseName(std::string_view path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

void appendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

// A key or value of a properties file with its escapes resolved, as Properties.load.
std::string unescapeProperty(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    const char c = s[++i];
    switch (c) {
      case 't': out += '\t'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 'f': out += '\f'; break;
      case 'u': {
        uint32_t cp = 0;
        size_t j = 0;
        for (; j < 4 && i + 1 + j < s.size(); ++j) {
          const char h = s[i + 1 + j];
          const int d = h >= '0' && h <= '9' ? h - '0' : lower(h) >= 'a' && lower(h) <= 'f' ? lower(h) - 'a' + 10 : -1;
          if (d < 0) break;
          cp = cp * 16 + static_cast<uint32_t>(d);
        }
        if (j == 4) {
          appendUtf8(out, cp);
          i += 4;
        } else {
          out += "\\u";  // malformed: kept as written
        }
        break;
      }
      default: out += c;
    }
  }
  return out;
}

struct PomProperties {
  std::string group_id;
  std::string artifact_id;
  std::string version;
};

// The Java properties format (java.util.Properties.load) for the keys a pom.properties
// has: logical lines (a line ending in an odd number of backslashes goes on, the next
// one's leading blanks dropped), comments (# or !), a key ending at an unescaped '=',
// ':' or blank.
PomProperties parsePomProperties(std::string_view text) {
  PomProperties props;
  size_t i = 0;
  auto physicalLine = [&]() {
    const size_t end = text.find_first_of("\r\n", i);
    std::string_view line = text.substr(i, end == std::string_view::npos ? std::string_view::npos : end - i);
    i = end == std::string_view::npos ? text.size() : end + 1;
    if (end != std::string_view::npos && text[end] == '\r' && i < text.size() && text[i] == '\n') ++i;
    return line;
  };
  while (i < text.size()) {
    std::string logical;
    std::string_view line = physicalLine();
    while (!line.empty() && isBlank(line.front())) line.remove_prefix(1);
    if (line.empty() || line.front() == '#' || line.front() == '!') continue;
    for (;;) {
      size_t backslashes = 0;
      while (backslashes < line.size() && line[line.size() - 1 - backslashes] == '\\') ++backslashes;
      if (backslashes % 2 == 0) {
        logical.append(line);
        break;
      }
      logical.append(line.substr(0, line.size() - 1));
      if (i >= text.size()) break;
      line = physicalLine();
      while (!line.empty() && isBlank(line.front())) line.remove_prefix(1);
    }
    size_t k = 0;
    while (k < logical.size() && logical[k] != '=' && logical[k] != ':' && !isBlank(logical[k])) {
      k += logical[k] == '\\' ? 2 : 1;
    }
    k = std::min(k, logical.size());
    const std::string key = unescapeProperty(std::string_view(logical).substr(0, k));
    size_t v = k;
    while (v < logical.size() && isBlank(logical[v])) ++v;
    if (v < logical.size() && (logical[v] == '=' || logical[v] == ':')) ++v;
    while (v < logical.size() && isBlank(logical[v])) ++v;
    std::string value(trim(unescapeProperty(std::string_view(logical).substr(v))));
    if (key == "groupId") {
      props.group_id = std::move(value);
    } else if (key == "artifactId") {
      props.artifact_id = std::move(value);
    } else if (key == "version") {
      props.version = std::move(value);
    }
  }
  return props;
}

// The group and artifact directories of META-INF/maven/<group>/<artifact>/pom.properties;
// false for any other name.
bool pomPropertiesPath(std::string_view name, std::string_view& group, std::string_view& artifact) {
  constexpr std::string_view kPrefix = "META-INF/maven/";
  constexpr std::string_view kSuffix = "/pom.properties";
  if (name.size() <= kPrefix.size() + kSuffix.size() || name.substr(0, kPrefix.size()) != kPrefix ||
      name.substr(name.size() - kSuffix.size()) != kSuffix) {
    return false;
  }
  std::string_view middle = name.substr(kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size());
  const size_t slash = middle.find('/');
  if (slash == std::string_view::npos || middle.find('/', slash + 1) != std::string_view::npos) return false;
  group = middle.substr(0, slash);
  artifact = middle.substr(slash + 1);
  return !group.empty() && !artifact.empty();
}

// The main section of a MANIFEST.MF, fed as it streams: only the attributes wanted are
// kept. Lines end with CR LF, LF or CR; a line starting with one space continues the
// attribute before it; an empty line ends the main section.
class ManifestParser {
 public:
  // False once the main section has ended: nothing more is needed.
  bool feed(std::string_view data) {
    for (size_t i = 0; i < data.size() && !done_; ++i) {
      const char c = data[i];
      if (after_cr_) {
        after_cr_ = false;
        if (c == '\n') continue;
      }
      if (c == '\r' || c == '\n') {
        after_cr_ = c == '\r';
        onLine();
        continue;
      }
      if (line_.size() < kMaxManifestLine) line_ += c;
    }
    return !done_;
  }

  void finish() {
    if (!done_ && !line_.empty()) onLine();
    endAttribute();
    done_ = true;
  }

  std::string attribute(std::string_view name) const {
    for (const auto& [n, v] : attributes_) {
      if (equalsNoCase(n, name)) return v;
    }
    return "";
  }

 private:
  static bool wanted(std::string_view name) {
    for (std::string_view w : {"Implementation-Vendor-Id", "Bundle-SymbolicName", "Implementation-Title",
                               "Bundle-Name", "Implementation-Version", "Bundle-Version"}) {
      if (equalsNoCase(name, w)) return true;
    }
    return false;
  }

  void onLine() {
    std::string_view line = line_;
    if (line.empty()) {
      endAttribute();
      done_ = true;
    } else if (line.front() == ' ') {
      if (wanted_) value_.append(line.substr(1, kMaxAttribute - std::min(kMaxAttribute, value_.size())));
    } else {
      endAttribute();
      const size_t colon = line.find(':');
      if (colon != std::string_view::npos) {
        name_ = std::string(line.substr(0, colon));
        wanted_ = wanted(name_);
        std::string_view value = line.substr(colon + 1);
        if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        if (wanted_) value_ = std::string(value.substr(0, kMaxAttribute));
      }
    }
    line_.clear();
  }

  void endAttribute() {
    if (wanted_ && attribute(name_).empty()) attributes_.emplace_back(name_, std::string(trim(value_)));
    wanted_ = false;
    name_.clear();
    value_.clear();
  }

  std::string line_;
  bool after_cr_ = false;
  bool done_ = false;
  std::string name_;
  std::string value_;
  bool wanted_ = false;
  std::vector<std::pair<std::string, std::string>> attributes_;
};

// "commons-lang3-3.12.0" -> {"commons-lang3", "3.12.0"}, as trivy's file name pattern
// ^([a-zA-Z0-9._-]*[^-*])-(\d\S*)$: the version starts at the last '-' before a digit.
bool parseArtifactFileName(std::string_view file, std::string& artifact, std::string& version) {
  const size_t dot = file.find_last_of('.');
  if (dot == std::string_view::npos) return false;
  const std::string_view stem = file.substr(0, dot);
  for (size_t i = stem.size(); i-- > 1;) {
    if (stem[i] != '-' || i + 1 >= stem.size() || stem[i + 1] < '0' || stem[i + 1] > '9') continue;
    const std::string_view a = stem.substr(0, i);
    const std::string_view v = stem.substr(i + 1);
    const bool artifact_ok = std::all_of(a.begin(), a.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
             c == '_' || c == '-';
    }) && a.back() != '-';
    const bool version_ok = std::none_of(v.begin(), v.end(), [](char c) { return c == ' ' || c == '\t'; });
    if (!artifact_ok || !version_ok) return false;
    artifact = std::string(a);
    version = std::string(v);
    return true;
  }
  return false;
}

// libarchive's reader, pulling from a ChunkReader.
struct Source {
  const ChunkReader* read;
  Status error;  // of `read`, returned as it is
};

la_ssize_t sourceRead(struct archive* a, void* client, const void** buffer) {
  auto* src = static_cast<Source*>(client);
  Result<std::string_view> chunk = (*src->read)();
  if (!chunk.isOk()) {
    src->error = chunk.status();
    archive_set_error(a, EIO, "%s", src->error.message().c_str());
    return -1;
  }
  *buffer = chunk->data();
  return static_cast<la_ssize_t>(chunk->size());
}

using ArchivePtr = std::unique_ptr<struct archive, int (*)(struct archive*)>;

class JarReader {
 public:
  JarReader(const ChunkReader& read, const std::string& path, int depth, Budget& budget)
      : src_{&read, Status::ok()}, path_(path), depth_(depth), budget_(budget) {}

  Result<std::vector<Package>> run() {
    if (!a_) return Status(Code::kInternal, "Java archive " + path_ + ": libarchive: out of memory");
    archive_read_support_format_zip_streamable(a_.get());
    if (archive_read_open(a_.get(), &src_, nullptr, sourceRead, nullptr) != ARCHIVE_OK) {
      return failure("not a readable zip archive");
    }
    std::vector<Package> poms;
    std::vector<Package> nested;
    ManifestParser manifest;
    size_t entries = 0;
    for (;;) {
      struct archive_entry* e = nullptr;
      const int r = archive_read_next_header(a_.get(), &e);
      if (r == ARCHIVE_EOF) break;
      if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
        return failure(entries == 0 ? std::string("not a readable zip archive")
                                    : "reading the entry after " + quoted(entry_name_));
      }
      if (++entries > kMaxEntries) {
        return Status(Code::kTooLarge, "Java archive " + path_ + ": over " + std::to_string(kMaxEntries) + " entries");
      }
      const char* name = archive_entry_pathname_utf8(e);
      if (name == nullptr) name = archive_entry_pathname(e);
      entry_name_ = name != nullptr ? name : "";
      entry_sizes_known_ = archive_entry_size_is_set(e) != 0;
      if (name == nullptr || archive_entry_filetype(e) != AE_IFREG) continue;

      std::string_view group_dir;
      std::string_view artifact_dir;
      if (pomPropertiesPath(entry_name_, group_dir, artifact_dir)) {
        Result<std::string> text = readSmall(kMaxPomProperties);
        if (!text.isOk()) return text.status();
        PomProperties props = parsePomProperties(*text);
        if (props.group_id.empty()) props.group_id = std::string(group_dir);
        if (props.artifact_id.empty()) props.artifact_id = std::string(artifact_dir);
        if (!props.version.empty()) {
          poms.push_back(package(props.group_id + ":" + props.artifact_id, props.version, path_));
        }
      } else if (equalsNoCase(entry_name_, "META-INF/MANIFEST.MF")) {
        WHARF_RETURN_IF_ERROR(readManifest(manifest));
      } else if (isJavaArchiveName(entry_name_) && depth_ < kMaxDepth) {
        WHARF_RETURN_IF_ERROR(readNested(nested));
      }
    }

    std::vector<Package> out;
    std::set<std::pair<std::string, std::string>> seen;
    auto add = [&](Package p) {
      if (seen.emplace(p.name + '\n' + p.path, p.version).second) out.push_back(std::move(p));
    };
    if (!poms.empty()) {
      for (Package& p : poms) add(std::move(p));
    } else if (Result<Package> m = fromManifest(manifest); m.isOk()) {
      add(std::move(*m));
    } else {
      std::string artifact;
      std::string version;
      if (parseArtifactFileName(baseName(path_), artifact, version)) add(package(artifact, version, path_));
    }
    for (Package& p : nested) add(std::move(p));
    return out;
  }

 private:
  static Package package(std::string name, std::string version, const std::string& path) {
    Package p;
    p.type = "maven";
    p.name = std::move(name);
    p.version = std::move(version);
    p.path = path;
    return p;
  }

  static std::string quoted(const std::string& s) { return "\"" + s.substr(0, 200) + "\""; }

  // The archive's error: `read`'s own as it is, else libarchive's as kInvalidArgument.
  Status failure(const std::string& what) const {
    if (!src_.error.isOk()) return src_.error;
    const char* msg = archive_error_string(a_.get());
    std::string text = "Java archive " + path_ + ": " + what + ": " + (msg != nullptr ? msg : "unknown error");
    if (!entry_name_.empty() && !entry_sizes_known_) {
      text += " (entry " + quoted(entry_name_) +
              " has its sizes in a data descriptor after its data: a stored entry written so cannot always "
              "be read as a stream)";
    }
    return Status(Code::kInvalidArgument, text);
  }

  // The next piece of the current entry's data; false at its end.
  Result<bool> nextBlock(std::string_view& block) {
    for (int empty = 0; empty < kMaxEmptyBlocks; ++empty) {
      const void* buf = nullptr;
      size_t size = 0;
      la_int64_t offset = 0;
      const int r = archive_read_data_block(a_.get(), &buf, &size, &offset);
      if (r == ARCHIVE_EOF) return false;
      if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return failure("reading entry " + quoted(entry_name_));
      if (size > 0) {
        block = std::string_view(static_cast<const char*>(buf), size);
        return true;
      }
    }
    return failure("reading entry " + quoted(entry_name_) + ": no progress");
  }

  // Up to `cap` bytes of the current entry (the rest is skipped by the next header).
  Result<std::string> readSmall(size_t cap) {
    std::string out;
    while (out.size() < cap) {
      std::string_view block;
      Result<bool> more = nextBlock(block);
      if (!more.isOk()) return more.status();
      if (!*more) break;
      out.append(block.substr(0, cap - out.size()));
    }
    return out;
  }

  Status readManifest(ManifestParser& manifest) {
    uint64_t read = 0;
    while (read < kMaxManifest) {
      std::string_view block;
      Result<bool> more = nextBlock(block);
      if (!more.isOk()) return more.status();
      if (!*more) break;
      block = block.substr(0, static_cast<size_t>(std::min<uint64_t>(block.size(), kMaxManifest - read)));
      read += block.size();
      if (!manifest.feed(block)) break;
    }
    manifest.finish();
    return Status::ok();
  }

  Result<Package> fromManifest(const ManifestParser& m) const {
    std::string group = m.attribute("Implementation-Vendor-Id");
    if (group.empty()) {
      std::string bsn = std::string(trim(m.attribute("Bundle-SymbolicName").substr(
          0, m.attribute("Bundle-SymbolicName").find(';'))));
      const size_t dot = bsn.find_last_of('.');
      group = dot != std::string::npos && dot > 0 ? bsn.substr(0, dot) : bsn;
    }
    std::string artifact = m.attribute("Implementation-Title");
    if (artifact.empty()) artifact = m.attribute("Bundle-Name");
    std::string version = m.attribute("Implementation-Version");
    if (version.empty()) version = m.attribute("Bundle-Version");
    if (group.empty() || artifact.empty() || version.empty()) {
      return Status(Code::kNotFound, "no complete identity in the manifest");
    }
    return package(group + ":" + artifact, version, path_);
  }

  // The current entry, a Java archive itself, read from this one's stream.
  Status readNested(std::vector<Package>& out) {
    const std::string inner_path = path_ + "!/" + entry_name_;
    bool eof = false;
    ChunkReader inner = [&]() -> Result<std::string_view> {
      if (eof) return std::string_view();
      std::string_view block;
      Result<bool> more = nextBlock(block);
      if (!more.isOk()) return more.status();
      if (!*more) {
        eof = true;
        return std::string_view();
      }
      budget_.nested_bytes += block.size();
      if (budget_.nested_bytes > kMaxNestedBytes) {
        return Status(Code::kTooLarge, "Java archive " + inner_path + ": over " +
                                           std::to_string(kMaxNestedBytes >> 30) +
                                           " GiB read out of nested archives");
      }
      return block;
    };
    JarReader reader(inner, inner_path, depth_ + 1, budget_);
    Result<std::vector<Package>> packages = reader.run();
    if (!packages.isOk()) return packages.status();
    for (Package& p : *packages) out.push_back(std::move(p));
    return Status::ok();
  }

  ArchivePtr a_{archive_read_new(), archive_read_free};
  Source src_;
  const std::string& path_;
  const int depth_;
  Budget& budget_;
  std::string entry_name_;
  bool entry_sizes_known_ = true;
};

}  // namespace javaarchive
}  // namespace

bool isJavaArchiveName(std::string_view name) {
  if (name.size() < 5 || name[name.size() - 4] != '.') return false;
  const std::string_view ext = name.substr(name.size() - 3);
  for (std::string_view e : {"jar", "war", "ear", "par"}) {
    if (javaarchive::equalsNoCase(ext, e)) return true;
  }
  return false;
}

Result<std::vector<Package>> readJavaArchive(const ChunkReader& read, const std::string& path, int depth) {
  javaarchive::Budget budget;
  javaarchive::JarReader reader(read, path, depth, budget);
  return reader.run();
}

}  // namespace wharf
