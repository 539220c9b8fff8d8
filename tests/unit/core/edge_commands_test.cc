// EdgeCommandStore on both backends (LMDB, and PostgreSQL where it is installed): queueing,
// pending in id order, delivery, the first outcome standing, pruning of finished commands,
// markers; on PostgreSQL, two replicas queueing and acknowledging at once. Also
// validateEdgeCommand, revocation lists and the channel hub.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/fleet/channel_hub.h"
#include "core/fleet/edge_commands.h"
#include "core/fleet/pg_edge_commands.h"
#include "shared/auth/revocation.h"
#include "shared/store/lmdb.h"
#include "shared/store/pg.h"
#include "tests/support/postgres.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/core/metadata_backends.h"

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

// The store on a backend (the metadata store's: metadataBackends()): LMDB at path, or
// PostgreSQL in a database of the test binary's server, a fresh one unless pg_url names
// one (another replica on the same database).
struct Commands {
  MetadataBackend backend;
  std::string pg_url;
  std::unique_ptr<EdgeCommandStore> store;

  Commands(const std::string& path, MetadataBackend backend, std::string pg_url = "", size_t pool_size = 4)
      : backend(backend), pg_url(std::move(pg_url)) {
    if (backend == MetadataBackend::kPostgres) {
      if (this->pg_url.empty()) this->pg_url = PostgresServer::shared().freshDatabase();
      auto db = PgPool::open(this->pg_url, pool_size);
      INFO(db.status().toString());
      REQUIRE(db.isOk());
      auto s = openPgEdgeCommandStore(std::shared_ptr<PgPool>(std::move(db).value()));
      INFO(s.status().toString());
      REQUIRE(s.isOk());
      store = std::move(s).value();
      return;
    }
    auto s = openLmdbEdgeCommandStore(openEnv(path));
    INFO(s.status().toString());
    REQUIRE(s.isOk());
    store = std::move(s).value();
  }
  EdgeCommandStore& operator*() { return *store; }
  EdgeCommandStore* operator->() { return store.get(); }
  const char* name() const { return backend == MetadataBackend::kPostgres ? "backend: PostgreSQL" : "backend: LMDB"; }
};
}  // namespace

TEST_CASE("edge commands: queued, pending in order, the first outcome stands", "[core][fleet]") {
  TempDir dir;
  Commands store(dir / "meta.lmdb", GENERATE(from_range(metadataBackends())));
  INFO(store.name());
  EdgeCommandStore& s = *store;
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
  CHECK(again->result == json{{"draining", true}});
  CHECK(again->error.empty());
  CHECK(s.get("e1", a->id)->result == json{{"draining", true}});
  CHECK(s.pending("e1", 0, 10)->size() == 1);
  // A finished command is not delivered again; an id given twice counts twice.
  REQUIRE(s.delivered("e1", {a->id, b->id, b->id, 999}, 1800).isOk());
  CHECK(s.get("e1", a->id)->deliveries == 1);
  CHECK(s.get("e1", b->id)->deliveries == 2);
  CHECK(s.get("e1", b->id)->delivered_ms == 1800);
  auto failed = s.complete("e1", b->id, false, {{"ignored", 1}}, "no disk", 1900);
  REQUIRE(failed.isOk());
  CHECK(failed->state == "failed");
  CHECK(failed->error == "no disk");
  CHECK(failed->result.is_null());
  CHECK(s.pending("e1", 0, 10)->empty());
  CHECK(s.get("e1", 999).status().code() == Code::kNotFound);
  CHECK(s.get("e2", a->id).status().code() == Code::kNotFound);
  auto got = s.get("e2", other->id);
  REQUIRE(got.isOk());
  CHECK(got->args == json{{"top", 3}});
  CHECK(got->actor == "admin");
  CHECK(got->created_ms == 3000);
  CHECK(got->state == "queued");
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
  REQUIRE(s.setMarker("x", UINT64_MAX).isOk());
  CHECK(*s.marker("x") == UINT64_MAX);
}

TEST_CASE("edge commands: the newest finished commands of an edge are kept, unfinished ones all", "[core][fleet]") {
  TempDir dir;
  Commands store(dir / "meta.lmdb", GENERATE(from_range(metadataBackends())));
  INFO(store.name());
  EdgeCommandStore& s = *store;
  constexpr size_t kExtra = 7;
  std::vector<EdgeCommandStore::New> batch;
  for (size_t i = 0; i < EdgeCommandStore::kKeepFinished + kExtra; ++i) batch.push_back({"e1", "resume", json::object()});
  batch.push_back({"e2", "resume", json::object()});
  REQUIRE(s.enqueueAll(batch, "admin", 1).isOk());
  auto queued = s.pending("e1", 0, 10'000);
  REQUIRE(queued.isOk());
  REQUIRE(queued->size() == EdgeCommandStore::kKeepFinished + kExtra);
  // Finished all but the last; e2's stays queued.
  for (size_t i = 0; i + 1 < queued->size(); ++i) REQUIRE(s.complete("e1", (*queued)[i].id, true, json::object(), "", 2).isOk());
  REQUIRE(s.enqueue("e1", "refresh", json::object(), "admin", 3).isOk());  // prunes
  auto listed = s.list("e1", 10'000);
  REQUIRE(listed.isOk());
  // kKeepFinished finished, the unfinished one, the new one.
  CHECK(listed->size() == EdgeCommandStore::kKeepFinished + 2);
  CHECK(s.get("e1", (*queued)[kExtra - 2].id).status().code() == Code::kNotFound);  // the oldest went
  CHECK(s.get("e1", (*queued)[kExtra - 1].id).isOk());
  CHECK(s.get("e1", queued->back().id)->state == "queued");
  CHECK(s.pending("e1", 0, 10)->size() == 2);
  CHECK(s.pending("e2", 0, 10)->size() == 1);
  CHECK(s.list("e1", 3)->size() == 3);
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
  Commands store(dir / "meta.lmdb", GENERATE(from_range(metadataBackends())));
  INFO(store.name());
  EdgeCommandStore& s = *store;
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

TEST_CASE("edge commands on PostgreSQL: two replicas queue, deliver and acknowledge each command once",
          "[core][fleet][pg]") {
  if (!PostgresServer::available()) return;
  TempDir dir;
  constexpr int kWriters = 3, kPerWriter = 20;  // writers per replica, commands each
  Commands a(dir / "a", MetadataBackend::kPostgres, "", 8);
  Commands b(dir / "b", MetadataBackend::kPostgres, a.pg_url, 8);
  EdgeCommandStore* replicas[] = {&*a, &*b};

  std::mutex mu;
  std::vector<std::string> errors;  // Catch's assertions stay on this thread
  auto fail = [&](const std::string& what) {
    std::lock_guard lock(mu);
    errors.push_back(what);
  };
  std::atomic<bool> writing{true};
  // The edge, meanwhile: asks either replica for what follows the last id it finished, marks
  // it delivered, runs it, and acknowledges it on both replicas at once with different
  // outcomes. Were ids not in commit order per edge, a command committed below an id the
  // edge had finished would never reach it.
  std::vector<uint64_t> ran;
  std::thread edge([&] {
    uint64_t after = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (int turn = 0; std::chrono::steady_clock::now() < deadline; ++turn) {
      bool finished = !writing.load();  // before the read: an empty answer then means all was read
      EdgeCommandStore* s = replicas[turn % 2];
      auto pending = s->pending("e1", after, 7);
      if (!pending.isOk()) return fail("pending: " + pending.status().toString());
      if (pending->empty()) {
        if (finished) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      std::vector<uint64_t> ids;
      for (const auto& c : *pending) ids.push_back(c.id);
      if (Status st = s->delivered("e1", ids, 10); !st.isOk()) return fail("delivered: " + st.toString());
      for (const auto& c : *pending) {
        Result<EdgeCommand> ra = Status(Code::kInternal, "not run"), rb = Status(Code::kInternal, "not run");
        std::thread ack([&] { ra = replicas[0]->complete("e1", c.id, true, {{"by", "a"}}, "", 20); });
        rb = replicas[1]->complete("e1", c.id, false, json::object(), "by b", 21);
        ack.join();
        if (!ra.isOk() || !rb.isOk()) return fail("complete: " + ra.status().toString() + " / " + rb.status().toString());
        if (ra->state != rb->state || ra->done_ms != rb->done_ms || ra->result != rb->result || ra->error != rb->error) {
          fail("two outcomes of command " + std::to_string(c.id) + ": " + ra->toJson().dump() + " / " + rb->toJson().dump());
        }
        ran.push_back(c.id);
        after = c.id;
      }
    }
    fail("the edge did not finish in time");
  });

  std::vector<uint64_t> queued;  // the ids enqueue() answered for e1
  std::vector<std::thread> writers;
  for (int w = 0; w < 2 * kWriters; ++w) {
    writers.emplace_back([&, w] {
      EdgeCommandStore* s = replicas[w % 2];
      for (int i = 0; i < kPerWriter; ++i) {
        if (i % 4 == 3) {
          // The invalidator's way: a batch for both edges.
          Status st = s->enqueueAll({{"e1", "resume", json::object()}, {"e2", "resume", json::object()},
                                     {"e1", "refresh", json::object()}},
                                    "system", 5);
          if (!st.isOk()) fail("enqueueAll: " + st.toString());
        } else {
          auto c = s->enqueue("e1", "inventory", {{"top", i + 1}}, "writer" + std::to_string(w), 5);
          if (!c.isOk()) {
            fail("enqueue: " + c.status().toString());
          } else {
            std::lock_guard lock(mu);
            queued.push_back(c->id);
          }
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  writing = false;
  edge.join();
  CHECK(errors == std::vector<std::string>{});

  constexpr size_t kBatches = 2 * kWriters * (kPerWriter / 4);
  constexpr size_t kE1 = 2 * kWriters * (kPerWriter - kPerWriter / 4) + 2 * kBatches;
  auto all = b->list("e1", 10'000);
  REQUIRE(all.isOk());
  std::vector<uint64_t> ids;
  for (const auto& c : *all) ids.push_back(c.id);
  std::reverse(ids.begin(), ids.end());
  CHECK(ids.size() == kE1);
  // Every command ran once, in id order, none skipped.
  CHECK(ran == ids);
  for (uint64_t id : queued) CHECK(std::binary_search(ids.begin(), ids.end(), id));
  for (const auto& c : *all) {
    INFO(c.toJson().dump());
    CHECK(c.finished());
    CHECK(c.deliveries == 1);
    CHECK(c.delivered_ms == 10);
    CHECK(c.done_ms == (c.state == "succeeded" ? 20 : 21));
  }
  // e2's are queued, in order, with ids unique across edges.
  auto e2 = a->pending("e2", 0, 10'000);
  REQUIRE(e2.isOk());
  CHECK(e2->size() == kBatches);
  for (const auto& c : *e2) CHECK_FALSE(std::binary_search(ids.begin(), ids.end(), c.id));
  for (size_t i = 1; i < e2->size(); ++i) CHECK((*e2)[i].id > (*e2)[i - 1].id);
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
