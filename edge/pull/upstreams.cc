#include "edge/pull/upstreams.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "shared/base/clock.h"
#include "shared/base/fs.h"
#include "shared/base/json_body.h"
#include "shared/base/log.h"
#include "shared/http/blocking_client.h"
#include "shared/http/url.h"
#include "shared/oci/names.h"
#include "shared/tls/crypto.h"

namespace wharf {
namespace {

// A challenge's parameter: realm="...", service="..."
std::string challengeField(const std::string& challenge, const std::string& name) {
  auto p = challenge.find(name + "=\"");
  if (p == std::string::npos) return "";
  p += name.size() + 2;
  auto end = challenge.find('"', p);
  return end == std::string::npos ? "" : challenge.substr(p, end - p);
}

std::string percentEncode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::unique_ptr<BlockingClient> clientFor(const BaseUrl& url, const ClientOptions& tls) {
  auto c = std::make_unique<BlockingClient>(url.host, url.port, static_cast<int>(tls.io_timeout_ms));
  if (url.tls) c->useTls(tls.ca_file, tls.insecure);
  return c;
}

}  // namespace

Status RegistryAuth::learnChallenge() {
  auto client = clientFor(url_, tls_);
  auto r = client->request("GET", "/v2/");
  if (!r.isOk()) return Status(Code::kUnavailable, base_url_ + ": " + r.status().message());
  std::string challenge = r->header("www-authenticate");
  std::lock_guard lock(mu_);
  known_ = true;
  if (r->status == 200) {
    scheme_ = "";
  } else if (r->status == 401 && strncasecmp(challenge.c_str(), "basic", 5) == 0) {
    scheme_ = "basic";
  } else if (r->status == 401 && strncasecmp(challenge.c_str(), "bearer", 6) == 0) {
    scheme_ = "bearer";
    realm_ = challengeField(challenge, "realm");
    service_ = challengeField(challenge, "service");
  } else {
    known_ = false;
    return Status(Code::kUnavailable, base_url_ + "/v2/ answered " + std::to_string(r->status));
  }
  return Status::ok();
}

std::optional<std::string> RegistryAuth::cached(const std::string& repo) {
  std::lock_guard lock(mu_);
  if (!known_) return std::nullopt;
  if (scheme_.empty()) return std::string();
  if (scheme_ == "basic") return basicAuthorization(username_, password_);
  auto it = tokens_.find(repo);
  if (it == tokens_.end() || it->second.expires_ms <= RealClock::instance().nowMillis()) return std::nullopt;
  return it->second.header;
}

void RegistryAuth::invalidate(const std::string& repo) {
  std::lock_guard lock(mu_);
  tokens_.erase(repo);
  known_ = false;  // the scheme may have changed too
}

Result<std::string> RegistryAuth::fetch(const std::string& repo) {
  if (auto c = cached(repo)) return *c;
  bool known;
  {
    std::lock_guard lock(mu_);
    known = known_;
  }
  if (!known) {
    WHARF_RETURN_IF_ERROR(learnChallenge());
    if (auto c = cached(repo)) return *c;
  }
  std::string realm, service;
  {
    std::lock_guard lock(mu_);
    realm = realm_;
    service = service_;
  }
  // realm is an absolute URL: scheme://host[:port]/path
  auto scheme_end = realm.find("://");
  auto path_start = scheme_end == std::string::npos ? std::string::npos : realm.find('/', scheme_end + 3);
  auto base = parseBaseUrl(path_start == std::string::npos ? realm : realm.substr(0, path_start));
  if (!base.isOk()) return Status(Code::kUnavailable, base_url_ + " names a bad token realm: " + realm);
  std::string target = path_start == std::string::npos ? "/" : realm.substr(path_start);
  target += (target.find('?') == std::string::npos ? "?" : "&");
  target += "service=" + percentEncode(service) + "&scope=" + percentEncode("repository:" + repo + ":pull");
  HeaderList headers;
  if (!username_.empty()) headers.emplace_back("Authorization", basicAuthorization(username_, password_));
  auto r = clientFor(*base, tls_)->request("GET", target, headers);
  if (!r.isOk()) return Status(Code::kUnavailable, "token realm " + realm + ": " + r.status().message());
  if (r->status != 200) {
    return Status(Code::kUnavailable, "token realm " + realm + " answered " + std::to_string(r->status) +
                                          (r->status == 401 ? " (check the credentials for " + base_url_ + ")" : ""));
  }
  // A registry's answer is a peer's input: read with types and limits, never trusted.
  auto j = JsonBody::parse(r->body);
  std::string token;
  int64_t ttl_s = 60;
  if (j.isOk()) {
    token = j->string("token", {.max = 16384}).value_or("");
    if (token.empty()) token = j->string("access_token", {.max = 16384}).value_or("");
    ttl_s = j->integer("expires_in", {.min = 0, .max = 366 * 86400}).value_or(60);
  }
  if (!j.isOk() || !j->status().isOk() || token.empty()) {
    return Status(Code::kUnavailable, "token realm " + realm + " returned no token" +
                                          (j.isOk() ? (j->status().isOk() ? "" : ": " + j->status().message())
                                                    : ": " + j.status().message()));
  }
  std::string header = "Bearer " + token;
  std::lock_guard lock(mu_);
  // Renewed a little before it expires, so a fetch never starts with a dying token.
  tokens_[repo] = Token{header, RealClock::instance().nowMillis() + std::max<int64_t>(ttl_s - 15, 5) * 1000};
  return header;
}

Result<std::vector<UpstreamSpec>> UpstreamSet::parseSpecs(const std::string& json) {
  std::vector<UpstreamSpec> out;
  if (json.empty()) return out;
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (!j.is_array()) return Status(Code::kInvalidArgument, "upstreams must be a JSON array of objects");
  for (const auto& e : j) {
    if (!e.is_object()) return Status(Code::kInvalidArgument, "upstreams: each entry must be an object");
    UpstreamSpec s;
    for (auto it = e.begin(); it != e.end(); ++it) {
      const std::string& k = it.key();
      if (k == "insecure") {
        if (!it->is_boolean()) return Status(Code::kInvalidArgument, "upstreams: \"insecure\" must be true or false");
        s.insecure = it->get<bool>();
        continue;
      }
      if (!it->is_string()) return Status(Code::kInvalidArgument, "upstreams: \"" + k + "\" must be a string");
      std::string v = it->get<std::string>();
      if (k == "prefix") s.prefix = v;
      else if (k == "url") s.url = v;
      else if (k == "username") s.username = v;
      else if (k == "password_file") {
        Status st = readFile(v, &s.password);
        if (!st.isOk()) return Status(Code::kInvalidArgument, "upstreams: password_file " + v + ": " + st.message());
        while (!s.password.empty() && (s.password.back() == '\n' || s.password.back() == '\r')) s.password.pop_back();
      } else if (k == "ca_file") s.ca_file = v;
      else return Status(Code::kInvalidArgument, "upstreams: unknown key \"" + k + "\"");
    }
    // A prefix is one or more whole path components ending in '/'.
    if (s.prefix.empty() || s.prefix.back() != '/' ||
        !validateRepositoryName(s.prefix.substr(0, s.prefix.size() - 1)).isOk()) {
      return Status(Code::kInvalidArgument, "upstreams: prefix \"" + s.prefix +
                                                "\" must be a namespace ending in '/' (like \"hub/\")");
    }
    if (s.url.empty()) return Status(Code::kInvalidArgument, "upstreams: the entry for " + s.prefix + " has no url");
    for (const auto& o : out) {
      if (o.prefix == s.prefix) return Status(Code::kInvalidArgument, "upstreams: prefix " + s.prefix + " is mapped twice");
    }
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::unique_ptr<UpstreamSet>> UpstreamSet::create(const UpstreamSpec& core, const std::vector<UpstreamSpec>& others) {
  auto set = std::unique_ptr<UpstreamSet>(new UpstreamSet());
  std::vector<const UpstreamSpec*> specs{&core};
  for (const auto& o : others) specs.push_back(&o);
  // Longest prefix first, so "hub/library/" wins over "hub/".
  std::stable_sort(specs.begin() + 1, specs.end(),
                   [](const UpstreamSpec* a, const UpstreamSpec* b) { return a->prefix.size() > b->prefix.size(); });
  for (const UpstreamSpec* s : specs) {
    std::string url = s->url;
    while (!url.empty() && url.back() == '/') url.pop_back();
    auto address = Upstream::resolve(url);
    if (!address.isOk()) return Status(Code::kInvalidArgument, "upstream " + url + ": " + address.status().message());
    auto t = std::make_unique<UpstreamTarget>();
    t->prefix = s->prefix;
    t->base_url = url;
    t->address = *address;
    t->options.ca_file = s->ca_file;
    t->options.insecure = s->insecure;
    t->is_core = s == &core;
    t->index = set->targets_.size();
    if (!t->is_core) t->auth = std::make_unique<RegistryAuth>(url, address->url, s->username, s->password, t->options);
    set->targets_.push_back(std::move(t));
  }
  return set;
}

const UpstreamTarget& UpstreamSet::route(const std::string& repo, std::string* upstream_repo) const {
  for (size_t i = 1; i < targets_.size(); ++i) {
    const auto& t = *targets_[i];
    if (repo.size() > t.prefix.size() && repo.compare(0, t.prefix.size(), t.prefix) == 0) {
      *upstream_repo = repo.substr(t.prefix.size());
      return t;
    }
  }
  *upstream_repo = repo;
  return *targets_.front();
}

}  // namespace wharf
