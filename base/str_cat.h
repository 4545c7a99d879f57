// String building on std types. Debian's Abseil has its own absl::string_view
// (not an alias of std::string_view), so absl::StrCat and absl::StrJoin do not
// take std::string_view; these two do.
//
//   std::string line = Cat("listener[", i, "].port: must be 1..", 65535);
//   std::string list = Join(std::vector<std::string_view>{"a", "b"}, " | ");  // "a | b"
#pragma once

#include <string>
#include <string_view>
#include <type_traits>

namespace pgb {
namespace str_cat_internal {

inline void AppendPart(std::string& out, std::string_view part) { out.append(part); }
// Not char or bool: Cat('x') and Cat(true) would print numbers.
template <typename T>
requires(std::is_integral_v<T> && !std::is_same_v<T, char> &&
         !std::is_same_v<T, bool>) void AppendPart(std::string& out, T value) {
  out += std::to_string(value);
}

}  // namespace str_cat_internal

// Text and integers, in order.
template <typename... Parts>
std::string Cat(const Parts&... parts) {
  std::string out;
  (str_cat_internal::AppendPart(out, parts), ...);
  return out;
}

// The elements of `parts` (anything that converts to std::string_view) with
// `separator` between them.
template <typename Range>
std::string Join(const Range& parts, std::string_view separator) {
  std::string out;
  bool first = true;
  for (const auto& part : parts) {
    if (!first) out.append(separator);
    first = false;
    out.append(std::string_view(part));
  }
  return out;
}

}  // namespace pgb
