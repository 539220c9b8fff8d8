// Small POSIX file helpers that report failures as Status (kIoError with errno text).
#pragma once

#include <string>

#include "shared/base/status.h"

namespace wharf {

// An owned file descriptor, closed on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { int f = fd_; fd_ = -1; return f; }
  void reset();

 private:
  int fd_ = -1;
};

// kIoError naming what failed, or kInsufficientStorage (507) for a full disk or quota.
Status errnoStatus(const std::string& what, int err);
Status makeDirs(const std::string& path);               // mkdir -p
Status fsyncDir(const std::string& path);
Status readFile(const std::string& path, std::string* out);
// Writes the file through a temp name, fsyncs it, renames it into place, fsyncs the dir.
Status writeFileDurable(const std::string& path, const std::string& data, int mode = 0644);
// The same without the syncs: readers see the old file or the new one, never a mix, but
// a power loss may lose it.
Status writeFileAtomic(const std::string& path, const std::string& data, int mode = 0644);
Status removeTree(const std::string& path);
Status writeAll(int fd, const char* data, size_t len);
Status preadAll(int fd, char* data, size_t len, uint64_t offset);
std::string dirName(const std::string& path);

}  // namespace wharf
