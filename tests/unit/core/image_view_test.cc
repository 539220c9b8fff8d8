// The Dockerfile lines the web UI shows for an image's history.
#include <catch2/catch.hpp>

#include "core/registry/image_view.h"

namespace image_view_test {

using wharf::dockerfileLine;

TEST_CASE("image view: history entries back to Dockerfile lines", "[core][ui]") {
  // The classic builder.
  CHECK(dockerfileLine("/bin/sh -c #(nop)  CMD [\"bash\"]") == "CMD [\"bash\"]");
  CHECK(dockerfileLine("/bin/sh -c #(nop) ADD file:1b2c3d in / ") == "ADD file:1b2c3d in /");
  CHECK(dockerfileLine("/bin/sh -c apt-get update && apt-get install -y curl") ==
        "RUN apt-get update && apt-get install -y curl");
  CHECK(dockerfileLine("|2 VERSION=1.2 TARGET=prod /bin/sh -c make install") == "RUN make install");
  // BuildKit.
  CHECK(dockerfileLine("RUN /bin/sh -c apt-get update # buildkit") == "RUN apt-get update");
  CHECK(dockerfileLine("COPY app /usr/local/bin/app # buildkit") == "COPY app /usr/local/bin/app");
  CHECK(dockerfileLine("RUN |1 A=b /bin/sh -c echo $A # buildkit") == "RUN echo $A");
  CHECK(dockerfileLine("ENTRYPOINT [\"/app\"]") == "ENTRYPOINT [\"/app\"]");
  // Other tools' text as it is.
  CHECK(dockerfileLine("buildah: copied files") == "buildah: copied files");
  CHECK(dockerfileLine("") == "");
}

}  // namespace image_view_test
