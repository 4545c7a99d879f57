#include "policy/sql_text.h"

namespace pgb::policy {
namespace {

// PostgreSQL 15's scanner_isspace (src/backend/parser/scansup.c).
bool IsSqlSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }

}  // namespace

std::string_view StatementText(std::string_view sql, uint32_t location, uint32_t length) {
  if (location >= sql.size()) return {};
  std::string_view text = sql.substr(location);
  if (length != 0) text = text.substr(0, length);
  while (!text.empty() && IsSqlSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsSqlSpace(text.back())) text.remove_suffix(1);
  return text;
}

std::string QuoteIdentifier(std::string_view name) {
  bool plain = !name.empty() && !(name[0] >= '0' && name[0] <= '9');
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) plain = false;
  }
  if (plain) return std::string(name);
  std::string quoted = "\"";
  for (char c : name) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  quoted += '"';
  return quoted;
}

}  // namespace pgb::policy
