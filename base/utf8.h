// The one UTF-8 check: valid means what PostgreSQL's pg_utf8_islegal accepts
// (shortest form only, no UTF-16 surrogates, nothing above U+10FFFF). Used by
// the SQL analyser (invalid statement text is refused with 22021) and the
// JSON escaper (invalid bytes become U+FFFD).
//
//   auto [at, length] = FirstInvalidUtf8(sql);
//   if (length != 0) return BadEncoding(sql, at, length);
#pragma once

#include <cstddef>
#include <string_view>
#include <utility>

namespace pgb {

// The length of the valid UTF-8 sequence starting at text[i] (i < size):
// 1 for ASCII, 2 to 4 for a multi-byte character; 0 if the bytes there are
// not a valid sequence (a stray continuation byte, an overlong form, a
// surrogate, a value above U+10FFFF, or a sequence cut short by the end).
size_t Utf8SequenceLength(std::string_view text, size_t i);

// The offset of the first invalid sequence and the number of bytes it claims
// (its lead byte's length, cut at the end of the text; at least 1), as
// PostgreSQL reports them; {text.size(), 0} when all of `text` is valid.
std::pair<size_t, size_t> FirstInvalidUtf8(std::string_view text);

inline bool IsValidUtf8(std::string_view text) { return FirstInvalidUtf8(text).second == 0; }

}  // namespace pgb
