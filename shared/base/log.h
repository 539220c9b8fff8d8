// Structured logging: one JSON object per line on stderr.
//
// Thread-safe; each line is written with a single write(2) so lines from different
// threads never interleave. Secrets (passwords, tokens, Authorization headers) must never
// be passed as fields.
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

namespace wharf {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

bool parseLogLevel(std::string_view s, LogLevel* out);
void setLogLevel(LogLevel level);
bool logEnabled(LogLevel level);
void logLine(LogLevel level, std::string_view msg, const nlohmann::json& fields = nullptr);

inline void logDebug(std::string_view m, const nlohmann::json& f = nullptr) { if (logEnabled(LogLevel::kDebug)) logLine(LogLevel::kDebug, m, f); }
inline void logInfo(std::string_view m, const nlohmann::json& f = nullptr) { if (logEnabled(LogLevel::kInfo)) logLine(LogLevel::kInfo, m, f); }
inline void logWarn(std::string_view m, const nlohmann::json& f = nullptr) { if (logEnabled(LogLevel::kWarn)) logLine(LogLevel::kWarn, m, f); }
inline void logError(std::string_view m, const nlohmann::json& f = nullptr) { logLine(LogLevel::kError, m, f); }

}  // namespace wharf
