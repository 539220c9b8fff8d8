#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <latch>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/auth/identity_store.h"
#include "core/auth/lmdb_identity_store.h"
#include "core/auth/pg_identity_store.h"
#include "core/metadata/lmdb_metadata_store.h"
#include "shared/store/pg.h"
#include "tests/support/postgres.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/core/metadata_backends.h"

// Each file's own names: the test binaries are unity builds.
namespace identity_store_test {

using namespace wharf;
using wharf::test::MetadataBackend;
using wharf::test::TempDir;

namespace {

// The store on a backend (the metadata store's: test::metadataBackends()): LMDB in a
// directory, or PostgreSQL in a database of the test binary's server, a fresh one unless
// pg_url names one (to open the same database again, as a restart or another replica).
struct Store {
  MetadataBackend backend;
  std::string path;    // LMDB: the environment
  std::string pg_url;  // PostgreSQL: the database (set at the first open)
  size_t pool_size = 4;
  std::shared_ptr<LmdbEnv> env;
  std::unique_ptr<IdentityStore> ids;

  Store(const std::string& path, MetadataBackend backend, std::string pg_url = "", size_t pool_size = 4)
      : backend(backend), path(path), pg_url(std::move(pg_url)), pool_size(pool_size) {
    open();
  }
  void open() {
    if (backend == MetadataBackend::kPostgres) {
      if (pg_url.empty()) pg_url = test::PostgresServer::shared().freshDatabase();
      auto db = PgPool::open(pg_url, pool_size);
      INFO(db.status().toString());
      REQUIRE(db.isOk());
      auto s = openPgIdentityStore(std::shared_ptr<PgPool>(std::move(db).value()));
      INFO(s.status().toString());
      REQUIRE(s.isOk());
      ids = std::move(s).value();
      return;
    }
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
  const char* name() const { return backend == MetadataBackend::kPostgres ? "backend: PostgreSQL" : "backend: LMDB"; }
  IdentityStore* operator->() { return ids.get(); }
};

User makeUser(const std::string& name, bool admin = false) {
  User u;
  u.name = name;
  u.email = name + "@example.com";
  u.password_hash = "pbkdf2-sha256$1$AAAA$AAAA";
  u.admin = admin;
  u.created_ms = 1234;
  return u;
}

AuditEntry entry(int64_t time_ms, const std::string& actor, const std::string& action, const std::string& outcome,
                 const std::string& object = "repo/x") {
  AuditEntry e;
  e.seq = 0;
  e.time_ms = time_ms;
  e.actor = actor;
  e.source = "10.0.0.1";
  e.action = action;
  e.object = object;
  e.outcome = outcome;
  e.detail = "";
  return e;
}

std::vector<int64_t> seqs(const std::vector<AuditEntry>& es) {
  std::vector<int64_t> out;
  for (const auto& e : es) out.push_back(e.seq);
  return out;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

TEST_CASE("identity: validateAccountName accepts good names", "[auth]") {
  for (const char* good : {"ab", "alice", "a1", "00", "team-a", "a.b_c-d", "my.org", "x_y", "a-b-c-d"}) {
    INFO(good);
    CHECK(validateAccountName(good).isOk());
  }
  CHECK(validateAccountName(std::string(64, 'a')).isOk());
}

TEST_CASE("identity: validateAccountName refuses bad names", "[auth]") {
  const std::vector<std::string> bad = {"",     "a",     std::string(65, 'a'), "Alice", "aB",   "-ab",  "ab-",
                                        ".ab",  "ab.",   "_ab",                "a--b",  "a..b", "a_-b", "a/b",
                                        "a b",  "ab!",   "a:b",                "caf\xc3\xa9", std::string("a\0b", 3),
                                        "a__b", "a.-b"};
  for (const auto& name : bad) {
    INFO(name);
    auto st = validateAccountName(name);
    CHECK_FALSE(st.isOk());
    CHECK(st.code() == Code::kInvalidArgument);
  }
}

TEST_CASE("identity: roles have names", "[auth]") {
  CHECK(roleName(Role::kRead) == "read");
  CHECK(roleName(Role::kWrite) == "write");
  CHECK(roleName(Role::kAdmin) == "admin");
  CHECK(roleName(Role::kNone) == "none");
  for (Role r : {Role::kNone, Role::kRead, Role::kWrite, Role::kAdmin}) {
    auto back = parseRole(roleName(r));
    REQUIRE(back.isOk());
    CHECK(*back == r);
  }
  CHECK(parseRole("owner").status().code() == Code::kInvalidArgument);
  CHECK_FALSE(parseRole("").isOk());
}

TEST_CASE("identity: users are created, read, listed, replaced and deleted", "[auth]") {
  TempDir dir;
  Store s(dir / "meta", GENERATE(from_range(test::metadataBackends())));
  INFO(s.name());
  CHECK(s->user("alice").status().code() == Code::kNotFound);
  REQUIRE(s->createUser(makeUser("alice", true)).isOk());
  REQUIRE(s->createUser(makeUser("bob")).isOk());
  REQUIRE(s->createUser(makeUser("carol")).isOk());

  auto a = s->user("alice");
  REQUIRE(a.isOk());
  CHECK(a->name == "alice");
  CHECK(a->email == "alice@example.com");
  CHECK(a->password_hash == "pbkdf2-sha256$1$AAAA$AAAA");
  CHECK(a->admin);
  CHECK_FALSE(a->disabled);
  CHECK(a->source == "local");
  CHECK(a->created_ms == 1234);
  CHECK_FALSE(a->toJson().contains("password"));
  CHECK_FALSE(a->toJson().contains("password_hash"));

  auto all = s->users("", 10);
  REQUIRE(all.size() == 3);
  CHECK(all[0].name == "alice");
  CHECK(all[2].name == "carol");
  auto page = s->users("alice", 1);
  REQUIRE(page.size() == 1);
  CHECK(page[0].name == "bob");

  CHECK(s->createUser(makeUser("alice")).code() == Code::kConflict);
  User changed = makeUser("bob");
  changed.disabled = true;
  changed.source = "ldap";
  REQUIRE(s->putUser(changed).isOk());
  auto b = s->user("bob");
  REQUIRE(b.isOk());
  CHECK(b->disabled);
  CHECK(b->source == "ldap");

  REQUIRE(s->deleteUser("bob").isOk());
  CHECK(s->user("bob").status().code() == Code::kNotFound);
  CHECK(s->deleteUser("bob").code() == Code::kNotFound);
}

TEST_CASE("identity: user and organization names collide", "[auth]") {
  TempDir dir;
  Store s(dir / "meta", GENERATE(from_range(test::metadataBackends())));
  INFO(s.name());
  REQUIRE(s->createUser(makeUser("alice")).isOk());
  REQUIRE(s->createOrg("acme", "alice").isOk());
  CHECK(s->createUser(makeUser("acme")).code() == Code::kConflict);
  CHECK(s->createOrg("alice", "").code() == Code::kConflict);
  CHECK(s->createOrg("acme", "").code() == Code::kConflict);
  CHECK(s->user("acme").status().code() == Code::kNotFound);
  CHECK(s->orgExists("acme"));
  CHECK_FALSE(s->orgExists("alice"));
}

TEST_CASE("identity: organizations, owners and members", "[auth]") {
  TempDir dir;
  Store s(dir / "meta", GENERATE(from_range(test::metadataBackends())));
  INFO(s.name());
  REQUIRE(s->createUser(makeUser("alice")).isOk());
  REQUIRE(s->createUser(makeUser("bob")).isOk());
  REQUIRE(s->createOrg("acme", "alice").isOk());
  REQUIRE(s->createOrg("zeta", "").isOk());
  CHECK(s->orgs("", 10) == std::vector<std::string>{"acme", "zeta"});
  CHECK(s->orgs("acme", 10) == std::vector<std::string>{"zeta"});
  CHECK(s->orgRole("acme", "alice") == "owner");
  CHECK(s->orgRole("acme", "bob").empty());
  CHECK(s->orgMembers("zeta").empty());

  REQUIRE(s->setOrgMember("acme", "bob", "member").isOk());
  CHECK(s->orgRole("acme", "bob") == "member");
  auto members = s->orgMembers("acme");
  REQUIRE(members.size() == 2);
  CHECK(members[0] == std::make_pair(std::string("alice"), std::string("owner")));
  CHECK(members[1] == std::make_pair(std::string("bob"), std::string("member")));

  CHECK(s->setOrgMember("nope", "bob", "member").code() == Code::kNotFound);
  CHECK(s->setOrgMember("acme", "nobody", "member").code() == Code::kNotFound);
  CHECK(s->removeOrgMember("acme", "nobody").code() == Code::kNotFound);

  REQUIRE(s->deleteOrg("acme").isOk());
  CHECK_FALSE(s->orgExists("acme"));
  CHECK(s->orgRole("acme", "alice").empty());
  CHECK(s->orgMembers("acme").empty());
  CHECK(s->deleteOrg("acme").code() == Code::kNotFound);
}

TEST_CASE("identity: team membership implies organization membership", "[auth]") {
  TempDir dir;
  Store s(dir / "meta", GENERATE(from_range(test::metadataBackends())));
  INFO(s.name());
  REQUIRE(s->createUser(makeUser("alice")).isOk());
  REQUIRE(s->createUser(makeUser("bob")).isOk());
  REQUIRE(s->createOrg("acme", "alice").isOk());
  CHECK(s->createTeam("nope", "devs", "").code() == Code::kNotFound);
  REQUIRE(s->createTeam("acme", "devs", "developers").isOk());
  CHECK(s->createTeam("acme", "devs", "again").code() == Code::kConflict);
  CHECK(s->teamExists("acme", "devs"));
  CHECK_FALSE(s->teamExists("acme", "ops"));
  CHECK(s->teams("acme") == std::vector<std::string>{"devs"});

  CHECK(s->orgRole("acme", "bob").empty());
  REQUIRE(s->addTeamMember("acme", "devs", "bob").isOk());
  CHECK(s->orgRole("acme", "bob") == "member");
  // An owner added to a team stays an owner.
  REQUIRE(s->addTeamMember("acme", "devs", "alice").isOk());
  CHECK(s->orgRole("acme", "alice") == "owner");
  CHECK(s->teamMembers("acme", "devs") == std::vector<std::string>{"alice", "bob"});
  CHECK(s->userTeams("acme", "bob") == std::vector<std::string>{"acme/devs"});

  CHECK(s->addTeamMember("acme", "ops", "bob").code() == Code::kNotFound);
  CHECK(s->addTeamMember("acme", "devs", "nobody").code() == Code::kNotFound);

  REQUIRE(s->removeTeamMember("acme", "devs", "bob").isOk());
  CHECK(s->teamMembers("acme", "devs") == std::vector<std::string>{"alice"});
  CHECK(s->userTeams("acme", "bob").empty());
  CHECK(s->orgRole("acme", "bob") == "member");  // still in the organization
  CHECK(s->removeTeamMember("acme", "devs", "bob").code() == Code::kNotFound);
}

TEST_CASE("identity: removing an organization member removes their team memberships", "[auth]") {
  TempDir dir;
  Store s(dir / "meta", GENERATE(from_range(test::metadataBackends())));
  INFO(s.name());
  for (const char* u : {"alice", "bob", "carol"}) REQUIRE(s->createUser(makeUser(u)).isOk());
  REQUIRE(s->createOrg("acme", "alice").isOk());
  REQUIRE(s->createOrg("other", "alice").isOk());
  REQUIRE(s->createTeam("acme", "devs", "").isOk());
  REQUIRE(s->createTeam("acme", "ops", "").isOk());
  REQUIRE(s->createTeam("other", "devs", "").isOk());
  REQUIRE(s->addTeamMember("acme", "devs", "bob").isOk());
  REQUIRE(s->addTeamMember("acme", "ops", "bob").isOk());
  REQUIRE(s->addTeamMember("acme", "devs", "carol").isOk());
  REQUIRE(s->addTeamMember("other", "devs", "bob").isOk());
  CHECK(s->userTeams("acme", "bob") == std::vector<std::string>{"acme/devs", "acme/ops"});

  REQUIRE(s->removeOrgMember("acme", "bob").isOk());
  CHECK(s->orgRole("acme", "bob").empty());
  CHECK(s->userTeams("acme", "bob").empty());
  CHECK(s->teamMembers("acme", "devs") == std::vector<std::string>{"carol"});
  CHECK(s->teamMembers("acme", "ops").empty());
  // Other organizations are untouched.
  CHECK(s->userTeams("other", "bob") == std::vector<std::string>{"other/devs"});
  CHECK(s->orgRole("other", "bob") == "member");
}

TEST_CASE("identity: deleting a team removes its memberships", "[auth]") {
  TempDir dir;
  Store s(dir / "meta", GENERATE(from_range(test::metadataBackends())));
  INFO(s.name());
  REQUIRE(s->createUser(makeUser("bob")).isOk());
  REQUIRE(s->createOrg("acme", "").isOk());
  REQUIRE(s->createTeam("acme", "devs", "").isOk());
  REQUIRE(s->addTeamMember("acme", "devs", "bob").isOk());
  REQUIRE(s->deleteTeam("acme", "devs").isOk());
  CHECK_FALSE(s->teamExists("acme", "devs"));
  CHECK(s->userTeams("acme", "bob").empty());
  CHECK(s->deleteTeam("acme", "devs").code() == Code::kNotFound);
  // Recreating the team does not bring the old members back.
  REQUIRE(s->createTeam("acme", "devs", "").isOk());
  CHECK(s->teamMembers("acme", "devs").empty());
}

TEST_CASE("identity: repository settings", "[auth]") {
  TempDir dir;
  Store s(dir / "meta", GENERATE(from_range(test::metadataBackends())));
  INFO(s.name());
  CHECK_FALSE(s->repoSettings("acme/app").has_value());
  REQUIRE(s->putRepoSettings("acme/app", RepoSettings{true, "the app"}).isOk());
  auto rs = s->repoSettings("acme/app");
  REQUIRE(rs.has_value());
  CHECK(rs->is_public);
  CHECK(rs->description == "the app");
  REQUIRE(s->putRepoSettings("acme/app", RepoSettings{false, ""}).isOk());
  CHECK_FALSE(s->repoSettings("acme/app")->is_public);
}

TEST_CASE("identity: grants are set, replaced and removed", "[auth]") {
  TempDir dir;
  Store s(dir / "meta", GENERATE(from_range(test::metadataBackends())));
  INFO(s.name());
  CHECK(s->grantFor("acme/app", "user", "bob") == Role::kNone);
  REQUIRE(s->setGrant("acme/app", Grant{"user", "bob", Role::kRead}).isOk());
  CHECK(s->grantFor("acme/app", "user", "bob") == Role::kRead);
  REQUIRE(s->setGrant("acme/app", Grant{"user", "bob", Role::kWrite}).isOk());
  CHECK(s->grantFor("acme/app", "user", "bob") == Role::kWrite);
  REQUIRE(s->setGrant("acme/app", Grant{"team", "acme/devs", Role::kAdmin}).isOk());
  REQUIRE(s->setGrant("acme/app2", Grant{"user", "bob", Role::kAdmin}).isOk());

  auto gs = s->grants("acme/app");
  REQUIRE(gs.size() == 2);
  CHECK(gs[0].kind == "team");
  CHECK(gs[0].principal == "acme/devs");
  CHECK(gs[0].role == Role::kAdmin);
  CHECK(gs[1].kind == "user");
  CHECK(gs[1].principal == "bob");
  CHECK(gs[1].role == Role::kWrite);
  // The kind matters: a team grant is not a user grant.
  CHECK(s->grantFor("acme/app", "user", "acme/devs") == Role::kNone);
  // Grants of another repository sharing the prefix are separate.
  CHECK(s->grantFor("acme/app2", "user", "bob") == Role::kAdmin);

  REQUIRE(s->setGrant("acme/app", Grant{"user", "bob", Role::kNone}).isOk());
  CHECK(s->grantFor("acme/app", "user", "bob") == Role::kNone);
  REQUIRE(s->grants("acme/app").size() == 1);
  // Removing a grant that is not there is fine.
  CHECK(s->setGrant("acme/app", Grant{"user", "nobody", Role::kNone}).isOk());

  // Deleting the repository settings deletes its grants, not those of acme/app2.
  REQUIRE(s->putRepoSettings("acme/app", RepoSettings{true, ""}).isOk());
  REQUIRE(s->deleteRepoSettings("acme/app").isOk());
  CHECK_FALSE(s->repoSettings("acme/app").has_value());
  CHECK(s->grants("acme/app").empty());
  CHECK(s->grantFor("acme/app2", "user", "bob") == Role::kAdmin);
  CHECK(s->deleteRepoSettings("never/was").isOk());
}

TEST_CASE("identity: access tokens; deleteUser removes the user's tokens", "[auth]") {
  TempDir dir;
  Store s(dir / "meta", GENERATE(from_range(test::metadataBackends())));
  INFO(s.name());
  REQUIRE(s->createUser(makeUser("alice")).isOk());
  REQUIRE(s->createUser(makeUser("bob")).isOk());
  AccessToken t;
  t.id = "tok1";
  t.user = "alice";
  t.name = "ci";
  t.secret_hash = "ab";
  t.scopes = {"repository:alice/*:pull"};
  t.created_ms = 10;
  t.expires_ms = 20;
  REQUIRE(s->putAccessToken(t).isOk());
  AccessToken t2 = t;
  t2.id = "tok2";
  t2.scopes.clear();
  REQUIRE(s->putAccessToken(t2).isOk());
  AccessToken tb = t;
  tb.id = "tokb";
  tb.user = "bob";
  REQUIRE(s->putAccessToken(tb).isOk());

  auto got = s->accessToken("tok1");
  REQUIRE(got.isOk());
  CHECK(got->user == "alice");
  CHECK(got->name == "ci");
  CHECK(got->secret_hash == "ab");
  CHECK(got->scopes == std::vector<std::string>{"repository:alice/*:pull"});
  CHECK(got->created_ms == 10);
  CHECK(got->expires_ms == 20);
  CHECK_FALSE(got->toJson().contains("hash"));
  CHECK_FALSE(got->toJson().contains("secret_hash"));
  CHECK(s->accessTokens("alice").size() == 2);
  CHECK(s->accessTokens("bob").size() == 1);
  CHECK(s->accessToken("nope").status().code() == Code::kNotFound);

  REQUIRE(s->deleteAccessToken("tok2").isOk());
  CHECK(s->accessToken("tok2").status().code() == Code::kNotFound);
  CHECK(s->deleteAccessToken("tok2").code() == Code::kNotFound);

  REQUIRE(s->deleteUser("alice").isOk());
  CHECK(s->accessToken("tok1").status().code() == Code::kNotFound);
  CHECK(s->accessTokens("alice").empty());
  CHECK(s->accessToken("tokb").isOk());
}

TEST_CASE("identity: imported audit entries keep their seq; a run again skips them; another log's are refused",
          "[auth]") {
  TempDir dir;
  Store s(dir / "meta", GENERATE(from_range(test::metadataBackends())));
  INFO(s.name());
  std::vector<AuditEntry> moved = {entry(100, "alice", "login", "success"), entry(101, "bob", "push", "denied"),
                                   entry(102, "carol", "pull", "success")};
  moved[0].seq = 7;  // an older log pruned below 7
  moved[1].seq = 8;
  moved[2].seq = 10;
  moved[1].detail = "count=3";
  REQUIRE(s->importAudit(moved).isOk());
  REQUIRE(s->importAudit(moved).isOk());  // run again: the same entries, nothing doubled
  REQUIRE(s->importAudit({}).isOk());
  auto all = s->queryAudit(AuditQuery{});
  CHECK(seqs(all) == std::vector<int64_t>{7, 8, 10});
  REQUIRE(all.size() == 3);
  CHECK(all[1] == moved[1]);
  // New entries follow the highest, also after a reopen.
  std::vector<AuditEntry> next = {entry(103, "dave", "login", "success")};
  REQUIRE(s->appendAudit(next).isOk());
  CHECK(next[0].seq == 11);
  s.close();
  s.open();
  next = {entry(104, "erin", "login", "success")};
  REQUIRE(s->appendAudit(next).isOk());
  CHECK(next[0].seq == 12);
  // Entry 8 of another log is not this one's 8: the batch is refused whole.
  std::vector<AuditEntry> other = {entry(200, "mallory", "login", "success"), entry(201, "mallory", "push", "success")};
  other[0].seq = 9;
  other[1].seq = 8;
  Status refused = s->importAudit(other);
  CHECK(refused.code() == Code::kConflict);
  CHECK(seqs(s->queryAudit(AuditQuery{})) == std::vector<int64_t>{7, 8, 10, 11, 12});
  AuditEntry unnumbered = entry(300, "x", "login", "success");
  CHECK(s->importAudit({unnumbered}).code() == Code::kInvalidArgument);
}

TEST_CASE("identity: settings are listed by key", "[auth]") {
  TempDir dir;
  Store s(dir / "meta", GENERATE(from_range(test::metadataBackends())));
  INFO(s.name());
  CHECK(s->settings().empty());
  REQUIRE(s->putSetting("ldap", nlohmann::json{{"url", "ldap://x"}, {"bind_password", "p"}}).isOk());
  REQUIRE(s->putSetting("another", nlohmann::json::array({1, 2})).isOk());
  auto all = s->settings();
  REQUIRE(all.size() == 2);
  CHECK(all[0].first == "another");
  CHECK(all[0].second == nlohmann::json::array({1, 2}));
  CHECK(all[1].first == "ldap");
  CHECK(all[1].second["bind_password"] == "p");
}

TEST_CASE("identity: audit appends assign increasing seq across batches and reopen", "[auth]") {
  TempDir dir;
  Store s(dir / "meta", GENERATE(from_range(test::metadataBackends())));
  INFO(s.name());
  std::vector<AuditEntry> b1 = {entry(100, "alice", "login", "success"), entry(101, "bob", "push", "denied"),
                                entry(102, "alice", "pull", "success")};
  REQUIRE(s->appendAudit(b1).isOk());
  CHECK(seqs(b1) == std::vector<int64_t>{1, 2, 3});
  std::vector<AuditEntry> b2 = {entry(103, "carol", "login", "failure"), entry(104, "alice", "delete", "success")};
  REQUIRE(s->appendAudit(b2).isOk());
  CHECK(seqs(b2) == std::vector<int64_t>{4, 5});
  std::vector<AuditEntry> empty;
  REQUIRE(s->appendAudit(empty).isOk());

  s.close();
  s.open();  // the same directory or database
  std::vector<AuditEntry> b3 = {entry(105, "dave", "login", "success")};
  REQUIRE(s->appendAudit(b3).isOk());
  CHECK(b3[0].seq == 6);

  auto all = s->queryAudit(AuditQuery{});
  CHECK(seqs(all) == std::vector<int64_t>{1, 2, 3, 4, 5, 6});
  REQUIRE(all.size() == 6);
  CHECK(all[1].actor == "bob");
  CHECK(all[1].action == "push");
  CHECK(all[1].outcome == "denied");
  CHECK(all[1].source == "10.0.0.1");
  CHECK(all[1].object == "repo/x");
  CHECK(all[1].time_ms == 101);
  CHECK(all[1].toJson()["seq"] == 2);
}

TEST_CASE("identity: queryAudit filters", "[auth]") {
  TempDir dir;
  Store s(dir / "meta", GENERATE(from_range(test::metadataBackends())));
  INFO(s.name());
  std::vector<AuditEntry> b = {
      entry(1000, "alice", "login", "success"),  // 1
      entry(2000, "bob", "login", "failure"),    // 2
      entry(3000, "alice", "push", "success", "alice/app"),  // 3
      entry(4000, "bob", "pull", "denied", "alice/app"),     // 4
      entry(5000, "alice", "login", "failure"),  // 5
      entry(6000, "carol", "pull", "success"),   // 6
  };
  REQUIRE(s->appendAudit(b).isOk());

  auto q = [&](auto setup) {
    AuditQuery query;
    setup(query);
    return seqs(s->queryAudit(query));
  };
  CHECK(q([](AuditQuery& x) { x.actor = "alice"; }) == std::vector<int64_t>{1, 3, 5});
  CHECK(q([](AuditQuery& x) { x.action = "login"; }) == std::vector<int64_t>{1, 2, 5});
  CHECK(q([](AuditQuery& x) { x.outcome = "failure"; }) == std::vector<int64_t>{2, 5});
  CHECK(q([](AuditQuery& x) { x.object = "alice/app"; }) == std::vector<int64_t>{3, 4});
  CHECK(q([](AuditQuery& x) {
          x.actor = "alice";
          x.action = "login";
          x.outcome = "failure";
        }) == std::vector<int64_t>{5});
  CHECK(q([](AuditQuery& x) { x.since_ms = 3000; }) == std::vector<int64_t>{3, 4, 5, 6});
  CHECK(q([](AuditQuery& x) { x.until_ms = 2000; }) == std::vector<int64_t>{1, 2});
  CHECK(q([](AuditQuery& x) {
          x.since_ms = 2000;
          x.until_ms = 4000;
        }) == std::vector<int64_t>{2, 3, 4});
  CHECK(q([](AuditQuery& x) { x.after_seq = 4; }) == std::vector<int64_t>{5, 6});
  CHECK(q([](AuditQuery& x) { x.limit = 2; }) == std::vector<int64_t>{1, 2});
  CHECK(q([](AuditQuery& x) {
          x.after_seq = 2;
          x.limit = 2;
        }) == std::vector<int64_t>{3, 4});
  // The limit counts matches, not scanned entries.
  CHECK(q([](AuditQuery& x) {
          x.actor = "alice";
          x.limit = 2;
        }) == std::vector<int64_t>{1, 3});
  CHECK(q([](AuditQuery& x) { x.actor = "nobody"; }).empty());
  CHECK(q([](AuditQuery& x) { x.after_seq = 6; }).empty());

  // Paging through everything with the cursor.
  std::vector<int64_t> paged;
  AuditQuery page;
  page.limit = 4;
  for (int i = 0; i < 10; ++i) {
    auto got = s->queryAudit(page);
    if (got.empty()) break;
    for (const auto& e : got) paged.push_back(e.seq);
    page.after_seq = got.back().seq;
  }
  CHECK(paged == std::vector<int64_t>{1, 2, 3, 4, 5, 6});
}

TEST_CASE("identity: pruneAudit removes only older entries", "[auth]") {
  TempDir dir;
  Store s(dir / "meta", GENERATE(from_range(test::metadataBackends())));
  INFO(s.name());
  std::vector<AuditEntry> b = {entry(1000, "a1", "login", "success"), entry(2000, "a2", "login", "success"),
                               entry(3000, "a3", "login", "success"), entry(4000, "a4", "login", "success")};
  REQUIRE(s->appendAudit(b).isOk());
  CHECK(s->pruneAudit(1000) == 0);
  CHECK(s->pruneAudit(3000) == 2);
  CHECK(seqs(s->queryAudit(AuditQuery{})) == std::vector<int64_t>{3, 4});
  CHECK(s->pruneAudit(3000) == 0);
  // Sequence numbers keep increasing after a prune.
  std::vector<AuditEntry> more = {entry(5000, "a5", "login", "success")};
  REQUIRE(s->appendAudit(more).isOk());
  CHECK(more[0].seq == 5);
  CHECK(s->pruneAudit(100000) == 3);
  CHECK(s->queryAudit(AuditQuery{}).empty());
  // Even when the log was emptied.
  std::vector<AuditEntry> after = {entry(6000, "a6", "login", "success")};
  REQUIRE(s->appendAudit(after).isOk());
  CHECK(after[0].seq == 6);
}

TEST_CASE("identity: settings", "[auth]") {
  TempDir dir;
  Store s(dir / "meta", GENERATE(from_range(test::metadataBackends())));
  INFO(s.name());
  CHECK_FALSE(s->setting("ldap").has_value());
  REQUIRE(s->putSetting("ldap", nlohmann::json{{"url", "ldaps://x"}, {"port", 636}}).isOk());
  auto v = s->setting("ldap");
  REQUIRE(v.has_value());
  CHECK((*v)["url"] == "ldaps://x");
  CHECK((*v)["port"] == 636);
  REQUIRE(s->putSetting("ldap", nlohmann::json("replaced")).isOk());
  CHECK(*s->setting("ldap") == nlohmann::json("replaced"));
}

TEST_CASE("identity: data survives reopening", "[auth]") {
  TempDir dir;
  const MetadataBackend backend = GENERATE(from_range(test::metadataBackends()));
  std::string pg_url;
  {
    Store s(dir / "meta", backend);
    INFO(s.name());
    pg_url = s.pg_url;
    REQUIRE(s->createUser(makeUser("alice")).isOk());
    REQUIRE(s->createOrg("acme", "alice").isOk());
    REQUIRE(s->createTeam("acme", "devs", "").isOk());
    REQUIRE(s->addTeamMember("acme", "devs", "alice").isOk());
    REQUIRE(s->setGrant("acme/app", Grant{"team", "acme/devs", Role::kWrite}).isOk());
  }
  Store s(dir / "meta", backend, pg_url);
  INFO(s.name());
  CHECK(s->user("alice").isOk());
  CHECK(s->orgRole("acme", "alice") == "owner");
  CHECK(contains(s->userTeams("acme", "alice"), "acme/devs"));
  CHECK(s->grantFor("acme/app", "team", "acme/devs") == Role::kWrite);
}

TEST_CASE("identity: edges are created, registered once, found by credential, touched and deleted", "[auth]") {
  TempDir dir;
  Store s(dir / "meta", GENERATE(from_range(test::metadataBackends())));
  INFO(s.name());
  auto pending = [](const std::string& name, const std::string& join_hash, int64_t expires_ms) {
    Edge e;
    e.name = name;
    e.site = "site-" + name;
    e.settings = nlohmann::json{{"tag_ttl", "5m"}};
    e.join_hash = join_hash;
    e.join_expires_ms = expires_ms;
    e.created_by = "alice";
    e.created_ms = 100;
    return e;
  };
  CHECK(s->edge("berlin").status().code() == Code::kNotFound);
  REQUIRE(s->createEdge(pending("berlin", "join-1", 10000)).isOk());
  CHECK(s->createEdge(pending("berlin", "join-9", 10000)).code() == Code::kConflict);
  REQUIRE(s->createEdge(pending("amsterdam", "join-2", 10000)).isOk());
  auto all = s->edges();
  REQUIRE(all.size() == 2);
  CHECK(all[0].name == "amsterdam");
  CHECK(all[1].name == "berlin");
  auto e = s->edge("berlin");
  REQUIRE(e.isOk());
  CHECK(e->site == "site-berlin");
  CHECK(e->settings == nlohmann::json{{"tag_ttl", "5m"}});
  CHECK(e->join_hash == "join-1");
  CHECK(e->join_expires_ms == 10000);
  CHECK(e->created_by == "alice");
  CHECK(e->created_ms == 100);
  CHECK_FALSE(e->registered());
  CHECK(e->registered_ms == 0);
  CHECK(e->last_seen_ms == 0);

  // A join token is not a credential; an expired one (expiry at or before now) is refused.
  CHECK(s->edgeByCredential("join-1").status().code() == Code::kUnauthorized);
  CHECK(s->redeemJoinToken("join-1", "cred-1", 10000).status().code() == Code::kUnauthorized);
  CHECK(s->redeemJoinToken("nope", "cred-1", 5000).status().code() == Code::kUnauthorized);
  CHECK(s->redeemJoinToken("", "cred-1", 5000).status().code() == Code::kUnauthorized);
  auto r = s->redeemJoinToken("join-1", "cred-1", 5000);
  REQUIRE(r.isOk());
  CHECK(r->name == "berlin");
  CHECK(r->registered());
  CHECK(r->join_hash.empty());
  CHECK(r->credential_hash == "cred-1");
  CHECK(r->registered_ms == 5000);
  CHECK(r->last_seen_ms == 5000);
  CHECK(r->settings == nlohmann::json{{"tag_ttl", "5m"}});
  // Once.
  CHECK(s->redeemJoinToken("join-1", "cred-2", 5000).status().code() == Code::kUnauthorized);
  // A credential is not a join token.
  CHECK(s->redeemJoinToken("cred-1", "cred-3", 5000).status().code() == Code::kUnauthorized);
  auto by = s->edgeByCredential("cred-1");
  REQUIRE(by.isOk());
  CHECK(by->name == "berlin");
  CHECK(s->edgeByCredential("").status().code() == Code::kUnauthorized);
  CHECK(s->edge("berlin")->registered());

  // last_seen only moves forward.
  REQUIRE(s->touchEdge("berlin", 7000).isOk());
  REQUIRE(s->touchEdge("berlin", 6000).isOk());
  CHECK(s->edge("berlin")->last_seen_ms == 7000);
  CHECK(s->touchEdge("nope", 7000).code() == Code::kNotFound);

  REQUIRE(s->putEdgeSettings("berlin", nlohmann::json{{"cache_budget", "10g"}}).isOk());
  CHECK(s->edge("berlin")->settings == nlohmann::json{{"cache_budget", "10g"}});
  CHECK(s->edge("berlin")->credential_hash == "cred-1");
  CHECK(s->putEdgeSettings("nope", nlohmann::json::object()).code() == Code::kNotFound);

  // Deleting an edge stops its credential and its join token at once.
  REQUIRE(s->deleteEdge("berlin").isOk());
  CHECK(s->edgeByCredential("cred-1").status().code() == Code::kUnauthorized);
  CHECK(s->edge("berlin").status().code() == Code::kNotFound);
  CHECK(s->deleteEdge("berlin").code() == Code::kNotFound);
  REQUIRE(s->deleteEdge("amsterdam").isOk());
  CHECK(s->redeemJoinToken("join-2", "cred-4", 5000).status().code() == Code::kUnauthorized);
  CHECK(s->edges().empty());
}

TEST_CASE("identity: deleting a user or an organization removes the grants to them", "[auth]") {
  TempDir dir;
  Store s(dir / "meta", GENERATE(from_range(test::metadataBackends())));
  INFO(s.name());
  REQUIRE(s->createUser(makeUser("bob")).isOk());
  REQUIRE(s->createOrg("acme", "bob").isOk());
  REQUIRE(s->createOrg("acmex", "").isOk());
  REQUIRE(s->createTeam("acme", "devs", "").isOk());
  REQUIRE(s->createTeam("acmex", "devs", "").isOk());
  REQUIRE(s->setGrant("other/app", Grant{"team", "acme/devs", Role::kRead}).isOk());
  REQUIRE(s->setGrant("other/app", Grant{"team", "acmex/devs", Role::kWrite}).isOk());
  REQUIRE(s->setGrant("other/app", Grant{"user", "bob", Role::kAdmin}).isOk());
  REQUIRE(s->setGrant("other/app", Grant{"user", "carol", Role::kRead}).isOk());
  REQUIRE(s->setGrant("acme/app", Grant{"user", "carol", Role::kWrite}).isOk());

  REQUIRE(s->deleteOrg("acme").isOk());
  CHECK(s->grantFor("other/app", "team", "acme/devs") == Role::kNone);
  CHECK(s->grantFor("other/app", "team", "acmex/devs") == Role::kWrite);
  CHECK(s->grantFor("other/app", "user", "bob") == Role::kAdmin);
  CHECK(s->teams("acmex") == std::vector<std::string>{"devs"});

  REQUIRE(s->deleteUser("bob").isOk());
  CHECK(s->grantFor("other/app", "user", "carol") == Role::kRead);
  // (Both held on PostgreSQL only until the LMDB store's keys were built from literals
  // starting with '\0', which read as "".)
  CHECK(s->grantFor("acme/app", "user", "carol") == Role::kWrite);
  CHECK(s->grantFor("other/app", "user", "bob") == Role::kNone);
  // A new account of that name inherits nothing.
  REQUIRE(s->createUser(makeUser("bob")).isOk());
  CHECK(s->grants("other/app").size() == 2);
}

TEST_CASE("identity: an audit entry with bytes that are not UTF-8 is stored, not thrown on", "[auth]") {
  TempDir dir;
  Store s(dir / "meta", GENERATE(from_range(test::metadataBackends())));
  INFO(s.name());
  std::vector<AuditEntry> batch(1);
  batch[0].time_ms = 1;
  batch[0].actor = std::string("mallory\xff\xfe");  // a Basic user name as sent
  batch[0].action = "login";
  batch[0].outcome = "failure";
  REQUIRE(s->appendAudit(batch).isOk());
  auto got = s->queryAudit(AuditQuery{});
  REQUIRE(got.size() == 1);
  CHECK(got[0].actor.rfind("mallory", 0) == 0);
}

TEST_CASE("identity: text that cannot be a name finds nothing", "[auth]") {
  TempDir dir;
  Store s(dir / "meta", GENERATE(from_range(test::metadataBackends())));
  INFO(s.name());
  REQUIRE(s->createUser(makeUser("alice")).isOk());
  CHECK(s->user(std::string("al\xff" "ice")).status().code() == Code::kNotFound);
  CHECK(s->user(std::string("alice\0x", 7)).status().code() == Code::kNotFound);
  CHECK(s->accessToken(std::string("\xc3\x28")).status().code() == Code::kNotFound);
  CHECK_FALSE(s->orgExists(std::string("\xed\xa0\x80")));  // a surrogate
  CHECK(s->orgRole("\xff", "alice").empty());
  CHECK(s->users("", 10).size() == 1);
}

TEST_CASE("identity on PostgreSQL: audit entries are never lost to bytes the database cannot hold", "[auth][pg]") {
  if (!test::PostgresServer::available()) return;
  TempDir dir;
  Store s(dir / "meta", MetadataBackend::kPostgres);
  // A login's user name comes from the request as it is.
  std::vector<AuditEntry> b = {entry(1, "ok", "login", "success"),
                               entry(2, std::string("bad\xff\0x", 6), "login", "failure", std::string("o\xc3", 2)),
                               entry(3, "ok2", "login", "success")};
  REQUIRE(s->appendAudit(b).isOk());
  auto all = s->queryAudit(AuditQuery{});
  REQUIRE(all.size() == 3);
  CHECK(all[1].actor == "bad\xEF\xBF\xBD\xEF\xBF\xBDx");
  CHECK(all[1].object == "o\xEF\xBF\xBD");
  CHECK(all[2].actor == "ok2");
  // Other writes of such text are refused, not cut short at the NUL.
  CHECK(s->putSetting(std::string("k\0ey", 4), nlohmann::json(1)).code() == Code::kInvalidArgument);
  CHECK_FALSE(s->setting("k").has_value());
}

TEST_CASE("identity on PostgreSQL: two replicas redeem a join token once and claim a name once", "[auth][pg]") {
  if (!test::PostgresServer::available()) return;
  TempDir dir;
  constexpr int kThreads = 8;  // per replica, each with a connection of its own
  Store a(dir / "a", MetadataBackend::kPostgres, "", kThreads);
  Store b(dir / "b", MetadataBackend::kPostgres, a.pg_url, kThreads);
  IdentityStore* replicas[] = {a.ids.get(), b.ids.get()};

  Edge e;
  e.name = "edge-1";
  e.site = "berlin";
  e.join_hash = "join-hash";
  e.join_expires_ms = 100000;
  e.created_by = "admin";
  e.created_ms = 1;
  REQUIRE(a->createEdge(e).isOk());

  std::mutex mu;
  int redeemed = 0, refused = 0;
  std::vector<std::string> errors;
  std::string winner;
  {
    std::latch start(2 * kThreads);
    std::vector<std::thread> threads;
    for (int i = 0; i < 2 * kThreads; ++i) {
      threads.emplace_back([&, i] {
        std::string credential = "credential-" + std::to_string(i);
        start.arrive_and_wait();
        auto r = replicas[i % 2]->redeemJoinToken("join-hash", credential, 5000);
        std::lock_guard lock(mu);
        if (r.isOk()) {
          ++redeemed;
          winner = credential;
        } else if (r.status().code() == Code::kUnauthorized) {
          ++refused;
        } else {
          errors.push_back(r.status().toString());
        }
      });
    }
    for (auto& t : threads) t.join();
  }
  CHECK(errors.empty());
  CHECK(redeemed == 1);
  CHECK(refused == 2 * kThreads - 1);
  auto registered = b->edgeByCredential(winner);
  REQUIRE(registered.isOk());
  CHECK(registered->name == "edge-1");
  CHECK(registered->registered());
  CHECK(registered->join_hash.empty());
  CHECK(a->redeemJoinToken("join-hash", "late", 5000).status().code() == Code::kUnauthorized);

  // The same name created at once on both replicas (a user on both, or a user on one and
  // an organization on the other): one is created, the other told kConflict.
  auto race = [&](const std::string& name, bool org_on_b) {
    Status sa, sb;
    std::latch start(2);
    std::thread ta([&] {
      start.arrive_and_wait();
      sa = replicas[0]->createUser(makeUser(name));
    });
    std::thread tb([&] {
      start.arrive_and_wait();
      sb = org_on_b ? replicas[1]->createOrg(name, "") : replicas[1]->createUser(makeUser(name));
    });
    ta.join();
    tb.join();
    return std::make_pair(sa, sb);
  };
  for (int round = 0; round < 20; ++round) {
    for (bool org_on_b : {false, true}) {
      std::string name = (org_on_b ? "both" : "racer") + std::to_string(round);
      auto [sa, sb] = race(name, org_on_b);
      INFO(name << ": " << sa.toString() << " / " << sb.toString());
      CHECK(sa.isOk() != sb.isOk());
      CHECK((sa.isOk() ? sb : sa).code() == Code::kConflict);
      CHECK(a->user(name).isOk() == !(org_on_b && sb.isOk()));
      CHECK(b->orgExists(name) == (org_on_b && sb.isOk()));
    }
  }
}

TEST_CASE("identity on PostgreSQL: replicas appending at once number the audit log in commit order", "[auth][pg]") {
  if (!test::PostgresServer::available()) return;
  TempDir dir;
  Store a(dir / "a", MetadataBackend::kPostgres);
  Store b(dir / "b", MetadataBackend::kPostgres, a.pg_url);
  IdentityStore* replicas[] = {a.ids.get(), b.ids.get()};
  constexpr int kWriters = 3, kBatches = 10, kBatchSize = 5;  // writers per replica
  constexpr int64_t kTotal = 2 * kWriters * kBatches * kBatchSize;

  std::mutex mu;
  std::vector<std::vector<int64_t>> batches;
  std::vector<std::string> errors;
  std::atomic<bool> writing{true};
  // A reader pages by seq meanwhile. Were seq not in commit order, it could see an entry
  // before one with a smaller seq, move its cursor past that one and never see it.
  std::vector<int64_t> read;
  std::thread reader([&] {
    AuditQuery q;
    q.limit = 7;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      bool done = !writing.load();  // before the query: an empty answer then means all was read
      auto got = replicas[0]->queryAudit(q);
      for (const auto& e : got) read.push_back(e.seq);
      if (!got.empty()) {
        q.after_seq = got.back().seq;
      } else if (done) {
        break;
      }
    }
  });
  std::vector<std::thread> writers;
  for (int w = 0; w < 2 * kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < kBatches; ++i) {
        std::vector<AuditEntry> batch;
        for (int k = 0; k < kBatchSize; ++k) batch.push_back(entry(1000 + i, "writer" + std::to_string(w), "push", "success"));
        Status st = replicas[w % 2]->appendAudit(batch);
        std::lock_guard lock(mu);
        if (st.isOk()) {
          batches.push_back(seqs(batch));
        } else {
          errors.push_back(st.toString());
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  writing = false;
  reader.join();

  CHECK(errors.empty());
  REQUIRE(batches.size() == static_cast<size_t>(2 * kWriters * kBatches));
  std::set<int64_t> all;
  bool contiguous = true;
  for (const auto& batch : batches) {
    for (size_t k = 1; k < batch.size(); ++k) contiguous = contiguous && batch[k] == batch[k - 1] + 1;
    all.insert(batch.begin(), batch.end());
  }
  CHECK(contiguous);
  std::vector<int64_t> expected;
  for (int64_t seq = 1; seq <= kTotal; ++seq) expected.push_back(seq);
  CHECK(std::vector<int64_t>(all.begin(), all.end()) == expected);
  CHECK(read == expected);
  AuditQuery everything;
  everything.limit = 1000;
  CHECK(seqs(replicas[1]->queryAudit(everything)) == expected);
}

TEST_CASE("identity: failed sign-ins are counted per key in windows", "[auth]") {
  TempDir dir;
  Store s(dir / "meta", GENERATE(from_range(test::metadataBackends())));
  IdentityStore& ids = *s.ids;
  constexpr int64_t kWindow = 60'000;
  CHECK(ids.signInFailures("u:alice", 1'000'000, kWindow) == 0);
  for (int i = 0; i < 3; ++i) ids.recordSignInFailure("u:alice", 1'000'000 + i, kWindow);
  ids.recordSignInFailure("s:10.0.0.1", 1'000'000, kWindow);
  CHECK(ids.signInFailures("u:alice", 1'000'010, kWindow) == 3);
  CHECK(ids.signInFailures("s:10.0.0.1", 1'000'010, kWindow) == 1);
  CHECK(ids.signInFailures("u:bob", 1'000'010, kWindow) == 0);
  // The window is over: nothing counts, and the next failure starts a new one.
  CHECK(ids.signInFailures("u:alice", 1'000'000 + kWindow + 1, kWindow) == 0);
  ids.recordSignInFailure("u:alice", 1'000'000 + kWindow + 5, kWindow);
  CHECK(ids.signInFailures("u:alice", 1'000'000 + kWindow + 6, kWindow) == 1);
}

TEST_CASE("identity on PostgreSQL: replicas count failed sign-ins together", "[auth][pg]") {
  if (!test::PostgresServer::available()) return;
  TempDir dir;
  Store a(dir / "a", MetadataBackend::kPostgres);
  Store b(dir / "b", MetadataBackend::kPostgres, a.pg_url);
  std::vector<std::thread> threads;
  for (IdentityStore* r : {a.ids.get(), b.ids.get()}) {
    for (int t = 0; t < 3; ++t) {
      threads.emplace_back([r] {
        for (int i = 0; i < 10; ++i) r->recordSignInFailure("u:alice", 5'000'000, 60'000);
      });
    }
  }
  for (auto& t : threads) t.join();
  CHECK(a.ids->signInFailures("u:alice", 5'000'001, 60'000) == 60);
  CHECK(b.ids->signInFailures("u:alice", 5'000'001, 60'000) == 60);
}

}  // namespace identity_store_test
