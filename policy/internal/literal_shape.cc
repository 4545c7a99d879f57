#include "policy/internal/literal_shape.h"

namespace pgb::policy::internal {
namespace {

bool IsLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
// Inside a string or quoted identifier: printable ASCII and line breaks.
bool IsQuotable(char c) { return (c >= 0x20 && c <= 0x7e) || c == '\t' || c == '\n' || c == '\r'; }
bool IsOperator(char c) {
  switch (c) {
    case '(':
    case ')':
    case ',':
    case ';':
    case '.':
    case '=':
    case '<':
    case '>':
    case '+':
    case '-':
    case '*':
    case '/':
    case '%':
      return true;
    default:
      return false;
  }
}

// Grammar rules that put an integer literal's value somewhere other than a
// constant node: float(p) picks float4 or float8, and CURRENT_TIME(p) and its
// kin keep p as the function's typmod (FETCH and MOVE counts too). A text
// naming one of them gets no shape.
bool IsValueInTreeKeyword(std::string_view word) {
  constexpr std::string_view kWords[] = {
      "float", "current_time", "current_timestamp", "localtime", "localtimestamp", "fetch", "move"};
  for (std::string_view k : kWords) {
    if (word.size() != k.size()) continue;
    bool same = true;
    for (size_t i = 0; i < k.size() && same; ++i) {
      const char c = word[i] >= 'A' && word[i] <= 'Z' ? static_cast<char>(word[i] + 32) : word[i];
      same = c == k[i];
    }
    if (same) return true;
  }
  return false;
}

// PostgreSQL's lexer makes a digit run an integer constant when its value
// fits in int32 and a numeric one otherwise; only the former may stand where
// the grammar wants an integer (varchar(n), time(p)).
bool FitsInt32(std::string_view digits) {
  while (digits.size() > 1 && digits[0] == '0') digits.remove_prefix(1);
  constexpr std::string_view kMax = "2147483647";
  return digits.size() < kMax.size() || (digits.size() == kMax.size() && digits <= kMax);
}

}  // namespace

std::optional<std::string> LiteralShape(std::string_view sql) {
  std::string shape;
  shape.reserve(sql.size());
  const size_t n = sql.size();
  size_t i = 0;
  while (i < n) {
    const char c = sql[i];
    if (IsLetter(c)) {  // an identifier or keyword, digits and all
      const size_t start = i;
      while (i < n && (IsLetter(sql[i]) || IsDigit(sql[i]))) ++i;
      // E'..', B'..', X'..', N'..' and identifier$: other lexer rules.
      if (i < n && (sql[i] == '\'' || sql[i] == '$')) return std::nullopt;
      if (IsValueInTreeKeyword(sql.substr(start, i - start))) return std::nullopt;
      shape.append(sql, start, i - start);
    } else if (IsDigit(c)) {
      if (i > 0 && sql[i - 1] == '.') return std::nullopt;  // .5 is numeric
      const size_t start = i;
      while (i < n && IsDigit(sql[i])) ++i;
      // 1.5, 1e5, 1abc (trailing junk), 0x1F: not a plain integer.
      if (i < n && (IsLetter(sql[i]) || sql[i] == '.' || sql[i] == '$')) return std::nullopt;
      shape += FitsInt32(sql.substr(start, i - start)) ? kIntegerMarker : kBigIntegerMarker;
    } else if (c == '\'') {
      ++i;
      while (i < n && sql[i] != '\'') {
        if (sql[i] == '\\' || !IsQuotable(sql[i])) return std::nullopt;
        ++i;
      }
      if (i == n) return std::nullopt;                           // unterminated
      if (i + 1 < n && sql[i + 1] == '\'') return std::nullopt;  // 'it''s'
      ++i;
      shape += '\'';
      shape += kStringMarker;
      shape += '\'';
    } else if (c == '"') {  // a quoted identifier: kept as it is
      const size_t start = i++;
      while (i < n && sql[i] != '"') {
        if (!IsQuotable(sql[i])) return std::nullopt;
        ++i;
      }
      if (i == n || (i + 1 < n && sql[i + 1] == '"')) return std::nullopt;
      ++i;
      shape.append(sql, start, i - start);
    } else if (IsSpace(c)) {
      shape += c;
      ++i;
    } else if (IsOperator(c)) {
      // Comments: -- and /* (and */ closing nothing) are outside the subset.
      if (i + 1 < n && ((c == '-' && sql[i + 1] == '-') || (c == '/' && sql[i + 1] == '*') ||
                        (c == '*' && sql[i + 1] == '/'))) {
        return std::nullopt;
      }
      shape += c;
      ++i;
    } else {
      return std::nullopt;
    }
  }
  return shape;
}

}  // namespace pgb::policy::internal
