// wharf-trustbench: publishing trust data to a running core, as the notary CLI does it.
//
//   wharf-trustbench --core http://127.0.0.1:PORT --repo team/app --targets 1000
//                    [--publishes 10] [--tag v1 --manifest-digest sha256:... --manifest-size N]
//
// Makes a GUN's keys (a root certificate for the GUN, targets and snapshot keys; the
// timestamp key is the server's, from GET timestamp.key), then publishes --publishes
// updates of a targets role of --targets targets (tag<N> -> random digests, plus --tag
// naming the given manifest), each with its snapshot, and reports the POST latencies
// (the server's whole check: signatures, thresholds, snapshot checksums, versions, one
// transaction, the new timestamp) as JSON. The core runs with --auth none.
#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/base/clock.h"
#include "shared/http/blocking_client.h"
#include "shared/http/client.h"
#include "shared/tls/crypto.h"
#include "tests/support/tuf_fixtures.h"

using namespace wharf;
using nlohmann::json;

int main(int argc, char** argv) {
  std::string core, repo = "bench/app", tag, digest;
  int targets = 1000, publishes = 10;
  int64_t size = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    if (a == "--core") core = v;
    else if (a == "--repo") repo = v;
    else if (a == "--targets") targets = std::stoi(v);
    else if (a == "--publishes") publishes = std::stoi(v);
    else if (a == "--tag") tag = v;
    else if (a == "--manifest-digest") digest = v;
    else if (a == "--manifest-size") size = std::stoll(v);
    else {
      std::fprintf(stderr, "unknown flag %s\n", a.c_str());
      return 2;
    }
  }
  auto url = parseBaseUrl(core);
  if (!url.isOk()) {
    std::fprintf(stderr, "--core http://HOST:PORT is needed\n");
    return 2;
  }
  BlockingClient c(url->host, url->port, 60000);
  std::string gun = url->host_header + "/" + repo;
  std::string base = "/v2/" + gun + "/_trust/tuf/";
  auto key = c.request("GET", base + "timestamp.key");
  if (!key.isOk() || key->status != 200) {
    std::fprintf(stderr, "GET timestamp.key failed\n");
    return 1;
  }
  int64_t now = RealClock::instance().nowMillis();
  test::TufRepoKeys keys{test::tufRootKey(gun, now), test::tufEcdsaKey(), test::tufEcdsaKey(),
                         test::TufKey{nullptr, json::parse(key->body), ""}};
  std::mt19937_64 rng(42);
  std::string root;
  std::vector<double> ms;
  size_t update_bytes = 0;
  for (int p = 1; p <= publishes; ++p) {
    json list = json::object();
    for (int i = 0; i < targets; ++i) {
      std::string raw(32, '\0');
      for (auto& ch : raw) ch = char(rng());
      list["tag" + std::to_string(i)] = {{"length", 1000 + i}, {"hashes", {{"sha256", base64Encode(raw)}}}};
    }
    if (!tag.empty() && digest.rfind("sha256:", 0) == 0) {
      std::string hex = digest.substr(7), raw;
      for (size_t i = 0; i + 1 < hex.size(); i += 2) raw.push_back(char(std::stoi(hex.substr(i, 2), nullptr, 16)));
      list[tag] = {{"length", size}, {"hashes", {{"sha256", base64Encode(raw)}}}};
    }
    auto files = test::tufRepoFiles(keys, list, {}, "2099-01-01T00:00:00Z", p);
    if (p == 1) {
      root = files["root"];
    } else {
      // Root stays as published; the snapshot lists its exact bytes.
      files.erase("root");
      json meta = {{"root", test::tufFileMeta(root)}, {"targets", test::tufFileMeta(files["targets"])}};
      files["snapshot"] = test::tufEnvelope(
          {{"_type", "Snapshot"}, {"version", p}, {"expires", "2099-01-01T00:00:00Z"}, {"meta", meta}}, {&keys.snapshot});
    }
    std::string body = test::tufMultipart(files);
    update_bytes = body.size();
    auto t0 = std::chrono::steady_clock::now();
    auto r = c.request("POST", base, {{"Content-Type", "multipart/form-data; boundary=BOUNDARY"}}, body);
    double took = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (!r.isOk() || r->status != 200) {
      std::fprintf(stderr, "publish %d failed: %s\n", p, r.isOk() ? r->body.c_str() : r.status().message().c_str());
      return 1;
    }
    ms.push_back(took);
  }
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  json out = {{"gun", gun},
              {"targets", targets},
              {"publishes", publishes},
              {"first_ms", ms.front()},
              {"median_ms", sorted[sorted.size() / 2]},
              {"max_ms", sorted.back()},
              {"update_bytes", update_bytes}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
