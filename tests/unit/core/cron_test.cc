#include <catch2/catch.hpp>

#include <ctime>
#include <string>

#include "core/jobs/cron.h"
#include "shared/base/clock.h"

// Each file's own names: the test binaries are unity builds.
namespace cron_test {

using namespace wharf;

namespace {

// "2024-02-28T23:59" or "2024-02-28T23:59:30" (UTC) -> ms.
int64_t at(const std::string& s) {
  std::tm tm{};
  int sec = 0;
  REQUIRE(std::sscanf(s.c_str(), "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                      &sec) >= 5);
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  tm.tm_sec = sec;
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

CronSchedule cron(const std::string& text) {
  auto c = CronSchedule::parse(text);
  INFO(text << ": " << c.status().message());
  REQUIRE(c.isOk());
  return *c;
}

// The next run after `after`, as RFC 3339.
std::string next(const std::string& text, const std::string& after) {
  return formatRfc3339(cron(text).next(at(after)));
}

std::string parseError(const std::string& text) {
  auto c = CronSchedule::parse(text);
  REQUIRE_FALSE(c.isOk());
  CHECK(c.status().code() == Code::kInvalidArgument);
  return c.status().message();
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("cron: steps, lists and ranges", "[cron]") {
  CHECK(next("*/15 * * * *", "2024-01-01T00:00") == "2024-01-01T00:15:00Z");
  CHECK(next("*/15 * * * *", "2024-01-01T00:14:59") == "2024-01-01T00:15:00Z");
  CHECK(next("*/15 * * * *", "2024-01-01T00:15") == "2024-01-01T00:30:00Z");  // strictly after
  CHECK(next("*/15 * * * *", "2024-01-01T23:45") == "2024-01-02T00:00:00Z");
  CHECK(next("10-50/10 * * * *", "2024-01-01T00:10") == "2024-01-01T00:20:00Z");
  CHECK(next("10-50/10 * * * *", "2024-01-01T00:50") == "2024-01-01T01:10:00Z");
  CHECK(next("5/20 * * * *", "2024-01-01T00:25") == "2024-01-01T00:45:00Z");
  CHECK(next("5/20 * * * *", "2024-01-01T00:45") == "2024-01-01T01:05:00Z");
  CHECK(next("1,5,10-12 * * * *", "2024-01-01T00:05") == "2024-01-01T00:10:00Z");
  CHECK(next("1,5,10-12 * * * *", "2024-01-01T00:12") == "2024-01-01T01:01:00Z");
  CHECK(next("0 */6 * * *", "2024-01-01T06:00") == "2024-01-01T12:00:00Z");
  CHECK(next("30 2 * * *", "2024-01-01T02:30") == "2024-01-02T02:30:00Z");
  CHECK(next("* * * * *", "2024-01-01T00:00:30") == "2024-01-01T00:01:00Z");
}

TEST_CASE("cron: month ends, leap days and year ends", "[cron]") {
  CHECK(next("0 0 29 2 *", "2023-03-01T00:00") == "2024-02-29T00:00:00Z");
  CHECK(next("0 0 29 2 *", "2024-02-29T00:00") == "2028-02-29T00:00:00Z");
  CHECK(next("0 0 29 2 *", "2096-03-01T00:00") == "2104-02-29T00:00:00Z");  // 2100 is not a leap year
  CHECK(next("0 0 31 * *", "2024-04-01T00:00") == "2024-05-31T00:00:00Z");  // April has 30 days
  CHECK(next("0 0 30 * *", "2024-01-30T00:00") == "2024-03-30T00:00:00Z");  // February has none
  CHECK(next("0 0 1 1 *", "2024-06-01T00:00") == "2025-01-01T00:00:00Z");
  CHECK(next("59 23 31 12 *", "2024-12-31T23:58") == "2024-12-31T23:59:00Z");
  CHECK(next("59 23 31 12 *", "2024-12-31T23:59") == "2025-12-31T23:59:00Z");
}

TEST_CASE("cron: day of month and day of week", "[cron]") {
  // Both restricted: either matches (2024-01-01 is a Monday, 2024-02-01 a Thursday).
  CHECK(next("0 12 1 * mon", "2024-01-01T12:00") == "2024-01-08T12:00:00Z");
  CHECK(next("0 12 1 * mon", "2024-01-29T12:00") == "2024-02-01T12:00:00Z");
  CHECK(next("0 12 1 * mon", "2024-02-01T12:00") == "2024-02-05T12:00:00Z");
  // Day of month starting with '*': both must match (odd days that are Mondays).
  CHECK(next("0 0 */2 * mon", "2024-01-01T00:00") == "2024-01-15T00:00:00Z");
  // Only the day of week restricted.
  CHECK(next("0 0 * * 7", "2024-01-01T00:00") == "2024-01-07T00:00:00Z");  // 7 is Sunday
  CHECK(next("0 0 * * 0", "2024-01-01T00:00") == "2024-01-07T00:00:00Z");
  CHECK(next("0 0 * * 0,7", "2024-01-01T00:00") == "2024-01-07T00:00:00Z");
  CHECK(next("0 0 * * 5-7", "2024-01-01T00:00") == "2024-01-05T00:00:00Z");
  CHECK(next("0 0 * JAN SUN", "2024-01-01T00:00") == "2024-01-07T00:00:00Z");
  // Weekdays in the first quarter: after Friday 2024-03-29 comes 2025-01-01 (a Wednesday).
  CHECK(next("30 9 * jan-mar mon-fri", "2024-03-29T10:00") == "2025-01-01T09:30:00Z");
  CHECK(next("30 9 * jan-mar mon-fri", "2024-03-28T10:00") == "2024-03-29T09:30:00Z");
}

TEST_CASE("cron: macros and @every", "[cron]") {
  CHECK(next("@hourly", "2024-01-01T00:00") == "2024-01-01T01:00:00Z");
  CHECK(next("@daily", "2024-01-01T00:00") == "2024-01-02T00:00:00Z");
  CHECK(next("@midnight", "2024-01-01T13:00") == "2024-01-02T00:00:00Z");
  CHECK(next("@weekly", "2024-01-01T00:00") == "2024-01-07T00:00:00Z");
  CHECK(next("@monthly", "2024-01-15T00:00") == "2024-02-01T00:00:00Z");
  CHECK(next("@yearly", "2024-01-15T00:00") == "2025-01-01T00:00:00Z");
  CHECK(next("@annually", "2024-01-15T00:00") == "2025-01-01T00:00:00Z");
  auto every = cron("@every 90s");
  CHECK(every.next(1'000) == 91'000);
  CHECK(cron("@every 6h").next(0) == 6 * 3'600'000);
  CHECK(cron("  @daily  ").text() == "@daily");
}

TEST_CASE("cron: bad expressions name the field", "[cron]") {
  CHECK(contains(parseError(""), "empty"));
  CHECK(contains(parseError("* * * *"), "expected 5 fields"));
  CHECK(contains(parseError("* * * * * *"), "got 6"));
  CHECK(contains(parseError("60 * * * *"), "minute \"60\": 60 is out of range 0-59"));
  CHECK(contains(parseError("* 24 * * *"), "hour"));
  CHECK(contains(parseError("* * 0 * *"), "day-of-month"));
  CHECK(contains(parseError("* * 32 * *"), "day-of-month"));
  CHECK(contains(parseError("* * * 13 *"), "month"));
  CHECK(contains(parseError("* * * * 8"), "day-of-week \"8\""));
  CHECK(contains(parseError("*/0 * * * *"), "minute"));
  CHECK(contains(parseError("*/x * * * *"), "step"));
  CHECK(contains(parseError("5-1 * * * *"), "backwards"));
  CHECK(contains(parseError("* * * foo *"), "not a number or a name (jan..dec)"));
  CHECK(contains(parseError("* * * * funday"), "(sun..sat)"));
  CHECK(contains(parseError("mon * * * *"), "minute \"mon\": \"mon\" is not a number"));
  CHECK(contains(parseError("1,,2 * * * *"), "empty list item"));
  CHECK(contains(parseError("0 0 30 2 *"), "day-of-month"));  // never fires
  CHECK(contains(parseError("0 0 31 4,6 *"), "no selected month"));
  CHECK(contains(parseError("@sometimes"), "unknown macro"));
  CHECK(contains(parseError("@every"), "@every"));
  CHECK(contains(parseError("@every 0s"), "from 1s"));
  // Found by fuzz_cron: an @every that overflowed next(), and a day that both-must-match
  // rules make impossible (June has no 31st, whatever the weekday).
  CHECK(contains(parseError("@every 9223370336854776s"), "to 10000d"));
  CHECK(contains(parseError("0 0 31 6 */2"), "no selected month"));
  CHECK(contains(parseError("@every soon"), "duration"));
  // Day 30 of February with a day of week is fine: the day of week can fire.
  CHECK(CronSchedule::parse("0 0 30 2 mon").isOk());
}

}  // namespace cron_test
