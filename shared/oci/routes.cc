#include "shared/oci/routes.h"

#include "shared/oci/names.h"

namespace wharf {
namespace {

// Splits rest = <name><marker><tail> at the last marker whose tail has no '/'.
bool splitAt(std::string_view rest, std::string_view marker, std::string_view* name, std::string_view* tail) {
  auto pos = rest.rfind(marker);
  if (pos == std::string_view::npos || pos == 0) return false;
  std::string_view t = rest.substr(pos + marker.size());
  if (t.find('/') != std::string_view::npos) return false;
  *name = rest.substr(0, pos);
  *tail = t;
  return true;
}

}  // namespace

Result<Route> parseRoute(std::string_view path) {
  if (path == "/v2" || path == "/v2/") return Route{RouteKind::kBase, "", ""};
  if (path.substr(0, 4) != "/v2/") return Status(Code::kNotFound, "not a registry API path");
  if (path == "/v2/_catalog") return Route{RouteKind::kCatalog, "", ""};
  std::string_view rest = path.substr(4);
  std::string_view name, tail;
  Route r;
  if (rest.size() > 10 && rest.substr(rest.size() - 10) == "/tags/list") {
    name = rest.substr(0, rest.size() - 10);
    r.kind = RouteKind::kTagsList;
  } else if (splitAt(rest, "/blobs/uploads/", &name, &tail)) {
    r.kind = tail.empty() ? RouteKind::kUploadStart : RouteKind::kUpload;
  } else if (rest.size() > 14 && rest.substr(rest.size() - 14) == "/blobs/uploads") {
    name = rest.substr(0, rest.size() - 14);
    r.kind = RouteKind::kUploadStart;
  } else if (splitAt(rest, "/manifests/", &name, &tail) && !tail.empty()) {
    r.kind = RouteKind::kManifest;
  } else if (splitAt(rest, "/blobs/", &name, &tail) && !tail.empty()) {
    r.kind = RouteKind::kBlob;
  } else if (splitAt(rest, "/referrers/", &name, &tail) && !tail.empty()) {
    r.kind = RouteKind::kReferrers;
  } else {
    return Status(Code::kNotFound, "not a registry API path");
  }
  WHARF_RETURN_IF_ERROR(validateRepositoryName(name));
  r.name = std::string(name);
  r.reference = std::string(tail);
  return r;
}

std::string_view routeName(RouteKind kind) {
  switch (kind) {
    case RouteKind::kBase: return "base";
    case RouteKind::kCatalog: return "catalog";
    case RouteKind::kTagsList: return "tags";
    case RouteKind::kManifest: return "manifest";
    case RouteKind::kBlob: return "blob";
    case RouteKind::kUploadStart:
    case RouteKind::kUpload: return "upload";
    case RouteKind::kReferrers: return "referrers";
  }
  return "unknown";
}

}  // namespace wharf
