// kill -9 during concurrent pushes: every acknowledged blob and manifest survives intact;
// nothing unacknowledged is half there; upload sessions are absent or resumable.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <mutex>
#include <thread>

#include "shared/oci/digest.h"
#include "tests/support/http_client.h"
#include "tests/support/oci_layout.h"
#include "tests/support/process.h"

// Each file's own names: the test binaries are unity builds.
namespace crash_test {

using namespace wharf;
using namespace wharf::test;

namespace {

struct Pushed {
  std::string repo, tag, digest, body;
  bool manifest = false;
};

}  // namespace

TEST_CASE("a 201 survives kill -9 during concurrent pushes", "[crash]") {
  TempDir data;
  std::mutex mu;
  std::vector<Pushed> acked, attempted;
  std::vector<std::string> sessions;  // upload locations with data sent
  std::atomic<bool> stop{false};
  std::atomic<int> ack_count{0};
  {
    CoreServer core(data.path());
    int port = core.port();
    std::vector<std::thread> pushers;
    for (int t = 0; t < 6; ++t) {
      pushers.emplace_back([&, t] {
        HttpClient c("127.0.0.1", port, 5000);
        for (int i = 0; !stop; ++i) {
          std::string repo = "crash/r" + std::to_string(t);
          std::string data = randomData(20000 + (i % 7) * 50000, t * 100000 + i);
          std::string d = digestOf(data).str();
          {
            std::lock_guard lock(mu);
            attempted.push_back({repo, "", d, data, false});
          }
          Result<HttpResponse> r = Status(Code::kInternal, "");
          if (i % 2 == 0) {
            r = c.request("POST", "/v2/" + repo + "/blobs/uploads/?digest=" + d, {}, data);
          } else {
            auto s = c.request("POST", "/v2/" + repo + "/blobs/uploads/");
            if (!s.isOk() || s->status != 202) break;
            std::string loc = s->header("location");
            auto p = c.request("PATCH", loc, {}, data.substr(0, data.size() / 2));
            if (!p.isOk() || p->status != 202) break;
            {
              std::lock_guard lock(mu);
              sessions.push_back(loc);
            }
            r = c.request("PUT", loc + "?digest=" + d, {}, data.substr(data.size() / 2));
          }
          if (!r.isOk()) break;
          if (r->status != 201) break;
          std::string cfg = R"({"architecture":"amd64","os":"linux","n":)" + std::to_string(i) + "}";
          std::string cd = digestOf(cfg).str();
          auto rc = c.request("POST", "/v2/" + repo + "/blobs/uploads/?digest=" + cd, {}, cfg);
          if (!rc.isOk() || rc->status != 201) break;
          {
            std::lock_guard lock(mu);
            acked.push_back({repo, "", d, data, false});
            acked.push_back({repo, "", cd, cfg, false});
          }
          nlohmann::json m = {{"schemaVersion", 2},
                              {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                              {"config", {{"mediaType", "application/vnd.oci.image.config.v1+json"}, {"digest", cd}, {"size", cfg.size()}}},
                              {"layers", {{{"mediaType", "application/vnd.oci.image.layer.v1.tar"}, {"digest", d}, {"size", data.size()}}}}};
          std::string body = m.dump();
          std::string tag = "t" + std::to_string(i);
          {
            std::lock_guard lock(mu);
            attempted.push_back({repo, tag, digestOf(body).str(), body, true});
          }
          auto rm = c.request("PUT", "/v2/" + repo + "/manifests/" + tag,
                              {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}}, body);
          if (!rm.isOk() || rm->status != 201) break;
          std::lock_guard lock(mu);
          acked.push_back({repo, tag, digestOf(body).str(), body, true});
          ++ack_count;
        }
      });
    }
    REQUIRE(waitFor([&] { return ack_count >= 60; }, 60000));
    core.kill9();
    stop = true;
    for (auto& p : pushers) p.join();
  }
  INFO("acknowledged manifests: " << ack_count.load());

  CoreServer core(data.path());
  HttpClient c("127.0.0.1", core.port());
  for (const auto& p : acked) {
    if (p.manifest) {
      auto r = c.request("GET", "/v2/" + p.repo + "/manifests/" + p.tag);
      REQUIRE(r.isOk());
      CHECK(r->status == 200);
      CHECK(r->body == p.body);
    } else {
      auto r = c.request("GET", "/v2/" + p.repo + "/blobs/" + p.digest);
      REQUIRE(r.isOk());
      CHECK(r->status == 200);
      CHECK(digestOf(r->body).str() == p.digest);
    }
  }
  // Unacknowledged writes are absent or complete, never partial.
  for (const auto& p : attempted) {
    std::string target = p.manifest ? "/v2/" + p.repo + "/manifests/" + p.tag : "/v2/" + p.repo + "/blobs/" + p.digest;
    auto r = c.request("GET", target);
    REQUIRE(r.isOk());
    CHECK((r->status == 404 || r->status == 200));
    if (r->status == 200) CHECK(r->body == p.body);
  }
  // Upload sessions are gone (finished) or resumable from the range they report.
  for (const auto& loc : sessions) {
    auto r = c.request("GET", loc);
    REQUIRE(r.isOk());
    CHECK((r->status == 404 || r->status == 204));
    if (r->status == 204) {
      std::string range = r->header("range");
      REQUIRE(range.rfind("0-", 0) == 0);
      auto more = c.request("PATCH", loc, {}, "tail");
      REQUIRE(more.isOk());
      CHECK(more->status == 202);
      CHECK(c.request("DELETE", loc)->status == 204);
    }
  }
}

}  // namespace crash_test
