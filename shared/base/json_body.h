// JsonBody: the one reader of JSON objects a peer sends (API request bodies, nested
// settings and params).
//
// Every field is read with its type and limits; the first problem is kept and named
// ("name: expected a string of at most 63 characters, got a number"), later reads
// return nothing. finish() also refuses every field that was not read, so that a typo
// or a read-only field is an error rather than silently ignored. Nothing here throws:
// nlohmann::json is only called in forms that cannot.
//
//   auto body = JsonBody::parse(raw);                    // "" is {}
//   if (!body.isOk()) return fail(body.status());
//   auto name = body->string("name", {.required = true, .max = 63});
//   auto days = body->integer("expires_in_days", {.min = 0, .max = 3650});
//   WHARF_RETURN_IF_ERROR(body->finish());               // first error, or an unknown field
//
// Not thread-safe; one reader per request.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/base/status.h"

namespace wharf {

// j as compact text, never throwing: strings that are not valid UTF-8 (bytes a peer
// sent in a header or a name) have their bad bytes replaced with U+FFFD.
inline std::string dumpJson(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

struct StringRule {
  bool required = false;
  size_t max = 1024;     // characters (bytes)
  bool non_empty = false;
};
struct IntRule {
  bool required = false;
  int64_t min = std::numeric_limits<int64_t>::min();
  int64_t max = std::numeric_limits<int64_t>::max();
};
struct NumberRule {
  bool required = false;
  double min = -std::numeric_limits<double>::max();
  double max = std::numeric_limits<double>::max();
};
struct ListRule {
  bool required = false;
  size_t max_items = 100;
  size_t max = 1024;     // per string
  bool non_empty = false;
};

class JsonBody {
 public:
  static constexpr size_t kMaxDepth = 32;

  // Parses raw as a JSON object ("" or only white space is {}): anything else, a body
  // that is not JSON, or one nested deeper than kMaxDepth is kInvalidArgument.
  static Result<JsonBody> parse(std::string_view raw);
  // Reads an object already parsed (a nested field); errors name "<prefix>.<field>".
  // A value that is not an object makes every read fail with that error.
  explicit JsonBody(nlohmann::json object, std::string prefix = "");

  bool has(std::string_view key) const;
  // The whole object, for a reader that takes it as one value (the LDAP settings are
  // merged with the stored ones, then read by LdapConfig::fromJson with its own rules).
  const nlohmann::json& raw() const { return object_; }

  // Each returns nullopt when the field is absent (an error if required) or wrong
  // (always an error). null is a wrong type for every field.
  std::optional<std::string> string(std::string_view key, StringRule rule = {});
  std::optional<bool> boolean(std::string_view key, bool required = false);
  std::optional<int64_t> integer(std::string_view key, IntRule rule = {});
  std::optional<double> number(std::string_view key, NumberRule rule = {});
  std::optional<std::vector<std::string>> strings(std::string_view key, ListRule rule = {});
  // A nested object, to read with its own rules. Its errors carry this field's name but
  // stay its own: check the child's status() or finish() as well as this one's.
  std::optional<JsonBody> object(std::string_view key, bool required = false);
  // A nested object handed on as it is (job params, edge settings): only its type is
  // checked here; its reader checks the rest.
  std::optional<nlohmann::json> rawObject(std::string_view key, bool required = false);
  // An array handed on as it is (its items are the caller's to check).
  std::optional<nlohmann::json> rawArray(std::string_view key, bool required = false);

  // Records a problem found by the caller with a field's value (first one wins).
  void fail(std::string_view key, const std::string& what);
  // The first problem so far (OK if none).
  const Status& status() const { return status_; }
  // The first problem, else the first field present that was never read.
  Status finish() const;
  // The object's own name in messages ("" at the top).
  std::string fieldName(std::string_view key) const;

 private:
  const nlohmann::json* find(std::string_view key, bool required, const char* expected);
  void wrongType(std::string_view key, const char* expected, const nlohmann::json& got);

  nlohmann::json object_;
  std::string prefix_;
  std::set<std::string, std::less<>> read_;
  Status status_;
};

// True if the JSON text nests arrays and objects at most limit deep (counted without
// parsing). Every parse of a peer's JSON checks this first: nlohmann::json parses
// iteratively, but copies, dumps and comparisons recurse, and a body of a few MB of
// brackets would overflow a thread's stack.
// When it is not and top_key is given, *top_key is the key of the outermost object under
// which the nesting went too deep (the field to name in the error).
bool jsonNestedWithin(std::string_view text, size_t limit, std::string* top_key = nullptr);

// The name of a JSON value's type in messages ("a string", "a number", "null", ...).
const char* jsonTypeName(const nlohmann::json& v);

// A stored document's string field, "" when absent or not a string (for documents this
// program wrote; a peer's bodies go through JsonBody).
std::string jsonStringOr(const nlohmann::json& j, const char* key);
// A time for the API: RFC 3339 in UTC, or null when ms is 0 (never).
nlohmann::json rfc3339OrNull(int64_t ms);

}  // namespace wharf
