#include "shared/tuf/metadata.h"

#include <openssl/sha.h>

#include <set>

#include "shared/base/clock.h"
#include "shared/base/json_body.h"
#include "shared/tls/crypto.h"

namespace wharf::tuf {

namespace {

using nlohmann::json;

Status bad(const std::string& what) { return Status(Code::kInvalidArgument, what); }

std::string sha256B64(std::string_view data) {
  unsigned char h[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), h);
  return base64Encode(std::string(reinterpret_cast<char*>(h), sizeof h));
}

std::string sha512B64(std::string_view data) {
  unsigned char h[SHA512_DIGEST_LENGTH];
  SHA512(reinterpret_cast<const unsigned char*>(data.data()), data.size(), h);
  return base64Encode(std::string(reinterpret_cast<char*>(h), sizeof h));
}

bool nameMatchesGun(const std::string& cn, const std::string& gun) {
  if (!cn.empty() && cn.back() == '*') return gun.compare(0, cn.size() - 1, cn, 0, cn.size() - 1) == 0;
  return cn == gun;
}

}  // namespace

Result<Signed> parseSigned(std::string_view bytes, std::string_view expected_type) {
  std::string role(expected_type);
  if (!jsonNestedWithin(bytes, 32)) return bad(role + ": not JSON, or nested too deep");
  json j = json::parse(bytes, nullptr, false);
  if (!j.is_object() || !j.contains("signed") || !j["signed"].is_object() || !j.contains("signatures") ||
      !j["signatures"].is_array())
    return bad(role + ": expected {\"signed\": {...}, \"signatures\": [...]}");
  Signed s;
  s.body = std::move(j["signed"]);
  s.type = jsonStringOr(s.body, "_type");
  if (s.type != expected_type) return bad(role + ": _type is \"" + s.type + "\", expected \"" + role + "\"");
  if (!s.body.contains("version") || !s.body["version"].is_number_integer() || s.body["version"].get<int64_t>() < 0)
    return bad(role + ": version is a non-negative integer");
  s.version = s.body["version"].get<int64_t>();
  auto expires = parseTimeBound(jsonStringOr(s.body, "expires"));
  if (!expires.isOk()) return bad(role + ": expires is an RFC 3339 time");
  s.expires_ms = *expires;
  for (const auto& sig : j["signatures"]) {
    if (!sig.is_object()) return bad(role + ": a signature is an object");
    Signature one{jsonStringOr(sig, "keyid"), jsonStringOr(sig, "method"), ""};
    bool ok = false;
    one.sig = base64Decode(jsonStringOr(sig, "sig"), &ok);
    if (one.keyid.empty() || one.method.empty() || !ok) return bad(role + ": a signature needs keyid, method and a base64 sig");
    s.signatures.push_back(std::move(one));
  }
  return s;
}

Status checkThreshold(const Signed& s, const KeyMap& keys, const RoleKeys& role, const std::string& role_name,
                      std::vector<std::string>* signers) {
  auto canonical = canonicalJson(s.body);
  if (!canonical.isOk()) return bad(role_name + ": " + canonical.status().message());
  std::set<std::string> allowed(role.keyids.begin(), role.keyids.end()), valid;
  for (const auto& sig : s.signatures) {
    if (!allowed.count(sig.keyid) || valid.count(sig.keyid)) continue;
    auto key = keys.find(sig.keyid);
    if (key == keys.end()) continue;
    if (key->second->verify(sig.method, *canonical, sig.sig)) valid.insert(sig.keyid);
  }
  if (signers != nullptr) signers->assign(valid.begin(), valid.end());
  if (int(valid.size()) < role.threshold)
    return bad(role_name + ": signed by " + std::to_string(valid.size()) + " valid key(s) of the role, below its threshold of " +
               std::to_string(role.threshold));
  return Status::ok();
}

Result<Root> parseRoot(std::string_view bytes) {
  auto s = parseSigned(bytes, "Root");
  if (!s.isOk()) return s.status();
  Root root;
  root.envelope = std::move(*s);
  const json& body = root.envelope.body;
  if (!body.contains("keys") || !body["keys"].is_object()) return bad("root: keys is an object");
  for (auto it = body["keys"].begin(); it != body["keys"].end(); ++it) {
    auto key = PublicKey::fromJson(it.value());
    if (!key.isOk()) return bad("root: " + key.status().message());
    if ((*key)->id() != it.key()) return bad("root: key " + it.key() + " has the id " + (*key)->id());
    root.keys[it.key()] = *key;
  }
  if (!body.contains("roles") || !body["roles"].is_object()) return bad("root: roles is an object");
  for (const char* name : {"root", "targets", "snapshot", "timestamp"}) {
    const json* r = body["roles"].contains(name) ? &body["roles"][name] : nullptr;
    if (r == nullptr || !r->is_object() || !r->contains("keyids") || !(*r)["keyids"].is_array() ||
        !r->contains("threshold") || !(*r)["threshold"].is_number_integer())
      return bad(std::string("root: role ") + name + " needs keyids and a threshold");
    RoleKeys role;
    role.threshold = (*r)["threshold"].get<int>();
    for (const auto& id : (*r)["keyids"]) {
      if (!id.is_string() || !root.keys.count(id.get<std::string>()))
        return bad(std::string("root: role ") + name + " names a key root does not hold");
      role.keyids.push_back(id.get<std::string>());
    }
    if (role.threshold < 1 || role.threshold > int(role.keyids.size()))
      return bad(std::string("root: role ") + name + " has a threshold of " + std::to_string(role.threshold) + " for " +
                 std::to_string(role.keyids.size()) + " key(s)");
    root.roles[name] = std::move(role);
  }
  root.consistent_snapshot = body.value("consistent_snapshot", false);
  return root;
}

Result<Root> validateRoot(std::string_view bytes, const Root* previous, const std::string& gun, int64_t now_ms) {
  auto root = parseRoot(bytes);
  if (!root.isOk()) return root.status();
  for (const auto& id : root->roles["root"].keyids) {
    const PublicKey& key = *root->keys[id];
    const CertInfo* cert = key.cert();
    if (cert == nullptr) return bad("root: root key " + id + " is not an x509 certificate (" + key.keyType() + ")");
    if (!nameMatchesGun(cert->common_name, gun))
      return bad("root: the certificate of root key " + id + " is for \"" + cert->common_name + "\", not " + gun);
    if (now_ms < cert->not_before_ms || now_ms > cert->not_after_ms)
      return bad("root: the certificate of root key " + id + " is not valid now");
    if (cert->sha1_signature) return bad("root: the certificate of root key " + id + " is signed with SHA-1");
  }
  WHARF_RETURN_IF_ERROR(checkThreshold(root->envelope, root->keys, root->roles["root"], "root"));
  if (previous != nullptr) {
    // A new root is trusted through the one before it (a rotation signs with both).
    Status old = checkThreshold(root->envelope, previous->keys, previous->roles.at("root"), "root (by the previous root)");
    if (!old.isOk()) return old;
    int64_t v = root->envelope.version, pv = previous->envelope.version;
    if (v != pv && v != pv + 1)
      return bad("root: version " + std::to_string(v) + " after " + std::to_string(pv) + " (expected " + std::to_string(pv) +
                 " or " + std::to_string(pv + 1) + ")");
  } else if (root->envelope.version < 1) {
    return bad("root: version starts at 1");
  }
  if (root->envelope.expires_ms <= now_ms) return bad("root: expired");
  return root;
}

Result<Signed> validateRole(std::string_view bytes, std::string_view type, const std::string& role_name, const Root& root,
                            int64_t now_ms, int64_t min_version) {
  auto s = parseSigned(bytes, type);
  if (!s.isOk()) return s.status();
  auto role = root.roles.find(role_name);
  if (role == root.roles.end()) return bad(role_name + ": not a role of root");
  WHARF_RETURN_IF_ERROR(checkThreshold(*s, root.keys, role->second, role_name));
  if (s->version <= min_version)
    return bad(role_name + ": version " + std::to_string(s->version) + " is not above the current " + std::to_string(min_version));
  if (s->expires_ms <= now_ms) return bad(role_name + ": expired");
  return s;
}

Result<Delegation> delegationOf(const Signed& parent, const std::string& parent_name, const std::string& role) {
  const json& d = parent.body.contains("delegations") ? parent.body["delegations"] : json();
  if (!d.is_object() || !d.contains("roles") || !d["roles"].is_array() || !d.contains("keys") || !d["keys"].is_object())
    return bad(role + ": " + parent_name + " declares no delegations");
  const json* entry = nullptr;
  for (const auto& r : d["roles"])
    if (r.is_object() && jsonStringOr(r, "name") == role) entry = &r;
  if (entry == nullptr) return bad(role + ": " + parent_name + " does not delegate to it");
  Delegation out;
  const json& threshold = entry->contains("threshold") ? (*entry)["threshold"] : json(1);
  if (!threshold.is_number_integer() || threshold.get<int64_t>() < 1 || threshold.get<int64_t>() > 1000)
    return bad(role + ": its threshold is an integer of at least 1");
  out.role.threshold = threshold.get<int>();
  const json& ids = entry->contains("keyids") ? (*entry)["keyids"] : json();
  if (!ids.is_array()) return bad(role + ": its keyids are a list");
  for (const auto& id : ids) {
    if (!id.is_string() || !d["keys"].contains(id.get<std::string>()))
      return bad(role + ": names a key its parent does not hold");
    auto k = PublicKey::fromJson(d["keys"][id.get<std::string>()]);
    if (!k.isOk()) return bad(role + ": " + k.status().message());
    out.keys[id.get<std::string>()] = *k;
    out.role.keyids.push_back(id.get<std::string>());
  }
  if (entry->contains("paths")) {
    const json& paths = (*entry)["paths"];
    if (!paths.is_array()) return bad(role + ": its paths are a list");
    for (const auto& p : paths) {
      if (!p.is_string()) return bad(role + ": its paths are strings");
      out.paths.push_back(p.get<std::string>());
    }
  }
  return out;
}

Status checkSnapshotMeta(const Signed& snapshot, const std::map<std::string, std::string>& exact_bytes) {
  if (!snapshot.body.contains("meta") || !snapshot.body["meta"].is_object()) return bad("snapshot: meta is an object");
  const json& meta = snapshot.body["meta"];
  for (const auto& [role, bytes] : exact_bytes) {
    if (!meta.contains(role) || !meta[role].is_object()) return bad("snapshot: lists no " + role);
    const json& m = meta[role];
    if (!m.contains("length") || !m["length"].is_number_integer() || m["length"].get<int64_t>() != int64_t(bytes.size()))
      return bad("snapshot: the length of " + role + " is not that of the uploaded " + role);
    if (!m.contains("hashes") || !m["hashes"].is_object() || jsonStringOr(m["hashes"], "sha256").empty())
      return bad("snapshot: " + role + " has no sha256");
    if (jsonStringOr(m["hashes"], "sha256") != sha256B64(bytes))
      return bad("snapshot: the sha256 of " + role + " is not that of the uploaded " + role);
    if (m["hashes"].contains("sha512") && jsonStringOr(m["hashes"], "sha512") != sha512B64(bytes))
      return bad("snapshot: the sha512 of " + role + " is not that of the uploaded " + role);
  }
  return Status::ok();
}

json fileMeta(std::string_view bytes) {
  return {{"length", bytes.size()}, {"hashes", {{"sha256", sha256B64(bytes)}, {"sha512", sha512B64(bytes)}}}};
}

namespace {

Result<std::string> signedEnvelope(const SigningKey& key, const json& body) {
  auto canonical = canonicalJson(body);
  if (!canonical.isOk()) return canonical.status();
  auto sig = key.sign(*canonical);
  if (!sig.isOk()) return sig.status();
  json envelope = {{"signed", body},
                   {"signatures", {{{"keyid", key.id()}, {"method", "ecdsa"}, {"sig", base64Encode(*sig)}}}}};
  return envelope.dump();
}

}  // namespace

Result<std::string> makeTimestamp(const SigningKey& key, std::string_view snapshot_bytes, int64_t version,
                                  int64_t expires_ms) {
  return signedEnvelope(key, {{"_type", "Timestamp"},
                              {"version", version},
                              {"expires", formatRfc3339(expires_ms)},
                              {"meta", {{"snapshot", fileMeta(snapshot_bytes)}}}});
}

Result<std::string> makeSnapshot(const SigningKey& key, const std::map<std::string, std::string>& roles, int64_t version,
                                 int64_t expires_ms) {
  json meta = json::object();
  for (const auto& [role, bytes] : roles) meta[role] = fileMeta(bytes);
  return signedEnvelope(key, {{"_type", "Snapshot"}, {"version", version}, {"expires", formatRfc3339(expires_ms)}, {"meta", meta}});
}

}  // namespace wharf::tuf
