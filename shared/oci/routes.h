// The route table of the distribution API: one function maps a normalized path to a
// route. Both routing and authorization use its result.
#pragma once

#include <string>
#include <string_view>

#include "shared/base/status.h"

namespace wharf {

enum class RouteKind {
  kBase,         // /v2/
  kCatalog,      // /v2/_catalog
  kTagsList,     // /v2/<name>/tags/list
  kManifest,     // /v2/<name>/manifests/<reference>
  kBlob,         // /v2/<name>/blobs/<digest>
  kUploadStart,  // /v2/<name>/blobs/uploads/
  kUpload,       // /v2/<name>/blobs/uploads/<uuid>
  kReferrers,    // /v2/<name>/referrers/<digest>
};

struct Route {
  RouteKind kind;
  std::string name;       // repository name, validated
  std::string reference;  // tag or digest (manifest), digest (blob, referrers), upload id
};

// Parses a path produced by splitTarget(). kNotFound for paths outside the API,
// kNameInvalid for a bad repository name. The reference is returned unvalidated except
// for its shape (no '/').
Result<Route> parseRoute(std::string_view path);
std::string_view routeName(RouteKind kind);

}  // namespace wharf
