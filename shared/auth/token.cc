#include "shared/auth/token.h"

#include "shared/base/json_body.h"

namespace wharf {
namespace {

Status unauthorized(std::string why) { return Status(Code::kUnauthorized, "invalid token: " + std::move(why)); }

}  // namespace

bool TokenClaims::allows(const std::string& type, const std::string& name, const std::string& action) const {
  for (const auto& s : access) {
    if (s.type == type && s.name == name && s.allows(action)) return true;
  }
  return false;
}

Result<std::shared_ptr<const TokenSigner>> TokenSigner::create(std::string kid, const std::string& private_pem) {
  auto key = Es256Key::fromPem(private_pem, /*is_private=*/true);
  if (!key.isOk()) return key.status();
  return std::shared_ptr<const TokenSigner>(new TokenSigner(std::move(kid), *key));
}

Result<std::string> TokenSigner::sign(const TokenClaims& c) const {
  nlohmann::json header = {{"alg", "ES256"}, {"kid", kid_}, {"typ", "JWT"}};
  nlohmann::json access = nlohmann::json::array();
  for (const auto& s : c.access) access.push_back(s.toJson());
  nlohmann::json payload = {{"iss", c.issuer},     {"sub", c.subject},    {"aud", c.audience},   {"jti", c.id},
                            {"iat", c.issued_at},  {"nbf", c.not_before}, {"exp", c.expires_at}, {"access", access}};
  if (c.kind != "access") payload["typ"] = c.kind;
  if (!c.via.empty()) payload["pat"] = c.via;
  std::string signing_input = base64UrlEncode(header.dump()) + "." + base64UrlEncode(payload.dump());
  auto sig = key_->sign(signing_input);
  if (!sig.isOk()) return sig.status();
  return signing_input + "." + base64UrlEncode(*sig);
}

TokenVerifier::TokenVerifier(const std::map<std::string, std::string>& keys, std::string issuer, std::string audience,
                             int64_t leeway_s)
    : issuer_(std::move(issuer)), audience_(std::move(audience)), leeway_s_(leeway_s) {
  for (const auto& [kid, pem] : keys) {
    auto key = Es256Key::fromPem(pem, /*is_private=*/false);
    if (key.isOk()) keys_[kid] = *key;
  }
}

Result<TokenClaims> TokenVerifier::verify(const std::string& token, int64_t now_s) const {
  if (token.size() > 16384) return unauthorized("too long");
  auto dot1 = token.find('.');
  auto dot2 = dot1 == std::string::npos ? std::string::npos : token.find('.', dot1 + 1);
  if (dot2 == std::string::npos || token.find('.', dot2 + 1) != std::string::npos) return unauthorized("malformed");
  std::string_view view(token);
  // The header is checked before any key is chosen: only ES256 with one of our keys.
  auto header_bytes = base64UrlDecode(view.substr(0, dot1));
  if (!header_bytes.isOk()) return unauthorized("malformed header");
  if (!jsonNestedWithin(*header_bytes, 4)) return unauthorized("malformed header");
  nlohmann::json header = nlohmann::json::parse(*header_bytes, nullptr, false);
  if (!header.is_object()) return unauthorized("malformed header");
  auto alg = header.find("alg");
  if (alg == header.end() || !alg->is_string() || *alg != "ES256") return unauthorized("algorithm must be ES256");
  for (const char* embedded : {"jwk", "jku", "x5c", "x5u", "crit"}) {
    if (header.contains(embedded)) return unauthorized(std::string("header field \"") + embedded + "\" is not accepted");
  }
  auto kid = header.find("kid");
  if (kid == header.end() || !kid->is_string()) return unauthorized("no key id");
  auto key = keys_.find(kid->get<std::string>());
  if (key == keys_.end()) return unauthorized("unknown key id");
  auto sig = base64UrlDecode(view.substr(dot2 + 1));
  if (!sig.isOk() || !key->second->verify(view.substr(0, dot2), *sig)) return unauthorized("bad signature");

  auto payload_bytes = base64UrlDecode(view.substr(dot1 + 1, dot2 - dot1 - 1));
  if (!payload_bytes.isOk()) return unauthorized("malformed payload");
  if (!jsonNestedWithin(*payload_bytes, 8)) return unauthorized("malformed payload");
  nlohmann::json p = nlohmann::json::parse(*payload_bytes, nullptr, false);
  if (!p.is_object()) return unauthorized("malformed payload");
  TokenClaims c;
  auto num = [&](const char* k, int64_t* out) {
    auto it = p.find(k);
    if (it == p.end() || !it->is_number_integer()) return false;
    *out = it->get<int64_t>();
    return true;
  };
  auto text = [&](const char* k) {
    auto it = p.find(k);
    return it != p.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (!num("exp", &c.expires_at) || !num("nbf", &c.not_before) || !num("iat", &c.issued_at)) {
    return unauthorized("exp, nbf and iat are required");
  }
  if (now_s - leeway_s_ > c.expires_at) return unauthorized("expired");  // no overflow at a huge exp
  if (now_s + leeway_s_ < c.not_before) return unauthorized("not valid yet");
  c.issuer = text("iss");
  c.subject = text("sub");
  c.audience = text("aud");
  c.id = text("jti");
  c.kind = p.contains("typ") ? text("typ") : "access";
  c.via = text("pat");
  c.key_id = key->first;
  if (c.issuer != issuer_) return unauthorized("wrong issuer");
  if (c.audience != audience_) return unauthorized("wrong audience");
  if (auto acc = p.find("access"); acc != p.end()) {
    if (!acc->is_array()) return unauthorized("malformed access claim");
    for (const auto& entry : *acc) {
      auto s = scopeFromJson(entry);
      if (!s.isOk()) return unauthorized("malformed access claim");
      c.access.push_back(std::move(s).value());
    }
  }
  return c;
}

std::shared_ptr<const TokenClaims> VerifiedTokenCache::lookup(const std::string& token, int64_t now_s) {
  std::shared_lock lock(mu_);
  auto it = entries_.find(token);
  if (it == entries_.end() || now_s > it->second->expires_at || now_s < it->second->not_before) return nullptr;
  return it->second;
}

void VerifiedTokenCache::insert(const std::string& token, std::shared_ptr<const TokenClaims> claims) {
  std::unique_lock lock(mu_);
  if (entries_.size() >= capacity_) entries_.clear();  // simple bound: start over
  entries_[token] = std::move(claims);
}

void VerifiedTokenCache::clear() {
  std::unique_lock lock(mu_);
  entries_.clear();
}

}  // namespace wharf
