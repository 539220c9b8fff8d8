// Time, injected: components take a Clock& so tests can use FakeClock instead of sleeping.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "shared/base/status.h"

namespace wharf {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time in milliseconds since the Unix epoch. Thread-safe.
  virtual int64_t nowMillis() const = 0;
};

class RealClock : public Clock {
 public:
  int64_t nowMillis() const override;
  static RealClock& instance();
};

class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t start = 1'700'000'000'000) : now_(start) {}
  int64_t nowMillis() const override { return now_.load(); }
  void advance(int64_t ms) { now_ += ms; }
  void set(int64_t ms) { now_ = ms; }

 private:
  std::atomic<int64_t> now_;
};

// RFC 3339 UTC ("2026-11-27T13:14:21Z") for a millisecond timestamp.
std::string formatRfc3339(int64_t millis);
// Parses a time bound: RFC 3339 ("2026-01-02T03:04:05Z", fractional seconds and offsets
// allowed) or milliseconds since the epoch.
Result<int64_t> parseTimeBound(const std::string& text);
// Monotonic milliseconds, for measuring durations.
int64_t monotonicMillis();

}  // namespace wharf
