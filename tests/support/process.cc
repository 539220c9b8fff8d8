#include "tests/support/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <sys/stat.h>
#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "shared/base/fs.h"

#ifndef WHARF_CORE_BIN
#error "WHARF_CORE_BIN must be defined"
#endif

namespace wharf::test {
namespace {

std::vector<char*> cArgs(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (const auto& a : argv) out.push_back(const_cast<char*>(a.c_str()));
  out.push_back(nullptr);
  return out;
}

int waitPid(int pid, int timeout_ms, bool* reaped) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    int status = 0;
    int r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      *reaped = true;
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
      return -1;
    }
    if (r < 0 && errno != EINTR) {
      *reaped = true;
      return -1;
    }
    if (std::chrono::steady_clock::now() >= end) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace

int countLogLines(const std::string& log, const std::vector<std::string>& needles) {
  std::istringstream in(log);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    bool all = true;
    for (const auto& needle : needles) all = all && line.find(needle) != std::string::npos;
    if (all) ++n;
  }
  return n;
}

int freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string coreBinary() { return WHARF_CORE_BIN; }
std::string wharfctlBinary() { return WHARFCTL_BIN; }
std::string edgeBinary() { return WHARF_EDGE_BIN; }

CommandResult run(const std::vector<std::string>& argv, int timeout_ms) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  int pid = ::fork();
  if (pid == 0) {
    ::dup2(pipefd[1], 1);
    ::dup2(pipefd[1], 2);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    auto args = cArgs(argv);
    ::execvp(args[0], args.data());
    _exit(127);
  }
  ::close(pipefd[1]);
  CommandResult result;
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  char buf[65536];
  bool timed_out = false;
  for (;;) {
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now()).count());
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd pfd{pipefd[0], POLLIN, 0};
    int pr = ::poll(&pfd, 1, left);
    if (pr <= 0) continue;
    ssize_t r = ::read(pipefd[0], buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    result.output.append(buf, static_cast<size_t>(r));
  }
  ::close(pipefd[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  bool reaped = false;
  int code = waitPid(pid, 10000, &reaped);
  result.exit_code = timed_out ? -1 : code;
  if (timed_out) result.output += "\n[timed out]";
  return result;
}

CommandResult shell(const std::string& command, int timeout_ms) { return run({"/bin/sh", "-c", command}, timeout_ms); }

CommandResult containerClient(const std::string& command, int timeout_ms) {
  static bool dir = [] { return ::mkdir("/var/lib/containers", 0755) == 0 || errno == EEXIST; }() &&
                    (::mkdir("/var/lib/containers/cache", 0755) == 0 || errno == EEXIST);
  (void)dir;
  return run({"unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
              "mount -t tmpfs tmpfs /var/lib/containers/cache && " + command},
             timeout_ms);
}

bool haveCommand(const std::string& name) { return shell("command -v " + name + " >/dev/null 2>&1").exit_code == 0; }

Process::Process(const std::vector<std::string>& argv, const std::string& log_path) {
  pid_ = ::fork();
  if (pid_ == 0) {
    int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    // The test runner may block signals; the child gets a clean mask.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    auto args = cArgs(argv);
    ::execv(args[0], args.data());
    _exit(127);
  }
}

Process::~Process() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    wait(10000);
  }
}

bool Process::running() {
  if (reaped_) return false;
  int status = 0;
  int r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    reaped_ = true;
    status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return true;
}

void Process::signal(int sig) {
  if (!reaped_) ::kill(pid_, sig);
}

int Process::wait(int timeout_ms) {
  if (reaped_) return status_;
  int code = waitPid(pid_, timeout_ms, &reaped_);
  if (reaped_) status_ = code;
  return code;
}

CoreServer::CoreServer(std::string data_dir, std::vector<std::string> extra)
    : data_dir_(data_dir.empty() ? temp_ / "data" : std::move(data_dir)), log_path_(temp_ / "core.log") {
  std::string port_file = temp_ / "port";
  ::unlink(port_file.c_str());
  std::vector<std::string> argv = {coreBinary(), "--listen", "127.0.0.1:0", "--data-dir", data_dir_,
                                   "--port-file", port_file, "--threads", "2"};
  // Tests of the registry API run it open unless they ask for authentication.
  if (std::find(extra.begin(), extra.end(), "--auth") == extra.end()) {
    argv.push_back("--auth");
    argv.push_back("none");
  }
  // Scans on push add events and jobs of their own: only the tests that scan ask for them.
  if (std::find(extra.begin(), extra.end(), "--scan-on-push") == extra.end()) {
    argv.push_back("--scan-on-push");
    argv.push_back("false");
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  process_ = std::make_unique<Process>(argv, log_path_);
  bool up = waitFor(
      [&] {
        std::string text;
        if (!readFile(port_file, &text).isOk() || text.empty() || text.back() != '\n') return false;
        port_ = std::stoi(text);
        return port_ > 0;
      },
      20000);
  if (!up) throw std::runtime_error("wharf-core did not start: " + log());
}

CoreServer::~CoreServer() {
  if (process_ && process_->running()) terminate();
}

std::string CoreServer::log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void CoreServer::kill9() {
  process_->signal(SIGKILL);
  process_->wait(10000);
}

int CoreServer::terminate() {
  process_->signal(SIGTERM);
  int code = process_->wait(30000);
  if (process_->running()) kill9();
  return code;
}

}  // namespace wharf::test
