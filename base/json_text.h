// The one JSON string escaper: text as a JSON string literal, quotes
// included. Quotes and backslashes are escaped, \n \r \t by name, other
// control characters as \u00XX; valid UTF-8 passes through and each byte of
// an invalid sequence becomes U+FFFD (base/utf8.h), so the output is always
// valid JSON whatever the input. Used by the commands' --json output, the
// audit records and anything else that writes JSON.
//
//   std::string out = Cat("{\"ok\":false,\"error\":", JsonString(message), "}");
//
// PutJsonString writes into room the caller reserved (at least
// JsonStringBound(text.size()) bytes), for the audit writer, which formats a
// whole record without growing a string piece by piece.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace pgb {

std::string JsonString(std::string_view text);

// JsonString(text) appended to `out`.
void AppendJsonString(std::string_view text, std::string* out);

// At most 6 bytes per input byte (\u00XX) plus the quotes.
constexpr size_t JsonStringBound(size_t length) { return 6 * length + 2; }

// Writes JsonString(text) at `p`; returns the end of what it wrote.
char* PutJsonString(char* p, std::string_view text);

}  // namespace pgb
