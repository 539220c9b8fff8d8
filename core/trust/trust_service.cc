#include "core/trust/trust_service.h"

#include <algorithm>

#include "core/auth/auth_service.h"
#include "shared/base/json_body.h"
#include "shared/tls/crypto.h"

namespace wharf {

namespace {

using nlohmann::json;

Status invalid(const std::string& why) { return Status(Code::kInvalidArgument, why); }

constexpr int64_t kSnapshotTtlMs = 3ll * 365 * 86'400'000;  // as Notary's server

// Exact bytes of a role: uploaded in this update, else stored ("" when neither).
std::string bytesOf(TrustStore& store, const std::string& gun, const std::map<std::string, std::string>& parts,
                    const std::string& role) {
  if (auto it = parts.find(role); it != parts.end()) return it->second;
  auto f = store.current(gun, role);
  return f.isOk() ? f->bytes : "";
}

int64_t storedVersion(TrustStore& store, const std::string& gun, const std::string& role) {
  auto f = store.current(gun, role);
  return f.isOk() ? f->version : 0;
}

bool isRoleName(const std::string& role) {
  if (role == "root" || role == "targets" || role == "snapshot") return true;
  if (role.rfind("targets/", 0) != 0 || role.size() > 255) return false;
  for (char c : role)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '-' || c == '_' || c == '.')) return false;
  return role.find("//") == std::string::npos && role.back() != '/' && role.find("..") == std::string::npos;
}

}  // namespace

TrustService::TrustService(TrustStore& store, Clock& clock, TrustOptions options)
    : store_(store), clock_(clock), options_(std::move(options)) {}

Result<std::unique_ptr<tuf::SigningKey>> TrustService::loadKey(const std::string& gun, const std::string& label, bool create) {
  std::string aad = "wharf tuf key " + label + " of " + gun;
  auto sealed = store_.serverKey(gun, label);
  if (sealed.isOk()) {
    auto pem = openSecret(options_.sealing_key, *sealed, aad);
    if (!pem.isOk()) return pem.status();
    return tuf::SigningKey::fromPem(*pem);
  }
  if (sealed.status().code() != Code::kNotFound || !create) return sealed.status();
  auto key = tuf::SigningKey::generate();
  if (!key.isOk()) return key.status();
  auto pem = (*key)->privatePem();
  if (!pem.isOk()) return pem.status();
  auto box = sealSecret(options_.sealing_key, *pem, aad);
  if (!box.isOk()) return box.status();
  // Another core may make this key at the same time: the first stored is the key.
  auto stored = store_.addServerKey(gun, label, *box);
  if (!stored.isOk()) return stored.status();
  if (*stored == *box) return key;
  auto theirs = openSecret(options_.sealing_key, *stored, aad);
  if (!theirs.isOk()) return theirs.status();
  return tuf::SigningKey::fromPem(*theirs);
}

std::string TrustService::namedKey(const std::string& gun, const std::string& role, const tuf::Root& root) {
  auto r = root.roles.find(role);
  if (r == root.roles.end()) return "";
  for (const std::string& label : {role, role + ".next"}) {
    auto key = loadKey(gun, label, /*create=*/false);
    if (key.isOk() && std::find(r->second.keyids.begin(), r->second.keyids.end(), (*key)->id()) != r->second.keyids.end())
      return label;
  }
  return "";
}

Status TrustService::promote(const std::string& gun, const std::string& role) {
  auto sealed = store_.serverKey(gun, role + ".next");
  if (!sealed.isOk()) return sealed.status();
  auto pem = openSecret(options_.sealing_key, *sealed, "wharf tuf key " + role + ".next of " + gun);
  if (!pem.isOk()) return pem.status();
  auto box = sealSecret(options_.sealing_key, *pem, "wharf tuf key " + role + " of " + gun);
  if (!box.isOk()) return box.status();
  WHARF_RETURN_IF_ERROR(store_.putServerKey(gun, role, *box));
  return store_.deleteServerKey(gun, role + ".next");
}

Result<json> TrustService::rotateKey(const std::string& gun, const std::string& role) {
  if (role != "timestamp" && role != "snapshot") return Status(Code::kNotFound, "no server key for " + role);
  std::lock_guard lock(mu_);
  WHARF_RETURN_IF_ERROR(store_.deleteServerKey(gun, role + ".next"));  // a new rotation replaces a pending one
  auto key = loadKey(gun, role + ".next", /*create=*/true);
  if (!key.isOk()) return key.status();
  return (*key)->publicJson();
}

Result<json> TrustService::serverKey(const std::string& gun, const std::string& role) {
  if (role != "timestamp" && role != "snapshot") return Status(Code::kNotFound, "no server key for " + role);
  std::lock_guard lock(mu_);
  auto key = loadKey(gun, role, /*create=*/true);
  if (!key.isOk()) return key.status();
  return (*key)->publicJson();
}

Status TrustService::signTimestamp(const std::string& gun, const std::string& snapshot_bytes, int64_t version) {
  auto key = loadKey(gun, "timestamp", /*create=*/false);
  if (!key.isOk()) return Status(Code::kInvalidArgument, "the server holds no timestamp key for " + gun);
  auto ts = tuf::makeTimestamp(**key, snapshot_bytes, version, clock_.nowMillis() + options_.timestamp_ttl_ms);
  if (!ts.isOk()) return ts.status();
  return store_.update(gun, {TufFile{"timestamp", version, *ts, "", 0}}, clock_.nowMillis());
}

Status TrustService::publish(const std::string& gun, const std::map<std::string, std::string>& parts) {
  std::lock_guard lock(mu_);
  int64_t now = clock_.nowMillis();
  for (const auto& [role, bytes] : parts) {
    if (role == "timestamp") return invalid("timestamp: the server signs the timestamp; it is not uploaded");
    if (!isRoleName(role)) return invalid("\"" + role + "\" is not a role");
  }
  // The root this update is checked against: the uploaded one (validated through the
  // stored one), else the stored one.
  std::optional<tuf::Root> previous;
  if (auto stored = store_.current(gun, "root"); stored.isOk()) {
    auto r = tuf::parseRoot(stored->bytes);
    if (!r.isOk()) return Status(Code::kCorruption, gun + ": the stored root does not parse: " + r.status().message());
    previous = std::move(*r);
  } else if (stored.status().code() != Code::kNotFound) {
    return stored.status();
  }
  tuf::Root root;
  if (auto it = parts.find("root"); it != parts.end()) {
    auto r = tuf::validateRoot(it->second, previous ? &*previous : nullptr, gun, now);
    if (!r.isOk()) return r.status();
    root = std::move(*r);
  } else if (previous) {
    root = std::move(*previous);
  } else {
    return invalid("root: the first update of " + gun + " must carry a root");
  }
  // The timestamp is the server's: root must name its key (or the one a rotation made).
  std::string ts_label = namedKey(gun, "timestamp", root);
  if (ts_label.empty()) {
    if (!loadKey(gun, "timestamp", /*create=*/false).isOk())
      return invalid("root: no timestamp key was asked of this server for " + gun + " (GET timestamp.key)");
    return invalid("root: its timestamp role does not name this server's timestamp key");
  }

  std::vector<TufFile> files;
  if (auto it = parts.find("root"); it != parts.end()) files.push_back({"root", root.envelope.version, it->second, "", 0});
  if (auto it = parts.find("targets"); it != parts.end()) {
    auto t = tuf::validateRole(it->second, "Targets", "targets", root, now, storedVersion(store_, gun, "targets"));
    if (!t.isOk()) return t.status();
    files.push_back({"targets", t->version, it->second, "", 0});
  }
  // Delegations, parents first: each signed to the threshold its parent declares.
  std::vector<std::string> delegations;
  for (const auto& [role, bytes] : parts)
    if (role.rfind("targets/", 0) == 0) delegations.push_back(role);
  std::sort(delegations.begin(), delegations.end(), [](const std::string& a, const std::string& b) {
    return std::count(a.begin(), a.end(), '/') < std::count(b.begin(), b.end(), '/');
  });
  for (const auto& role : delegations) {
    std::string parent = role.substr(0, role.rfind('/'));
    std::string parent_bytes = bytesOf(store_, gun, parts, parent);
    if (parent_bytes.empty()) return invalid(role + ": its parent " + parent + " does not exist");
    auto p = tuf::parseSigned(parent_bytes, "Targets");
    if (!p.isOk()) return p.status();
    auto delegation = tuf::delegationOf(*p, parent, role);
    if (!delegation.isOk()) return delegation.status();
    auto s = tuf::parseSigned(parts.at(role), "Targets");
    if (!s.isOk()) return s.status();
    WHARF_RETURN_IF_ERROR(tuf::checkThreshold(*s, delegation->keys, delegation->role, role));
    int64_t have = storedVersion(store_, gun, role);
    if (s->version <= have)
      return Status(Code::kConflict, role + ": version " + std::to_string(s->version) + " is not above the current " +
                                         std::to_string(have));
    if (s->expires_ms <= now) return invalid(role + ": expired");
    files.push_back({role, s->version, parts.at(role), "", 0});
  }
  // The snapshot: over the exact bytes of everything it lists; made here when the client
  // lets the server hold the snapshot key and sends none.
  std::string snapshot_bytes;
  std::string snap_label = namedKey(gun, "snapshot", root);
  if (auto snap = parts.find("snapshot"); snap != parts.end()) {
    auto s = tuf::validateRole(snap->second, "Snapshot", "snapshot", root, now, storedVersion(store_, gun, "snapshot"));
    if (!s.isOk()) return s.status();
    std::map<std::string, std::string> listed = {{"root", bytesOf(store_, gun, parts, "root")},
                                                 {"targets", bytesOf(store_, gun, parts, "targets")}};
    for (const auto& role : delegations) listed[role] = parts.at(role);
    for (auto it = listed.begin(); it != listed.end();) it = it->second.empty() ? listed.erase(it) : std::next(it);
    WHARF_RETURN_IF_ERROR(tuf::checkSnapshotMeta(*s, listed));
    files.push_back({"snapshot", s->version, snap->second, "", 0});
    snapshot_bytes = snap->second;
  } else if (!snap_label.empty()) {
    std::map<std::string, std::string> listed;
    auto stored = store_.currentAll(gun);
    if (!stored.isOk()) return stored.status();
    for (auto& f : *stored)
      if (f.role == "root" || f.role == "targets" || f.role.rfind("targets/", 0) == 0) listed[f.role] = std::move(f.bytes);
    for (const auto& f : files) listed[f.role] = f.bytes;
    if (!listed.count("targets")) return invalid("snapshot: there are no targets to make a snapshot of");
    auto key = loadKey(gun, snap_label, /*create=*/false);
    if (!key.isOk()) return key.status();
    auto made = tuf::makeSnapshot(**key, listed, storedVersion(store_, gun, "snapshot") + 1, now + kSnapshotTtlMs);
    if (!made.isOk()) return made.status();
    files.push_back({"snapshot", storedVersion(store_, gun, "snapshot") + 1, *made, "", 0});
    snapshot_bytes = *made;
  } else {
    return invalid("snapshot: an update carries the snapshot (root does not name a snapshot key this server holds)");
  }

  bool first = !previous.has_value();
  Status stored = store_.update(gun, files, now);
  // A root naming a rotated key makes it the key from now on.
  if (stored.isOk() && ts_label == "timestamp.next") stored = promote(gun, "timestamp");
  if (stored.isOk() && snap_label == "snapshot.next") stored = promote(gun, "snapshot");
  if (stored.isOk()) stored = signTimestamp(gun, snapshot_bytes, storedVersion(store_, gun, "timestamp") + 1);
  forget(gun);
  if (first) {
    std::lock_guard cache(cache_mu_);
    guns_.reset();
  }
  return stored;
}

Status TrustService::deleteGun(const std::string& gun) {
  std::lock_guard lock(mu_);
  Status s = store_.deleteGun(gun, clock_.nowMillis());
  forget(gun);
  std::lock_guard cache(cache_mu_);
  guns_.reset();
  return s;
}

void TrustService::forget(const std::string& gun) {
  std::lock_guard cache(cache_mu_);
  verified_.erase(gun);
  ++generation_;
}

Result<std::shared_ptr<const tuf::TrustedRepository>> TrustService::verified(const std::string& gun) {
  int64_t now = clock_.nowMillis();
  uint64_t generation;
  {
    std::lock_guard cache(cache_mu_);
    if (auto it = verified_.find(gun); it != verified_.end() && it->second.until_ms > now) {
      if (it->second.repo) return it->second.repo;
      return it->second.error;
    }
    generation = generation_;
  }
  // The timestamp first: signed again here when it expired.
  auto ts = current(gun, "timestamp");
  if (!ts.isOk()) return ts.status();
  auto files = store_.currentAll(gun);
  if (!files.isOk()) return files.status();
  std::map<std::string, std::string> bytes;
  for (auto& f : *files) bytes[f.role] = std::move(f.bytes);
  auto repo = tuf::verifyRepository(gun, bytes, nullptr, now);
  Verified v;
  if (repo.isOk()) {
    v.repo = std::make_shared<const tuf::TrustedRepository>(std::move(*repo));
    v.until_ms = v.repo->expires_ms;
  } else {
    v.error = repo.status();
    v.until_ms = now + 60'000;  // metadata that does not verify now is looked at again in a minute
  }
  std::lock_guard cache(cache_mu_);
  if (generation == generation_) verified_[gun] = v;  // not when a write came in between
  if (v.repo) return v.repo;
  return v.error;
}

std::vector<std::string> TrustService::signedDigests(const std::string& repository) {
  std::vector<std::string> out;
  for (const auto& gun : gunsOf(repository)) {
    auto files = store_.currentAll(gun);
    if (!files.isOk()) continue;
    for (const auto& f : *files) {
      if (f.role != "targets" && f.role.rfind("targets/", 0) != 0) continue;
      auto s = tuf::parseSigned(f.bytes, "Targets");
      if (!s.isOk() || !s->body.contains("targets") || !s->body["targets"].is_object()) continue;
      for (const auto& [name, t] : s->body["targets"].items()) {
        if (!t.is_object() || !t.contains("hashes") || !t["hashes"].is_object()) continue;
        bool ok = false;
        std::string raw = base64Decode(jsonStringOr(t["hashes"], "sha256"), &ok);
        if (ok && raw.size() == 32) out.push_back("sha256:" + hexEncode(raw));
      }
    }
  }
  return out;
}

std::vector<std::string> TrustService::gunsOf(const std::string& repository) {
  std::lock_guard cache(cache_mu_);
  if (!guns_) {
    auto all = store_.guns();
    if (!all.isOk()) return {};  // not cached: asked again next time
    guns_.emplace();
    for (const auto& g : *all) (*guns_)[repositoryOfName(g)].push_back(g);
  }
  auto it = guns_->find(repository);
  return it == guns_->end() ? std::vector<std::string>{} : it->second;
}

Result<TufFile> TrustService::current(const std::string& gun, const std::string& role) {
  if (role != "timestamp") return store_.current(gun, role);
  std::lock_guard lock(mu_);
  auto ts = store_.current(gun, "timestamp");
  if (!ts.isOk()) return ts;
  auto snapshot = store_.current(gun, "snapshot");
  if (!snapshot.isOk()) return ts;
  auto parsed = tuf::parseSigned(ts->bytes, "Timestamp");
  bool fresh = parsed.isOk() && parsed->expires_ms > clock_.nowMillis() &&
               tuf::checkSnapshotMeta(*parsed, {{"snapshot", snapshot->bytes}}).isOk();
  if (fresh) return ts;
  WHARF_RETURN_IF_ERROR(signTimestamp(gun, snapshot->bytes, ts->version + 1));
  return store_.current(gun, "timestamp");
}

}  // namespace wharf
