// Fuzzes manifest parsing and validation: the first byte picks the Content-Type.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "shared/oci/manifest.h"
#include "shared/oci/media_types.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static constexpr std::string_view kTypes[] = {
      "", "application/json", wharf::media::kOciManifest, wharf::media::kOciIndex, wharf::media::kDockerManifest,
      wharf::media::kDockerManifestList, wharf::media::kDockerSchema1Signed, "application/vnd.oci.image.manifest.v1+json; charset=utf-8"};
  std::string_view ct = kTypes[data[0] % (sizeof kTypes / sizeof kTypes[0])];
  std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  auto m = wharf::parseManifest(body, ct);
  if (m.isOk()) {
    // Whatever parses must describe itself consistently.
    (void)m->effectiveArtifactType();
    if (m->subject) (void)m->subject->toJson().dump();
    for (const auto& d : m->layers) (void)d.toJson().dump();
  }
  return 0;
}
