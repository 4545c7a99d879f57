// Text built from pieces: the one way our code concatenates strings (STYLE.md
// rule 11). Cat returns the pieces one after another, Append adds them to the
// end of a string, Join puts a separator between the elements of a range.
//
// A piece is text (std::string, std::string_view, absl::string_view, a C
// string, one char) or a number. Numbers come out as absl::StrCat writes them,
// because absl::AlphaNum formats them: integers in decimal, float and double
// with six significant digits as "%g" does (0.5, 1e+06, 3.14159), absl::Hex
// and absl::Dec as they say. bool and enums are refused: spell out what the
// text should say (ok ? "yes" : "no", static_cast<int>(kind)).
//
// Why not absl::StrCat: Debian 12's Abseil has its own absl::string_view (not
// an alias of std::string_view), so absl::StrCat, absl::StrAppend and
// absl::StrJoin refuse std::string_view, the type our code passes text in;
// absl::StrCat also refuses a char. tests/check_one_mechanism.py fails on them
// in our sources. A message or output of three or more pieces goes through
// Cat or Append; two may still be joined with + ("DNS:" + name), and
// absl::StrFormat stays where the text needs a format (widths, precision).
//
//   std::string line = Cat("listener[", i, "].port: must be 1..", 65535);
//   Append(out, " (", why, ")");  // out += " (" + why + ")", without the temporary
//   std::string list = Join(std::vector<std::string_view>{"a", "b"}, " | ");  // "a | b"
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace pgb {
namespace str_cat_internal {

// Integers other than char and bool, float and double.
template <typename T>
concept Number = std::is_arithmetic_v<T> && !std::is_same_v<T, char> && !std::is_same_v<T, bool>;
template <typename T>
concept Enum = std::is_enum_v<T>;

// One piece as text. A number is formatted into the Piece itself, so the
// view lives only as long as the Piece: Cat and Append make both within one
// full expression. Only they make Pieces, so the constructors are explicit.
class Piece {
 public:
  explicit Piece(std::string_view text) : text_(text) {}
  explicit Piece(const std::string& text) : text_(text) {}
  // A null C string is empty text, as in absl::StrCat.
  explicit Piece(const char* text)
      : text_(text == nullptr ? std::string_view() : std::string_view(text)) {}
  explicit Piece(absl::string_view text) : text_(text.data(), text.size()) {}
  // The character itself, not its code (absl::StrCat refuses a char).
  explicit Piece(char c) : digits_{c}, text_(digits_, 1) {}

  template <Number T>
  explicit Piece(T number) : Piece(absl::AlphaNum(number)) {}
  explicit Piece(absl::Hex hex) : Piece(absl::AlphaNum(hex)) {}
  explicit Piece(absl::Dec dec) : Piece(absl::AlphaNum(dec)) {}

  // Cat(ok) would say "1", Cat(kind) a number: say what is meant instead.
  // (Without these, both would convert to char.)
  Piece(bool) = delete;
  template <Enum T>
  Piece(T) = delete;

  Piece(const Piece&) = delete;
  Piece& operator=(const Piece&) = delete;

  std::string_view view() const { return text_; }

 private:
  explicit Piece(const absl::AlphaNum& formatted);

  // Room for any number absl::AlphaNum writes (at most 20 digits and a sign,
  // or a padded Hex/Dec of at most 20 characters).
  char digits_[32];
  std::string_view text_;
};

[[nodiscard]] std::string CatPieces(std::initializer_list<std::string_view> pieces);
void AppendPieces(std::string& out, std::initializer_list<std::string_view> pieces);

}  // namespace str_cat_internal

// The pieces, in order, in one allocation.
template <typename... Parts>
[[nodiscard]] std::string Cat(const Parts&... parts) {
  return str_cat_internal::CatPieces({str_cat_internal::Piece(parts).view()...});
}

// Adds the pieces to the end of `out`, growing it at most once. No piece may
// point into `out` itself (asserted in debug builds, as absl::StrAppend does).
template <typename... Parts>
void Append(std::string& out, const Parts&... parts) {
  str_cat_internal::AppendPieces(out, {str_cat_internal::Piece(parts).view()...});
}

// The elements of `parts` (anything that converts to std::string_view) with
// `separator` between them.
template <typename Range>
[[nodiscard]] std::string Join(const Range& parts, std::string_view separator) {
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
