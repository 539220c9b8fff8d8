// Edges in the identity store (records, the secret index, single use, revocation,
// persistence), their validation rules, and the AuthService flow around them (join
// tokens, expiry on an injected clock, credentials, last-seen writes, rate limits).
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/auth/auth_service.h"
#include "core/auth/identity_store.h"
#include "core/auth/key_ring.h"
#include "core/auth/lmdb_identity_store.h"
#include "core/metadata/lmdb_metadata_store.h"
#include "shared/base/clock.h"
#include "shared/base/fs.h"
#include "shared/config/config.h"
#include "shared/tls/crypto.h"
#include "tests/support/temp_dir.h"

// Each file's own names: the test binaries are unity builds.
namespace edges_test_unit {

using namespace wharf;
using nlohmann::json;
using wharf::test::TempDir;

namespace {

struct Store {
  std::shared_ptr<LmdbEnv> env;
  std::unique_ptr<IdentityStore> ids;

  explicit Store(const std::string& path) { open(path); }
  void open(const std::string& path) {
    LmdbMetadataOptions o{};
    o.map_size = 64ull << 20;
    auto e = openMetadataEnv(path, o);
    INFO(e.status().toString());
    REQUIRE(e.isOk());
    env = *e;
    auto s = openLmdbIdentityStore(env);
    INFO(s.status().toString());
    REQUIRE(s.isOk());
    ids = std::move(s).value();
  }
  void close() {
    ids.reset();
    env.reset();
  }
  IdentityStore* operator->() { return ids.get(); }
};

Edge pending(const std::string& name, const std::string& join_secret, int64_t expires_ms) {
  Edge e;
  e.name = name;
  e.site = "Site " + name;
  e.settings = {{"tag_ttl", "5m"}};
  e.join_hash = sha256Hex(join_secret);
  e.join_expires_ms = expires_ms;
  e.created_by = "admin";
  e.created_ms = 1000;
  return e;
}

struct Fixture {
  TempDir dir;
  FakeClock clock{1'700'000'000'000};
  std::shared_ptr<LmdbEnv> env;
  std::unique_ptr<IdentityStore> ids;
  std::unique_ptr<KeyRing> ring;
  std::unique_ptr<AuthService> auth;

  explicit Fixture(int max_source_failures = 3) {
    LmdbMetadataOptions o{};
    o.map_size = 64ull << 20;
    o.durable = false;
    auto e = openMetadataEnv(dir / "meta", o);
    REQUIRE(e.isOk());
    env = *e;
    auto s = openLmdbIdentityStore(env);
    REQUIRE(s.isOk());
    ids = std::move(s).value();
    REQUIRE(makeDirs(dir / "auth").isOk());
    auto r = KeyRing::open(std::move(openFileDocument(dir / "auth/keys.json")).value(), clock);
    REQUIRE(r.isOk());
    ring = std::move(r).value();
    AuthConfig config;
    config.max_source_failures = max_source_failures;
    config.failure_window_ms = 300'000;
    auth = std::make_unique<AuthService>(config, *ids, *ring, clock);
  }

  AuthService::NewEdge add(const std::string& name, int64_t ttl_ms = AuthService::kJoinTokenTtlMs,
                           const json& settings = json::object()) {
    auto n = auth->createEdge(name, "Site " + name, settings, ttl_ms, "admin");
    INFO(n.status().toString());
    REQUIRE(n.isOk());
    return *n;
  }
};

}  // namespace

TEST_CASE("edges: names follow ^[a-z0-9][a-z0-9-]{0,62}$ and two are reserved", "[auth][edges]") {
  for (const char* good : {"a", "site-a", "0", "edge-01", "a-", "abc---def"}) {
    INFO(good);
    CHECK(validateEdgeName(good).isOk());
  }
  CHECK(validateEdgeName(std::string(63, 'a')).isOk());
  for (const std::string& bad : {std::string(""), std::string("-a"), std::string("Site"), std::string("a_b"),
                                std::string("a.b"), std::string("a/b"), std::string(64, 'a'), std::string("a b"),
                                std::string("register"), std::string("self")}) {
    INFO(bad);
    Status st = validateEdgeName(bad);
    CHECK(st.code() == Code::kNameInvalid);
  }
}

TEST_CASE("edges: settings allow four keys with typed values", "[auth][edges]") {
  CHECK(validateEdgeSettings(json::object()).isOk());
  CHECK(validateEdgeSettings({{"tag_ttl", "60s"}, {"cache_budget", "10GiB"}, {"high_watermark", 90},
                              {"low_watermark", 80}})
            .isOk());
  for (const char* size : {"10GiB", "10gib", "10GB", "10g", "512m", "2TiB", "1048576", "4k", "4KiB"}) {
    INFO(size);
    CHECK(validateEdgeSettings({{"cache_budget", size}}).isOk());
  }
  CHECK(*parseEdgeCacheBudget("10GiB") == (10ll << 30));
  CHECK(*parseEdgeCacheBudget("10GB") == (10ll << 30));
  CHECK(*parseEdgeCacheBudget("512m") == (512ll << 20));
  CHECK(*parseEdgeCacheBudget("7") == 7);
  for (const char* ttl : {"60s", "5m", "1h", "1d", "90"}) {
    INFO(ttl);
    CHECK(validateEdgeSettings({{"tag_ttl", ttl}}).isOk());
  }

  struct Bad {
    json settings;
    std::string key;
  };
  for (const auto& b : std::vector<Bad>{{{{"colour", "blue"}}, "colour"},
                                        {{{"tag_ttl", 60}}, "tag_ttl"},
                                        {{{"tag_ttl", "soon"}}, "tag_ttl"},
                                        {{{"tag_ttl", "5w"}}, "tag_ttl"},
                                        {{{"cache_budget", 1024}}, "cache_budget"},
                                        {{{"cache_budget", "10 GiB"}}, "cache_budget"},
                                        {{{"cache_budget", "10XiB"}}, "cache_budget"},
                                        {{{"cache_budget", "GiB"}}, "cache_budget"},
                                        {{{"cache_budget", "0"}}, "cache_budget"},
                                        {{{"high_watermark", 0}}, "high_watermark"},
                                        {{{"high_watermark", 101}}, "high_watermark"},
                                        {{{"high_watermark", "90"}}, "high_watermark"},
                                        {{{"low_watermark", 50.5}}, "low_watermark"},
                                        {{{"low_watermark", true}}, "low_watermark"},
                                        {{{"high_watermark", 70}, {"low_watermark", 80}}, "low_watermark"},
                                        {{{"high_watermark", 90}}, "high_watermark"},
                                        {{{"low_watermark", 10}}, "low_watermark"}}) {
    INFO(b.settings.dump());
    Status st = validateEdgeSettings(b.settings);
    CHECK(st.code() == Code::kInvalidArgument);
    CHECK(st.message().find(b.key) != std::string::npos);
  }
  // The edge's own pull credential's repositories, and its prefetch policy.
  CHECK(validateEdgeSettings({{"repositories", {"*", "acme/*", "team/app"}}}).isOk());
  CHECK(validateEdgeSettings({{"prefetch", {{"rules", {{{"repository", "acme/*"}, {"tag", "v*"}}}},
                                            {"recent_days", 3}, {"rate", "5m"}, {"window", "20:00-06:00"}}}})
            .isOk());
  for (const auto& b : std::vector<Bad>{{{{"repositories", "acme/*"}}, "repositories"},
                                        {{{"repositories", {"Acme"}}}, "repositories"},
                                        {{{"repositories", {"acme/**"}}}, "repositories"},
                                        {{{"prefetch", {{"rate", "x"}}}}, "prefetch.rate"},
                                        {{{"prefetch", "all"}}, "prefetch"}}) {
    INFO(b.settings.dump());
    Status st = validateEdgeSettings(b.settings);
    CHECK(st.code() == Code::kInvalidArgument);
    CHECK(st.message().find(b.key) != std::string::npos);
  }
  CHECK(validateEdgeSettings(json::array()).code() == Code::kInvalidArgument);
  CHECK(validateEdgeSettings("x").code() == Code::kInvalidArgument);
}

TEST_CASE("edges: cache_budget is kept in the form the edge's parseSize reads", "[auth][edges]") {
  auto canon = [](const std::string& v) {
    return canonicalEdgeSettings({{"cache_budget", v}, {"tag_ttl", "5m"}});
  };
  CHECK(canon("10GiB") == json({{"cache_budget", "10g"}, {"tag_ttl", "5m"}}));
  CHECK(canon("10GB")["cache_budget"] == "10g");
  CHECK(canon("10g")["cache_budget"] == "10g");
  CHECK(canon("1536MiB")["cache_budget"] == "1536m");
  CHECK(canon("2048m")["cache_budget"] == "2g");
  CHECK(canon("3TiB")["cache_budget"] == "3t");
  CHECK(canon("1048576")["cache_budget"] == "1m");
  CHECK(canon("1000")["cache_budget"] == "1000");
  CHECK(canon("4KiB")["cache_budget"] == "4k");
  // Every canonical form reads back as the same number of bytes with parseSize.
  for (const char* v : {"10GiB", "1536MiB", "1000", "4KiB", "3TiB", "7b"}) {
    INFO(v);
    auto bytes = parseEdgeCacheBudget(v);
    REQUIRE(bytes.isOk());
    auto again = parseSize(canon(v)["cache_budget"].get<std::string>());
    REQUIRE(again.isOk());
    CHECK(*again == *bytes);
  }
  CHECK(canonicalEdgeSettings(json::object()) == json::object());
}

TEST_CASE("edges: the store creates, lists, reads, updates and deletes edges", "[auth][edges]") {
  TempDir dir;
  Store s(dir / "meta");
  CHECK(s->edges().empty());
  CHECK(s->edge("site-a").status().code() == Code::kNotFound);
  REQUIRE(s->createEdge(pending("site-b", "jb", 5000)).isOk());
  REQUIRE(s->createEdge(pending("site-a", "ja", 5000)).isOk());
  CHECK(s->createEdge(pending("site-a", "other", 5000)).code() == Code::kConflict);

  auto list = s->edges();
  REQUIRE(list.size() == 2);
  CHECK(list[0].name == "site-a");  // by name
  CHECK(list[1].name == "site-b");
  auto a = s->edge("site-a");
  REQUIRE(a.isOk());
  CHECK(a->site == "Site site-a");
  CHECK(a->settings == json({{"tag_ttl", "5m"}}));
  CHECK(a->join_hash == sha256Hex("ja"));
  CHECK(a->join_expires_ms == 5000);
  CHECK(a->created_by == "admin");
  CHECK_FALSE(a->registered());

  json j = a->toJson();
  CHECK(j["state"] == "pending");
  CHECK(j["registered_at"].is_null());
  CHECK(j["last_seen"].is_null());
  CHECK(j["created_at"] == formatRfc3339(1000));
  CHECK_FALSE(j.contains("join_hash"));
  CHECK(j.dump().find(sha256Hex("ja")) == std::string::npos);

  REQUIRE(s->putEdgeSettings("site-a", {{"cache_budget", "1g"}}).isOk());
  CHECK(s->edge("site-a")->settings == json({{"cache_budget", "1g"}}));  // replaced, not merged
  CHECK(s->putEdgeSettings("nope", json::object()).code() == Code::kNotFound);
  CHECK(s->touchEdge("nope", 1).code() == Code::kNotFound);

  REQUIRE(s->deleteEdge("site-a").isOk());
  CHECK(s->edge("site-a").status().code() == Code::kNotFound);
  CHECK(s->deleteEdge("site-a").code() == Code::kNotFound);
  CHECK(s->edges().size() == 1);
  // The deleted edge's join token is gone with it.
  CHECK(s->redeemJoinToken(sha256Hex("ja"), sha256Hex("c"), 1).status().code() == Code::kUnauthorized);
}

TEST_CASE("edges: a join token is redeemed once, before it expires, for a credential", "[auth][edges]") {
  TempDir dir;
  Store s(dir / "meta");
  REQUIRE(s->createEdge(pending("site-a", "join-a", 10'000)).isOk());
  REQUIRE(s->createEdge(pending("site-b", "join-b", 10'000)).isOk());

  // Unknown, empty, and a credential-shaped lookup all fail alike.
  CHECK(s->redeemJoinToken(sha256Hex("nope"), sha256Hex("cred"), 1).status().code() == Code::kUnauthorized);
  CHECK(s->redeemJoinToken("", sha256Hex("cred"), 1).status().code() == Code::kUnauthorized);
  // Expired (the deadline itself counts as expired).
  CHECK(s->redeemJoinToken(sha256Hex("join-b"), sha256Hex("cred-b"), 10'000).status().code() == Code::kUnauthorized);
  CHECK_FALSE(s->edge("site-b")->registered());

  auto e = s->redeemJoinToken(sha256Hex("join-a"), sha256Hex("cred-a"), 9'999);
  REQUIRE(e.isOk());
  CHECK(e->name == "site-a");
  CHECK(e->registered());
  CHECK(e->registered_ms == 9'999);
  CHECK(e->join_hash.empty());
  auto stored = s->edge("site-a");
  CHECK(stored->credential_hash == sha256Hex("cred-a"));
  CHECK(stored->toJson()["state"] == "registered");
  CHECK(stored->toJson()["registered_at"] == formatRfc3339(9'999));
  // Second use fails, and does not replace the credential.
  CHECK(s->redeemJoinToken(sha256Hex("join-a"), sha256Hex("cred-x"), 9'999).status().code() == Code::kUnauthorized);
  CHECK(s->edgeByCredential(sha256Hex("cred-x")).status().code() == Code::kUnauthorized);

  // The credential finds the edge; the join token and other hashes do not.
  auto by = s->edgeByCredential(sha256Hex("cred-a"));
  REQUIRE(by.isOk());
  CHECK(by->name == "site-a");
  CHECK(s->edgeByCredential(sha256Hex("join-a")).status().code() == Code::kUnauthorized);
  CHECK(s->edgeByCredential(sha256Hex("join-b")).status().code() == Code::kUnauthorized);  // a join token is no credential
  CHECK(s->edgeByCredential("").status().code() == Code::kUnauthorized);
  // A credential is no join token either.
  CHECK(s->redeemJoinToken(sha256Hex("cred-a"), sha256Hex("cred-y"), 1).status().code() == Code::kUnauthorized);

  REQUIRE(s->touchEdge("site-a", 20'000).isOk());
  CHECK(s->edge("site-a")->last_seen_ms == 20'000);
  REQUIRE(s->touchEdge("site-a", 15'000).isOk());  // never goes back
  CHECK(s->edge("site-a")->last_seen_ms == 20'000);

  // Deleting revokes the credential at once.
  REQUIRE(s->deleteEdge("site-a").isOk());
  CHECK(s->edgeByCredential(sha256Hex("cred-a")).status().code() == Code::kUnauthorized);
}

TEST_CASE("edges: concurrent redemptions of one join token: exactly one wins", "[auth][edges]") {
  TempDir dir;
  Store s(dir / "meta");
  REQUIRE(s->createEdge(pending("site-a", "join-a", 10'000)).isOk());
  constexpr int kThreads = 8;
  std::vector<std::thread> threads;
  std::vector<int> won(kThreads, 0);
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      won[static_cast<size_t>(i)] = s->redeemJoinToken(sha256Hex("join-a"), sha256Hex("cred-" + std::to_string(i)), 1).isOk();
    });
  }
  for (auto& t : threads) t.join();
  int winners = 0, winner = -1;
  for (int i = 0; i < kThreads; ++i) {
    if (won[static_cast<size_t>(i)]) {
      ++winners;
      winner = i;
    }
  }
  REQUIRE(winners == 1);
  CHECK(s->edge("site-a")->credential_hash == sha256Hex("cred-" + std::to_string(winner)));
}

TEST_CASE("edges: survive reopening the store, and older stores open with no edges", "[auth][edges]") {
  TempDir dir;
  {
    Store s(dir / "meta");
    REQUIRE(s->createEdge(pending("site-a", "join-a", 10'000)).isOk());
    REQUIRE(s->createEdge(pending("site-b", "join-b", 10'000)).isOk());
    REQUIRE(s->redeemJoinToken(sha256Hex("join-b"), sha256Hex("cred-b"), 1).isOk());
    s.close();
  }
  Store s(dir / "meta");
  REQUIRE(s->edges().size() == 2);
  CHECK(s->edgeByCredential(sha256Hex("cred-b"))->name == "site-b");
  CHECK(s->redeemJoinToken(sha256Hex("join-a"), sha256Hex("cred-a"), 2).isOk());
}

TEST_CASE("edges: AuthService issues prefixed secrets and stores only their hashes", "[auth][edges]") {
  Fixture f;
  auto n = f.add("site-a", AuthService::kJoinTokenTtlMs, {{"tag_ttl", "5m"}, {"cache_budget", "2GiB"}});
  REQUIRE(n.join_token.rfind("wharf_join_", 0) == 0);
  CHECK(n.join_token.size() >= std::string("wharf_join_").size() + 43);  // 32 random bytes, base64url
  CHECK(n.edge.join_expires_ms == f.clock.nowMillis() + 24 * 3600'000ll);
  auto stored = f.ids->edge("site-a");
  REQUIRE(stored.isOk());
  CHECK(stored->join_hash == sha256Hex(n.join_token));
  CHECK(stored->created_by == "admin");
  // Two tokens never repeat.
  CHECK(f.add("site-b").join_token != n.join_token);

  // Validation happens before anything is stored.
  CHECK(f.auth->createEdge("Bad", "", json::object(), 60'000, "admin").status().code() == Code::kNameInvalid);
  CHECK(f.auth->createEdge("c", "", {{"x", 1}}, 60'000, "admin").status().code() == Code::kInvalidArgument);
  CHECK(f.auth->createEdge("c", "", json::object(), 59'999, "admin").status().code() == Code::kInvalidArgument);
  CHECK(f.auth->createEdge("c", "", json::object(), 30 * 86'400'000ll + 1, "admin").status().code() ==
        Code::kInvalidArgument);
  CHECK(f.auth->createEdge("c", std::string(201, 's'), json::object(), 60'000, "admin").status().code() ==
        Code::kInvalidArgument);
  CHECK(f.ids->edge("c").status().code() == Code::kNotFound);
  CHECK(f.auth->createEdge("site-a", "", json::object(), 60'000, "admin").status().code() == Code::kConflict);

  auto reg = f.auth->registerEdge(n.join_token, "192.0.2.1");
  REQUIRE(reg.isOk());
  CHECK(reg->credential.rfind("wharf_edge_", 0) == 0);
  CHECK(reg->credential.size() >= std::string("wharf_edge_").size() + 43);
  CHECK(reg->edge.name == "site-a");
  CHECK(reg->edge.settings == json({{"tag_ttl", "5m"}, {"cache_budget", "2g"}}));
  CHECK(f.ids->edge("site-a")->credential_hash == sha256Hex(reg->credential));
  auto again = f.auth->registerEdge(n.join_token, "192.0.2.1");
  CHECK(again.status().code() == Code::kUnauthorized);
  CHECK(again.status().message() == "join token unknown, used or expired");

  // Settings: validated, canonical, replaced.
  CHECK(f.auth->setEdgeSettings("site-a", {{"high_watermark", 90}}).status().code() == Code::kInvalidArgument);
  CHECK(f.auth->setEdgeSettings("nope", json::object()).status().code() == Code::kNotFound);
  auto set = f.auth->setEdgeSettings("site-a", {{"cache_budget", "512MiB"}});
  REQUIRE(set.isOk());
  CHECK(set->settings == json({{"cache_budget", "512m"}}));
  CHECK(f.ids->edge("site-a")->settings == json({{"cache_budget", "512m"}}));

  auto who = f.auth->authenticateEdge(reg->credential);
  REQUIRE(who.isOk());
  CHECK(who->name == "site-a");
  CHECK(f.auth->authenticateEdge("wharf_edge_garbage").status().code() == Code::kUnauthorized);
  CHECK(f.auth->authenticateEdge(n.join_token).status().code() == Code::kUnauthorized);
  CHECK(f.auth->authenticateEdge("").status().code() == Code::kUnauthorized);
  // The credential is not a password, an access token or a bearer token.
  CHECK_FALSE(f.auth->verifyBearer(reg->credential).isOk());
  CHECK_FALSE(f.auth->authenticatePassword("site-a", reg->credential, "192.0.2.1").isOk());

  REQUIRE(f.ids->deleteEdge("site-a").isOk());
  CHECK(f.auth->authenticateEdge(reg->credential).status().code() == Code::kUnauthorized);
}

TEST_CASE("edges: join tokens expire on the injected clock", "[auth][edges]") {
  Fixture f;
  auto n = f.add("site-a", 60'000);
  f.clock.advance(60'000);  // exactly at the deadline: expired
  auto r = f.auth->registerEdge(n.join_token, "192.0.2.1");
  CHECK(r.status().code() == Code::kUnauthorized);
  CHECK_FALSE(f.ids->edge("site-a")->registered());

  auto m = f.add("site-b", 60'000);
  f.clock.advance(59'999);
  CHECK(f.auth->registerEdge(m.join_token, "192.0.2.1").isOk());
}

TEST_CASE("edges: last_seen is written at most once a minute", "[auth][edges]") {
  Fixture f;
  auto n = f.add("site-a");
  auto reg = f.auth->registerEdge(n.join_token, "192.0.2.1");
  REQUIRE(reg.isOk());
  int64_t t0 = f.clock.nowMillis();
  CHECK(f.ids->edge("site-a")->last_seen_ms == t0);  // registration counts as seen

  f.clock.advance(30'000);
  REQUIRE(f.auth->authenticateEdge(reg->credential).isOk());
  CHECK(f.ids->edge("site-a")->last_seen_ms == t0);  // too soon: not written
  f.clock.advance(30'000);
  auto seen = f.auth->authenticateEdge(reg->credential);
  REQUIRE(seen.isOk());
  CHECK(seen->last_seen_ms == t0 + 60'000);
  CHECK(f.ids->edge("site-a")->last_seen_ms == t0 + 60'000);
  f.clock.advance(59'999);
  REQUIRE(f.auth->authenticateEdge(reg->credential).isOk());
  CHECK(f.ids->edge("site-a")->last_seen_ms == t0 + 60'000);
}

TEST_CASE("edges: failed registrations are rate-limited per source address", "[auth][edges]") {
  Fixture f(/*max_source_failures=*/3);
  auto n = f.add("site-a");
  for (int i = 0; i < 3; ++i) {
    CHECK(f.auth->registerEdge("wharf_join_wrong" + std::to_string(i), "198.51.100.7").status().code() ==
          Code::kUnauthorized);
  }
  // Limited now, even with the right token, from that address only.
  CHECK(f.auth->registerEdge(n.join_token, "198.51.100.7").status().code() == Code::kTooManyRequests);
  CHECK_FALSE(f.ids->edge("site-a")->registered());
  CHECK(f.auth->registerEdge(n.join_token, "198.51.100.8").isOk());
  // The window passes.
  auto m = f.add("site-b");
  f.clock.advance(300'001);
  CHECK(f.auth->registerEdge(m.join_token, "198.51.100.7").isOk());
}

}  // namespace edges_test_unit
