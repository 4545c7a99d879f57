// One error convention for failures that end in an ErrorResponse: an
// absl::Status whose payloads carry the SQLSTATE, and the DETAIL and HINT
// when there are any, so that code far from the socket (login, startup
// parameters) reports failures like everything else and the session turns
// them into the message the client sees.
//
//   return proto::ErrorStatus(sqlstate::kInsufficientPrivilege, "not allowed", "", "Use SET.");
//   ...
//   proto::AppendErrorResponse(out, proto::ErrorFieldsOf(status, "FATAL"));
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "proto/messages.h"

namespace pgb::proto {

// A failure with its SQLSTATE (and optional DETAIL and HINT).
[[nodiscard]] absl::Status ErrorStatus(std::string_view sqlstate, std::string_view message,
                                       std::string_view detail = "", std::string_view hint = "");

// The fields of the ErrorResponse for `status` (not OK). A status made
// elsewhere, without a SQLSTATE payload, becomes an internal error (XX000).
[[nodiscard]] ErrorFields ErrorFieldsOf(const absl::Status& status, std::string_view severity);

}  // namespace pgb::proto
