#include "base/json_text.h"

#include <cassert>
#include <cstdint>
#include <cstring>

#include "base/utf8.h"

namespace pgb {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

char* Put(char* p, std::string_view s) {
  std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

// True if any of the 8 bytes in `v` is a control character, '"', '\\' or
// not ASCII: the bytes PutJsonString does not copy as they are.
bool NeedsAttention(uint64_t v) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  const auto has_zero = [](uint64_t x) { return ((x - kOnes) & ~x & kHigh) != 0; };
  const bool below_space = ((v - 0x20 * kOnes) & ~v & kHigh) != 0;
  return (v & kHigh) != 0 || below_space || has_zero(v ^ ('"' * kOnes)) ||
         has_zero(v ^ ('\\' * kOnes));
}

}  // namespace

char* PutJsonString(char* p, std::string_view text) {
  *p++ = '"';
  const char* s = text.data();
  const char* const end = s + text.size();
  while (s < end) {
    // Plain runs eight bytes at a time (most text is plain ASCII).
    while (end - s >= 8) {
      uint64_t v;
      std::memcpy(&v, s, 8);
      if (NeedsAttention(v)) break;
      std::memcpy(p, s, 8);
      p += 8;
      s += 8;
    }
    if (s == end) break;
    const unsigned char c = static_cast<unsigned char>(*s);
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      *p++ = *s++;
      continue;
    }
    if (c >= 0x80) {
      const size_t i = static_cast<size_t>(s - text.data());
      const size_t n = Utf8SequenceLength(text, i);
      if (n > 0) {
        p = Put(p, std::string_view(s, n));
        s += n;
      } else {
        p = Put(p, "\xEF\xBF\xBD");  // U+FFFD
        ++s;
      }
      continue;
    }
    switch (c) {
      case '"':
        p = Put(p, "\\\"");
        break;
      case '\\':
        p = Put(p, "\\\\");
        break;
      case '\n':
        p = Put(p, "\\n");
        break;
      case '\r':
        p = Put(p, "\\r");
        break;
      case '\t':
        p = Put(p, "\\t");
        break;
      default: {
        const char escape[6] = {'\\', 'u', '0', '0', kHexDigits[c >> 4], kHexDigits[c & 0xF]};
        p = Put(p, std::string_view(escape, sizeof(escape)));
      }
    }
    ++s;
  }
  *p++ = '"';
  return p;
}

void AppendJsonString(std::string_view text, std::string* out) {
  const size_t start = out->size();
  out->resize(start + JsonStringBound(text.size()));
  char* const end = PutJsonString(out->data() + start, text);
  assert(end <= out->data() + out->size());
  out->resize(static_cast<size_t>(end - out->data()));
}

std::string JsonString(std::string_view text) {
  std::string out;
  AppendJsonString(text, &out);
  return out;
}

}  // namespace pgb
