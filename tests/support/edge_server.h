// Edges for integration tests: a real wharf-edge joined to a real core, and the core
// calls such tests need (join tokens, registry tokens, a pushed blob). Failures throw
// std::runtime_error (Catch reports them), as these helpers do not depend on Catch.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace wharf::test {

// A join token for a new edge, from the core's API as an administrator would ask.
std::string edgeJoinToken(int core_port, const std::string& admin_password, const std::string& name,
                          const std::string& site = "test site");
// A registry token from the core's token endpoint (user "" for anonymous).
std::string registryToken(int core_port, const std::string& user, const std::string& password,
                          const std::string& scope);
// Pushes a blob to repo as admin; returns its digest.
std::string pushBlob(int core_port, const std::string& admin_password, const std::string& repo,
                     const std::string& data);

// A metric's value in a /metrics page (0 when absent), and on a server's page now.
uint64_t metricIn(const std::string& page, const std::string& name);
uint64_t metricOf(int port, const std::string& name);

// A wharf-edge joined to a core (through core_url when given: a proxy in front of it).
class EdgeServer {
 public:
  struct Options {
    std::vector<std::string> extra;  // more flags
    std::string core_url;            // default: the core's own
    std::string admin_password = "edge-admin-password";
    std::string site = "test site";
    std::string name;                // default: unique
  };
  EdgeServer(const CoreServer& core, Options options);
  explicit EdgeServer(const CoreServer& core, std::vector<std::string> extra = {}, std::string core_url = "");
  // Starts (again) on the same data directory; true once it listens.
  bool start(const std::vector<std::string>& extra);
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  const std::string& name() const { return name_; }
  std::string dataDir() const { return temp_ / "data"; }
  std::string logPath() const { return temp_ / "edge.log"; }
  std::string log() const;
  Process& process() { return *process_; }

 private:
  TempDir temp_;
  std::string name_;
  int port_ = 0;
  std::unique_ptr<Process> process_;
};

}  // namespace wharf::test
