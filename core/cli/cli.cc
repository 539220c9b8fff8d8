// wharfctl's shared pieces (cli.h): arguments, session, API client, output.
#include "core/cli/cli.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iterator>
#include <optional>
#include <set>

#include "shared/base/fs.h"
#include "shared/http/client.h"

namespace wharf::cli {

bool isSwitch(const std::string& f) {
  return f == "json" || f == "insecure" || f == "admin" || f == "public" || f == "private" || f == "password-stdin" ||
         f == "help" || f == "f" || f == "follow" || f == "disable" || f == "enable" || f == "dry-run" ||
         f == "no-retention" || f == "bytes" || f == "csv" || f == "wait" ||
         f == "packages" || f == "all";
}

void die(const std::string& msg, int code) {
  std::fprintf(stderr, "wharfctl: %s\n", msg.c_str());
  std::exit(code);
}

std::string configPath(const Args& a) {
  if (a.has("config")) return a.get("config");
  const char* home = std::getenv("HOME");
  return std::string(home ? home : ".") + "/.config/wharf/wharfctl.json";
}

Session loadSession(const Args& a) {
  std::string text;
  Session s;
  if (readFile(configPath(a), &text).isOk()) {
    json j = json::parse(text, nullptr, false);
    if (j.is_object()) {
      s.url = j.value("url", "");
      s.user = j.value("user", "");
      s.token = j.value("token", "");
      s.token_id = j.value("token_id", "");
      s.cacert = j.value("cacert", "");
      s.insecure = j.value("insecure", false);
    }
  }
  if (a.has("cacert")) s.cacert = a.get("cacert");
  if (a.has("insecure")) s.insecure = true;
  return s;
}

Api::Api(const Session& s, std::string authorization) : auth_(std::move(authorization)) {
  auto url = parseBaseUrl(s.url);
  if (!url.isOk()) die(url.status().message(), 2);
  client_ = std::make_unique<BlockingClient>(url->host, url->port);
  host_ = url->host.find(':') != std::string::npos ? "[" + url->host + "]:" + std::to_string(url->port)
                                                   : url->host + ":" + std::to_string(url->port);
  if (url->tls) client_->useTls(s.cacert, s.insecure);
}

json Api::call(const std::string& method, const std::string& path, const json& body) {
  HeaderList h = {{"Authorization", auth_}};
  std::string b;
  if (!body.is_null()) {
    h.push_back({"Content-Type", "application/json"});
    b = body.dump();
  }
  auto r = client_->request(method, "/api/v1" + path, h, b);
  if (!r.isOk()) die(r.status().message());
  if (r->status == 204) return json::object();
  json j = json::parse(r->body, nullptr, false);
  if (r->status >= 400) {
    std::string msg = "HTTP " + std::to_string(r->status);
    if (j.is_object() && j.contains("errors") && !j["errors"].empty()) {
      msg += ": " + j["errors"][0].value("message", "");
    }
    die(msg);
  }
  return j;
}

std::string Api::text(const std::string& method, const std::string& path) {
  auto r = client_->request(method, "/api/v1" + path, {{"Authorization", auth_}}, "");
  if (!r.isOk()) die(r.status().message());
  if (r->status >= 400) {
    json j = json::parse(r->body, nullptr, false);
    std::string msg = "HTTP " + std::to_string(r->status);
    if (j.is_object() && j.contains("errors") && !j["errors"].empty()) msg += ": " + j["errors"][0].value("message", "");
    die(msg);
  }
  return r->body;
}

json Api::upload(const std::string& path, const std::string& file, const std::string& content_type) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) die(file + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) die(file + ": not a regular file");
  FILE* f = std::fopen(file.c_str(), "rb");
  if (f == nullptr) die(file + ": " + std::strerror(errno));
  std::fseek(f, 0, SEEK_END);
  long size = std::ftell(f);
  std::fseek(f, 0, SEEK_SET);
  if (size < 0) die(file + ": cannot tell its size");
  std::string head = "POST /api/v1" + path + " HTTP/1.1\r\nHost: " + host_ + "\r\nAuthorization: " + auth_ +
                     "\r\nContent-Type: " + content_type + "\r\nContent-Length: " + std::to_string(size) + "\r\n\r\n";
  Status s = client_->send(head);
  std::string buf(1 << 20, '\0');
  long sent = 0;
  while (s.isOk() && sent < size) {
    size_t n = std::fread(buf.data(), 1, buf.size(), f);
    if (n == 0) break;
    s = client_->send(std::string(buf.data(), n));
    sent += long(n);
    if (size > (64 << 20)) std::fprintf(stderr, "\ruploading %ld of %ld MiB", sent >> 20, size >> 20);
  }
  std::fclose(f);
  if (size > (64 << 20)) std::fprintf(stderr, "\n");
  if (s.isOk() && sent != size) die(file + ": the file changed while it was sent");
  // A refusal (403, 413) may come before the whole body went: read the answer either way.
  auto r = client_->read();
  if (!r.isOk()) die(s.isOk() ? r.status().message() : s.message());
  json j = json::parse(r->body, nullptr, false);
  if (r->status >= 400) {
    std::string msg = "HTTP " + std::to_string(r->status);
    if (j.is_object() && j.contains("errors") && !j["errors"].empty()) msg += ": " + j["errors"][0].value("message", "");
    die(msg);
  }
  return j;
}

std::string cell(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  if (v.is_array()) {
    std::string out;
    for (const auto& x : v) {
      if (!out.empty()) out += ',';
      out += cell(x);
    }
    return out;
  }
  return v.dump();
}

namespace {

// "2026-11-27T13:14:21Z", "...21.5Z", "...21+01:00" -> epoch milliseconds; nullopt if
// the text is not such a time.
std::optional<int64_t> parseRfc3339(const std::string& s) {
  std::tm tm{};
  int used = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &used) != 6 ||
      used != 19) {
    return std::nullopt;
  }
  size_t i = 19;
  int64_t ms = 0;
  if (i < s.size() && s[i] == '.') {
    int64_t scale = 100;
    for (++i; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i, scale /= 10) ms += (s[i] - '0') * scale;
  }
  int64_t offset_s = 0;
  if (i + 1 == s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    // UTC
  } else if (i + 6 == s.size() && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
    int h = 0, m = 0;
    if (std::sscanf(s.c_str() + i + 1, "%2d:%2d", &h, &m) != 2) return std::nullopt;
    offset_s = (s[i] == '-' ? -1 : 1) * (h * 3600 + m * 60);
  } else {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return (static_cast<int64_t>(timegm(&tm)) - offset_s) * 1000 + ms;
}

}  // namespace

std::string localTime(int64_t millis) {
  std::time_t t = static_cast<std::time_t>(millis / 1000 - (millis % 1000 < 0 ? 1 : 0));
  std::tm tm{};
  localtime_r(&t, &tm);
  long off = tm.tm_gmtoff;
  char sign = off < 0 ? '-' : '+';
  if (off < 0) off = -off;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d%c%02ld:%02ld", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, sign, off / 3600, off % 3600 / 60);
  return buf;
}

std::string localTime(const json& v, const std::string& none) {
  if (v.is_null()) return none;
  if (v.is_number_integer()) {
    int64_t ms = v.get<int64_t>();
    return ms == 0 ? none : localTime(ms);
  }
  if (v.is_string()) {
    if (auto ms = parseRfc3339(v.get<std::string>())) return localTime(*ms);
  }
  return cell(v);
}

bool isTimeKey(const std::string& key) {
  static const std::set<std::string> keys = {"time", "ts", "created", "expires", "last_seen", "last_run", "next_run"};
  return keys.count(key) > 0 || (key.size() > 3 && key.compare(key.size() - 3, 3, "_at") == 0);
}

std::string humanSize(uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " B";
  static const char* const kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = static_cast<double>(bytes) / 1024;
  size_t u = 0;
  // 1023.95 and up would print as "1024.0": that is the next unit's "1.0".
  while (v >= 1023.95 && u + 1 < std::size(kUnits)) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
  return buf;
}

Column field(std::string title, std::string key) {
  return {std::move(title), [key = std::move(key)](const json& row) {
            auto it = row.find(key);
            std::string v = it == row.end() ? "" : cell(*it);
            return v.empty() ? std::string("-") : v;
          }};
}

Column timeField(std::string title, std::string key, std::string none) {
  return {std::move(title), [key = std::move(key), none = std::move(none)](const json& row) {
            auto it = row.find(key);
            return it == row.end() ? none : localTime(*it, none);
          }};
}

void printTable(const json& rows, const std::vector<Column>& cols) {
  if (!rows.is_array() || rows.empty()) {
    std::cout << "(none)\n";
    return;
  }
  std::vector<std::vector<std::string>> lines;
  lines.emplace_back();
  for (const auto& c : cols) lines.back().push_back(c.title);
  for (const auto& r : rows) {
    lines.emplace_back();
    for (const auto& c : cols) lines.back().push_back(c.value(r));
  }
  std::vector<size_t> width(cols.size());
  for (const auto& l : lines) {
    for (size_t c = 0; c < cols.size(); ++c) width[c] = std::max(width[c], l[c].size());
  }
  for (const auto& l : lines) {
    std::string out;
    for (size_t c = 0; c < cols.size(); ++c) {
      out += l[c];
      if (c + 1 < cols.size()) out += std::string(width[c] - l[c].size() + 2, ' ');
    }
    std::cout << out << "\n";
  }
}

void printJson(const json& j) { std::cout << j.dump(2) << "\n"; }

void printFields(const json& obj) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool time = isTimeKey(it.key()) && !it.value().is_null();
    std::string v = time ? localTime(it.value(), it.key() == "expires" ? "never" : "-") : cell(it.value());
    std::cout << it.key() << ": " << v << "\n";
  }
}

void print(const json& j, bool as_json) {
  if (as_json) return printJson(j);
  const json& rows = j.is_object() && j.contains("items") ? j["items"] : j;
  if (!rows.is_array()) return printFields(j);
  if (rows.empty()) {
    std::cout << "(none)\n";
    return;
  }
  if (rows[0].is_object()) {
    for (const auto& r : rows) std::cout << r.dump() << "\n";
    return;
  }
  printTable(rows, {{"NAME", [](const json& name) { return cell(name); }}});
}

std::string need(const Args& a, size_t i, const char* what) {
  if (a.pos.size() <= i) die(std::string("missing ") + what + " (see --help)", 2);
  return a.pos[i];
}

int familyHelp(const Args& a, const std::map<std::string, std::string>& help) {
  std::string sub = a.pos.size() > 1 ? a.pos[1] : "";
  if (sub == "list") sub = "ls";
  if (sub == "remove" || sub == "delete") sub = "rm";
  auto it = help.find(sub);
  std::fputs((it == help.end() ? help.at("") : it->second).c_str(), a.has("help") ? stdout : stderr);
  return a.has("help") ? 0 : 2;
}

}  // namespace wharf::cli
