#include "base/json_text.h"

#include <string>

#include "gtest/gtest.h"

namespace pgb {
namespace {

TEST(JsonStringTest, PlainTextIsQuoted) { EXPECT_EQ(JsonString("abc"), "\"abc\""); }

TEST(JsonStringTest, QuotesBackslashesAndControlsAreEscaped) {
  EXPECT_EQ(JsonString("a\"b\\c\nd\te\r"), "\"a\\\"b\\\\c\\nd\\te\\r\"");
  EXPECT_EQ(JsonString(std::string("\x01\x1f", 2)), "\"\\u0001\\u001f\"");
}

TEST(JsonStringTest, Utf8PassesThrough) { EXPECT_EQ(JsonString("pässwörd"), "\"pässwörd\""); }

}  // namespace
}  // namespace pgb
