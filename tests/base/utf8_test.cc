#include "base/utf8.h"

#include <string>
#include <utility>

#include "gtest/gtest.h"

namespace pgb {
namespace {

TEST(Utf8Test, ValidTextHasNoInvalidSequence) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii text, longer than eight bytes"));
  EXPECT_TRUE(IsValidUtf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x90\x98 \xF4\x8F\xBF\xBF"));
  EXPECT_EQ(FirstInvalidUtf8("abc"), (std::pair<size_t, size_t>{3, 0}));
}

TEST(Utf8Test, SequenceLengths) {
  EXPECT_EQ(Utf8SequenceLength("a", 0), 1u);
  EXPECT_EQ(Utf8SequenceLength("\xC3\xA9", 0), 2u);
  EXPECT_EQ(Utf8SequenceLength("\xE2\x82\xAC", 0), 3u);
  EXPECT_EQ(Utf8SequenceLength("\xF0\x9F\x90\x98", 0), 4u);
  EXPECT_EQ(Utf8SequenceLength("\x80", 0), 0u);              // a stray continuation byte
  EXPECT_EQ(Utf8SequenceLength("\xC0\xAF", 0), 0u);          // overlong '/'
  EXPECT_EQ(Utf8SequenceLength("\xE0\x80\xAF", 0), 0u);      // overlong, 3 bytes
  EXPECT_EQ(Utf8SequenceLength("\xED\xA0\x80", 0), 0u);      // a UTF-16 surrogate
  EXPECT_EQ(Utf8SequenceLength("\xF4\x90\x80\x80", 0), 0u);  // above U+10FFFF
  EXPECT_EQ(Utf8SequenceLength("\xE2\x82", 0), 0u);          // cut short
}

// Offsets and lengths as PostgreSQL reports them ("invalid byte sequence for
// encoding "UTF8": 0xed 0xa0 0x80"), after a plain run longer than a word.
TEST(Utf8Test, FirstInvalidSequenceIsWhereAndHowLongTheLeadByteSays) {
  const std::string prefix = "SELECT 'abcdefgh";
  EXPECT_EQ(FirstInvalidUtf8(prefix + "\xED\xA0\x80'"),
            (std::pair<size_t, size_t>{prefix.size(), 3}));
  EXPECT_EQ(FirstInvalidUtf8(prefix + "\xFF'"), (std::pair<size_t, size_t>{prefix.size(), 1}));
  EXPECT_EQ(FirstInvalidUtf8(prefix + "\xF0\x9F"), (std::pair<size_t, size_t>{prefix.size(), 2}));
  EXPECT_EQ(FirstInvalidUtf8("\xC3\xA9\xC1\x81"), (std::pair<size_t, size_t>{2, 2}));
}

}  // namespace
}  // namespace pgb
