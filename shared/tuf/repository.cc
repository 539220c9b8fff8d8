#include "shared/tuf/repository.h"

#include <algorithm>

#include "shared/base/json_body.h"
#include "shared/tls/crypto.h"

namespace wharf::tuf {

namespace {

using nlohmann::json;

Status untrusted(const std::string& what) { return Status(Code::kInvalidArgument, what); }

// A verified Targets role: its body, signers, expiry (with its parents') and the path
// prefixes it and each of its parents may sign.
struct VerifiedRole {
  Signed signed_;
  std::vector<std::string> signers;
  int64_t expires_ms = 0;
  std::vector<std::vector<std::string>> path_chain;  // per delegation: prefixes ("" is all; none: nothing)
};

bool pathAllowed(const std::vector<std::vector<std::string>>& chain, const std::string& name) {
  for (const auto& prefixes : chain) {
    bool ok = false;
    for (const auto& p : prefixes) ok = ok || name.compare(0, p.size(), p) == 0;
    if (!ok) return false;
  }
  return true;
}

Status collectTargets(const VerifiedRole& role, const std::string& role_name, TrustedRepository* out) {
  const json& targets = role.signed_.body.contains("targets") ? role.signed_.body["targets"] : json::object();
  if (!targets.is_object()) return untrusted(role_name + ": targets is an object");
  std::vector<std::pair<std::string, TrustedTarget>> found;  // all of the role's or none
  for (auto it = targets.begin(); it != targets.end(); ++it) {
    const json& t = it.value();
    if (!pathAllowed(role.path_chain, it.key())) continue;  // outside what this role may sign
    if (!t.is_object() || !t.contains("length") || !t["length"].is_number_integer() || !t.contains("hashes") ||
        !t["hashes"].is_object())
      return untrusted(role_name + ": target \"" + it.key() + "\" needs a length and hashes");
    bool ok = false;
    std::string sha = base64Decode(jsonStringOr(t["hashes"], "sha256"), &ok);
    if (!ok || sha.size() != 32) continue;  // not a target we can match to a digest
    found.emplace_back(it.key(), TrustedTarget{role_name, role.signers, t["length"].get<int64_t>(), hexEncode(sha),
                                               role.expires_ms});
  }
  out->targets.insert(found.begin(), found.end());
  return Status::ok();
}

}  // namespace

bool requiresNotary(const std::string& r) { return r == "notary" || r == "either" || r == "both"; }
bool acceptsCosign(const std::string& r) { return r == "cosign" || r == "either" || r == "both"; }

bool requirementMet(const std::string& require, bool notary_signed, bool cosign_signed) {
  if (require == "notary") return notary_signed;
  if (require == "cosign") return cosign_signed;
  if (require == "either") return notary_signed || cosign_signed;
  if (require == "both") return notary_signed && cosign_signed;
  return true;
}

bool acceptedBy(const TrustedTarget& target, const std::vector<std::string>& roles, const std::vector<std::string>& keys) {
  auto named = [](const std::vector<std::string>& list, const std::string& x) {
    return std::find(list.begin(), list.end(), x) != list.end();
  };
  if (!roles.empty() && !named(roles, target.role)) return false;
  return keys.empty() ||
         std::any_of(target.signers.begin(), target.signers.end(), [&](const std::string& k) { return named(keys, k); });
}

std::vector<const TrustedTarget*> TrustedRepository::find(const std::string& name, const std::string& sha256_hex,
                                                          int64_t now_ms) const {
  std::vector<const TrustedTarget*> out;
  auto [b, e] = targets.equal_range(name);
  for (auto it = b; it != e; ++it)
    if (it->second.sha256_hex == sha256_hex && it->second.expires_ms > now_ms) out.push_back(&it->second);
  return out;
}

Result<TrustedRepository> verifyRepository(const std::string& gun, const std::map<std::string, std::string>& files,
                                           const Root* pinned, int64_t now_ms) {
  auto bytes = [&](const std::string& role) -> const std::string* {
    auto it = files.find(role);
    return it == files.end() ? nullptr : &it->second;
  };
  for (const char* role : {"root", "timestamp", "snapshot", "targets"})
    if (bytes(role) == nullptr) return untrusted(std::string(role) + ": missing");
  auto root = validateRoot(*bytes("root"), pinned, gun, now_ms);
  if (!root.isOk()) return root.status();

  auto ts = validateRole(*bytes("timestamp"), "Timestamp", "timestamp", *root, now_ms, 0);
  if (!ts.isOk()) return ts.status();
  if (Status st = checkSnapshotMeta(*ts, {{"snapshot", *bytes("snapshot")}}); !st.isOk())
    return untrusted("timestamp: does not name this snapshot (" + st.message() + ")");
  auto snapshot = validateRole(*bytes("snapshot"), "Snapshot", "snapshot", *root, now_ms, 0);
  if (!snapshot.isOk()) return snapshot.status();
  WHARF_RETURN_IF_ERROR(checkSnapshotMeta(*snapshot, {{"root", *bytes("root")}, {"targets", *bytes("targets")}}));

  TrustedRepository out;
  out.gun = gun;
  out.root_version = root->envelope.version;
  int64_t chain_expiry = std::min(ts->expires_ms, snapshot->expires_ms);

  std::map<std::string, VerifiedRole> verified;
  {
    auto t = parseSigned(*bytes("targets"), "Targets");
    if (!t.isOk()) return t.status();
    VerifiedRole v;
    WHARF_RETURN_IF_ERROR(checkThreshold(*t, root->keys, root->roles["targets"], "targets", &v.signers));
    if (t->expires_ms <= now_ms) return untrusted("targets: expired");
    v.expires_ms = std::min(chain_expiry, t->expires_ms);
    v.signed_ = std::move(*t);
    out.targets_version = v.signed_.version;
    out.expires_ms = std::min({root->envelope.expires_ms, v.expires_ms});
    WHARF_RETURN_IF_ERROR(collectTargets(v, "targets", &out));
    verified["targets"] = std::move(v);
  }

  // Delegations, parents first; one that does not verify leaves out only its targets.
  std::vector<std::string> delegations;
  for (const auto& [role, b] : files)
    if (role.rfind("targets/", 0) == 0) delegations.push_back(role);
  std::stable_sort(delegations.begin(), delegations.end(), [](const std::string& a, const std::string& b) {
    return std::count(a.begin(), a.end(), '/') < std::count(b.begin(), b.end(), '/');
  });
  for (const auto& role : delegations) {
    std::string parent = role.substr(0, role.rfind('/'));
    auto p = verified.find(parent);
    if (p == verified.end()) {
      out.problems.push_back(role + ": its parent " + parent + " did not verify");
      continue;
    }
    if (Status st = checkSnapshotMeta(*snapshot, {{role, *bytes(role)}}); !st.isOk()) {
      out.problems.push_back(st.message());
      continue;
    }
    auto d = delegationOf(p->second.signed_, parent, role);
    if (!d.isOk()) {
      out.problems.push_back(d.status().message());
      continue;
    }
    auto s = parseSigned(*bytes(role), "Targets");
    if (!s.isOk()) {
      out.problems.push_back(s.status().message());
      continue;
    }
    VerifiedRole v;
    if (Status st = checkThreshold(*s, d->keys, d->role, role, &v.signers); !st.isOk()) {
      out.problems.push_back(st.message());
      continue;
    }
    if (s->expires_ms <= now_ms) {
      out.problems.push_back(role + ": expired");
      continue;
    }
    v.expires_ms = std::min(p->second.expires_ms, s->expires_ms);
    v.path_chain = p->second.path_chain;
    v.path_chain.push_back(d->paths);
    v.signed_ = std::move(*s);
    if (Status st = collectTargets(v, role, &out); !st.isOk()) {
      out.problems.push_back(st.message());
      continue;
    }
    verified[role] = std::move(v);
  }
  return out;
}

}  // namespace wharf::tuf
