#include "common/log.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace leoam {
namespace {

LogLevel LevelFromEnv() {
  const char* env = std::getenv("LEOAM_LOG_LEVEL");
  if (env == nullptr) return LogLevel::kInfo;
  std::string v = absl::AsciiStrToLower(env);
  if (v == "debug") return LogLevel::kDebug;
  if (v == "warning" || v == "warn") return LogLevel::kWarning;
  if (v == "error") return LogLevel::kError;
  return LogLevel::kInfo;
}

std::atomic<int>& MinLevelStorage() {
  static std::atomic<int> level{static_cast<int>(LevelFromEnv())};
  return level;
}

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "D";
    case LogLevel::kInfo: return "I";
    case LogLevel::kWarning: return "W";
    case LogLevel::kError: return "E";
  }
  return "?";
}

}  // namespace

LogLevel MinLogLevel() { return static_cast<LogLevel>(MinLevelStorage().load(std::memory_order_relaxed)); }

void SetMinLogLevel(LogLevel level) { MinLevelStorage().store(static_cast<int>(level)); }

void LogMessage(LogLevel level, const char* file, int line, std::string_view message) {
  const char* base = std::strrchr(file, '/');
  base = base ? base + 1 : file;
  std::string text = absl::StrFormat("%s %s %s:%d] %s\n",
                                     absl::FormatTime("%H:%M:%E3S", absl::Now(), absl::LocalTimeZone()),
                                     LevelName(level), base, line, message);
  // One fwrite per line keeps lines from different threads whole.
  std::fwrite(text.data(), 1, text.size(), stderr);
}

}  // namespace leoam
