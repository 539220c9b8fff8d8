// Fuzzes manifest parsing and validation (image manifests, indexes and manifest lists,
// artifacts with a subject): the first byte picks the Content-Type, the rest is the
// body. What parses must be what the registry can store and serve: consistent in kind,
// every descriptor well-formed, and parsed again the same way with the media type it is
// stored and served under (the edge's manifest cache and the garbage collector parse it
// with that one). The registry's own checks before it touches the store run too (the
// blobs it must hold, the referrers descriptor).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "shared/oci/digest.h"
#include "shared/oci/manifest.h"
#include "shared/oci/media_types.h"
#include "tests/fuzz/fuzz_support.h"

using namespace wharf;

namespace {

void checkDescriptor(const Descriptor& d, std::string_view body) {
  FUZZ_CHECK(!d.media_type.empty(), body);
  FUZZ_CHECK(d.size >= 0, body);
  auto again = Digest::parse(d.digest.str());
  FUZZ_CHECK(again.isOk() && *again == d.digest, d.digest.str());
  FUZZ_CHECK(d.annotations.is_null() || d.annotations.is_object(), body);
  nlohmann::json j = d.toJson();
  FUZZ_CHECK(j["digest"] == d.digest.str() && j["size"] == d.size, body);
  (void)j.dump();
}

std::vector<std::string> refs(const Manifest& m) {
  std::vector<std::string> out;
  if (m.config) out.push_back(m.config->digest.str());
  for (const auto& l : m.layers) out.push_back(l.digest.str());
  for (const auto& c : m.manifests) out.push_back(c.digest.str());
  if (m.subject) out.push_back("subject " + m.subject->digest.str());
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static constexpr std::string_view kTypes[] = {
      "", "application/json", media::kOciManifest, media::kOciIndex, media::kDockerManifest,
      media::kDockerManifestList, media::kDockerSchema1Signed, "application/vnd.oci.image.manifest.v1+json; charset=utf-8"};
  std::string_view ct = kTypes[data[0] % (sizeof kTypes / sizeof kTypes[0])];
  std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  auto m = parseManifest(body, ct);
  if (!m.isOk()) {
    FUZZ_CHECK(m.status().code() == Code::kManifestInvalid || m.status().code() == Code::kTooLarge,
               m.status().message());
    return 0;
  }
  // One kind or the other, of a type the registry serves.
  FUZZ_CHECK(m->is_index == media::isIndex(m->media_type), m->media_type);
  FUZZ_CHECK(m->is_index || media::isManifest(m->media_type), m->media_type);
  if (m->is_index) {
    FUZZ_CHECK(!m->config && m->layers.empty(), body);
  } else {
    FUZZ_CHECK(m->config && m->manifests.empty(), body);
  }
  if (m->config) checkDescriptor(*m->config, body);
  for (const auto& d : m->layers) checkDescriptor(d, body);
  for (const auto& d : m->manifests) checkDescriptor(d, body);
  if (m->subject) checkDescriptor(*m->subject, body);
  FUZZ_CHECK(m->annotations.is_null() || m->annotations.is_object(), body);

  // Stored with its media type, it parses again the same way under that Content-Type.
  auto again = parseManifest(body, m->media_type);
  FUZZ_CHECK(again.isOk(), again.status().message() + " under " + m->media_type);
  FUZZ_CHECK(again->media_type == m->media_type && again->is_index == m->is_index, m->media_type);
  FUZZ_CHECK(refs(*again) == refs(*m), body);
  FUZZ_CHECK(again->effectiveArtifactType() == m->effectiveArtifactType(), body);

  // What Registry::putManifest derives before it touches the store.
  Digest digest = digestOf(body);
  FUZZ_CHECK(Digest::parse(digest.str()).isOk(), digest.str());
  std::vector<std::string> blobs;
  if (m->config) blobs.push_back(m->config->digest.str());
  for (const auto& l : m->layers) {
    if (media::isNonDistributable(l.media_type) && l.has_urls) continue;
    blobs.push_back(l.digest.str());
  }
  if (m->subject) {
    Descriptor self;
    self.media_type = m->media_type;
    self.digest = digest;
    self.size = static_cast<int64_t>(body.size());
    self.artifact_type = m->effectiveArtifactType();
    self.annotations = m->annotations;
    std::string referrer = self.toJson().dump();
    FUZZ_CHECK(!referrer.empty(), body);
  }
  for (const auto& t : {m->media_type, m->effectiveArtifactType()}) {
    (void)media::isImageConfig(t);
    (void)media::stripParameters(t);
  }
  return 0;
}
