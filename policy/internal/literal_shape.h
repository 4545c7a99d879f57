// A statement's literal shape: its text with the contents of every integer and
// string literal replaced by a marker byte, for the analysis cache to share
// one analysis among simple-protocol queries that differ only in their
// literals (`... WHERE aid = 5` and `... WHERE aid = 12345`), which psql,
// pgbench -M simple and drivers that interpolate parameters (psycopg2,
// ActiveRecord without prepared statements) send for every statement.
//
// Only a small, unambiguous subset of SQL gets a shape; anything else gives
// nullopt and is analysed by its exact text as before. Outside string
// literals the subset is ASCII letters, digits, `_`, white space, double-quoted
// identifiers without doubled quotes, and ( ) , ; . = < > + - * / %. Integer
// literals are runs of digits not touching a letter, digit, `_`, `.` or `$`
// (marked by whether they fit in int32, which decides their token kind);
// string literals are '...' holding printable ASCII, tab, CR or LF, without a
// backslash or a doubled quote, and not prefixed (E'', B'', X'', N'', U&'').
// Comments, casts (`::`), `$` (parameters, dollar quotes), brackets and every
// other operator character are outside it, and so are the few words whose
// integer argument the grammar keeps outside a constant node (float(p),
// CURRENT_TIME(p), CURRENT_TIMESTAMP(p), LOCALTIME(p), LOCALTIMESTAMP(p),
// FETCH and MOVE counts). Every byte that is not literal
// content is kept as it is, so two texts with the same shape differ only in
// the contents of their literals, and PostgreSQL's lexer cuts both into the
// same tokens: their parse trees differ only in the values of their constants.
//
//   LiteralShape("SELECT a FROM t WHERE id = 42 AND s = 'x'")
//     == "SELECT a FROM t WHERE id = \x01 AND s = '\x02'"
//   LiteralShape("SELECT 1.5")  == nullopt   (not an integer)
//   LiteralShape("SELECT E'a'") == nullopt   (prefixed string)
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace pgb::policy::internal {

inline constexpr char kIntegerMarker = '\x01';  // fits in int32: the lexer's ICONST
inline constexpr char kStringMarker = '\x02';
inline constexpr char kBigIntegerMarker = '\x03';  // does not: the lexer's FCONST

std::optional<std::string> LiteralShape(std::string_view sql);

}  // namespace pgb::policy::internal
