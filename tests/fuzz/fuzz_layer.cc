// Fuzzes the scanner's layer reading (layers are what any pusher sends): scanLayer over the
// input as a blob, whatever it is (tar, gzip, zstd, garbage), with small limits, read in
// pieces of a size taken from the input. It must end with a result or a Status, never
// crash, hang or grow without bound; a result's paths are relative and never climb out.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/scan/layer_scan.h"
#include "tests/fuzz/fuzz_support.h"

using namespace wharf;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > (1 << 20)) return 0;
  size_t piece = 1 + data[0] % 64;  // short reads as a slow peer or a pipe gives them
  std::string_view blob(reinterpret_cast<const char*>(data) + 1, size - 1);
  size_t pos = 0;
  ByteSource source = [&](char* buf, size_t n) -> Result<size_t> {
    size_t k = std::min({n, piece, blob.size() - pos});
    std::memcpy(buf, blob.data() + pos, k);
    pos += k;
    return k;
  };
  ScanLimits limits;
  limits.layer.max_expanded_bytes = 8 << 20;
  limits.layer.max_members = 10'000;
  limits.max_manifest_bytes = 1 << 20;
  limits.max_database_bytes = 2 << 20;
  auto scan = scanLayer(source, blob.size(), limits);
  if (!scan.isOk()) return 0;
  FUZZ_CHECK(scan->stats.expanded_bytes <= limits.layer.max_expanded_bytes, "expanded past the limit");
  for (const auto& p : scan->packages) {
    FUZZ_CHECK(!p.path.empty() && p.path[0] != '/', p.path);
    FUZZ_CHECK(p.path.find("../") == std::string::npos && p.path != "..", p.path);
  }
  for (const auto& w : scan->whiteouts) FUZZ_CHECK(!w.empty() && w[0] != '/' && w.find("..") != 0, w);
  auto back = layerScanFromJson(layerScanToJson(*scan));
  FUZZ_CHECK(back.isOk(), back.status().message());
  FUZZ_CHECK(back->packages == scan->packages, "packages round trip");
  return 0;
}
