// wharfctl's event log (a page, or the live feed) and webhooks.
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "core/cli/cli.h"
#include "shared/base/fs.h"
#include "shared/http/client.h"
#include "shared/http/url.h"
#include "shared/tls/crypto.h"
#include "shared/tls/tls.h"

namespace wharf::cli {

// Help for events and each webhook subcommand ("" is the webhook overview).
const char* const kEventsHelp = R"(Usage: wharfctl events [--repo R] [--namespace N] [--type T[,T...]] [--actor A]
                      [--since SEQ] [--from TIME] [--to TIME] [--limit N] [-f | --follow] [--json]

Lists the events of the repositories you may pull, oldest first, one line each: SEQ,
TIME, TYPE, ACTOR, REPOSITORY, TARGET (tag and digest) and, for pulls folded into one
event, xCOUNT. --type takes types (blob.push, manifest.push, tag.push, tag.move,
manifest.pull, manifest.delete, tag.delete, blob.delete, repository.delete, policy.set,
policy.remove) or patterns
(manifest.*). --since SEQ shows the events after that sequence number; TIME is RFC 3339
(2026-01-02T03:04:05Z) or epoch milliseconds. When there are more, the last line says
which --since shows the next page.

With -f, follows the live feed instead (from --since, else from now), printing a line
per event as it happens until interrupted; a dropped connection resumes where it left
off, so nothing is missed or printed twice. With --json, one JSON object per line.
)";

const std::map<std::string, std::string> kWebhookHelp = {
    {"", R"(Usage: wharfctl webhook COMMAND ...

  add --scope S --url U --events T[,T...] [--secret-file F] [--disable]
                       deliver the events of S (team/app, team/* or *) to U
  ls                   the hooks you manage
  show ID              one hook
  set ID [--url U] [--events T,...] [--secret-file F] [--enable | --disable]
  rm ID                remove a hook (and its delivery log)
  deliveries ID [--limit N]   its delivery log, newest first
  test ID              send one test event now and show the outcome

Administrators manage every hook; namespace owners those of their namespace; repository
administrators those of their repositories. wharfctl webhook COMMAND --help shows one.
)"},
    {"add", R"(Usage: wharfctl webhook add --scope S --url U --events T[,T...] [--secret-file F] [--disable]

Creates a hook that POSTs the events of S -- a repository (team/app), a namespace
(team/*) or, for administrators, everything (*) -- of the given types (or patterns such
as manifest.*) to U, as distribution notification envelopes. With --secret-file, the
file's content (without its trailing newline; - reads standard input) signs each
delivery: X-Wharf-Signature: sha256=<hex HMAC-SHA256(secret, body)>. The secret is never
shown again. U must resolve to public addresses unless the core allows private targets
(webhook_allow_private). Prints the hook.
)"},
    {"ls", R"(Usage: wharfctl webhook ls [--json]

Lists the hooks you manage: id, scope, URL, event types, enabled, signed.
)"},
    {"show", R"(Usage: wharfctl webhook show ID [--json]

Shows the hook ID.
)"},
    {"set", R"(Usage: wharfctl webhook set ID [--url U] [--events T,...] [--secret-file F] [--enable | --disable]

Changes the hook ID. A new --url of a signed hook needs a --secret-file too (an empty
file, such as /dev/null, delivers unsigned): a stored secret never goes to another URL.
)"},
    {"rm", R"(Usage: wharfctl webhook rm ID

Removes the hook ID, its cursor and its delivery log.
)"},
    {"deliveries", R"(Usage: wharfctl webhook deliveries ID [--limit N] [--json]

The delivery log of hook ID, newest first (50 unless --limit): time, delivery id,
attempt, HTTP status, outcome (delivered, retrying, failed), the sequence numbers it
carried, duration and error.
)"},
    {"test", R"(Usage: wharfctl webhook test ID [--json]

Sends one "webhook.test" event to the hook's URL now (signed with its secret), once, and
prints the outcome; exits 1 if it was not delivered.
)"},
};

namespace {

// One event as a line: SEQ, TIME (local), TYPE, ACTOR, REPOSITORY, TARGET (tag@digest), xCOUNT.
std::string eventLine(const json& e) {
  const json& t = e.value("target", json::object());
  std::string target = t.value("tag", "");
  std::string digest = t.value("digest", "");
  if (!digest.empty()) target += (target.empty() ? "" : "@") + digest;
  char buf[1024];
  std::snprintf(buf, sizeof buf, "%-7s %-25s %-17s %-12s %-24s %s", std::to_string(e.value("seq", 0ull)).c_str(),
                localTime(e.value("time", json())).c_str(), e.value("type", "").c_str(), e.value("actor", "").c_str(),
                e.value("repository", "").c_str(), target.c_str());
  std::string line = buf;
  if (e.value("count", 1ull) > 1) line += " x" + std::to_string(e.value("count", 1ull));
  return line;
}

std::string eventsQuery(const Args& a, bool with_since) {
  std::string q;
  const std::vector<std::pair<const char*, const char*>> params = {
      {"repo", "repository"}, {"namespace", "namespace"}, {"type", "type"}, {"actor", "actor"},
      {"from", "from"},       {"to", "to"},               {"limit", "limit"}, {"since", "since"}};
  for (const auto& [flag, key] : params) {
    if (!with_since && std::string(key) == "since") continue;
    if (a.has(flag)) q += std::string(q.empty() ? "?" : "&") + key + "=" + percentEncode(a.get(flag));
  }
  return q;
}

// Follows /api/v1/events/stream, printing one line per event; reconnects with
// Last-Event-ID when the connection drops. Returns only on a refusal.
int followEvents(const Args& a, const Session& s, Api& api, const std::string& authorization) {
  bool js = a.has("json");
  uint64_t last = 0;
  if (a.has("since")) {
    last = std::strtoull(a.get("since").c_str(), nullptr, 10);
  } else {
    last = api.call("GET", "/events?limit=1").value("last_seq", 0ull);  // from now on
  }
  std::string q = eventsQuery(a, false);
  q.erase(0, q.empty() ? 0 : 1);
  auto url = parseBaseUrl(s.url);
  if (!url.isOk()) die(url.status().message(), 2);
  for (;;) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int fd = -1;
    if (getaddrinfo(url->host.c_str(), std::to_string(url->port).c_str(), &hints, &res) == 0) {
      for (addrinfo* ai = res; ai != nullptr && fd < 0; ai = ai->ai_next) {
        fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
        if (fd >= 0 && ::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
          ::close(fd);
          fd = -1;
        }
      }
      freeaddrinfo(res);
    }
    if (fd < 0) {
      std::fprintf(stderr, "wharfctl: cannot reach %s; retrying\n", s.url.c_str());
      ::sleep(2);
      continue;
    }
    timeval tv{60, 0};  // keepalives come every 15 s: a minute of silence is a dead connection
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::unique_ptr<TlsClient> tls;
    if (url->tls) {
      auto c = TlsClient::connect(fd, url->host, s.cacert, s.insecure);
      if (!c.isOk()) die(c.status().message());
      tls = std::move(c).value();
    }
    std::string req = "GET /api/v1/events/stream?since=" + std::to_string(last) + (q.empty() ? "" : "&" + q) +
                      " HTTP/1.1\r\nHost: " + url->host_header + "\r\nAuthorization: " + authorization +
                      "\r\nAccept: text/event-stream\r\n\r\n";
    bool sent = tls ? tls->write(req.data(), req.size()).isOk()
                    : ::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size());
    std::string in, sse;
    bool headers_done = false;
    char buf[16384];
    while (sent) {
      ssize_t r;
      if (tls) {
        auto got = tls->read(buf, sizeof buf);
        r = got.isOk() ? static_cast<ssize_t>(*got) : -1;
      } else {
        r = ::recv(fd, buf, sizeof buf, 0);
      }
      if (r <= 0) break;
      in.append(buf, static_cast<size_t>(r));
      if (!headers_done) {
        size_t end = in.find("\r\n\r\n");
        if (end == std::string::npos) continue;
        int status = in.size() > 12 ? std::atoi(in.c_str() + 9) : 0;
        if (status != 200) {
          std::string body = in.substr(end + 4);
          json j = json::parse(body.substr(body.find('{') == std::string::npos ? 0 : body.find('{')), nullptr, false);
          std::string msg = "HTTP " + std::to_string(status);
          if (j.is_object() && j.contains("errors") && !j["errors"].empty()) msg += ": " + j["errors"][0].value("message", "");
          die(msg);
        }
        headers_done = true;
        in.erase(0, end + 4);
      }
      // Chunked transfer coding: <hex size>\r\n<bytes>\r\n ...
      for (;;) {
        size_t eol = in.find("\r\n");
        if (eol == std::string::npos) break;
        size_t size = std::strtoull(in.substr(0, eol).c_str(), nullptr, 16);
        if (in.size() < eol + 2 + size + 2) break;
        sse.append(in, eol + 2, size);
        in.erase(0, eol + 2 + size + 2);
      }
      for (size_t end; (end = sse.find("\n\n")) != std::string::npos;) {
        std::string block = sse.substr(0, end);
        sse.erase(0, end + 2);
        std::string data;
        uint64_t id = 0;
        for (size_t start = 0; start < block.size();) {
          size_t nl = block.find('\n', start);
          std::string line = block.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
          start = nl == std::string::npos ? block.size() : nl + 1;
          if (line.rfind("id: ", 0) == 0) id = std::strtoull(line.c_str() + 4, nullptr, 10);
          if (line.rfind("data: ", 0) == 0) data = line.substr(6);
        }
        if (id == 0 || data.empty()) continue;  // a comment, a retry hint
        last = id;
        json e = json::parse(data, nullptr, false);
        std::cout << (js ? e.dump() : eventLine(e)) << std::endl;
      }
    }
    tls.reset();
    ::close(fd);
    std::fprintf(stderr, "wharfctl: the event feed was interrupted; resuming after %llu\n",
                 static_cast<unsigned long long>(last));
    ::sleep(1);
  }
}

std::string readSecretFile(const std::string& path) {
  std::string secret;
  if (path == "-") {
    std::getline(std::cin, secret);
  } else if (Status st = readFile(path, &secret); !st.isOk()) {
    die("--secret-file: " + st.message(), 2);
  }
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  return secret;
}

json eventList(const std::string& csv) {
  json out = json::array();
  for (size_t start = 0; start <= csv.size();) {
    size_t end = csv.find(',', start);
    if (end == std::string::npos) end = csv.size();
    if (end > start) out.push_back(csv.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

void printHooks(const json& hooks) {
  printTable(hooks, {field("ID", "id"), field("SCOPE", "scope"), field("URL", "url"), field("EVENTS", "events"),
                     field("ENABLED", "enabled"), {"SIGNED", [](const json& h) {
                       return cell(h.value("has_secret", false));
                     }}});
}

}  // namespace

int events(const Args& a, Api& api, const Session& s) {
  if (a.has("f") || a.has("follow")) return followEvents(a, s, api, basicAuthorization(s.user, s.token));
  json r = api.call("GET", "/events" + eventsQuery(a, true));
  bool js = a.has("json");
  if (js) return printJson(r), 0;
  const json& list = r.value("events", json::array());
  if (list.empty()) std::cout << "(none)\n";
  for (const auto& e : list) std::cout << eventLine(e) << "\n";
  if (r.contains("next") && !r["next"].is_null()) std::cout << "(more: --since " << r["next"].dump() << ")\n";
  return 0;
}

int webhook(const Args& a, Api& api) {
  std::string sub = a.pos.size() > 1 ? a.pos[1] : "";
  bool js = a.has("json");
  if (sub == "ls" || sub == "list") {
    json r = api.call("GET", "/webhooks");
    if (js) return printJson(r), 0;
    return printHooks(r.value("webhooks", json::array())), 0;
  }
  if (sub == "add") {
    if (!a.has("scope") || !a.has("url") || !a.has("events")) {
      die("webhook add needs --scope, --url and --events (see wharfctl webhook add --help)", 2);
    }
    json body = {{"scope", a.get("scope")}, {"url", a.get("url")}, {"events", eventList(a.get("events"))}};
    if (a.has("secret-file")) body["secret"] = readSecretFile(a.get("secret-file"));
    if (a.has("disable")) body["enabled"] = false;
    json r = api.call("POST", "/webhooks", body);
    if (js) return printJson(r), 0;
    std::cout << "Webhook " << r.value("id", "") << " added: " << r.value("scope", "") << " -> " << r.value("url", "")
              << (r.value("has_secret", false) ? " (signed)" : " (unsigned)") << "\n";
    return 0;
  }
  std::string id = need(a, 2, "webhook id");
  std::string path = "/webhooks/" + percentEncode(id);
  if (sub == "show") return print(api.call("GET", path), js), 0;
  if (sub == "rm" || sub == "remove" || sub == "delete") {
    api.call("DELETE", path);
    std::cout << "Webhook " << id << " removed.\n";
    return 0;
  }
  if (sub == "set") {
    json body = json::object();
    if (a.has("url")) body["url"] = a.get("url");
    if (a.has("events")) body["events"] = eventList(a.get("events"));
    if (a.has("secret-file")) body["secret"] = readSecretFile(a.get("secret-file"));
    if (a.has("enable")) body["enabled"] = true;
    if (a.has("disable")) body["enabled"] = false;
    return print(api.call("PATCH", path, body), js), 0;
  }
  if (sub == "deliveries") {
    json r = api.call("GET", path + "/deliveries" + (a.has("limit") ? "?limit=" + percentEncode(a.get("limit")) : ""));
    if (js) return printJson(r), 0;
    printTable(r.value("deliveries", json::array()),
               {timeField("TIME", "time"), field("DELIVERY", "delivery"), field("ATTEMPT", "attempt"),
                {"STATUS", [](const json& d) {  // 0: no HTTP answer
                   int status = d.value("status", 0);
                   return status == 0 ? std::string("-") : std::to_string(status);
                 }},
                field("OUTCOME", "outcome"),
                {"SEQ", [](const json& d) {
                   uint64_t first = d.value("first_seq", uint64_t{0});
                   return first == 0 ? std::string("test")
                                     : std::to_string(first) + "-" + std::to_string(d.value("last_seq", uint64_t{0}));
                 }},
                {"DURATION", [](const json& d) { return std::to_string(d.value("duration_ms", int64_t{0})) + " ms"; }},
                field("ERROR", "error")});
    return 0;
  }
  if (sub == "test") {
    json r = api.call("POST", path + "/test", json::object());
    if (js) {
      printJson(r);
    } else {
      std::cout << "Test delivery " << r.value("delivery", "") << ": " << r.value("outcome", "") << " (HTTP "
                << r.value("status", 0) << ", " << r.value("duration_ms", 0) << " ms"
                << (r.contains("error") ? ", " + r.value("error", "") : "") << ")\n";
    }
    return r.value("outcome", "") == "delivered" ? 0 : 1;
  }
  die("unknown webhook command (see wharfctl webhook --help)", 2);
}

}  // namespace wharf::cli
