// MaskedValueMemory: the values a session's masks have hidden from it
// recently, so that the same values are hidden where the database quotes them
// outside result rows: the MESSAGE and HINT of errors and notices (`invalid
// input syntax for type integer: "ada@example.com"`), ParameterStatus values
// (`application_name` after set_config) and NOTIFY payloads.
//
// Bounded: the last kMaxValues values of kMinValueBytes..kMaxValueBytes
// bytes (a longer value is remembered by its first kMaxValueBytes bytes,
// which hides the part a message quotes first). Values shorter than
// kMinValueBytes are not remembered: hiding every "1" or "ab" in messages
// would garble them and protect nothing a guess would not find.
//
//   memory.Remember("ada@example.com");
//   memory.Scrub(text);  // every occurrence becomes "***************"
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace pgb {

class MaskedValueMemory {
 public:
  static constexpr size_t kMaxValues = 256;
  static constexpr size_t kMinValueBytes = 4;
  static constexpr size_t kMaxValueBytes = 256;

  void Remember(std::string_view value);
  // Overwrites every occurrence of a remembered value in `text` with '*'
  // (same length); returns how many it overwrote.
  size_t Scrub(char* text, size_t size) const;
  bool empty() const { return values_.empty(); }

 private:
  std::vector<std::string> values_;  // a ring once full
  size_t next_ = 0;
};

// Scrubs the string fields of one whole ErrorResponse, NoticeResponse,
// ParameterStatus or NotificationResponse (header included) in place; field
// codes, lengths and terminators are never touched. Returns how many values
// it overwrote; a malformed message is left as it is (0).
size_t ScrubMessage(const MaskedValueMemory& memory, char* message, size_t size);

}  // namespace pgb
