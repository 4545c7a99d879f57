#include "proto/error_status.h"

#include "absl/strings/cord.h"

namespace pgb::proto {
namespace {

constexpr std::string_view kSqlState = "pgbastion/sqlstate";
constexpr std::string_view kDetail = "pgbastion/detail";
constexpr std::string_view kHint = "pgbastion/hint";

// (Debian's Abseil has a string_view of its own.)
absl::string_view View(std::string_view s) { return absl::string_view(s.data(), s.size()); }

std::string PayloadOf(const absl::Status& status, std::string_view key) {
  auto value = status.GetPayload(View(key));  // absl::optional here
  return value ? std::string(*value) : std::string();
}

}  // namespace

absl::Status ErrorStatus(std::string_view sqlstate, std::string_view message,
                         std::string_view detail, std::string_view hint) {
  absl::Status status(absl::StatusCode::kFailedPrecondition, View(message));
  status.SetPayload(View(kSqlState), absl::Cord(View(sqlstate)));
  if (!detail.empty()) status.SetPayload(View(kDetail), absl::Cord(View(detail)));
  if (!hint.empty()) status.SetPayload(View(kHint), absl::Cord(View(hint)));
  return status;
}

ErrorFields ErrorFieldsOf(const absl::Status& status, std::string_view severity) {
  ErrorFields fields;
  fields.severity = std::string(severity);
  fields.sqlstate = PayloadOf(status, kSqlState);
  if (fields.sqlstate.empty()) fields.sqlstate = "XX000";
  fields.message = std::string(status.message());
  fields.detail = PayloadOf(status, kDetail);
  fields.hint = PayloadOf(status, kHint);
  return fields;
}

}  // namespace pgb::proto
