// Declarative configuration: each component describes its settings as a table of
// directives (key, help, validator); values come from a JSON file and from command-line
// flags, flags last. A bad value is a clear start-up error naming the key.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "shared/base/status.h"

namespace wharf {

struct Directive {
  std::string key;   // JSON key ("data_dir"); the flag is --data-dir
  std::string help;
  std::string default_text;
  std::function<Status(const std::string& value)> set;
};

Directive stringDirective(std::string key, std::string help, std::string* target);
Directive intDirective(std::string key, std::string help, int64_t* target, int64_t min, int64_t max);
Directive boolDirective(std::string key, std::string help, bool* target);
// Durations like "90s", "30m", "24h", "7d" or plain seconds, stored in milliseconds.
Directive durationDirective(std::string key, std::string help, int64_t* target_ms);
// Byte sizes like "512k", "64m", "2g" or plain bytes.
Directive sizeDirective(std::string key, std::string help, int64_t* target);

class ConfigSchema {
 public:
  explicit ConfigSchema(std::string program, std::string summary)
      : program_(std::move(program)), summary_(std::move(summary)) {}
  void add(Directive d) { directives_.push_back(std::move(d)); }

  // Applies a JSON object file; unknown keys are errors.
  Status applyFile(const std::string& path);
  // Parses argv: --key value / --key=value for every directive, --config FILE (applied
  // first), --help. Sets *help_requested instead of failing for --help.
  Status applyArgs(int argc, char** argv, bool* help_requested);
  std::string helpText() const;

 private:
  const Directive* find(const std::string& key) const;
  std::string program_, summary_;
  std::vector<Directive> directives_;
};

Result<int64_t> parseDurationMs(const std::string& s);
Result<int64_t> parseSize(const std::string& s);

}  // namespace wharf
