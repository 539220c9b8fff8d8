#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <memory>
#include <set>
#include <string>
#include <thread>

#include "core/auth/key_ring.h"
#include "shared/base/clock.h"
#include "shared/base/fs.h"
#include "shared/tls/crypto.h"
#include "tests/support/postgres.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

// Each file's own names: the test binaries are unity builds.
namespace key_ring_test {

using namespace wharf;
using wharf::test::TempDir;

namespace {

constexpr const char* kIssuer = "wharf-core";
constexpr const char* kAudience = "wharf";

Result<std::unique_ptr<KeyRing>> openAt(const std::string& dir, Clock& clock) {
  WHARF_RETURN_IF_ERROR(makeDirs(dir));
  ::chmod(dir.c_str(), 0700);
  auto storage = openFileDocument(dir + "/keys.json");
  if (!storage.isOk()) return storage.status();
  return KeyRing::open(std::move(storage).value(), clock);
}

std::unique_ptr<KeyRing> openRing(const std::string& dir, Clock& clock) {
  auto r = openAt(dir, clock);
  INFO(r.status().toString());
  REQUIRE(r.isOk());
  return std::move(r).value();
}

// Claims valid around the clock's time.
TokenClaims claimsAt(const Clock& clock) {
  int64_t now = clock.nowMillis() / 1000;
  TokenClaims c;
  c.issuer = kIssuer;
  c.subject = "alice";
  c.audience = kAudience;
  c.id = "id";
  c.issued_at = now;
  c.not_before = now - 10;
  c.expires_at = now + 3600;
  return c;
}

std::string signWith(const KeyRing& ring, const Clock& clock) {
  auto t = ring.signer()->sign(claimsAt(clock));
  INFO(t.status().toString());
  REQUIRE(t.isOk());
  return *t;
}

bool verifies(const KeyRing& ring, const Clock& clock, const std::string& token) {
  return ring.verifier(kIssuer, kAudience)->verify(token, clock.nowMillis() / 1000).isOk();
}

int fileMode(const std::string& path) {
  struct stat st{};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return static_cast<int>(st.st_mode & 0777);
}

std::set<std::string> jwkKids(const KeyRing& ring) {
  std::set<std::string> out;
  nlohmann::json jwks = ring.jwks();
  for (const auto& k : jwks["keys"]) out.insert(k["kid"].get<std::string>());
  return out;
}

}  // namespace

TEST_CASE("keyring: a first key is created and persisted with mode 0600", "[auth]") {
  TempDir dir;
  FakeClock clock(RealClock::instance().nowMillis());
  std::string kid;
  {
    auto ring = openRing(dir / "auth", clock);
    kid = ring->signer()->kid();
    CHECK(kid.size() == 32);
    CHECK(fileMode(dir / "auth/keys.json") == 0600);
    CHECK(fileMode(dir / "auth") == 0700);
    std::string text;
    REQUIRE(readFile(dir / "auth/keys.json", &text).isOk());
    CHECK(text.find(kid) != std::string::npos);
  }
  // Reopening loads the same key rather than making a new one.
  auto again = openRing(dir / "auth", clock);
  CHECK(again->signer()->kid() == kid);
  CHECK(fileMode(dir / "auth/keys.json") == 0600);
}

TEST_CASE("keyring: tokens survive reopening the ring", "[auth]") {
  TempDir dir;
  FakeClock clock(RealClock::instance().nowMillis());
  std::string token;
  {
    auto ring = openRing(dir / "auth", clock);
    token = signWith(*ring, clock);
    CHECK(verifies(*ring, clock, token));
  }
  auto ring = openRing(dir / "auth", clock);
  CHECK(verifies(*ring, clock, token));
}

TEST_CASE("keyring: a corrupt key file is refused", "[auth]") {
  TempDir dir;
  FakeClock clock(RealClock::instance().nowMillis());
  REQUIRE(makeDirs(dir / "auth").isOk());
  REQUIRE(writeFileDurable(dir / "auth/keys.json", "{\"nope\":1}", 0600).isOk());
  CHECK(openAt(dir / "auth", clock).status().code() == Code::kCorruption);
  REQUIRE(writeFileDurable(dir / "auth/keys.json", "{\"keys\":[{\"kid\":\"k\",\"private\":\"garbage\"}]}", 0600).isOk());
  CHECK(openAt(dir / "auth", clock).status().code() == Code::kCorruption);
}

TEST_CASE("keyring: verifiers check issuer and audience", "[auth]") {
  TempDir dir;
  FakeClock clock(RealClock::instance().nowMillis());
  auto ring = openRing(dir / "auth", clock);
  std::string token = signWith(*ring, clock);
  int64_t now = clock.nowMillis() / 1000;
  CHECK(ring->verifier(kIssuer, kAudience)->verify(token, now).isOk());
  CHECK_FALSE(ring->verifier("other", kAudience)->verify(token, now).isOk());
  CHECK_FALSE(ring->verifier(kIssuer, "other")->verify(token, now).isOk());
}

TEST_CASE("keyring: after rotate, old tokens verify during the overlap and stop after", "[auth]") {
  TempDir dir;
  FakeClock clock(RealClock::instance().nowMillis());
  auto ring = openRing(dir / "auth", clock);
  std::string old_kid = ring->signer()->kid();
  std::string old_token = signWith(*ring, clock);

  REQUIRE(ring->rotate(10'000).isOk());
  std::string new_kid = ring->signer()->kid();
  CHECK(new_kid != old_kid);
  std::string new_token = signWith(*ring, clock);
  CHECK(verifies(*ring, clock, old_token));
  CHECK(verifies(*ring, clock, new_token));

  clock.advance(5'000);
  CHECK(verifies(*ring, clock, old_token));

  clock.advance(5'001);
  auto v = ring->verifier(kIssuer, kAudience)->verify(old_token, clock.nowMillis() / 1000);
  CHECK_FALSE(v.isOk());
  CHECK(v.status().code() == Code::kUnauthorized);
  CHECK(verifies(*ring, clock, new_token));
  CHECK(ring->signer()->kid() == new_kid);

  // Reopened after the overlap, the ring has only the new key.
  ring.reset();
  auto reopened = openRing(dir / "auth", clock);
  CHECK(reopened->signer()->kid() == new_kid);
  CHECK_FALSE(verifies(*reopened, clock, old_token));
  CHECK(verifies(*reopened, clock, new_token));
  CHECK(jwkKids(*reopened) == std::set<std::string>{new_kid});
}

TEST_CASE("keyring: a rotation persists; reopened within the overlap both keys verify", "[auth]") {
  TempDir dir;
  FakeClock clock(RealClock::instance().nowMillis());
  auto ring = openRing(dir / "auth", clock);
  std::string old_token = signWith(*ring, clock);
  REQUIRE(ring->rotate(60'000).isOk());
  std::string new_kid = ring->signer()->kid();
  std::string new_token = signWith(*ring, clock);
  ring.reset();
  clock.advance(1'000);
  auto reopened = openRing(dir / "auth", clock);
  CHECK(reopened->signer()->kid() == new_kid);
  CHECK(verifies(*reopened, clock, old_token));
  CHECK(verifies(*reopened, clock, new_token));
  CHECK(fileMode(dir / "auth/keys.json") == 0600);
}

TEST_CASE("keyring: jwks lists the live keys as P-256 JWKs", "[auth]") {
  TempDir dir;
  FakeClock clock(RealClock::instance().nowMillis());
  auto ring = openRing(dir / "auth", clock);
  std::string first = ring->signer()->kid();
  auto jwks = ring->jwks();
  REQUIRE(jwks["keys"].is_array());
  REQUIRE(jwks["keys"].size() == 1);
  const auto& k = jwks["keys"][0];
  CHECK(k["kty"] == "EC");
  CHECK(k["crv"] == "P-256");
  CHECK(k["kid"] == first);
  REQUIRE(k["x"].is_string());
  REQUIRE(k["y"].is_string());
  auto x = base64UrlDecode(k["x"].get<std::string>());
  auto y = base64UrlDecode(k["y"].get<std::string>());
  REQUIRE(x.isOk());
  REQUIRE(y.isOk());
  CHECK(x->size() == 32);
  CHECK(y->size() == 32);
  CHECK_FALSE(k.contains("d"));

  REQUIRE(ring->rotate(10'000).isOk());
  std::string second = ring->signer()->kid();
  CHECK(jwkKids(*ring) == std::set<std::string>{first, second});
}

// The JWK set is what edges verify with offline; a key past its overlap must leave it
// just as it leaves verifier(). KeyRing::jwks() lists every key in keys_, and retired
// keys are only dropped from keys_ by load() and rotate().
TEST_CASE("keyring: jwks drops a key once its overlap has passed", "[auth][regression]") {
  TempDir dir;
  FakeClock clock(RealClock::instance().nowMillis());
  auto ring = openRing(dir / "auth", clock);
  REQUIRE(ring->rotate(10'000).isOk());
  std::string second = ring->signer()->kid();
  clock.advance(10'001);
  (void)ring->verifier(kIssuer, kAudience);
  CHECK(jwkKids(*ring) == std::set<std::string>{second});
}

TEST_CASE("keyring on PostgreSQL: replicas share the keys; a rotation on one is heard by the others", "[auth][pg]") {
  if (!test::PostgresServer::available()) return;
  FakeClock clock(RealClock::instance().nowMillis());
  std::string url = test::PostgresServer::shared().freshDatabase();
  std::string sealing = std::string(32, 'k');
  auto open = [&](const std::string& key) -> Result<std::unique_ptr<KeyRing>> {
    auto db = PgPool::open(url, 2);
    if (!db.isOk()) return db.status();
    auto storage = openPgDocument(std::shared_ptr<PgPool>(std::move(db).value()), "token_keys", key);
    if (!storage.isOk()) return storage.status();
    return KeyRing::open(std::move(storage).value(), clock);
  };
  // Two replicas starting together make one first key.
  Result<std::unique_ptr<KeyRing>> a = Status(Code::kInternal, ""), b = Status(Code::kInternal, "");
  std::thread ta([&] { a = open(sealing); }), tb([&] { b = open(sealing); });
  ta.join();
  tb.join();
  REQUIRE(a.isOk());
  REQUIRE(b.isOk());
  CHECK((*a)->signer()->kid() == (*b)->signer()->kid());
  std::string before = signWith(**a, clock);
  CHECK(verifies(**b, clock, before));

  REQUIRE((*a)->rotate(60'000).isOk());
  std::string kid = (*a)->signer()->kid();
  REQUIRE(test::waitFor([&] { return (*b)->signer()->kid() == kid; }, 10000));
  std::string after = signWith(**b, clock);
  CHECK(verifies(**a, clock, after));
  CHECK(verifies(**b, clock, before));  // the overlap
  CHECK((*b)->jwks()["keys"].size() == 2);

  // A replica with another sealing key is refused at start, with the reason.
  auto wrong = open(std::string(32, 'x'));
  REQUIRE_FALSE(wrong.isOk());
  CHECK(wrong.status().message().find("sealing key") != std::string::npos);
  // The sealed ring in the database holds no private key in the clear.
  auto db = PgPool::open(url, 1);
  REQUIRE(db.isOk());
  auto row = (*db)->query("SELECT body FROM documents WHERE name = 'token_keys'");
  REQUIRE(row.isOk());
  REQUIRE(row->rows() == 1);
  CHECK(std::string(row->text(0, 0)).find("PRIVATE KEY") == std::string::npos);
}

}  // namespace key_ring_test
