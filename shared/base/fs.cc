#include "shared/base/fs.h"

#include "shared/base/ids.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace wharf {

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    reset();
    fd_ = o.release();
  }
  return *this;
}
Fd::~Fd() { reset(); }
void Fd::reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Status errnoStatus(const std::string& what, int err) {
  if (err == ENOSPC || err == EDQUOT) {
    return Status(Code::kInsufficientStorage, "insufficient storage: " + what + ": " + std::strerror(err));
  }
  return Status(Code::kIoError, what + ": " + std::strerror(err));
}

Status makeDirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Status(Code::kIoError, "mkdir " + path + ": " + ec.message());
  return Status::ok();
}

Status fsyncDir(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return errnoStatus("open dir " + path, errno);
  if (::fsync(fd.get()) != 0) return errnoStatus("fsync dir " + path, errno);
  return Status::ok();
}

Status readFile(const std::string& path, std::string* out) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return Status(Code::kNotFound, path + " does not exist");
    return errnoStatus("open " + path, errno);
  }
  out->clear();
  char buf[65536];
  for (;;) {
    ssize_t r = ::read(fd.get(), buf, sizeof buf);
    if (r < 0) {
      if (errno == EINTR) continue;
      return errnoStatus("read " + path, errno);
    }
    if (r == 0) break;
    out->append(buf, static_cast<size_t>(r));
  }
  return Status::ok();
}

Status writeAll(int fd, const char* data, size_t len) {
  while (len > 0) {
    ssize_t w = ::write(fd, data, len);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errnoStatus("write", errno);
    }
    data += w;
    len -= static_cast<size_t>(w);
  }
  return Status::ok();
}

Status preadAll(int fd, char* data, size_t len, uint64_t offset) {
  while (len > 0) {
    ssize_t r = ::pread(fd, data, len, static_cast<off_t>(offset));
    if (r < 0) {
      if (errno == EINTR) continue;
      return errnoStatus("pread", errno);
    }
    if (r == 0) return Status(Code::kCorruption, "file shorter than expected");
    data += r;
    len -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
  return Status::ok();
}

std::string dirName(const std::string& path) {
  auto pos = path.find_last_of('/');
  if (pos == std::string::npos) return ".";
  if (pos == 0) return "/";
  return path.substr(0, pos);
}

Status writeFileDurable(const std::string& path, const std::string& data, int mode) {
  std::string tmp = path + ".tmp." + newUuid();  // concurrent writers never share a temp file
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd.valid()) return errnoStatus("create " + tmp, errno);
  WHARF_RETURN_IF_ERROR(writeAll(fd.get(), data.data(), data.size()));
  if (::fsync(fd.get()) != 0) return errnoStatus("fsync " + tmp, errno);
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) return errnoStatus("rename " + tmp, errno);
  return fsyncDir(dirName(path));
}

Status writeFileAtomic(const std::string& path, const std::string& data, int mode) {
  std::string tmp = path + ".tmp." + newUuid();  // concurrent writers never share a temp file
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd.valid()) return errnoStatus("create " + tmp, errno);
  WHARF_RETURN_IF_ERROR(writeAll(fd.get(), data.data(), data.size()));
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) return errnoStatus("rename " + tmp, errno);
  return Status::ok();
}

Status removeTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) return Status(Code::kIoError, "remove " + path + ": " + ec.message());
  return Status::ok();
}

}  // namespace wharf
