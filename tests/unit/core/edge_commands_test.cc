#include <catch2/catch.hpp>

#include "core/fleet/channel_hub.h"
#include "core/fleet/edge_commands.h"
#include "shared/auth/revocation.h"
#include "shared/store/lmdb.h"
#include "tests/support/temp_dir.h"

// Each file's own names: the test binaries are unity builds.
namespace edge_commands_test {

using namespace wharf;
using namespace wharf::test;
using nlohmann::json;

namespace {
std::shared_ptr<LmdbEnv> openEnv(const std::string& path) {
  LmdbEnv::Options o;
  o.map_size = 64ull << 20;
  o.durable = false;
  auto env = LmdbEnv::open(path, o);
  REQUIRE(env.isOk());
  return std::shared_ptr<LmdbEnv>(std::move(env).value());
}
}  // namespace

TEST_CASE("edge commands: queued, pending in order, the first outcome stands", "[core][fleet]") {
  TempDir dir;
  auto store = openLmdbEdgeCommandStore(openEnv(dir / "meta.lmdb"));
  REQUIRE(store.isOk());
  EdgeCommandStore& s = **store;
  auto a = s.enqueue("e1", "drain", {{"retry_after", 5}}, "admin", 1000);
  auto b = s.enqueue("e1", "resume", json::object(), "admin", 2000);
  auto other = s.enqueue("e2", "inventory", {{"top", 3}}, "admin", 3000);
  REQUIRE((a.isOk() && b.isOk() && other.isOk()));
  CHECK(b->id > a->id);
  auto pending = s.pending("e1", 0, 10);
  REQUIRE(pending.isOk());
  REQUIRE(pending->size() == 2);
  CHECK((*pending)[0].kind == "drain");
  CHECK(s.pending("e1", a->id, 10)->size() == 1);  // after: what the edge has done
  REQUIRE(s.delivered("e1", {a->id}, 1500).isOk());
  CHECK(s.get("e1", a->id)->state == "delivered");
  CHECK(s.get("e1", a->id)->deliveries == 1);
  auto done = s.complete("e1", a->id, true, {{"draining", true}}, "", 1600);
  REQUIRE(done.isOk());
  CHECK(done->state == "succeeded");
  // A repeated acknowledgement (another outcome) changes nothing.
  auto again = s.complete("e1", a->id, false, json::object(), "late", 1700);
  CHECK(again->state == "succeeded");
  CHECK(again->done_ms == 1600);
  CHECK(s.pending("e1", 0, 10)->size() == 1);
  CHECK(s.complete("e1", 999, true, json::object(), "", 0).status().code() == Code::kNotFound);
  CHECK(s.complete("e2", a->id, true, json::object(), "", 0).status().code() == Code::kNotFound);  // not e2's
  auto listed = s.list("e1", 10);
  REQUIRE(listed->size() == 2);
  CHECK((*listed)[0].id == b->id);  // newest first
  REQUIRE(s.dropEdge("e1").isOk());
  CHECK(s.list("e1", 10)->empty());
  CHECK(s.list("e2", 10)->size() == 1);
  CHECK(s.marker("x").status().code() == Code::kNotFound);
  REQUIRE(s.setMarker("x", 42).isOk());
  CHECK(*s.marker("x") == 42);
}

TEST_CASE("edge commands: arguments are checked and made canonical", "[core][fleet]") {
  CHECK(validateEdgeCommand("drain", json::object())->at("retry_after") == 60);
  CHECK(validateEdgeCommand("inventory", json::object())->at("top") == 20);
  CHECK(validateEdgeCommand("purge", {{"repository", "team/app"}, {"reference", "v1"}}).isOk());
  CHECK(validateEdgeCommand("purge", {{"digest", "sha256:" + std::string(64, 'a')}}).isOk());
  for (const auto& [kind, args] : std::vector<std::pair<std::string, json>>{
           {"purge", json::object()},
           {"purge", {{"repository", "Team/App"}}},
           {"purge", {{"repository", "team/app"}, {"reference", "../x"}}},
           {"pin", {{"repository", "team/app"}}},
           {"drain", {{"retry_after", 99999}}},
           {"resume", {{"x", 1}}},
           {"explode", json::object()}}) {
    INFO(kind << " " << args.dump());
    CHECK(validateEdgeCommand(kind, args).status().code() == Code::kInvalidArgument);
  }
}

TEST_CASE("revocation list: what an entry covers", "[auth][revocation]") {
  RevocationList list;
  list.version = 3;
  list.entries = {{"subject", "alice", 100, 500}, {"via", "pat-1", 100, 500}, {"repository", "team/*", 200, 600}};
  TokenClaims old;
  old.subject = "alice";
  old.issued_at = 100;
  CHECK(list.covers(old, ""));
  TokenClaims later = old;
  later.issued_at = 101;
  CHECK_FALSE(list.covers(later, ""));
  TokenClaims bob;
  bob.subject = "bob";
  bob.issued_at = 150;
  CHECK_FALSE(list.covers(bob, "other/app"));
  CHECK(list.covers(bob, "team/app"));
  CHECK_FALSE(list.covers(bob, "team"));
  bob.via = "pat-1";
  CHECK_FALSE(list.covers(bob, ""));  // issued after the access token's revocation
  bob.issued_at = 100;
  CHECK(list.covers(bob, ""));
  TokenClaims anon;
  anon.issued_at = 150;
  CHECK(list.covers(anon, "team/app"));
  CHECK_FALSE(list.covers(anon, ""));
  auto back = RevocationList::fromJson(list.toJson());
  REQUIRE(back.isOk());
  CHECK(back->version == 3);
  CHECK(back->entries.size() == 3);
  CHECK(list.pruned(550).entries.size() == 1);
  CHECK_FALSE(RevocationList::fromJson(json{{"version", 1}, {"entries", {{{"kind", "x"}}}}}).isOk());
}

TEST_CASE("edge commands: many queued in one transaction, in order, per edge", "[core][fleet]") {
  TempDir dir;
  auto store = openLmdbEdgeCommandStore(openEnv(dir / "meta.lmdb"));
  REQUIRE(store.isOk());
  EdgeCommandStore& s = **store;
  REQUIRE(s.enqueue("e1", "resume", json::object(), "admin", 1).isOk());
  std::vector<EdgeCommandStore::New> batch;
  for (int i = 0; i < 3; ++i) {
    batch.push_back({"e1", "purge", {{"digest", "sha256:" + std::string(64, static_cast<char>('a' + i))}}});
    batch.push_back({"e2", "purge", {{"repository", "team/app"}}});
  }
  REQUIRE(s.enqueueAll(batch, "system", 2).isOk());
  auto e1 = s.pending("e1", 0, 100);
  REQUIRE(e1->size() == 4);
  for (size_t i = 1; i < e1->size(); ++i) CHECK((*e1)[i].id > (*e1)[i - 1].id);
  CHECK((*e1)[1].actor == "system");
  CHECK((*e1)[3].args["digest"] == "sha256:" + std::string(64, 'c'));
  CHECK(s.pending("e2", 0, 100)->size() == 3);
  // Ids stay unique after the batch.
  auto next = s.enqueue("e2", "resume", json::object(), "admin", 3);
  REQUIRE(next.isOk());
  CHECK(next->id > (*e1)[3].id);
  CHECK(s.enqueueAll({}, "system", 4).isOk());
}

TEST_CASE("channel hub: the edges of a site, their URLs and the site's version", "[core][fleet]") {
  ChannelHub hub;
  uint64_t v0 = hub.siteVersion("oslo");
  CHECK(v0 > 1'000'000'000'000ull);  // from the start time: a restarted core never repeats one
  hub.announce("a", "oslo", "http://10.0.0.1:5001", 1000);
  uint64_t v1 = hub.siteVersion("oslo");
  CHECK(v1 != v0);
  hub.announce("a", "oslo", "http://10.0.0.1:5001", 2000);  // polling again: nothing new
  CHECK(hub.siteVersion("oslo") == v1);
  hub.announce("b", "oslo", "http://10.0.0.2:5001", 2000);
  hub.announce("c", "rome", "http://10.0.1.1:5001", 2000);
  hub.announce("quiet", "oslo", "", 2000);  // serves no peers
  using Peers = std::vector<std::pair<std::string, std::string>>;
  CHECK(hub.peers("a", "oslo", 3000) == Peers{{"b", "http://10.0.0.2:5001"}});
  CHECK(hub.peers("b", "oslo", 3000) == Peers{{"a", "http://10.0.0.1:5001"}});
  CHECK(hub.peers("c", "rome", 3000).empty());
  // One that stopped polling drops out; back, it moves the version again.
  CHECK(hub.peers("b", "oslo", 2000 + ChannelHub::kPeerTtlMs + 1).empty());
  uint64_t v2 = hub.siteVersion("oslo");
  hub.announce("a", "oslo", "http://10.0.0.1:5001", 2000 + ChannelHub::kPeerTtlMs + 1);
  CHECK(hub.siteVersion("oslo") != v2);
  // Removed: gone at once, the version moves.
  uint64_t v3 = hub.siteVersion("oslo");
  hub.forget("a");
  CHECK(hub.siteVersion("oslo") != v3);
  CHECK(hub.peers("b", "oslo", 3000).empty());
  CHECK(hub.siteVersion("rome") != hub.siteVersion("oslo"));
  // Drained (no URL any more): gone from its peers' lists at once, the version moves.
  hub.announce("c2", "rome", "http://10.0.1.2:5001", 4000);
  uint64_t v4 = hub.siteVersion("rome");
  hub.announce("c2", "rome", "", 4100);
  CHECK(hub.siteVersion("rome") != v4);
  CHECK(hub.peers("c", "rome", 4200).empty());
  // Edges without a site have no peers.
  hub.announce("lone1", "", "http://10.0.2.1:5001", 5000);
  hub.announce("lone2", "", "http://10.0.2.2:5001", 5000);
  CHECK(hub.peers("lone1", "", 5000).empty());
}

}  // namespace edge_commands_test
