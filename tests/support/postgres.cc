#include "tests/support/postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "shared/store/pg.h"

namespace wharf::test {
namespace {

const std::string kBin = "/usr/lib/postgresql/15/bin/";

// argv run as nobody when we are root (initdb and postgres refuse root).
std::vector<std::string> unprivileged(std::vector<std::string> argv) {
  if (::geteuid() != 0) return argv;
  // setpriv execs (no child in between): signals reach the server itself.
  argv.insert(argv.begin(), {"/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"});
  return argv;
}

}  // namespace

bool PostgresServer::available() {
  return ::access((kBin + "initdb").c_str(), X_OK) == 0 && ::access((kBin + "postgres").c_str(), X_OK) == 0;
}

PostgresServer& PostgresServer::shared() {
  static PostgresServer server;
  return server;
}

PostgresServer::PostgresServer() {
  if (!available()) throw std::runtime_error("PostgreSQL 15 is not installed (apt-get install postgresql)");
  // The unprivileged user must reach the data directory.
  ::chmod(temp_.path().c_str(), 0755);
  std::string data = temp_ / "data";
  if (::geteuid() == 0) {
    ::mkdir(data.c_str(), 0700);
    auto r = run({"chown", "nobody:nogroup", data, temp_.path()});
    if (r.exit_code != 0) throw std::runtime_error("chown: " + r.output);
  }
  auto r = run(unprivileged({kBin + "initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C",
                             "--no-sync"}),
               120000);
  if (r.exit_code != 0) throw std::runtime_error("initdb failed: " + r.output);
  port_ = freePort();
  start();
}

PostgresServer::~PostgresServer() { stop(); }

void PostgresServer::start() {
  process_ = std::make_unique<Process>(
      unprivileged({kBin + "postgres", "-D", temp_ / "data", "-p", std::to_string(port_), "-k", temp_.path(), "-c",
                    "listen_addresses=127.0.0.1", "-c", "max_connections=200", "-c", "shared_buffers=32MB"}),
      temp_ / "postgres.log");
  bool up = waitFor(
      [&] {
        if (!process_->running()) return true;
        return PgPool::open(url(), 1).isOk();
      },
      60000);
  if (!up || !process_->running()) throw std::runtime_error("postgres did not start: " + log());
}

void PostgresServer::stop() {
  if (!process_) return;
  process_->signal(SIGINT);  // fast shutdown: rolls back what is in flight
  process_->wait(30000);
  process_.reset();
}

std::string PostgresServer::url(const std::string& db) const {
  return "postgres://postgres@127.0.0.1:" + std::to_string(port_) + "/" + db;
}

std::string PostgresServer::freshDatabase() {
  std::string name = "wharf_test_" + std::to_string(++databases_);
  auto admin = PgPool::open(url(), 1);
  if (!admin.isOk()) throw std::runtime_error(admin.status().toString());
  auto r = (*admin)->query("CREATE DATABASE " + name);
  if (!r.isOk()) throw std::runtime_error(r.status().toString());
  return url(name);
}

std::string PostgresServer::log() const {
  std::ifstream in(temp_ / "postgres.log");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace wharf::test
