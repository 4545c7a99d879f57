// Pieces of SQL text: one statement's own text within an analysed Query, and
// an identifier written as PostgreSQL reads it back from a list-valued
// setting such as search_path.
//
//   SqlAnalysis a = AnalyseSql("SELECT 1;\n  DROP TABLE t;");
//   StatementText("SELECT 1;\n  DROP TABLE t;", a.statements[1]);  // "DROP TABLE t"
//   QuoteIdentifier("app");        // app
//   QuoteIdentifier("Billing q");  // "Billing q"
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "policy/statement.h"

namespace pgb::policy {

// The statement at the analyser's byte range of `sql` (a length of 0 runs to
// the end, as PostgreSQL's stmt_len does), without the white space around it
// (the blank between a statement and the previous one's semicolon, a trailing
// newline), as pg_stat_statements cleans a statement's text. Empty when the
// range lies outside `sql`.
std::string_view StatementText(std::string_view sql, uint32_t location, uint32_t length);
inline std::string_view StatementText(std::string_view sql, const StatementSummary& statement) {
  return StatementText(sql, statement.location, statement.length);
}

// `name` as is when it is all lower-case ASCII letters, digits and
// underscores and does not start with a digit, else in double quotes with
// inner quotes doubled. Keywords are not quoted: this is for the values of
// list-valued settings (search_path, GUC_LIST_QUOTE), which PostgreSQL splits
// with SplitIdentifierString, where a keyword is a plain name. Not for
// building SQL statements, where quote_identifier also quotes keywords.
std::string QuoteIdentifier(std::string_view name);

}  // namespace pgb::policy
