#include "core/trust/trust_enforcer.h"

#include <algorithm>

#include "core/metadata/policy.h"
#include "shared/base/clock.h"
#include "shared/base/json_body.h"
#include "shared/tuf/cosign.h"

namespace wharf {

namespace {

using nlohmann::json;

constexpr uint64_t kMaxSignatureManifest = 4u << 20;
constexpr uint64_t kMaxPayload = 1u << 20;
constexpr size_t kMaxCosignCache = 10000;

const Policy* trustPolicyOf(const std::vector<Policy>& policies, const std::string& repo) {
  const Policy* p = mostSpecificPolicy(policies, repo, [](const Policy& x) { return !x.trust.require.empty(); });
  return p != nullptr && p->trust.enforced() ? p : nullptr;
}

std::string hexOfDigest(const std::string& digest) {
  return digest.rfind("sha256:", 0) == 0 ? digest.substr(7) : std::string();
}

}  // namespace

std::vector<TrustEnforcer::NotaryMatch> TrustEnforcer::notaryMatches(const std::string& repo, const std::string& tag,
                                                                     const std::string& digest, uint64_t size,
                                                                     const TrustPolicy* policy,
                                                                     std::vector<std::string>* problems) {
  std::vector<NotaryMatch> out;
  std::string hex = hexOfDigest(digest);
  if (hex.empty()) return out;  // TUF targets name SHA-256 digests
  int64_t now = clock_.nowMillis();
  for (const auto& gun : trust_.gunsOf(repo)) {
    auto verified = trust_.verified(gun);
    if (!verified.isOk()) {
      if (problems != nullptr) problems->push_back(gun + ": " + verified.status().message());
      continue;
    }
    if (problems != nullptr)
      for (const auto& p : (*verified)->problems) problems->push_back(gun + ": " + p);
    auto consider = [&](const std::string& name, const tuf::TrustedTarget& t) {
      if (t.sha256_hex != hex || t.expires_ms <= now || uint64_t(t.length) != size) return;
      if (policy != nullptr && !tuf::acceptedBy(t, policy->roles, policy->keys)) return;
      out.push_back(NotaryMatch{gun, name, t});
    };
    if (!tag.empty()) {
      auto [b, e] = (*verified)->targets.equal_range(tag);
      for (auto it = b; it != e; ++it) consider(it->first, it->second);
    } else {
      for (const auto& [name, t] : (*verified)->targets) consider(name, t);
    }
  }
  return out;
}

std::vector<TrustEnforcer::CosignCheck> TrustEnforcer::cosignChecks(const std::string& repo, const std::string& digest,
                                                                    const TrustPolicy* policy) {
  std::vector<std::pair<std::string, std::string>> manifests;  // (digest, source)
  if (auto sig = registry_.metadata().resolveTag(repo, tuf::cosignSignatureTag(digest)); sig.isOk())
    manifests.emplace_back(*sig, "tag");
  for (const auto& d : registry_.metadata().referrers(repo, digest)) {
    std::string m = jsonStringOr(d, "digest");
    if (!m.empty()) manifests.emplace_back(m, "referrer");
  }
  std::vector<std::shared_ptr<const tuf::CosignKey>> keys;
  std::string key_ids;
  if (policy != nullptr)
    for (const auto& pem : policy->cosign_keys)
      if (auto k = cosignKey(pem)) {
        keys.push_back(k);
        key_ids += k->id() + ",";
      }
  std::vector<CosignCheck> out;
  for (const auto& [m, source] : manifests) {
    std::string cache_key = digest + " " + m + " " + key_ids;
    {
      std::lock_guard lock(mu_);
      if (auto it = cosign_cache_.find(cache_key); it != cosign_cache_.end()) {
        out.push_back(it->second);
        out.back().source = source;
        continue;
      }
    }
    auto body = registry_.readContent(m, kMaxSignatureManifest);
    if (!body.isOk()) continue;
    json manifest = json::parse(*body, nullptr, false);
    auto layers = tuf::cosignLayers(manifest);
    if (layers.empty()) continue;  // a referrer that is no cosign signature (an SBOM...)
    CosignCheck c{m, source, "", ""};
    for (const auto& [payload_digest, signature] : layers) {
      auto payload = registry_.readContent(payload_digest, kMaxPayload);
      if (!payload.isOk()) {
        c.error = "payload " + payload_digest + ": " + payload.status().message();
        continue;
      }
      if (keys.empty()) {
        c.error = "no cosign keys in the trust policy to check it with";
        break;
      }
      auto by = tuf::verifyCosign(*payload, signature, digest, keys);
      if (by.isOk()) {
        c.key = *by;
        c.error.clear();
        break;
      }
      c.error = by.status().message();
    }
    {
      std::lock_guard lock(mu_);
      if (cosign_cache_.size() >= kMaxCosignCache) cosign_cache_.clear();
      cosign_cache_[cache_key] = c;
    }
    out.push_back(std::move(c));
  }
  return out;
}

std::shared_ptr<const tuf::CosignKey> TrustEnforcer::cosignKey(const std::string& pem) {
  std::lock_guard lock(mu_);
  if (auto it = cosign_keys_.find(pem); it != cosign_keys_.end()) return it->second;
  auto k = tuf::CosignKey::fromPem(pem);  // policies hold only keys that parse
  if (!k.isOk()) return nullptr;
  if (cosign_keys_.size() >= 1000) cosign_keys_.clear();
  return cosign_keys_[pem] = *k;
}

std::optional<std::string> TrustEnforcer::refusal(const std::string& repo, const std::string& tag, const std::string& digest,
                                                  uint64_t size) {
  auto policies = registry_.policies();
  const Policy* p = trustPolicyOf(*policies, repo);
  if (p == nullptr) return std::nullopt;
  const TrustPolicy& t = p->trust;
  bool notary = t.wantsNotary() && !notaryMatches(repo, tag, digest, size, &t, nullptr).empty();
  bool cosign = false;
  if (t.wantsCosign()) {
    auto checks = cosignChecks(repo, digest, &t);
    cosign = std::any_of(checks.begin(), checks.end(), [](const CosignCheck& c) { return !c.key.empty(); });
  }
  if (tuf::requirementMet(t.require, notary, cosign)) return std::nullopt;
  std::string what;
  if (t.wantsNotary() && !notary) {
    what = "the tag " + tag + " is not signed for " + digest + " in the repository's trust data";
    if (!t.roles.empty()) what += " by the role(s) " + json(t.roles).dump();
    if (!t.keys.empty()) what += " with the key(s) " + json(t.keys).dump();
  }
  if (t.wantsCosign() && !cosign)
    what += std::string(what.empty() ? "" : t.require == "either" ? " nor" : " and") + " no cosign signature of " + digest +
            " verifies with the policy's keys";
  return "refused by the trust policy of " + p->scope + " (requires " + t.require + " signatures): " + what;
}

json TrustEnforcer::status(const std::string& repo, const std::string& digest, uint64_t size) {
  auto policies = registry_.policies();
  const Policy* p = trustPolicyOf(*policies, repo);
  const TrustPolicy* t = p != nullptr ? &p->trust : nullptr;
  std::vector<std::string> problems;
  json notary = json::array();
  bool policy_notary = false;
  for (const auto& m : notaryMatches(repo, "", digest, size, nullptr, &problems)) {
    bool by_policy = t != nullptr && t->wantsNotary() && tuf::acceptedBy(m.target, t->roles, t->keys);
    policy_notary = policy_notary || by_policy;
    notary.push_back({{"tag", m.name},
                      {"gun", m.gun},
                      {"role", m.target.role},
                      {"keys", m.target.signers},
                      {"expires", formatRfc3339(m.target.expires_ms)},
                      {"accepted_by_policy", by_policy}});
  }
  json cosign = json::array();
  bool policy_cosign = false;
  for (const auto& c : cosignChecks(repo, digest, t)) {
    json one = {{"manifest", c.manifest}, {"source", c.source}, {"verified", !c.key.empty()}};
    if (!c.key.empty()) one["key"] = c.key;
    if (!c.error.empty()) one["error"] = c.error;
    policy_cosign = policy_cosign || !c.key.empty();
    cosign.push_back(std::move(one));
  }
  json out = {{"repository", repo},
              {"digest", digest},
              {"signed", !notary.empty() || policy_cosign},
              {"notary", notary},
              {"cosign", cosign}};
  if (!problems.empty()) out["problems"] = problems;
  if (p != nullptr) {
    out["policy"] = {{"scope", p->scope},
                     {"require", t->require},
                     {"satisfied", tuf::requirementMet(t->require, policy_notary, policy_cosign)}};
    if (t->wantsNotary()) out["policy"]["note"] = "pulls by tag need the tag itself among the accepted Notary targets";
  }
  return out;
}

}  // namespace wharf
