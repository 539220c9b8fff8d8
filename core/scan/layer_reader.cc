#include "core/scan/layer_reader.h"

#include <archive.h>
#include <archive_entry.h>
#include <isa-l/igzip_lib.h>
#include <unistd.h>
#include <zstd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "shared/base/clock.h"
#include "shared/base/fs.h"

namespace wharf {

LayerCompression sniffCompression(std::string_view head) {
  if (head.size() >= 2 && uint8_t(head[0]) == 0x1f && uint8_t(head[1]) == 0x8b) return LayerCompression::kGzip;
  if (head.size() >= 4 && uint8_t(head[0]) == 0x28 && uint8_t(head[1]) == 0xb5 && uint8_t(head[2]) == 0x2f &&
      uint8_t(head[3]) == 0xfd)
    return LayerCompression::kZstd;
  return LayerCompression::kNone;
}

ByteSource fdByteSource(int fd) {
  return [fd](char* buf, size_t n) -> Result<size_t> {
    for (;;) {
      ssize_t r = ::read(fd, buf, n);
      if (r >= 0) return size_t(r);
      if (errno != EINTR) return errnoStatus("read layer", errno);
    }
  };
}

Result<std::string> readAllContent(const ChunkReader& content, size_t limit) {
  std::string out;
  for (;;) {
    auto chunk = content();
    if (!chunk.isOk()) return chunk.status();
    if (chunk->empty()) return out;
    if (out.size() + chunk->size() > limit)
      return Status(Code::kTooLarge, "file larger than " + std::to_string(limit) + " bytes");
    out.append(*chunk);
  }
}

namespace {

constexpr size_t kInputBuffer = 256 * 1024;
constexpr size_t kOutputBuffer = 256 * 1024;

// The compressed stream in, the tar bytes out, counted against the limits.
class Expander {
 public:
  Expander(const ByteSource& source, uint64_t compressed_size, const LayerLimits& limits)
      : source_(source), limits_(limits), in_(kInputBuffer), out_(kOutputBuffer) {
    max_expanded_ = limits.max_expanded_bytes;
    if (compressed_size > 0 && limits.max_ratio > 0) {
      uint64_t by_ratio = compressed_size * limits.max_ratio + (1ull << 30);
      if (by_ratio < max_expanded_) max_expanded_ = by_ratio;
    }
  }
  ~Expander() {
    if (zstd_ != nullptr) ZSTD_freeDCtx(zstd_);
  }

  Status start() {
    // The magic numbers take 4 bytes; a source may hand them out a few at a time.
    while (!eof_ && in_len_ < 4) {
      auto r = source_(in_.data() + in_len_, in_.size() - in_len_);
      if (!r.isOk()) return r.status();
      in_len_ += *r;
      stats.compressed_bytes += *r;
      if (*r == 0) eof_ = true;
    }
    mode_ = sniffCompression(std::string_view(in_.data() + in_pos_, in_len_ - in_pos_));
    if (mode_ == LayerCompression::kGzip) {
      isal_ = std::make_unique<inflate_state>();
      isal_inflate_init(isal_.get());
      isal_->crc_flag = ISAL_GZIP;
    } else if (mode_ == LayerCompression::kZstd) {
      zstd_ = ZSTD_createDCtx();
      if (zstd_ == nullptr) return Status(Code::kInternal, "zstd: out of memory");
      ZSTD_DCtx_setParameter(zstd_, ZSTD_d_windowLogMax, 27);
    }
    return Status::ok();
  }

  // Expanded bytes: a view of the output buffer, empty at the end.
  Result<std::string_view> next() {
    if (limits_.deadline_ms > 0 && monotonicMillis() > limits_.deadline_ms)
      return Status(Code::kTimeout, "layer scan took longer than its deadline");
    Result<size_t> n = size_t(0);
    switch (mode_) {
      case LayerCompression::kNone: n = nextPlain(); break;
      case LayerCompression::kGzip: n = nextGzip(); break;
      case LayerCompression::kZstd: n = nextZstd(); break;
    }
    if (!n.isOk()) return n.status();
    stats.expanded_bytes += *n;
    if (stats.expanded_bytes > max_expanded_)
      return Status(Code::kTooLarge, "layer expands to more than " + std::to_string(max_expanded_) +
                                         " bytes (a decompression bomb?)");
    return std::string_view(out_.data(), *n);
  }

  bool compressed() const { return mode_ != LayerCompression::kNone; }

  LayerStats stats;

 private:
  Status fill() {
    if (in_pos_ < in_len_ || eof_) return Status::ok();
    auto r = source_(in_.data(), in_.size());
    if (!r.isOk()) return r.status();
    in_pos_ = 0;
    in_len_ = *r;
    stats.compressed_bytes += *r;
    if (*r == 0) eof_ = true;
    return Status::ok();
  }

  Result<size_t> nextPlain() {
    if (in_pos_ < in_len_) {
      size_t n = std::min(out_.size(), in_len_ - in_pos_);
      std::memcpy(out_.data(), in_.data() + in_pos_, n);
      in_pos_ += n;
      return n;
    }
    auto r = source_(out_.data(), out_.size());
    if (r.isOk()) stats.compressed_bytes += *r;
    return r;
  }

  Result<size_t> nextGzip() {
    for (;;) {
      if (member_done_) {
        // Concatenated gzip members are one stream; anything else after the end is
        // ignored, as gzip -d does with trailing zeros.
        auto s = fill();
        if (!s.isOk()) return s;
        if (in_pos_ >= in_len_) return size_t(0);
        if (sniffCompression(std::string_view(in_.data() + in_pos_, in_len_ - in_pos_)) != LayerCompression::kGzip)
          return size_t(0);
        isal_inflate_reset(isal_.get());
        isal_->crc_flag = ISAL_GZIP;
        member_done_ = false;
      }
      auto s = fill();
      if (!s.isOk()) return s;
      isal_->next_in = reinterpret_cast<uint8_t*>(in_.data() + in_pos_);
      isal_->avail_in = uint32_t(in_len_ - in_pos_);
      isal_->next_out = reinterpret_cast<uint8_t*>(out_.data());
      isal_->avail_out = uint32_t(out_.size());
      int rc = isal_inflate(isal_.get());
      in_pos_ = in_len_ - isal_->avail_in;
      if (rc < 0) return Status(Code::kInvalidArgument, "corrupt gzip stream (isal error " + std::to_string(rc) + ")");
      size_t produced = out_.size() - isal_->avail_out;
      if (isal_->block_state == ISAL_BLOCK_FINISH) member_done_ = true;
      if (produced > 0) return produced;
      if (!member_done_ && eof_ && in_pos_ >= in_len_) return Status(Code::kInvalidArgument, "truncated gzip stream");
    }
  }

  Result<size_t> nextZstd() {
    for (;;) {
      auto s = fill();
      if (!s.isOk()) return s;
      if (eof_ && in_pos_ >= in_len_) {
        if (!frame_done_) return Status(Code::kInvalidArgument, "truncated zstd stream");
        return size_t(0);
      }
      ZSTD_inBuffer in{in_.data(), in_len_, in_pos_};
      ZSTD_outBuffer out{out_.data(), out_.size(), 0};
      size_t rc = ZSTD_decompressStream(zstd_, &out, &in);
      in_pos_ = in.pos;
      if (ZSTD_isError(rc)) return Status(Code::kInvalidArgument, std::string("corrupt zstd stream: ") + ZSTD_getErrorName(rc));
      frame_done_ = rc == 0;
      if (out.pos > 0) return out.pos;
    }
  }

  const ByteSource& source_;
  LayerLimits limits_;
  uint64_t max_expanded_ = 0;
  LayerCompression mode_ = LayerCompression::kNone;
  std::vector<char> in_;
  std::vector<char> out_;
  size_t in_pos_ = 0;
  size_t in_len_ = 0;
  bool eof_ = false;
  std::unique_ptr<inflate_state> isal_;
  bool member_done_ = false;
  ZSTD_DCtx* zstd_ = nullptr;
  bool frame_done_ = true;
};

struct ArchiveCtx {
  Expander* expander;
  Status error;
};

la_ssize_t archiveRead(struct archive* a, void* opaque, const void** buf) {
  auto* ctx = static_cast<ArchiveCtx*>(opaque);
  auto r = ctx->expander->next();
  if (!r.isOk()) {
    ctx->error = r.status();
    archive_set_error(a, EIO, "%s", r.status().message().c_str());
    return -1;
  }
  *buf = r->data();
  return la_ssize_t(r->size());
}

struct ArchiveDeleter {
  void operator()(struct archive* a) const { archive_read_free(a); }
};

// "./a//b/" -> "a/b"; refuses absolute paths and `..`.
Result<std::string> normalisePath(std::string_view raw, size_t max_path) {
  if (raw.size() > max_path) return Status(Code::kInvalidArgument, "member name longer than " + std::to_string(max_path));
  if (!raw.empty() && raw[0] == '/') return Status(Code::kInvalidArgument, "absolute member path: " + std::string(raw.substr(0, 200)));
  std::string out;
  size_t i = 0;
  while (i <= raw.size()) {
    size_t j = raw.find('/', i);
    if (j == std::string_view::npos) j = raw.size();
    std::string_view part = raw.substr(i, j - i);
    if (part == "..") return Status(Code::kInvalidArgument, "member path climbs out with '..': " + std::string(raw.substr(0, 200)));
    if (!part.empty() && part != ".") {
      if (!out.empty()) out += '/';
      out += part;
    }
    i = j + 1;
  }
  if (out.find('\0') != std::string::npos) return Status(Code::kInvalidArgument, "member path with a NUL byte");
  return out;
}

}  // namespace

Result<LayerStats> walkLayer(const ByteSource& source, uint64_t compressed_size, const LayerLimits& limits,
                             const LayerVisitor& visit) {
  Expander expander(source, compressed_size, limits);
  if (auto s = expander.start(); !s.isOk()) return s;
  ArchiveCtx ctx{&expander, Status::ok()};
  std::unique_ptr<struct archive, ArchiveDeleter> a(archive_read_new());
  if (!a) return Status(Code::kInternal, "libarchive: out of memory");
  archive_read_support_format_tar(a.get());
  archive_read_support_format_empty(a.get());
  if (archive_read_open(a.get(), &ctx, nullptr, archiveRead, nullptr) != ARCHIVE_OK) {
    if (!ctx.error.isOk()) return ctx.error;
    return Status(Code::kInvalidArgument, std::string("not a tar layer: ") + archive_error_string(a.get()));
  }
  auto archiveFailure = [&](const char* what) -> Status {
    if (!ctx.error.isOk()) return ctx.error;
    const char* msg = archive_error_string(a.get());
    return Status(Code::kInvalidArgument, std::string(what) + ": " + (msg ? msg : "malformed tar"));
  };

  const ChunkReader content = [&]() -> Result<std::string_view> {
    const void* buf = nullptr;
    size_t len = 0;
    la_int64_t off = 0;
    int rc = archive_read_data_block(a.get(), &buf, &len, &off);
    if (rc == ARCHIVE_EOF) return std::string_view();
    if (rc < ARCHIVE_WARN) return archiveFailure("reading a member");
    // Sparse members come as blocks at offsets; the detectors only read database files
    // and binaries, which are not sparse, so holes are simply skipped.
    return std::string_view(static_cast<const char*>(buf), len);
  };

  for (;;) {
    struct archive_entry* ae = nullptr;
    int rc = archive_read_next_header(a.get(), &ae);
    if (rc == ARCHIVE_EOF) {
      // The tar ends at its end-of-archive blocks; the compressed stream must still end
      // where it says (gzip's CRC and length, zstd's checksum), or it is truncated or
      // corrupt. What follows the tar is decompressed and counted, never parsed.
      if (expander.compressed()) {
        for (;;) {
          auto rest = expander.next();
          if (!rest.isOk()) return rest.status();
          if (rest->empty()) break;
        }
      }
      break;
    }
    if (rc < ARCHIVE_WARN) return archiveFailure("reading a member header");
    if (++expander.stats.members > limits.max_members)
      return Status(Code::kTooLarge, "layer has more than " + std::to_string(limits.max_members) + " members");
    const char* name = archive_entry_pathname_utf8(ae);
    if (name == nullptr) name = archive_entry_pathname(ae);
    if (name == nullptr) return Status(Code::kInvalidArgument, "member without a readable name");
    auto path = normalisePath(name, limits.max_path);
    if (!path.isOk()) return path.status();

    LayerEntry e;
    e.mode = uint32_t(archive_entry_mode(ae));
    e.size = archive_entry_size_is_set(ae) ? uint64_t(std::max<la_int64_t>(0, archive_entry_size(ae))) : 0;
    const char* hardlink = archive_entry_hardlink(ae);
    const char* symlink = archive_entry_symlink(ae);
    std::string_view base = *path;
    std::string_view dir;
    if (auto slash = path->rfind('/'); slash != std::string::npos) {
      base = std::string_view(*path).substr(slash + 1);
      dir = std::string_view(*path).substr(0, slash);
    }
    if (base == ".wh..wh..opq") {
      e.type = LayerEntry::Type::kOpaque;
      e.path = std::string(dir);
    } else if (base.substr(0, 4) == ".wh.") {
      e.type = LayerEntry::Type::kWhiteout;
      // "dir/.wh." names dir itself (as the runtimes remove it): no trailing '/'.
      std::string_view name = base.substr(4);
      e.path = dir.empty() || name.empty() ? std::string(dir.empty() ? name : dir)
                                           : std::string(dir) + "/" + std::string(name);
    } else {
      e.path = std::move(*path);
      if (hardlink != nullptr) {
        auto target = normalisePath(hardlink, limits.max_path);
        if (!target.isOk()) return Status(Code::kInvalidArgument, "hardlink target: " + target.status().message());
        e.type = LayerEntry::Type::kHardlink;
        e.link = std::move(*target);
      } else if (symlink != nullptr) {
        e.type = LayerEntry::Type::kSymlink;
        e.link = symlink;
        if (e.link.size() > limits.max_path) return Status(Code::kInvalidArgument, "symlink target too long");
      } else {
        switch (archive_entry_filetype(ae)) {
          case AE_IFREG: e.type = LayerEntry::Type::kFile; break;
          case AE_IFDIR: e.type = LayerEntry::Type::kDirectory; break;
          default: e.type = LayerEntry::Type::kOther; break;
        }
      }
    }
    if (e.path.empty() && e.type != LayerEntry::Type::kDirectory && e.type != LayerEntry::Type::kOpaque) continue;
    if (auto s = visit(e, content); !s.isOk()) return s;
    // Whatever visit left unread is skipped (decompressed, not copied).
    if (archive_read_data_skip(a.get()) < ARCHIVE_WARN) return archiveFailure("skipping a member");
  }
  return expander.stats;
}

}  // namespace wharf
