#include "shared/fleet/prefetch_policy.h"

#include <algorithm>

#include "shared/base/json_body.h"
#include "shared/config/config.h"
#include "shared/oci/names.h"

namespace wharf {
namespace {

constexpr int64_t kDayMs = 86'400'000;

// "HH:MM" -> minutes after midnight.
std::optional<int> parseClock(std::string_view s) {
  if (s.size() != 5 || s[2] != ':') return std::nullopt;
  for (size_t i : {0, 1, 3, 4}) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
  }
  int h = (s[0] - '0') * 10 + (s[1] - '0');
  int m = (s[3] - '0') * 10 + (s[4] - '0');
  if (h > 23 || m > 59) return std::nullopt;
  return h * 60 + m;
}

}  // namespace

bool tagGlobMatches(std::string_view pattern, std::string_view tag) {
  // Iterative glob with backtracking to the last '*'.
  size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < tag.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.size() && pattern[p] == tag[t]) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

Result<PrefetchPolicy> PrefetchPolicy::fromJson(const nlohmann::json& j) {
  PrefetchPolicy out;
  if (j.is_null()) return out;
  if (!j.is_object()) return Status(Code::kInvalidArgument, "prefetch: expected an object");
  JsonBody b(j, "prefetch");
  if (auto rules = b.rawArray("rules")) {
    if (rules->size() > 100) {
      b.fail("rules", "expected at most 100 rules");
    } else {
      for (const auto& r : *rules) {
        if (!r.is_object()) {
          b.fail("rules", "expected objects {\"repository\",\"tag\"}");
          break;
        }
        JsonBody rule(r, "prefetch.rules[]");
        PrefetchRule pr;
        pr.repository = rule.string("repository", {.required = true, .max = 256}).value_or("");
        pr.tag = rule.string("tag", {.max = 128}).value_or("*");
        if (Status st = rule.finish(); !st.isOk()) return st;
        if (Status st = validateRepositoryPattern(pr.repository); !st.isOk()) {
          return Status(Code::kInvalidArgument, "prefetch.rules[].repository: " + st.message());
        }
        if (pr.tag.empty()) return Status(Code::kInvalidArgument, "prefetch.rules[].tag: empty");
        for (char c : pr.tag) {
          bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '.' || c == '-' || c == '*';
          if (!ok) return Status(Code::kInvalidArgument, "prefetch.rules[].tag: tag characters and '*' only");
        }
        out.rules.push_back(std::move(pr));
      }
    }
  }
  out.recent_days = static_cast<int>(b.integer("recent_days", {.min = 0, .max = 365}).value_or(out.recent_days));
  out.min_pulls = static_cast<int>(b.integer("min_pulls", {.min = 0, .max = 1000}).value_or(out.min_pulls));
  if (auto rate = b.string("rate", {.max = 32})) {
    auto n = parseSize(*rate);
    if (!n.isOk() || *n < 1024) {
      b.fail("rate", "expected bytes per second of at least 1k, such as \"512k\" or \"10m\"");
    } else {
      out.rate = static_cast<uint64_t>(*n);
    }
  }
  if (auto window = b.string("window", {.max = 16})) {
    auto dash = window->find('-');
    auto start = dash == std::string::npos ? std::nullopt : parseClock(std::string_view(*window).substr(0, dash));
    auto end = dash == std::string::npos ? std::nullopt : parseClock(std::string_view(*window).substr(dash + 1));
    if (!start || !end || *start == *end) {
      b.fail("window", "expected \"HH:MM-HH:MM\" (UTC, two different times)");
    } else {
      out.window = std::pair{*start, *end};
    }
  }
  if (auto platforms = b.strings("platforms", {.max_items = 16, .max = 64})) {
    for (const auto& p : *platforms) {
      size_t slashes = static_cast<size_t>(std::count(p.begin(), p.end(), '/'));
      if (slashes < 1 || slashes > 2 || p.front() == '/' || p.back() == '/' || p.find("//") != std::string::npos) {
        b.fail("platforms", "expected \"os/architecture\" or \"os/architecture/variant\"");
        break;
      }
    }
    out.platforms = *platforms;
  }
  WHARF_RETURN_IF_ERROR(b.finish());
  return out;
}

bool PrefetchPolicy::wants(const std::string& repo, const std::string& tag, int64_t last_pull_ms, uint32_t pulls,
                           int64_t now_ms) const {
  for (const auto& r : rules) {
    if (repositoryPatternMatches(r.repository, repo) && tagGlobMatches(r.tag, tag)) return true;
  }
  return recent_days > 0 && min_pulls > 0 && pulls >= static_cast<uint32_t>(min_pulls) && last_pull_ms > 0 &&
         now_ms - last_pull_ms <= recent_days * kDayMs;
}

int64_t PrefetchPolicy::waitForWindow(int64_t now_ms) const {
  if (!window) return 0;
  int64_t in_day = ((now_ms % kDayMs) + kDayMs) % kDayMs;
  int64_t start = window->first * 60'000ll, end = window->second * 60'000ll;
  bool inside = start < end ? (in_day >= start && in_day < end) : (in_day >= start || in_day < end);
  if (inside) return 0;
  return in_day < start ? start - in_day : kDayMs - in_day + start;
}

bool PrefetchPolicy::wantsPlatform(const std::string& os, const std::string& arch, const std::string& variant) const {
  for (const auto& p : platforms) {
    if (p == os + "/" + arch || (!variant.empty() && p == os + "/" + arch + "/" + variant)) return true;
  }
  return false;
}

}  // namespace wharf
