// Webhooks: target classification (SSRF), URLs, the signature, the envelope, the
// backoff schedule, and the dispatcher's retries on a fake clock with a fake sender.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/events/event_log.h"
#include "core/events/event_store.h"
#include "core/events/webhooks.h"
#include "shared/base/clock.h"
#include "shared/tls/crypto.h"
#include "tests/support/postgres.h"
#include "tests/support/temp_dir.h"

// Each file's own names: the test binaries are unity builds.
namespace webhooks_test {

using namespace wharf;
using nlohmann::json;
using wharf::test::TempDir;

namespace {

std::shared_ptr<LmdbEnv> openEnv(const std::string& path) {
  LmdbEnv::Options o;
  o.map_size = 64ull << 20;
  o.durable = false;
  auto env = LmdbEnv::open(path, o);
  REQUIRE(env.isOk());
  return std::shared_ptr<LmdbEnv>(std::move(env).value());
}

Event push(const std::string& repo, const std::string& digest, const std::string& type = event_type::kManifestPush) {
  Event e;
  e.type = type;
  e.repository = repo;
  e.actor = "alice";
  e.target.digest = digest;
  e.target.media_type = "application/vnd.oci.image.manifest.v1+json";
  e.target.size = 42;
  e.target.tag = "v1";
  e.addr = "192.0.2.7";
  e.method = "PUT";
  return e;
}

struct Sent {
  std::string url, body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string header(const std::string& name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) return v;
    }
    return "";
  }
};

// A dispatcher on a fake clock, delivering inline (step()), to a sender that answers
// from a script.
struct Rig {
  TempDir dir;
  FakeClock clock{1'700'000'000'000};
  std::shared_ptr<LmdbEnv> env = openEnv(dir / "events.lmdb");
  std::unique_ptr<EventLog> log;
  std::unique_ptr<WebhookStore> store;
  std::unique_ptr<WebhookDispatcher> dispatcher;
  std::vector<Sent> sent;
  std::vector<int> answers;  // statuses to answer, in order; then 200
  Rig(DispatcherOptions o = {}) {
    auto es = openLmdbEventStore(env);
    REQUIRE(es.isOk());
    auto l = EventLog::open(std::move(es).value(), clock, {});
    REQUIRE(l.isOk());
    log = std::move(l).value();
    auto s = openLmdbWebhookStore(env);
    REQUIRE(s.isOk());
    store = std::move(s).value();
    o.threads = 0;
    dispatcher = std::make_unique<WebhookDispatcher>(
        *store, *log, clock, o,
        [this](const std::string& url, const std::string& body,
               const std::vector<std::pair<std::string, std::string>>& headers) {
          sent.push_back({url, body, headers});
          DeliveryResult r;
          r.status = answers.empty() ? 200 : answers.front();
          if (!answers.empty()) answers.erase(answers.begin());
          if (!r.ok()) r.error = "HTTP " + std::to_string(r.status);
          return r;
        },
        EnvelopeSource{"core.example", log->instanceId(), "https://registry.example.com"});
  }
  Webhook hook(const std::string& scope, std::vector<std::string> events, const std::string& secret = "s3cret") {
    Webhook h;
    h.id = "hook-" + std::to_string(store->list().size() + 1);
    h.scope = scope;
    h.url = "https://hooks.example.com/in";
    h.events = std::move(events);
    h.secret = secret;
    h.created_by = "admin";
    REQUIRE(store->setCursor(h.id, log->lastSeq()).isOk());
    REQUIRE(store->put(h).isOk());
    return h;
  }
};

}  // namespace

TEST_CASE("webhooks: address classification refuses loopback, link-local, private and the like", "[webhooks]") {
  const std::vector<std::pair<std::string, const char*>> table = {
      {"127.0.0.1", "loopback"},       {"127.255.0.9", "loopback"},     {"0.0.0.0", "unspecified"},
      {"10.1.2.3", "private"},         {"172.16.0.1", "private"},       {"172.31.255.255", "private"},
      {"192.168.1.1", "private"},      {"169.254.169.254", "link-local"}, {"100.64.0.1", "shared"},
      {"224.0.0.1", "multicast"},      {"255.255.255.255", "broadcast"}, {"240.0.0.1", "reserved"},
      {"192.0.2.1", "reserved"},       {"::1", "loopback"},             {"::", "unspecified"},
      {"fe80::1", "link-local"},       {"fc00::1", "private"},          {"fd12:3456::1", "private"},
      {"ff02::1", "multicast"},        {"::ffff:127.0.0.1", "loopback"}, {"::ffff:10.0.0.1", "private"},
      {"::ffff:169.254.169.254", "link-local"}, {"64:ff9b::a00:1", "private"}, {"2001:db8::1", "reserved"},
      {"not-an-ip", "invalid"},
  };
  for (const auto& [addr, why] : table) {
    INFO(addr);
    const char* got = refusedAddressReason(addr);
    REQUIRE(got != nullptr);
    CHECK(std::string(got) == why);
  }
  for (const char* ok : {"8.8.8.8", "1.1.1.1", "172.15.255.255", "172.32.0.1", "192.169.0.1", "100.128.0.1",
                         "2606:4700:4700::1111", "::ffff:8.8.8.8", "11.0.0.1"}) {
    INFO(ok);
    CHECK(refusedAddressReason(ok) == nullptr);
  }
}

TEST_CASE("webhooks: URLs", "[webhooks]") {
  auto u = parseHookUrl("https://Hooks.Example.com:8443/path/x?token=abc");
  REQUIRE(u.isOk());
  CHECK(u->tls);
  CHECK(u->host == "hooks.example.com");
  CHECK(u->port == 8443);
  CHECK(u->target == "/path/x?token=abc");
  u = parseHookUrl("http://[::1]:9000");
  REQUIRE(u.isOk());
  CHECK(u->host == "::1");
  CHECK(u->target == "/");
  CHECK(u->port == 9000);
  u = parseHookUrl("http://example.com?x=1");
  REQUIRE(u.isOk());
  CHECK(u->port == 80);
  CHECK(u->target == "/?x=1");
  for (const char* bad : {"ftp://example.com/", "example.com", "http://user:pw@example.com/", "http://example.com/#frag",
                          "http://", "http://exa mple.com/", "http://example.com:0/", "http://example.com:99999/",
                          "http://[::1/", "http://bad_host!/"}) {
    INFO(bad);
    CHECK(parseHookUrl(bad).status().code() == Code::kInvalidArgument);
  }
}

TEST_CASE("webhooks: targets are resolved and checked; allow_private lets private ones through", "[webhooks]") {
  for (const char* url : {"http://127.0.0.1:9/", "http://169.254.169.254/latest/meta-data", "http://10.0.0.5/",
                          "http://[::1]/", "http://localhost/"}) {
    INFO(url);
    auto u = parseHookUrl(url);
    REQUIRE(u.isOk());
    auto r = resolveHookTarget(*u, false);
    REQUIRE(!r.isOk());
    CHECK(r.status().code() == Code::kInvalidArgument);
    CHECK(r.status().message().find("refused") != std::string::npos);
  }
  auto u = parseHookUrl("http://169.254.169.254/");
  CHECK(resolveHookTarget(*u, false).status().message().find("link-local") != std::string::npos);
  CHECK(resolveHookTarget(*u, true).isOk());
  // The sender checks again at delivery: a refused target is never connected to.
  DeliveryResult d = httpPostHook("http://127.0.0.1:9/", "{}", {}, false, 1000);
  CHECK(d.status == 0);
  CHECK(d.error.find("loopback") != std::string::npos);
}

TEST_CASE("webhooks: HMAC-SHA256 (RFC 4231 test vectors)", "[webhooks]") {
  CHECK(hmacSha256Hex("Jefe", "what do ya want for nothing?") ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  CHECK(hmacSha256Hex(std::string(20, '\x0b'), "Hi There") ==
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST_CASE("webhooks: the envelope is distribution's notification shape", "[webhooks]") {
  Event e = push("team/app", "sha256:abc");
  e.seq = 17;
  e.ts_ms = 1'700'000'000'000;
  Event b = push("team/app", "sha256:def", event_type::kBlobPush);
  b.seq = 18;
  Event d = push("team/app", "sha256:abc", event_type::kManifestDelete);
  Event p = push("team/app", "sha256:abc", event_type::kManifestPull);
  p.count = 3;
  Event m = push("team/app", "sha256:abc", event_type::kTagMove);
  m.target.previous_digest = "sha256:old";
  json env = webhookEnvelope({e, b, d, p, m}, EnvelopeSource{"core1", "inst-1", "https://reg.example"});
  REQUIRE(env["events"].size() == 5);
  const json& x = env["events"][0];
  CHECK(x["id"] == "inst-1-17");
  CHECK(x["timestamp"] == "2023-11-14T22:13:20Z");
  CHECK(x["action"] == "push");
  CHECK(x["target"]["mediaType"] == "application/vnd.oci.image.manifest.v1+json");
  CHECK(x["target"]["digest"] == "sha256:abc");
  CHECK(x["target"]["size"] == 42);
  CHECK(x["target"]["length"] == 42);
  CHECK(x["target"]["repository"] == "team/app");
  CHECK(x["target"]["tag"] == "v1");
  CHECK(x["target"]["url"] == "https://reg.example/v2/team/app/manifests/sha256:abc");
  CHECK(x["request"]["addr"] == "192.0.2.7");
  CHECK(x["request"]["method"] == "PUT");
  CHECK(x["actor"]["name"] == "alice");
  CHECK(x["source"]["addr"] == "core1");
  CHECK(x["source"]["instanceID"] == "inst-1");
  CHECK(x["wharf"]["seq"] == 17);
  CHECK(x["wharf"]["type"] == "manifest.push");
  CHECK(env["events"][1]["target"]["url"] == "https://reg.example/v2/team/app/blobs/sha256:def");
  CHECK(env["events"][2]["action"] == "delete");
  CHECK(env["events"][3]["action"] == "pull");
  CHECK(env["events"][3]["wharf"]["count"] == 3);
  CHECK(env["events"][4]["action"] == "push");
  CHECK(env["events"][4]["wharf"]["previousDigest"] == "sha256:old");
}

TEST_CASE("webhooks: backoff doubles from the base up to the cap", "[webhooks]") {
  std::vector<int64_t> got;
  for (int a = 1; a <= 12; ++a) got.push_back(backoffDelayMs(a, 1000, 300'000));
  CHECK(got == std::vector<int64_t>{1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000, 300000, 300000,
                                    300000});
  CHECK(backoffDelayMs(1000, 1000, 300'000) == 300'000);  // no overflow
}

TEST_CASE("webhooks: a failed delivery is retried after the backoff, signed the same, and logged", "[webhooks]") {
  Rig rig;
  Webhook h = rig.hook("team/*", {"manifest.push"});
  rig.log->append(push("team/app", "sha256:1"));
  rig.log->append(push("other/app", "sha256:2"));                       // out of scope
  rig.log->append(push("team/app", "sha256:3", event_type::kBlobPush));  // not subscribed
  rig.log->append(push("team/lib", "sha256:4"));
  rig.log->flush();
  rig.answers = {500};

  rig.dispatcher->step();
  REQUIRE(rig.sent.size() == 1);
  json body = json::parse(rig.sent[0].body);
  REQUIRE(body["events"].size() == 2);
  CHECK(body["events"][0]["target"]["digest"] == "sha256:1");
  CHECK(body["events"][1]["target"]["digest"] == "sha256:4");
  CHECK(rig.sent[0].url == "https://hooks.example.com/in");
  CHECK(rig.sent[0].header("Content-Type") == kEnvelopeMediaType);
  CHECK(rig.sent[0].header("X-Wharf-Signature") == "sha256=" + hmacSha256Hex("s3cret", rig.sent[0].body));
  std::string delivery = rig.sent[0].header("X-Wharf-Delivery");
  CHECK(!delivery.empty());
  REQUIRE(rig.dispatcher->retryDueMs(h.id));
  CHECK(*rig.dispatcher->retryDueMs(h.id) == rig.clock.nowMillis() + 1000);
  CHECK(rig.store->cursor(h.id) == 0);

  // Not before the backoff.
  rig.dispatcher->step();
  rig.clock.advance(999);
  rig.dispatcher->step();
  CHECK(rig.sent.size() == 1);
  rig.clock.advance(1);
  rig.dispatcher->step();
  REQUIRE(rig.sent.size() == 2);
  CHECK(rig.sent[1].body == rig.sent[0].body);
  CHECK(rig.sent[1].header("X-Wharf-Delivery") == delivery);
  CHECK(rig.store->cursor(h.id) == 4);
  CHECK(!rig.dispatcher->retryDueMs(h.id));

  auto log = rig.store->deliveries(h.id, 10);
  REQUIRE(log.size() == 2);
  CHECK(log[0].outcome == "delivered");
  CHECK(log[0].attempt == 2);
  CHECK(log[0].status == 200);
  CHECK(log[1].outcome == "retrying");
  CHECK(log[1].attempt == 1);
  CHECK(log[1].status == 500);
  CHECK(log[1].error == "HTTP 500");
  CHECK(log[0].delivery == delivery);
  CHECK(log[0].first_seq == 1);
  CHECK(log[0].last_seq == 4);
  CHECK(log[0].events == 2);

  // Nothing new: nothing sent.
  rig.dispatcher->step();
  CHECK(rig.sent.size() == 2);
}

TEST_CASE("webhooks: after max_attempts the batch is marked failed and the hook moves on", "[webhooks]") {
  DispatcherOptions o;
  o.max_attempts = 3;
  o.backoff_base_ms = 100;
  Rig rig(o);
  Webhook h = rig.hook("team/app", {"*"}, /*secret=*/"");
  rig.log->append(push("team/app", "sha256:1"));
  rig.log->flush();
  rig.answers = {503, 503, 503};
  rig.dispatcher->step();
  rig.clock.advance(100);
  rig.dispatcher->step();
  rig.clock.advance(200);
  rig.dispatcher->step();
  REQUIRE(rig.sent.size() == 3);
  CHECK(rig.sent[0].header("X-Wharf-Signature").empty());  // no secret, no signature
  CHECK(rig.store->cursor(h.id) == 1);
  auto log = rig.store->deliveries(h.id, 10);
  REQUIRE(log.size() == 3);
  CHECK(log[0].outcome == "failed");
  CHECK(log[0].attempt == 3);

  rig.log->append(push("team/app", "sha256:2"));
  rig.log->flush();
  rig.dispatcher->step();
  REQUIRE(rig.sent.size() == 4);
  CHECK(json::parse(rig.sent[3].body)["events"][0]["target"]["digest"] == "sha256:2");
  CHECK(rig.store->cursor(h.id) == 2);
}

TEST_CASE("webhooks: disabled hooks wait; removed hooks take their log with them; tests use the stored target",
          "[webhooks]") {
  Rig rig;
  Webhook h = rig.hook("*", {"manifest.*"});
  h.enabled = false;
  REQUIRE(rig.store->put(h).isOk());
  rig.log->append(push("a/b", "sha256:1"));
  rig.log->flush();
  rig.dispatcher->step();
  CHECK(rig.sent.empty());
  h.enabled = true;
  REQUIRE(rig.store->put(h).isOk());
  rig.dispatcher->step();
  CHECK(rig.sent.size() == 1);

  DeliveryRecord t = rig.dispatcher->sendTest(h, "admin");
  REQUIRE(rig.sent.size() == 2);
  CHECK(rig.sent[1].url == h.url);
  CHECK(rig.sent[1].header("X-Wharf-Signature") == "sha256=" + hmacSha256Hex(h.secret, rig.sent[1].body));
  CHECK(json::parse(rig.sent[1].body)["events"][0]["wharf"]["type"] == "webhook.test");
  CHECK(t.outcome == "delivered");
  CHECK(rig.store->deliveries(h.id, 10).size() == 2);

  REQUIRE(rig.store->remove(h.id).isOk());
  CHECK(rig.store->deliveries(h.id, 10).empty());
  CHECK(rig.store->cursor(h.id) == 0);
  CHECK(!rig.store->get(h.id).isOk());
}

TEST_CASE("webhooks: the delivery log keeps the newest per hook", "[webhooks]") {
  TempDir dir;
  auto store = openLmdbWebhookStore(openEnv(dir / "e.lmdb"), 5);
  REQUIRE(store.isOk());
  for (int i = 0; i < 12; ++i) {
    DeliveryRecord r;
    r.hook = i % 2 == 0 ? "a" : "b";
    r.delivery = std::to_string(i);
    r.ts_ms = 1000 + i;
    REQUIRE((*store)->addDelivery(r).isOk());
  }
  auto a = (*store)->deliveries("a", 100);
  REQUIRE(a.size() == 5);
  CHECK(a.front().delivery == "10");
  CHECK(a.back().delivery == "2");
  CHECK((*store)->deliveries("b", 2).size() == 2);
}

TEST_CASE("webhooks on PostgreSQL: a hook registered through one replica is delivered once, by one replica; "
          "when that one stops, another takes over after the lease; the secret is sealed",
          "[webhooks][pg]") {
  if (!wharf::test::PostgresServer::available()) {
    WARN("PostgreSQL is not installed: skipped");
    return;
  }
  std::string url = wharf::test::PostgresServer::shared().freshDatabase();
  const std::string key(32, 'k');
  FakeClock clock{1'700'000'000'000};
  struct Replica {
    std::unique_ptr<EventLog> log;
    std::unique_ptr<WebhookStore> store;
    std::unique_ptr<WebhookDispatcher> dispatcher;
    std::vector<std::string> sent;  // delivered envelopes
  };
  auto open = [&](Replica& r) {
    auto events_db = PgPool::open(url, 2), hooks_db = PgPool::open(url, 2);
    REQUIRE(events_db.isOk());
    REQUIRE(hooks_db.isOk());
    auto es = openPgEventStore(std::shared_ptr<PgPool>(std::move(events_db).value()));
    REQUIRE(es.isOk());
    auto l = EventLog::open(std::move(es).value(), clock, {});
    REQUIRE(l.isOk());
    r.log = std::move(l).value();
    auto s = openPgWebhookStore(std::shared_ptr<PgPool>(std::move(hooks_db).value()), key, 5);
    INFO(s.status().toString());
    REQUIRE(s.isOk());
    r.store = std::move(s).value();
    DispatcherOptions o;
    o.threads = 0;
    o.lease_ms = 2000;
    r.dispatcher = std::make_unique<WebhookDispatcher>(
        *r.store, *r.log, clock, o,
        [&r](const std::string&, const std::string& body, const std::vector<std::pair<std::string, std::string>>&) {
          r.sent.push_back(body);
          DeliveryResult ok;
          ok.status = 200;
          return ok;
        },
        EnvelopeSource{"core", r.log->instanceId(), ""});
  };
  Replica a, b;
  open(a);
  open(b);

  // Registered through a; b sees it, secret included; the row holds no plain secret.
  Webhook h;
  h.id = "hook-1";
  h.scope = "team/*";
  h.url = "https://hooks.example.com/in";
  h.events = {"manifest.push"};
  h.secret = "s3cret-of-the-receiver";
  // Events before the hook: a new hook starts after them (its cursor is set first, as
  // the API does, before the hook is stored).
  a.log->append(push("team/app", "sha256:before"));
  a.log->flush();
  REQUIRE(a.log->lastSeq() > 0);
  REQUIRE(a.store->setCursor(h.id, a.log->lastSeq()).isOk());
  REQUIRE(a.store->put(h).isOk());
  CHECK(b.store->cursor(h.id) == a.log->lastSeq());
  auto seen = b.store->get(h.id);
  REQUIRE(seen.isOk());
  CHECK(seen->secret == "s3cret-of-the-receiver");
  auto pool = PgPool::open(url, 1);
  REQUIRE(pool.isOk());
  auto raw = (*pool)->query("SELECT doc FROM webhooks");
  REQUIRE(raw.isOk());
  REQUIRE(raw->rows() == 1);
  CHECK(std::string(raw->text(0, 0)).find("s3cret") == std::string::npos);
  // Another sealing key cannot read it.
  auto other_db = PgPool::open(url, 1);
  REQUIRE(other_db.isOk());
  auto other = openPgWebhookStore(std::shared_ptr<PgPool>(std::move(other_db).value()), std::string(32, 'x'));
  REQUIRE(other.isOk());
  CHECK((*other)->get(h.id).status().code() == Code::kCorruption);

  // Pushes through either replica; both dispatchers step: each batch goes out once.
  for (int i = 0; i < 6; ++i) {
    Replica& via = i % 2 == 0 ? a : b;
    via.log->append(push("team/app", "sha256:" + std::to_string(i)));
    via.log->flush();
    a.dispatcher->step();
    b.dispatcher->step();
  }
  CHECK(a.sent.size() + b.sent.size() == 6);
  for (const auto& body : a.sent) CHECK(body.find("sha256:before") == std::string::npos);
  for (const auto& body : b.sent) CHECK(body.find("sha256:before") == std::string::npos);
  CHECK((a.sent.empty() || b.sent.empty()));  // one replica holds the lease
  Replica& owner = a.sent.empty() ? b : a;
  Replica& standby = a.sent.empty() ? a : b;
  CHECK(a.store->cursor(h.id) == a.log->lastSeq());
  CHECK(b.store->deliveries(h.id, 10).size() == 5);  // the log is shared, and capped

  // The owner stops stepping; within the lease nothing moves, after it the standby
  // delivers what came since.
  owner.log->append(push("team/app", "sha256:after"));
  owner.log->flush();
  standby.dispatcher->step();
  CHECK(standby.sent.empty());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (standby.sent.empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the lease runs on the database's clock
    standby.dispatcher->step();
  }
  REQUIRE(standby.sent.size() == 1);
  CHECK(standby.sent[0].find("sha256:after") != std::string::npos);
  CHECK(owner.sent.size() + standby.sent.size() == 7);
  // The cursor never moves back (a late write from a replica that lost the lease).
  REQUIRE(owner.store->setCursor(h.id, 1).isOk());
  CHECK(owner.store->cursor(h.id) == owner.log->lastSeq());
}

TEST_CASE("webhooks: scopes", "[webhooks]") {
  CHECK(validateHookScope("*").isOk());
  CHECK(validateHookScope("team/*").isOk());
  CHECK(validateHookScope("team/app").isOk());
  CHECK(validateHookScope("team/sub/*").isOk());
  CHECK(!validateHookScope("Team/App").isOk());
  CHECK(!validateHookScope("team/**").isOk());
  CHECK(!validateHookScope("").isOk());
  Webhook h;
  h.scope = "team/*";
  h.events = {"tag.*"};
  Event e = push("team/app", "sha256:1", event_type::kTagMove);
  CHECK(h.covers(e));
  e.repository = "teamx/app";
  CHECK(!h.covers(e));
  e.repository = "team/app";
  e.type = event_type::kManifestPush;
  CHECK(!h.covers(e));
  CHECK(h.toJson().contains("has_secret"));
  CHECK(!h.toJson().contains("secret"));
}

}  // namespace webhooks_test
