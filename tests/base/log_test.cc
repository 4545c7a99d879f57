#include "base/log.h"

#include <string>

#include "gtest/gtest.h"

namespace pgb {
namespace {

TEST(LogSafeTest, PrintableTextIsKept) { EXPECT_EQ(LogSafe("alice@example"), "alice@example"); }

TEST(LogSafeTest, NewlinesCannotForgeLines) {
  EXPECT_EQ(LogSafe("bob\n2026 INFO fake"), "bob\\x0a2026 INFO fake");
}

TEST(LogSafeTest, BackslashAndHighBytesAreEscaped) {
  EXPECT_EQ(LogSafe(std::string("a\\b\xff\0c", 6)), "a\\x5cb\\xff\\x00c");
}

TEST(LogSafeTest, LongTextIsCut) {
  const std::string out = LogSafe(std::string(200, 'x'));
  EXPECT_EQ(out, std::string(64, 'x') + "...");
}

}  // namespace
}  // namespace pgb
