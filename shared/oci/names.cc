#include "shared/oci/names.h"

namespace wharf {
namespace {
bool alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// One path component: alnum+ (sep alnum+)* where sep is '.', '_', '__' or '-'+.
bool validComponent(std::string_view c) {
  if (c.empty() || !alnum(c.front()) || !alnum(c.back())) return false;
  size_t i = 0;
  while (i < c.size()) {
    if (alnum(c[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < c.size() && !alnum(c[j])) ++j;
    std::string_view sep = c.substr(i, j - i);
    bool ok = sep == "." || sep == "_" || sep == "__" || sep.find_first_not_of('-') == std::string_view::npos;
    if (!ok) return false;
    i = j;
  }
  return true;
}
}  // namespace

Status validateRepositoryName(std::string_view name) {
  if (name.empty()) return Status(Code::kNameInvalid, "repository name is empty");
  if (name.size() > kMaxRepositoryName) return Status(Code::kNameInvalid, "repository name is longer than 255 characters");
  size_t start = 0;
  for (;;) {
    size_t end = name.find('/', start);
    std::string_view comp = name.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (!validComponent(comp)) {
      return Status(Code::kNameInvalid, "invalid repository name component \"" + std::string(comp.substr(0, 64)) + "\"");
    }
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return Status::ok();
}

Status validateTag(std::string_view tag) {
  if (tag.empty() || tag.size() > kMaxTag) return Status(Code::kTagInvalid, "tag must be 1 to 128 characters");
  auto word = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; };
  if (!word(tag[0])) return Status(Code::kTagInvalid, "tag must start with a letter, digit or '_'");
  for (char c : tag) {
    if (!word(c) && c != '.' && c != '-') return Status(Code::kTagInvalid, "tag has an invalid character");
  }
  return Status::ok();
}

bool isDigestReference(std::string_view reference) { return reference.find(':') != std::string_view::npos; }

namespace {
bool isNamespacePattern(std::string_view p) { return p.size() >= 2 && p.substr(p.size() - 2) == "/*"; }
}  // namespace

Status validateRepositoryPattern(std::string_view pattern) {
  if (pattern == "*") return Status::ok();
  Status st = validateRepositoryName(isNamespacePattern(pattern) ? pattern.substr(0, pattern.size() - 2) : pattern);
  if (!st.isOk()) return Status(Code::kNameInvalid, "repository pattern \"" + std::string(pattern.substr(0, 64)) +
                                                        "\": expected \"*\", \"team/*\" or a repository name");
  return st;
}

bool repositoryPatternMatches(std::string_view pattern, std::string_view repo) {
  if (pattern == "*") return true;
  if (isNamespacePattern(pattern)) {
    std::string_view prefix = pattern.substr(0, pattern.size() - 1);  // "team/"
    return repo.size() > prefix.size() && repo.substr(0, prefix.size()) == prefix;
  }
  return pattern == repo;
}

bool anyRepositoryPatternMatches(const std::vector<std::string>& patterns, std::string_view repo) {
  for (const auto& p : patterns) {
    if (repositoryPatternMatches(p, repo)) return true;
  }
  return false;
}

}  // namespace wharf
