// Builds OCI image layouts on disk (real gzip'd tar layers, configs, manifests and
// indexes) for clients such as skopeo to push from.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace wharf::test {

struct ImageSpec {
  std::string architecture = "amd64";
  // Each layer: path -> content of regular files.
  std::vector<std::map<std::string, std::string>> layers;
};

struct LayoutResult {
  std::string digest;                   // digest of the manifest or index tagged `tag`
  std::vector<std::string> manifests;   // per-image manifest digests
  std::vector<std::string> blobs;       // every layer and config digest
};

// Writes (or adds to) an OCI image layout at dir, tagged `tag`. One image gives an image
// manifest; several give an index of them.
LayoutResult writeOciLayout(const std::string& dir, const std::string& tag, const std::vector<ImageSpec>& images);

// A tar archive of regular files (ustar), and its gzip.
std::string makeTar(const std::map<std::string, std::string>& files);
std::string gzip(const std::string& data);
// n pseudo-random bytes from a seed (incompressible, deterministic).
std::string randomData(size_t n, uint64_t seed);

}  // namespace wharf::test
