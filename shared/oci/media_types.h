// Media types of the OCI image spec and Docker's image manifest v2.
#pragma once

#include <string>
#include <string_view>

namespace wharf::media {

constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
constexpr std::string_view kOciEmpty = "application/vnd.oci.empty.v1+json";
constexpr std::string_view kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
constexpr std::string_view kDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";
constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
constexpr std::string_view kDockerSchema1 = "application/vnd.docker.distribution.manifest.v1+json";
constexpr std::string_view kDockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws";
constexpr std::string_view kDockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
// An Accept header naming every manifest type a mirror caches, so that no upstream falls
// back to an older schema.
constexpr const char* kManifestAcceptAll =
    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

bool isManifest(std::string_view t);       // image manifests (OCI or Docker v2)
bool isIndex(std::string_view t);          // OCI index or Docker manifest list
bool isImageConfig(std::string_view t);    // config types that make a manifest an image
// Layers that registries do not have to hold (Docker foreign layers, OCI
// non-distributable layers); a manifest may reference them without them being pushed.
bool isNonDistributable(std::string_view t);
// The media type without parameters, trimmed and lower-cased (media types are
// case-insensitive): "Application/A+json; x=y" -> "application/a+json".
std::string stripParameters(std::string_view t);

}  // namespace wharf::media
