// Child processes for integration tests: the real wharf binaries and real clients.
#pragma once

#include <string>
#include <vector>
#include <memory>

#include "tests/support/temp_dir.h"

namespace wharf::test {

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs argv (no shell) with a deadline; output is captured. A command still running at
// the deadline is killed and reported with exit code -1.
CommandResult run(const std::vector<std::string>& argv, int timeout_ms = 120000);
// Runs a shell command line (sh -c) the same way.
CommandResult shell(const std::string& command, int timeout_ms = 120000);
bool haveCommand(const std::string& name);
// Runs a container client's command line (skopeo, podman, buildah) like shell(), in a
// private mount namespace with a fresh tmpfs on /var/lib/containers/cache: their
// host-wide blob-info cache would make mount and reuse depend on earlier runs.
CommandResult containerClient(const std::string& command, int timeout_ms = 180000);

class Process {
 public:
  // Starts argv with stdout and stderr appended to log_path.
  Process(const std::vector<std::string>& argv, const std::string& log_path);
  ~Process();  // SIGKILL if still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  int pid() const { return pid_; }
  bool running();
  void signal(int sig);
  // Waits for exit up to timeout_ms; returns the exit status (or -1 on timeout).
  int wait(int timeout_ms = 30000);

 private:
  int pid_ = -1;
  int status_ = -1;
  bool reaped_ = false;
};

// A wharf-core on 127.0.0.1, port 0, in its own data directory.
class CoreServer {
 public:
  // data_dir empty: a fresh temporary directory. extra: more flags; without "--auth"
  // in them the core runs with --auth none, without "--scan-on-push" with it false.
  explicit CoreServer(std::string data_dir = "", std::vector<std::string> extra = {});
  ~CoreServer();
  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string url() const { return "http://" + address(); }
  const std::string& dataDir() const { return data_dir_; }
  const std::string& logPath() const { return log_path_; }
  std::string log() const;
  Process& process() { return *process_; }
  // Kills with SIGKILL and waits.
  void kill9();
  // SIGTERM and waits; returns the exit status.
  int terminate();

 private:
  TempDir temp_;
  std::string data_dir_;
  std::string log_path_;
  int port_ = 0;
  std::unique_ptr<Process> process_;
};

// Lines of a log that contain every needle.
int countLogLines(const std::string& log, const std::vector<std::string>& needles);
// A loopback port nothing listens on right now.
int freePort();

std::string coreBinary();
std::string wharfctlBinary();
std::string edgeBinary();

}  // namespace wharf::test
