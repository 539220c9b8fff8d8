// Real clients against a real wharf-core: skopeo, podman, buildah.
//
// Every client command runs through containerClient (a private blob-info cache).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "shared/base/fs.h"
#include "tests/support/oci_layout.h"
#include "tests/support/process.h"

// Each file's own names: the test binaries are unity builds.
namespace clients_test {

using namespace wharf;
using namespace wharf::test;

namespace {

CommandResult client(const std::string& cmd, int timeout_ms = 180000) { return containerClient(cmd, timeout_ms); }

bool haveClients() {
  for (const char* c : {"skopeo", "podman", "buildah", "unshare"}) {
    if (!haveCommand(c)) {
      WARN(std::string("skipping: ") + c + " is not installed");
      return false;
    }
  }
  return true;
}

std::string inspectDigest(const std::string& ref) {
  auto r = client("skopeo inspect --raw --tls-verify=false " + ref + " | sha256sum");
  REQUIRE(r.exit_code == 0);
  return "sha256:" + r.output.substr(0, 64);
}

}  // namespace

TEST_CASE("skopeo pushes and pulls an image byte-exact", "[clients]") {
  if (!haveClients()) return;
  CoreServer core;
  TempDir work;
  auto layout = writeOciLayout(work / "src", "v1",
                               {ImageSpec{"amd64", {{{"a.txt", "alpha"}}, {{"big.bin", randomData(2 << 20, 1)}}}}});
  auto r = client("skopeo copy --dest-tls-verify=false oci:" + work / "src" + ":v1 docker://" + core.address() + "/demo/app:v1");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(inspectDigest("docker://" + core.address() + "/demo/app:v1") == layout.digest);

  r = client("skopeo copy --src-tls-verify=false docker://" + core.address() + "/demo/app:v1 oci:" + work / "back" + ":v1");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  for (const auto& b : layout.blobs) {
    std::string a, z;
    REQUIRE(readFile(work / "src/blobs/sha256/" + b.substr(7), &a).isOk());
    REQUIRE(readFile(work / "back/blobs/sha256/" + b.substr(7), &z).isOk());
    CHECK(a == z);
  }
  // Tags through the client.
  r = client("skopeo list-tags --tls-verify=false docker://" + core.address() + "/demo/app");
  REQUIRE(r.exit_code == 0);
  CHECK(nlohmann::json::parse(r.output)["Tags"] == nlohmann::json({"v1"}));
}

TEST_CASE("skopeo copies a multi-arch index with --all", "[clients]") {
  if (!haveClients()) return;
  CoreServer core;
  TempDir work;
  auto layout = writeOciLayout(work / "src", "multi",
                               {ImageSpec{"amd64", {{{"f", "amd"}}}}, ImageSpec{"arm64", {{{"f", "arm"}}}},
                                ImageSpec{"ppc64le", {{{"f", "ppc"}}}}});
  auto r = client("skopeo copy --all --dest-tls-verify=false oci:" + work / "src" + ":multi docker://" + core.address() +
                  "/multi/app:latest");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(inspectDigest("docker://" + core.address() + "/multi/app:latest") == layout.digest);
  for (const auto& m : layout.manifests) {
    CHECK(inspectDigest("docker://" + core.address() + "/multi/app@" + m) == m);
  }
  r = client("skopeo copy --all --src-tls-verify=false docker://" + core.address() + "/multi/app:latest oci:" +
             work / "back" + ":x");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
}

TEST_CASE("podman pulls into a throwaway vfs store", "[clients]") {
  if (!haveClients()) return;
  CoreServer core;
  TempDir work;
  auto layout = writeOciLayout(work / "src", "v1", {ImageSpec{"amd64", {{{"etc/motd", "hello from wharf"}}}}});
  REQUIRE(client("skopeo copy --dest-tls-verify=false oci:" + work / "src" + ":v1 docker://" + core.address() +
                 "/pod/app:v1").exit_code == 0);
  std::string podman = "podman --root " + work / "root" + " --runroot " + work / "run" +
                       " --storage-driver vfs --events-backend file --cgroup-manager cgroupfs";
  auto r = client(podman + " pull --tls-verify=false " + core.address() + "/pod/app:v1");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  r = client(podman + " image inspect --format '{{.Digest}}' " + core.address() + "/pod/app:v1");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output.find(layout.digest) != std::string::npos);
}

TEST_CASE("buildah pushes an image it built", "[clients]") {
  if (!haveClients()) return;
  CoreServer core;
  TempDir work;
  {
    std::ofstream f(work / "hello.txt");
    f << "built by buildah\n";
  }
  std::string buildah = "buildah --root " + work / "root" + " --runroot " + work / "run" + " --storage-driver vfs";
  std::string script = "set -e; c=$(" + buildah + " from scratch); " + buildah + " copy $c " + work / "hello.txt" +
                       " /hello.txt >/dev/null; " + buildah + " commit -q $c wharf-built >/dev/null; " + buildah +
                       " push --tls-verify=false wharf-built docker://" + core.address() + "/built/app:v1";
  auto r = client(script);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  r = client("skopeo inspect --tls-verify=false docker://" + core.address() + "/built/app:v1");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(nlohmann::json::parse(r.output)["Layers"].size() == 1);
}

TEST_CASE("a copy between repositories mounts instead of uploading; delete then 404", "[clients]") {
  if (!haveClients()) return;
  CoreServer core;
  TempDir work;
  auto layout = writeOciLayout(work / "src", "v1", {ImageSpec{"amd64", {{{"x", randomData(100000, 5)}}}}});
  // One blob-info cache for both commands: the push records where the blobs live, and
  // the copy then asks the registry to mount them from there.
  auto r = client("skopeo copy --dest-tls-verify=false oci:" + work / "src" + ":v1 docker://" + core.address() +
                  "/from/app:v1 && skopeo copy --src-tls-verify=false --dest-tls-verify=false docker://" +
                  core.address() + "/from/app:v1 docker://" + core.address() + "/to/app:v1");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(inspectDigest("docker://" + core.address() + "/to/app:v1") == layout.digest);
  // skopeo (as every containers/image client) always uploads the config; each layer
  // must be mounted, never uploaded.
  std::string log = core.log();
  std::string layer = layout.blobs[0].substr(7);
  const std::string to_uploads = "\"path\":\"/v2/to/app/blobs/uploads/";
  CHECK(countLogLines(log, {to_uploads, "mount=sha256%3A" + layer, "\"status\":201"}) == 1);
  CHECK(countLogLines(log, {"\"PUT\"", to_uploads, "digest=sha256%3A" + layer}) == 0);
  CHECK(countLogLines(log, {"\"PATCH\"", to_uploads}) == 1);

  r = client("skopeo delete --tls-verify=false docker://" + core.address() + "/to/app@" + layout.digest);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  r = client("skopeo inspect --tls-verify=false docker://" + core.address() + "/to/app:v1");
  CHECK(r.exit_code != 0);
  CHECK(r.output.find("manifest unknown") != std::string::npos);
}

}  // namespace clients_test
