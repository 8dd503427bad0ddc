// Minimal leveled logging to stderr (Abseil 20220623 has no absl/log).
// Usage: LEOAM_LOG(INFO, "loaded %d tensors from %s", n, path);
#pragma once

#include <string_view>

#include "absl/strings/str_format.h"

namespace leoam {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Messages below this level are dropped. Default kInfo; LEOAM_LOG_LEVEL=debug|info|warning|error overrides.
LogLevel MinLogLevel();
void SetMinLogLevel(LogLevel level);

// Writes one line "<time> <level> <file>:<line>] <message>" to stderr, atomically.
void LogMessage(LogLevel level, const char* file, int line, std::string_view message);

}  // namespace leoam

#define LEOAM_LOG_LEVEL_DEBUG ::leoam::LogLevel::kDebug
#define LEOAM_LOG_LEVEL_INFO ::leoam::LogLevel::kInfo
#define LEOAM_LOG_LEVEL_WARNING ::leoam::LogLevel::kWarning
#define LEOAM_LOG_LEVEL_ERROR ::leoam::LogLevel::kError

#define LEOAM_LOG(level, ...)                                                         \
  do {                                                                                \
    if (LEOAM_LOG_LEVEL_##level >= ::leoam::MinLogLevel()) {                          \
      ::leoam::LogMessage(LEOAM_LOG_LEVEL_##level, __FILE__, __LINE__,                \
                          ::absl::StrFormat(__VA_ARGS__));                            \
    }                                                                                 \
  } while (0)
