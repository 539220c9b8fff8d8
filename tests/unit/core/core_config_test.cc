#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "core/core_config.h"

// Each file's own names: the test binaries are unity builds.
namespace core_config_test {

using namespace wharf;

namespace {
Status apply(CoreConfig* c, std::vector<std::string> args) {
  ConfigSchema schema("wharf-core", "test");
  c->describe(schema);
  args.insert(args.begin(), "wharf-core");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  bool help = false;
  return schema.applyArgs(static_cast<int>(argv.size()), argv.data(), &help);
}
}  // namespace

TEST_CASE("CoreConfig: defaults validate; flags reach every kind of field") {
  CoreConfig c;
  std::string host;
  int port = 0;
  REQUIRE(c.validate(&host, &port).isOk());
  CHECK(host == "127.0.0.1");
  CHECK(port == 5000);

  REQUIRE(apply(&c, {"--listen=0.0.0.0:0", "--threads=3", "--access-log=false", "--upload-purge-after=2h",
                     "--max-header-bytes=32k", "--max-page", "50", "--data-dir", "/tmp/x"})
              .isOk());
  CHECK(c.threads == 3);
  CHECK_FALSE(c.access_log);
  CHECK(c.upload_purge_after_ms == 7'200'000);
  CHECK(c.max_header_bytes == 32 * 1024);
  CHECK(c.max_page == 50);
  CHECK(c.data_dir == "/tmp/x");
  REQUIRE(c.validate(&host, &port).isOk());
  CHECK(host == "0.0.0.0");
  CHECK(port == 0);

  CHECK_FALSE(apply(&c, {"--max-page=0"}).isOk());
  CHECK_FALSE(apply(&c, {"--threads=257"}).isOk());
  CHECK_FALSE(apply(&c, {"--no-such-key=1"}).isOk());
}

TEST_CASE("CoreConfig::validate: listen address, TLS pair, data_dir") {
  std::string host;
  int port = 0;
  CoreConfig c;
  c.listen = "[::1]:8443";
  REQUIRE(c.validate(&host, &port).isOk());
  CHECK(host == "::1");
  CHECK(port == 8443);
  for (const char* bad : {"localhost", "host:", "host:65536", "host:123456", "host:-1", "host:80a", "host: 80"}) {
    INFO("listen: " << bad);
    c.listen = bad;
    CHECK(c.validate(&host, &port).code() == Code::kInvalidArgument);
  }
  c.listen = "h:65535";
  CHECK(c.validate(&host, &port).isOk());

  c.tls_cert = "cert.pem";
  CHECK(c.validate(&host, &port).code() == Code::kInvalidArgument);
  c.tls_key = "key.pem";
  CHECK(c.validate(&host, &port).isOk());
  c.tls_cert.clear();
  CHECK(c.validate(&host, &port).code() == Code::kInvalidArgument);
  c.tls_key.clear();
  c.data_dir.clear();
  CHECK(c.validate(&host, &port).code() == Code::kInvalidArgument);
}

TEST_CASE("CoreConfig: edge usage retention and the unreachable delay are checked") {
  std::string host;
  int port = 0;
  CoreConfig c;
  CHECK(c.usage_hourly_retention_ms == 14ll * 86'400'000);
  CHECK(c.usage_daily_retention_ms == 400ll * 86'400'000);
  CHECK(c.edge_unreachable_after_ms == 180'000);
  REQUIRE(apply(&c, {"--usage-hourly-retention", "7d", "--usage-daily-retention", "30d",
                     "--edge-unreachable-after", "5m"}).isOk());
  CHECK(c.usage_hourly_retention_ms == 7ll * 86'400'000);
  CHECK(c.edge_unreachable_after_ms == 300'000);
  CHECK(c.validate(&host, &port).isOk());

  CoreConfig short_hours;
  REQUIRE(apply(&short_hours, {"--usage-hourly-retention", "1d"}).isOk());
  Status st = short_hours.validate(&host, &port);
  CHECK(st.code() == Code::kInvalidArgument);
  CHECK(st.message().find("usage_hourly_retention") != std::string::npos);

  CoreConfig short_days;
  REQUIRE(apply(&short_days, {"--usage-daily-retention", "10d"}).isOk());  // below the hourly 14d
  st = short_days.validate(&host, &port);
  CHECK(st.message().find("usage_daily_retention") != std::string::npos);
}

}  // namespace core_config_test
