// What the scanner finds in a layer: installed packages, each with the file that
// recorded it, and the reader a detector gets for a member's bytes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/base/status.h"

namespace wharf {

struct Package {
  // The package URL type of its ecosystem: "deb", "apk", "rpm", "pypi", "npm",
  // "golang", "maven".
  std::string type;
  std::string name;     // maven: "group:artifact"; golang: the module path
  std::string version;  // as the package manager writes it (rpm: [epoch:]version-release)
  // The source package advisories name (deb: Source:, apk: o:, rpm: the SRPM's name);
  // empty when it is the package itself. source_version: deb only, when it differs.
  std::string source_name;
  std::string source_version;
  std::string arch;
  std::string path;   // the file that recorded it, in the layer, without a leading '/'
  std::string layer;  // the digest of the layer that introduced it (image aggregation)

  bool operator==(const Package&) const = default;
};

nlohmann::json packageToJson(const Package& p);
Result<Package> packageFromJson(const nlohmann::json& j);

// The next chunk of a member's bytes; an empty view at its end. A view is valid until
// the next call. Errors (a corrupt stream, a limit) end the member and the layer.
using ChunkReader = std::function<Result<std::string_view>()>;

}  // namespace wharf
