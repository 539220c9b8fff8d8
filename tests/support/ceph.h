// A real S3 store for tests of the S3 blob backend: a single-node Ceph cluster (one
// monitor, one memstore OSD, radosgw) from Debian's packages, started in a temporary
// directory by tests/support/micro-ceph.sh (about 3 s; ~130 MB of memory). One cluster
// per test binary; each caller takes a bucket of its own.
#pragma once

#include <string>

#include "tests/support/temp_dir.h"

namespace wharf::test {

class MicroCeph {
 public:
  // Whether ceph-mon, ceph-osd and radosgw are installed (tests skip otherwise).
  static bool available();
  // The binary's shared cluster, started at first use; throws std::runtime_error when it
  // cannot start.
  static MicroCeph& shared();

  MicroCeph();
  ~MicroCeph();
  MicroCeph(const MicroCeph&) = delete;
  MicroCeph& operator=(const MicroCeph&) = delete;

  const std::string& endpoint() const { return endpoint_; }  // http://127.0.0.1:<port>
  const std::string& accessKey() const { return access_key_; }
  const std::string& secretKey() const { return secret_key_; }
  // A file in the AWS shared-credentials format holding the test user's keys.
  const std::string& credentialsFile() const { return credentials_file_; }
  // A --blobs URL for a bucket no other caller uses (created by the blob store).
  // extra: more URL parameters ("part_size_mb=5").
  std::string freshBlobsUrl(const std::string& extra = "");
  // radosgw alone stops (the S3 store is down) and starts again on the same port.
  void stopRgw();
  void startRgw();

 private:
  TempDir temp_;
  std::string endpoint_;
  std::string access_key_;
  std::string secret_key_;
  std::string credentials_file_;
  int buckets_ = 0;
  bool running_ = false;
};

// radosgw stopped for a test ("the store away"), started again by back() or at the end of
// the scope, whichever comes first (so a failed check does not leave it down).
class RgwDown {
 public:
  explicit RgwDown(MicroCeph& ceph) : ceph_(ceph) { ceph_.stopRgw(); }
  ~RgwDown() { back(); }
  void back() {
    if (!back_) ceph_.startRgw();
    back_ = true;
  }

 private:
  MicroCeph& ceph_;
  bool back_ = false;
};

}  // namespace wharf::test
