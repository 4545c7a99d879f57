// ParseIntegerSetting against what PostgreSQL 15 applies (each expectation
// checked with SET and SHOW on a real server; tests/integration/
// test_guardrails.py compares the gateway's verdicts with the server's).
#include "policy/setting_value.h"

#include <gtest/gtest.h>

namespace pgb::policy {
namespace {

constexpr SettingUnit kMs = SettingUnit::kMilliseconds;
constexpr SettingUnit kKb = SettingUnit::kKilobytes;

TEST(ParseIntegerSettingTest, NumbersAsStrtolAndStrtodReadThem) {
  EXPECT_EQ(ParseIntegerSetting("5000", kMs), 5000);
  EXPECT_EQ(ParseIntegerSetting("  5000", kMs), 5000);
  EXPECT_EQ(ParseIntegerSetting("+5000", kMs), 5000);
  EXPECT_EQ(ParseIntegerSetting("-1", kMs), -1);
  EXPECT_EQ(ParseIntegerSetting("0x10", kMs), 16);  // base 0: hex
  EXPECT_EQ(ParseIntegerSetting("010", kMs), 8);    // and octal
  EXPECT_EQ(ParseIntegerSetting("1e3", kMs), 1000);
  EXPECT_EQ(ParseIntegerSetting("1.5e3", kMs), 1500);
  EXPECT_EQ(ParseIntegerSetting(".5e1", kMs), 5);
  EXPECT_EQ(ParseIntegerSetting("0.4", kMs), 0);  // rounds to 0: no limit
  EXPECT_EQ(ParseIntegerSetting("0.5", kMs), 0);  // rint: ties to even
  EXPECT_EQ(ParseIntegerSetting("1.5", kMs), 2);
  EXPECT_EQ(ParseIntegerSetting("2.5", kMs), 2);
  EXPECT_EQ(ParseIntegerSetting("2147483647", kMs), 2147483647);
  EXPECT_EQ(ParseIntegerSetting("2147483648", kMs), std::nullopt);
  EXPECT_EQ(ParseIntegerSetting("1e400", kMs), std::nullopt);
  EXPECT_EQ(ParseIntegerSetting("nan", kMs), std::nullopt);
  EXPECT_EQ(ParseIntegerSetting("inf", kMs), std::nullopt);
  EXPECT_EQ(ParseIntegerSetting("", kMs), std::nullopt);
  EXPECT_EQ(ParseIntegerSetting("x", kMs), std::nullopt);
}

TEST(ParseIntegerSettingTest, TimeUnits) {
  EXPECT_EQ(ParseIntegerSetting("5s", kMs), 5000);
  EXPECT_EQ(ParseIntegerSetting("5 s ", kMs), 5000);
  EXPECT_EQ(ParseIntegerSetting("1min", kMs), 60000);
  EXPECT_EQ(ParseIntegerSetting("1h", kMs), 3600000);
  EXPECT_EQ(ParseIntegerSetting("1d", kMs), 86400000);
  EXPECT_EQ(ParseIntegerSetting("1500us", kMs), 2);  // 1.5 ms, rint to even
  EXPECT_EQ(ParseIntegerSetting("400us", kMs), 0);
  EXPECT_EQ(ParseIntegerSetting("0.0001s", kMs), 0);
  EXPECT_EQ(ParseIntegerSetting("0.5min", kMs), 30000);
  // A fraction is rounded to the next smaller unit of the table: 8.64 ms of
  // a day to whole hours, 0; 0.34 min to whole seconds, 20 s.
  EXPECT_EQ(ParseIntegerSetting("0.0000001d", kMs), 0);
  EXPECT_EQ(ParseIntegerSetting("0.34min", kMs), 20000);
  EXPECT_EQ(ParseIntegerSetting("0.0015min", kMs), 0);
  EXPECT_EQ(ParseIntegerSetting("5S", kMs), std::nullopt);  // units are case-sensitive
  EXPECT_EQ(ParseIntegerSetting("5 sec", kMs), std::nullopt);
  EXPECT_EQ(ParseIntegerSetting("5 s x", kMs), std::nullopt);
  EXPECT_EQ(ParseIntegerSetting("5mins", kMs), std::nullopt);
  EXPECT_EQ(ParseIntegerSetting("5kB", kMs), std::nullopt);  // a memory unit
}

TEST(ParseIntegerSettingTest, MemoryUnits) {
  EXPECT_EQ(ParseIntegerSetting("64MB", kKb), 65536);
  EXPECT_EQ(ParseIntegerSetting("1.5GB", kKb), 1572864);
  EXPECT_EQ(ParseIntegerSetting("1TB", kKb), 1073741824);
  EXPECT_EQ(ParseIntegerSetting("2TB", kKb), std::nullopt);  // above INT_MAX kB
  EXPECT_EQ(ParseIntegerSetting("1024B", kKb), 1);
  EXPECT_EQ(ParseIntegerSetting("1500B", kKb), 1);  // B has no smaller unit: rint(1.46)
  EXPECT_EQ(ParseIntegerSetting("0.0001MB", kKb), 0);
  EXPECT_EQ(ParseIntegerSetting("64mb", kKb), std::nullopt);
  EXPECT_EQ(ParseIntegerSetting("64 KB", kKb), std::nullopt);
  EXPECT_EQ(ParseIntegerSetting("8MB", SettingUnit::kBlocks), 1024);
  EXPECT_EQ(ParseIntegerSetting("8kB", SettingUnit::kBlocks), 1);
  EXPECT_EQ(ParseIntegerSetting("3", SettingUnit::kNone), 3);
  EXPECT_EQ(ParseIntegerSetting("3kB", SettingUnit::kNone), std::nullopt);
}

TEST(WithinCapTest, NoSpellingEndsAtNoLimitOrAboveTheCap) {
  const CappedSetting* timeout = FindCappedSetting("statement_timeout");
  ASSERT_NE(timeout, nullptr);
  EXPECT_TRUE(WithinCap(*timeout, "20s", 20000));
  EXPECT_TRUE(WithinCap(*timeout, "19999.6", 20000));
  EXPECT_TRUE(WithinCap(*timeout, "1", 20000));
  EXPECT_FALSE(WithinCap(*timeout, "20000.6", 20000));
  EXPECT_FALSE(WithinCap(*timeout, "0", 20000));
  EXPECT_FALSE(WithinCap(*timeout, "0.4", 20000));
  EXPECT_FALSE(WithinCap(*timeout, "400us", 20000));
  EXPECT_FALSE(WithinCap(*timeout, "-1", 20000));
  EXPECT_FALSE(WithinCap(*timeout, "1min", 20000));
  EXPECT_FALSE(WithinCap(*timeout, "0x7fffffff", 20000));
  EXPECT_FALSE(WithinCap(*timeout, "twenty", 20000));
  const CappedSetting* files = FindCappedSetting("temp_file_limit");
  ASSERT_NE(files, nullptr);
  EXPECT_TRUE(WithinCap(*files, "0", 1048576));  // no temporary files at all
  EXPECT_TRUE(WithinCap(*files, "1GB", 1048576));
  EXPECT_FALSE(WithinCap(*files, "-1", 1048576));  // no limit
  EXPECT_FALSE(WithinCap(*files, "1.1GB", 1048576));
}

}  // namespace
}  // namespace pgb::policy
