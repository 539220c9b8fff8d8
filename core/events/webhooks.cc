#include "core/events/webhooks.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "shared/base/ids.h"
#include "shared/base/json_body.h"
#include "shared/base/log.h"
#include "shared/metrics/metrics.h"
#include "shared/oci/names.h"
#include "shared/tls/crypto.h"
#include "shared/tls/tls.h"

namespace wharf {
namespace {

using nlohmann::json;


const char* v4Reason(uint32_t a) {  // host byte order
  auto in = [a](uint32_t net, int bits) { return (a >> (32 - bits)) == (net >> (32 - bits)); };
  if (in(0x00000000, 8)) return "unspecified";
  if (in(0x7f000000, 8)) return "loopback";
  if (in(0x0a000000, 8) || in(0xac100000, 12) || in(0xc0a80000, 16)) return "private";
  if (in(0xa9fe0000, 16)) return "link-local";
  if (in(0x64400000, 10)) return "shared";  // carrier-grade NAT, RFC 6598
  if (a == 0xffffffff) return "broadcast";
  if (in(0xe0000000, 4)) return "multicast";
  if (in(0xf0000000, 4)) return "reserved";
  // IETF protocol assignments, documentation, benchmarking.
  if (in(0xc0000000, 24) || in(0xc0000200, 24) || in(0xc6336400, 24) || in(0xcb007100, 24) || in(0xc6120000, 15)) {
    return "reserved";
  }
  return nullptr;
}

const char* v6Reason(const unsigned char* b) {
  static const unsigned char kZero[16] = {};
  auto v4at = [b](int off) {
    return (uint32_t{b[off]} << 24) | (uint32_t{b[off + 1]} << 16) | (uint32_t{b[off + 2]} << 8) | uint32_t{b[off + 3]};
  };
  if (std::memcmp(b, kZero, 16) == 0) return "unspecified";
  if (std::memcmp(b, kZero, 15) == 0 && b[15] == 1) return "loopback";
  // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated): the IPv4 address decides.
  if (std::memcmp(b, kZero, 10) == 0 && b[10] == 0xff && b[11] == 0xff) return v4Reason(v4at(12));
  if (std::memcmp(b, kZero, 12) == 0) return v4Reason(v4at(12));
  // 64:ff9b::/96, the NAT64 well-known prefix, reaches the embedded IPv4 address.
  static const unsigned char kNat64[12] = {0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  if (std::memcmp(b, kNat64, 12) == 0) return v4Reason(v4at(12));
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return "link-local";    // fe80::/10
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return "private";       // fec0::/10, site-local
  if ((b[0] & 0xfe) == 0xfc) return "private";                       // fc00::/7, unique-local
  if (b[0] == 0xff) return "multicast";                              // ff00::/8
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) return "reserved";  // 2001:db8::/32
  if (b[0] == 0x01 && b[1] == 0x00 && std::memcmp(b + 2, kZero, 6) == 0) return "reserved";  // 100::/64 discard
  return nullptr;
}

std::string addrText(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (sa->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof buf);
  } else if (sa->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, buf, sizeof buf);
  }
  return buf;
}

struct DispatchMetrics {
  Counter& delivered;
  Counter& failed_attempts;
  Counter& gave_up;
  static DispatchMetrics& get() {
    static DispatchMetrics m{
        MetricsRegistry::global().counter("wharf_webhook_deliveries_total", "Webhook deliveries by outcome.",
                                          "outcome=\"delivered\""),
        MetricsRegistry::global().counter("wharf_webhook_deliveries_total", "Webhook deliveries by outcome.",
                                          "outcome=\"retrying\""),
        MetricsRegistry::global().counter("wharf_webhook_deliveries_total", "Webhook deliveries by outcome.",
                                          "outcome=\"failed\""),
    };
    return m;
  }
};

std::string k3(const std::string& id, uint64_t a, uint64_t b) { return id + '\0' + eventSeqKey(a) + '\0' + eventSeqKey(b); }

}  // namespace

// --- targets ------------------------------------------------------------------------

const char* refusedAddressReason(const sockaddr* sa) {
  if (sa->sa_family == AF_INET) return v4Reason(ntohl(reinterpret_cast<const sockaddr_in*>(sa)->sin_addr.s_addr));
  if (sa->sa_family == AF_INET6) return v6Reason(reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr.s6_addr);
  return "reserved";
}

const char* refusedAddressReason(const std::string& literal) {
  sockaddr_in v4{};
  sockaddr_in6 v6{};
  if (inet_pton(AF_INET, literal.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    return refusedAddressReason(reinterpret_cast<const sockaddr*>(&v4));
  }
  if (inet_pton(AF_INET6, literal.c_str(), &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    return refusedAddressReason(reinterpret_cast<const sockaddr*>(&v6));
  }
  return "invalid";
}

Result<HookUrl> parseHookUrl(const std::string& url) {
  auto bad = [&](const std::string& why) { return Status(Code::kInvalidArgument, "url: " + why); };
  if (url.size() > 2048) return bad("longer than 2048 characters");
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return bad("spaces and control characters are not allowed");
  }
  HookUrl u;
  std::string lower = url.substr(0, 8);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  size_t pos;
  if (lower.rfind("http://", 0) == 0) {
    pos = 7;
  } else if (lower.rfind("https://", 0) == 0) {
    u.tls = true;
    pos = 8;
  } else {
    return bad("only http:// and https:// URLs");
  }
  if (url.find('#') != std::string::npos) return bad("no fragment (#) allowed");
  size_t end = url.find_first_of("/?", pos);
  std::string authority = url.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
  u.target = end == std::string::npos ? "/" : url.substr(end);
  if (u.target[0] == '?') u.target = "/" + u.target;
  if (authority.find('@') != std::string::npos) return bad("no user information (user@host) allowed");
  if (authority.empty()) return bad("no host");
  u.host_header = authority;
  std::string port;
  if (authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == std::string::npos) return bad("unterminated [IPv6 address]");
    u.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return bad("bad port");
      port = authority.substr(close + 2);
    }
    in6_addr tmp;
    if (inet_pton(AF_INET6, u.host.c_str(), &tmp) != 1) return bad("bad IPv6 address");
  } else {
    size_t colon = authority.find(':');
    u.host = authority.substr(0, colon);
    if (colon != std::string::npos) port = authority.substr(colon + 1);
    if (u.host.empty()) return bad("no host");
    for (char c : u.host) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') return bad("bad host name");
    }
  }
  std::transform(u.host.begin(), u.host.end(), u.host.begin(), [](unsigned char c) { return std::tolower(c); });
  if (port.empty()) {
    u.port = u.tls ? 443 : 80;
  } else {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) return bad("bad port");
    u.port = std::stoi(port);
    if (u.port < 1 || u.port > 65535) return bad("bad port");
  }
  return u;
}

Result<std::vector<sockaddr_storage>> resolveHookTarget(const HookUrl& url, bool allow_private) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port = std::to_string(url.port);
  if (int rc = getaddrinfo(url.host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    return Status(Code::kInvalidArgument, "cannot resolve " + url.host + ": " + gai_strerror(rc));
  }
  std::vector<sockaddr_storage> out;
  Status refused;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    if (const char* why = refusedAddressReason(ai->ai_addr); why != nullptr && !allow_private && refused.isOk()) {
      refused = Status(Code::kInvalidArgument,
                       "webhook target " + url.host + " is " + addrText(ai->ai_addr) + ", a " + why +
                           " address: refused (an administrator may allow private targets with webhook_allow_private)");
    }
    sockaddr_storage ss{};
    std::memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    out.push_back(ss);
  }
  freeaddrinfo(res);
  if (!refused.isOk()) return refused;
  if (out.empty()) return Status(Code::kInvalidArgument, "cannot resolve " + url.host + ": no address");
  return out;
}

// --- hooks --------------------------------------------------------------------------

bool Webhook::covers(const Event& e) const {
  bool in_scope = scope == "*" ||
                  (scope.size() > 2 && scope.compare(scope.size() - 2, 2, "/*") == 0
                       ? e.repository.compare(0, scope.size() - 1, scope, 0, scope.size() - 1) == 0
                       : e.repository == scope);
  if (!in_scope) return false;
  for (const auto& p : events) {
    if (eventTypeMatches(p, e.type)) return true;
  }
  return false;
}

json Webhook::toJson() const {
  return {{"id", id},       {"scope", scope},           {"url", url},
          {"events", events}, {"has_secret", !secret.empty()}, {"enabled", enabled},
          {"created_by", created_by}, {"created_at", formatRfc3339(created_ms)}};
}

json Webhook::toStored() const {
  return {{"id", id},         {"scope", scope},     {"url", url},          {"events", events},
          {"secret", secret}, {"enabled", enabled}, {"created_by", created_by}, {"created", created_ms}};
}

Webhook Webhook::fromStored(const json& j) {
  Webhook h;
  h.id = jsonStringOr(j, "id");
  h.scope = jsonStringOr(j, "scope");
  h.url = jsonStringOr(j, "url");
  if (auto e = j.find("events"); e != j.end() && e->is_array()) {
    for (const auto& t : *e) {
      if (t.is_string()) h.events.push_back(t.get<std::string>());
    }
  }
  h.secret = jsonStringOr(j, "secret");
  h.enabled = j.value("enabled", true);
  h.created_by = jsonStringOr(j, "created_by");
  h.created_ms = j.value("created", int64_t{0});
  return h;
}

Status validateHookScope(const std::string& scope) {
  if (scope == "*") return Status::ok();
  std::string name = scope;
  if (scope.size() > 2 && scope.compare(scope.size() - 2, 2, "/*") == 0) name = scope.substr(0, scope.size() - 2);
  Status st = validateRepositoryName(name);
  if (!st.isOk()) {
    return Status(Code::kInvalidArgument, "scope is a repository (team/app), a namespace (team/*) or *: " + st.message());
  }
  return Status::ok();
}

json DeliveryRecord::toJson() const {
  json j = {{"delivery", delivery}, {"hook", hook},         {"first_seq", first_seq}, {"last_seq", last_seq},
            {"events", events},     {"attempt", attempt},   {"status", status},       {"outcome", outcome},
            {"duration_ms", duration_ms}, {"ts_ms", ts_ms}, {"time", formatRfc3339(ts_ms)}};
  if (!error.empty()) j["error"] = error;
  return j;
}

DeliveryRecord DeliveryRecord::fromJson(const json& j) {
  DeliveryRecord r;
  r.delivery = jsonStringOr(j, "delivery");
  r.hook = jsonStringOr(j, "hook");
  r.first_seq = j.value("first_seq", uint64_t{0});
  r.last_seq = j.value("last_seq", uint64_t{0});
  r.events = j.value("events", size_t{0});
  r.attempt = j.value("attempt", 1);
  r.status = j.value("status", 0);
  r.error = jsonStringOr(j, "error");
  r.outcome = jsonStringOr(j, "outcome");
  r.duration_ms = j.value("duration_ms", int64_t{0});
  r.ts_ms = j.value("ts_ms", int64_t{0});
  return r;
}

// --- store (LMDB; PostgreSQL in pg_webhook_store.cc) ---------------------------------

namespace {

class LmdbWebhookStore final : public WebhookStore {
 public:
  LmdbWebhookStore(std::shared_ptr<LmdbEnv> env, Dbi hooks, Dbi cursors, Dbi deliveries, size_t cap)
      : env_(std::move(env)), hooks_(hooks), cursors_(cursors), deliveries_(deliveries), cap_(cap) {}
  Status put(const Webhook& hook) override;
  Result<Webhook> get(const std::string& id) const override;
  std::vector<Webhook> list() const override;
  Status remove(const std::string& id) override;
  uint64_t cursor(const std::string& id) const override;
  Status setCursor(const std::string& id, uint64_t seq) override;
  Status addDelivery(const DeliveryRecord& record) override;
  std::vector<DeliveryRecord> deliveries(const std::string& id, size_t limit) const override;
  // One core delivers every hook.
  std::vector<std::string> claim(const std::string&, int64_t) override {
    std::vector<std::string> ids;
    for (const auto& h : list()) ids.push_back(h.id);
    return ids;
  }

 private:
  std::shared_ptr<LmdbEnv> env_;
  Dbi hooks_, cursors_, deliveries_;
  size_t cap_;
  std::atomic<uint64_t> counter_{0};
};

}  // namespace

Result<std::unique_ptr<WebhookStore>> openLmdbWebhookStore(std::shared_ptr<LmdbEnv> env, size_t cap) {
  auto hooks = env->openDb("webhooks");
  if (!hooks.isOk()) return hooks.status();
  auto cursors = env->openDb("webhook_cursors");
  if (!cursors.isOk()) return cursors.status();
  auto deliveries = env->openDb("webhook_deliveries");
  if (!deliveries.isOk()) return deliveries.status();
  return std::unique_ptr<WebhookStore>(new LmdbWebhookStore(std::move(env), *hooks, *cursors, *deliveries, cap));
}

Status LmdbWebhookStore::put(const Webhook& hook) {
  auto txn = env_->write();
  if (!txn.isOk()) return txn.status();
  WHARF_RETURN_IF_ERROR(txn->put(hooks_, hook.id, hook.toStored().dump()));
  return txn->commit();
}

Result<Webhook> LmdbWebhookStore::get(const std::string& id) const {
  auto txn = env_->read();
  if (!txn.isOk()) return txn.status();
  std::string_view v;
  if (!txn->get(hooks_, id, &v).isOk()) return Status(Code::kNotFound, "no webhook " + id);
  json j = json::parse(v, nullptr, false);
  if (!j.is_object()) return Status(Code::kCorruption, "webhook " + id + " is unreadable");
  return Webhook::fromStored(j);
}

std::vector<Webhook> LmdbWebhookStore::list() const {
  std::vector<Webhook> out;
  auto txn = env_->read();
  if (!txn.isOk()) return out;
  auto c = txn->cursor(hooks_);
  for (bool ok = c.first(); ok; ok = c.next()) {
    json j = json::parse(c.value(), nullptr, false);
    if (j.is_object()) out.push_back(Webhook::fromStored(j));
  }
  return out;
}

Status LmdbWebhookStore::remove(const std::string& id) {
  auto txn = env_->write();
  if (!txn.isOk()) return txn.status();
  WHARF_RETURN_IF_ERROR(txn->del(hooks_, id));
  (void)txn->del(cursors_, id);
  std::vector<std::string> keys;
  std::string prefix = id + '\0';
  {
    auto c = txn->cursor(deliveries_);
    for (bool ok = c.seek(prefix); ok && c.key().substr(0, prefix.size()) == prefix; ok = c.next()) {
      keys.emplace_back(c.key());
    }
  }
  for (const auto& k : keys) (void)txn->del(deliveries_, k);
  return txn->commit();
}

uint64_t LmdbWebhookStore::cursor(const std::string& id) const {
  auto txn = env_->read();
  if (!txn.isOk()) return 0;
  std::string_view v;
  if (!txn->get(cursors_, id, &v).isOk()) return 0;
  return std::strtoull(std::string(v).c_str(), nullptr, 10);
}

Status LmdbWebhookStore::setCursor(const std::string& id, uint64_t seq) {
  auto txn = env_->write();
  if (!txn.isOk()) return txn.status();
  std::string_view v;
  if (txn->get(cursors_, id, &v).isOk() && std::strtoull(std::string(v).c_str(), nullptr, 10) >= seq) {
    return Status::ok();
  }
  WHARF_RETURN_IF_ERROR(txn->put(cursors_, id, std::to_string(seq)));
  return txn->commit();
}

Status LmdbWebhookStore::addDelivery(const DeliveryRecord& r) {
  auto txn = env_->write();
  if (!txn.isOk()) return txn.status();
  WHARF_RETURN_IF_ERROR(txn->put(deliveries_, k3(r.hook, static_cast<uint64_t>(r.ts_ms), ++counter_), r.toJson().dump()));
  std::vector<std::string> keys;
  std::string prefix = r.hook + '\0';
  {
    auto c = txn->cursor(deliveries_);
    for (bool ok = c.seek(prefix); ok && c.key().substr(0, prefix.size()) == prefix; ok = c.next()) {
      keys.emplace_back(c.key());
    }
  }
  for (size_t i = 0; i + cap_ < keys.size(); ++i) (void)txn->del(deliveries_, keys[i]);
  return txn->commit();
}

std::vector<DeliveryRecord> LmdbWebhookStore::deliveries(const std::string& id, size_t limit) const {
  std::vector<DeliveryRecord> out;
  auto txn = env_->read();
  if (!txn.isOk()) return out;
  std::string prefix = id + '\0';
  auto c = txn->cursor(deliveries_);
  for (bool ok = c.seek(prefix); ok && c.key().substr(0, prefix.size()) == prefix; ok = c.next()) {
    json j = json::parse(c.value(), nullptr, false);
    if (j.is_object()) out.push_back(DeliveryRecord::fromJson(j));
  }
  std::reverse(out.begin(), out.end());
  if (out.size() > limit) out.resize(limit);
  return out;
}

// --- envelope -----------------------------------------------------------------------

json webhookEnvelope(const std::vector<Event>& events, const EnvelopeSource& source) {
  json list = json::array();
  for (const auto& e : events) {
    std::string action = e.type.substr(e.type.find('.') == std::string::npos ? 0 : e.type.find('.') + 1);
    if (e.type == event_type::kTagMove) action = "push";
    json target = {{"mediaType", e.target.media_type},
                   {"digest", e.target.digest},
                   {"size", e.target.size},
                   {"length", e.target.size},
                   {"repository", e.repository}};
    if (!e.target.tag.empty()) target["tag"] = e.target.tag;
    if (!source.public_url.empty() && !e.target.digest.empty()) {
      bool blob = e.type.rfind("blob.", 0) == 0;
      target["url"] = source.public_url + "/v2/" + e.repository + (blob ? "/blobs/" : "/manifests/") + e.target.digest;
    }
    json wharf = {{"seq", e.seq}, {"type", e.type}, {"count", e.count}};
    if (!e.target.previous_digest.empty()) wharf["previousDigest"] = e.target.previous_digest;
    list.push_back({{"id", source.instance_id + "-" + std::to_string(e.seq)},
                    {"timestamp", formatRfc3339(e.ts_ms)},
                    {"action", action},
                    {"target", target},
                    {"request", {{"addr", e.addr}, {"method", e.method}}},
                    {"actor", {{"name", e.actor}}},
                    {"source", {{"addr", source.addr}, {"instanceID", source.instance_id}}},
                    {"wharf", wharf}});
  }
  return {{"events", list}};
}

int64_t backoffDelayMs(int attempt, int64_t base_ms, int64_t cap_ms) {
  if (attempt < 1) attempt = 1;
  int64_t d = base_ms;
  for (int i = 1; i < attempt && d < cap_ms; ++i) d *= 2;
  return std::min(d, cap_ms);
}

// --- sending ------------------------------------------------------------------------

DeliveryResult httpPostHook(const std::string& url, const std::string& body,
                            const std::vector<std::pair<std::string, std::string>>& headers, bool allow_private,
                            int timeout_ms) {
  int64_t start = monotonicMillis();
  DeliveryResult result;
  auto fail = [&](std::string error) {
    result.error = std::move(error);
    result.duration_ms = monotonicMillis() - start;
    return result;
  };
  auto parsed = parseHookUrl(url);
  if (!parsed.isOk()) return fail(parsed.status().message());
  // Checked again at every delivery: what the name resolves to may have changed.
  auto addrs = resolveHookTarget(*parsed, allow_private);
  if (!addrs.isOk()) return fail(addrs.status().message());
  int fd = -1;
  std::string connect_error = "no address";
  for (const auto& ss : *addrs) {
    fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) continue;
    socklen_t len = ss.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&ss), len);
    int err = rc == 0 ? 0 : errno;
    if (err == EINPROGRESS) {
      pollfd pfd{fd, POLLOUT, 0};
      int pr = ::poll(&pfd, 1, timeout_ms);
      if (pr <= 0) {
        err = ETIMEDOUT;
      } else {
        socklen_t el = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
      }
    }
    if (err == 0) break;
    connect_error = "connect " + addrText(reinterpret_cast<const sockaddr*>(&ss)) + ": " + std::strerror(err);
    ::close(fd);
    fd = -1;
  }
  if (fd < 0) return fail(connect_error);
  // Blocking from here on, with the timeout on every read and write.
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  std::unique_ptr<TlsClient> tls;
  if (parsed->tls) {
    auto c = TlsClient::connect(fd, parsed->host, "", false);
    if (!c.isOk()) {
      ::close(fd);
      return fail("TLS: " + c.status().message());
    }
    tls = std::move(c).value();
  }
  std::string req = "POST " + parsed->target + " HTTP/1.1\r\nHost: " + parsed->host_header +
                    "\r\nUser-Agent: wharf-webhooks/1\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\nConnection: close\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  req += "\r\n";
  req += body;
  auto sendAll = [&](const std::string& data) -> Status {
    if (tls) return tls->write(data.data(), data.size());
    size_t off = 0;
    while (off < data.size()) {
      ssize_t w = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        return Status(Code::kUnavailable, errno == EAGAIN ? "timed out sending" : std::string("send: ") + std::strerror(errno));
      }
      off += static_cast<size_t>(w);
    }
    return Status::ok();
  };
  if (Status st = sendAll(req); !st.isOk()) {
    tls.reset();
    ::close(fd);
    return fail(st.message());
  }
  // The status line is all we need; read up to the end of the headers.
  std::string in;
  char buf[4096];
  while (in.find("\r\n\r\n") == std::string::npos && in.size() < 16384) {
    ssize_t r;
    if (tls) {
      auto got = tls->read(buf, sizeof buf);
      r = got.isOk() ? static_cast<ssize_t>(*got) : -1;
    } else {
      r = ::recv(fd, buf, sizeof buf, 0);
      if (r < 0 && errno == EINTR) continue;
    }
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      tls.reset();
      ::close(fd);
      return fail("timed out waiting for a response");
    }
    if (r <= 0) break;
    in.append(buf, static_cast<size_t>(r));
  }
  tls.reset();
  ::close(fd);
  int status = 0;
  if (in.rfind("HTTP/1.", 0) == 0 && in.size() >= 12) {
    std::string code = in.substr(9, 3);
    if (code.find_first_not_of("0123456789") == std::string::npos) status = std::stoi(code);
  }
  if (status == 0) return fail("no HTTP response");
  result.status = status;
  if (!result.ok()) result.error = "HTTP " + std::to_string(status);
  result.duration_ms = monotonicMillis() - start;
  return result;
}

// --- dispatcher ---------------------------------------------------------------------

WebhookDispatcher::WebhookDispatcher(WebhookStore& store, EventLog& events, Clock& clock, DispatcherOptions options,
                                     WebhookSender sender, EnvelopeSource source)
    : store_(store), events_(events), clock_(clock), options_(options), sender_(std::move(sender)),
      source_(std::move(source)), owner_(newUuid()) {
  if (options_.threads > 0) pool_ = std::make_unique<WorkQueue>(options_.threads);
}

WebhookDispatcher::~WebhookDispatcher() { stop(); }

void WebhookDispatcher::start() {
  thread_ = std::thread([this] { run(); });
}

void WebhookDispatcher::stop() {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (pool_) pool_->shutdown();
}

void WebhookDispatcher::kick() {
  {
    std::lock_guard lock(mu_);
    kicked_ = true;
  }
  cv_.notify_all();
}

std::vector<std::pair<std::string, std::string>> WebhookDispatcher::headersFor(const Webhook& hook,
                                                                               const std::string& delivery,
                                                                               const std::string& body) {
  std::vector<std::pair<std::string, std::string>> h = {{"Content-Type", kEnvelopeMediaType},
                                                         {"X-Wharf-Delivery", delivery},
                                                         {"X-Wharf-Hook", hook.id}};
  if (!hook.secret.empty()) h.push_back({"X-Wharf-Signature", "sha256=" + hmacSha256Hex(hook.secret, body)});
  return h;
}

std::optional<int64_t> WebhookDispatcher::retryDueMs(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = states_.find(id);
  if (it == states_.end() || it->second.batch.empty() || it->second.attempt == 0) return std::nullopt;
  return it->second.next_due_ms;
}

void WebhookDispatcher::step() {
  std::vector<Webhook> hooks = store_.list();
  // The hooks this replica delivers (all of them on one core; on a shared store those
  // whose lease it holds or takes, renewed at every step).
  std::vector<std::string> claimed = store_.claim(owner_, options_.lease_ms);
  std::set<std::string> mine(claimed.begin(), claimed.end());
  uint64_t last = events_.lastSeq();
  std::vector<Webhook> candidates;
  {
    std::lock_guard lock(mu_);
    // Forget hooks that were removed (a delivery in flight finds its state gone), and
    // those another replica delivers now.
    for (auto it = states_.begin(); it != states_.end();) {
      bool present = std::any_of(hooks.begin(), hooks.end(), [&](const Webhook& h) { return h.id == it->first; });
      bool keep = present && (mine.count(it->first) > 0 || it->second.in_flight);
      it = keep ? std::next(it) : states_.erase(it);
    }
    int64_t now = clock_.nowMillis();
    for (const auto& h : hooks) {
      if (!h.enabled || mine.count(h.id) == 0) continue;
      HookState& st = states_[h.id];
      if (st.in_flight || (!st.batch.empty() && st.next_due_ms > now)) continue;
      candidates.push_back(h);
    }
  }
  for (const auto& h : candidates) {
    bool has_batch;
    {
      std::lock_guard lock(mu_);
      has_batch = !states_[h.id].batch.empty();
    }
    if (!has_batch) {
      uint64_t cursor = store_.cursor(h.id);
      if (cursor >= last) continue;
      EventFilter f;
      f.types = h.events;
      if (h.scope != "*") {
        if (h.scope.size() > 2 && h.scope.compare(h.scope.size() - 2, 2, "/*") == 0) {
          f.ns = h.scope.substr(0, h.scope.size() - 2);
        } else {
          f.repository = h.scope;
        }
      }
      auto page = events_.query(f, cursor, options_.batch_max);
      if (!page.isOk()) continue;
      if (page->events.empty()) {
        // Nothing for this hook up to here: move its cursor on.
        if (page->scanned_to > cursor) (void)store_.setCursor(h.id, page->scanned_to);
        if (page->next) kick();
        continue;
      }
      std::lock_guard lock(mu_);
      HookState& st = states_[h.id];
      st.batch = std::move(page->events);
      st.through_seq = page->scanned_to;
      st.delivery = newUuid();
      st.attempt = 0;
    }
    {
      std::lock_guard lock(mu_);
      states_[h.id].in_flight = true;
    }
    if (pool_) {
      pool_->submit([this, h] { deliver(h); });
    } else {
      deliver(h);
    }
  }
}

void WebhookDispatcher::deliver(const Webhook& hook) {
  std::vector<Event> batch;
  std::string delivery;
  uint64_t through;
  int attempt;
  {
    std::lock_guard lock(mu_);
    auto it = states_.find(hook.id);
    if (it == states_.end()) return;
    batch = it->second.batch;
    delivery = it->second.delivery;
    through = it->second.through_seq;
    attempt = it->second.attempt + 1;
  }
  std::string body = webhookEnvelope(batch, source_).dump(-1, ' ', false, json::error_handler_t::replace);
  DeliveryResult res = sender_(hook.url, body, headersFor(hook, delivery, body));
  DeliveryRecord rec;
  rec.delivery = delivery;
  rec.hook = hook.id;
  rec.first_seq = batch.front().seq;
  rec.last_seq = batch.back().seq;
  rec.events = batch.size();
  rec.attempt = attempt;
  rec.status = res.status;
  rec.error = res.error;
  rec.duration_ms = res.duration_ms;
  rec.ts_ms = clock_.nowMillis();
  bool done = res.ok() || attempt >= options_.max_attempts;
  rec.outcome = res.ok() ? "delivered" : done ? "failed" : "retrying";
  // A hook removed while this was in flight leaves no cursor or log behind.
  bool exists = store_.get(hook.id).isOk();
  if (done && exists) (void)store_.setCursor(hook.id, through);
  if (Status st = exists ? store_.addDelivery(rec) : Status::ok(); !st.isOk()) {
    logWarn("webhook delivery log write failed", {{"hook", hook.id}, {"error", st.message()}});
  }
  auto& m = DispatchMetrics::get();
  if (res.ok()) {
    m.delivered.inc();
  } else {
    (done ? m.gave_up : m.failed_attempts).inc();
    // The URL is not logged: its query may carry a token of the receiver.
    logWarn(done ? "webhook delivery failed; giving up on this batch" : "webhook delivery failed; will retry",
            {{"hook", hook.id}, {"delivery", delivery}, {"attempt", attempt}, {"status", res.status},
             {"error", res.error}});
  }
  {
    std::lock_guard lock(mu_);
    auto it = states_.find(hook.id);
    if (it != states_.end()) {
      HookState& st = it->second;
      st.in_flight = false;
      if (done) {
        st = HookState{};
      } else {
        st.attempt = attempt;
        st.next_due_ms = rec.ts_ms + backoffDelayMs(attempt, options_.backoff_base_ms, options_.backoff_cap_ms);
      }
    }
    kicked_ = true;
  }
  cv_.notify_all();
}

DeliveryRecord WebhookDispatcher::sendTest(const Webhook& hook, const std::string& actor) {
  Event e;
  e.type = "webhook.test";
  e.ts_ms = clock_.nowMillis();
  e.actor = actor;
  if (hook.scope != "*" && (hook.scope.size() < 2 || hook.scope.compare(hook.scope.size() - 2, 2, "/*") != 0)) {
    e.repository = hook.scope;
  }
  std::string delivery = newUuid();
  std::string body = webhookEnvelope({e}, source_).dump();
  // The stored URL with the stored secret: a test never goes anywhere else.
  DeliveryResult res = sender_(hook.url, body, headersFor(hook, delivery, body));
  DeliveryRecord rec;
  rec.delivery = delivery;
  rec.hook = hook.id;
  rec.attempt = 1;
  rec.status = res.status;
  rec.error = res.error;
  rec.duration_ms = res.duration_ms;
  rec.ts_ms = clock_.nowMillis();
  rec.outcome = res.ok() ? "delivered" : "failed";
  rec.events = 1;
  (void)store_.addDelivery(rec);
  return rec;
}

void WebhookDispatcher::run() {
  for (;;) {
    step();
    std::unique_lock lock(mu_);
    int64_t wait = options_.idle_poll_ms;
    int64_t now = clock_.nowMillis();
    for (const auto& [id, st] : states_) {
      if (!st.in_flight && !st.batch.empty()) wait = std::min(wait, std::max<int64_t>(0, st.next_due_ms - now));
    }
    cv_.wait_for(lock, std::chrono::milliseconds(wait), [this] { return kicked_ || stop_; });
    kicked_ = false;
    if (stop_) return;
  }
}

}  // namespace wharf
