#include "tests/support/edge_server.h"

#include <unistd.h>

#include <atomic>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "shared/base/fs.h"
#include "shared/oci/digest.h"
#include "shared/tls/crypto.h"
#include "tests/support/http_client.h"

namespace wharf::test {

using nlohmann::json;

std::string edgeJoinToken(int core_port, const std::string& admin_password, const std::string& name,
                          const std::string& site) {
  HttpClient c("127.0.0.1", core_port);
  auto r = c.request("POST", "/api/v1/edges",
                     {{"Authorization", basicAuthorization("admin", admin_password)},
                      {"Content-Type", "application/json"}},
                     json{{"name", name}, {"site", site}}.dump());
  if (!r.isOk() || r->status != 201) {
    throw std::runtime_error("cannot add edge " + name + ": " + (r.isOk() ? r->body : r.status().message()));
  }
  return json::parse(r->body)["join_token"];
}

std::string registryToken(int core_port, const std::string& user, const std::string& password,
                          const std::string& scope) {
  HttpClient c("127.0.0.1", core_port);
  HeaderList h;
  if (!user.empty()) h.push_back({"Authorization", basicAuthorization(user, password)});
  auto r = c.request("GET", "/auth/token?service=wharf&scope=" + scope, h);
  if (!r.isOk() || r->status != 200) {
    throw std::runtime_error("no token for " + scope + ": " + (r.isOk() ? r->body : r.status().message()));
  }
  return json::parse(r->body)["token"];
}

std::string pushBlob(int core_port, const std::string& admin_password, const std::string& repo,
                     const std::string& data) {
  std::string d = digestOf(data).str();
  std::string push = registryToken(core_port, "admin", admin_password, "repository:" + repo + ":pull,push");
  HttpClient c("127.0.0.1", core_port);
  auto r = c.request("POST", "/v2/" + repo + "/blobs/uploads/?digest=" + d, {{"Authorization", "Bearer " + push}}, data);
  if (!r.isOk() || r->status != 201) {
    throw std::runtime_error("cannot push a blob to " + repo + ": " + (r.isOk() ? r->body : r.status().message()));
  }
  return d;
}

EdgeServer::EdgeServer(const CoreServer& core, Options options) {
  static std::atomic<int> counter{0};
  name_ = !options.name.empty() ? options.name
                                : "edge-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
  std::vector<std::string> args = {"--core", options.core_url.empty() ? core.url() : options.core_url,
                                   "--join-token", edgeJoinToken(core.port(), options.admin_password, name_, options.site)};
  args.insert(args.end(), options.extra.begin(), options.extra.end());
  if (!start(args)) throw std::runtime_error("wharf-edge did not start: " + log());
}

namespace {
EdgeServer::Options withFlags(std::vector<std::string> extra, std::string core_url) {
  EdgeServer::Options o;
  o.extra = std::move(extra);
  o.core_url = std::move(core_url);
  return o;
}
}  // namespace

EdgeServer::EdgeServer(const CoreServer& core, std::vector<std::string> extra, std::string core_url)
    : EdgeServer(core, withFlags(std::move(extra), std::move(core_url))) {}

bool EdgeServer::start(const std::vector<std::string>& extra) {
  std::string port_file = temp_ / "port";
  ::unlink(port_file.c_str());
  std::vector<std::string> argv = {edgeBinary(), "--data-dir", dataDir(), "--listen", "127.0.0.1:0",
                                   "--port-file", port_file, "--threads", "2"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  process_.reset();
  process_ = std::make_unique<Process>(argv, logPath());
  bool up = waitFor([&] {
    std::string text;
    if (!process_->running()) return true;
    if (!readFile(port_file, &text).isOk() || text.empty() || text.back() != '\n') return false;
    port_ = std::stoi(text);
    return port_ > 0;
  });
  return up && process_->running();
}

std::string EdgeServer::log() const {
  std::string text;
  (void)readFile(logPath(), &text);
  return text;
}

uint64_t metricIn(const std::string& page, const std::string& name) {
  auto at = page.find("\n" + name + " ");
  return at == std::string::npos ? 0 : std::stoull(page.substr(at + name.size() + 2));
}

uint64_t metricOf(int port, const std::string& name) {
  BlockingClient c("127.0.0.1", port);
  auto r = c.request("GET", "/metrics");
  if (!r.isOk() || r->status != 200) throw std::runtime_error("GET /metrics on port " + std::to_string(port) + " failed");
  return metricIn(r->body, name);
}

}  // namespace wharf::test
