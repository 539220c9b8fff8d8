#include "core/jobs/cron.h"

#include "shared/base/strings.h"

#include <array>
#include <cctype>
#include <cstring>
#include <vector>

#include "shared/config/config.h"

namespace wharf {
namespace {

// The longest @every: next() adds it to a time in ms, which must not overflow.
constexpr int64_t kMaxEveryMs = 10000ll * 86'400'000;

struct Field {
  const char* name;
  unsigned min, max;
  const char* const* names;  // index 0 = value min (null: no names)
  size_t name_count;
};

const char* const kMonthNames[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                   "jul", "aug", "sep", "oct", "nov", "dec"};
const char* const kDowNames[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

const Field kFields[5] = {
    {"minute", 0, 59, nullptr, 0},
    {"hour", 0, 23, nullptr, 0},
    {"day-of-month", 1, 31, nullptr, 0},
    {"month", 1, 12, kMonthNames, 12},
    {"day-of-week", 0, 7, kDowNames, 7},
};

Status fieldError(const Field& f, const std::string& text, const std::string& why) {
  return Status(Code::kInvalidArgument, std::string("cron: ") + f.name + " \"" + text + "\": " + why);
}

std::string range(const Field& f) { return std::to_string(f.min) + "-" + std::to_string(f.max); }

// One value: digits, or a name where the field has them.
Status parseValue(const Field& f, const std::string& whole, const std::string& s, unsigned* out) {
  if (s.empty()) return fieldError(f, whole, "a value is missing");
  if (std::isdigit(static_cast<unsigned char>(s[0]))) {
    if (s.size() > 3 || s.find_first_not_of("0123456789") != std::string::npos) {
      return fieldError(f, whole, "\"" + s + "\" is not a number");
    }
    unsigned v = static_cast<unsigned>(std::stoul(s));
    if (v < f.min || v > f.max) return fieldError(f, whole, s + " is out of range " + range(f));
    *out = v;
    return Status::ok();
  }
  if (f.names != nullptr) {
    std::string lower;
    for (char c : s) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (size_t i = 0; i < f.name_count; ++i) {
      if (lower == f.names[i]) {
        *out = f.min + static_cast<unsigned>(i);
        return Status::ok();
      }
    }
    return fieldError(f, whole, "\"" + s + "\" is not a number or a name (" + f.names[0] + ".." +
                                    f.names[f.name_count - 1] + ")");
  }
  return fieldError(f, whole, "\"" + s + "\" is not a number");
}

// Parses one field into a bit set (bit v for value v).
Status parseField(const Field& f, const std::string& text, uint64_t* bits) {
  *bits = 0;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    std::string item = text.substr(start, comma - start);
    if (item.empty()) return fieldError(f, text, "empty list item");
    unsigned step = 1;
    std::string base = item;
    bool has_step = false;
    if (auto slash = item.find('/'); slash != std::string::npos) {
      std::string s = item.substr(slash + 1);
      base = item.substr(0, slash);
      if (s.empty() || s.size() > 3 || s.find_first_not_of("0123456789") != std::string::npos) {
        return fieldError(f, text, "the step \"" + s + "\" is not a positive number");
      }
      step = static_cast<unsigned>(std::stoul(s));
      if (step == 0 || step > f.max) return fieldError(f, text, "the step must be from 1 to " + std::to_string(f.max));
      has_step = true;
    }
    unsigned lo, hi;
    if (base == "*") {
      lo = f.min;
      hi = f.max;
    } else if (auto dash = base.find('-'); dash != std::string::npos) {
      WHARF_RETURN_IF_ERROR(parseValue(f, text, base.substr(0, dash), &lo));
      WHARF_RETURN_IF_ERROR(parseValue(f, text, base.substr(dash + 1), &hi));
      if (lo > hi) return fieldError(f, text, "the range " + base + " runs backwards");
    } else {
      WHARF_RETURN_IF_ERROR(parseValue(f, text, base, &lo));
      hi = has_step ? f.max : lo;  // "a/s": from a to the maximum
    }
    for (unsigned v = lo; v <= hi; v += step) *bits |= uint64_t{1} << v;
    start = comma + 1;
  }
  return Status::ok();
}

// Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian, UTC).
int64_t daysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void civilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}

unsigned weekday(int64_t days) { return static_cast<unsigned>(days >= -4 ? (days + 4) % 7 : (days + 5) % 7 + 6); }

int64_t floorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

constexpr unsigned kMaxDayInMonth[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

}  // namespace

Result<CronSchedule> CronSchedule::parse(const std::string& input) {
  CronSchedule c;
  c.text_ = trimSpace(input);
  std::string text = c.text_;
  if (text.empty()) return Status(Code::kInvalidArgument, "cron: the expression is empty");
  if (text.rfind("@every", 0) == 0) {
    std::string d = trimSpace(text.substr(6));
    auto ms = parseDurationMs(d);
    if (d.empty() || text.size() == 6 || !std::isspace(static_cast<unsigned char>(text[6])) || !ms.isOk() ||
        *ms < 1000 || *ms > kMaxEveryMs) {
      return Status(Code::kInvalidArgument, "cron: @every \"" + d + "\": expected a duration from 1s to 10000d (90s, 30m, 6h, 1d)");
    }
    c.every_ms_ = *ms;
    return c;
  }
  if (text[0] == '@') {
    static const std::pair<const char*, const char*> kMacros[] = {
        {"@hourly", "0 * * * *"}, {"@daily", "0 0 * * *"},  {"@midnight", "0 0 * * *"}, {"@weekly", "0 0 * * 0"},
        {"@monthly", "0 0 1 * *"}, {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}};
    bool found = false;
    for (const auto& [name, fields] : kMacros) {
      if (text == name) {
        text = fields;
        found = true;
      }
    }
    if (!found) {
      return Status(Code::kInvalidArgument, "cron: unknown macro \"" + text +
                                                "\" (use @hourly, @daily, @weekly, @monthly, @yearly or @every DURATION)");
    }
  }
  std::vector<std::string> parts;
  for (size_t i = 0; i < text.size();) {
    if (std::isspace(static_cast<unsigned char>(text[i]))) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < text.size() && !std::isspace(static_cast<unsigned char>(text[j]))) ++j;
    parts.push_back(text.substr(i, j - i));
    i = j;
  }
  if (parts.size() != 5) {
    return Status(Code::kInvalidArgument,
                  "cron: expected 5 fields (minute hour day-of-month month day-of-week) or a macro such as "
                  "@daily; got " + std::to_string(parts.size()));
  }
  uint64_t bits[5];
  for (int i = 0; i < 5; ++i) WHARF_RETURN_IF_ERROR(parseField(kFields[i], parts[i], &bits[i]));
  c.minutes_ = bits[0];
  c.hours_ = static_cast<uint32_t>(bits[1]);
  c.doms_ = static_cast<uint32_t>(bits[2]);
  c.months_ = static_cast<uint16_t>(bits[3]);
  uint64_t dow = bits[4];
  if (dow & (uint64_t{1} << 7)) dow = (dow | 1) & 0x7f;  // 7 is Sunday
  c.dows_ = static_cast<uint8_t>(dow);
  c.dom_star_ = parts[2][0] == '*';
  c.dow_star_ = parts[4][0] == '*';
  // Refuse what can never fire: when day of month and day of week must both match (one
  // of them starts with '*'), some selected day must exist in some selected month (every
  // such date falls on every weekday within one 400-year Gregorian cycle).
  if (c.dom_star_ || c.dow_star_) {
    bool possible = false;
    for (unsigned m = 1; m <= 12 && !possible; ++m) {
      if (!(c.months_ >> m & 1)) continue;
      for (unsigned d = 1; d <= kMaxDayInMonth[m] && !possible; ++d) possible = c.doms_ >> d & 1;
    }
    if (!possible) {
      return Status(Code::kInvalidArgument, "cron: day-of-month \"" + parts[2] + "\": no selected month has that day");
    }
  }
  return c;
}

bool CronSchedule::dayMatches(unsigned dom, unsigned dow) const {
  bool dom_ok = doms_ >> dom & 1;
  bool dow_ok = dows_ >> dow & 1;
  if (dom_star_ || dow_star_) return dom_ok && dow_ok;
  return dom_ok || dow_ok;
}

int64_t CronSchedule::next(int64_t after_ms) const {
  if (every_ms_ > 0) return after_ms + every_ms_;
  // One whole Gregorian cycle: every date falls on every weekday within it (28 years
  // is not enough around a century that is no leap year: 0 0 29 2 */7 after 2088).
  constexpr int64_t kMaxDays = 146'097;
  int64_t start_minute = floorDiv(after_ms, 60'000) + 1;
  int64_t day = floorDiv(start_minute, 1440);
  int64_t minute_of_day = start_minute - day * 1440;
  for (int64_t i = 0; i < kMaxDays; ++i, ++day, minute_of_day = 0) {
    int64_t y;
    unsigned m, d;
    civilFromDays(day, &y, &m, &d);
    if (!(months_ >> m & 1)) {
      // Jump to the first day of the next month.
      unsigned nm = m == 12 ? 1 : m + 1;
      int64_t ny = m == 12 ? y + 1 : y;
      int64_t first = daysFromCivil(ny, nm, 1);
      i += first - day - 1;
      day = first - 1;
      continue;
    }
    if (!dayMatches(d, weekday(day))) continue;
    for (int64_t h = minute_of_day / 60, mi = minute_of_day % 60; h < 24; ++h, mi = 0) {
      if (!(hours_ >> h & 1)) continue;
      for (; mi < 60; ++mi) {
        if (minutes_ >> mi & 1) return ((day * 1440) + h * 60 + mi) * 60'000;
      }
    }
  }
  return -1;
}

}  // namespace wharf
