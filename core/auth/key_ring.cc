#include "core/auth/key_ring.h"

#include <sys/stat.h>

#include "shared/base/fs.h"
#include "shared/base/log.h"
#include "shared/tls/crypto.h"

namespace wharf {

Result<std::unique_ptr<KeyRing>> KeyRing::open(std::unique_ptr<SharedDocument> storage, Clock& clock) {
  std::unique_ptr<KeyRing> ring(new KeyRing(std::move(storage), clock));
  // The first key is made at most once, however many replicas start together.
  std::string created_kid;
  auto doc = ring->storage_->update([&](const std::optional<std::string>& current) -> Result<std::string> {
    std::vector<Key> keys;
    if (current) {
      auto parsed = ring->parse(*current);
      if (!parsed.isOk()) return parsed.status();
      keys = std::move(parsed).value();
    }
    int64_t now = clock.nowMillis();
    std::erase_if(keys, [&](const Key& k) { return k.retire_at_ms != 0 && k.retire_at_ms < now; });
    if (keys.empty()) {
      auto pair = generateEcKey();
      if (!pair.isOk()) return pair.status();
      auto kid = keyIdOf(pair->public_pem);
      if (!kid.isOk()) return kid.status();
      keys.push_back(Key{*kid, pair->private_pem, pair->public_pem, now, 0});
      created_kid = *kid;
    }
    return serialize(keys);
  });
  if (!doc.isOk()) return doc.status();
  if (!created_kid.empty()) logInfo("created a token signing key", {{"kid", created_kid}});
  auto keys = ring->parse(*doc);
  if (!keys.isOk()) return keys.status();
  {
    std::lock_guard lock(ring->mu_);
    ring->adopt(std::move(keys).value());
  }
  ring->storage_->watch([r = ring.get()] {
    if (Status st = r->reload(); !st.isOk()) logWarn("cannot reload the token signing keys", {{"error", st.message()}});
  });
  return ring;
}

Result<std::vector<KeyRing::Key>> KeyRing::parse(const std::string& doc) const {
  auto j = nlohmann::json::parse(doc, nullptr, false);
  if (!j.is_object() || !j.contains("keys") || !j["keys"].is_array() || j["keys"].empty()) {
    return Status(Code::kCorruption, storage_->describe() + " is not a key ring");
  }
  std::vector<Key> keys;
  for (const auto& k : j["keys"]) {
    if (!k.is_object()) return Status(Code::kCorruption, storage_->describe() + " is not a key ring");
    Key key{k.value("kid", ""), k.value("private", ""), "", k.value("created", int64_t{0}), k.value("retire_at", int64_t{0})};
    auto pub = publicPemOf(key.private_pem);
    if (!pub.isOk()) return Status(Code::kCorruption, storage_->describe() + ": " + pub.status().message());
    key.public_pem = *pub;
    keys.push_back(std::move(key));
  }
  return keys;
}

std::string KeyRing::serialize(const std::vector<Key>& keys) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& k : keys) {
    list.push_back({{"kid", k.kid}, {"private", k.private_pem}, {"created", k.created_ms}, {"retire_at", k.retire_at_ms}});
  }
  return nlohmann::json{{"keys", list}}.dump(2);
}

void KeyRing::adopt(std::vector<Key> keys) {
  keys_ = std::move(keys);
  rebuild();
}

Status KeyRing::reload() {
  auto doc = storage_->read();
  if (!doc.isOk()) return doc.status();
  if (!*doc) return Status(Code::kCorruption, storage_->describe() + " lost its keys");
  auto keys = parse(**doc);
  if (!keys.isOk()) return keys.status();
  std::lock_guard lock(mu_);
  adopt(std::move(keys).value());
  return Status::ok();
}

void KeyRing::rebuild() {
  public_keys_.clear();
  for (const auto& k : keys_) public_keys_[k.kid] = k.public_pem;
  auto signer = TokenSigner::create(keys_.back().kid, keys_.back().private_pem);
  WHARF_ASSERT(signer.isOk());  // load() checked every key
  signer_ = *signer;
  verifiers_.clear();
}

std::shared_ptr<const TokenSigner> KeyRing::signer() const {
  std::lock_guard lock(mu_);
  return signer_;
}

std::shared_ptr<const TokenVerifier> KeyRing::verifier(const std::string& issuer, const std::string& audience) const {
  std::lock_guard lock(mu_);
  // Keys past their overlap period stop verifying.
  int64_t now = clock_.nowMillis();
  for (const auto& k : keys_) {
    if (k.retire_at_ms != 0 && k.retire_at_ms < now && public_keys_.count(k.kid)) {
      public_keys_.erase(k.kid);
      verifiers_.clear();
    }
  }
  auto& v = verifiers_[{issuer, audience}];
  if (!v) v = std::make_shared<TokenVerifier>(public_keys_, issuer, audience);
  return v;
}

bool KeyRing::isLive(const std::string& kid) const {
  std::lock_guard lock(mu_);
  int64_t now = clock_.nowMillis();
  for (const auto& k : keys_) {
    if (k.kid == kid) return k.retire_at_ms == 0 || k.retire_at_ms >= now;
  }
  return false;
}

nlohmann::json KeyRing::jwks() const {
  std::lock_guard lock(mu_);
  nlohmann::json keys = nlohmann::json::array();
  int64_t now = clock_.nowMillis();
  for (const auto& k : keys_) {
    if (k.retire_at_ms != 0 && k.retire_at_ms < now) continue;  // past its overlap
    auto jwk = publicJwk(k.public_pem, k.kid);
    if (jwk.isOk()) keys.push_back(*jwk);
  }
  return {{"keys", keys}};
}

Status KeyRing::rotate(int64_t overlap_ms) {
  auto pair = generateEcKey();
  if (!pair.isOk()) return pair.status();
  auto kid = keyIdOf(pair->public_pem);
  if (!kid.isOk()) return kid.status();
  // Applied to the stored ring, not this core's copy: a rotation another replica made
  // meanwhile is kept.
  auto doc = storage_->update([&](const std::optional<std::string>& current) -> Result<std::string> {
    std::vector<Key> keys;
    if (current) {
      auto parsed = parse(*current);
      if (!parsed.isOk()) return parsed.status();
      keys = std::move(parsed).value();
    }
    int64_t now = clock_.nowMillis();
    for (auto& k : keys) {
      if (k.retire_at_ms == 0) k.retire_at_ms = now + overlap_ms;
    }
    std::erase_if(keys, [&](const Key& k) { return k.retire_at_ms != 0 && k.retire_at_ms < now; });
    keys.push_back(Key{*kid, pair->private_pem, pair->public_pem, now, 0});
    return serialize(keys);
  });
  if (!doc.isOk()) return doc.status();
  auto keys = parse(*doc);
  if (!keys.isOk()) return keys.status();
  {
    std::lock_guard lock(mu_);
    adopt(std::move(keys).value());
  }
  logInfo("rotated the token signing key", {{"kid", *kid}, {"overlap_ms", overlap_ms}});
  return Status::ok();
}

}  // namespace wharf
