#include "base/utf8.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace pgb {

size_t Utf8SequenceLength(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > text.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
  if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
  return n;
}

std::pair<size_t, size_t> FirstInvalidUtf8(std::string_view text) {
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    // Plain ASCII eight bytes at a time: most SQL and most audit text is.
    while (n - i >= 8) {
      uint64_t v;
      std::memcpy(&v, text.data() + i, 8);
      if ((v & 0x8080808080808080ULL) != 0) break;
      i += 8;
    }
    if (i == n) break;
    const size_t length = Utf8SequenceLength(text, i);
    if (length == 0) {
      // The length the lead byte claims (1 for a byte that leads nothing).
      const unsigned char c = static_cast<unsigned char>(text[i]);
      const size_t claimed = (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
      return {i, std::min(claimed, n - i)};
    }
    i += length;
  }
  return {n, 0};
}

}  // namespace pgb
