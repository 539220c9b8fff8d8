#include "shared/http/url.h"

namespace wharf {
namespace {
int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

Status splitTarget(std::string_view target, std::string* path, std::string* query) {
  if (target.empty() || target[0] != '/') return Status(Code::kInvalidArgument, "request-target must be a path");
  auto q = target.find('?');
  std::string_view raw = target.substr(0, q);
  *query = q == std::string_view::npos ? "" : std::string(target.substr(q + 1));
  auto f = query->find('#');
  if (f != std::string::npos) query->resize(f);
  path->clear();
  path->reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '%') {
      if (i + 2 >= raw.size()) return Status(Code::kInvalidArgument, "bad percent escape");
      int hi = hexValue(raw[i + 1]);
      int lo = hexValue(raw[i + 2]);
      if (hi < 0 || lo < 0) return Status(Code::kInvalidArgument, "bad percent escape");
      char d = static_cast<char>(hi * 16 + lo);
      if (d == '/' || d == '\\' || d == '\0' || static_cast<unsigned char>(d) < 0x20 || d == 0x7f) {
        return Status(Code::kInvalidArgument, "encoded separator or control character in path");
      }
      path->push_back(d);
      i += 2;
    } else {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '\\' || c == '#') {
        return Status(Code::kInvalidArgument, "invalid character in path");
      }
      path->push_back(c);
    }
  }
  // Segment checks on the decoded path.
  size_t start = 1;
  while (start <= path->size()) {
    size_t end = path->find('/', start);
    if (end == std::string::npos) end = path->size();
    std::string_view seg(path->data() + start, end - start);
    if (seg == "." || seg == "..") return Status(Code::kInvalidArgument, "dot segment in path");
    if (seg.empty() && end != path->size()) return Status(Code::kInvalidArgument, "empty segment in path");
    start = end + 1;
  }
  return Status::ok();
}

std::string percentDecode(std::string_view s, bool plus_as_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int hi = hexValue(s[i + 1]);
      int lo = hexValue(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_as_space && s[i] == '+' ? ' ' : s[i]);
  }
  return out;
}

std::string percentEncode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> parseQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t start = 0;
  while (start < query.size()) {
    size_t end = query.find('&', start);
    if (end == std::string_view::npos) end = query.size();
    std::string_view kv = query.substr(start, end - start);
    if (!kv.empty()) {
      auto eq = kv.find('=');
      if (eq == std::string_view::npos) {
        out.emplace_back(percentDecode(kv, true), "");
      } else {
        out.emplace_back(percentDecode(kv.substr(0, eq), true), percentDecode(kv.substr(eq + 1), true));
      }
    }
    start = end + 1;
  }
  return out;
}

}  // namespace wharf
