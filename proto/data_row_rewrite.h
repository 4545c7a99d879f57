// Rewriting result rows in flight, for masking: RowDescription is read into
// the fields a mask plan needs (policy/masking.h decides per column), and each
// DataRow is rewritten column by column. When every rewritten value keeps its
// byte length the row is rewritten where it lies, in the receive buffer, and
// relayed without a copy; otherwise it is re-framed into a new message.
// ErrorResponse and NoticeResponse fields that can quote row values (DETAIL,
// CONTEXT, the internal query) are cut out with WithoutErrorFields.
// Spec: https://www.postgresql.org/docs/15/protocol-message-formats.html
//
//   absl::StatusOr<std::vector<ResultField>> fields = ParseRowDescription(message);
//   std::vector<ColumnRewrite> plan = ...;            // one per field
//   absl::StatusOr<RowRewrite> r = RewriteDataRow(plan, row_bytes, row_size, rebuilt);
//   // r->how kUnchanged / kInPlace: relay row_bytes as they are; kRebuilt: relay `rebuilt`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace pgb::proto {

// One described field of a RowDescription.
struct ResultField {
  std::string_view name;  // into the message
  uint32_t type_oid = 0;
  int16_t format = 0;  // 0 text, 1 binary
};

// A whole RowDescription message (header included). Fails on a malformed
// one (a field cut short, bytes after the last field). The field count is
// unsigned (0..65535).
absl::StatusOr<std::vector<ResultField>> ParseRowDescription(std::string_view message);

// What happens to the values of one result column. NULL stays NULL.
enum class ValueRewrite : uint8_t {
  kPass,     // as the database sent it
  kNull,     // NULL
  kReplace,  // the replacement text
  kPartial,  // every character but the last `keep` becomes '*' (characters of UTF-8)
};

struct ColumnRewrite {
  ValueRewrite action = ValueRewrite::kPass;
  uint32_t keep = 0;             // kPartial
  std::string_view replacement;  // kReplace; must outlive the rewrite
};

struct RowRewrite {
  enum How : uint8_t {
    kUnchanged,  // no value needed rewriting (a NULL, or nothing masked)
    kInPlace,    // rewritten in the message's own bytes, same length
    kRebuilt,    // the new message was appended to `rebuilt`; the old one is untouched
  };
  How how = kUnchanged;
  uint16_t masked_values = 0;  // values rewritten (NULLs stay and are not counted)
};

// Rewrites one whole DataRow (header included) by `plan`. Fails, leaving the
// message untouched, when the row does not match the plan's column count or
// a value's length runs past the message: the caller must not relay it.
absl::StatusOr<RowRewrite> RewriteDataRow(const std::vector<ColumnRewrite>& plan, char* message,
                                          size_t size, std::string& rebuilt);

// Appends `message` (a whole ErrorResponse or NoticeResponse, header
// included) to `out` without the fields whose codes are in `codes`. False,
// appending nothing, when the message is malformed (a field without its NUL,
// no final NUL): the caller must not relay it.
[[nodiscard]] bool AppendWithoutErrorFields(std::string_view message, std::string_view codes,
                                            std::string& out);

}  // namespace pgb::proto
