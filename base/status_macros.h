// Small Status helpers: this Debian's Abseil (20220623) has no status macros.
//
//   PGB_RETURN_IF_ERROR(ParseHeader(bytes));
//   PGB_ASSIGN_OR_RETURN(Config config, LoadConfig(path));
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define PGB_STATUS_CONCAT_INNER(a, b) a##b
#define PGB_STATUS_CONCAT(a, b) PGB_STATUS_CONCAT_INNER(a, b)

#define PGB_RETURN_IF_ERROR(expr)                               \
  do {                                                          \
    if (absl::Status pgb_status_ = (expr); !pgb_status_.ok()) { \
      return pgb_status_;                                       \
    }                                                           \
  } while (0)

#define PGB_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return std::move(tmp).status();  \
  lhs = std::move(*tmp)

#define PGB_ASSIGN_OR_RETURN(lhs, expr) \
  PGB_ASSIGN_OR_RETURN_IMPL(PGB_STATUS_CONCAT(pgb_statusor_, __LINE__), lhs, expr)
