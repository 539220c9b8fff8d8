// clock.h, ids.h, fs.h and log.h.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>
#include <string>

#include "shared/base/clock.h"
#include "shared/base/fs.h"
#include "shared/base/ids.h"
#include "shared/base/log.h"
#include "tests/support/temp_dir.h"

// Each file's own names: the test binaries are unity builds.
namespace base_test {

using namespace wharf;
using wharf::test::TempDir;

TEST_CASE("FakeClock moves only when told") {
  FakeClock clock(1000);
  CHECK(clock.nowMillis() == 1000);
  clock.advance(250);
  CHECK(clock.nowMillis() == 1250);
  clock.set(5);
  CHECK(clock.nowMillis() == 5);
  FakeClock dflt;
  CHECK(dflt.nowMillis() == 1'700'000'000'000);
}

TEST_CASE("RealClock is wall-clock time and monotonicMillis does not go back") {
  int64_t now = RealClock::instance().nowMillis();
  CHECK(now > 1'600'000'000'000);  // after 2020
  int64_t a = monotonicMillis();
  int64_t b = monotonicMillis();
  CHECK(b >= a);
}

TEST_CASE("formatRfc3339 prints UTC seconds") {
  CHECK(formatRfc3339(0) == "1970-01-01T00:00:00Z");
  CHECK(formatRfc3339(1'700'000'000'999) == "2023-11-14T22:13:20Z");
  CHECK(formatRfc3339(951'782'400'000) == "2000-02-29T00:00:00Z");
}

TEST_CASE("newUuid gives distinct lower-case v4 UUIDs that isUuid accepts") {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    std::string u = newUuid();
    REQUIRE(isUuid(u));
    CHECK(u[14] == '4');
    CHECK(std::string("89ab").find(u[19]) != std::string::npos);
    seen.insert(u);
  }
  CHECK(seen.size() == 200);
  CHECK(randomBytes(33).size() == 33);
}

TEST_CASE("isUuid refuses anything but the canonical lower-case form") {
  CHECK(isUuid("123e4567-e89b-42d3-a456-426614174000"));
  CHECK_FALSE(isUuid("123E4567-E89B-42D3-A456-426614174000"));  // upper case
  CHECK_FALSE(isUuid("123e4567e89b42d3a456426614174000"));      // no dashes
  CHECK_FALSE(isUuid("123e4567-e89b-42d3-a456-42661417400"));   // short
  CHECK_FALSE(isUuid("123e4567-e89b-42d3-a456-4266141740000")); // long
  CHECK_FALSE(isUuid("123e4567-e89b-42d3-a456_426614174000"));  // wrong separator
  CHECK_FALSE(isUuid("../../../../etc/passwd-aaaaaaaaaaaaaaa"));
  CHECK_FALSE(isUuid("123e4567-e89b-42d3-a456-42661417400g"));
  CHECK_FALSE(isUuid(""));
}

TEST_CASE("writeFileDurable and readFile round-trip; readFile reports absence") {
  TempDir dir;
  std::string p = dir / "f";
  std::string data("a\0b\nc", 5);
  REQUIRE(writeFileDurable(p, data).isOk());
  std::string back;
  REQUIRE(readFile(p, &back).isOk());
  CHECK(back == data);
  // Replaced atomically, no temp file left behind.
  REQUIRE(writeFileDurable(p, "second").isOk());
  REQUIRE(readFile(p, &back).isOk());
  CHECK(back == "second");
  CHECK(::access((p + ".tmp").c_str(), F_OK) != 0);

  Status missing = readFile(dir / "nope", &back);
  CHECK(missing.code() == Code::kNotFound);
  CHECK(writeFileDurable(dir / "no/such/dir/f", "x").code() == Code::kIoError);
}

TEST_CASE("makeDirs, removeTree, dirName") {
  TempDir dir;
  REQUIRE(makeDirs(dir / "a/b/c").isOk());
  REQUIRE(makeDirs(dir / "a/b/c").isOk());  // idempotent
  struct stat st;
  CHECK(::stat((dir / "a/b/c").c_str(), &st) == 0);
  REQUIRE(writeFileDurable(dir / "a/b/c/f", "x").isOk());
  CHECK(fsyncDir(dir / "a/b").isOk());
  CHECK_FALSE(fsyncDir(dir / "missing").isOk());
  REQUIRE(removeTree(dir / "a").isOk());
  CHECK(::stat((dir / "a").c_str(), &st) != 0);
  CHECK(removeTree(dir / "a").isOk());  // already gone

  CHECK(dirName("/x/y/z") == "/x/y");
  CHECK(dirName("/x") == "/");
  CHECK(dirName("x") == ".");
}

TEST_CASE("Fd owns its descriptor; preadAll and writeAll") {
  TempDir dir;
  std::string p = dir / "f";
  int raw;
  {
    Fd fd(::open(p.c_str(), O_RDWR | O_CREAT, 0644));
    REQUIRE(fd.valid());
    raw = fd.get();
    REQUIRE(writeAll(fd.get(), "hello world", 11).isOk());
    char buf[5];
    REQUIRE(preadAll(fd.get(), buf, 5, 6).isOk());
    CHECK(std::string(buf, 5) == "world");
    CHECK(preadAll(fd.get(), buf, 5, 8).code() == Code::kCorruption);  // past the end
    Fd moved(std::move(fd));
    CHECK_FALSE(fd.valid());
    CHECK(moved.get() == raw);
  }
  CHECK(::fcntl(raw, F_GETFD) == -1);  // closed by the destructor
  CHECK(errnoStatus("op", ENOENT).code() == Code::kIoError);
  CHECK(errnoStatus("op", ENOENT).message().find("op: ") == 0);
}

TEST_CASE("parseLogLevel accepts the four names only") {
  LogLevel l = LogLevel::kError;
  CHECK(parseLogLevel("debug", &l));
  CHECK(l == LogLevel::kDebug);
  CHECK(parseLogLevel("warn", &l));
  CHECK(l == LogLevel::kWarn);
  CHECK(parseLogLevel("info", &l));
  CHECK(l == LogLevel::kInfo);
  CHECK(parseLogLevel("error", &l));
  CHECK(l == LogLevel::kError);
  CHECK_FALSE(parseLogLevel("INFO", &l));
  CHECK_FALSE(parseLogLevel("warning", &l));
  CHECK_FALSE(parseLogLevel("", &l));
  CHECK(l == LogLevel::kError);  // untouched on failure

  setLogLevel(LogLevel::kWarn);
  CHECK_FALSE(logEnabled(LogLevel::kInfo));
  CHECK(logEnabled(LogLevel::kWarn));
  CHECK(logEnabled(LogLevel::kError));
  setLogLevel(LogLevel::kInfo);
  CHECK(logEnabled(LogLevel::kInfo));
  CHECK_FALSE(logEnabled(LogLevel::kDebug));
}

}  // namespace base_test
