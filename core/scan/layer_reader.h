// LayerReader: walks an image layer (a tar, uncompressed, gzip or zstd) as a stream, a
// member at a time, never extracting anything to disk.
//
// Decompression is ours (ISA-L's inflate for gzip, several times faster than zlib's;
// libzstd for zstd), so that the bytes a layer expands to are counted and bounded before
// libarchive parses them as tar (pax, GNU long names and sparse entries included).
// A member the visitor does not read is skipped without being copied anywhere.
//
// Hostile layers end with a clear error, within bounded memory and time: a path that is
// absolute or climbs out with `..`, a name over 4 KiB, more members than the limit, more
// expanded bytes than the limit (a tar bomb), a pax or long-name header over 1 MiB
// (libarchive's own bound), a corrupt or truncated stream, a deadline passed. Symlinks are reported, never followed.
//
// Whiteouts are reported as what they mean: `dir/.wh.name` as a kWhiteout of dir/name,
// `dir/.wh..wh..opq` as a kOpaque of dir.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/scan/package.h"
#include "shared/base/status.h"

namespace wharf {

enum class LayerCompression { kNone, kGzip, kZstd };

// From the first bytes of the blob (the media type is only a hint: many layers say
// tar+gzip and are zstd, or say nothing).
LayerCompression sniffCompression(std::string_view head);

struct LayerLimits {
  uint64_t max_expanded_bytes = 64ull << 30;
  // A layer may expand to at most this many times its compressed size, plus 1 GiB.
  uint64_t max_ratio = 200;
  uint64_t max_members = 2'000'000;
  size_t max_path = 4096;
  int64_t deadline_ms = 0;           // steady-clock ms; 0 = none
};

struct LayerEntry {
  enum class Type { kFile, kDirectory, kSymlink, kHardlink, kWhiteout, kOpaque, kOther };
  Type type = Type::kFile;
  std::string path;  // normalised: relative, no "./", no trailing '/'
  std::string link;  // symlink or hardlink target as written
  uint64_t size = 0;
  uint32_t mode = 0;
};

// Compressed bytes in: reads up to n bytes into buf, 0 at the end.
using ByteSource = std::function<Result<size_t>(char* buf, size_t n)>;

struct LayerStats {
  uint64_t compressed_bytes = 0;
  uint64_t expanded_bytes = 0;
  uint64_t members = 0;
};

// Calls visit for each member in order; visit may read the member's bytes through
// content (or not: the rest is skipped). An error from visit ends the walk with it.
// compressed_size: the blob's size, for the ratio limit (0: unknown).
using LayerVisitor = std::function<Status(const LayerEntry& entry, const ChunkReader& content)>;
Result<LayerStats> walkLayer(const ByteSource& source, uint64_t compressed_size, const LayerLimits& limits,
                             const LayerVisitor& visit);

// A ByteSource over a file descriptor (not owned), from offset 0.
ByteSource fdByteSource(int fd);

// Reads the rest of a member into a string; kTooLarge past limit bytes.
Result<std::string> readAllContent(const ChunkReader& content, size_t limit);

}  // namespace wharf
