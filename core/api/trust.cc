// The Notary v1 trust server on the core's port (core/trust), for Docker Content Trust and
// the notary CLI. The GUN is "<core host:port>/<repository>":
//
//   GET    /v2/<gun>/_trust/tuf/<role>.json            current metadata      [pull]
//   GET    /v2/<gun>/_trust/tuf/<role>.<sha256>.json   by checksum           [pull]
//   GET    /v2/<gun>/_trust/tuf/<N>.<role>.json        by version            [pull]
//   GET    /v2/<gun>/_trust/tuf/{timestamp,snapshot}.key   the server's key  [push, pull]
//   POST   /v2/<gun>/_trust/tuf/{timestamp,snapshot}.key   a new key (rotation), used
//                                                       once a root names it       [*]
//   POST   /v2/<gun>/_trust/tuf/                        the atomic update, multipart/form-data,
//                                                       one part per role (filename = role) [push, pull]
//   DELETE /v2/<gun>/_trust/tuf/                        all of the GUN's trust data [*]
//   GET    /v2/<gun>/_trust/changefeed?change_id=&records=   the GUN's changes     [pull]
//   GET    /v2/_trust/changefeed?change_id=&records=    every GUN's (administrators)
//
// Tokens are the registry's, for the GUN's name (the token service grants the
// repository's access under it). A caller without a token gets the Bearer challenge
// before anything else, so that a private repository's trust data is never told apart
// from none. Errors are Notary's: {"errors":[{"code","message","detail"}]} with
// METADATA_NOT_FOUND (404), INVALID_UPDATE and VERSION (400); the CLI prints the detail.
#include <strings.h>

#include "core/api/api.h"
#include "core/events/event_log.h"
#include "core/trust/trust_service.h"
#include "shared/oci/names.h"

namespace wharf {
namespace {

using nlohmann::json;

constexpr std::string_view kTuf = "/_trust/tuf/";
constexpr size_t kMaxUpdate = 16u << 20;

ApiReply notaryError(int status, const char* code, const std::string& message) {
  ApiReply r;
  r.status = status;
  r.body = {{"errors", json::array({{{"code", code}, {"message", message}, {"detail", message}}})}};
  return r;
}

ApiReply fromStatus(const Status& s) {
  switch (s.code()) {
    case Code::kNotFound: return notaryError(404, "METADATA_NOT_FOUND", s.message());
    case Code::kConflict: return notaryError(400, "VERSION", s.message());
    case Code::kInvalidArgument: return notaryError(400, "INVALID_UPDATE", s.message());
    case Code::kTooLarge: return notaryError(413, "MALFORMED_UPLOAD", s.message());
    default: return notaryError(500, "UNKNOWN", s.message());
  }
}

// The parts of a multipart/form-data body: filename -> bytes.
Result<std::map<std::string, std::string>> multipartFiles(const std::string& content_type, const std::string& body) {
  auto b = content_type.find("boundary=");
  if (strncasecmp(content_type.c_str(), "multipart/form-data", 19) != 0 || b == std::string::npos)
    return Status(Code::kInvalidArgument, "the update is multipart/form-data with a boundary");
  std::string boundary = content_type.substr(b + 9);
  if (auto semi = boundary.find(';'); semi != std::string::npos) boundary.resize(semi);
  if (boundary.size() >= 2 && boundary.front() == '"' && boundary.back() == '"') boundary = boundary.substr(1, boundary.size() - 2);
  if (boundary.empty() || boundary.size() > 70) return Status(Code::kInvalidArgument, "bad multipart boundary");
  std::string delim = "--" + boundary;
  std::map<std::string, std::string> out;
  size_t pos = body.find(delim);
  while (pos != std::string::npos) {
    pos += delim.size();
    if (body.compare(pos, 2, "--") == 0) return out;  // the closing delimiter
    if (body.compare(pos, 2, "\r\n") != 0) return Status(Code::kInvalidArgument, "malformed multipart body");
    pos += 2;
    size_t head_end = body.find("\r\n\r\n", pos);
    if (head_end == std::string::npos) return Status(Code::kInvalidArgument, "malformed multipart part");
    std::string head = body.substr(pos, head_end - pos);
    size_t next = body.find("\r\n" + delim, head_end + 4);
    if (next == std::string::npos) return Status(Code::kInvalidArgument, "unterminated multipart part");
    std::string filename;
    if (auto f = head.find("filename=\""); f != std::string::npos) {
      auto end = head.find('"', f + 10);
      if (end != std::string::npos) filename = head.substr(f + 10, end - f - 10);
    }
    if (filename.empty()) return Status(Code::kInvalidArgument, "a part without a filename (the role)");
    if (!out.emplace(filename, body.substr(head_end + 4, next - head_end - 4)).second)
      return Status(Code::kInvalidArgument, "the role " + filename + " twice");
    pos = body.find(delim, next + 2);
  }
  return Status(Code::kInvalidArgument, "malformed multipart body");
}

ApiReply fileReply(const Result<TufFile>& f) {
  if (!f.isOk()) return fromStatus(f.status());
  ApiReply r;
  std::string bytes = f->bytes;
  r.stream = [bytes](Loop&) { return Response::json(200, bytes); };
  return r;
}

constexpr std::string_view kChangefeed = "/_trust/changefeed";

// GET /v2/<gun>/_trust/changefeed?change_id=&records=  [pull], or /v2/_trust/changefeed
// (every GUN: administrators): {"count", "records": [{"ID","CreatedAt","GUN","Version",
// "SHA256","Category"}]}, the changes after change_id (0: from the start), oldest first.
ApiReply changefeed(ApiContext& ctx, const Request& req) {
  std::string gun;
  if (req.path != "/v2" + std::string(kChangefeed)) {
    gun = req.path.substr(4, req.path.size() - 4 - kChangefeed.size());
    if (!validateRepositoryName(repositoryOfName(gun)).isOk()) return notaryError(404, "METADATA_NOT_FOUND", "no such GUN: " + gun);
  }
  if (req.method != "GET") return notaryError(405, "UNSUPPORTED", "method not allowed");
  if (ctx.auth != nullptr) {
    const std::string* authz = req.headers.get("authorization");
    std::optional<AuthService::Bearer> bearer;
    if (authz != nullptr && authz->size() > 7 && strncasecmp(authz->c_str(), "Bearer ", 7) == 0) {
      auto b = ctx.auth->verifyBearer(authz->substr(7));
      if (b.isOk()) bearer = std::move(*b);
    }
    bool allowed = bearer && (gun.empty() ? bearer->account.admin && bearer->claims->allows("registry", "catalog", "*")
                                          : bearer->claims->allows("repository", gun, "pull"));
    if (!allowed) {
      Scope want = gun.empty() ? Scope{"registry", "catalog", {"*"}} : Scope{"repository", gun, {"pull"}};
      ApiReply r = notaryError(401, "UNAUTHORIZED", "authentication required");
      r.challenge = bearerChallenge(tokenRealm(ctx, req), ctx.auth->config().service, {want}, bearer.has_value());
      return r;
    }
  }
  auto number = [&](const char* name, int64_t fallback) -> std::optional<int64_t> {
    auto v = req.queryParam(name);
    if (!v || v->empty()) return fallback;
    if (v->size() > 18 || v->find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    return std::stoll(*v);
  };
  auto after = number("change_id", 0);
  auto records = number("records", 100);
  if (!after || !records || *records < 1 || *records > 1000)
    return notaryError(400, "INVALID_UPDATE", "change_id is a change's ID, records a count from 1 to 1000");
  auto changes = ctx.trust->store().changes(gun, uint64_t(*after), size_t(*records));
  if (!changes.isOk()) return fromStatus(changes.status());
  json out = json::array();
  for (const auto& c : *changes)
    out.push_back({{"ID", std::to_string(c.seq)},
                   {"CreatedAt", formatRfc3339(c.ts_ms)},
                   {"GUN", c.gun},
                   {"Version", c.version},
                   {"SHA256", c.sha256},
                   {"Category", c.action}});
  return ok({{"count", out.size()}, {"records", out}});
}

ApiReply trustApi(ApiContext& ctx, const ExchangePtr& ex, std::string body) {
  const Request& req = ex->request();
  size_t at = req.path.find(kTuf);
  std::string gun = req.path.substr(4, at - 4);
  std::string rest = req.path.substr(at + kTuf.size());
  std::string repo = repositoryOfName(gun);
  if (!validateRepositoryName(repo).isOk()) return notaryError(404, "METADATA_NOT_FOUND", "no such GUN: " + gun);
  const std::string& m = req.method;
  std::string action = m == "GET" && rest.size() > 4 && rest.substr(rest.size() - 4) != ".key" ? "pull"
                       : m == "DELETE" || (m == "POST" && !rest.empty())                   ? "delete"
                                                                                             : "push";
  std::shared_ptr<const TokenClaims> claims;
  if (ctx.auth != nullptr) {
    const std::string* authz = req.headers.get("authorization");
    if (authz != nullptr && authz->size() > 7 && strncasecmp(authz->c_str(), "Bearer ", 7) == 0) {
      auto bearer = ctx.auth->verifyBearer(authz->substr(7));
      if (bearer.isOk()) claims = bearer->claims;
    }
    std::vector<Scope> wanted = {Scope{"repository", gun, action == "pull" ? std::vector<std::string>{"pull"}
                                                            : action == "push" ? std::vector<std::string>{"pull", "push"}
                                                                               : std::vector<std::string>{"*"}}};
    if (!claims || !claims->allows("repository", gun, action)) {
      ApiReply r = notaryError(401, "UNAUTHORIZED", "authentication required");
      r.challenge = bearerChallenge(tokenRealm(ctx, req), ctx.auth->config().service, wanted, claims != nullptr);
      return r;
    }
  }
  TrustService& trust = *ctx.trust;
  // Changes are audited and become events (webhooks, the UI).
  Caller caller;
  caller.peer = req.peer;
  caller.claims = claims;
  caller.all_access = ctx.auth == nullptr;
  if (claims) caller.account.name = claims->subject;
  auto changed = [&](const char* action, const char* event, const Status& s, const std::string& detail) {
    audit(ctx, caller, action, gun, s.isOk() ? "success" : "failure", s.isOk() ? detail : s.message());
    if (s.isOk() && event != nullptr) emitEvent(ctx, caller, event, repo, EventTarget{}, req);
  };
  if (rest.empty()) {
    if (m == "POST") {
      const std::string* ct = req.headers.get("content-type");
      auto parts = multipartFiles(ct ? *ct : "", body);
      if (!parts.isOk()) return notaryError(400, "MALFORMED_UPLOAD", parts.status().message());
      Status s = trust.publish(gun, *parts);
      std::string roles;
      for (const auto& [role, bytes] : *parts) roles += (roles.empty() ? "" : ",") + role;
      changed("trust.publish", event_type::kTrustPublished, s, "roles=" + roles);
      if (!s.isOk()) return fromStatus(s);
      return ok(json::object());
    }
    if (m == "DELETE") {
      Status s = trust.deleteGun(gun);
      changed("trust.delete", event_type::kTrustDeleted, s, "");
      if (!s.isOk()) return fromStatus(s);
      return ok(json::object());
    }
    return notaryError(405, "UNSUPPORTED", "method not allowed");
  }
  if (rest == "timestamp.key" || rest == "snapshot.key") {
    if (m != "GET" && m != "POST") return notaryError(405, "UNSUPPORTED", "method not allowed");
    std::string role = rest.substr(0, rest.size() - 4);
    auto key = m == "POST" ? trust.rotateKey(gun, role) : trust.serverKey(gun, role);
    if (m == "POST") changed("trust.rotate_key", nullptr, key.status(), "role=" + role);
    if (!key.isOk()) return fromStatus(key.status());
    return ok(*key);
  }
  if (m != "GET" || rest.size() < 6 || rest.substr(rest.size() - 5) != ".json")
    return notaryError(404, "METADATA_NOT_FOUND", "no such metadata");
  std::string name = rest.substr(0, rest.size() - 5);
  // <N>.<role>, <role>.<sha256 hex>, or <role>.
  if (auto dot = name.find('.'); dot != std::string::npos && dot > 0 &&
                                 name.find_first_not_of("0123456789") == dot) {
    int64_t version = std::strtoll(name.substr(0, dot).c_str(), nullptr, 10);
    return fileReply(trust.store().byVersion(gun, name.substr(dot + 1), version));
  }
  if (auto dot = name.rfind('.'); dot != std::string::npos && name.size() - dot - 1 == 64)
    return fileReply(trust.store().byChecksum(gun, name.substr(0, dot), name.substr(dot + 1)));
  return fileReply(trust.current(gun, name));
}

}  // namespace

bool isTrustPath(std::string_view path) {
  if (path.rfind("/v2/", 0) != 0) return false;
  if (path.size() >= kChangefeed.size() + 3 && path.substr(path.size() - kChangefeed.size()) == kChangefeed) return true;
  return path.find(kTuf) != std::string_view::npos && path.find(kTuf) > 4;
}

void handleTrust(ApiContext& ctx, const ExchangePtr& ex) {
  if (ctx.trust == nullptr) return replyError(ex, Status(Code::kNotFound, "the trust server is off"));
  serveApi(ctx, ex, kMaxUpdate, [&ctx, ex](std::string body) {
    const Request& req = ex->request();
    if (req.path.size() >= kChangefeed.size() && req.path.substr(req.path.size() - kChangefeed.size()) == kChangefeed)
      return changefeed(ctx, req);
    return trustApi(ctx, ex, std::move(body));
  });
}

}  // namespace wharf
