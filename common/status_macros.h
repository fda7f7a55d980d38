#pragma once

// abseil 20220623 has absl::Status and absl::StatusOr but no public RETURN_IF_ERROR.
// These two macros are the whole of Vigil's error-propagation sugar.

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define VIGIL_STATUS_CONCAT_INNER_(a, b) a##b
#define VIGIL_STATUS_CONCAT_(a, b) VIGIL_STATUS_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define RETURN_IF_ERROR(expr)                                 \
  do {                                                        \
    if (::absl::Status _vigil_st = (expr); !_vigil_st.ok()) { \
      return _vigil_st;                                       \
    }                                                         \
  } while (0)

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status, otherwise moves
// the value into `lhs` (which may be a declaration: `ASSIGN_OR_RETURN(auto x, F());`).
#define ASSIGN_OR_RETURN(lhs, rexpr) \
  ASSIGN_OR_RETURN_IMPL_(VIGIL_STATUS_CONCAT_(_vigil_sor_, __LINE__), lhs, rexpr)

#define ASSIGN_OR_RETURN_IMPL_(sor, lhs, rexpr)  \
  auto sor = (rexpr);                            \
  if (!sor.ok()) return std::move(sor).status(); \
  lhs = std::move(sor).value()
