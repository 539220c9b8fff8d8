#include "core/scan/versions.h"

#include <algorithm>
#include <cstdint>
#include <initializer_list>
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

// --- pep440 ---

// Python's whitespace (str.isspace, what packaging strips around a version), in UTF-8:
// the length of the one at the front or the back of s, 0 when there is none.
size_t pySpaceLength(std::string_view s, bool back) {
  if (s.empty()) return 0;
  unsigned char c = back ? s.back() : s.front();
  if (c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f)) return 1;
  static constexpr std::string_view kWide[] = {
      "\u0085", "\u00a0", "\u1680", "\u2000", "\u2001", "\u2002", "\u2003", "\u2004", "\u2005", "\u2006",
      "\u2007", "\u2008", "\u2009", "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000"};
  for (std::string_view w : kWide) {
    if (s.size() >= w.size() && (back ? s.substr(s.size() - w.size()) : s.substr(0, w.size())) == w) return w.size();
  }
  return 0;
}

bool isPepSeparator(char c) { return c == '.' || c == '-' || c == '_'; }

// A version as packaging.version.Version parses it (lowercase text); numbers stay digit
// runs of any length, an absent number is empty (which compareDigits takes as 0).
struct Pep440 {
  std::string_view epoch;
  std::vector<std::string_view> release;
  int pre = -1;  // -1 none, then a < b < rc
  std::string_view pre_n;
  bool post = false;
  std::string_view post_n;
  bool dev = false;
  std::string_view dev_n;
  bool local = false;
  std::vector<std::string_view> local_parts;
};

// A small reader over the version: packaging's regex, one optional part at a time.
struct PepReader {
  std::string_view s;
  size_t i = 0;

  char at(size_t k) const { return i + k < s.size() ? s[i + k] : '\0'; }
  std::string_view digits() {
    size_t start = i;
    while (i < s.size() && isDigit(s[i])) ++i;
    return s.substr(start, i - start);
  }
  // The first of words (longest first where one begins another) that follows at i + skip.
  size_t word(size_t skip, std::initializer_list<std::string_view> words, int* which) const {
    int k = 0;
    for (std::string_view w : words) {
      if (s.substr(std::min(s.size(), i + skip), w.size()) == w) {
        *which = k;
        return w.size();
      }
      ++k;
    }
    return 0;
  }
  // A label's number: `[-_.]?[0-9]*`. The separator is taken even without a number, as
  // the regex's greedy `[-_.]?` takes it ("1.0a-" is 1.0a0, "1.0a-.post1" is valid).
  std::string_view labelNumber() {
    if (isPepSeparator(at(0))) ++i;
    return digits();
  }
  // `[-_.]?(word)` at i: true and past it when one of words follows.
  bool label(std::initializer_list<std::string_view> words, int* which) {
    size_t skip = isPepSeparator(at(0)) ? 1 : 0;
    size_t n = word(skip, words, which);
    if (n == 0) return false;
    i += skip + n;
    return true;
  }
};

Result<Pep440> parsePep440(std::string_view text) {
  auto bad = [&text] {
    return Status(Code::kInvalidArgument, "not a PEP 440 version: " + std::string(text.substr(0, 100)));
  };
  std::string_view v = text;
  while (size_t n = pySpaceLength(v, false)) v.remove_prefix(n);
  while (size_t n = pySpaceLength(v, true)) v.remove_suffix(n);
  PepReader r{v};
  Pep440 out;
  if (r.at(0) == 'v') ++r.i;
  std::string_view first = r.digits();
  if (first.empty()) return bad();
  if (r.at(0) == '!') {
    out.epoch = first;
    ++r.i;
    first = r.digits();
    if (first.empty()) return bad();
  }
  out.release.push_back(first);
  while (r.at(0) == '.' && isDigit(r.at(1))) {
    ++r.i;
    out.release.push_back(r.digits());
  }
  // Each label is the longest spelling that follows: a shorter one ("a" of "alpha", "pre"
  // of "preview", "r" of "rev") would leave letters that nothing after it can take.
  if (int k; r.label({"preview", "alpha", "beta", "pre", "rc", "a", "b", "c"}, &k)) {
    static constexpr int kPreKind[] = {2, 0, 1, 2, 2, 0, 1, 2};
    out.pre = kPreKind[k];
    out.pre_n = r.labelNumber();
  }
  if (r.at(0) == '-' && isDigit(r.at(1))) {  // 1.0-1 is 1.0.post1
    ++r.i;
    out.post = true;
    out.post_n = r.digits();
  } else if (int k; r.label({"post", "rev", "r"}, &k)) {
    out.post = true;
    out.post_n = r.labelNumber();
  }
  if (int k; r.label({"dev"}, &k)) {
    out.dev = true;
    out.dev_n = r.labelNumber();
  }
  if (r.at(0) == '+') {  // local: [a-z0-9]+ separated by single [-_.]
    ++r.i;
    out.local = true;
    while (true) {
      size_t start = r.i;
      while (r.i < v.size() && (isDigit(v[r.i]) || isLower(v[r.i]))) ++r.i;
      if (r.i == start) return bad();
      out.local_parts.push_back(v.substr(start, r.i - start));
      if (!isPepSeparator(r.at(0))) break;
      ++r.i;
    }
  }
  if (r.i != v.size()) return bad();
  return out;
}

// packaging's _cmpkey: epoch, release (trailing zeros insignificant), then the pre-release
// (a version with only a dev part sorts before every pre-release of its release: 1.0.dev0
// < 1.0a1), the post-release (none first), the dev release (none last), the local version
// (none first; segment by segment, numbers after words, a longer one newer).
int comparePep440(const Pep440& a, const Pep440& b) {
  if (int c = compareDigits(a.epoch, b.epoch); c != 0) return c;
  for (size_t k = 0; k < a.release.size() || k < b.release.size(); ++k) {
    std::string_view x = k < a.release.size() ? a.release[k] : "", y = k < b.release.size() ? b.release[k] : "";
    if (int c = compareDigits(x, y); c != 0) return c;
  }
  auto preRank = [](const Pep440& v) { return v.pre >= 0 ? 1 : (!v.post && v.dev ? 0 : 2); };
  if (int c = preRank(a) - preRank(b); c != 0) return sign(c);
  if (a.pre >= 0) {
    if (a.pre != b.pre) return a.pre < b.pre ? -1 : 1;
    if (int c = compareDigits(a.pre_n, b.pre_n); c != 0) return c;
  }
  if (a.post != b.post) return a.post ? 1 : -1;
  if (int c = compareDigits(a.post_n, b.post_n); c != 0) return c;
  if (a.dev != b.dev) return a.dev ? -1 : 1;
  if (int c = compareDigits(a.dev_n, b.dev_n); c != 0) return c;
  if (a.local != b.local) return a.local ? 1 : -1;
  for (size_t k = 0; k < a.local_parts.size() && k < b.local_parts.size(); ++k) {
    std::string_view x = a.local_parts[k], y = b.local_parts[k];
    bool nx = isNumber(x), ny = isNumber(y);
    int c = nx && ny ? compareDigits(x, y) : nx ? 1 : ny ? -1 : sign(x.compare(y));
    if (c != 0) return c;
  }
  return sign(static_cast<int>(a.local_parts.size()) - static_cast<int>(b.local_parts.size()));
}

// --- maven ---

// Maven 4 refuses longer versions; here the bound also keeps the nesting (and with it the
// recursion of the comparison) shallow for whatever a package claims.
constexpr size_t kMaxMavenVersion = 256;

// An item of ComparableVersion (Maven 3.9): a number, a qualifier, a qualifier with its
// number ("rc1", "alpha-2"), or a list, which a `-` (or a letter after digits) opens.
struct MavenItem {
  enum class Kind { kNumber, kString, kCombination, kList };
  Kind kind = Kind::kList;
  std::string_view number;     // kNumber, kCombination
  std::string_view qualifier;  // kString, kCombination: lowercase, aliases applied
  std::vector<MavenItem> items;
};

// Maven keeps numbers as int, long or BigInteger by their length without leading zeros, and
// any int is smaller than any long: a run of zeros keeps its length, so "0000000000" is a
// long zero, larger than the int 0 (a quirk of 3.9 that only shows before another item).
int mavenNumberClass(std::string_view digits) {
  size_t nz = digits.find_first_not_of('0');
  size_t len = nz == std::string_view::npos ? std::max<size_t>(digits.size(), 1) : digits.size() - nz;
  return len <= 9 ? 0 : len <= 18 ? 1 : 2;
}

int compareMavenNumbers(std::string_view a, std::string_view b) {
  if (int c = mavenNumberClass(a) - mavenNumberClass(b); c != 0) return sign(c);
  return compareDigits(a, b);
}

// Known qualifiers in their order, the release's own spellings in the place of "", and any
// other word after them all, alphabetically.
int compareQualifiers(std::string_view a, std::string_view b) {
  auto rank = [](std::string_view q) {
    static constexpr std::string_view kKnown[] = {"alpha", "beta", "milestone", "rc", "snapshot", "", "sp"};
    if (q == "ga" || q == "final" || q == "release") return 5;
    for (int k = 0; k < 7; ++k) {
      if (q == kKnown[k]) return k;
    }
    return 7;
  };
  int ra = rank(a), rb = rank(b);
  if (ra != rb) return ra < rb ? -1 : 1;
  return ra == 7 ? sign(a.compare(b)) : 0;
}

std::string_view mavenQualifier(std::string_view q, bool followed_by_digit) {
  if (followed_by_digit && q == "a") return "alpha";  // 1a1 is 1-alpha-1, but 1-a a word
  if (followed_by_digit && q == "b") return "beta";
  if (followed_by_digit && q == "m") return "milestone";
  if (q == "cr") return "rc";
  return q;
}

bool mavenIsNull(const MavenItem& item) {
  switch (item.kind) {
    case MavenItem::Kind::kNumber: return compareDigits(item.number, "") == 0;
    case MavenItem::Kind::kString: return item.qualifier.empty();
    case MavenItem::Kind::kCombination: return false;
    case MavenItem::Kind::kList: return item.items.empty();
  }
  return false;
}

// Maven's item.compareTo(other), other null when the other list has ended. Items of
// different kinds order as number > list > combination and qualifier; a qualifier and a
// combination with the same word: the combination is newer.
int compareMavenItems(const MavenItem& a, const MavenItem* b) {
  using Kind = MavenItem::Kind;
  switch (a.kind) {
    case Kind::kNumber:
      if (b == nullptr) return mavenIsNull(a) ? 0 : 1;
      return b->kind == Kind::kNumber ? compareMavenNumbers(a.number, b->number) : 1;
    case Kind::kString:
    case Kind::kCombination: {
      if (b == nullptr) return compareQualifiers(a.qualifier, "");  // 1-rc < 1 < 1-sp
      if (b->kind == Kind::kNumber || b->kind == Kind::kList) return -1;
      int c = compareQualifiers(a.qualifier, b->qualifier);
      if (c != 0 || a.kind != b->kind) return c != 0 ? c : (a.kind == Kind::kCombination ? 1 : -1);
      return a.kind == Kind::kCombination ? compareMavenNumbers(a.number, b->number) : 0;
    }
    case Kind::kList:
      if (b == nullptr) {
        for (const MavenItem& item : a.items) {
          if (int c = compareMavenItems(item, nullptr); c != 0) return c;
        }
        return 0;
      }
      if (b->kind != Kind::kList) return b->kind == Kind::kNumber ? -1 : 1;
      for (size_t k = 0; k < a.items.size() || k < b->items.size(); ++k) {
        const MavenItem* x = k < a.items.size() ? &a.items[k] : nullptr;
        const MavenItem* y = k < b->items.size() ? &b->items[k] : nullptr;
        int c = x != nullptr ? compareMavenItems(*x, y) : -compareMavenItems(*y, nullptr);
        if (c != 0) return c;
      }
      return 0;
  }
  return 0;
}

// A text item: a number, a word, or (combination) a word and its number with a `-` between
// them dropped.
MavenItem mavenItem(std::string_view text, bool digits, bool combination) {
  MavenItem item;
  if (combination) {
    size_t d = 0;
    while (d < text.size() && !isDigit(text[d])) ++d;
    item.kind = MavenItem::Kind::kCombination;
    std::string_view word = text.substr(0, d);
    if (!word.empty() && word.back() == '-') word.remove_suffix(1);
    item.qualifier = mavenQualifier(word, true);
    item.number = text.substr(d);
  } else if (digits) {
    item.kind = MavenItem::Kind::kNumber;
    item.number = text;
  } else {
    item.kind = MavenItem::Kind::kString;
    item.qualifier = mavenQualifier(text, false);
  }
  return item;
}

// ListItem.normalize: null items go when last, or when a qualifier (or a list that starts
// with one) follows them, so that 1.0 == 1 and 1.0-a == 1-a but 1.0.1 keeps its 0.
void normalizeMaven(std::vector<MavenItem>* items) {
  for (size_t k = items->size(); k-- > 0;) {
    if (!mavenIsNull((*items)[k])) continue;
    bool remove = k + 1 == items->size();
    if (!remove) {
      const MavenItem& next = (*items)[k + 1];
      remove = next.kind == MavenItem::Kind::kString ||
               (next.kind == MavenItem::Kind::kList && !next.items.empty() &&
                (next.items[0].kind == MavenItem::Kind::kString ||
                 next.items[0].kind == MavenItem::Kind::kCombination));
    }
    if (remove) items->erase(items->begin() + static_cast<std::ptrdiff_t>(k));
  }
}

// ComparableVersion.parseVersion over lowercase text. Items are only ever added to the
// innermost list, so the lists form a chain and the pointers to them stay valid.
MavenItem parseMaven(std::string_view v) {
  MavenItem root;
  std::vector<std::vector<MavenItem>*> chain = {&root.items};
  auto open = [&chain] {  // a new list, as the last item of the current one
    chain.back()->emplace_back();
    chain.push_back(&chain.back()->back().items);
  };
  bool digits = false, combination = false;
  size_t start = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    char c = v[i];
    if (c == '.' || c == '-') {
      if (i == start) {
        chain.back()->push_back(mavenItem("0", true, false));
      } else if (c == '-' && !digits && i + 1 < v.size() && isDigit(v[i + 1])) {
        combination = true;  // "rc-1" is "rc1": the word keeps its number
        continue;
      } else {
        chain.back()->push_back(mavenItem(v.substr(start, i - start), digits, combination));
      }
      start = i + 1;
      if (c == '-' && !chain.back()->empty()) open();
      combination = false;
    } else if (isDigit(c)) {
      if (!digits && i > start) {  // a number after a word: the two are one item
        combination = true;
        if (!chain.back()->empty()) open();
      }
      digits = true;
    } else {
      if (digits && i > start) {  // a word after a number starts a list
        chain.back()->push_back(mavenItem(v.substr(start, i - start), true, combination));
        start = i;
        open();
        combination = false;
      }
      digits = false;
    }
  }
  if (v.size() > start) {
    if (!digits && !chain.back()->empty()) open();  // 1.0.x is 1.0-x: a final word is a qualifier
    chain.back()->push_back(mavenItem(v.substr(start), digits, combination));
  }
  for (size_t k = chain.size(); k-- > 0;) normalizeMaven(chain[k]);
  return root;
}

std::string asciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

const char* versionSchemeName(VersionScheme scheme) {
  switch (scheme) {
    case VersionScheme::kDpkg: return "dpkg";
    case VersionScheme::kRpm: return "rpm";
    case VersionScheme::kApk: return "apk";
    case VersionScheme::kSemver: return "semver";
    case VersionScheme::kGo: return "go";
    case VersionScheme::kPep440: return "pep440";
    case VersionScheme::kMaven: return "maven";
  }
  return "?";
}

Result<VersionScheme> parseVersionScheme(std::string_view name) {
  for (VersionScheme s : {VersionScheme::kDpkg, VersionScheme::kRpm, VersionScheme::kApk, VersionScheme::kSemver,
                          VersionScheme::kGo, VersionScheme::kPep440, VersionScheme::kMaven}) {
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
    case VersionScheme::kPep440: {
      std::string la = asciiLower(a), lb = asciiLower(b);
      auto x = parsePep440(la);
      if (!x.isOk()) return x.status();
      auto y = parsePep440(lb);
      if (!y.isOk()) return y.status();
      return comparePep440(*x, *y);
    }
    case VersionScheme::kMaven: {
      for (std::string_view v : {a, b}) {
        if (v.size() > kMaxMavenVersion) {
          return Status(Code::kInvalidArgument, "a Maven version longer than 256 characters: " +
                                                    std::string(v.substr(0, 100)) + "...");
        }
      }
      std::string la = asciiLower(a), lb = asciiLower(b);
      MavenItem x = parseMaven(la), y = parseMaven(lb);
      return compareMavenItems(x, &y);
    }
  }
  return Status(Code::kInvalidArgument, "unknown version scheme");
}

}  // namespace wharf
