#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "core/auth/auth_service.h"
#include "core/auth/identity_store.h"
#include "core/auth/key_ring.h"
#include "shared/base/fs.h"
#include "core/auth/lmdb_identity_store.h"
#include "core/metadata/lmdb_metadata_store.h"
#include "shared/auth/scope.h"
#include "shared/base/clock.h"
#include "shared/tls/crypto.h"
#include "tests/support/temp_dir.h"

// Each file's own names: the test binaries are unity builds.
namespace auth_service_test {

using namespace wharf;
using wharf::test::TempDir;

namespace {

using Actions = std::vector<std::string>;
const Actions kAll = {"delete", "pull", "push"};
const Actions kNothing = {};

// Everything an AuthService needs.
struct Fixture {
  TempDir dir;
  FakeClock clock{RealClock::instance().nowMillis()};
  std::shared_ptr<LmdbEnv> env;
  std::unique_ptr<IdentityStore> ids;
  std::unique_ptr<KeyRing> ring;
  AuthConfig config;
  std::unique_ptr<AuthService> auth;

  explicit Fixture(int max_failures = 3, int max_source_failures = 3) {
    LmdbMetadataOptions o{};
    o.map_size = 64ull << 20;
    o.durable = false;
    auto e = openMetadataEnv(dir / "meta", o);
    INFO(e.status().toString());
    REQUIRE(e.isOk());
    env = *e;
    auto s = openLmdbIdentityStore(env);
    REQUIRE(s.isOk());
    ids = std::move(s).value();
    REQUIRE(makeDirs(dir / "auth").isOk());
    auto r = KeyRing::open(std::move(openFileDocument(dir / "auth/keys.json")).value(), clock);
    REQUIRE(r.isOk());
    ring = std::move(r).value();
    config.realm = "https://registry.example/auth/token";
    config.max_login_failures = max_failures;
    config.max_source_failures = max_source_failures;
    config.failure_window_ms = 300'000;
    auth = std::make_unique<AuthService>(config, *ids, *ring, clock);
  }

  void addUser(const std::string& name, const std::string& password, bool admin = false) {
    User u;
    u.name = name;
    u.email = name + "@example.com";
    u.password_hash = password.empty() ? "" : hashPassword(password, 1000);
    u.admin = admin;
    u.created_ms = clock.nowMillis();
    Status st = ids->createUser(u);
    INFO(st.toString());
    REQUIRE(st.isOk());
  }

  void setDisabled(const std::string& name, bool disabled) {
    auto u = ids->user(name);
    REQUIRE(u.isOk());
    u->disabled = disabled;
    REQUIRE(ids->putUser(*u).isOk());
  }

  void grantUser(const std::string& repo, const std::string& user, Role role) {
    REQUIRE(ids->setGrant(repo, Grant{"user", user, role}).isOk());
  }

  Account login(const std::string& user, const std::string& secret, const std::string& source = "192.0.2.10") {
    auto a = auth->authenticatePassword(user, secret, source);
    INFO(a.status().toString());
    REQUIRE(a.isOk());
    return *a;
  }

  std::pair<AccessToken, std::string> pat(const std::string& user, const std::vector<std::string>& scopes,
                                          int64_t expires_ms = 0) {
    auto t = auth->createAccessToken(user, "ci", scopes, expires_ms);
    INFO(t.status().toString());
    REQUIRE(t.isOk());
    return *t;
  }

  // An access token for account with the requested scopes, and its verification.
  std::string tokenFor(const Account& account, const std::vector<Scope>& granted, bool offline = false,
                       std::string* refresh = nullptr) {
    auto out = auth->issue(account, granted, offline);
    INFO(out.status().toString());
    REQUIRE(out.isOk());
    if (refresh != nullptr) *refresh = out->value("refresh_token", "");
    return (*out)["token"].get<std::string>();
  }
};

Account named(const std::string& name, bool admin = false) {
  Account a;
  a.name = name;
  a.admin = admin;
  return a;
}

Scope scope(const std::string& s) {
  auto p = parseScope(s);
  REQUIRE(p.isOk());
  return *p;
}

std::string basic(const std::string& user_colon_password) {
  std::string b = base64UrlEncode(user_colon_password);
  for (auto& c : b) {
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  while (b.size() % 4 != 0) b += '=';
  return "Basic " + b;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Access policy.

TEST_CASE("auth policy: own namespace gives delete, pull, push", "[auth]") {
  Fixture f;
  f.addUser("alice", "pw");
  CHECK(f.auth->allowedActions(named("alice"), "alice/app") == kAll);
  CHECK(f.auth->allowedActions(named("alice"), "alice/deep/nested/app") == kAll);
  // A repository whose name merely starts with the user name is not theirs.
  CHECK(f.auth->allowedActions(named("alice"), "alicex/app") == kNothing);
  CHECK(f.auth->allowedActions(named("alice"), "alice") == kNothing);
}

TEST_CASE("auth policy: another user's namespace gives nothing unless granted", "[auth]") {
  Fixture f;
  f.addUser("alice", "pw");
  f.addUser("bob", "pw");
  CHECK(f.auth->allowedActions(named("alice"), "bob/app") == kNothing);
  f.grantUser("bob/app", "alice", Role::kRead);
  CHECK(f.auth->allowedActions(named("alice"), "bob/app") == Actions{"pull"});
  CHECK(f.auth->allowedActions(named("alice"), "bob/other") == kNothing);
  // A grant to another user does not help.
  f.grantUser("bob/other", "carol", Role::kAdmin);
  CHECK(f.auth->allowedActions(named("alice"), "bob/other") == kNothing);
  // Names without a namespace are nobody's.
  CHECK(f.auth->allowedActions(named("alice"), "app") == kNothing);
  f.grantUser("app", "alice", Role::kWrite);
  CHECK(f.auth->allowedActions(named("alice"), "app") == Actions{"pull", "push"});
}

TEST_CASE("auth policy: user grant roles map to actions", "[auth]") {
  Fixture f;
  f.addUser("owner", "pw");
  f.addUser("member", "pw");
  REQUIRE(f.ids->createOrg("acme", "owner").isOk());
  REQUIRE(f.ids->setOrgMember("acme", "member", "member").isOk());

  CHECK(f.auth->allowedActions(named("owner"), "acme/app") == kAll);
  CHECK(f.auth->allowedActions(named("member"), "acme/app") == kNothing);

  f.grantUser("acme/app", "member", Role::kRead);
  CHECK(f.auth->allowedActions(named("member"), "acme/app") == Actions{"pull"});
  f.grantUser("acme/app", "member", Role::kWrite);
  CHECK(f.auth->allowedActions(named("member"), "acme/app") == Actions{"pull", "push"});
  f.grantUser("acme/app", "member", Role::kAdmin);
  CHECK(f.auth->allowedActions(named("member"), "acme/app") == kAll);
  f.grantUser("acme/app", "member", Role::kNone);
  CHECK(f.auth->allowedActions(named("member"), "acme/app") == kNothing);
  // Grants are per repository.
  f.grantUser("acme/app", "member", Role::kWrite);
  CHECK(f.auth->allowedActions(named("member"), "acme/other") == kNothing);
}

TEST_CASE("auth policy: a team grant applies to team members only", "[auth]") {
  Fixture f;
  for (const char* u : {"owner", "dev", "other", "outsider"}) f.addUser(u, "pw");
  REQUIRE(f.ids->createOrg("acme", "owner").isOk());
  REQUIRE(f.ids->createTeam("acme", "devs", "").isOk());
  REQUIRE(f.ids->addTeamMember("acme", "devs", "dev").isOk());
  REQUIRE(f.ids->setOrgMember("acme", "other", "member").isOk());
  REQUIRE(f.ids->setGrant("acme/app", Grant{"team", "acme/devs", Role::kWrite}).isOk());

  CHECK(f.auth->allowedActions(named("dev"), "acme/app") == Actions{"pull", "push"});
  CHECK(f.auth->allowedActions(named("other"), "acme/app") == kNothing);
  CHECK(f.auth->allowedActions(named("outsider"), "acme/app") == kNothing);
  CHECK(f.auth->allowedActions(named("dev"), "acme/lib") == kNothing);

  // The best of the user's own grant and the team grant wins.
  f.grantUser("acme/app", "dev", Role::kRead);
  CHECK(f.auth->allowedActions(named("dev"), "acme/app") == Actions{"pull", "push"});
  f.grantUser("acme/app", "dev", Role::kAdmin);
  CHECK(f.auth->allowedActions(named("dev"), "acme/app") == kAll);

  // Leaving the team (and the organization) ends the team's grant.
  f.grantUser("acme/app", "dev", Role::kNone);
  REQUIRE(f.ids->removeOrgMember("acme", "dev").isOk());
  CHECK(f.auth->allowedActions(named("dev"), "acme/app") == kNothing);
}

TEST_CASE("auth policy: a public repository gives anonymous pull only", "[auth]") {
  Fixture f;
  f.addUser("alice", "pw");
  Account anon;
  REQUIRE(anon.anonymous());
  CHECK(f.auth->allowedActions(anon, "alice/app") == kNothing);
  REQUIRE(f.ids->putRepoSettings("alice/app", RepoSettings{true, ""}).isOk());
  CHECK(f.auth->allowedActions(anon, "alice/app") == Actions{"pull"});
  auto got = f.auth->grant(anon, {scope("repository:alice/app:pull,push,delete")});
  REQUIRE(got.size() == 1);
  CHECK(got[0].actions == Actions{"pull"});
  // The owner still has everything; other users get pull.
  CHECK(f.auth->allowedActions(named("alice"), "alice/app") == kAll);
  f.addUser("bob", "pw");
  CHECK(f.auth->allowedActions(named("bob"), "alice/app") == Actions{"pull"});
  // A private repository again.
  REQUIRE(f.ids->putRepoSettings("alice/app", RepoSettings{false, ""}).isOk());
  CHECK(f.auth->allowedActions(anon, "alice/app") == kNothing);
  CHECK(f.auth->grant(anon, {scope("repository:alice/app:pull")}).empty());
}

TEST_CASE("auth policy: administrators get everything", "[auth]") {
  Fixture f;
  f.addUser("root", "pw", true);
  f.addUser("bob", "pw");
  REQUIRE(f.ids->createOrg("acme", "bob").isOk());
  CHECK(f.auth->allowedActions(named("root", true), "bob/app") == kAll);
  CHECK(f.auth->allowedActions(named("root", true), "acme/app") == kAll);
  CHECK(f.auth->allowedActions(named("root", true), "app") == kAll);
  // The admin flag of the Account is what counts, as authenticated.
  auto root = f.login("root", "pw");
  CHECK(root.admin);
  CHECK(f.auth->allowedActions(root, "acme/app") == kAll);
}

TEST_CASE("auth policy: grant gives the intersection of requested and allowed", "[auth]") {
  Fixture f;
  f.addUser("alice", "pw");
  f.addUser("bob", "pw");
  f.grantUser("bob/app", "alice", Role::kRead);
  Account alice = named("alice");

  auto got = f.auth->grant(alice, {scope("repository:bob/app:pull,push,delete")});
  REQUIRE(got.size() == 1);
  CHECK(got[0].type == "repository");
  CHECK(got[0].name == "bob/app");
  CHECK(got[0].actions == Actions{"pull"});

  got = f.auth->grant(alice, {scope("repository:bob/app:push")});
  CHECK(got.empty());

  got = f.auth->grant(alice, {scope("repository:alice/app:push")});
  REQUIRE(got.size() == 1);
  CHECK(got[0].actions == Actions{"push"});

  got = f.auth->grant(alice, {scope("repository:alice/app:*")});
  REQUIRE(got.size() == 1);
  CHECK(got[0].actions == kAll);
  got = f.auth->grant(alice, {scope("repository:bob/app:*")});
  REQUIRE(got.size() == 1);
  CHECK(got[0].actions == Actions{"pull"});

  // Notary asks for the GUN (host:port/repository): the repository's access, under the GUN's name.
  got = f.auth->grant(alice, {scope("repository:127.0.0.1:5000/bob/app:push,pull")});
  REQUIRE(got.size() == 1);
  CHECK(got[0].name == "127.0.0.1:5000/bob/app");
  CHECK(got[0].actions == Actions{"pull"});
  got = f.auth->grant(alice, {scope("repository:registry.example.com:443/alice/app:*")});
  REQUIRE(got.size() == 1);
  CHECK(got[0].actions == kAll);
  CHECK(repositoryOfName("localhost/bob/app") == "bob/app");
  CHECK(repositoryOfName("my.org/app") == "my.org/app");  // a repository with a dot stays itself

    // Several scopes at once; denied ones are left out.
  got = f.auth->grant(alice, {scope("repository:alice/app:pull"), scope("repository:carol/x:pull"),
                              scope("repository:bob/app:pull,push")});
  REQUIRE(got.size() == 2);
  CHECK(got[0].name == "alice/app");
  CHECK(got[1].name == "bob/app");
  CHECK(got[1].actions == Actions{"pull"});

  // Unknown actions and types are never granted.
  CHECK(f.auth->grant(alice, {scope("repository:alice/app:frobnicate")}).empty());
  CHECK(f.auth->grant(alice, {scope("mystery:alice/app:pull")}).empty());
  CHECK(f.auth->grant(alice, {scope("registry:other:*")}).empty());
}

TEST_CASE("auth policy: registry:catalog:* for authenticated users, not anonymous", "[auth]") {
  Fixture f;
  f.addUser("alice", "pw");
  auto got = f.auth->grant(named("alice"), {scope("registry:catalog:*")});
  REQUIRE(got.size() == 1);
  CHECK(got[0].type == "registry");
  CHECK(got[0].name == "catalog");
  CHECK(got[0].actions == Actions{"*"});
  CHECK(f.auth->grant(Account{}, {scope("registry:catalog:*")}).empty());
}

TEST_CASE("auth policy: a personal access token narrows its owner's access", "[auth]") {
  Fixture f;
  f.addUser("alice", "pw");
  REQUIRE(f.ids->createOrg("team", "alice").isOk());
  REQUIRE(f.ids->createOrg("teamx", "alice").isOk());
  Account full = f.login("alice", "pw");
  CHECK(full.pat_id.empty());
  CHECK(f.auth->allowedActions(full, "team/app") == kAll);
  CHECK(f.auth->allowedActions(full, "alice/app") == kAll);

  auto [tok, secret] = f.pat("alice", {"repository:team/*:pull"});
  Account narrowed = f.login("alice", secret);
  CHECK(narrowed.name == "alice");
  CHECK(narrowed.pat_id == tok.id);
  REQUIRE(narrowed.pat_scopes.size() == 1);
  CHECK(f.auth->allowedActions(narrowed, "team/app") == Actions{"pull"});
  CHECK(f.auth->allowedActions(narrowed, "team/deep/app") == Actions{"pull"});
  CHECK(f.auth->allowedActions(narrowed, "alice/app") == kNothing);
  CHECK(f.auth->allowedActions(narrowed, "teamx/app") == kNothing);  // prefix ends at the '/'
  auto got = f.auth->grant(narrowed, {scope("repository:team/app:pull,push,delete")});
  REQUIRE(got.size() == 1);
  CHECK(got[0].actions == Actions{"pull"});
  CHECK(f.auth->grant(narrowed, {scope("repository:alice/app:pull")}).empty());

  // A token never widens: a scope on someone else's repository gives nothing.
  auto [tok2, secret2] = f.pat("alice", {"repository:*:pull,push"});
  Account wide = f.login("alice", secret2);
  CHECK(f.auth->allowedActions(wide, "alice/app") == Actions{"pull", "push"});
  CHECK(f.auth->allowedActions(wide, "bob/app") == kNothing);

  // A token without scopes has all of its owner's access.
  auto [tok3, secret3] = f.pat("alice", {});
  Account unscoped = f.login("alice", secret3);
  CHECK(unscoped.pat_id == tok3.id);
  CHECK(f.auth->allowedActions(unscoped, "team/app") == kAll);
}

// ---------------------------------------------------------------------------------------
// Credentials.

TEST_CASE("auth credentials: passwords", "[auth]") {
  Fixture f(10, 10);
  f.addUser("alice", "correct horse");
  auto ok = f.auth->authenticatePassword("alice", "correct horse", "192.0.2.1");
  REQUIRE(ok.isOk());
  CHECK(ok->name == "alice");
  CHECK_FALSE(ok->admin);
  CHECK(ok->pat_id.empty());
  CHECK(ok->pat_scopes.empty());
  // Cached: the same answer again.
  CHECK(f.auth->authenticatePassword("alice", "correct horse", "192.0.2.1").isOk());

  CHECK(f.auth->authenticatePassword("alice", "wrong", "192.0.2.1").status().code() == Code::kUnauthorized);
  CHECK(f.auth->authenticatePassword("alice", "", "192.0.2.1").status().code() == Code::kUnauthorized);
  CHECK(f.auth->authenticatePassword("", "correct horse", "192.0.2.1").status().code() == Code::kUnauthorized);
  CHECK(f.auth->authenticatePassword("Alice", "correct horse", "192.0.2.1").status().code() == Code::kUnauthorized);
}

TEST_CASE("auth credentials: an unknown user fails", "[auth]") {
  Fixture f(10, 10);
  CHECK(f.auth->authenticatePassword("ghost", "whatever", "192.0.2.1").status().code() == Code::kUnauthorized);
}

TEST_CASE("auth credentials: a disabled user fails", "[auth]") {
  Fixture f(10, 10);
  f.addUser("alice", "pw");
  REQUIRE(f.auth->authenticatePassword("alice", "pw", "192.0.2.1").isOk());  // and now cached
  f.setDisabled("alice", true);
  CHECK(f.auth->authenticatePassword("alice", "pw", "192.0.2.1").status().code() == Code::kUnauthorized);
  f.setDisabled("alice", false);
  CHECK(f.auth->authenticatePassword("alice", "pw", "192.0.2.1").isOk());
}

TEST_CASE("auth credentials: a changed password invalidates the old one", "[auth]") {
  Fixture f(10, 10);
  f.addUser("alice", "old");
  REQUIRE(f.auth->authenticatePassword("alice", "old", "192.0.2.1").isOk());
  auto u = f.ids->user("alice");
  REQUIRE(u.isOk());
  u->password_hash = hashPassword("new", 1000);
  REQUIRE(f.ids->putUser(*u).isOk());
  CHECK(f.auth->authenticatePassword("alice", "old", "192.0.2.1").status().code() == Code::kUnauthorized);
  CHECK(f.auth->authenticatePassword("alice", "new", "192.0.2.1").isOk());
}

TEST_CASE("auth credentials: Basic authorization headers", "[auth]") {
  Fixture f(10, 10);
  f.addUser("alice", "p:w");
  auto a = f.auth->authenticateBasic(basic("alice:p:w"), "192.0.2.1");
  INFO(a.status().toString());
  REQUIRE(a.isOk());
  CHECK(a->name == "alice");
  CHECK(f.auth->authenticateBasic("basic " + basic("alice:p:w").substr(6), "192.0.2.1").isOk());
  CHECK(f.auth->authenticateBasic(basic("alice:wrong"), "192.0.2.1").status().code() == Code::kUnauthorized);
  CHECK(f.auth->authenticateBasic("Bearer abc", "192.0.2.1").status().code() == Code::kUnauthorized);
  CHECK(f.auth->authenticateBasic("Basic !!!", "192.0.2.1").status().code() == Code::kUnauthorized);
  CHECK(f.auth->authenticateBasic(basic("no-colon"), "192.0.2.1").status().code() == Code::kUnauthorized);
  CHECK(f.auth->authenticateBasic("", "192.0.2.1").status().code() == Code::kUnauthorized);
}

TEST_CASE("auth credentials: a PAT works without touching the password", "[auth]") {
  Fixture f(10, 10);
  f.addUser("robot", "");  // no password at all
  auto [tok, secret] = f.pat("robot", {});
  CHECK(secret.rfind("wharf_pat_" + tok.id + "_", 0) == 0);
  CHECK(tok.id.find('_') == std::string::npos);
  CHECK(tok.user == "robot");
  CHECK(tok.secret_hash == sha256Hex(secret.substr(std::string("wharf_pat_").size() + tok.id.size() + 1)));
  // Stored hashed, never in clear.
  auto stored = f.ids->accessToken(tok.id);
  REQUIRE(stored.isOk());
  CHECK(secret.find(stored->secret_hash) == std::string::npos);

  auto a = f.auth->authenticatePassword("robot", secret, "192.0.2.1");
  INFO(a.status().toString());
  REQUIRE(a.isOk());
  CHECK(a->name == "robot");
  CHECK(a->pat_id == tok.id);
  CHECK(a->pat_scopes.empty());
  // Through Basic too.
  CHECK(f.auth->authenticateBasic(basic("robot:" + secret), "192.0.2.1").isOk());
}

TEST_CASE("auth credentials: a PAT must match its user and secret", "[auth]") {
  Fixture f(50, 50);
  f.addUser("alice", "pw");
  f.addUser("bob", "pw");
  auto [tok, secret] = f.pat("alice", {});
  CHECK(f.auth->authenticatePassword("bob", secret, "192.0.2.1").status().code() == Code::kUnauthorized);
  std::string wrong = secret;
  wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
  CHECK(f.auth->authenticatePassword("alice", wrong, "192.0.2.1").status().code() == Code::kUnauthorized);
  CHECK(f.auth->authenticatePassword("alice", "wharf_pat_" + tok.id, "192.0.2.1").status().code() ==
        Code::kUnauthorized);
  CHECK(f.auth->authenticatePassword("alice", "wharf_pat_", "192.0.2.1").status().code() == Code::kUnauthorized);
  CHECK(f.auth->authenticatePassword("alice", "wharf_pat_nosuchid_secret", "192.0.2.1").status().code() ==
        Code::kUnauthorized);
  CHECK(f.auth->authenticatePassword("alice", secret, "192.0.2.1").isOk());
}

TEST_CASE("auth credentials: a deleted PAT fails", "[auth]") {
  Fixture f(10, 10);
  f.addUser("robot", "");
  auto [tok, secret] = f.pat("robot", {});
  REQUIRE(f.auth->authenticatePassword("robot", secret, "192.0.2.1").isOk());
  REQUIRE(f.ids->deleteAccessToken(tok.id).isOk());
  CHECK(f.auth->authenticatePassword("robot", secret, "192.0.2.1").status().code() == Code::kUnauthorized);
}

TEST_CASE("auth credentials: an expired PAT fails", "[auth]") {
  Fixture f(10, 10);
  f.addUser("robot", "");
  auto [tok, secret] = f.pat("robot", {}, f.clock.nowMillis() + 60'000);
  REQUIRE(f.auth->authenticatePassword("robot", secret, "192.0.2.1").isOk());
  f.clock.advance(60'001);
  CHECK(f.auth->authenticatePassword("robot", secret, "192.0.2.1").status().code() == Code::kUnauthorized);
}

TEST_CASE("auth credentials: a PAT of a disabled user fails", "[auth]") {
  Fixture f(10, 10);
  f.addUser("robot", "");
  auto [tok, secret] = f.pat("robot", {});
  f.setDisabled("robot", true);
  CHECK(f.auth->authenticatePassword("robot", secret, "192.0.2.1").status().code() == Code::kUnauthorized);
}

TEST_CASE("auth credentials: createAccessToken refuses scopes that are not repository scopes", "[auth]") {
  Fixture f(10, 10);
  f.addUser("alice", "pw");
  for (const char* bad : {"registry:catalog:*", "garbage", "repository:app"}) {
    INFO(bad);
    CHECK(f.auth->createAccessToken("alice", "t", {bad}, 0).status().code() == Code::kInvalidArgument);
  }
  CHECK(f.ids->accessTokens("alice").empty());
  auto ok = f.auth->createAccessToken("alice", "t", {"repository:alice/*:pull", "repository:x/y:push"}, 0);
  REQUIRE(ok.isOk());
  CHECK(ok->first.scopes.size() == 2);
  CHECK(f.ids->accessTokens("alice").size() == 1);
}

TEST_CASE("auth credentials: failures for one account are rate-limited", "[auth]") {
  Fixture f(3, 50);
  f.addUser("alice", "pw");
  f.addUser("bob", "pw");
  // Three failures from three sources: the account limit, not the source limit.
  for (int i = 0; i < 3; ++i) {
    CHECK(f.auth->authenticatePassword("alice", "wrong", "198.51.100." + std::to_string(i)).status().code() ==
          Code::kUnauthorized);
  }
  auto limited = f.auth->authenticatePassword("alice", "pw", "203.0.113.7");
  CHECK(limited.status().code() == Code::kTooManyRequests);
  CHECK(f.auth->authenticatePassword("alice", "wrong", "203.0.113.8").status().code() == Code::kTooManyRequests);
  // Another account from a fresh source is not affected.
  CHECK(f.auth->authenticatePassword("bob", "pw", "203.0.113.9").isOk());

  f.clock.advance(f.config.failure_window_ms - 1000);
  CHECK(f.auth->authenticatePassword("alice", "pw", "203.0.113.7").status().code() == Code::kTooManyRequests);
  f.clock.advance(2000);
  auto after = f.auth->authenticatePassword("alice", "pw", "203.0.113.7");
  INFO(after.status().toString());
  CHECK(after.isOk());
}

TEST_CASE("auth credentials: failures from one source are rate-limited across user names", "[auth]") {
  Fixture f(50, 3);
  for (const char* u : {"alice", "bob", "carol", "dave"}) f.addUser(u, "pw");
  const std::string source = "198.51.100.66";
  for (const char* u : {"alice", "bob", "carol"}) {
    CHECK(f.auth->authenticatePassword(u, "wrong", source).status().code() == Code::kUnauthorized);
  }
  // Dave never failed, but his (right) password from that source is refused.
  CHECK(f.auth->authenticatePassword("dave", "pw", source).status().code() == Code::kTooManyRequests);
  // A PAT from that source is refused too.
  auto [tok, secret] = f.pat("dave", {});
  CHECK(f.auth->authenticatePassword("dave", secret, source).status().code() == Code::kTooManyRequests);
  // From another source dave is fine.
  CHECK(f.auth->authenticatePassword("dave", "pw", "198.51.100.67").isOk());

  f.clock.advance(f.config.failure_window_ms + 1000);
  CHECK(f.auth->authenticatePassword("dave", "pw", source).isOk());
  CHECK(f.auth->authenticatePassword("alice", "pw", source).isOk());
}

TEST_CASE("auth credentials: failures below the limit do not lock out", "[auth]") {
  Fixture f(3);
  f.addUser("alice", "pw");
  for (int i = 0; i < 2; ++i) {
    CHECK(f.auth->authenticatePassword("alice", "wrong", "192.0.2.1").status().code() == Code::kUnauthorized);
  }
  CHECK(f.auth->authenticatePassword("alice", "pw", "192.0.2.1").isOk());
}

// ---------------------------------------------------------------------------------------
// Tokens.

TEST_CASE("auth tokens: issue and verifyBearer round-trip", "[auth]") {
  Fixture f;
  f.addUser("alice", "pw");
  Account alice = f.login("alice", "pw");
  auto granted = f.auth->grant(alice, {scope("repository:alice/app:pull,push")});
  auto out = f.auth->issue(alice, granted, false);
  REQUIRE(out.isOk());
  CHECK((*out)["token"] == (*out)["access_token"]);
  CHECK((*out)["expires_in"] == f.config.token_ttl_s);
  CHECK((*out)["issued_at"].is_string());
  CHECK_FALSE(out->contains("refresh_token"));

  auto b = f.auth->verifyBearer((*out)["token"].get<std::string>());
  INFO(b.status().toString());
  REQUIRE(b.isOk());
  REQUIRE(b->claims != nullptr);
  const TokenClaims& c = *b->claims;
  CHECK(c.subject == "alice");
  CHECK(c.issuer == f.config.issuer);
  CHECK(c.audience == f.config.service);
  CHECK(c.kind == "access");
  CHECK(c.via.empty());
  CHECK(c.allows("repository", "alice/app", "push"));
  CHECK_FALSE(c.allows("repository", "alice/app", "delete"));
  CHECK(c.expires_at - c.issued_at == f.config.token_ttl_s);
  CHECK(b->account.name == "alice");
  CHECK_FALSE(b->account.admin);
  // Again, from the cache.
  auto again = f.auth->verifyBearer((*out)["token"].get<std::string>());
  REQUIRE(again.isOk());
  CHECK(again->claims->subject == "alice");
  CHECK(again->account.name == "alice");
}

TEST_CASE("auth tokens: anonymous tokens verify and stand for the anonymous account", "[auth]") {
  Fixture f;
  REQUIRE(f.ids->putRepoSettings("acme/pub", RepoSettings{true, ""}).isOk());
  Account anon;
  auto granted = f.auth->grant(anon, {scope("repository:acme/pub:pull")});
  std::string refresh = "unset";
  std::string token = f.tokenFor(anon, granted, true, &refresh);
  CHECK(refresh.empty());  // no refresh token for anonymous
  auto b = f.auth->verifyBearer(token);
  REQUIRE(b.isOk());
  CHECK(b->claims->subject.empty());
  CHECK(b->account.anonymous());
  CHECK(b->claims->allows("repository", "acme/pub", "pull"));
}

TEST_CASE("auth tokens: garbage and foreign bearer tokens are refused", "[auth]") {
  Fixture f;
  CHECK(f.auth->verifyBearer("").status().code() == Code::kUnauthorized);
  CHECK(f.auth->verifyBearer("garbage").status().code() == Code::kUnauthorized);
  CHECK(f.auth->verifyBearer("a.b.c").status().code() == Code::kUnauthorized);
  // Signed by a key outside the ring.
  auto pair = generateEcKey();
  REQUIRE(pair.isOk());
  auto kid = keyIdOf(pair->public_pem);
  REQUIRE(kid.isOk());
  TokenClaims c;
  int64_t now = f.clock.nowMillis() / 1000;
  c.issuer = f.config.issuer;
  c.subject = "alice";
  c.audience = f.config.service;
  c.issued_at = now;
  c.not_before = now - 1;
  c.expires_at = now + 60;
  auto signer = TokenSigner::create(*kid, pair->private_pem);
  REQUIRE(signer.isOk());
  auto t = (*signer)->sign(c);
  REQUIRE(t.isOk());
  CHECK(f.auth->verifyBearer(*t).status().code() == Code::kUnauthorized);
}

TEST_CASE("auth tokens: a bearer token expires", "[auth]") {
  Fixture f;
  f.addUser("alice", "pw");
  std::string token = f.tokenFor(named("alice"), {});
  REQUIRE(f.auth->verifyBearer(token).isOk());
  f.clock.advance((f.config.token_ttl_s + 31) * 1000);
  CHECK(f.auth->verifyBearer(token).status().code() == Code::kUnauthorized);
}

TEST_CASE("auth tokens: a token of a deleted user stops working", "[auth]") {
  Fixture f;
  f.addUser("alice", "pw");
  std::string token = f.tokenFor(f.login("alice", "pw"), {});
  REQUIRE(f.auth->verifyBearer(token).isOk());
  REQUIRE(f.ids->deleteUser("alice").isOk());
  f.auth->forgetCaches();  // as the admin API does after a change
  CHECK(f.auth->verifyBearer(token).status().code() == Code::kUnauthorized);
}

TEST_CASE("auth tokens: a deleted user's token stops working within seconds without forgetCaches", "[auth]") {
  Fixture f;
  f.addUser("alice", "pw");
  std::string token = f.tokenFor(f.login("alice", "pw"), {});
  REQUIRE(f.auth->verifyBearer(token).isOk());
  REQUIRE(f.ids->deleteUser("alice").isOk());
  f.clock.advance(6'000);  // account states are cached "for a few seconds"
  CHECK(f.auth->verifyBearer(token).status().code() == Code::kUnauthorized);
}

TEST_CASE("auth tokens: a token of a disabled user stops working", "[auth]") {
  Fixture f;
  f.addUser("alice", "pw");
  std::string token = f.tokenFor(f.login("alice", "pw"), {});
  REQUIRE(f.auth->verifyBearer(token).isOk());
  f.setDisabled("alice", true);
  f.auth->forgetCaches();
  CHECK(f.auth->verifyBearer(token).status().code() == Code::kUnauthorized);
  f.setDisabled("alice", false);
  f.auth->forgetCaches();
  CHECK(f.auth->verifyBearer(token).isOk());
  // Without forgetCaches the change shows once the cached state expires.
  f.setDisabled("alice", true);
  f.clock.advance(6'000);
  CHECK(f.auth->verifyBearer(token).status().code() == Code::kUnauthorized);
}

TEST_CASE("auth tokens: a token issued via a PAT stops working once the PAT is deleted", "[auth]") {
  Fixture f;
  f.addUser("robot", "");
  auto [tok, secret] = f.pat("robot", {"repository:robot/*:pull"});
  Account a = f.login("robot", secret);
  REQUIRE(a.pat_id == tok.id);
  auto granted = f.auth->grant(a, {scope("repository:robot/app:pull,push")});
  REQUIRE(granted.size() == 1);
  CHECK(granted[0].actions == Actions{"pull"});
  std::string refresh = "unset";
  std::string token = f.tokenFor(a, granted, true, &refresh);
  CHECK(refresh.empty());  // no refresh tokens for PATs

  auto b = f.auth->verifyBearer(token);
  REQUIRE(b.isOk());
  CHECK(b->claims->via == tok.id);
  CHECK(b->claims->subject == "robot");
  CHECK(b->claims->allows("repository", "robot/app", "pull"));
  CHECK_FALSE(b->claims->allows("repository", "robot/app", "push"));

  REQUIRE(f.ids->deleteAccessToken(tok.id).isOk());
  f.auth->forgetCaches();
  CHECK(f.auth->verifyBearer(token).status().code() == Code::kUnauthorized);
}

TEST_CASE("auth tokens: a deleted PAT's tokens stop working within seconds without forgetCaches", "[auth]") {
  Fixture f;
  f.addUser("robot", "");
  auto [tok, secret] = f.pat("robot", {});
  std::string token = f.tokenFor(f.login("robot", secret), {});
  REQUIRE(f.auth->verifyBearer(token).isOk());
  REQUIRE(f.ids->deleteAccessToken(tok.id).isOk());
  f.clock.advance(6'000);
  CHECK(f.auth->verifyBearer(token).status().code() == Code::kUnauthorized);
}

TEST_CASE("auth tokens: refresh tokens are not access tokens and vice versa", "[auth]") {
  Fixture f;
  f.addUser("alice", "pw");
  Account alice = f.login("alice", "pw");
  std::string refresh;
  std::string access = f.tokenFor(alice, f.auth->grant(alice, {scope("repository:alice/app:pull")}), true, &refresh);
  REQUIRE_FALSE(refresh.empty());
  CHECK(refresh != access);

  // A refresh token is refused as an access token.
  CHECK(f.auth->verifyBearer(refresh).status().code() == Code::kUnauthorized);
  // An access token is refused by fromRefreshToken.
  CHECK(f.auth->fromRefreshToken(access).status().code() == Code::kUnauthorized);
  // Each works in its own place.
  CHECK(f.auth->verifyBearer(access).isOk());
  auto back = f.auth->fromRefreshToken(refresh);
  INFO(back.status().toString());
  REQUIRE(back.isOk());
  CHECK(back->name == "alice");
  CHECK(back->pat_id.empty());

  // A refresh token stops working when its user is disabled.
  f.setDisabled("alice", true);
  f.auth->forgetCaches();
  CHECK(f.auth->fromRefreshToken(refresh).status().code() == Code::kUnauthorized);
  CHECK(f.auth->fromRefreshToken("garbage").status().code() == Code::kUnauthorized);
}

TEST_CASE("auth tokens: tokens survive a key rotation during the overlap", "[auth]") {
  Fixture f;
  f.addUser("alice", "pw");
  std::string before = f.tokenFor(named("alice"), {});
  REQUIRE(f.ring->rotate(60'000).isOk());
  std::string after = f.tokenFor(named("alice"), {});
  f.auth->forgetCaches();
  CHECK(f.auth->verifyBearer(before).isOk());
  CHECK(f.auth->verifyBearer(after).isOk());
}

// KeyRing: "the old ones keep verifying for overlap_ms, then go". AuthService's
// VerifiedTokenCache keeps answering for a token verified before the rotation until the
// token itself expires (token_ttl_s), even after its key was retired.
TEST_CASE("auth tokens: a cached token stops working when its key is retired", "[auth][regression]") {
  Fixture f;
  f.addUser("alice", "pw");
  std::string token = f.tokenFor(named("alice"), {});
  REQUIRE(f.auth->verifyBearer(token).isOk());  // cached now
  REQUIRE(f.ring->rotate(1'000).isOk());
  f.clock.advance(2'000);
  CHECK(f.auth->verifyBearer(token).status().code() == Code::kUnauthorized);
}

// ---------------------------------------------------------------------------------------
// Bootstrap.

TEST_CASE("auth bootstrap: the first administrator is created once", "[auth]") {
  Fixture f;
  auto pw = f.auth->bootstrapAdmin("admin", "s3cret-pass");
  REQUIRE(pw.isOk());
  CHECK(*pw == "s3cret-pass");
  auto u = f.ids->user("admin");
  REQUIRE(u.isOk());
  CHECK(u->admin);
  CHECK(verifyPassword("s3cret-pass", u->password_hash));
  auto again = f.auth->bootstrapAdmin("admin2", "other");
  REQUIRE(again.isOk());
  CHECK(again->empty());
  CHECK(f.ids->user("admin2").status().code() == Code::kNotFound);
}

TEST_CASE("auth bootstrap: a password is generated when none is given", "[auth]") {
  Fixture f;
  auto pw = f.auth->bootstrapAdmin("admin", "");
  REQUIRE(pw.isOk());
  CHECK(pw->size() >= 16);
  auto u = f.ids->user("admin");
  REQUIRE(u.isOk());
  CHECK(u->admin);
}

TEST_CASE("auth bootstrap: nothing is created when a user exists", "[auth]") {
  Fixture f;
  f.addUser("alice", "pw");
  auto pw = f.auth->bootstrapAdmin("admin", "x");
  REQUIRE(pw.isOk());
  CHECK(pw->empty());
  CHECK(f.ids->user("admin").status().code() == Code::kNotFound);
}

}  // namespace auth_service_test
