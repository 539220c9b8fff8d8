// wharf-edge in front of a real core: pulls through the cache with real clients, one
// upstream fetch however many clients ask, and no cached content for the unauthorized.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <thread>

#include "shared/base/fs.h"
#include "shared/oci/digest.h"
#include "shared/tls/crypto.h"
#include "tests/support/http_client.h"
#include "tests/support/oci_layout.h"
#include "tests/support/process.h"

using namespace wharf;
using namespace wharf::test;
using nlohmann::json;

namespace {

class EdgeServer {
 public:
  explicit EdgeServer(const std::string& upstream, std::vector<std::string> extra = {}) {
    std::string port_file = temp_ / "port";
    std::vector<std::string> argv = {edgeBinary(), "--upstream", upstream, "--data-dir", temp_ / "data", "--listen",
                                     "127.0.0.1:0", "--port-file", port_file, "--threads", "2"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    process_ = std::make_unique<Process>(argv, temp_ / "edge.log");
    bool up = waitFor([&] {
      std::string text;
      if (!readFile(port_file, &text).isOk() || text.empty() || text.back() != '\n') return false;
      port_ = std::stoi(text);
      return port_ > 0;
    });
    REQUIRE(up);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }

 private:
  TempDir temp_;
  int port_ = 0;
  std::unique_ptr<Process> process_;
};

std::string token(int core_port, const std::string& user, const std::string& pw, const std::string& scope) {
  HttpClient c("127.0.0.1", core_port);
  HeaderList h;
  if (!user.empty()) h.push_back({"Authorization", basicAuthorization(user, pw)});
  auto r = c.request("GET", "/auth/token?service=wharf&scope=" + scope, h);
  REQUIRE(r.isOk());
  REQUIRE(r->status == 200);
  return json::parse(r->body)["token"];
}

// A one-request-per-connection proxy in front of the core that damages blob bodies:
// kFlip changes one byte, kCut closes halfway. Other requests pass untouched.
class DamagingProxy {
 public:
  enum Mode { kFlip, kCut };
  DamagingProxy(int upstream_port, Mode mode) : upstream_(upstream_port), mode_(mode) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd_, 64) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~DamagingProxy() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  void serve() {
    while (!stop_) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::thread([this, c] { handle(c); }).detach();
    }
  }
  void handle(int c) {
    std::string req;
    char buf[65536];
    while (req.find("\r\n\r\n") == std::string::npos) {
      ssize_t r = ::recv(c, buf, sizeof buf, 0);
      if (r <= 0) return (void)::close(c);
      req.append(buf, static_cast<size_t>(r));
    }
    bool blob = req.find("/blobs/sha256:") != std::string::npos && req.rfind("GET ", 0) == 0;
    auto eol = req.find("\r\n");
    req.insert(eol + 2, "Connection: close\r\n");
    int u = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(upstream_));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(u, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return (void)::close(c);
    (void)::send(u, req.data(), req.size(), MSG_NOSIGNAL);
    std::string resp;
    size_t body_start = std::string::npos;
    size_t forwarded = 0;
    for (;;) {
      ssize_t r = ::recv(u, buf, sizeof buf, 0);
      if (r <= 0) break;
      resp.append(buf, static_cast<size_t>(r));
      if (body_start == std::string::npos) {
        auto h = resp.find("\r\n\r\n");
        if (h != std::string::npos) body_start = h + 4;
      }
      if (blob && body_start != std::string::npos && resp.size() > body_start + 1000) {
        if (mode_ == kFlip) resp[body_start + 1000] ^= 0x55;
        if (mode_ == kCut && resp.size() > body_start + (1u << 20)) {
          (void)::send(c, resp.data() + forwarded, resp.size() - forwarded, MSG_NOSIGNAL);
          break;  // the upstream dies mid-blob
        }
      }
      if (mode_ == kFlip || !blob) {
        (void)::send(c, resp.data() + forwarded, resp.size() - forwarded, MSG_NOSIGNAL);
        forwarded = resp.size();
      }
    }
    ::close(u);
    ::close(c);
  }
  int upstream_;
  Mode mode_;
  int fd_;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

TEST_CASE("edge: corrupt or cut upstream bytes abort every response and commit nothing", "[edge]") {
  ::setenv("WHARF_ADMIN_PASSWORD", "edge-admin-password", 1);
  CoreServer core({}, {"--auth", "token"});
  for (auto mode : {DamagingProxy::kFlip, DamagingProxy::kCut}) {
    DamagingProxy proxy(core.port(), mode);
    EdgeServer edge(proxy.url());
    std::string big = randomData(4 << 20, mode == DamagingProxy::kFlip ? 21 : 22);
    std::string d = digestOf(big).str();
    std::string push = token(core.port(), "admin", "edge-admin-password", "repository:admin/dmg:pull,push");
    HttpClient c("127.0.0.1", core.port());
    REQUIRE(c.request("POST", "/v2/admin/dmg/blobs/uploads/?digest=" + d, {{"Authorization", "Bearer " + push}}, big)
                ->status == 201);
    std::string pull = token(core.port(), "admin", "edge-admin-password", "repository:admin/dmg:pull");
    std::vector<std::thread> clients;
    std::atomic<int> complete_and_wrong{0}, aborted{0};
    for (int i = 0; i < 4; ++i) {
      clients.emplace_back([&] {
        HttpClient e("127.0.0.1", edge.port(), 30000);
        auto got = e.request("GET", "/v2/admin/dmg/blobs/" + d, {{"Authorization", "Bearer " + pull}});
        if (!got.isOk()) {
          ++aborted;
        } else if (got->status == 200 && got->body != big) {
          ++complete_and_wrong;  // the one thing that must never happen
        }
      });
    }
    for (auto& t : clients) t.join();
    INFO("mode " << mode);
    CHECK(complete_and_wrong == 0);
    CHECK(aborted >= 1);
    // Nothing was committed: the next request is a miss again (and fails again).
    HttpClient e("127.0.0.1", edge.port());
    auto again = e.request("GET", "/v2/admin/dmg/blobs/" + d, {{"Authorization", "Bearer " + pull}});
    CHECK_FALSE((again.isOk() && again->status == 200 && again->body == big));
    auto metrics = e.request("GET", "/metrics");
    CHECK(metrics->body.find("wharf_edge_cache_hits_total 0") != std::string::npos);
  }
}

TEST_CASE("edge: pull through with skopeo, one upstream GET for 16 parallel clients, no leaks", "[edge]") {
  ::setenv("WHARF_ADMIN_PASSWORD", "edge-admin-password", 1);
  CoreServer core({}, {"--auth", "token"});
  EdgeServer edge(core.url());
  HttpClient admin_api("127.0.0.1", core.port());
  auto created = admin_api.request("POST", "/api/v1/users",
                                   {{"Authorization", basicAuthorization("admin", "edge-admin-password")},
                                    {"Content-Type", "application/json"}},
                                   R"({"name":"other","password":"other-password"})");
  REQUIRE(created->status == 201);

  // A private image and a large private blob in the core.
  TempDir work;
  auto layout = writeOciLayout(work / "src", "v1", {ImageSpec{"amd64", {{{"f", randomData(200000, 9)}}}}});
  std::string creds = "admin:edge-admin-password";
  auto r = run({"skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", creds, "oci:" + work / "src" + ":v1",
                "docker://" + core.address() + "/admin/app:v1"});
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  std::string big = randomData(24 << 20, 10);
  std::string d = digestOf(big).str();
  std::string push = token(core.port(), "admin", "edge-admin-password", "repository:admin/big:pull,push");
  HttpClient c("127.0.0.1", core.port());
  REQUIRE(c.request("POST", "/v2/admin/big/blobs/uploads/?digest=" + d, {{"Authorization", "Bearer " + push}}, big)
              ->status == 201);

  // skopeo through the edge: the same digest as the core's.
  r = run({"skopeo", "copy", "--src-tls-verify=false", "--src-creds", creds,
           "docker://" + edge.address() + "/admin/app:v1", "oci:" + work / "back" + ":v1"});
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  r = run({"skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", creds, "docker://" + edge.address() + "/admin/app:v1"});
  REQUIRE(r.exit_code == 0);
  CHECK(digestOf(r.output).str() == layout.digest);

  // 16 clients ask for the cold blob at once: one upstream GET, 16 correct bodies.
  std::string pull = token(core.port(), "admin", "edge-admin-password", "repository:admin/big:pull");
  std::vector<std::thread> clients;
  std::atomic<int> good{0};
  for (int i = 0; i < 16; ++i) {
    clients.emplace_back([&] {
      HttpClient e("127.0.0.1", edge.port(), 60000);
      auto got = e.request("GET", "/v2/admin/big/blobs/" + d, {{"Authorization", "Bearer " + pull}});
      if (got.isOk() && got->status == 200 && digestOf(got->body).str() == d) ++good;
    });
  }
  for (auto& t : clients) t.join();
  CHECK(good == 16);
  CHECK(countLogLines(core.log(), {"\"GET\"", "/v2/admin/big/blobs/" + d}) == 1);

  // Cached private content is served only to a token that may pull it.
  HttpClient e("127.0.0.1", edge.port());
  CHECK(e.request("GET", "/v2/admin/big/blobs/" + d)->status == 401);
  std::string other = token(core.port(), "other", "other-password", "repository:admin/big:pull");
  auto denied = e.request("GET", "/v2/admin/big/blobs/" + d, {{"Authorization", "Bearer " + other}});
  CHECK(denied->status == 401);
  CHECK(denied->body.find(big.substr(0, 64)) == std::string::npos);
  std::string anon = token(core.port(), "", "", "repository:admin/big:pull");
  CHECK(e.request("GET", "/v2/admin/big/blobs/" + d, {{"Authorization", "Bearer " + anon}})->status == 401);
  // A forged token (signed by some other key) is refused.
  CHECK(e.request("GET", "/v2/admin/big/blobs/" + d, {{"Authorization", "Bearer " + pull.substr(0, pull.size() - 4) + "AAAA"}})
            ->status == 401);
  // Cached through admin/big, the blob is not served through a repository the core says
  // does not have it, even to someone who may pull that repository.
  std::string own = token(core.port(), "other", "other-password", "repository:other/app:pull,push");
  auto cross = e.request("GET", "/v2/other/app/blobs/" + d, {{"Authorization", "Bearer " + own}});
  CHECK(cross->status == 404);
  CHECK(cross->body.find(big.substr(0, 64)) == std::string::npos);
  // Once the core has it there too (a mount), it is served from the cache.
  HttpClient core_client("127.0.0.1", core.port());
  REQUIRE(core_client.request("POST", "/v2/other/app/blobs/uploads/?mount=" + d,
                              {{"Authorization", "Bearer " + own}})->status == 202);  // no pull on admin/big: uploads
  REQUIRE(core_client.request("POST", "/v2/other/app/blobs/uploads/?digest=" + d, {{"Authorization", "Bearer " + own}},
                              big)->status == 201);
  auto after = e.request("GET", "/v2/other/app/blobs/" + d, {{"Authorization", "Bearer " + own}});
  CHECK(after->status == 200);
  CHECK(after->body.size() == big.size());
  CHECK(countLogLines(core.log(), {"\"GET\"", "/v2/other/app/blobs/" + d}) == 0);  // from the cache
  // A hit still works for the right token, with ranges.
  auto hit = e.request("GET", "/v2/admin/big/blobs/" + d, {{"Authorization", "Bearer " + pull}, {"Range", "bytes=10-19"}});
  CHECK(hit->status == 206);
  CHECK(hit->body == big.substr(10, 10));
  // Pushes go to the core.
  auto refused = e.request("POST", "/v2/admin/big/blobs/uploads/", {{"Authorization", "Bearer " + push}});
  CHECK(refused->status == 405);
  CHECK(refused->body.find(core.url()) != std::string::npos);
}

TEST_CASE("edge: manifests are cached, and served stale while the core is down", "[edge]") {
  ::setenv("WHARF_ADMIN_PASSWORD", "edge-admin-password", 1);
  auto core = std::make_unique<CoreServer>(std::string(), std::vector<std::string>{"--auth", "token"});
  EdgeServer edge(core->url(), {"--tag-ttl", "1s"});
  TempDir work;
  auto layout = writeOciLayout(work / "src", "v1", {ImageSpec{"amd64", {{{"f", "stale"}}}}});
  std::string creds = "admin:edge-admin-password";
  auto r = run({"skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", creds, "oci:" + work / "src" + ":v1",
                "docker://" + core->address() + "/admin/app:v1"});
  REQUIRE(r.exit_code == 0);
  std::string pull = token(core->port(), "admin", "edge-admin-password", "repository:admin/app:pull");
  HttpClient e("127.0.0.1", edge.port());
  HeaderList auth = {{"Authorization", "Bearer " + pull}, {"Accept", "application/vnd.oci.image.manifest.v1+json"}};
  auto first = e.request("GET", "/v2/admin/app/manifests/v1", auth);
  REQUIRE(first->status == 200);
  CHECK(digestOf(first->body).str() == layout.digest);
  // Within the TTL the core is not asked again.
  int before = countLogLines(core->log(), {"\"GET\"", "/v2/admin/app/manifests/v1"});
  CHECK(e.request("GET", "/v2/admin/app/manifests/v1", auth)->status == 200);
  CHECK(countLogLines(core->log(), {"\"GET\"", "/v2/admin/app/manifests/v1"}) == before);

  core->terminate();  // the WAN is down
  // Past the TTL, the tag is served stale, marked so; by digest it is served as it is.
  bool stale = waitFor([&] {
    auto got = e.request("GET", "/v2/admin/app/manifests/v1", auth);
    return got.isOk() && got->status == 200 && got->header("x-wharf-stale") == "1" && got->body == first->body;
  });
  CHECK(stale);
  auto by_digest = e.request("GET", "/v2/admin/app/manifests/" + layout.digest, auth);
  CHECK(by_digest->status == 200);
  CHECK(by_digest->header("x-wharf-stale").empty());
  // Never seen: an error, not a guess.
  CHECK(e.request("GET", "/v2/admin/app/manifests/v2", auth)->status == 503);
  // The token still matters while the core is away.
  CHECK(e.request("GET", "/v2/admin/app/manifests/v1")->status == 401);
  auto metrics = e.request("GET", "/metrics");
  CHECK(metrics->body.find("wharf_edge_stale_served_total") != std::string::npos);
}

TEST_CASE("edge: podman pulls through a registries.conf mirror; multi-arch indexes copy through", "[edge][clients]") {
  if (!haveCommand("podman") || !haveCommand("skopeo")) return;
  ::setenv("WHARF_ADMIN_PASSWORD", "edge-admin-password", 1);
  CoreServer core({}, {"--auth", "token"});
  EdgeServer edge(core.url());
  TempDir work;
  auto layout = writeOciLayout(work / "src", "multi",
                               {ImageSpec{"amd64", {{{"etc/motd", "through the edge"}}}}, ImageSpec{"arm64", {{{"f", "arm"}}}}});
  std::string creds = "admin:edge-admin-password";
  auto r = run({"skopeo", "copy", "--all", "--dest-tls-verify=false", "--dest-creds", creds,
                "oci:" + work / "src" + ":multi", "docker://" + core.address() + "/admin/multi:v1"});
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  // The whole index through the edge.
  r = run({"skopeo", "copy", "--all", "--src-tls-verify=false", "--src-creds", creds,
           "docker://" + edge.address() + "/admin/multi:v1", "oci:" + work / "back" + ":v1"});
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  // podman with the edge as a mirror of the core: the pull goes through the edge.
  HttpClient e("127.0.0.1", edge.port());
  auto hitsNow = [&] {
    std::string m = e.request("GET", "/metrics")->body;
    auto at = m.find("\nwharf_edge_cache_hits_total ");
    return at == std::string::npos ? 0ull : std::stoull(m.substr(at + 29));
  };
  uint64_t hits_before = hitsNow();
  std::ofstream conf(work / "registries.conf");
  conf << "[[registry]]\nlocation = \"" << core.address() << "\"\ninsecure = true\n"
       << "[[registry.mirror]]\nlocation = \"" << edge.address() << "\"\ninsecure = true\n";
  conf.close();
  std::string auth = work / "auth.json";
  // The mirror is asked with the credentials of the registry it mirrors.
  std::string b64 = base64Encode(creds);
  std::ofstream(auth) << "{\"auths\":{\"" << core.address() << "\":{\"auth\":\"" << b64 << "\"},\"" << edge.address()
                      << "\":{\"auth\":\"" << b64 << "\"}}}";
  r = run({"unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
           "mkdir -p /var/lib/containers/cache && mount -t tmpfs tmpfs /var/lib/containers/cache && "
           "CONTAINERS_REGISTRIES_CONF=" + work / "registries.conf" + " podman --root " + work / "root" + " --runroot " +
               work / "run" + " --storage-driver vfs --events-backend file --cgroup-manager cgroupfs pull --authfile " +
               auth + " --arch amd64 " + core.address() + "/admin/multi:v1"});
  INFO(r.output);
  CHECK(r.exit_code == 0);
  // The blobs podman read came from the edge's cache (the skopeo copy filled it).
  CHECK(hitsNow() > hits_before);
}

TEST_CASE("edge: eviction under a small budget keeps the shared layer", "[edge]") {
  ::setenv("WHARF_ADMIN_PASSWORD", "edge-admin-password", 1);
  CoreServer core({}, {"--auth", "token"});
  EdgeServer edge(core.url(), {"--cache-budget", "10m", "--high-watermark", "90", "--low-watermark", "70"});
  TempDir work;
  std::map<std::string, std::string> shared = {{"base.bin", randomData(3 << 20, 31)}};
  auto a = writeOciLayout(work / "a", "v1", {ImageSpec{"amd64", {shared, {{"a.bin", randomData(3 << 20, 32)}}}}});
  auto b = writeOciLayout(work / "b", "v1", {ImageSpec{"amd64", {shared, {{"b.bin", randomData(3 << 20, 33)}}}}});
  REQUIRE(a.blobs[0] == b.blobs[0]);  // the same base layer
  std::string creds = "admin:edge-admin-password";
  for (const char* img : {"a", "b"}) {
    auto r = run({"skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", creds,
                  "oci:" + work / img + ":v1", "docker://" + core.address() + "/admin/" + img + ":v1"});
    REQUIRE(r.exit_code == 0);
    r = run({"skopeo", "copy", "--src-tls-verify=false", "--src-creds", creds,
             "docker://" + edge.address() + "/admin/" + img + ":v1", "oci:" + work / (std::string(img) + "-back") + ":v1"});
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
  }
  // A blob no cached image uses pushes the cache over its budget.
  std::string lone = randomData(4 << 20, 34);
  std::string d = digestOf(lone).str();
  std::string push = token(core.port(), "admin", "edge-admin-password", "repository:admin/lone:pull,push");
  HttpClient c("127.0.0.1", core.port());
  REQUIRE(c.request("POST", "/v2/admin/lone/blobs/uploads/?digest=" + d, {{"Authorization", "Bearer " + push}}, lone)
              ->status == 201);
  std::string pull = token(core.port(), "admin", "edge-admin-password", "repository:admin/lone:pull");
  HttpClient e("127.0.0.1", edge.port());
  REQUIRE(e.request("GET", "/v2/admin/lone/blobs/" + d, {{"Authorization", "Bearer " + pull}})->status == 200);
  auto metrics = e.request("GET", "/metrics")->body;
  CHECK(metrics.find("wharf_edge_evictions_total 0") == std::string::npos);
  // Under budget again, and the shared base layer is still cached: pulling it does not
  // reach the core.
  auto bytes_at = metrics.find("\nwharf_edge_cache_bytes ");
  REQUIRE(bytes_at != std::string::npos);
  CHECK(std::stoull(metrics.substr(bytes_at + 24)) <= 7u * 1024 * 1024);
  std::string apull = token(core.port(), "admin", "edge-admin-password", "repository:admin/a:pull");
  int before = countLogLines(core.log(), {"\"GET\"", "/blobs/" + a.blobs[0]});
  auto base = e.request("GET", "/v2/admin/a/blobs/" + a.blobs[0], {{"Authorization", "Bearer " + apull}});
  CHECK(base->status == 200);
  CHECK(countLogLines(core.log(), {"\"GET\"", "/blobs/" + a.blobs[0]}) == before);
}
