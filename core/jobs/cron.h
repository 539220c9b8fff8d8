// CronSchedule: five-field cron expressions, evaluated in UTC.
//
//   minute hour day-of-month month day-of-week
//   0-59   0-23 1-31         1-12  0-7 (0 and 7 are Sunday)
//
// Each field is `*`, a value, a range `a-b`, a step `*/s`, `a-b/s` or `a/s` (a to the
// field's maximum), or a comma-separated list of those. Months take names jan..dec and
// days of the week sun..sat (any case). The macros @hourly, @daily (@midnight), @weekly,
// @monthly and @yearly (@annually) stand for their usual five fields.
//
// Wharf extension: "@every DURATION" ("@every 90s", "@every 6h"; at least 1s) runs
// DURATION after the previous run rather than on wall-clock slots; the configuration's
// intervals (upload_purge_interval, the directory's sync interval) become such schedules.
//
// Day of month and day of week combine as in Vixie cron: when both fields are
// restricted (neither starts with `*`), a day matches if EITHER matches ("0 0 1 * mon"
// runs on the 1st and on every Monday); otherwise both must match.
//
// A value is immutable after parse() and safe to use from any thread.
#pragma once

#include <cstdint>
#include <string>

#include "shared/base/status.h"

namespace wharf {

class CronSchedule {
 public:
  // kInvalidArgument with a message naming the field ("cron: day-of-week \"8\": ...").
  // An expression that can never fire (day 30 in February only) is refused too.
  static Result<CronSchedule> parse(const std::string& text);

  // The first minute strictly after after_ms (milliseconds since the epoch, UTC) that
  // matches, in milliseconds; -1 if none within the next 400 years. @every: after_ms plus
  // the interval.
  int64_t next(int64_t after_ms) const;
  // The expression as given (trimmed).
  const std::string& text() const { return text_; }

 private:
  bool dayMatches(unsigned dom, unsigned dow) const;

  std::string text_;
  int64_t every_ms_ = 0;  // @every
  uint64_t minutes_ = 0;  // bit i: minute i
  uint32_t hours_ = 0;
  uint32_t doms_ = 0;     // bit d: day d (1-31)
  uint16_t months_ = 0;   // bit m: month m (1-12)
  uint8_t dows_ = 0;      // bit d: weekday d (0 = Sunday)
  bool dom_star_ = false;  // the day-of-month field starts with '*'
  bool dow_star_ = false;
};

}  // namespace wharf
