#include "tests/support/ceph.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "tests/support/process.h"

namespace wharf::test {
namespace {

const std::string kScript = WHARF_MICRO_CEPH;

std::string field(const std::string& line, const std::string& name) {
  auto at = line.find(name + "=");
  if (at == std::string::npos) return "";
  auto start = at + name.size() + 1;
  auto end = line.find_first_of(" \n", start);
  return line.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

}  // namespace

bool MicroCeph::available() {
  for (const char* bin : {"/usr/bin/ceph-mon", "/usr/bin/ceph-osd", "/usr/bin/radosgw", "/usr/bin/radosgw-admin"}) {
    if (::access(bin, X_OK) != 0) return false;
  }
  return true;
}

MicroCeph& MicroCeph::shared() {
  static MicroCeph cluster;
  return cluster;
}

MicroCeph::MicroCeph() {
  if (!available()) throw std::runtime_error("Ceph is not installed (apt-get install ceph-mon ceph-osd radosgw)");
  // radosgw's port outside the OSD's range (6800-7300); the monitor's given too, so that
  // the script needs nothing to find one.
  int port = freePort(), mon_port = freePort();
  while (port >= 6800 && port <= 7300) port = freePort();
  while (mon_port == port || (mon_port >= 6800 && mon_port <= 7300)) mon_port = freePort();
  auto r = run({kScript, "start", temp_ / "c", std::to_string(port), std::to_string(mon_port)}, 180000);
  if (r.exit_code != 0) throw std::runtime_error("micro-ceph.sh start failed: " + r.output);
  // The last line: endpoint=... access_key=... secret_key=...
  std::string line = r.output.substr(r.output.rfind("endpoint="));
  endpoint_ = field(line, "endpoint");
  access_key_ = field(line, "access_key");
  secret_key_ = field(line, "secret_key");
  if (endpoint_.empty() || access_key_.empty() || secret_key_.empty()) {
    throw std::runtime_error("micro-ceph.sh printed no endpoint: " + r.output);
  }
  running_ = true;
  credentials_file_ = temp_ / "credentials";
  std::ofstream out(credentials_file_);
  out << "[default]\naws_access_key_id = " << access_key_ << "\naws_secret_access_key = " << secret_key_ << "\n";
}

MicroCeph::~MicroCeph() {
  if (running_) (void)run({kScript, "stop", temp_ / "c"}, 60000);
}

std::string MicroCeph::freshBlobsUrl(const std::string& extra) {
  std::string url = "s3://wharf-test-" + std::to_string(::getpid()) + "-" + std::to_string(++buckets_) +
                    "/registry?endpoint=" + endpoint_ + "&credentials=" + credentials_file_;
  if (!extra.empty()) url += "&" + extra;
  return url;
}

void MicroCeph::stopRgw() {
  auto r = run({kScript, "stop-rgw", temp_ / "c"}, 60000);
  if (r.exit_code != 0) throw std::runtime_error("micro-ceph.sh stop-rgw failed: " + r.output);
}

void MicroCeph::startRgw() {
  auto r = run({kScript, "start-rgw", temp_ / "c"}, 120000);
  if (r.exit_code != 0) throw std::runtime_error("micro-ceph.sh start-rgw failed: " + r.output);
}

}  // namespace wharf::test
