// Early-return helpers for absl::Status / absl::StatusOr, the one error idiom of LeoAM.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define LEOAM_CONCAT_INNER_(a, b) a##b
#define LEOAM_CONCAT_(a, b) LEOAM_CONCAT_INNER_(a, b)

// Returns from the enclosing function with the status if `expr` is not OK.
#define RETURN_IF_ERROR(expr)                        \
  do {                                               \
    ::absl::Status leoam_status_ = (expr);           \
    if (!leoam_status_.ok()) return leoam_status_;   \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, F());` declares x from F()'s value, or returns F()'s error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(LEOAM_CONCAT_(leoam_statusor_, __LINE__), lhs, expr)

#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                           \
  if (!tmp.ok()) return tmp.status();          \
  lhs = std::move(tmp).value()
