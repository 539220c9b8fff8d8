// TLS serving, and start-up errors that name what is wrong.
#include <catch2/catch.hpp>

#include "shared/base/fs.h"
#include "shared/oci/digest.h"
#include "tests/support/oci_layout.h"
#include "tests/support/process.h"

// Each file's own names: the test binaries are unity builds.
namespace tls_startup_test {

using namespace wharf;
using namespace wharf::test;

namespace {

// A self-signed certificate for 127.0.0.1 in dir (cert.pem, key.pem, and certs/ca.crt
// for clients that take a certificate directory).
void makeCert(const TempDir& dir) {
  auto r = run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", dir / "key.pem", "-out", dir / "cert.pem", "-days", "2", "-subj", "/CN=127.0.0.1",
                "-addext", "subjectAltName=IP:127.0.0.1"});
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  REQUIRE(makeDirs(dir / "certs").isOk());
  REQUIRE(shell("cp " + dir / "cert.pem" + " " + dir / "certs/ca.crt").exit_code == 0);
}

}  // namespace

TEST_CASE("wharf-core serves HTTPS when a certificate is configured", "[tls]") {
  TempDir dir;
  makeCert(dir);
  CoreServer core({}, {"--tls-cert", dir / "cert.pem", "--tls-key", dir / "key.pem"});
  std::string base = "https://" + core.address();
  std::string curl = "curl -sS --fail --cacert " + dir / "cert.pem" + " ";
  auto r = shell(curl + base + "/v2/");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output == "{}");
  // Plain HTTP to the TLS port fails.
  CHECK(shell("curl -sS --fail --max-time 5 http://" + core.address() + "/v2/").exit_code != 0);

  // A 6 MiB blob up and down over TLS (the encrypted read and file paths), and a range.
  std::string data = randomData(6 << 20, 3);
  REQUIRE(writeFileDurable(dir / "blob", data).isOk());
  std::string d = digestOf(data).str();
  r = shell(curl + "-X POST --data-binary @" + dir / "blob" + " -o /dev/null -w '%{http_code}' '" + base +
            "/v2/tls/app/blobs/uploads/?digest=" + d + "'");
  INFO(r.output);
  CHECK(r.output == "201");
  r = shell(curl + base + "/v2/tls/app/blobs/" + d + " | sha256sum");
  CHECK(r.output.substr(0, 64) == d.substr(7));
  r = shell(curl + "-r 1000-1999 " + base + "/v2/tls/app/blobs/" + d + " | wc -c");
  CHECK(std::stoi(r.output) == 1000);

  // A real client that verifies the certificate.
  if (haveCommand("skopeo")) {
    auto layout = writeOciLayout(dir / "src", "v1", {ImageSpec{"amd64", {{{"f", "tls"}}}}});
    r = shell("skopeo copy --dest-cert-dir " + dir / "certs" + " oci:" + dir / "src" + ":v1 docker://" + core.address() +
              "/tls/img:v1");
    INFO(r.output);
    CHECK(r.exit_code == 0);
    r = shell("skopeo inspect --raw --cert-dir " + dir / "certs" + " docker://" + core.address() + "/tls/img:v1 | sha256sum");
    CHECK(r.output.substr(0, 64) == layout.digest.substr(7));
  }
}

TEST_CASE("start-up errors are clear and name the setting", "[startup]") {
  TempDir dir;
  auto r = run({coreBinary(), "--help"});
  CHECK(r.exit_code == 0);
  CHECK(r.output.find("--data-dir") != std::string::npos);
  CHECK(r.output.find("--tls-cert") != std::string::npos);

  r = run({coreBinary(), "--no-such-flag", "1"});
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("unknown flag --no-such-flag") != std::string::npos);

  r = run({coreBinary(), "--threads", "many", "--data-dir", dir / "d"});
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("config threads") != std::string::npos);

  r = run({coreBinary(), "--listen", "127.0.0.1", "--data-dir", dir / "d"});
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("config listen") != std::string::npos);

  r = run({coreBinary(), "--tls-cert", dir / "missing.pem", "--tls-key", dir / "missing.key", "--data-dir", dir / "d",
           "--listen", "127.0.0.1:0"});
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("missing.pem") != std::string::npos);

  REQUIRE(writeFileDurable(dir / "bad.json", R"({"data_dir": "x", "colour": "blue"})").isOk());
  r = run({coreBinary(), "--config", dir / "bad.json"});
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("unknown key \"colour\"") != std::string::npos);

  // A blob store of another layout version is refused, not reused.
  REQUIRE(makeDirs(dir / "old").isOk());
  REQUIRE(writeFileDurable(dir / "old/layout", "wharf-blobstore 0\n").isOk());
  r = run({coreBinary(), "--data-dir", dir / "old", "--listen", "127.0.0.1:0"});
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("layout") != std::string::npos);

  // A trust key others may read, or that is not one.
  REQUIRE(writeFileDurable(dir / "open.key", std::string(32, 'k'), 0644).isOk());
  r = run({coreBinary(), "--data-dir", dir / "d3", "--listen", "127.0.0.1:0", "--trust-key-file", dir / "open.key"});
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("config trust_key_file") != std::string::npos);
  CHECK(r.output.find("chmod 600") != std::string::npos);
  REQUIRE(writeFileDurable(dir / "short.key", "short", 0600).isOk());
  r = run({coreBinary(), "--data-dir", dir / "d3", "--listen", "127.0.0.1:0", "--trust-key-file", dir / "short.key"});
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("not a trust key") != std::string::npos);

  // The port is taken.
  CoreServer core;
  r = run({coreBinary(), "--data-dir", dir / "d2", "--listen", core.address()}, 10000);
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("bind") != std::string::npos);
}

}  // namespace tls_startup_test
