// Fuzzes the API body reader (JsonBody) and the core's readers built on it: each input
// is one request body, read by all of them.
//   - JsonBody::parse, then typed reads of several fields (string, integer, number,
//     boolean, strings, a nested object and a raw object) and finish(): what a read
//     returns obeys its rule, and finish() is OK only when every present field was read.
//   - Policy::fromJson (PUT /api/v1/policies/<scope>), validateEdgeSettings (an edge's
//     settings), LdapConfig::fromJson (PUT /api/v1/ldap), gcOptionsFromParams (gc job
//     params): what they accept must survive the round trip through the form that is
//     stored (toJson, canonicalEdgeSettings) and read back.
//   - What edges and the core send each other: EdgeReport (POST /api/v1/edges/self/reports),
//     the revocation list (the channel's answer) and edge commands (validateEdgeCommand):
//     what is accepted survives its round trip; the prefetch policy (an edge's settings)
//     gives waits within a day.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "core/auth/identity_store.h"
#include "core/auth/ldap_directory.h"
#include "core/gc/gc_job.h"
#include "core/metadata/metadata_store.h"
#include "core/metadata/policy.h"
#include "core/fleet/edge_commands.h"
#include "shared/auth/revocation.h"
#include "shared/base/json_body.h"
#include "shared/base/log.h"
#include "shared/fleet/edge_report.h"
#include "shared/fleet/prefetch_policy.h"
#include "tests/fuzz/fuzz_support.h"

using namespace wharf;
using nlohmann::json;

namespace {

void typedReads(std::string_view raw) {
  auto body = JsonBody::parse(raw);
  if (!body.isOk()) {
    FUZZ_CHECK(body.status().code() == Code::kInvalidArgument, body.status().message());
    return;
  }
  JsonBody& b = *body;
  FUZZ_CHECK(b.raw().is_object(), raw);
  if (auto s = b.string("name", {.max = 63, .non_empty = true})) FUZZ_CHECK(!s->empty() && s->size() <= 63, *s);
  if (auto n = b.integer("count", {.min = -5, .max = 1000})) FUZZ_CHECK(*n >= -5 && *n <= 1000, raw);
  (void)b.integer("big");
  if (auto d = b.number("ratio", {.min = 0, .max = 1})) FUZZ_CHECK(*d >= 0 && *d <= 1, raw);
  (void)b.boolean("enabled");
  if (auto l = b.strings("tags", {.max_items = 4, .max = 8, .non_empty = true})) {
    FUZZ_CHECK(!l->empty() && l->size() <= 4, raw);
    for (const auto& s : *l) FUZZ_CHECK(s.size() <= 8, s);
  }
  if (auto nested = b.object("nested")) {
    (void)nested->string("a", {.required = true});
    (void)nested->integer("b", {.min = 0, .max = 10});
    if (auto deeper = nested->object("c")) {
      (void)deeper->boolean("d");
      (void)deeper->finish();
    }
    Status st = nested->finish();
    if (!st.isOk()) FUZZ_CHECK(st.message().rfind("nested", 0) == 0, st.message());  // named by its field
  }
  if (auto params = b.rawObject("params")) FUZZ_CHECK(params->is_object(), raw);
  Status st = b.finish();
  if (st.isOk()) {
    // Every field present was read.
    for (auto it = b.raw().begin(); it != b.raw().end(); ++it) {
      static const std::set<std::string> known{"name", "count", "big", "ratio", "enabled", "tags", "nested", "params"};
      FUZZ_CHECK(known.count(it.key()) == 1, it.key());
    }
  } else {
    FUZZ_CHECK(st.code() == Code::kInvalidArgument, st.message());
  }
  (void)b.fieldName("x");
}

void fleet(std::string_view raw, const json& j) {
  auto report = EdgeReport::fromJson(raw);
  if (report.isOk()) {
    std::string text = report->toJson().dump();
    auto again = EdgeReport::fromJson(text);
    FUZZ_CHECK(again.isOk(), again.status().message() + " reading " + text);
    FUZZ_CHECK(again->toJson().dump() == text, text);
    FUZZ_CHECK(report->repos.size() <= EdgeReport::kMaxRepos, "too many repositories accepted");
  }
  auto list = RevocationList::fromJson(j);
  if (list.isOk()) {
    json stored = list->toJson();
    auto again = RevocationList::fromJson(stored);
    FUZZ_CHECK(again.isOk(), again.status().message() + " reading " + stored.dump());
    FUZZ_CHECK(again->toJson() == stored, stored.dump());
    TokenClaims c;
    c.subject = "alice";
    (void)list->covers(c, "team/app");
  }
  // The prefetch policy (an edge's settings, read by the core and by the edge).
  for (const json* candidate : {&j, j.contains("prefetch") ? &j["prefetch"] : nullptr}) {
    if (candidate == nullptr) continue;
    auto policy = PrefetchPolicy::fromJson(*candidate);
    if (!policy.isOk()) {
      FUZZ_CHECK(policy.status().code() == Code::kInvalidArgument, policy.status().message());
      continue;
    }
    for (int64_t now : {int64_t{0}, int64_t{1'700'000'000'000}, int64_t{-86'400'001}}) {
      int64_t wait = policy->waitForWindow(now);
      FUZZ_CHECK(wait >= 0 && wait < 86'400'000, "a wait for the window beyond a day");
      (void)policy->wants("team/app", "v1", now - 1000, 3, now);
    }
    FUZZ_CHECK(policy->rate >= 1024, "a rate below 1k accepted");
  }
  if (j.contains("kind") && j["kind"].is_string()) {
    json args = j.contains("args") ? j["args"] : json::object();
    auto canonical = validateEdgeCommand(j["kind"].get<std::string>(), args);
    if (canonical.isOk()) {
      auto again = validateEdgeCommand(j["kind"].get<std::string>(), *canonical);
      FUZZ_CHECK(again.isOk(), again.status().message() + " reading " + canonical->dump());
      FUZZ_CHECK(*again == *canonical, canonical->dump());
    }
  }
}

void policy(const json& j) {
  for (const char* scope : {"team/app", "team/*"}) {
    auto p = Policy::fromJson(scope, j);
    if (!p.isOk()) continue;
    json stored = p->toJson();
    auto again = Policy::fromJson(scope, stored);
    FUZZ_CHECK(again.isOk(), again.status().message() + " reading " + stored.dump());
    FUZZ_CHECK(again->toJson() == stored, stored.dump());
    (void)immutableRule({*p}, "team/app", "v1");
  }
}

void edgeSettings(const json& j) {
  Status st = validateEdgeSettings(j);
  if (!st.isOk()) return;
  json canonical = canonicalEdgeSettings(j);
  Status again = validateEdgeSettings(canonical);
  FUZZ_CHECK(again.isOk(), again.message() + " reading " + canonical.dump());
  FUZZ_CHECK(canonicalEdgeSettings(canonical) == canonical, canonical.dump());
  if (canonical.contains("cache_budget")) {
    auto a = parseEdgeCacheBudget(j["cache_budget"].get<std::string>());
    auto b = parseEdgeCacheBudget(canonical["cache_budget"].get<std::string>());
    FUZZ_CHECK(a.isOk() && b.isOk() && *a == *b, canonical.dump());
  }
}

void ldap(const json& j) {
  auto c = LdapConfig::fromJson(j);
  if (!c.isOk()) return;
  // The stored form (putSetting) must be read back as the same configuration.
  json stored = c->toJson(/*redact=*/false);
  auto again = LdapConfig::fromJson(stored);
  FUZZ_CHECK(again.isOk(), again.status().message() + " reading " + stored.dump());
  FUZZ_CHECK(again->toJson(false) == stored, stored.dump());
  (void)c->toJson(/*redact=*/true).dump();
}

void gc(const json& j) {
  auto o = gcOptionsFromParams(j);
  if (!o.isOk()) return;
  FUZZ_CHECK(o->yield >= 0 && o->yield <= 100, j.dump());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool init = [] {
    setLogLevel(LogLevel::kError);
    return true;
  }();
  (void)init;
  std::string_view raw(reinterpret_cast<const char*>(data), size);
  typedReads(raw);
  // The core's readers get what the API hands them: the parsed body (or one of its
  // objects), after the same depth check.
  auto body = JsonBody::parse(raw);
  if (!body.isOk()) return 0;
  const json& j = body->raw();
  fleet(raw, j);
  policy(j);
  edgeSettings(j);
  ldap(j);
  gc(j);
  if (auto it = j.find("settings"); it != j.end()) edgeSettings(*it);
  if (auto it = j.find("params"); it != j.end()) gc(*it);
  return 0;
}
