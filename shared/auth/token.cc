#include "shared/auth/token.h"

#include <jwt/jwt.hpp>

#include "shared/tls/crypto.h"

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

Result<std::string> TokenSigner::sign(const TokenClaims& c) const {
  // cpp-jwt throws on some failures; nothing escapes this function.
  try {
    nlohmann::json access = nlohmann::json::array();
    for (const auto& s : c.access) access.push_back(s.toJson());
    jwt::jwt_object obj{jwt::params::algorithm("ES256"), jwt::params::secret(private_pem_)};
    obj.header().add_header("kid", kid_);
    obj.add_claim("iss", c.issuer);
    obj.add_claim("sub", c.subject);
    obj.add_claim("aud", c.audience);
    obj.add_claim("jti", c.id);
    obj.add_claim("iat", c.issued_at);
    obj.add_claim("nbf", c.not_before);
    obj.add_claim("exp", c.expires_at);
    obj.add_claim("access", access);
    if (c.kind != "access") obj.add_claim("typ", c.kind);
    if (!c.via.empty()) obj.add_claim("pat", c.via);
    std::error_code ec;
    std::string token = obj.signature(ec);
    if (ec) return Status(Code::kInternal, "sign token: " + ec.message());
    return token;
  } catch (const std::exception& e) {
    return Status(Code::kInternal, std::string("sign token: ") + e.what());
  }
}

Result<TokenClaims> TokenVerifier::verify(const std::string& token, int64_t now_s) const {
  if (token.size() > 16384) return unauthorized("too long");
  auto dot1 = token.find('.');
  auto dot2 = dot1 == std::string::npos ? std::string::npos : token.find('.', dot1 + 1);
  if (dot2 == std::string::npos || token.find('.', dot2 + 1) != std::string::npos) return unauthorized("malformed");
  // The header is checked by hand before any key is chosen.
  auto header_bytes = base64UrlDecode(std::string_view(token).substr(0, dot1));
  if (!header_bytes.isOk()) return unauthorized("malformed header");
  nlohmann::json header = nlohmann::json::parse(*header_bytes, nullptr, false);
  if (!header.is_object()) return unauthorized("malformed header");
  if (header.value("alg", "") != "ES256") return unauthorized("algorithm must be ES256");
  for (const char* embedded : {"jwk", "jku", "x5c", "x5u", "crit"}) {
    if (header.contains(embedded)) return unauthorized(std::string("header field \"") + embedded + "\" is not accepted");
  }
  auto kid = header.find("kid");
  if (kid == header.end() || !kid->is_string()) return unauthorized("no key id");
  auto key = keys_.find(kid->get<std::string>());
  if (key == keys_.end()) return unauthorized("unknown key id");
  try {
    std::error_code ec;
    auto obj = jwt::decode(token, jwt::params::algorithms({"ES256"}), ec, jwt::params::secret(key->second),
                           jwt::params::verify(true), jwt::params::issuer(issuer_), jwt::params::aud(audience_),
                           jwt::params::leeway(static_cast<uint32_t>(leeway_s_)));
    if (ec) return unauthorized(ec.message());
    const nlohmann::json& p = obj.payload().create_json_obj();
    TokenClaims c;
    auto num = [&](const char* k, int64_t* out) {
      auto it = p.find(k);
      if (it == p.end() || !it->is_number_integer()) return false;
      *out = it->get<int64_t>();
      return true;
    };
    if (!num("exp", &c.expires_at) || !num("nbf", &c.not_before) || !num("iat", &c.issued_at)) {
      return unauthorized("exp, nbf and iat are required");
    }
    // cpp-jwt checks these too; checked here again against our clock.
    if (now_s > c.expires_at + leeway_s_) return unauthorized("expired");
    if (now_s + leeway_s_ < c.not_before) return unauthorized("not valid yet");
    c.issuer = p.value("iss", "");
    c.subject = p.value("sub", "");
    c.audience = p.value("aud", "");
    c.id = p.value("jti", "");
    c.kind = p.value("typ", "access");
    c.via = p.value("pat", "");
    if (c.issuer != issuer_ || c.audience != audience_) return unauthorized("wrong issuer or audience");
    if (auto acc = p.find("access"); acc != p.end()) {
      if (!acc->is_array()) return unauthorized("malformed access claim");
      for (const auto& entry : *acc) {
        auto s = scopeFromJson(entry);
        if (!s.isOk()) return unauthorized("malformed access claim");
        c.access.push_back(std::move(s).value());
      }
    }
    return c;
  } catch (const std::exception& e) {
    return unauthorized(e.what());
  }
}

bool VerifiedTokenCache::lookup(const std::string& token, int64_t now_s, TokenClaims* out) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(token);
  if (it == entries_.end()) return false;
  if (now_s > it->second.expires_at || now_s < it->second.not_before) {
    entries_.erase(it);
    return false;
  }
  *out = it->second;
  return true;
}

void VerifiedTokenCache::insert(const std::string& token, const TokenClaims& claims) {
  std::lock_guard lock(mu_);
  if (entries_.size() >= capacity_) entries_.clear();  // simple bound: start over
  entries_[token] = claims;
}

void VerifiedTokenCache::clear() {
  std::lock_guard lock(mu_);
  entries_.clear();
}

}  // namespace wharf
