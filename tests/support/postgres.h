// A real PostgreSQL for tests of the scale-out stores: Debian's PostgreSQL 15
// (/usr/lib/postgresql/15/bin), initdb into a temporary directory and the server on a
// free loopback port, run as an unprivileged user when the tests run as root (as CI
// does: initdb refuses root). One server per test binary; each caller gets a fresh
// database of its own.
#pragma once

#include <memory>
#include <string>

#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace wharf::test {

class PostgresServer {
 public:
  // Whether Debian's PostgreSQL server binaries are installed (tests skip otherwise).
  static bool available();
  // The binary's shared server, started at first use; throws std::runtime_error when it
  // cannot start.
  static PostgresServer& shared();

  PostgresServer();
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  int port() const { return port_; }
  // postgres://postgres@127.0.0.1:<port>/<db>
  std::string url(const std::string& db = "postgres") const;
  // A new, empty database; returns its URL.
  std::string freshDatabase();
  // Stops the server (fast shutdown) and starts it again on the same port and data.
  void stop();
  void start();
  std::string log() const;

 private:
  TempDir temp_;
  int port_ = 0;
  int databases_ = 0;
  std::unique_ptr<Process> process_;
};

}  // namespace wharf::test
