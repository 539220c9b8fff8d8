#include "shared/oci/media_types.h"

#include <cctype>

namespace wharf::media {

bool isManifest(std::string_view t) { return t == kOciManifest || t == kDockerManifest; }
bool isIndex(std::string_view t) { return t == kOciIndex || t == kDockerManifestList; }
bool isImageConfig(std::string_view t) { return t == kOciConfig || t == kDockerConfig; }

bool isNonDistributable(std::string_view t) {
  return t == kDockerForeignLayer || t.find(".nondistributable.") != std::string_view::npos;
}

std::string stripParameters(std::string_view t) {
  auto semi = t.find(';');
  if (semi != std::string_view::npos) t = t.substr(0, semi);
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
  while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
  std::string out(t);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace wharf::media
