// Parsing and validation of image manifests, indexes and artifacts (OCI image spec 1.1,
// Docker image manifest v2 schema 2 and manifest lists).
//
// The registry stores manifests byte-exact; parsing only extracts what it must check and
// index: the descriptors that must exist, the subject, and the artifact type.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/base/status.h"
#include "shared/oci/digest.h"

namespace wharf {

struct Descriptor {
  std::string media_type;
  Digest digest;
  int64_t size = 0;
  std::string artifact_type;
  nlohmann::json annotations;  // null or object
  bool has_urls = false;

  nlohmann::json toJson() const;
};

struct Manifest {
  std::string media_type;  // resolved media type of the document
  bool is_index = false;
  std::optional<Descriptor> config;  // image manifests
  std::vector<Descriptor> layers;    // image manifests
  std::vector<Descriptor> manifests; // indexes
  std::optional<Descriptor> subject;
  std::string artifact_type;         // top-level artifactType, if any
  nlohmann::json annotations;

  // The artifact type a referrers listing shows: artifactType, else config.mediaType.
  std::string effectiveArtifactType() const;
};

constexpr size_t kMaxManifestBytes = 4 * 1024 * 1024;

// Parses body. content_type is the request's Content-Type (may be empty). Fails with
// kManifestInvalid for malformed JSON, a wrong schemaVersion, bad descriptors, a
// mediaType that disagrees with content_type, or an ambiguous document (both "layers"
// and "manifests"); kUnsupported-like kManifestInvalid for schema 1.
Result<Manifest> parseManifest(std::string_view body, std::string_view content_type);

}  // namespace wharf
