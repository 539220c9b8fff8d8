// Fuzzes the cron parser (schedules are set through the API): CronSchedule::parse, and
// when it accepts, next() a few times from fixed times. What parses must fire (parse()
// refuses what never can) at a time strictly after the one asked, on a minute, the same
// for the same expression parsed again from text(); consecutive runs go forward.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/jobs/cron.h"
#include "tests/fuzz/fuzz_support.h"

using namespace wharf;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;
  std::string text(reinterpret_cast<const char*>(data), size);
  auto c = CronSchedule::parse(text);
  if (!c.isOk()) {
    FUZZ_CHECK(c.status().code() == Code::kInvalidArgument, c.status().message());
    return 0;
  }
  auto again = CronSchedule::parse(c->text());
  FUZZ_CHECK(again.isOk(), c->text());
  bool every = c->text().rfind("@every", 0) == 0;
  // 2023-11-14, the epoch, a time before it, and 2100-02-28 (2100 has no February 29th).
  for (int64_t start : {fuzz::kNowS * 1000 + 12'345, int64_t{0}, int64_t{-86'400'000} * 400, int64_t{4107456000000}}) {
    int64_t t = start;
    for (int i = 0; i < 4; ++i) {
      int64_t n = c->next(t);
      FUZZ_CHECK(n != -1, c->text() + " never fires after " + std::to_string(t));
      FUZZ_CHECK(n > t, c->text());
      FUZZ_CHECK(again->next(t) == n, c->text());
      if (!every) {
        FUZZ_CHECK(n % 60'000 == 0, c->text());
        FUZZ_CHECK(c->next(n - 1) == n, c->text());  // n itself matches
      }
      t = n;
    }
  }
  return 0;
}
