#include "edge/trust/edge_trust.h"

#include <algorithm>

#include "shared/base/fs.h"
#include "shared/base/json_body.h"
#include "shared/base/log.h"
#include "shared/http/blocking_client.h"
#include "shared/http/url.h"
#include "shared/oci/names.h"
#include "shared/tls/crypto.h"

namespace wharf {

namespace {

using nlohmann::json;

constexpr int64_t kRetryMs = 2'000;  // a refusal asks the core again at most this often

// gun -> role -> bytes, from {"guns": {gun: {role: bytes}}}.
std::map<std::string, std::map<std::string, std::string>> gunFiles(const json& j) {
  std::map<std::string, std::map<std::string, std::string>> out;
  if (!j.is_object() || !j.contains("guns") || !j["guns"].is_object()) return out;
  for (auto g = j["guns"].begin(); g != j["guns"].end(); ++g) {
    if (!g.value().is_object()) continue;
    for (auto f = g.value().begin(); f != g.value().end(); ++f)
      if (f.value().is_string()) out[g.key()][f.key()] = f.value().get<std::string>();
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<EdgeTrust>> EdgeTrust::open(EdgeTrustOptions options, Clock& clock) {
  WHARF_RETURN_IF_ERROR(makeDirs(options.dir));
  return std::unique_ptr<EdgeTrust>(new EdgeTrust(std::move(options), clock));
}

void EdgeTrust::setPolicies(const json& policies) {
  std::vector<Rule> rules;
  if (policies.is_array()) {
    for (const auto& p : policies) {
      if (!p.is_object()) continue;
      Rule r{jsonStringOr(p, "scope"), jsonStringOr(p, "require"), {}, {}};
      for (const char* field : {"roles", "keys"})
        if (p.contains(field) && p[field].is_array())
          for (const auto& v : p[field])
            if (v.is_string()) (std::string(field) == "roles" ? r.roles : r.keys).push_back(v.get<std::string>());
      if (!r.scope.empty() && !r.require.empty()) rules.push_back(std::move(r));
    }
  }
  std::lock_guard lock(mu_);
  rules_ = std::move(rules);
}

std::optional<EdgeTrust::Rule> EdgeTrust::ruleFor(const std::string& repo) const {
  // The most specific scope: the repository itself, else the longest namespace ("team/*").
  std::lock_guard lock(mu_);
  const Rule* best = nullptr;
  for (const auto& r : rules_) {
    if (!repositoryPatternMatches(r.scope, repo)) continue;
    if (best == nullptr || (r.scope == repo && best->scope != repo) ||
        (best->scope != repo && r.scope.size() > best->scope.size()))
      best = &r;
  }
  if (best == nullptr || (!tuf::requiresNotary(best->require) && !tuf::acceptsCosign(best->require))) return std::nullopt;
  return *best;
}

bool EdgeTrust::governs(const std::string& repo) const { return ruleFor(repo).has_value(); }

std::string EdgeTrust::pathOf(const std::string& repo) const { return options_.dir + "/" + sha256Hex(repo) + ".json"; }

void EdgeTrust::load(const std::string& repo, RepoTrust& t) {
  std::string text;
  if (!readFile(pathOf(repo), &text).isOk()) return;
  json j = json::parse(text, nullptr, false);
  if (jsonStringOr(j, "repository") != repo) return;
  int64_t now = clock_.nowMillis();
  for (const auto& [gun, files] : gunFiles(j)) {
    auto root = files.find("root");
    if (root == files.end()) continue;
    t.roots[gun] = root->second;  // pinned, whether or not the rest is still current
    auto v = tuf::verifyRepository(gun, files, nullptr, now);
    if (v.isOk()) t.verified[gun] = std::make_shared<const tuf::TrustedRepository>(std::move(*v));
  }
}

Status EdgeTrust::refresh(const std::string& repo, RepoTrust& t) {
  auto url = parseBaseUrl(options_.core);
  if (!url.isOk()) return url.status();
  BlockingClient c(url->host, url->port, 10'000);
  if (url->tls) c.useTls(options_.tls.ca_file, options_.tls.insecure);
  auto r = c.request("GET", "/api/v1/edges/self/trust?repository=" + percentEncode(repo),
                     {{"Authorization", "Bearer " + options_.credential}});
  if (!r.isOk()) return Status(Code::kUnavailable, "cannot reach the core for trust data: " + r.status().message());
  if (r->status != 200) return Status(Code::kUnavailable, "the core answered " + std::to_string(r->status) + " for trust data");
  json j = json::parse(r->body, nullptr, false);
  if (jsonStringOr(j, "repository") != repo) return Status(Code::kUnavailable, "the core's trust answer is not for " + repo);
  int64_t now = clock_.nowMillis();
  auto fetched = gunFiles(j);
  json keep = {{"repository", repo}, {"guns", json::object()}};
  std::map<std::string, std::shared_ptr<const tuf::TrustedRepository>> verified;
  std::map<std::string, std::string> roots = t.roots;
  for (const auto& [gun, files] : fetched) {
    std::optional<tuf::Root> pinned;
    if (auto p = roots.find(gun); p != roots.end()) {
      auto parsed = tuf::parseRoot(p->second);
      if (parsed.isOk()) pinned = std::move(*parsed);
    }
    auto v = tuf::verifyRepository(gun, files, pinned ? &*pinned : nullptr, now);
    if (!v.isOk()) {
      logWarn("trust data from the core does not verify; not used",
              {{"repository", repo}, {"gun", gun}, {"error", v.status().message()}});
      continue;
    }
    verified[gun] = std::make_shared<const tuf::TrustedRepository>(std::move(*v));
    roots[gun] = files.at("root");
    for (const auto& [role, bytes] : files) keep["guns"][gun][role] = bytes;
  }
  // A GUN the core no longer has (its trust data deleted) signs nothing any more.
  WHARF_RETURN_IF_ERROR(writeFileDurable(pathOf(repo), keep.dump(), 0600));
  t.verified = std::move(verified);
  t.roots = std::move(roots);
  t.fetched_ms = now;
  return Status::ok();
}

std::shared_ptr<const EdgeTrust::RepoTrust> EdgeTrust::state(const std::string& repo) {
  {
    std::lock_guard lock(mu_);
    if (auto it = repos_.find(repo); it != repos_.end()) return it->second;
  }
  auto loaded = std::make_shared<RepoTrust>();
  load(repo, *loaded);
  std::lock_guard lock(mu_);
  return repos_.emplace(repo, std::move(loaded)).first->second;  // another thread's load wins
}

std::shared_ptr<const EdgeTrust::RepoTrust> EdgeTrust::refreshed(const std::string& repo, int64_t attempted_before) {
  std::lock_guard fetching(fetch_mu_);  // one fetch at a time; checks go on meanwhile
  auto current = state(repo);
  if (current->attempted_ms > attempted_before) return current;  // another check just asked
  auto next = std::make_shared<RepoTrust>(*current);
  next->attempted_ms = clock_.nowMillis();
  Status s = refresh(repo, *next);
  next->error = s.isOk() ? "" : s.message();
  if (!s.isOk())
    logWarn("cannot refresh trust data; using what this edge verified before", {{"repository", repo}, {"error", s.message()}});
  std::lock_guard lock(mu_);
  repos_[repo] = next;
  return next;
}

std::optional<std::string> EdgeTrust::refusal(const std::string& repo, const std::string& tag, const std::string& digest,
                                              uint64_t size, bool core_confirmed) {
  auto rule = ruleFor(repo);
  if (!rule) return std::nullopt;
  bool notary = false;
  std::string why;
  if (tuf::requiresNotary(rule->require)) {
    std::string hex = digest.rfind("sha256:", 0) == 0 ? digest.substr(7) : "";
    auto signedIn = [&](const RepoTrust& t) {
      int64_t now = clock_.nowMillis();
      for (const auto& [gun, v] : t.verified)
        for (const auto* target : v->find(tag, hex, now))
          if (uint64_t(target->length) == size && tuf::acceptedBy(*target, rule->roles, rule->keys)) return true;
      return false;
    };
    auto t = state(repo);
    int64_t now = clock_.nowMillis();
    if (now - t->fetched_ms > options_.refresh_ms && now - t->attempted_ms > kRetryMs) t = refreshed(repo, t->attempted_ms);
    notary = signedIn(*t);
    // Not signed in what this edge has: the core may have newer metadata.
    if (!notary && clock_.nowMillis() - t->attempted_ms > kRetryMs) {
      t = refreshed(repo, t->attempted_ms);
      notary = signedIn(*t);
    }
    why = t->error;
  }
  bool cosign = tuf::acceptsCosign(rule->require) && core_confirmed;
  if (tuf::requirementMet(rule->require, notary, cosign)) return std::nullopt;
  std::string what;
  if (tuf::requiresNotary(rule->require) && !notary)
    what = "the tag " + tag + " is not signed for " + digest + " in trust data this edge verified";
  if (tuf::acceptsCosign(rule->require) && !cosign)
    what += std::string(what.empty() ? "" : "; ") + "cosign signatures are checked by the core, which did not confirm this tag";
  if (!why.empty()) what += " (" + why + ")";
  return "refused by the trust policy of " + rule->scope + " (requires " + rule->require + " signatures), at the edge: " + what;
}

}  // namespace wharf
