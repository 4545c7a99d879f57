#include "base/str_cat.h"

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace pgb {
namespace {

TEST(CatTest, EveryKindOfTextInOrder) {
  const std::string s = "string";
  const std::string_view sv = "std_view";
  const absl::string_view av = "absl_view";
  const char* c_str = "c_str";
  EXPECT_EQ(Cat(s, "|", sv, "|", av, "|", c_str, "|", 'x'), "string|std_view|absl_view|c_str|x");
  EXPECT_EQ(Cat(), "");
  EXPECT_EQ(Cat(""), "");
  EXPECT_EQ(Cat(static_cast<const char*>(nullptr), "after"), "after");  // as absl::StrCat
}

// A char is the character; other one-byte integers are numbers.
TEST(CatTest, CharIsTextSmallIntegersAreNumbers) {
  EXPECT_EQ(Cat("type '", 'Q', "'"), "type 'Q'");
  EXPECT_EQ(Cat('\0').size(), 1u);
  EXPECT_EQ(Cat(static_cast<unsigned char>(200), " ", static_cast<signed char>(-3)), "200 -3");
  EXPECT_EQ(Cat(std::uint8_t{7}), "7");
}

TEST(CatTest, IntegersInDecimal) {
  EXPECT_EQ(Cat(0, " ", -1, " ", 65535), "0 -1 65535");
  EXPECT_EQ(Cat(std::numeric_limits<int64_t>::min()), "-9223372036854775808");
  EXPECT_EQ(Cat(std::numeric_limits<uint64_t>::max()), "18446744073709551615");
  EXPECT_EQ(Cat(size_t{10000}, " bytes"), "10000 bytes");
  EXPECT_EQ(Cat(short{-5}, static_cast<unsigned short>(5)), "-55");
}

// What absl::StrCat writes: six significant digits, "%g" style.
TEST(CatTest, FloatingPointAsAbslStrCat) {
  EXPECT_EQ(Cat(0.5), "0.5");
  EXPECT_EQ(Cat(1e6), "1e+06");
  EXPECT_EQ(Cat(1e-5), "1e-05");
  EXPECT_EQ(Cat(3.14159265), "3.14159");
  EXPECT_EQ(Cat(100000.0), "100000");
  EXPECT_EQ(Cat(123456789.0), "1.23457e+08");
  EXPECT_EQ(Cat(-0.0), "-0");
  EXPECT_EQ(Cat(0.1f), "0.1");
  EXPECT_EQ(Cat(std::numeric_limits<double>::infinity()), "inf");
  EXPECT_EQ(Cat(std::numeric_limits<double>::quiet_NaN()), "nan");
}

TEST(CatTest, HexAndDecAsTheySay) {
  EXPECT_EQ(Cat("0x", absl::Hex(0xab)), "0xab");
  EXPECT_EQ(Cat("0x", absl::Hex(static_cast<unsigned char>(5), absl::kZeroPad2)), "0x05");
  EXPECT_EQ(Cat(absl::Dec(-7, absl::kZeroPad4)), "-007");
  EXPECT_EQ(Cat(absl::Hex(std::numeric_limits<uint64_t>::max(), absl::kSpacePad20)),
            "    ffffffffffffffff");
}

// bool and enums do not compile: Cat(true) would say "1", and an unscoped
// enum would otherwise become a char.
enum Unscoped { kUnscoped = 65 };
enum class Scoped { kScoped = 65 };
static_assert(!std::is_constructible_v<str_cat_internal::Piece, bool>);
static_assert(!std::is_constructible_v<str_cat_internal::Piece, Unscoped>);
static_assert(!std::is_constructible_v<str_cat_internal::Piece, Scoped>);
static_assert(!std::is_constructible_v<str_cat_internal::Piece, const void*>);
static_assert(std::is_constructible_v<str_cat_internal::Piece, char>);
static_assert(std::is_constructible_v<str_cat_internal::Piece, double>);

TEST(AppendTest, AddsToTheEnd) {
  std::string out = "errors:";
  Append(out, " ", 3, " (", std::string_view("first"), ")");
  EXPECT_EQ(out, "errors: 3 (first)");
  Append(out);
  EXPECT_EQ(out, "errors: 3 (first)");
}

// Past the short-string buffer: the text already there and every piece survive
// the one reallocation.
TEST(AppendTest, LongPiecesAfterExistingText) {
  std::string out = "a";
  const std::string long_piece(100, 'x');
  Append(out, long_piece, 12345, long_piece);
  EXPECT_EQ(out, "a" + long_piece + "12345" + long_piece);
}

TEST(JoinTest, SeparatorBetweenElements) {
  EXPECT_EQ(Join(std::vector<std::string_view>{"a", "b", "c"}, " | "), "a | b | c");
  EXPECT_EQ(Join(std::vector<std::string>{"only"}, ", "), "only");
  EXPECT_EQ(Join(std::vector<std::string>{}, ", "), "");
}

}  // namespace
}  // namespace pgb
