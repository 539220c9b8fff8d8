// JsonBody: the typed reader of JSON bodies.
#include <catch2/catch.hpp>

#include "shared/base/json_body.h"

// Each file's own names: the test binaries are unity builds.
namespace json_body_test {

using namespace wharf;
using nlohmann::json;

namespace {

// The message of the first problem of reading body with fn, or "" if none.
template <typename F>
std::string problem(const std::string& body, F fn) {
  auto b = JsonBody::parse(body);
  if (!b.isOk()) return b.status().message();
  fn(*b);
  return b->finish().message();
}

}  // namespace

TEST_CASE("JsonBody reads fields by type, range and length", "[json_body]") {
  auto b = JsonBody::parse(R"({"name":"n","admin":true,"days":30,"scopes":["a","b"],"rate":0.5,"nested":{"k":"v"}})");
  REQUIRE(b.isOk());
  CHECK(b->string("name", {.required = true, .max = 10}) == "n");
  CHECK(b->boolean("admin") == true);
  CHECK(b->integer("days", {.min = 0, .max = 3650}) == 30);
  CHECK(b->strings("scopes")->size() == 2);
  CHECK(b->number("rate", {.min = 0, .max = 1}) == 0.5);
  auto nested = b->object("nested");
  REQUIRE(nested);
  CHECK(nested->string("k") == "v");
  CHECK(nested->finish().isOk());
  CHECK_FALSE(b->string("absent"));
  CHECK(b->finish().isOk());
}

TEST_CASE("JsonBody names the field and the expected type of every wrong value", "[json_body]") {
  CHECK(problem(R"({"name":5})", [](JsonBody& b) { b.string("name"); }) ==
        "name: expected a string of at most 1024 characters, got an integer");
  CHECK(problem(R"({"admin":"yes"})", [](JsonBody& b) { b.boolean("admin"); }) ==
        "admin: expected true or false, got a string");
  CHECK(problem(R"({"admin":null})", [](JsonBody& b) { b.boolean("admin"); }) == "admin: expected true or false, got null");
  CHECK(problem(R"({"days":"7"})", [](JsonBody& b) { b.integer("days", {.min = 0, .max = 9}); }) ==
        "days: expected an integer from 0 to 9, got a string");
  CHECK(problem(R"({"days":10})", [](JsonBody& b) { b.integer("days", {.min = 0, .max = 9}); }) ==
        "days: expected an integer from 0 to 9, got 10");
  CHECK(problem(R"({"days":18446744073709551615})", [](JsonBody& b) { b.integer("days"); }).find("days: expected an integer") == 0);
  CHECK(problem(R"({"days":1.5})", [](JsonBody& b) { b.integer("days"); }) == "days: expected an integer, got a number");
  CHECK(problem(R"({"scopes":"a"})", [](JsonBody& b) { b.strings("scopes"); }).find("scopes: expected an array") == 0);
  CHECK(problem(R"({"scopes":["a",1]})", [](JsonBody& b) { b.strings("scopes"); }).find("scopes[1]: expected a string") == 0);
  CHECK(problem(R"({"nested":[]})", [](JsonBody& b) { b.object("nested"); }) == "nested: expected an object, got an array");
  CHECK(problem(R"({"nested":{"k":1}})", [](JsonBody& b) {
          auto n = b.object("nested");
          n->string("k");
          b.fail("nested", n->status().message());
        }).find("nested.k: expected a string") != std::string::npos);
  CHECK(problem("{\"name\":\"" + std::string(2000, 'x') + "\"}", [](JsonBody& b) { b.string("name", {.max = 63}); }) ==
        "name: expected a string of at most 63 characters, got 2000");
  CHECK(problem("{}", [](JsonBody& b) { b.string("name", {.required = true}); }) ==
        "name is required (a string of at most 1024 characters)");
}

TEST_CASE("JsonBody refuses unknown fields, non-objects and deep nesting", "[json_body]") {
  CHECK(problem(R"({"name":"a","nmae":"b"})", [](JsonBody& b) { b.string("name"); }) == "nmae: unknown or read-only field");
  CHECK(problem("", [](JsonBody&) {}).empty());
  CHECK(problem("  \n", [](JsonBody&) {}).empty());
  CHECK(problem("[1]", [](JsonBody&) {}) == "the request body must be a JSON object, not an array");
  CHECK(problem("{", [](JsonBody&) {}) == "the request body is not JSON");
  std::string deep = "{\"ok\":1,\"params\":" + std::string(10000, '[') + std::string(10000, ']') + "}";
  CHECK(problem(deep, [](JsonBody&) {}) == "params: nested more than 32 levels deep");
  // Brackets inside strings do not count; at the limit is fine.
  CHECK(jsonNestedWithin(R"({"a":"[[[[[[[[[["})", 1));
  CHECK(jsonNestedWithin(std::string(32, '[') + std::string(32, ']'), 32));
  CHECK_FALSE(jsonNestedWithin(std::string(33, '[') + std::string(33, ']'), 32));
}

}  // namespace json_body_test
