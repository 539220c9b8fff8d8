#include "core/auth/key_ring.h"

#include <sys/stat.h>

#include "shared/base/fs.h"
#include "shared/base/log.h"
#include "shared/tls/crypto.h"

namespace wharf {

Result<std::unique_ptr<KeyRing>> KeyRing::open(const std::string& dir, Clock& clock) {
  WHARF_RETURN_IF_ERROR(makeDirs(dir));
  ::chmod(dir.c_str(), 0700);
  std::unique_ptr<KeyRing> ring(new KeyRing(dir + "/keys.json", clock));
  WHARF_RETURN_IF_ERROR(ring->load());
  return ring;
}

Status KeyRing::load() {
  std::lock_guard lock(mu_);
  std::string text;
  Status st = readFile(path_, &text);
  if (st.isOk()) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_object() || !j.contains("keys") || !j["keys"].is_array()) {
      return Status(Code::kCorruption, path_ + " is not a key ring");
    }
    for (const auto& k : j["keys"]) {
      Key key{k.value("kid", ""), k.value("private", ""), "", k.value("created", int64_t{0}), k.value("retire_at", int64_t{0})};
      auto pub = publicPemOf(key.private_pem);
      if (!pub.isOk()) return Status(Code::kCorruption, path_ + ": " + pub.status().message());
      key.public_pem = *pub;
      keys_.push_back(std::move(key));
    }
  } else if (st.code() != Code::kNotFound) {
    return st;
  }
  int64_t now = clock_.nowMillis();
  std::erase_if(keys_, [&](const Key& k) { return k.retire_at_ms != 0 && k.retire_at_ms < now; });
  if (keys_.empty()) {
    auto pair = generateEcKey();
    if (!pair.isOk()) return pair.status();
    auto kid = keyIdOf(pair->public_pem);
    if (!kid.isOk()) return kid.status();
    keys_.push_back(Key{*kid, pair->private_pem, pair->public_pem, now, 0});
    WHARF_RETURN_IF_ERROR(save());
    logInfo("created a token signing key", {{"kid", *kid}});
  }
  rebuild();
  return Status::ok();
}

Status KeyRing::save() const {
  nlohmann::json keys = nlohmann::json::array();
  for (const auto& k : keys_) {
    keys.push_back({{"kid", k.kid}, {"private", k.private_pem}, {"created", k.created_ms}, {"retire_at", k.retire_at_ms}});
  }
  WHARF_RETURN_IF_ERROR(writeFileDurable(path_, nlohmann::json{{"keys", keys}}.dump(2), 0600));
  ::chmod(path_.c_str(), 0600);
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
  std::lock_guard lock(mu_);
  int64_t now = clock_.nowMillis();
  for (auto& k : keys_) {
    if (k.retire_at_ms == 0) k.retire_at_ms = now + overlap_ms;
  }
  std::erase_if(keys_, [&](const Key& k) { return k.retire_at_ms != 0 && k.retire_at_ms < now; });
  keys_.push_back(Key{*kid, pair->private_pem, pair->public_pem, now, 0});
  WHARF_RETURN_IF_ERROR(save());
  rebuild();
  logInfo("rotated the token signing key", {{"kid", *kid}, {"overlap_ms", overlap_ms}});
  return Status::ok();
}

}  // namespace wharf
