// wharfctl's shared pieces (cli.h): arguments, session, API client, output.
#include "core/cli/cli.h"

#include <cctype>
#include <cstdio>
#include <cstdlib>

#include "shared/base/fs.h"
#include "shared/http/client.h"

namespace wharf::cli {

bool isSwitch(const std::string& f) {
  return f == "json" || f == "insecure" || f == "admin" || f == "public" || f == "private" || f == "password-stdin" ||
         f == "help" || f == "f" || f == "follow" || f == "disable" || f == "enable" || f == "dry-run" ||
         f == "no-retention";
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

// Prints a list of objects as a table (or the JSON itself with --json).
void print(const json& j, bool as_json) {
  if (as_json) {
    std::cout << j.dump(2) << "\n";
    return;
  }
  json rows = j.contains("items") ? j["items"] : j;
  if (!rows.is_array()) {
    for (auto it = j.begin(); it != j.end(); ++it) std::cout << it.key() << ": " << cell(it.value()) << "\n";
    return;
  }
  if (rows.empty()) {
    std::cout << "(none)\n";
    return;
  }
  std::vector<std::string> cols;
  if (rows[0].is_object()) {
    for (auto it = rows[0].begin(); it != rows[0].end(); ++it) cols.push_back(it.key());
  } else {
    cols.push_back("name");
    json objs = json::array();
    for (const auto& r : rows) objs.push_back({{"name", r}});
    rows = objs;
  }
  std::vector<size_t> width(cols.size());
  for (size_t c = 0; c < cols.size(); ++c) {
    width[c] = cols[c].size();
    for (const auto& r : rows) width[c] = std::max(width[c], cell(r.value(cols[c], json())).size());
  }
  auto line = [&](auto value) {
    for (size_t c = 0; c < cols.size(); ++c) {
      std::string v = value(c);
      std::cout << v << (c + 1 < cols.size() ? std::string(width[c] - v.size() + 2, ' ') : "");
    }
    std::cout << "\n";
  };
  line([&](size_t c) {
    std::string up = cols[c];
    for (char& ch : up) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    return up;
  });
  for (const auto& r : rows) line([&](size_t c) { return cell(r.value(cols[c], json())); });
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
