// wharf-edge in front of a real core: pulls through the cache with real clients, one
// upstream fetch however many clients ask, and no cached content for the unauthorized.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <dirent.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <cstdlib>
#include <fstream>
#include <map>
#include <thread>
#include <vector>

#include "shared/base/fs.h"
#include "shared/oci/digest.h"
#include "shared/tls/crypto.h"
#include "tests/support/edge_server.h"
#include "tests/support/http_client.h"
#include "tests/support/oci_layout.h"
#include "tests/support/process.h"
#include "tests/support/raw_peer.h"

// Each file's own names: the test binaries are unity builds.
namespace edge_test {

using namespace wharf;
using namespace wharf::test;
using nlohmann::json;

namespace {

constexpr const char* kAdminPassword = "edge-admin-password";

std::string joinToken(int core_port, const std::string& name) { return edgeJoinToken(core_port, kAdminPassword, name); }

std::string token(int core_port, const std::string& user, const std::string& pw, const std::string& scope) {
  return registryToken(core_port, user, pw, scope);
}

// A one-request-per-connection proxy in front of the core that damages blob bodies:
// kFlip changes one byte, kCut closes every blob response early, kCutOnce only the
// first, kSlow trickles blob bodies (fills stay in flight), kRedirect answers blob GETs
// that do not ask for the core's own bytes (X-Wharf-Edge) with a 307 to redirectTo(), as
// a core with blob_redirect does. Other requests pass.
class DamagingProxy {
 public:
  enum Mode { kPass, kFlip, kCut, kCutOnce, kSlow, kRedirect };
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
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return active_ == 0; });
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int blobGets() const { return blob_gets_; }
  int rangeGets() const { return range_gets_; }
  int redirected() const { return redirected_; }
  void redirectTo(const std::string& url) {
    std::lock_guard lock(mu_);
    redirect_to_ = url;
  }

 private:
  void serve() {
    while (!stop_) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      {
        std::lock_guard lock(mu_);
        ++active_;
      }
      std::thread([this, c] {
        handle(c);
        std::lock_guard lock(mu_);
        --active_;
        cv_.notify_all();
      }).detach();
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
    // The whole request body too (registration is a POST).
    size_t head_end = req.find("\r\n\r\n") + 4;
    std::string lower = req.substr(0, head_end);
    for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    size_t body_len = 0;
    if (auto cl = lower.find("content-length:"); cl != std::string::npos) body_len = std::stoul(lower.substr(cl + 15));
    while (req.size() < head_end + body_len) {
      ssize_t r = ::recv(c, buf, sizeof buf, 0);
      if (r <= 0) return (void)::close(c);
      req.append(buf, static_cast<size_t>(r));
    }
    bool blob = req.find("/blobs/sha256:") != std::string::npos && req.rfind("GET ", 0) == 0;
    const Mode mode_ = this->mode_.load();  // this connection's mode
    bool cut = false;
    if (blob) {
      int n = ++blob_gets_;
      if (lower.find("\r\nrange:") != std::string::npos) ++range_gets_;
      cut = mode_ == kCut || (mode_ == kCutOnce && n == 1);
    }
    if (blob && mode_ == kRedirect && lower.find("\r\nx-wharf-edge:") == std::string::npos) {
      ++redirected_;
      std::string to;
      {
        std::lock_guard lock(mu_);
        to = redirect_to_;
      }
      std::string answer = "HTTP/1.1 307 Temporary Redirect\r\nLocation: " + to +
                           "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      (void)::send(c, answer.data(), answer.size(), MSG_NOSIGNAL);
      return (void)::close(c);
    }
    size_t cut_after = mode_ == kCut ? (256u << 10) : (1u << 20);
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
      ssize_t r = ::recv(u, buf, mode_ == kSlow && blob ? 16384 : sizeof buf, 0);
      if (r <= 0) break;
      resp.append(buf, static_cast<size_t>(r));
      if (body_start == std::string::npos) {
        auto h = resp.find("\r\n\r\n");
        if (h != std::string::npos) body_start = h + 4;
      }
      if (blob && mode_ == kFlip && body_start != std::string::npos && resp.size() > body_start + 1000 &&
          forwarded <= body_start + 1000) {
        resp[body_start + 1000] ^= 0x55;
      }
      if (cut && body_start != std::string::npos && resp.size() > body_start + cut_after) {
        (void)::send(c, resp.data() + forwarded, body_start + cut_after - forwarded, MSG_NOSIGNAL);
        break;  // the upstream dies mid-blob
      }
      if (mode_ == kFlip && blob && (body_start == std::string::npos || resp.size() <= body_start + 1000)) continue;
      (void)::send(c, resp.data() + forwarded, resp.size() - forwarded, MSG_NOSIGNAL);
      forwarded = resp.size();
      if (mode_ == kSlow && blob && !stop_) std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a slow WAN
    }
    ::close(u);
    ::close(c);
  }
  int upstream_;
  std::atomic<Mode> mode_;
  int fd_;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> blob_gets_{0}, range_gets_{0}, redirected_{0};
  std::string redirect_to_;  // GUARDED_BY(mu_)
 public:
  void setMode(Mode m) { mode_ = m; }
 private:
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  int active_ = 0;
};

// What an object store does for a presigned URL, as far as an edge sees it: any GET gets
// the one blob it holds. Records what it was asked.
class StoreStandIn {
 public:
  explicit StoreStandIn(std::string blob)
      : blob_(std::move(blob)), peer_([this](int fd) {
          std::string req = readRequestHead(fd);
          {
            std::lock_guard lock(mu_);
            requests_.push_back(req);
          }
          std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(blob_.size()) +
                               "\r\nConnection: close\r\n\r\n" + blob_;
          (void)::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
        }) {}
  std::string url() const { return peer_.url(); }
  std::vector<std::string> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  std::string blob_;
  std::mutex mu_;
  std::vector<std::string> requests_;  // GUARDED_BY(mu_)
  RawPeer peer_;                       // last: its thread stops before the rest goes
};

}  // namespace

TEST_CASE("edge: corrupt or cut upstream bytes abort every response and commit nothing", "[edge]") {
  ::setenv("WHARF_ADMIN_PASSWORD", "edge-admin-password", 1);
  CoreServer core({}, {"--auth", "token"});
  for (auto mode : {DamagingProxy::kFlip, DamagingProxy::kCut}) {
    DamagingProxy proxy(core.port(), mode);
    EdgeServer edge(core, {}, proxy.url());
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
  EdgeServer edge(core);
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
  EdgeServer edge(*core, {"--tag-ttl", "1s"});
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
  // Past it, the core is asked again, conditionally: unchanged is a 304.
  bool revalidated = waitFor([&] {
    auto got = e.request("GET", "/v2/admin/app/manifests/v1", auth);
    return got.isOk() && got->status == 200 &&
           metricIn(e.request("GET", "/metrics")->body, "wharf_edge_manifest_revalidated_total") >= 1;
  });
  CHECK(revalidated);
  CHECK(countLogLines(core->log(), {"/v2/admin/app/manifests/v1", "\"status\":304"}) >= 1);
  // What the edge learnt survives a restart: the manifest by digest is still served for
  // this repository without asking the core.
  edge.process().signal(SIGTERM);
  REQUIRE(edge.process().wait() == 0);
  REQUIRE(edge.start({"--tag-ttl", "1s"}));
  HttpClient e_restarted("127.0.0.1", edge.port());
  before = countLogLines(core->log(), {"\"GET\"", "/v2/admin/app/manifests/"});
  CHECK(e_restarted.request("GET", "/v2/admin/app/manifests/" + layout.digest, auth)->status == 200);
  CHECK(countLogLines(core->log(), {"\"GET\"", "/v2/admin/app/manifests/"}) == before);

  core->terminate();  // the WAN is down
  // Past the TTL, the tag is served stale, marked so; by digest it is served as it is.
  bool stale = waitFor([&] {
    auto got = e_restarted.request("GET", "/v2/admin/app/manifests/v1", auth);
    return got.isOk() && got->status == 200 && got->header("x-wharf-stale") == "1" && got->body == first->body;
  });
  CHECK(stale);
  auto by_digest = e_restarted.request("GET", "/v2/admin/app/manifests/" + layout.digest, auth);
  CHECK(by_digest->status == 200);
  CHECK(by_digest->header("x-wharf-stale").empty());
  // Never seen: an error, not a guess.
  CHECK(e_restarted.request("GET", "/v2/admin/app/manifests/v2", auth)->status == 503);
  // The token still matters while the core is away.
  CHECK(e_restarted.request("GET", "/v2/admin/app/manifests/v1")->status == 401);
  auto metrics = e_restarted.request("GET", "/metrics");
  CHECK(metrics->body.find("wharf_edge_stale_served_total") != std::string::npos);
}

TEST_CASE("edge: podman pulls through a registries.conf mirror; multi-arch indexes copy through", "[edge][clients]") {
  if (!haveCommand("podman") || !haveCommand("skopeo")) return;
  ::setenv("WHARF_ADMIN_PASSWORD", "edge-admin-password", 1);
  CoreServer core({}, {"--auth", "token"});
  EdgeServer edge(core);
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

TEST_CASE("edge: a large layer asked for once is served, not kept; under a small budget the shared layer stays",
          "[edge]") {
  ::setenv("WHARF_ADMIN_PASSWORD", "edge-admin-password", 1);
  CoreServer core({}, {"--auth", "token"});
  EdgeServer edge(core, {"--cache-budget", "10m", "--high-watermark", "90", "--low-watermark", "70"});
  TempDir work;
  std::map<std::string, std::string> shared = {{"base.bin", randomData(3 << 20, 31)}};
  auto a = writeOciLayout(work / "a", "v1", {ImageSpec{"amd64", {shared, {{"a.bin", randomData(3 << 20, 32)}}}}});
  auto b = writeOciLayout(work / "b", "v1", {ImageSpec{"amd64", {shared, {{"b.bin", randomData(3 << 20, 33)}}}}});
  REQUIRE(a.blobs[0] == b.blobs[0]);  // the same base layer
  std::string creds = "admin:edge-admin-password";
  HttpClient e("127.0.0.1", edge.port());
  auto cachedBytes = [&] {
    auto m = e.request("GET", "/metrics")->body;
    auto at = m.find("\nwharf_edge_cache_bytes ");
    return at == std::string::npos ? uint64_t{0} : std::stoull(m.substr(at + 24));
  };
  // Two nodes pull each image: the first pull's layers (3 MiB: large) are served and not
  // kept (admission: asked for once); the second pull's are.
  for (const char* img : {"a", "b"}) {
    auto r = run({"skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", creds,
                  "oci:" + work / img + ":v1", "docker://" + core.address() + "/admin/" + img + ":v1"});
    REQUIRE(r.exit_code == 0);
    for (int node = 0; node < 2; ++node) {
      r = run({"skopeo", "copy", "--src-tls-verify=false", "--src-creds", creds,
               "docker://" + edge.address() + "/admin/" + img + ":v1",
               "oci:" + work / (std::string(img) + "-back-" + std::to_string(node)) + ":v1"});
      INFO(r.output);
      REQUIRE(r.exit_code == 0);
      if (std::string(img) == "a" && node == 0) {
        CHECK(cachedBytes() < (1u << 20));  // the config only
        CHECK(metricIn(e.request("GET", "/metrics")->body, "wharf_edge_admission_refused_total") == 2);
      }
    }
  }
  // A blob no cached image uses pushes the cache over its budget.
  std::string lone = randomData(4 << 20, 34);
  std::string d = digestOf(lone).str();
  std::string push = token(core.port(), "admin", "edge-admin-password", "repository:admin/lone:pull,push");
  HttpClient c("127.0.0.1", core.port());
  REQUIRE(c.request("POST", "/v2/admin/lone/blobs/uploads/?digest=" + d, {{"Authorization", "Bearer " + push}}, lone)
              ->status == 201);
  std::string pull = token(core.port(), "admin", "edge-admin-password", "repository:admin/lone:pull");
  for (int ask = 0; ask < 2; ++ask) {  // asked twice: kept
    REQUIRE(e.request("GET", "/v2/admin/lone/blobs/" + d, {{"Authorization", "Bearer " + pull}})->status == 200);
  }
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

namespace {

std::string pushBlob(const CoreServer& core, const std::string& repo, const std::string& data) {
  return ::wharf::test::pushBlob(core.port(), kAdminPassword, repo, data);
}

}  // namespace

TEST_CASE("edge: a broken upstream connection resumes with Range; clients get every byte", "[edge]") {
  ::setenv("WHARF_ADMIN_PASSWORD", kAdminPassword, 1);
  CoreServer core({}, {"--auth", "token"});
  DamagingProxy proxy(core.port(), DamagingProxy::kCutOnce);
  EdgeServer edge(core, {}, proxy.url());
  std::string big = randomData(6 << 20, 41);
  std::string d = pushBlob(core, "admin/resume", big);
  std::string pull = token(core.port(), "admin", kAdminPassword, "repository:admin/resume:pull");
  HttpClient e("127.0.0.1", edge.port(), 30000);
  auto got = e.request("GET", "/v2/admin/resume/blobs/" + d, {{"Authorization", "Bearer " + pull}});
  REQUIRE(got.isOk());
  CHECK(got->status == 200);
  CHECK(got->header("content-length") == std::to_string(big.size()));  // known from the upstream's answer
  CHECK(got->body == big);
  CHECK(proxy.blobGets() == 2);
  CHECK(proxy.rangeGets() == 1);
  auto page = e.request("GET", "/metrics")->body;
  CHECK(metricIn(page, "wharf_edge_fill_resumes_total") == 1);
  // The next request gets every byte too. It joins the fill if it comes while the fill
  // is being committed (asked twice: kept); if it comes after, the admission policy has
  // served the blob, asked once and larger than 1 MiB, without keeping it, and this
  // request fills it again (then kept: asked before).
  CHECK(e.request("GET", "/v2/admin/resume/blobs/" + d, {{"Authorization", "Bearer " + pull}})->body == big);
  page = e.request("GET", "/metrics")->body;
  CHECK(proxy.blobGets() == 2 + static_cast<int>(metricIn(page, "wharf_edge_admission_refused_total")));
  CHECK(e.request("GET", "/v2/admin/resume/blobs/" + d, {{"Authorization", "Bearer " + pull}})->body == big);
  CHECK(proxy.blobGets() == 2 + static_cast<int>(metricIn(page, "wharf_edge_admission_refused_total")));
}

TEST_CASE("edge: a fill follows the core's redirect to its object store without the client's token; a store "
          "this site cannot reach sends it back to the core for the bytes",
          "[edge]") {
  ::setenv("WHARF_ADMIN_PASSWORD", kAdminPassword, 1);
  CoreServer core({}, {"--auth", "token"});
  DamagingProxy proxy(core.port(), DamagingProxy::kRedirect);
  EdgeServer edge(core, {}, proxy.url());
  std::string one = randomData(3 << 20, 51), two = randomData(1 << 20, 52), three = randomData(70000, 53);
  std::string d1 = pushBlob(core, "admin/redir", one), d2 = pushBlob(core, "admin/redir", two),
              d3 = pushBlob(core, "admin/redir", three);
  std::string pull = token(core.port(), "admin", kAdminPassword, "repository:admin/redir:pull");
  auto get = [&](const std::string& d) {
    HttpClient e("127.0.0.1", edge.port(), 30000);  // fresh: a broken answer is not retried
    return e.request("GET", "/v2/admin/redir/blobs/" + d, {{"Authorization", "Bearer " + pull}});
  };

  // Redirected: the bytes come from the store, which never sees the client's token.
  StoreStandIn store(one);
  proxy.redirectTo(store.url() + "/bucket/blobs/sha256/x?X-Amz-Signature=abc");
  auto got = get(d1);
  REQUIRE(got.isOk());
  CHECK(got->status == 200);
  CHECK(got->body == one);
  auto asked = store.requests();
  REQUIRE(asked.size() == 1);
  CHECK(asked[0].rfind("GET /bucket/blobs/sha256/x?X-Amz-Signature=abc HTTP/1.1\r\n", 0) == 0);
  std::string lower = asked[0];
  for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  CHECK(lower.find("authorization:") == std::string::npos);
  CHECK(lower.find(pull.substr(0, 40)) == std::string::npos);
  CHECK(proxy.redirected() == 1);
  CHECK(proxy.blobGets() == 1);  // the core sent no blob bytes

  // Bytes that do not match the digest are refused, from a store as from the core.
  auto wrong = get(d2);  // the stand-in serves `one` for every URL
  CHECK_FALSE((wrong.isOk() && wrong->status == 200 && wrong->body == two));
  CHECK(proxy.redirected() == 2);

  // The store unreachable from here: the core serves the bytes, and serves the next blob
  // straight away (no redirect tried for a while).
  proxy.redirectTo("http://127.0.0.1:" + std::to_string(freePort()) + "/bucket/x?X-Amz-Signature=abc");
  got = get(d2);
  REQUIRE(got.isOk());
  CHECK(got->status == 200);
  CHECK(got->body == two);
  CHECK(proxy.redirected() == 3);
  got = get(d3);
  REQUIRE(got.isOk());
  CHECK(got->body == three);
  CHECK(proxy.redirected() == 3);
  CHECK(metricOf(edge.port(), "wharf_edge_fill_redirects_total") == 3);
  CHECK(metricOf(edge.port(), "wharf_edge_fill_redirect_fallbacks_total") == 1);
  CHECK(countLogLines(edge.log(), {"the core's object store did not serve a redirected blob"}) == 1);
  CHECK(edge.log().find("X-Amz-Signature") == std::string::npos);  // a presigned URL is a credential
}

TEST_CASE("edge: joins once, restarts from edge.json, stops serving when the core removes it", "[edge]") {
  ::setenv("WHARF_ADMIN_PASSWORD", kAdminPassword, 1);
  CoreServer core({}, {"--auth", "token"});
  EdgeServer edge(core, {"--keys-refresh", "1s"});
  std::string d = pushBlob(core, "admin/joined", randomData(100000, 42));
  std::string pull = token(core.port(), "admin", kAdminPassword, "repository:admin/joined:pull");
  HeaderList auth = {{"Authorization", "Bearer " + pull}};
  HttpClient e("127.0.0.1", edge.port());
  CHECK(e.request("GET", "/v2/admin/joined/blobs/" + d, auth)->status == 200);

  // Its registration: kept private, and the secret never logged.
  std::string path = edge.dataDir() + "/edge.json";
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  std::string text;
  REQUIRE(readFile(path, &text).isOk());
  auto stored = json::parse(text);
  std::string credential = stored["credential"];
  CHECK(credential.rfind("wharf_edge_", 0) == 0);
  CHECK(stored["name"] == edge.name());
  CHECK(edge.log().find(credential) == std::string::npos);
  HttpClient api("127.0.0.1", core.port());
  HeaderList admin = {{"Authorization", basicAuthorization("admin", kAdminPassword)}};
  auto listed = api.request("GET", "/api/v1/edges/" + edge.name(), admin);
  REQUIRE(listed->status == 200);
  CHECK(json::parse(listed->body)["state"] == "registered");

  // A restart needs no token: edge.json is enough.
  edge.process().signal(SIGTERM);
  CHECK(edge.process().wait() == 0);
  REQUIRE(edge.start({"--keys-refresh", "1s"}));
  HttpClient e2("127.0.0.1", edge.port());
  CHECK(e2.request("GET", "/v2/admin/joined/blobs/" + d, auth)->status == 200);

  // Removed on the core: the credential is refused, and the edge serves nothing more.
  CHECK(api.request("DELETE", "/api/v1/edges/" + edge.name(), admin)->status == 204);
  bool revoked = waitFor([&] {
    auto h = e2.request("GET", "/healthz");
    return h.isOk() && h->status == 503;
  });
  CHECK(revoked);
  auto refused = e2.request("GET", "/v2/admin/joined/blobs/" + d, auth);
  CHECK(refused->status == 503);
  CHECK(refused->body.find("removed") != std::string::npos);
  // And it does not start again without a new join token.
  edge.process().signal(SIGTERM);
  edge.process().wait();
  CHECK_FALSE(edge.start({}));
  CHECK(edge.log().find("join again") != std::string::npos);
  // A new token brings it back.
  REQUIRE(edge.start({"--join-token", joinToken(core.port(), edge.name() + "-again")}));
  HttpClient e3("127.0.0.1", edge.port());
  CHECK(e3.request("GET", "/v2/admin/joined/blobs/" + d, auth)->status == 200);
}

TEST_CASE("edge: kill -9 during fills leaves a cache that restarts clean", "[edge]") {
  ::setenv("WHARF_ADMIN_PASSWORD", kAdminPassword, 1);
  CoreServer core({}, {"--auth", "token"});
  DamagingProxy proxy(core.port(), DamagingProxy::kPass);
  EdgeServer edge(core, {}, proxy.url());
  std::string small = randomData(300000, 50);
  std::string ds = pushBlob(core, "admin/crash", small);
  std::vector<std::string> bigs;
  std::vector<std::string> digests;
  for (int i = 0; i < 3; ++i) {
    bigs.push_back(randomData(4 << 20, 51 + i));
    digests.push_back(pushBlob(core, "admin/crash", bigs.back()));
  }
  std::string pull = token(core.port(), "admin", kAdminPassword, "repository:admin/crash:pull");
  HeaderList auth = {{"Authorization", "Bearer " + pull}};
  // One blob committed (the index may not have been written yet: a crash must not matter).
  HttpClient e("127.0.0.1", edge.port());
  REQUIRE(e.request("GET", "/v2/admin/crash/blobs/" + ds, auth)->body == small);
  int gets_before = proxy.blobGets();

  // Three fills trickling in; kill -9 in the middle.
  proxy.setMode(DamagingProxy::kSlow);
  std::vector<std::thread> clients;
  std::atomic<int> complete{0};
  for (int i = 0; i < 3; ++i) {
    clients.emplace_back([&, i] {
      HttpClient c("127.0.0.1", edge.port(), 60000);
      auto got = c.request("GET", "/v2/admin/crash/blobs/" + digests[i], auth);
      if (got.isOk() && got->status == 200 && got->body == bigs[i]) ++complete;
    });
  }
  bool filling = waitFor([&] {
    auto page = e.request("GET", "/metrics");
    return page.isOk() && metricIn(page->body, "wharf_edge_fills_in_flight") == 3 &&
           metricIn(page->body, "wharf_edge_bytes_from_upstream_total") > 3 * 65536 + small.size();
  });
  REQUIRE(filling);
  edge.process().signal(SIGKILL);
  edge.process().wait();
  for (auto& t : clients) t.join();
  CHECK(complete == 0);  // no client took a short body for a whole one
  proxy.setMode(DamagingProxy::kPass);

  REQUIRE(edge.start({}));
  // No partial file survived, nothing half-written is in the index, the committed blob
  // is still a hit, and the interrupted ones fill again correctly.
  int partial = 0;
  if (DIR* dir = ::opendir((edge.dataDir() + "/cache/partial").c_str())) {
    while (dirent* ent = ::readdir(dir)) partial += ent->d_name[0] != '.';
    ::closedir(dir);
  }
  CHECK(partial == 0);
  HttpClient e2("127.0.0.1", edge.port(), 30000);
  auto page = e2.request("GET", "/metrics")->body;
  CHECK(metricIn(page, "wharf_edge_cache_blobs") == 1);
  CHECK(metricIn(page, "wharf_edge_cache_bytes") == small.size());
  int gets_now = proxy.blobGets();
  CHECK(e2.request("GET", "/v2/admin/crash/blobs/" + ds, auth)->body == small);
  CHECK(proxy.blobGets() == gets_now);  // from the cache
  for (int i = 0; i < 3; ++i) {
    auto got = e2.request("GET", "/v2/admin/crash/blobs/" + digests[i], auth);
    CHECK(got->status == 200);
    CHECK(got->body == bigs[i]);
  }
  CHECK(proxy.blobGets() > gets_before);
}

TEST_CASE("edge: other registries by namespace prefix, with the edge's own credentials", "[edge]") {
  ::setenv("WHARF_ADMIN_PASSWORD", kAdminPassword, 1);
  CoreServer core({}, {"--auth", "token"});
  CoreServer other({}, {"--auth", "token"});  // another registry, with its own accounts
  TempDir work;
  std::ofstream(work / "password") << kAdminPassword << "\n";
  json upstreams = json::array({{{"prefix", "remote/"}, {"url", other.url()}, {"username", "admin"},
                                 {"password_file", work / "password"}}});
  EdgeServer edge(core, {"--upstreams", upstreams.dump()});
  auto layout = writeOciLayout(work / "src", "v1", {ImageSpec{"amd64", {{{"f", randomData(50000, 60)}}}}});
  std::string creds = std::string("admin:") + kAdminPassword;
  auto r = run({"skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", creds, "oci:" + work / "src" + ":v1",
                "docker://" + other.address() + "/admin/app:v1"});
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  // Clients log in to the core as always; remote/admin/app is admin/app over there.
  r = run({"skopeo", "copy", "--src-tls-verify=false", "--src-creds", creds,
           "docker://" + edge.address() + "/remote/admin/app:v1", "oci:" + work / "back" + ":v1"});
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  r = run({"skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", creds,
           "docker://" + edge.address() + "/remote/admin/app:v1"});
  REQUIRE(r.exit_code == 0);
  CHECK(digestOf(r.output).str() == layout.digest);
  // The other registry served it, to the edge's own token; the core was not asked.
  CHECK(countLogLines(other.log(), {"\"GET\"", "/v2/admin/app/manifests/v1"}) >= 1);
  CHECK(countLogLines(other.log(), {"/auth/token"}) >= 1);
  CHECK(countLogLines(core.log(), {"/v2/remote/"}) == 0);
  // Lists name the repository as the edge calls it.
  std::string mine = token(core.port(), "admin", kAdminPassword, "repository:remote/admin/app:pull");
  HttpClient tags("127.0.0.1", edge.port());
  auto listed = tags.request("GET", "/v2/remote/admin/app/tags/list", {{"Authorization", "Bearer " + mine}});
  REQUIRE(listed->status == 200);
  CHECK(json::parse(listed->body)["name"] == "remote/admin/app");
  CHECK(json::parse(listed->body)["tags"] == json::array({"v1"}));
  // A token that may not pull remote/admin/app is refused, cached or not.
  std::string wrong = token(core.port(), "", "", "repository:remote/admin/app:pull");
  HttpClient e("127.0.0.1", edge.port());
  CHECK(e.request("GET", "/v2/remote/admin/app/manifests/v1", {{"Authorization", "Bearer " + wrong}})->status == 401);
}

TEST_CASE("edge: the scrub drops a corrupt cached blob and the edge fetches it again", "[edge]") {
  ::setenv("WHARF_ADMIN_PASSWORD", kAdminPassword, 1);
  CoreServer core({}, {"--auth", "token"});
  EdgeServer edge(core, {"--scrub-interval", "1s", "--scrub-rate", "64m"});
  std::string data = randomData(512 << 10, 70);  // under 1 MiB: kept at its first miss
  std::string d = pushBlob(core, "admin/scrub", data);
  std::string pull = token(core.port(), "admin", kAdminPassword, "repository:admin/scrub:pull");
  HeaderList auth = {{"Authorization", "Bearer " + pull}};
  HttpClient e("127.0.0.1", edge.port());
  REQUIRE(e.request("GET", "/v2/admin/scrub/blobs/" + d, auth)->body == data);
  // The disk rots (once the fill is committed: clients have the bytes a moment before).
  std::string file = edge.dataDir() + "/cache/blobs/sha256/" + d.substr(7);
  REQUIRE(waitFor([&] { return ::access(file.c_str(), F_OK) == 0; }));
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    REQUIRE(f.good());
    f.seekp(4096);
    f.write("rot", 3);
  }
  bool found = waitFor([&] { return metricIn(e.request("GET", "/metrics")->body, "wharf_edge_scrub_corrupt_total") == 1; });
  CHECK(found);
  // The edge fetches it again by itself, with its own credential, before any client asks.
  auto coreGets = [&] { return countLogLines(core.log(), {"\"GET\"", "/v2/admin/scrub/blobs/" + d}); };
  REQUIRE(waitFor([&] { return coreGets() == 2 && ::access(file.c_str(), F_OK) == 0; }, 10000));
  REQUIRE(waitFor([&] { return metricIn(e.request("GET", "/metrics")->body, "wharf_edge_prefetch_queued") == 0; }));
  auto again = e.request("GET", "/v2/admin/scrub/blobs/" + d, auth);
  CHECK(again->status == 200);
  CHECK(again->body == data);
  CHECK(coreGets() == 2);  // served from the refetched copy
}

TEST_CASE("edge: under a 64 MiB budget, the images a site pulls most stay whole in the cache", "[edge][cache]") {
  ::setenv("WHARF_ADMIN_PASSWORD", kAdminPassword, 1);
  CoreServer core({}, {"--auth", "token"});
  EdgeServer edge(core, {"--cache-budget", "64m"});
  // 20 images: each its own 3 MiB layer on one of 4 bases of 4 MiB (76 MiB in all).
  std::vector<std::string> bases;
  for (int b = 0; b < 4; ++b) bases.push_back(pushBlob(core, "team/base", randomData(4 << 20, 900 + static_cast<uint64_t>(b))));
  struct Image {
    std::string repo;
    std::vector<std::string> blobs;  // config, base, own layer
  };
  std::vector<Image> images;
  HttpClient c("127.0.0.1", core.port());
  for (int i = 0; i < 20; ++i) {
    Image img{"team/app" + std::to_string(i), {}};
    std::string push_token = token(core.port(), "admin", kAdminPassword, "repository:" + img.repo + ":pull,push");
    std::string base = bases[static_cast<size_t>(i % 4)];
    pushBlob(core, img.repo, randomData(4 << 20, 900 + static_cast<uint64_t>(i % 4)));  // the base, again
    std::string config = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"n":)" +
                         std::to_string(i) + "}";
    std::string own = randomData(3 << 20, 1000 + static_cast<uint64_t>(i));
    std::string config_digest = pushBlob(core, img.repo, config);
    std::string own_digest = pushBlob(core, img.repo, own);
    json manifest = {{"schemaVersion", 2},
                     {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                     {"config", {{"mediaType", "application/vnd.oci.image.config.v1+json"}, {"digest", config_digest}, {"size", config.size()}}},
                     {"layers", {{{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"}, {"digest", base}, {"size", 4 << 20}},
                                 {{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"}, {"digest", own_digest}, {"size", own.size()}}}}};
    auto put = c.request("PUT", "/v2/" + img.repo + "/manifests/latest",
                         {{"Authorization", "Bearer " + push_token}, {"Content-Type", "application/vnd.oci.image.manifest.v1+json"}},
                         manifest.dump());
    INFO(put->body);
    REQUIRE(put->status == 201);
    img.blobs = {config_digest, base, own_digest};
    images.push_back(std::move(img));
  }
  // A node pulls an image: the manifest by tag, then every blob (a new node has none).
  HttpClient e("127.0.0.1", edge.port());
  auto pull = [&](const Image& img) {
    std::string t = token(core.port(), "admin", kAdminPassword, "repository:" + img.repo + ":pull");
    HeaderList auth = {{"Authorization", "Bearer " + t}, {"Accept", "application/vnd.oci.image.manifest.v1+json"}};
    REQUIRE(e.request("GET", "/v2/" + img.repo + "/manifests/latest", auth)->status == 200);
    for (const auto& b : img.blobs) {
      auto r = e.request("GET", "/v2/" + img.repo + "/blobs/" + b, auth);
      REQUIRE(r->status == 200);
      REQUIRE(digestOf(r->body).str() == b);
    }
  };
  // Popularity as in the fleet traces: Zipf-like, interleaved in rounds (image i is pulled
  // 12 / (i + 1) times, at least once).
  for (int round = 0; round < 12; ++round) {
    for (int i = 0; i < 20; ++i) {
      if (std::max(1, 12 / (i + 1)) > round) pull(images[static_cast<size_t>(i)]);
    }
  }
  // Then a sweep through everything else, once each (a new node starting cold on the
  // less popular images): an LRU cache would be flushed by it.
  for (int i = 4; i < 20; ++i) pull(images[static_cast<size_t>(i)]);
  auto metrics = e.request("GET", "/metrics")->body;
  INFO(metrics.substr(0, 4000));
  CHECK(metricIn(metrics, "wharf_edge_cache_bytes") <= 64u << 20);
  CHECK(metricIn(metrics, "wharf_edge_evictions_total") > 0);
  CHECK(metricIn(metrics, "wharf_edge_admission_refused_total") > 0);  // the ones pulled once
  // The three most pulled images (12, 6 and 4 pulls) are whole: pulling them again never
  // reaches the core. (The fourth, pulled 3 times and not since the third round, may lose
  // its own layer to the sweep: the policy ages what is not asked for any more.)
  for (int i = 0; i < 3; ++i) {
    const Image& img = images[static_cast<size_t>(i)];
    std::vector<int> before;
    for (const auto& b : img.blobs) before.push_back(countLogLines(core.log(), {"\"GET\"", "/blobs/" + b}));
    pull(img);
    for (size_t k = 0; k < img.blobs.size(); ++k) {
      INFO("image " << i << " blob " << k);
      CHECK(countLogLines(core.log(), {"\"GET\"", "/blobs/" + img.blobs[k]}) == before[k]);
    }
  }
}

}  // namespace edge_test
