#include "shared/base/ids.h"

#include <sys/random.h>

#include <atomic>
#include <cerrno>
#include <cstdio>

#include "shared/base/status.h"

namespace wharf {

std::string randomBytes(size_t n) {
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(out.data() + got, n - got, 0);
    if (r < 0) {
      WHARF_ASSERT(errno == EINTR);
      continue;
    }
    got += static_cast<size_t>(r);
  }
  return out;
}

std::string newRequestId() {
  static const std::string prefix = [] {
    std::string b = randomBytes(4);
    char hex[9];
    std::snprintf(hex, sizeof hex, "%02x%02x%02x%02x", static_cast<unsigned char>(b[0]),
                  static_cast<unsigned char>(b[1]), static_cast<unsigned char>(b[2]),
                  static_cast<unsigned char>(b[3]));
    return std::string(hex) + "-";
  }();
  static std::atomic<uint64_t> next{1};
  char seq[20];
  std::snprintf(seq, sizeof seq, "%llx", static_cast<unsigned long long>(next.fetch_add(1, std::memory_order_relaxed)));
  return prefix + seq;
}

std::string newUuid() {
  std::string b = randomBytes(16);
  b[6] = static_cast<char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<char>((b[8] & 0x3f) | 0x80);
  char out[37];
  const auto* u = reinterpret_cast<const unsigned char*>(b.data());
  std::snprintf(out, sizeof out, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
                u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
  return out;
}

bool isUuid(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

}  // namespace wharf
