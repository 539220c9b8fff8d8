#include "shared/base/json_body.h"

#include <cmath>

#include "shared/base/clock.h"

namespace wharf {
namespace {

using nlohmann::json;

std::string lengthText(size_t max) { return "of at most " + std::to_string(max) + " characters"; }

}  // namespace

bool jsonNestedWithin(std::string_view raw, size_t limit, std::string* top_key) {
  size_t depth = 0;
  bool in_string = false, escaped = false;
  size_t string_start = 0;
  std::string_view last_top_string;  // the last string at depth 1: a key once ':' follows
  std::string_view key;
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') {
        in_string = false;
        if (depth == 1) last_top_string = raw.substr(string_start, i - string_start);
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
      string_start = i + 1;
    } else if (c == ':' && depth == 1) {
      key = last_top_string;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) {
        if (top_key != nullptr) *top_key = std::string(key.substr(0, 128));
        return false;
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return true;
}

json rfc3339OrNull(int64_t ms) { return ms > 0 ? json(formatRfc3339(ms)) : json(nullptr); }

std::string jsonStringOr(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

const char* jsonTypeName(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    case json::value_t::string: return "a string";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    case json::value_t::number_float: return "a number";
    case json::value_t::binary: return "binary data";
    case json::value_t::discarded: return "nothing";
  }
  return "a value";
}

Result<JsonBody> JsonBody::parse(std::string_view raw) {
  if (raw.find_first_not_of(" \t\r\n") == std::string_view::npos) return JsonBody(json::object());
  std::string deep;
  if (!jsonNestedWithin(raw, kMaxDepth, &deep)) {
    return Status(Code::kInvalidArgument, (deep.empty() ? std::string("the request body") : deep) + ": nested more than " +
                                              std::to_string(kMaxDepth) + " levels deep");
  }
  json body = json::parse(raw.begin(), raw.end(), nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return Status(Code::kInvalidArgument, "the request body is not JSON");
  if (!body.is_object()) {
    return Status(Code::kInvalidArgument, std::string("the request body must be a JSON object, not ") + jsonTypeName(body));
  }
  return JsonBody(std::move(body));
}

JsonBody::JsonBody(json object, std::string prefix) : object_(std::move(object)), prefix_(std::move(prefix)) {
  if (!object_.is_object()) {
    status_ = Status(Code::kInvalidArgument,
                     (prefix_.empty() ? std::string("the body") : prefix_) + ": expected an object, got " +
                         jsonTypeName(object_));
    object_ = json::object();
  }
}

std::string JsonBody::fieldName(std::string_view key) const {
  return prefix_.empty() ? std::string(key) : prefix_ + "." + std::string(key);
}

bool JsonBody::has(std::string_view key) const { return object_.find(key) != object_.end(); }

void JsonBody::fail(std::string_view key, const std::string& what) {
  if (status_.isOk()) status_ = Status(Code::kInvalidArgument, fieldName(key) + ": " + what);
}

void JsonBody::wrongType(std::string_view key, const char* expected, const json& got) {
  fail(key, std::string("expected ") + expected + ", got " + jsonTypeName(got));
}

const json* JsonBody::find(std::string_view key, bool required, const char* expected) {
  read_.emplace(key);
  if (!status_.isOk()) return nullptr;
  auto it = object_.find(key);
  if (it == object_.end()) {
    if (required) status_ = Status(Code::kInvalidArgument, fieldName(key) + " is required (" + expected + ")");
    return nullptr;
  }
  return &*it;
}

std::optional<std::string> JsonBody::string(std::string_view key, StringRule rule) {
  std::string expected = "a string " + lengthText(rule.max);
  const json* v = find(key, rule.required, expected.c_str());
  if (v == nullptr) return std::nullopt;
  if (!v->is_string()) {
    wrongType(key, expected.c_str(), *v);
    return std::nullopt;
  }
  const std::string& s = v->get_ref<const std::string&>();
  if (s.size() > rule.max) {
    fail(key, "expected " + expected + ", got " + std::to_string(s.size()));
    return std::nullopt;
  }
  if (rule.non_empty && s.empty()) {
    fail(key, "expected a non-empty string");
    return std::nullopt;
  }
  return s;
}

std::optional<bool> JsonBody::boolean(std::string_view key, bool required) {
  const json* v = find(key, required, "true or false");
  if (v == nullptr) return std::nullopt;
  if (!v->is_boolean()) {
    wrongType(key, "true or false", *v);
    return std::nullopt;
  }
  return v->get<bool>();
}

std::optional<int64_t> JsonBody::integer(std::string_view key, IntRule rule) {
  std::string expected = "an integer";
  if (rule.min != std::numeric_limits<int64_t>::min() || rule.max != std::numeric_limits<int64_t>::max()) {
    expected += " from " + std::to_string(rule.min) + " to " + std::to_string(rule.max);
  }
  const json* v = find(key, rule.required, expected.c_str());
  if (v == nullptr) return std::nullopt;
  bool in_range = false;
  int64_t n = 0;
  if (v->is_number_unsigned()) {
    uint64_t u = v->get<uint64_t>();
    in_range = u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    n = static_cast<int64_t>(u);
  } else if (v->is_number_integer()) {
    n = v->get<int64_t>();
    in_range = true;
  } else {
    wrongType(key, expected.c_str(), *v);
    return std::nullopt;
  }
  if (!in_range || n < rule.min || n > rule.max) {
    fail(key, "expected " + expected + ", got " + v->dump());
    return std::nullopt;
  }
  return n;
}

std::optional<double> JsonBody::number(std::string_view key, NumberRule rule) {
  std::string expected = "a number from " + json(rule.min).dump() + " to " + json(rule.max).dump();
  const json* v = find(key, rule.required, expected.c_str());
  if (v == nullptr) return std::nullopt;
  if (!v->is_number()) {
    wrongType(key, expected.c_str(), *v);
    return std::nullopt;
  }
  double d = v->get<double>();
  if (!std::isfinite(d) || d < rule.min || d > rule.max) {
    fail(key, "expected " + expected + ", got " + v->dump());
    return std::nullopt;
  }
  return d;
}

std::optional<std::vector<std::string>> JsonBody::strings(std::string_view key, ListRule rule) {
  std::string expected = "an array of at most " + std::to_string(rule.max_items) + " strings " + lengthText(rule.max);
  const json* v = find(key, rule.required, expected.c_str());
  if (v == nullptr) return std::nullopt;
  if (!v->is_array()) {
    wrongType(key, expected.c_str(), *v);
    return std::nullopt;
  }
  if (v->size() > rule.max_items || (rule.non_empty && v->empty())) {
    fail(key, "expected " + std::string(rule.non_empty ? "a non-empty " : "") + expected.substr(3) + ", got " +
                  std::to_string(v->size()) + " items");
    return std::nullopt;
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < v->size(); ++i) {
    const json& item = (*v)[i];
    std::string at = std::string(key) + "[" + std::to_string(i) + "]";
    if (!item.is_string()) {
      wrongType(at, ("a string " + lengthText(rule.max)).c_str(), item);
      return std::nullopt;
    }
    if (item.get_ref<const std::string&>().size() > rule.max) {
      fail(at, "expected a string " + lengthText(rule.max) + ", got " +
                   std::to_string(item.get_ref<const std::string&>().size()));
      return std::nullopt;
    }
    out.push_back(item.get<std::string>());
  }
  return out;
}

std::optional<json> JsonBody::rawObject(std::string_view key, bool required) {
  const json* v = find(key, required, "an object");
  if (v == nullptr) return std::nullopt;
  if (!v->is_object()) {
    wrongType(key, "an object", *v);
    return std::nullopt;
  }
  return *v;
}

std::optional<json> JsonBody::rawArray(std::string_view key, bool required) {
  const json* v = find(key, required, "an array");
  if (v == nullptr) return std::nullopt;
  if (!v->is_array()) {
    wrongType(key, "an array", *v);
    return std::nullopt;
  }
  return *v;
}

std::optional<JsonBody> JsonBody::object(std::string_view key, bool required) {
  auto v = rawObject(key, required);
  if (!v) return std::nullopt;
  return JsonBody(std::move(*v), fieldName(key));
}

Status JsonBody::finish() const {
  if (!status_.isOk()) return status_;
  for (auto it = object_.begin(); it != object_.end(); ++it) {
    if (read_.find(it.key()) == read_.end()) {
      return Status(Code::kInvalidArgument, fieldName(it.key()) + ": unknown or read-only field");
    }
  }
  return Status::ok();
}

}  // namespace wharf
