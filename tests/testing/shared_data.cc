#include "tests/testing/shared_data.h"

#include <cstdlib>
#include <filesystem>

namespace leoam::testing {

std::string SharedDir() {
  const char* env = std::getenv("LEOAM_SHARED");
  return env != nullptr && *env != '\0' ? env : "../shared";
}

std::string SharedPath(const std::string& relative) {
  std::filesystem::path p = std::filesystem::path(SharedDir()) / relative;
  std::error_code ec;
  return std::filesystem::exists(p, ec) ? p.string() : "";
}

bool InCi() {
  const char* env = std::getenv("CI");
  return env != nullptr && std::string(env) == "true";
}

std::string BuildDir() {
  const char* env = std::getenv("LEOAM_BUILD_DIR");
  return env != nullptr ? env : ".";
}

std::string SourceDir() {
  const char* env = std::getenv("LEOAM_SOURCE_DIR");
  return env != nullptr ? env : ".";
}

}  // namespace leoam::testing
