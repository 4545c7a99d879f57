// Classifying one statement of libpg_query's JSON parse tree into the
// StatementSummary the rules decide on (policy/statement.h). Used by
// AnalyseSql (policy/sql_analysis.h), which parses, splits and bounds the
// input; this file knows the statement kinds.
//
// Every field of every node is walked, so a function call or relation is found
// wherever it is written; the statement kinds below only decide what a
// relation undergoes (select, insert, ddl, ...) and which class the statement
// gets. A top-level node type missing from the table is refused (fail closed).
//
//   StatementSummary summary{.location = 0, .length = sql.size()};
//   absl::Status s = ClassifyStatement(raw_stmt["stmt"], sql, summary);
#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "policy/internal/parse_tree.h"
#include "policy/statement.h"

namespace pgb::policy::internal {

// Fills `summary` (whose location and length the caller has set) from `stmt`,
// the node in RawStmt.stmt. `sql` is the whole analysed text. An error
// (PermissionDeniedError) says why the statement cannot be classified.
[[nodiscard]] absl::Status ClassifyStatement(element stmt, std::string_view sql,
                                             StatementSummary& summary);

}  // namespace pgb::policy::internal
