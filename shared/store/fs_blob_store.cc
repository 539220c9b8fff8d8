#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <dirent.h>

#include "shared/base/ids.h"
#include "shared/base/log.h"
#include "shared/store/blob_store.h"

namespace wharf {
namespace {


class FsBlobStore final : public BlobStore {
 public:
  explicit FsBlobStore(std::string root) : root_(std::move(root)) {}

  std::string blobPath(const Digest& d) const {
    return root_ + "/blobs/" + std::string(d.algorithmName()) + "/" + d.hex().substr(0, 2) + "/" + d.hex();
  }
  std::string uploadPath(const std::string& id) const { return root_ + "/uploads/" + id; }

  Result<BlobFile> open(const Digest& digest) override {
    int fd = ::open(blobPath(digest).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return Status(Code::kBlobUnknown, "blob unknown to registry");
      return errnoStatus("open blob", errno);
    }
    auto holder = std::make_shared<Fd>(fd);
    struct stat st;
    if (::fstat(fd, &st) != 0) return errnoStatus("stat blob", errno);
    return BlobFile{std::move(holder), static_cast<uint64_t>(st.st_size)};
  }

  bool hasFiles() const override { return true; }
  std::string describe() const override { return "file://" + root_; }

  Status read(const Digest& digest, uint64_t offset, char* out, size_t len) override {
    auto f = open(digest);
    if (!f.isOk()) return f.status();
    if (offset + len > f->size) return Status(Code::kInvalidArgument, "read past the end of " + digest.str());
    return preadAll(f->fd->get(), out, len, offset);
  }

  std::optional<std::string> directUrl(const Digest&, int64_t) override { return std::nullopt; }

  Status flushUpload(const std::string&) override { return Status::ok(); }

  Result<uint64_t> size(const Digest& digest) override {
    struct stat st;
    if (::stat(blobPath(digest).c_str(), &st) != 0) {
      if (errno == ENOENT) return Status(Code::kBlobUnknown, "blob unknown to registry");
      return errnoStatus("stat blob", errno);
    }
    return static_cast<uint64_t>(st.st_size);
  }

  Result<Digest> put(std::string_view data, DigestAlgorithm algorithm) override {
    Digest d = digestOf(data, algorithm);
    std::string path = blobPath(d);
    if (::access(path.c_str(), F_OK) == 0) return d;
    std::string tmp = root_ + "/tmp/" + newUuid();
    {
      Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
      if (!fd.valid()) return errnoStatus("create " + tmp, errno);
      Status st = writeAll(fd.get(), data.data(), data.size());
      if (st.isOk() && ::fsync(fd.get()) != 0) st = errnoStatus("fsync blob", errno);
      if (!st.isOk()) {
        ::unlink(tmp.c_str());
        return st;
      }
    }
    Status st = install(tmp, d);
    if (!st.isOk()) {
      ::unlink(tmp.c_str());
      return st;
    }
    return d;
  }

  Status remove(const Digest& digest, bool sync_dir) override {
    std::string path = blobPath(digest);
    if (::unlink(path.c_str()) != 0) {
      if (errno == ENOENT) return Status(Code::kBlobUnknown, "blob unknown to registry");
      return errnoStatus("unlink blob", errno);
    }
    return sync_dir ? fsyncDir(dirName(path)) : Status::ok();
  }

  void forEachBlob(const std::function<bool(const Digest&, uint64_t, int64_t)>& fn) override {
    for (const char* algo : {"sha256", "sha512"}) {
      std::string top = root_ + "/blobs/" + algo;
      DIR* d1 = ::opendir(top.c_str());
      if (d1 == nullptr) continue;
      bool go_on = true;
      while (dirent* e1 = ::readdir(d1)) {
        if (e1->d_name[0] == '.') continue;
        std::string sub = top + "/" + e1->d_name;
        DIR* d2 = ::opendir(sub.c_str());
        if (d2 == nullptr) continue;
        while (dirent* e2 = ::readdir(d2)) {
          if (e2->d_name[0] == '.') continue;
          auto digest = Digest::parse(std::string(algo) + ":" + e2->d_name);
          struct stat st;
          if (!digest.isOk() || ::stat((sub + "/" + e2->d_name).c_str(), &st) != 0) continue;
          int64_t mtime = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
          if (!fn(*digest, static_cast<uint64_t>(st.st_size), mtime)) {
            go_on = false;
            break;
          }
        }
        ::closedir(d2);
        if (!go_on) break;
      }
      ::closedir(d1);
      if (!go_on) return;
    }
  }

  Status createUpload(const std::string& id) override {
    Fd fd(::open(uploadPath(id).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd.valid()) return errnoStatus("create upload", errno);
    return Status::ok();
  }

  Result<uint64_t> uploadSize(const std::string& id) override {
    struct stat st;
    if (::stat(uploadPath(id).c_str(), &st) != 0) {
      if (errno == ENOENT) return Status(Code::kBlobUploadUnknown, "blob upload unknown to registry");
      return errnoStatus("stat upload", errno);
    }
    return static_cast<uint64_t>(st.st_size);
  }

  Result<uint64_t> resumeUpload(const std::string& id) override { return uploadSize(id); }

  Status append(const std::string& id, uint64_t offset, std::string_view data) override {
    Fd fd(::open(uploadPath(id).c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd.valid()) {
      if (errno == ENOENT) return Status(Code::kBlobUploadUnknown, "blob upload unknown to registry");
      return errnoStatus("open upload", errno);
    }
    const char* p = data.data();
    size_t left = data.size();
    uint64_t off = offset;
    while (left > 0) {
      ssize_t w = ::pwrite(fd.get(), p, left, static_cast<off_t>(off));
      if (w < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        // No partial piece stays behind: the upload keeps exactly the bytes acknowledged.
        if (::ftruncate(fd.get(), static_cast<off_t>(offset)) != 0) {
          logWarn("cannot truncate an upload after a failed write", {{"upload", id}, {"error", std::strerror(errno)}});
        }
        return errnoStatus("write upload", err);
      }
      p += w;
      left -= static_cast<size_t>(w);
      off += static_cast<uint64_t>(w);
    }
    // Start write-back of what was just written; commit's fsync then waits for less.
    ::sync_file_range(fd.get(), static_cast<off_t>(offset), static_cast<off_t>(data.size()), SYNC_FILE_RANGE_WRITE);
    return Status::ok();
  }

  Result<uint64_t> commitUpload(const std::string& id, const Digest& expected, const Digest* known) override {
    std::string path = uploadPath(id);
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
      if (errno == ENOENT) return Status(Code::kBlobUploadUnknown, "blob upload unknown to registry");
      return errnoStatus("open upload", errno);
    }
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return errnoStatus("stat upload", errno);
    uint64_t size = static_cast<uint64_t>(st.st_size);
    Digest actual;
    if (known != nullptr && known->algorithm() == expected.algorithm()) {
      actual = *known;
    } else {
      auto d = digestOfFile(fd.get(), expected.algorithm(), &size);
      if (!d.isOk()) return d.status();
      actual = *d;
    }
    if (!(actual == expected)) {
      return Status(Code::kDigestInvalid, "provided digest did not match uploaded content (content is " + actual.str() + ")");
    }
    if (::fdatasync(fd.get()) != 0) return errnoStatus("fsync upload", errno);
    fd.reset();
    WHARF_RETURN_IF_ERROR(install(path, expected));
    return size;
  }

  Status removeUpload(const std::string& id) override {
    if (::unlink(uploadPath(id).c_str()) != 0 && errno != ENOENT) return errnoStatus("remove upload", errno);
    return Status::ok();
  }

  std::vector<std::pair<std::string, int64_t>> listUploads() override {
    std::vector<std::pair<std::string, int64_t>> out;
    std::string dir = root_ + "/uploads";
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return out;
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (!isUuid(name)) continue;
      struct stat st;
      if (::stat((dir + "/" + name).c_str(), &st) == 0) {
        out.emplace_back(name, static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000);
      }
    }
    ::closedir(d);
    return out;
  }

  Status init() {
    // The layout is checked before anything is created: a refused store is left as it was.
    std::string layout_path = root_ + "/layout";
    std::string layout;
    Status st = readFile(layout_path, &layout);
    bool fresh = st.code() == Code::kNotFound;
    if (!fresh) {
      WHARF_RETURN_IF_ERROR(st);
      while (!layout.empty() && layout.back() == '\n') layout.pop_back();
      if (layout != kBlobStoreLayoutTag) {
        return Status(Code::kCorruption, "blob store at " + root_ + " has layout \"" + layout + "\", expected \"" +
                                             kBlobStoreLayoutTag + "\"");
      }
    }
    // Every fan-out directory exists up front, so committing a blob never creates one.
    static const char* kHex = "0123456789abcdef";
    for (const char* algo : {"sha256", "sha512"}) {
      std::string base = root_ + "/blobs/" + algo;
      for (int i = 0; i < 256; ++i) {
        WHARF_RETURN_IF_ERROR(makeDirs(base + "/" + kHex[i >> 4] + kHex[i & 15]));
      }
      WHARF_RETURN_IF_ERROR(fsyncDir(base));
    }
    WHARF_RETURN_IF_ERROR(fsyncDir(root_ + "/blobs"));
    WHARF_RETURN_IF_ERROR(makeDirs(root_ + "/uploads"));
    // Whole-blob writes that never reached their rename.
    WHARF_RETURN_IF_ERROR(removeTree(root_ + "/tmp"));
    WHARF_RETURN_IF_ERROR(makeDirs(root_ + "/tmp"));
    if (fresh) return writeFileDurable(layout_path, std::string(kBlobStoreLayoutTag) + "\n");
    return Status::ok();
  }

 private:
  // Renames a synced file to the blob's path and syncs the directories it touched.
  Status install(const std::string& from, const Digest& d) {
    std::string path = blobPath(d);
    if (::rename(from.c_str(), path.c_str()) != 0) return errnoStatus("rename into blob store", errno);
    return fsyncDir(dirName(path));
  }

  std::string root_;
};

}  // namespace

Result<std::unique_ptr<BlobStore>> openFsBlobStore(const std::string& root) {
  auto store = std::make_unique<FsBlobStore>(root);
  WHARF_RETURN_IF_ERROR(store->init());
  return std::unique_ptr<BlobStore>(std::move(store));
}

}  // namespace wharf
