#include "core/scan/versions.h"

#include <cstdint>
#include <string>
#include <vector>

namespace wharf {
namespace {

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
int sign(int v) { return (v > 0) - (v < 0); }

// Two runs of digits as numbers of any length: leading zeros dropped, then the longer
// is larger, then the first differing digit decides.
int compareDigits(std::string_view a, std::string_view b) {
  while (!a.empty() && a.front() == '0') a.remove_prefix(1);
  while (!b.empty() && b.front() == '0') b.remove_prefix(1);
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  return sign(a.compare(b));
}

// --- dpkg ---

// dpkg's weight of a character in a non-digit run: `~` first, then the end of the run,
// then letters, then everything else.
int dpkgOrder(char c) {
  if (isDigit(c)) return 0;
  if (isAlpha(c)) return static_cast<unsigned char>(c);
  if (c == '~') return -1;
  if (c != '\0') return static_cast<unsigned char>(c) + 256;
  return 0;
}

int dpkgCompareFragment(std::string_view a, std::string_view b) {
  size_t i = 0, j = 0;
  auto at = [](std::string_view s, size_t k) { return k < s.size() ? s[k] : '\0'; };
  while (i < a.size() || j < b.size()) {
    while ((i < a.size() && !isDigit(a[i])) || (j < b.size() && !isDigit(b[j]))) {
      int ac = dpkgOrder(at(a, i)), bc = dpkgOrder(at(b, j));
      if (ac != bc) return sign(ac - bc);
      if (i < a.size()) ++i;
      if (j < b.size()) ++j;
    }
    size_t i0 = i, j0 = j;
    while (i < a.size() && isDigit(a[i])) ++i;
    while (j < b.size() && isDigit(b[j])) ++j;
    if (int c = compareDigits(a.substr(i0, i - i0), b.substr(j0, j - j0)); c != 0) return c;
  }
  return 0;
}

struct DpkgVersion {
  std::string_view epoch, upstream, revision;
};

DpkgVersion splitDpkg(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  DpkgVersion out;
  if (size_t colon = v.find(':'); colon != std::string_view::npos) {
    out.epoch = v.substr(0, colon);
    v.remove_prefix(colon + 1);
  }
  if (size_t dash = v.rfind('-'); dash != std::string_view::npos) {
    out.revision = v.substr(dash + 1);
    v = v.substr(0, dash);
  }
  out.upstream = v;
  return out;
}

int compareDpkg(std::string_view a, std::string_view b) {
  DpkgVersion x = splitDpkg(a), y = splitDpkg(b);
  if (int c = compareDigits(x.epoch, y.epoch); c != 0) return c;
  if (int c = dpkgCompareFragment(x.upstream, y.upstream); c != 0) return c;
  return dpkgCompareFragment(x.revision, y.revision);
}

// --- rpm ---

bool isRpmAlnum(char c) { return isDigit(c) || isAlpha(c); }

int rpmvercmp(std::string_view a, std::string_view b) {
  if (a == b) return 0;
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    while (i < a.size() && !isRpmAlnum(a[i]) && a[i] != '~' && a[i] != '^') ++i;
    while (j < b.size() && !isRpmAlnum(b[j]) && b[j] != '~' && b[j] != '^') ++j;
    char ca = i < a.size() ? a[i] : '\0', cb = j < b.size() ? b[j] : '\0';
    // `~` sorts before everything, even the end.
    if (ca == '~' || cb == '~') {
      if (ca != '~') return 1;
      if (cb != '~') return -1;
      ++i, ++j;
      continue;
    }
    // `^` sorts after the end but before anything else.
    if (ca == '^' || cb == '^') {
      if (ca == '\0') return -1;
      if (cb == '\0') return 1;
      if (ca != '^') return 1;
      if (cb != '^') return -1;
      ++i, ++j;
      continue;
    }
    if (ca == '\0' || cb == '\0') break;
    size_t i0 = i, j0 = j;
    bool numeric = isDigit(ca);
    if (numeric) {
      while (i < a.size() && isDigit(a[i])) ++i;
      while (j < b.size() && isDigit(b[j])) ++j;
    } else {
      while (i < a.size() && isAlpha(a[i])) ++i;
      while (j < b.size() && isAlpha(b[j])) ++j;
    }
    // Segments of different kinds: a number is newer than letters.
    if (j == j0) return numeric ? 1 : -1;
    std::string_view sa = a.substr(i0, i - i0), sb = b.substr(j0, j - j0);
    int c = numeric ? compareDigits(sa, sb) : sign(sa.compare(sb));
    if (c != 0) return c;
  }
  bool a_end = i >= a.size(), b_end = j >= b.size();
  if (a_end && b_end) return 0;
  return a_end ? -1 : 1;
}

int compareRpm(std::string_view a, std::string_view b) {
  auto split = [](std::string_view v, std::string_view* epoch, std::string_view* version, std::string_view* release) {
    *epoch = {};
    *release = {};
    if (size_t colon = v.find(':'); colon != std::string_view::npos) {
      *epoch = v.substr(0, colon);
      v.remove_prefix(colon + 1);
    }
    if (size_t dash = v.rfind('-'); dash != std::string_view::npos) {
      *release = v.substr(dash + 1);
      v = v.substr(0, dash);
    }
    *version = v;
  };
  std::string_view ea, va, ra, eb, vb, rb;
  split(a, &ea, &va, &ra);
  split(b, &eb, &vb, &rb);
  if (int c = compareDigits(ea, eb); c != 0) return c;
  if (int c = rpmvercmp(va, vb); c != 0) return c;
  if (ra.empty() || rb.empty()) return 0;
  return rpmvercmp(ra, rb);
}

// --- apk ---

// The token kinds of apk-tools' version.c, in its order (the order matters: a version
// that goes on where the other ended is newer, unless it goes on with a pre-release).
enum ApkToken { kApkInvalid = -1, kApkDigitOrZero, kApkDigit, kApkLetter, kApkSuffix, kApkSuffixNo, kApkRevisionNo,
                kApkEnd };

bool isLower(char c) { return c >= 'a' && c <= 'z'; }

// What follows a token: the next token's kind, consuming its separator.
void apkNextToken(int* type, std::string_view* v) {
  int n = kApkInvalid;
  if (v->empty() || v->front() == '\0') {
    n = kApkEnd;
  } else if ((*type == kApkDigit || *type == kApkDigitOrZero) && isLower(v->front())) {
    n = kApkLetter;
  } else if (*type == kApkLetter && isDigit(v->front())) {
    n = kApkDigit;
  } else if (*type == kApkSuffix && isDigit(v->front())) {
    n = kApkSuffixNo;
  } else {
    if (v->front() == '.') {
      n = kApkDigitOrZero;
    } else if (v->front() == '_') {
      n = kApkSuffix;
    } else if (v->front() == '-' && v->size() > 1 && (*v)[1] == 'r') {
      n = kApkRevisionNo;
      v->remove_prefix(1);
    }
    v->remove_prefix(1);
  }
  if (n < *type && !((n == kApkDigitOrZero && *type == kApkDigit) || (n == kApkSuffix && *type == kApkSuffixNo) ||
                     (n == kApkDigit && *type == kApkLetter))) {
    n = kApkInvalid;
  }
  *type = n;
}

// The value of the token of kind *type at the front of v; moves *type to the next kind.
int64_t apkGetToken(int* type, std::string_view* v) {
  static constexpr std::string_view kPre[] = {"alpha", "beta", "pre", "rc"};
  static constexpr std::string_view kPost[] = {"cvs", "svn", "git", "hg", "p"};
  if (v->empty()) {
    *type = kApkEnd;
    return 0;
  }
  int64_t value = 0;
  size_t i = 0;
  int next = kApkInvalid;
  switch (*type) {
    case kApkDigitOrZero:
      if (v->front() == '0') {  // leading zeros: compared as a fraction, fewer zeros is newer
        while (i < v->size() && (*v)[i] == '0') ++i;
        next = kApkDigit;
        value = -static_cast<int64_t>(i);
        break;
      }
      [[fallthrough]];
    case kApkDigit:
    case kApkSuffixNo:
    case kApkRevisionNo:
      while (i < v->size() && isDigit((*v)[i])) {
        if (value < (int64_t{1} << 56)) value = value * 10 + ((*v)[i] - '0');  // saturates, never overflows
        ++i;
      }
      break;
    case kApkLetter:
      value = static_cast<unsigned char>((*v)[i++]);
      break;
    case kApkSuffix: {
      int64_t k = 0;
      for (; k < 4; ++k) {
        if (v->substr(0, kPre[k].size()) == kPre[k]) break;
      }
      if (k < 4) {
        i = kPre[k].size();
        next = kApkSuffixNo;
        value = k - 4;  // before the release
        break;
      }
      for (k = 0; k < 5; ++k) {
        if (v->substr(0, kPost[k].size()) == kPost[k]) break;
      }
      if (k < 5) {
        i = kPost[k].size();
        next = kApkSuffixNo;
        value = k;
        break;
      }
      *type = kApkInvalid;
      return -1;
    }
    default:
      *type = kApkInvalid;
      return -1;
  }
  v->remove_prefix(i);
  if (v->empty()) {
    *type = kApkEnd;
  } else if (next != kApkInvalid) {
    *type = next;
  } else {
    apkNextToken(type, v);
  }
  return value;
}

int compareApk(std::string_view a, std::string_view b) {
  int at = kApkDigit, bt = kApkDigit;
  int64_t av = 0, bv = 0;
  while (at == bt && at != kApkEnd && at != kApkInvalid && av == bv) {
    av = apkGetToken(&at, &a);
    bv = apkGetToken(&bt, &b);
  }
  if (av != bv) return av < bv ? -1 : 1;
  if (at == bt) return 0;
  // Equal so far: the one that goes on is newer, unless it goes on with a pre-release.
  int t = at;
  if (at == kApkSuffix && apkGetToken(&t, &a) < 0) return -1;
  t = bt;
  if (bt == kApkSuffix && apkGetToken(&t, &b) < 0) return 1;
  if (at > bt) return -1;
  if (bt > at) return 1;
  return 0;
}

// --- semver ---

struct Semver {
  std::string_view major, minor, patch;
  std::vector<std::string_view> pre;
};

bool isNumber(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!isDigit(c)) return false;
  }
  return true;
}

bool isIdentifier(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!isDigit(c) && !isAlpha(c) && c != '-') return false;
  }
  return true;
}

Result<Semver> parseSemver(std::string_view text, bool go) {
  std::string_view v = text;
  if (!v.empty() && v.front() == 'v') {
    v.remove_prefix(1);
  } else if (go) {
    return Status(Code::kInvalidArgument, "not a Go module version (no leading v): " + std::string(text));
  }
  auto bad = [&text](const std::string& why) {
    return Status(Code::kInvalidArgument, "not a semantic version (" + why + "): " + std::string(text.substr(0, 100)));
  };
  if (size_t plus = v.find('+'); plus != std::string_view::npos) {
    std::string_view build = v.substr(plus + 1);
    v = v.substr(0, plus);
    size_t start = 0;
    while (true) {  // build metadata: checked, then ignored
      size_t dot = build.find('.', start);
      if (!isIdentifier(build.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start))) {
        return bad("build metadata");
      }
      if (dot == std::string_view::npos) break;
      start = dot + 1;
    }
  }
  Semver out;
  std::string_view core = v;
  if (size_t dash = v.find('-'); dash != std::string_view::npos) {
    core = v.substr(0, dash);
    std::string_view pre = v.substr(dash + 1);
    size_t start = 0;
    while (true) {
      size_t dot = pre.find('.', start);
      std::string_view id = pre.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
      if (!isIdentifier(id)) return bad("pre-release");
      if (isNumber(id) && id.size() > 1 && id.front() == '0') return bad("leading zero in a pre-release number");
      out.pre.push_back(id);
      if (dot == std::string_view::npos) break;
      start = dot + 1;
    }
  }
  std::string_view* parts[] = {&out.major, &out.minor, &out.patch};
  size_t start = 0;
  for (int k = 0; k < 3; ++k) {
    size_t dot = core.find('.', start);
    if ((k < 2) == (dot == std::string_view::npos)) return bad("expected MAJOR.MINOR.PATCH");
    std::string_view n = core.substr(start, k < 2 ? dot - start : std::string_view::npos);
    if (!isNumber(n) || (n.size() > 1 && n.front() == '0')) return bad("MAJOR.MINOR.PATCH must be numbers");
    *parts[k] = n;
    start = dot + 1;
  }
  return out;
}

int compareSemver(const Semver& a, const Semver& b) {
  if (int c = compareDigits(a.major, b.major); c != 0) return c;
  if (int c = compareDigits(a.minor, b.minor); c != 0) return c;
  if (int c = compareDigits(a.patch, b.patch); c != 0) return c;
  // A pre-release comes before its release.
  if (a.pre.empty() || b.pre.empty()) return a.pre.empty() == b.pre.empty() ? 0 : (a.pre.empty() ? 1 : -1);
  for (size_t k = 0; k < a.pre.size() && k < b.pre.size(); ++k) {
    bool na = isNumber(a.pre[k]), nb = isNumber(b.pre[k]);
    int c = na && nb ? compareDigits(a.pre[k], b.pre[k])
            : na     ? -1  // numeric identifiers have lower precedence
            : nb     ? 1
                     : sign(a.pre[k].compare(b.pre[k]));
    if (c != 0) return c;
  }
  return a.pre.size() == b.pre.size() ? 0 : (a.pre.size() < b.pre.size() ? -1 : 1);
}

}  // namespace

const char* versionSchemeName(VersionScheme scheme) {
  switch (scheme) {
    case VersionScheme::kDpkg: return "dpkg";
    case VersionScheme::kRpm: return "rpm";
    case VersionScheme::kApk: return "apk";
    case VersionScheme::kSemver: return "semver";
    case VersionScheme::kGo: return "go";
  }
  return "?";
}

Result<VersionScheme> parseVersionScheme(std::string_view name) {
  for (VersionScheme s :
       {VersionScheme::kDpkg, VersionScheme::kRpm, VersionScheme::kApk, VersionScheme::kSemver, VersionScheme::kGo}) {
    if (name == versionSchemeName(s)) return s;
  }
  return Status(Code::kInvalidArgument, "unknown version scheme: " + std::string(name.substr(0, 50)));
}

Result<int> compareVersions(VersionScheme scheme, std::string_view a, std::string_view b) {
  switch (scheme) {
    case VersionScheme::kDpkg: return compareDpkg(a, b);
    case VersionScheme::kRpm: return compareRpm(a, b);
    case VersionScheme::kApk: return compareApk(a, b);
    case VersionScheme::kSemver:
    case VersionScheme::kGo: {
      bool go = scheme == VersionScheme::kGo;
      auto x = parseSemver(a, go);
      if (!x.isOk()) return x.status();
      auto y = parseSemver(b, go);
      if (!y.isOk()) return y.status();
      return compareSemver(*x, *y);
    }
  }
  return Status(Code::kInvalidArgument, "unknown version scheme");
}

}  // namespace wharf
