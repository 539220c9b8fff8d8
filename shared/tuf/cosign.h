// cosign signatures as registries hold them (sigstore's "simple signing"): a signature
// manifest, found as the tag "sha256-<hex>.sig" of the signed image or as an OCI 1.1
// referrer of it, whose layers are payloads
//   {"critical": {"identity": {"docker-reference": R},
//                 "image": {"docker-manifest-digest": "sha256:..."},
//                 "type": "cosign container image signature"}, "optional": {...}|null}
// each with the annotation dev.cosignproject.cosign/signature: base64 of an ECDSA
// (P-256, SHA-256, DER) signature over the payload's exact bytes.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/base/status.h"
#include "shared/tuf/tuf_crypto.h"

namespace wharf::tuf {

inline constexpr const char* kCosignSignatureAnnotation = "dev.cosignproject.cosign/signature";
inline constexpr const char* kCosignPayloadMediaType = "application/vnd.dev.cosign.simplesigning.v1+json";

// The tag cosign stores an image's signatures under: "sha256:<hex>" -> "sha256-<hex>.sig".
std::string cosignSignatureTag(const std::string& digest);

// The image digest a payload signs (critical.image.docker-manifest-digest), checked the
// way containers/image does: the fields it must have, and type as cosign writes it.
Result<std::string> cosignPayloadDigest(std::string_view payload);

// The layers of a signature manifest that may carry signatures: (payload digest, base64
// signature) for each layer with the signature annotation.
std::vector<std::pair<std::string, std::string>> cosignLayers(const nlohmann::json& manifest);

// Whether payload, signed by signature_b64, signs image_digest with one of keys: the
// key's id, else kInvalidArgument saying why not.
Result<std::string> verifyCosign(std::string_view payload, std::string_view signature_b64, const std::string& image_digest,
                                 const std::vector<std::shared_ptr<const CosignKey>>& keys);

}  // namespace wharf::tuf
