#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "shared/base/fs.h"
#include "shared/config/config.h"
#include "tests/support/temp_dir.h"

// Each file's own names: the test binaries are unity builds.
namespace config_test {

using namespace wharf;
using wharf::test::TempDir;

namespace {

struct Settings {
  std::string name = "default";
  int64_t count = 4;
  bool flag = false;
  int64_t timeout_ms = 30'000;
  int64_t size = 1024;
};

ConfigSchema makeSchema(Settings* s) {
  ConfigSchema schema("prog", "A test program.");
  schema.add(stringDirective("data_dir", "where data lives", &s->name));
  schema.add(intDirective("count", "how many", &s->count, 1, 100));
  schema.add(boolDirective("flag", "a switch", &s->flag));
  schema.add(durationDirective("timeout", "how long", &s->timeout_ms));
  schema.add(sizeDirective("max_size", "how big", &s->size));
  return schema;
}

// argv for applyArgs (argv[0] is the program).
struct Argv {
  explicit Argv(std::vector<std::string> a) : args(std::move(a)) {
    args.insert(args.begin(), "prog");
    for (auto& s : args) ptrs.push_back(s.data());
  }
  int argc() { return static_cast<int>(ptrs.size()); }
  char** argv() { return ptrs.data(); }
  std::vector<std::string> args;
  std::vector<char*> ptrs;
};

}  // namespace

TEST_CASE("parseDurationMs: units, plain seconds and milliseconds") {
  CHECK(*parseDurationMs("90s") == 90'000);
  CHECK(*parseDurationMs("30m") == 1'800'000);
  CHECK(*parseDurationMs("24h") == 86'400'000);
  CHECK(*parseDurationMs("7d") == 7 * 86'400'000ll);
  CHECK(*parseDurationMs("15") == 15'000);
  CHECK(*parseDurationMs("250ms") == 250);
  CHECK(*parseDurationMs("0") == 0);
  CHECK(*parseDurationMs("2H") == 7'200'000);  // unit letters are case-insensitive
}

TEST_CASE("parseDurationMs refuses malformed values") {
  for (const char* bad : {"", "s", "ms", "-5s", "5x", "5ss", "1.5h", " 5s", "5s ", "abc", "5 s", "0x10"}) {
    INFO("value: \"" << bad << "\"");
    auto r = parseDurationMs(bad);
    CHECK_FALSE(r.isOk());
    CHECK(r.status().code() == Code::kInvalidArgument);
  }
  CHECK_FALSE(parseDurationMs("99999999999999999999999d").isOk());
  CHECK_FALSE(parseDurationMs("9223372036854775807d").isOk());
}

TEST_CASE("parseDurationMs refuses plain seconds that overflow milliseconds", "[regression]") {
  // 10^17 seconds is 10^20 ms, more than INT64_MAX: parseScaled multiplies the plain
  // number by the first unit (1000) without an overflow check.
  auto r = parseDurationMs("100000000000000000");
  INFO("result: " << (r.isOk() ? std::to_string(*r) + " ms" : r.status().toString()));
  CHECK_FALSE(r.isOk());
}

TEST_CASE("parseSize: binary units and plain bytes") {
  CHECK(*parseSize("512") == 512);
  CHECK(*parseSize("512b") == 512);
  CHECK(*parseSize("512k") == 512 * 1024);
  CHECK(*parseSize("64m") == 64ll << 20);
  CHECK(*parseSize("64M") == 64ll << 20);
  CHECK(*parseSize("2g") == 2ll << 30);
  CHECK(*parseSize("1t") == 1ll << 40);
  for (const char* bad : {"", "k", "-1", "1kb", "1.5g", "1p", "1 k", "1e9"}) {
    INFO("value: \"" << bad << "\"");
    CHECK(parseSize(bad).status().code() == Code::kInvalidArgument);
  }
  CHECK_FALSE(parseSize("9999999999t").isOk());  // overflows int64
}

TEST_CASE("applyArgs sets every directive kind, both flag spellings") {
  Settings s;
  ConfigSchema schema = makeSchema(&s);
  Argv a({"--data-dir", "/srv/x", "--count=7", "--flag", "yes", "--timeout=2m", "--max-size", "8k"});
  bool help = true;
  REQUIRE(schema.applyArgs(a.argc(), a.argv(), &help).isOk());
  CHECK_FALSE(help);
  CHECK(s.name == "/srv/x");
  CHECK(s.count == 7);
  CHECK(s.flag);
  CHECK(s.timeout_ms == 120'000);
  CHECK(s.size == 8192);
}

TEST_CASE("applyArgs refuses bad flags and values, naming the key") {
  Settings s;
  ConfigSchema schema = makeSchema(&s);
  bool help = false;
  {
    Argv a({"--nope=1"});
    Status st = schema.applyArgs(a.argc(), a.argv(), &help);
    CHECK(st.code() == Code::kInvalidArgument);
    CHECK(st.message().find("--nope") != std::string::npos);
  }
  {
    Argv a({"--count=0"});  // below min
    Status st = schema.applyArgs(a.argc(), a.argv(), &help);
    CHECK(st.code() == Code::kInvalidArgument);
    CHECK(st.message().find("count") != std::string::npos);
  }
  {
    Argv a({"--count=101"});  // above max
    CHECK_FALSE(schema.applyArgs(a.argc(), a.argv(), &help).isOk());
  }
  {
    Argv a({"--count=ten"});
    CHECK_FALSE(schema.applyArgs(a.argc(), a.argv(), &help).isOk());
  }
  {
    Argv a({"--flag=maybe"});
    CHECK_FALSE(schema.applyArgs(a.argc(), a.argv(), &help).isOk());
  }
  {
    Argv a({"--timeout=soon"});
    Status st = schema.applyArgs(a.argc(), a.argv(), &help);
    CHECK_FALSE(st.isOk());
    CHECK(st.message().find("timeout") != std::string::npos);
  }
  {
    Argv a({"--count"});  // no value
    CHECK_FALSE(schema.applyArgs(a.argc(), a.argv(), &help).isOk());
  }
  {
    Argv a({"positional"});
    CHECK_FALSE(schema.applyArgs(a.argc(), a.argv(), &help).isOk());
  }
  CHECK(s.count == 4);  // nothing bad was applied
  CHECK(s.flag == false);
  CHECK(s.timeout_ms == 30'000);
}

TEST_CASE("--help is reported, not applied; helpText lists flags and defaults") {
  Settings s;
  ConfigSchema schema = makeSchema(&s);
  Argv a({"--count=9", "--help", "--bogus"});
  bool help = false;
  REQUIRE(schema.applyArgs(a.argc(), a.argv(), &help).isOk());
  CHECK(help);
  CHECK(s.count == 4);
  std::string text = schema.helpText();
  CHECK(text.find("Usage: prog") != std::string::npos);
  CHECK(text.find("A test program.") != std::string::npos);
  CHECK(text.find("--data-dir") != std::string::npos);
  CHECK(text.find("--max-size") != std::string::npos);
  CHECK(text.find("default: 30s") != std::string::npos);
  CHECK(text.find("default: default") != std::string::npos);
}

TEST_CASE("applyFile reads a JSON object; flags win over --config") {
  TempDir dir;
  std::string path = dir / "c.json";
  REQUIRE(writeFileDurable(path, R"({"data_dir":"/from/file","count":5,"flag":true,"timeout":"1h","max_size":"1m"})")
              .isOk());
  Settings s;
  ConfigSchema schema = makeSchema(&s);
  Argv a({"--count", "6", "--config", path});
  bool help = false;
  REQUIRE(schema.applyArgs(a.argc(), a.argv(), &help).isOk());
  CHECK(s.name == "/from/file");
  CHECK(s.count == 6);  // the flag, though the file was named after it
  CHECK(s.flag);
  CHECK(s.timeout_ms == 3'600'000);
  CHECK(s.size == 1 << 20);
}

TEST_CASE("applyFile refuses unknown keys, non-objects, bad values and missing files") {
  TempDir dir;
  Settings s;
  ConfigSchema schema = makeSchema(&s);
  REQUIRE(writeFileDurable(dir / "unknown.json", R"({"count":5,"colour":"red"})").isOk());
  Status st = schema.applyFile(dir / "unknown.json");
  CHECK(st.code() == Code::kInvalidArgument);
  CHECK(st.message().find("colour") != std::string::npos);

  REQUIRE(writeFileDurable(dir / "array.json", "[1,2]").isOk());
  CHECK(schema.applyFile(dir / "array.json").code() == Code::kInvalidArgument);
  REQUIRE(writeFileDurable(dir / "broken.json", "{\"count\":").isOk());
  CHECK(schema.applyFile(dir / "broken.json").code() == Code::kInvalidArgument);
  REQUIRE(writeFileDurable(dir / "range.json", R"({"count":1000})").isOk());
  CHECK(schema.applyFile(dir / "range.json").code() == Code::kInvalidArgument);
  CHECK(schema.applyFile(dir / "absent.json").code() == Code::kInvalidArgument);
}

}  // namespace config_test
