#include "base/json_text.h"

#include <iterator>
#include <string>
#include <string_view>

#include "gtest/gtest.h"

namespace pgb {
namespace {

TEST(JsonStringTest, PlainTextIsQuoted) { EXPECT_EQ(JsonString("abc"), "\"abc\""); }

TEST(JsonStringTest, QuotesBackslashesAndControlsAreEscaped) {
  EXPECT_EQ(JsonString("a\"b\\c\nd\te\r"), "\"a\\\"b\\\\c\\nd\\te\\r\"");
  EXPECT_EQ(JsonString(std::string("\x01\x1f", 2)), "\"\\u0001\\u001f\"");
}

TEST(JsonStringTest, Utf8PassesThrough) { EXPECT_EQ(JsonString("pässwörd"), "\"pässwörd\""); }

// Invalid UTF-8 never makes invalid JSON: each bad byte becomes U+FFFD.
TEST(JsonStringTest, InvalidUtf8BecomesReplacementCharacters) {
  EXPECT_EQ(JsonString("a\xFF"
                       "b"),
            "\"a\xEF\xBF\xBD"
            "b\"");
}

TEST(JsonStringTest, EscapesControlCharactersAndInvalidUtf8) {
  std::string out;
  constexpr char kText[] = "a\"b\\c\n\t\x01 caf\xC3\xA9 \xFF end\xE2\x82";
  AppendJsonString(std::string_view(kText, sizeof(kText) - 1), &out);
  EXPECT_EQ(out,
            "\"a\\\"b\\\\c\\n\\t\\u0001 caf\xC3\xA9 \xEF\xBF\xBD end\xEF\xBF\xBD\xEF\xBF\xBD\"");
  out.clear();
  AppendJsonString("\xED\xA0\x80", &out);  // a UTF-16 surrogate is not UTF-8
  EXPECT_EQ(out, "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");
}

// Every byte that needs escaping, at every offset of a longer plain text:
// the escaper checks eight bytes at a time, and a special byte must not
// slip through a word that looked plain.
TEST(JsonStringTest, EscapesSpecialBytesAtEveryOffset) {
  const std::string_view specials[] = {
      "\"", "\\", std::string_view("\0", 1), "\x1f", "\n", "\x80", "\xC3\xA9", "\xFF"};
  const std::string_view escaped[] = {"\\\"", "\\\\",         "\\u0000",  "\\u001f",
                                      "\\n",  "\xEF\xBF\xBD", "\xC3\xA9", "\xEF\xBF\xBD"};
  for (size_t k = 0; k < std::size(specials); ++k) {
    for (size_t at = 0; at < 24; ++at) {
      const std::string plain(24, 'x');
      const std::string text = plain.substr(0, at) + std::string(specials[k]) + plain.substr(at);
      const std::string expected =
          "\"" + plain.substr(0, at) + std::string(escaped[k]) + plain.substr(at) + "\"";
      std::string out;
      AppendJsonString(text, &out);
      EXPECT_EQ(out, expected) << "special " << k << " at " << at;
    }
  }
  std::string out;
  AppendJsonString("\x7f~ !#[]{}", &out);  // DEL and the printable edges stay as they are
  EXPECT_EQ(out, "\"\x7f~ !#[]{}\"");
}

}  // namespace
}  // namespace pgb
