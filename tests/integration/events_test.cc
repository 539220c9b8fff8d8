// Events and webhooks against the real wharf-core (auth on): the event log over
// /api/v1/events (order, fields, filters, pagination, visibility), the live feed
// (SSE, resumed with Last-Event-ID), webhooks to a receiver in this process (signed,
// a failure and its retry, the delivery log, test, URL changes and secrets), refused
// targets, and wharfctl events / webhook.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "shared/base/clock.h"
#include "shared/tls/crypto.h"
#include "shared/base/fs.h"
#include "shared/base/ids.h"
#include "tests/support/http_client.h"
#include "tests/support/postgres.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/sse_client.h"

// Each file's own names: the test binaries are unity builds.
namespace events_test {

using namespace wharf;
using wharf::test::SseClient;
using namespace wharf::test;
using nlohmann::json;

namespace {

const char* kAdminPassword = "events-admin-password";
const char* kOciManifest = "application/vnd.oci.image.manifest.v1+json";

CoreServer authCore(std::vector<std::string> extra = {}) {
  ::setenv("WHARF_ADMIN_PASSWORD", kAdminPassword, 1);
  extra.insert(extra.begin(), {"--auth", "token"});
  return CoreServer("", extra);
}

HttpResponse call(HttpClient& c, const std::string& method, const std::string& path, const std::string& user,
                  const std::string& pw, const json& body = nullptr) {
  HeaderList h;
  if (!user.empty()) h.push_back({"Authorization", basicAuthorization(user, pw)});
  std::string b;
  if (!body.is_null()) {
    h.push_back({"Content-Type", "application/json"});
    b = body.dump();
  }
  auto r = c.request(method, path, h, b);
  REQUIRE(r.isOk());
  return *r;
}

HttpResponse admin(HttpClient& c, const std::string& method, const std::string& path, const json& body = nullptr) {
  return call(c, method, path, "admin", kAdminPassword, body);
}

std::string token(HttpClient& c, const std::string& user, const std::string& pw, const std::string& repo) {
  auto r = c.request("GET", "/auth/token?service=wharf&scope=repository:" + repo + ":pull,push,delete",
                     {{"Authorization", basicAuthorization(user, pw)}});
  REQUIRE(r.isOk());
  INFO(r->body);
  REQUIRE(r->status == 200);
  return json::parse(r->body)["token"].get<std::string>();
}

std::string digestOf(const std::string& data) { return "sha256:" + sha256Hex(data); }

// Pushes a one-layer image as repo:tag with the Bearer token; returns the manifest digest.
std::string pushImage(HttpClient& c, const std::string& tok, const std::string& repo, const std::string& tag,
                      const std::string& layer) {
  const std::string config = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}})";
  HeaderList auth = {{"Authorization", "Bearer " + tok}};
  for (const std::string* blob : {&config, &layer}) {
    auto r = c.request("POST", "/v2/" + repo + "/blobs/uploads/?digest=" + digestOf(*blob), auth, *blob);
    REQUIRE(r.isOk());
    INFO(r->body);
    REQUIRE(r->status == 201);
  }
  json m = {{"schemaVersion", 2},
            {"mediaType", kOciManifest},
            {"config", {{"mediaType", "application/vnd.oci.image.config.v1+json"}, {"digest", digestOf(config)}, {"size", config.size()}}},
            {"layers", json::array({{{"mediaType", "application/vnd.oci.image.layer.v1.tar"},
                                     {"digest", digestOf(layer)},
                                     {"size", layer.size()}}})}};
  HeaderList h = auth;
  h.push_back({"Content-Type", kOciManifest});
  auto r = c.request("PUT", "/v2/" + repo + "/manifests/" + tag, h, m.dump());
  REQUIRE(r.isOk());
  INFO(r->body);
  REQUIRE(r->status == 201);
  return r->header("docker-content-digest");
}

// Every event the caller sees (following next), via /api/v1/events?query.
json events(HttpClient& c, const std::string& user, const std::string& pw, const std::string& query = "") {
  json all = json::array();
  std::string since;
  for (int pages = 0; pages < 1000; ++pages) {
    std::string q = query + (since.empty() ? "" : std::string(query.empty() ? "" : "&") + "since=" + since);
    auto r = call(c, "GET", "/api/v1/events" + (q.empty() ? "" : "?" + q), user, pw);
    INFO(r.body);
    REQUIRE(r.status == 200);
    json j = json::parse(r.body);
    for (auto& e : j["events"]) all.push_back(e);
    if (j["next"].is_null()) break;
    since = j["next"].dump();
  }
  return all;
}

json adminEvents(HttpClient& c, const std::string& query = "") { return events(c, "admin", kAdminPassword, query); }

std::vector<std::string> typesOf(const json& list) {
  std::vector<std::string> out;
  for (const auto& e : list) out.push_back(e["type"]);
  return out;
}

std::set<std::string> reposOf(const json& list) {
  std::set<std::string> out;
  for (const auto& e : list) out.insert(e["repository"].get<std::string>());
  return out;
}

std::string errorMessage(const HttpResponse& r) {
  json j = json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("errors") || j["errors"].empty()) return r.body;
  return j["errors"][0].value("message", "");
}

// An HTTP receiver for webhooks on 127.0.0.1: answers each request with the next status
// of its script (then 200) and records it.
class Receiver {
 public:
  struct Got {
    std::string target, body;
    std::map<std::string, std::string> headers;  // lower-case names
  };
  explicit Receiver(std::vector<int> statuses) : statuses_(std::move(statuses)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~Receiver() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  std::vector<Got> received() {
    std::lock_guard lock(mu_);
    return got_;
  }

 private:
  void run() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      handle(c);
      ::close(c);
    }
  }
  void handle(int c) {
    std::string in;
    char buf[8192];
    size_t body_start = std::string::npos, length = 0;
    int64_t deadline = monotonicMillis() + 5000;
    while (monotonicMillis() < deadline) {
      pollfd p{c, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) return;
      in.append(buf, static_cast<size_t>(n));
      if (body_start == std::string::npos) {
        size_t end = in.find("\r\n\r\n");
        if (end == std::string::npos) continue;
        body_start = end + 4;
        Got g;
        size_t sp1 = in.find(' '), sp2 = in.find(' ', sp1 + 1);
        g.target = in.substr(sp1 + 1, sp2 - sp1 - 1);
        for (size_t pos = in.find("\r\n") + 2; pos < end;) {
          size_t eol = in.find("\r\n", pos);
          std::string line = in.substr(pos, eol - pos);
          pos = eol + 2;
          size_t colon = line.find(':');
          std::string name = line.substr(0, colon);
          for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
          std::string value = line.substr(colon + 1);
          while (!value.empty() && value[0] == ' ') value.erase(0, 1);
          g.headers[name] = value;
        }
        length = std::stoul(g.headers["content-length"]);
        pending_ = g;
      }
      if (in.size() - body_start >= length) {
        pending_.body = in.substr(body_start, length);
        int status = 200;
        {
          std::lock_guard lock(mu_);
          if (!statuses_.empty()) {
            status = statuses_.front();
            statuses_.erase(statuses_.begin());
          }
          got_.push_back(pending_);
        }
        std::string resp = "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        (void)::send(c, resp.data(), resp.size(), MSG_NOSIGNAL);
        return;
      }
    }
  }
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<int> statuses_;  // GUARDED_BY(mu_)
  std::vector<Got> got_;       // GUARDED_BY(mu_)
  Got pending_;
  std::thread thread_;
};

}  // namespace

TEST_CASE("events: pushes, pulls, tag moves and deletes are logged in order with actor, repository and target",
          "[events]") {
  CoreServer core = authCore();
  HttpClient c("127.0.0.1", core.port());
  std::string tok = token(c, "admin", kAdminPassword, "admin/app");
  std::string d1 = pushImage(c, tok, "admin/app", "v1", "layer one");
  for (int i = 0; i < 3; ++i) {
    auto r = c.request("GET", "/v2/admin/app/manifests/v1", {{"Authorization", "Bearer " + tok}, {"Accept", kOciManifest}});
    REQUIRE(r.isOk());
    REQUIRE(r->status == 200);
  }
  // A HEAD is not a pull.
  REQUIRE(c.request("HEAD", "/v2/admin/app/manifests/v1", {{"Authorization", "Bearer " + tok}})->status == 200);
  std::string d2 = pushImage(c, tok, "admin/app", "v1", "layer two");
  REQUIRE(d1 != d2);
  auto del = c.request("DELETE", "/v2/admin/app/manifests/v1", {{"Authorization", "Bearer " + tok}});
  REQUIRE(del.isOk());
  REQUIRE(del->status == 202);

  json all;
  REQUIRE(waitFor([&] {
    all = adminEvents(c);
    return !all.empty() && all.back()["type"] == "tag.delete";
  }));
  for (size_t i = 0; i < all.size(); ++i) {
    INFO(all[i].dump());
    CHECK(all[i]["seq"] == i + 1);
    CHECK(all[i]["actor"] == "admin");
    CHECK(all[i]["repository"] == "admin/app");
    CHECK(all[i]["request"]["addr"] == "127.0.0.1");
  }
  json pulls = json::array(), others = json::array();
  for (const auto& e : all) (e["type"] == "manifest.pull" ? pulls : others).push_back(e);
  CHECK(typesOf(others) == std::vector<std::string>{"blob.push", "blob.push", "manifest.push", "tag.push", "blob.push",
                                                    "blob.push", "manifest.push", "tag.move", "tag.delete"});
  // Three GETs: one event, or a few when they straddled a batch; the counts add up.
  uint64_t pulled = 0;
  for (const auto& p : pulls) {
    pulled += p["count"].get<uint64_t>();
    CHECK(p["target"]["digest"] == d1);
    CHECK(p["target"]["tag"] == "v1");
    CHECK(p["request"]["method"] == "GET");
  }
  CHECK(pulled == 3);
  CHECK(others[1]["target"]["digest"] == digestOf("layer one"));
  CHECK(others[1]["target"]["size"] == std::string("layer one").size());
  CHECK(others[2]["target"]["digest"] == d1);
  CHECK(others[2]["target"]["mediaType"] == kOciManifest);
  CHECK(others[2]["target"]["tag"] == "v1");
  CHECK(others[2]["request"]["method"] == "PUT");
  CHECK(others[7]["target"]["digest"] == d2);
  CHECK(others[7]["target"]["previousDigest"] == d1);
  CHECK(others[8]["target"]["tag"] == "v1");

  // Filters.
  CHECK(typesOf(adminEvents(c, "type=tag.*")) == std::vector<std::string>{"tag.push", "tag.move", "tag.delete"});
  CHECK(typesOf(adminEvents(c, "type=tag.move,manifest.push")) ==
        std::vector<std::string>{"manifest.push", "manifest.push", "tag.move"});
  CHECK(adminEvents(c, "type=manifest.pull").size() == pulls.size());
  CHECK(adminEvents(c, "repository=admin/app").size() == all.size());
  CHECK(adminEvents(c, "repository=admin/other").empty());
  CHECK(adminEvents(c, "namespace=admin").size() == all.size());
  CHECK(adminEvents(c, "namespace=adm").empty());
  CHECK(adminEvents(c, "actor=admin").size() == all.size());
  CHECK(adminEvents(c, "actor=nobody").empty());
  CHECK(adminEvents(c, "from=2999-01-01T00:00:00Z").empty());
  CHECK(adminEvents(c, "to=2000-01-01T00:00:00Z").empty());
  CHECK(adminEvents(c, "from=" + all[0]["time"].get<std::string>()).size() == all.size());
  auto after = adminEvents(c, "since=4");
  REQUIRE(!after.empty());
  CHECK(after[0]["seq"] == 5);
  // Pages of two, following next, give the same list.
  json paged = adminEvents(c, "limit=2");
  CHECK(paged == all);
  auto page = admin(c, "GET", "/api/v1/events?limit=2");
  CHECK(json::parse(page.body)["next"] == 2);
  CHECK(json::parse(page.body)["last_seq"] == all.size());

  // Bad input is a clear 400; no credentials is a 401.
  auto bad = admin(c, "GET", "/api/v1/events?type=bogus");
  CHECK(bad.status == 400);
  CHECK(errorMessage(bad).find("unknown event type \"bogus\"") != std::string::npos);
  CHECK(admin(c, "GET", "/api/v1/events?from=yesterday").status == 400);
  CHECK(admin(c, "GET", "/api/v1/events?since=-1").status == 400);
  CHECK(admin(c, "GET", "/api/v1/events?limit=0").status == 400);
  CHECK(admin(c, "POST", "/api/v1/events").status == 405);
  auto anon = c.request("GET", "/api/v1/events");
  REQUIRE(anon.isOk());
  CHECK(anon->status == 401);
  CHECK(anon->header("www-authenticate").find("Basic") != std::string::npos);
  CHECK(call(c, "GET", "/api/v1/events", "admin", "wrong-password").status == 401);
}

TEST_CASE("events: a user sees only events of repositories they may pull", "[events]") {
  CoreServer core = authCore();
  HttpClient c("127.0.0.1", core.port());
  REQUIRE(admin(c, "POST", "/api/v1/users", {{"name", "alice"}, {"password", "alice-password"}}).status == 201);
  REQUIRE(admin(c, "POST", "/api/v1/repositories", {{"name", "admin/pub"}, {"public", true}}).status == 201);
  pushImage(c, token(c, "alice", "alice-password", "alice/app"), "alice/app", "v1", "alice's layer");
  std::string admin_tok = token(c, "admin", kAdminPassword, "admin/secret");
  pushImage(c, admin_tok, "admin/secret", "v1", "secret layer");
  pushImage(c, token(c, "admin", kAdminPassword, "admin/pub"), "admin/pub", "v1", "public layer");
  REQUIRE(waitFor([&] { return reposOf(adminEvents(c)).size() == 3; }));

  json mine = events(c, "alice", "alice-password");
  CHECK(reposOf(mine) == std::set<std::string>{"alice/app", "admin/pub"});
  CHECK(events(c, "alice", "alice-password", "repository=admin/secret").empty());
  CHECK(reposOf(adminEvents(c)) == std::set<std::string>{"alice/app", "admin/secret", "admin/pub"});

  // A grant makes the private repository's events visible.
  REQUIRE(admin(c, "PUT", "/api/v1/repositories/admin/secret/permissions/users/alice", {{"role", "read"}}).status == 200);
  CHECK(reposOf(events(c, "alice", "alice-password")) ==
        std::set<std::string>{"alice/app", "admin/pub", "admin/secret"});

  // The live feed applies the same rule.
  REQUIRE(admin(c, "DELETE", "/api/v1/repositories/admin/secret/permissions/users/alice").status == 200);
  SseClient feed(core.port(), "/api/v1/events/stream?since=0",
                 {{"Authorization", basicAuthorization("alice", "alice-password")}});
  std::set<std::string> fed;
  REQUIRE(feed.readUntil([&] {
    fed.clear();
    for (const auto& e : feed.events()) fed.insert(e.data["repository"].get<std::string>());
    return fed.count("alice/app") && fed.count("admin/pub");
  }));
  CHECK(fed.count("admin/secret") == 0);
}

TEST_CASE("events: the live feed delivers new events and resumes from Last-Event-ID without loss or duplicates",
          "[events]") {
  CoreServer core = authCore();
  HttpClient c("127.0.0.1", core.port());
  std::string tok = token(c, "admin", kAdminPassword, "admin/app");
  pushImage(c, tok, "admin/app", "v0", "before the feed");
  uint64_t start = 0;
  REQUIRE(waitFor([&] {
    start = json::parse(admin(c, "GET", "/api/v1/events?limit=1").body)["last_seq"].get<uint64_t>();
    return start == 4;
  }));
  HeaderList auth = {{"Authorization", basicAuthorization("admin", kAdminPassword)}};

  // Without since, the feed starts now: the four earlier events are not replayed.
  SseClient a(core.port(), "/api/v1/events/stream", auth);
  REQUIRE(a.readUntil([&] { return a.sawRetryHint(); }));
  CHECK(a.status() == 200);
  CHECK(a.headers().find("text/event-stream") != std::string::npos);
  pushImage(c, tok, "admin/app", "v1", "first live image");
  REQUIRE(a.readUntil([&] { return !a.events().empty(); }));
  std::vector<uint64_t> seen;
  for (const auto& e : a.events()) {
    seen.push_back(e.id);
    CHECK(e.type == e.data["type"]);
    CHECK(e.data["seq"] == e.id);
  }
  CHECK(seen.front() == start + 1);
  a.close();  // the client goes away mid-stream

  pushImage(c, tok, "admin/app", "v2", "while disconnected");
  HeaderList resume = auth;
  resume.push_back({"Last-Event-ID", std::to_string(seen.back())});
  SseClient b(core.port(), "/api/v1/events/stream?since=1", resume);  // Last-Event-ID wins over since
  REQUIRE(b.readUntil([&] { return !b.events().empty() && b.events().back().id >= start + 8; }));
  // And it stays live after catching up.
  pushImage(c, tok, "admin/app", "v3", "after resuming");
  REQUIRE(b.readUntil([&] { return b.events().back().id >= start + 12; }));
  for (const auto& e : b.events()) seen.push_back(e.id);
  std::vector<uint64_t> expected;
  for (uint64_t s = start + 1; s <= start + 12; ++s) expected.push_back(s);
  CHECK(seen == expected);

  // A bad Last-Event-ID is refused, not guessed at.
  SseClient bad(core.port(), "/api/v1/events/stream", {{"Authorization", basicAuthorization("admin", kAdminPassword)},
                                                       {"Last-Event-ID", "abc"}});
  REQUIRE(bad.readUntil([&] { return bad.status() != 0; }));
  CHECK(bad.status() == 400);

  // SIGTERM ends open feeds instead of waiting out the shutdown grace period.
  int64_t t0 = monotonicMillis();
  CHECK(core.terminate() == 0);
  CHECK(monotonicMillis() - t0 < 10'000);
}

TEST_CASE("webhooks: a signed envelope reaches a local receiver; a failure is retried; both are logged",
          "[events][webhooks]") {
  CoreServer core = authCore({"--webhook-allow-private", "true", "--webhook-backoff", "200ms"});
  HttpClient c("127.0.0.1", core.port());
  Receiver rx({500});
  auto created = admin(c, "POST", "/api/v1/webhooks",
                       {{"scope", "admin/*"},
                        {"url", rx.url("/hook?source=wharf")},
                        {"events", {"manifest.push", "tag.*"}},
                        {"secret", "topsecret"}});
  INFO(created.body);
  REQUIRE(created.status == 201);
  json hook = json::parse(created.body);
  std::string id = hook["id"];
  CHECK(hook["has_secret"] == true);
  CHECK(!hook.contains("secret"));
  CHECK(created.body.find("topsecret") == std::string::npos);
  CHECK(hook["events"] == json({"manifest.push", "tag.*"}));

  std::string tok = token(c, "admin", kAdminPassword, "admin/app");
  std::string digest = pushImage(c, tok, "admin/app", "v1", "hooked layer");
  REQUIRE(waitFor([&] { return rx.received().size() >= 2; }, 20000));
  auto got = rx.received();
  REQUIRE(got.size() == 2);
  for (const auto& g : got) {
    CHECK(g.target == "/hook?source=wharf");
    CHECK(g.headers.at("content-type") == "application/vnd.docker.distribution.events.v1+json");
    CHECK(g.headers.at("x-wharf-signature") == "sha256=" + hmacSha256Hex("topsecret", g.body));
    CHECK(g.headers.at("x-wharf-hook") == id);
  }
  CHECK(got[0].body == got[1].body);
  CHECK(got[0].headers.at("x-wharf-delivery") == got[1].headers.at("x-wharf-delivery"));
  json env = json::parse(got[1].body);
  REQUIRE(env["events"].size() == 2);  // blob pushes are not subscribed
  for (const auto& e : env["events"]) {
    CHECK(e["action"] == "push");
    CHECK(e["target"]["repository"] == "admin/app");
    CHECK(e["target"]["digest"] == digest);
    CHECK(e["target"]["tag"] == "v1");
    CHECK(e["target"]["mediaType"] == kOciManifest);
    CHECK(e["actor"]["name"] == "admin");
    CHECK(e["request"]["method"] == "PUT");
    CHECK(e["source"].contains("instanceID"));
  }
  CHECK(env["events"][0]["wharf"]["type"] == "manifest.push");
  CHECK(env["events"][1]["wharf"]["type"] == "tag.push");

  json log;
  REQUIRE(waitFor([&] {
    log = json::parse(admin(c, "GET", "/api/v1/webhooks/" + id + "/deliveries").body)["deliveries"];
    return log.size() == 2;
  }));
  CHECK(log[0]["outcome"] == "delivered");
  CHECK(log[0]["attempt"] == 2);
  CHECK(log[0]["status"] == 200);
  CHECK(log[1]["outcome"] == "retrying");
  CHECK(log[1]["attempt"] == 1);
  CHECK(log[1]["status"] == 500);
  CHECK(log[1]["error"] == "HTTP 500");
  CHECK(log[0]["delivery"] == got[0].headers.at("x-wharf-delivery"));
  CHECK(log[0]["events"] == 2);

  // A test event goes to the stored URL, signed with the stored secret.
  auto test = admin(c, "POST", "/api/v1/webhooks/" + id + "/test");
  INFO(test.body);
  REQUIRE(test.status == 200);
  CHECK(json::parse(test.body)["outcome"] == "delivered");
  got = rx.received();
  REQUIRE(got.size() == 3);
  CHECK(json::parse(got[2].body)["events"][0]["wharf"]["type"] == "webhook.test");
  CHECK(got[2].headers.at("x-wharf-signature") == "sha256=" + hmacSha256Hex("topsecret", got[2].body));

  // A new URL without a word about the secret is refused: the stored secret never
  // follows a URL it was not given with.
  auto moved = admin(c, "PATCH", "/api/v1/webhooks/" + id, {{"url", rx.url("/elsewhere")}});
  CHECK(moved.status == 400);
  CHECK(errorMessage(moved).find("secret") != std::string::npos);
  CHECK(json::parse(admin(c, "GET", "/api/v1/webhooks/" + id).body)["url"] == rx.url("/hook?source=wharf"));
  moved = admin(c, "PATCH", "/api/v1/webhooks/" + id, {{"url", rx.url("/second")}, {"secret", "second-secret"}});
  REQUIRE(moved.status == 200);
  CHECK(json::parse(moved.body)["has_secret"] == true);
  REQUIRE(admin(c, "POST", "/api/v1/webhooks/" + id + "/test").status == 200);
  got = rx.received();
  REQUIRE(got.size() == 4);
  CHECK(got[3].target == "/second");
  CHECK(got[3].headers.at("x-wharf-signature") == "sha256=" + hmacSha256Hex("second-secret", got[3].body));
  moved = admin(c, "PATCH", "/api/v1/webhooks/" + id, {{"url", rx.url("/third")}, {"secret", ""}});
  REQUIRE(moved.status == 200);
  CHECK(json::parse(moved.body)["has_secret"] == false);
  REQUIRE(admin(c, "POST", "/api/v1/webhooks/" + id + "/test").status == 200);
  got = rx.received();
  REQUIRE(got.size() == 5);
  CHECK(got[4].target == "/third");
  CHECK(got[4].headers.count("x-wharf-signature") == 0);
  // Without a secret, the URL may change freely.
  CHECK(admin(c, "PATCH", "/api/v1/webhooks/" + id, {{"url", rx.url("/fourth")}}).status == 200);

  // wharfctl over the same API.
  TempDir home;
  std::string cfg = home / "wharfctl.json";
  auto ctl = [&](const std::string& args) { return shell(wharfctlBinary() + " --config " + cfg + " " + args + " 2>&1"); };
  REQUIRE(shell(std::string("echo ") + kAdminPassword + " | " + wharfctlBinary() + " --config " + cfg + " login " +
                core.url() + " -u admin --password-stdin")
              .exit_code == 0);
  CHECK(ctl("webhook --help").output.find("deliveries ID") != std::string::npos);
  CHECK(ctl("events --help").output.find("--follow") != std::string::npos);
  auto r = ctl("webhook ls");
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK(r.output.find(id) != std::string::npos);
  r = ctl("webhook deliveries " + id);
  CHECK(r.output.find("delivered") != std::string::npos);
  CHECK(r.output.find("retrying") != std::string::npos);
  r = ctl("webhook test " + id);
  CHECK(r.exit_code == 0);
  CHECK(r.output.find("delivered") != std::string::npos);
  r = ctl("events --type tag.push");
  CHECK(r.exit_code == 0);
  CHECK(r.output.find("tag.push") != std::string::npos);
  CHECK(r.output.find("admin/app") != std::string::npos);
  CHECK(r.output.find("blob.push") == std::string::npos);
  // -f never ends by itself: bounded by timeout, it has printed the events after --since.
  r = shell("timeout 3 " + wharfctlBinary() + " --config " + cfg + " events -f --since 0 --type manifest.push 2>/dev/null");
  CHECK(r.exit_code == 124);
  CHECK(r.output.find(digest) != std::string::npos);
  std::string secret_file = home / "secret";
  REQUIRE(shell("printf 'ctl-secret\\n' > " + secret_file).exit_code == 0);
  r = ctl("--json webhook add --scope admin/app --url " + rx.url("/ctl") + " --events 'manifest.*,tag.move' --secret-file " +
          secret_file);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  json ctl_hook = json::parse(r.output);
  CHECK(ctl_hook["has_secret"] == true);
  CHECK(ctl_hook["events"] == json({"manifest.*", "tag.move"}));
  REQUIRE(ctl("webhook test " + ctl_hook["id"].get<std::string>()).exit_code == 0);
  got = rx.received();
  CHECK(got.back().target == "/ctl");
  CHECK(got.back().headers.at("x-wharf-signature") == "sha256=" + hmacSha256Hex("ctl-secret", got.back().body));
  CHECK(ctl("webhook rm " + ctl_hook["id"].get<std::string>()).exit_code == 0);

  // Removal.
  CHECK(admin(c, "DELETE", "/api/v1/webhooks/" + id).status == 204);
  CHECK(admin(c, "GET", "/api/v1/webhooks/" + id).status == 404);
  CHECK(admin(c, "GET", "/api/v1/webhooks/" + id + "/deliveries").status == 404);
  // The secret never appears in the core's log.
  CHECK(core.log().find("topsecret") == std::string::npos);
  CHECK(core.log().find("second-secret") == std::string::npos);
}

TEST_CASE("webhooks on PostgreSQL: a hook registered on one replica sees pushes on either, each event delivered once",
          "[events][webhooks][pg][scale-out]") {
  if (!PostgresServer::available()) {
    WARN("PostgreSQL is not installed: skipped");
    return;
  }
  std::string db = PostgresServer::shared().freshDatabase();
  TempDir keys;
  REQUIRE(writeFileDurable(keys / "sealing.key", randomBytes(32), 0600).isOk());  // the replicas' shared key
  std::vector<std::string> shared = {"--metadata", db, "--trust-key-file", keys / "sealing.key",
                                     "--webhook-allow-private", "true"};
  CoreServer a = authCore(shared);
  CoreServer b = authCore(shared);
  HttpClient ca("127.0.0.1", a.port()), cb("127.0.0.1", b.port());
  // A push before the hook exists: the hook starts after it.
  pushImage(cb, token(cb, "admin", kAdminPassword, "admin/app"), "admin/app", "before", "earlier layer");
  Receiver rx({});
  auto created = admin(ca, "POST", "/api/v1/webhooks",
                       {{"scope", "admin/*"}, {"url", rx.url("/hook")}, {"events", {"manifest.push"}}, {"secret", "s"}});
  INFO(created.body);
  REQUIRE(created.status == 201);
  std::string id = json::parse(created.body)["id"];
  auto listed = json::parse(admin(cb, "GET", "/api/v1/webhooks").body);
  REQUIRE(listed["webhooks"].size() == 1);
  CHECK(listed["webhooks"][0]["id"] == id);

  // Three pushes through each replica: six manifest pushes, each delivered once.
  for (int i = 0; i < 6; ++i) {
    HttpClient& via = i % 2 == 0 ? ca : cb;
    pushImage(via, token(via, "admin", kAdminPassword, "admin/app"), "admin/app", "v" + std::to_string(i),
              "layer " + std::to_string(i));
  }
  std::multiset<uint64_t> seqs;
  auto count = [&] {
    seqs.clear();
    for (const auto& g : rx.received()) {
      json env = json::parse(g.body);
      for (const auto& e : env["events"]) seqs.insert(e["wharf"]["seq"].get<uint64_t>());
    }
    return seqs.size();
  };
  REQUIRE(waitFor([&] { return count() >= 6; }, 20000));
  // One more after those six were delivered: it arrives alone (a second replica
  // delivering too would have doubled the six by then).
  pushImage(cb, token(cb, "admin", kAdminPassword, "admin/app"), "admin/app", "last", "last layer");
  REQUIRE(waitFor([&] { return count() >= 7; }, 20000));
  CHECK(count() == 7);
  CHECK(std::set<uint64_t>(seqs.begin(), seqs.end()).size() == 7);
  for (const auto& g : rx.received()) CHECK(g.headers.at("x-wharf-signature") == "sha256=" + hmacSha256Hex("s", g.body));
  // The delivery log is the cluster's (each record is written once its POST was answered).
  json log;
  CHECK(waitFor([&] {
    log = json::parse(admin(cb, "GET", "/api/v1/webhooks/" + id + "/deliveries").body)["deliveries"];
    return log.size() == rx.received().size();
  }));
  for (const auto& d : log) CHECK(d["outcome"] == "delivered");
}

TEST_CASE("webhooks: loopback, link-local and private targets are refused unless allowed; who manages hooks",
          "[events][webhooks]") {
  CoreServer core = authCore();
  HttpClient c("127.0.0.1", core.port());
  const std::vector<std::pair<std::string, std::string>> refused = {
      {"http://127.0.0.1:9/hook", "loopback"},
      {"http://localhost/hook", "loopback"},
      {"http://[::1]:8080/", "loopback"},
      {"http://169.254.169.254/latest/meta-data/", "link-local"},
      {"http://10.1.2.3/", "private"},
      {"http://192.168.0.10/", "private"},
      {"https://[fd00::1]/", "private"},
      {"http://0.0.0.0/", "unspecified"},
  };
  for (const auto& [url, why] : refused) {
    INFO(url);
    auto r = admin(c, "POST", "/api/v1/webhooks", {{"scope", "admin/*"}, {"url", url}, {"events", {"*"}}});
    CHECK(r.status == 400);
    CHECK(errorMessage(r).find(why) != std::string::npos);
    CHECK(errorMessage(r).find("webhook_allow_private") != std::string::npos);
  }
  auto bad = [&](const json& body, const std::string& needle) {
    auto r = admin(c, "POST", "/api/v1/webhooks", body);
    INFO(body.dump() + " -> " + r.body);
    CHECK(r.status == 400);
    CHECK(errorMessage(r).find(needle) != std::string::npos);
  };
  const std::string pub = "http://93.184.216.34/hook";  // a public address: created, never contacted here
  bad({{"scope", "admin/*"}, {"url", "ftp://93.184.216.34/"}, {"events", {"*"}}}, "http");
  bad({{"scope", "admin/*"}, {"url", "http://user:pw@93.184.216.34/"}, {"events", {"*"}}}, "user");
  bad({{"scope", "admin/*"}, {"url", pub}, {"events", {"manifest.bogus"}}}, "unknown event type");
  bad({{"scope", "admin/*"}, {"url", pub}, {"events", json::array()}}, "events");
  bad({{"scope", "Admin/*"}, {"url", pub}, {"events", {"*"}}}, "scope");
  bad({{"scope", "admin/*"}, {"url", pub}, {"events", {"*"}}, {"colour", "red"}}, "colour");
  bad({{"scope", "admin/*"}, {"url", pub}, {"events", {"*"}}, {"secret", 5}}, "secret");

  // Who manages what.
  REQUIRE(admin(c, "POST", "/api/v1/users", {{"name", "alice"}, {"password", "alice-password"}}).status == 201);
  auto as_alice = [&](const std::string& method, const std::string& path, const json& body = nullptr) {
    return call(c, method, path, "alice", "alice-password", body);
  };
  CHECK(as_alice("POST", "/api/v1/webhooks", {{"scope", "admin/*"}, {"url", pub}, {"events", {"*"}}}).status == 403);
  CHECK(as_alice("POST", "/api/v1/webhooks", {{"scope", "*"}, {"url", pub}, {"events", {"*"}}}).status == 403);
  auto mine = as_alice("POST", "/api/v1/webhooks", {{"scope", "alice/*"}, {"url", pub}, {"events", {"*"}}});
  INFO(mine.body);
  REQUIRE(mine.status == 201);
  std::string alice_hook = json::parse(mine.body)["id"];
  auto theirs = admin(c, "POST", "/api/v1/webhooks", {{"scope", "*"}, {"url", pub}, {"events", {"tag.move"}}});
  REQUIRE(theirs.status == 201);
  std::string admin_hook = json::parse(theirs.body)["id"];
  auto listed = json::parse(as_alice("GET", "/api/v1/webhooks").body)["webhooks"];
  REQUIRE(listed.size() == 1);
  CHECK(listed[0]["id"] == alice_hook);
  CHECK(json::parse(admin(c, "GET", "/api/v1/webhooks").body)["webhooks"].size() == 2);
  CHECK(as_alice("GET", "/api/v1/webhooks/" + admin_hook).status == 404);
  CHECK(as_alice("DELETE", "/api/v1/webhooks/" + admin_hook).status == 404);
  // Changing the URL to a refused target is refused too.
  auto patched = as_alice("PATCH", "/api/v1/webhooks/" + alice_hook, {{"url", "http://127.0.0.1/"}});
  CHECK(patched.status == 400);
  CHECK(errorMessage(patched).find("loopback") != std::string::npos);
  CHECK(as_alice("PATCH", "/api/v1/webhooks/" + alice_hook, {{"enabled", false}}).status == 200);
  CHECK(as_alice("DELETE", "/api/v1/webhooks/" + alice_hook).status == 204);
  CHECK(c.request("GET", "/api/v1/webhooks")->status == 401);
}

}  // namespace events_test
