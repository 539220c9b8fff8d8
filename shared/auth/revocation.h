// Revocations: grants that no longer count in tokens already issued. The core verifies
// registry tokens statelessly and edges verify them offline, so a change that narrows
// access (a user disabled, an access token revoked, a grant or team membership removed,
// a repository made private) would otherwise go on working until the tokens expire.
// Each change adds an entry "tokens of <who> issued at or before <second>": the core
// refuses the tokens it covers, and sends the list down every edge's channel; the edge
// refuses them too. An entry lives as long as a token issued before it can (the token
// lifetime plus leeway), and the core dates tokens issued after a revocation after it,
// so a client that asks for a new token gets one that counts.
//
//   subject     value: an account name       every grant of that account's tokens
//   via         value: an access token id    tokens issued for that personal access token
//   repository  value: "team/app", "team/*" or "*"   the grants for matching repositories
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/auth/token.h"
#include "shared/base/status.h"

namespace wharf {

struct Revocation {
  std::string kind;   // subject, via, repository
  std::string value;
  int64_t before_s = 0;  // tokens with iat <= before_s are covered
  int64_t until_s = 0;   // no token it covers is valid after this: the entry can go
};

struct RevocationList {
  uint64_t version = 0;  // grows with every change (kept across core restarts)
  std::vector<Revocation> entries;

  // True when the token no longer counts for repository ("" : for no repository in
  // particular, so only subject and via entries apply).
  bool covers(const TokenClaims& claims, const std::string& repository) const;
  // Without the entries past their until_s.
  RevocationList pruned(int64_t now_s) const;
  nlohmann::json toJson() const;  // {"version","entries":[{"kind","value","before","until"}]}
  static Result<RevocationList> fromJson(const nlohmann::json& j);
};

}  // namespace wharf
