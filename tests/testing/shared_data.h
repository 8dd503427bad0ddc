// Access to the shared test data (../shared: models, vocab, tokenizers) and to built binaries.
#pragma once

#include <string>

#include "gtest/gtest.h"

namespace leoam::testing {

// LEOAM_SHARED, or "../shared" when unset.
std::string SharedDir();

// Full path of `relative` under SharedDir(), or "" when it does not exist.
std::string SharedPath(const std::string& relative);

// True when running under CI (CI=true): missing shared data is then a failure, not a skip.
bool InCi();

// The build tree (LEOAM_BUILD_DIR, set by CTest) and source tree (LEOAM_SOURCE_DIR).
std::string BuildDir();
std::string SourceDir();

}  // namespace leoam::testing

// Declares `var` as the path of shared file `relative`; when it is missing, fails under CI and
// skips elsewhere, with a message naming the path.
#define LEOAM_REQUIRE_SHARED(var, relative)                                                        \
  std::string var = ::leoam::testing::SharedPath(relative);                                        \
  if (var.empty()) {                                                                               \
    if (::leoam::testing::InCi()) {                                                                \
      FAIL() << "shared test data " << (relative) << " not found under " << ::leoam::testing::SharedDir(); \
    } else {                                                                                       \
      GTEST_SKIP() << "shared test data " << (relative) << " not found under "                     \
                   << ::leoam::testing::SharedDir() << " (set LEOAM_SHARED)";                      \
    }                                                                                              \
  }
