#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/auth/identity_store.h"
#include "core/auth/lmdb_identity_store.h"
#include "core/metadata/lmdb_metadata_store.h"
#include "tests/support/temp_dir.h"

// Each file's own names: the test binaries are unity builds.
namespace identity_store_test {

using namespace wharf;
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
  Store s(dir / "meta");
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
  Store s(dir / "meta");
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
  Store s(dir / "meta");
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
  Store s(dir / "meta");
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
  Store s(dir / "meta");
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
  Store s(dir / "meta");
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
  Store s(dir / "meta");
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
  Store s(dir / "meta");
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
  Store s(dir / "meta");
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

TEST_CASE("identity: audit appends assign increasing seq across batches and reopen", "[auth]") {
  TempDir dir;
  Store s(dir / "meta");
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
  s.open(dir / "meta");
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
  Store s(dir / "meta");
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
  Store s(dir / "meta");
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
}

TEST_CASE("identity: settings", "[auth]") {
  TempDir dir;
  Store s(dir / "meta");
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
  {
    Store s(dir / "meta");
    REQUIRE(s->createUser(makeUser("alice")).isOk());
    REQUIRE(s->createOrg("acme", "alice").isOk());
    REQUIRE(s->createTeam("acme", "devs", "").isOk());
    REQUIRE(s->addTeamMember("acme", "devs", "alice").isOk());
    REQUIRE(s->setGrant("acme/app", Grant{"team", "acme/devs", Role::kWrite}).isOk());
  }
  Store s(dir / "meta");
  CHECK(s->user("alice").isOk());
  CHECK(s->orgRole("acme", "alice") == "owner");
  CHECK(contains(s->userTeams("acme", "alice"), "acme/devs"));
  CHECK(s->grantFor("acme/app", "team", "acme/devs") == Role::kWrite);
}

}  // namespace identity_store_test
