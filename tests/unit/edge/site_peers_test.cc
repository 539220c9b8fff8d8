#include <catch2/catch.hpp>

#include <map>
#include <string>

#include "edge/link/site_peers.h"
#include "shared/oci/digest.h"

// Each file's own names: the test binaries are unity builds.
namespace site_peers_test {

using namespace wharf;

namespace {

std::string digestNo(int i) { return digestOf("blob " + std::to_string(i)).str(); }

// The site's edges as the core lists them to `self`.
std::vector<std::pair<std::string, std::string>> siteWithout(const std::string& self) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, port] : std::map<std::string, int>{{"a", 5001}, {"b", 5002}, {"c", 5003}}) {
    if (name != self) out.emplace_back(name, "http://127.0.0.1:" + std::to_string(port));
  }
  return out;
}

}  // namespace

TEST_CASE("site peers: every edge agrees on each digest's owner, and shares are even", "[edge][peers]") {
  std::map<std::string, std::unique_ptr<SitePeers>> edges;
  for (const std::string name : {"a", "b", "c"}) {
    edges[name] = std::make_unique<SitePeers>(name);
    CHECK(edges[name]->update(siteWithout(name)));
    CHECK_FALSE(edges[name]->update(siteWithout(name)));  // the same list: no change
    CHECK(edges[name]->size() == 2);
  }
  std::map<std::string, int> share;
  for (int i = 0; i < 3000; ++i) {
    std::string d = digestNo(i);
    std::map<std::string, int> votes;
    for (const auto& [name, peers] : edges) {
      auto owner = peers->owner(d, 0);
      votes[owner == nullptr ? name : owner->name]++;
      CHECK(peers->ownedElsewhere(d) == (owner != nullptr));
    }
    REQUIRE(votes.size() == 1);  // all three name the same owner
    share[votes.begin()->first]++;
  }
  for (const auto& [name, n] : share) CHECK((n > 800 && n < 1200));
  // Alone, an edge owns everything.
  SitePeers alone("a");
  CHECK(alone.owner(digestNo(1), 0) == nullptr);
  CHECK_FALSE(alone.ownedElsewhere(digestNo(1)));
}

TEST_CASE("site peers: a failed peer is skipped for a while; a leaving one moves only its share", "[edge][peers]") {
  SitePeers a("a");
  a.update(siteWithout("a"));
  std::string owned_by_b;
  for (int i = 0; owned_by_b.empty(); ++i) {
    auto owner = a.owner(digestNo(i), 0);
    if (owner != nullptr && owner->name == "b") owned_by_b = digestNo(i);
  }
  a.failed("b", 1000);
  auto instead = a.owner(owned_by_b, 1000 + SitePeers::kSkipMs - 1);
  CHECK((instead == nullptr || instead->name == "c"));  // the next highest score
  CHECK(a.ownedElsewhere(owned_by_b));                   // its copy comes back with b
  auto back = a.owner(owned_by_b, 1000 + SitePeers::kSkipMs);
  REQUIRE(back != nullptr);
  CHECK(back->name == "b");

  // c leaves: what a and b owned stays theirs.
  SitePeers before("a"), after("a");
  before.update(siteWithout("a"));
  after.update({{"b", "http://127.0.0.1:5002"}});
  for (int i = 0; i < 500; ++i) {
    auto was = before.owner(digestNo(i), 0);
    if (was != nullptr && was->name == "c") continue;
    auto now = after.owner(digestNo(i), 0);
    CHECK((was == nullptr) == (now == nullptr));
  }
  // A URL that does not resolve is left out; the edge itself is never its own peer, by
  // name or by URL (one URL copied to two hosts).
  SitePeers x("x");
  x.setSelfUrl("http://127.0.0.1:5010");
  x.update({{"x", "http://127.0.0.1:1"}, {"bad", "ftp://nowhere"}, {"y", "http://127.0.0.1:5009"},
            {"twin", "http://127.0.0.1:5010"}});
  CHECK(x.size() == 1);
  // A failing peer's address is resolved again; where it has not moved, its skip stays.
  int owned_by_y = 0;
  while (x.owner(digestNo(owned_by_y), 0) == nullptr) ++owned_by_y;
  x.failed("y", 1000);
  CHECK(x.owner(digestNo(owned_by_y), 1000) == nullptr);
  x.update({{"y", "http://127.0.0.1:5009"}});
  CHECK(x.owner(digestNo(owned_by_y), 1000) == nullptr);
  auto back_again = x.owner(digestNo(owned_by_y), 1000 + SitePeers::kSkipMs);
  REQUIRE(back_again != nullptr);
  CHECK(back_again->name == "y");
}

}  // namespace site_peers_test
