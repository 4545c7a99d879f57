#include "core/masked_values.h"

#include <algorithm>
#include <cstring>

#include "proto/protocol.h"

namespace pgb {

void MaskedValueMemory::Remember(std::string_view value) {
  if (value.size() < kMinValueBytes) return;
  value = value.substr(0, kMaxValueBytes);
  for (const std::string& v : values_) {
    if (v == value) return;
  }
  if (values_.size() < kMaxValues) {
    values_.emplace_back(value);
  } else {
    values_[next_].assign(value);
    next_ = (next_ + 1) % kMaxValues;
  }
}

size_t MaskedValueMemory::Scrub(char* text, size_t size) const {
  size_t scrubbed = 0;
  const std::string_view haystack(text, size);
  for (const std::string& v : values_) {
    for (size_t at = haystack.find(v); at != std::string_view::npos;
         at = haystack.find(v, at + v.size())) {
      std::memset(text + at, '*', v.size());
      ++scrubbed;
    }
  }
  return scrubbed;
}

namespace {

// Scrubs each NUL-terminated string in [p, end); false when one is not
// terminated.
bool ScrubStrings(const MaskedValueMemory& memory, char* p, char* end, bool field_codes,
                  size_t& scrubbed) {
  while (p < end) {
    if (field_codes) {
      if (*p == '\0') return p + 1 == end;  // the final terminator
      ++p;                                  // the field's code
    }
    char* nul = static_cast<char*>(std::memchr(p, '\0', static_cast<size_t>(end - p)));
    if (nul == nullptr) return false;
    scrubbed += memory.Scrub(p, static_cast<size_t>(nul - p));
    p = nul + 1;
  }
  return !field_codes;
}

}  // namespace

size_t ScrubMessage(const MaskedValueMemory& memory, char* message, size_t size) {
  if (memory.empty() || size <= proto::kHeaderLength) return 0;
  char* body = message + proto::kHeaderLength;
  char* end = message + size;
  size_t scrubbed = 0;
  switch (message[0]) {
    case proto::kPqMsg_ErrorResponse:
    case proto::kPqMsg_NoticeResponse:
      ScrubStrings(memory, body, end, /*field_codes=*/true, scrubbed);
      break;
    case proto::kPqMsg_ParameterStatus:
      ScrubStrings(memory, body, end, /*field_codes=*/false, scrubbed);
      break;
    case proto::kPqMsg_NotificationResponse:
      if (end - body > 4) ScrubStrings(memory, body + 4, end, /*field_codes=*/false, scrubbed);
      break;
    default:
      break;
  }
  return scrubbed;
}

}  // namespace pgb
