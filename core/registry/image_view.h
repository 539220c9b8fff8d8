// What a person wants to see of an image (the web UI's image page and `GET
// /api/v1/repositories/<name>/manifests/<ref>`): its manifest's parts, and its config as
// the build left it — platform, labels, environment, entrypoint, and the history turned
// back into the Dockerfile lines that made each layer.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/registry/registry.h"
#include "shared/base/status.h"

namespace wharf {

// The Dockerfile instruction a history entry's created_by records: "/bin/sh -c #(nop)
// CMD [\"x\"]" -> "CMD [\"x\"]", "/bin/sh -c apt-get update" -> "RUN apt-get update",
// BuildKit's "RUN /bin/sh -c make # buildkit" -> "RUN make", build arguments ("|2 A=1 B=2
// /bin/sh -c ...") dropped; anything else as it is.
std::string dockerfileLine(const std::string& created_by);

// The view of repo@digest: {"repository","digest","media_type","size","subject"?,
//   index: "manifests": [{"digest","media_type","size","platform"}],
//   image: "layers": [{"digest","media_type","size"}], "config": {"architecture","os",
//   "variant","created","author","labels","env","entrypoint","cmd","working_dir","user",
//   "exposed_ports"}, "history": [{"created","created_by","instruction","empty_layer",
//   "layer","comment"}], "total_size"}.
// Blocking (reads the manifest and config from the blob store).
Result<nlohmann::json> imageView(Registry& registry, const std::string& repo, const std::string& digest);

}  // namespace wharf
