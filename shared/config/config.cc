#include "shared/config/config.h"

#include <nlohmann/json.hpp>

#include "shared/base/fs.h"

namespace wharf {
namespace {

Status bad(const std::string& key, const std::string& why) {
  return Status(Code::kInvalidArgument, "config " + key + ": " + why);
}

std::string flagName(const std::string& key) {
  std::string f = key;
  for (char& c : f) {
    if (c == '_') c = '-';
  }
  return f;
}

Result<int64_t> parseScaled(const std::string& s, const std::vector<std::pair<char, int64_t>>& units) {
  if (s.empty()) return Status(Code::kInvalidArgument, "empty value");
  size_t i = 0;
  int64_t n = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    if (n > (INT64_MAX - 9) / 10) return Status(Code::kInvalidArgument, "number too large");
    n = n * 10 + (s[i] - '0');
    ++i;
  }
  if (i == 0) return Status(Code::kInvalidArgument, "\"" + s + "\" is not a number");
  if (i == s.size()) {
    if (n > INT64_MAX / units.front().second) return Status(Code::kInvalidArgument, "value too large");
    return n * units.front().second;
  }
  if (i + 1 != s.size()) return Status(Code::kInvalidArgument, "\"" + s + "\" has an unknown unit");
  char u = static_cast<char>(std::tolower(static_cast<unsigned char>(s[i])));
  for (const auto& [c, mult] : units) {
    if (c == u) {
      if (n > INT64_MAX / mult) return Status(Code::kInvalidArgument, "value too large");
      return n * mult;
    }
  }
  return Status(Code::kInvalidArgument, "\"" + s + "\" has an unknown unit");
}

}  // namespace

Result<int64_t> parseDurationMs(const std::string& s) {
  if (s.size() > 2 && s.substr(s.size() - 2) == "ms") return parseScaled(s.substr(0, s.size() - 2), {{'\0', 1}});
  return parseScaled(s, {{'s', 1000}, {'m', 60'000}, {'h', 3'600'000}, {'d', 86'400'000}});
}

Result<int64_t> parseSize(const std::string& s) {
  return parseScaled(s, {{'b', 1}, {'k', 1ll << 10}, {'m', 1ll << 20}, {'g', 1ll << 30}, {'t', 1ll << 40}});
}

Directive stringDirective(std::string key, std::string help, std::string* target) {
  return {key, std::move(help), *target, [target](const std::string& v) {
            *target = v;
            return Status::ok();
          }};
}

Directive intDirective(std::string key, std::string help, int64_t* target, int64_t min, int64_t max) {
  return {key, std::move(help), std::to_string(*target), [key, target, min, max](const std::string& v) {
            auto n = parseScaled(v, {{'\0', 1}});
            if (!n.isOk()) return bad(key, n.status().message());
            if (*n < min || *n > max) {
              return bad(key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
            }
            *target = *n;
            return Status::ok();
          }};
}

Directive boolDirective(std::string key, std::string help, bool* target) {
  return {key, std::move(help), *target ? "true" : "false", [key, target](const std::string& v) {
            if (v == "true" || v == "1" || v == "yes") {
              *target = true;
            } else if (v == "false" || v == "0" || v == "no") {
              *target = false;
            } else {
              return bad(key, "must be true or false");
            }
            return Status::ok();
          }};
}

Directive durationDirective(std::string key, std::string help, int64_t* target_ms) {
  return {key, std::move(help), std::to_string(*target_ms / 1000) + "s", [key, target_ms](const std::string& v) {
            auto d = parseDurationMs(v);
            if (!d.isOk()) return bad(key, d.status().message());
            *target_ms = *d;
            return Status::ok();
          }};
}

Directive sizeDirective(std::string key, std::string help, int64_t* target) {
  return {key, std::move(help), std::to_string(*target), [key, target](const std::string& v) {
            auto d = parseSize(v);
            if (!d.isOk()) return bad(key, d.status().message());
            *target = *d;
            return Status::ok();
          }};
}

const Directive* ConfigSchema::find(const std::string& key) const {
  for (const auto& d : directives_) {
    if (d.key == key) return &d;
  }
  return nullptr;
}

Status ConfigSchema::applyFile(const std::string& path) {
  std::string text;
  Status st = readFile(path, &text);
  if (!st.isOk()) return Status(Code::kInvalidArgument, "config file " + path + ": " + st.message());
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return Status(Code::kInvalidArgument, "config file " + path + " is not a JSON object");
  }
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    const Directive* d = find(it.key());
    if (d == nullptr) return Status(Code::kInvalidArgument, "config file " + path + ": unknown key \"" + it.key() + "\"");
    std::string value = it.value().is_string() ? it.value().get<std::string>() : it.value().dump();
    WHARF_RETURN_IF_ERROR(d->set(value));
  }
  return Status::ok();
}

Status ConfigSchema::applyArgs(int argc, char** argv, bool* help_requested) {
  *help_requested = false;
  std::vector<std::pair<std::string, std::string>> flags;
  std::string config_file;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      *help_requested = true;
      return Status::ok();
    }
    if (a.rfind("--", 0) != 0) return Status(Code::kInvalidArgument, "unexpected argument \"" + a + "\" (see --help)");
    std::string name = a.substr(2), value;
    auto eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else {
      if (i + 1 >= argc) return Status(Code::kInvalidArgument, "flag --" + name + " needs a value");
      value = argv[++i];
    }
    if (name == "config") {
      config_file = value;
      continue;
    }
    std::string key = name;
    for (char& c : key) {
      if (c == '-') c = '_';
    }
    if (find(key) == nullptr) return Status(Code::kInvalidArgument, "unknown flag --" + name + " (see --help)");
    flags.emplace_back(key, value);
  }
  if (!config_file.empty()) WHARF_RETURN_IF_ERROR(applyFile(config_file));
  for (const auto& [key, value] : flags) WHARF_RETURN_IF_ERROR(find(key)->set(value));
  return Status::ok();
}

std::string ConfigSchema::helpText() const {
  std::string out = "Usage: " + program_ + " [--config FILE] [--KEY VALUE ...]\n\n" + summary_ + "\n\nOptions:\n";
  out += "  --config FILE\n      JSON object of the keys below (flags given on the command line win).\n";
  for (const auto& d : directives_) {
    out += "  --" + flagName(d.key) + " VALUE   (config key \"" + d.key + "\", default: " +
           (d.default_text.empty() ? "none" : d.default_text) + ")\n      " + d.help + "\n";
  }
  out += "  --help\n      Show this help.\n";
  return out;
}

}  // namespace wharf
