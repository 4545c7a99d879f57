#include "policy/sql_text.h"

#include <gtest/gtest.h>

#include <string>

#include "policy/sql_analysis.h"

namespace pgb::policy {
namespace {

TEST(StatementTextTest, EachStatementWithoutTheWhiteSpaceAroundIt) {
  const std::string sql = "SELECT 1 ;\n\t DROP TABLE t;\r\n  SELECT 2 \n";
  const SqlAnalysis a = AnalyseSql(sql);
  ASSERT_TRUE(a.ok);
  ASSERT_EQ(a.statements.size(), 3u);
  EXPECT_EQ(StatementText(sql, a.statements[0]), "SELECT 1");
  EXPECT_EQ(StatementText(sql, a.statements[1]), "DROP TABLE t");
  EXPECT_EQ(StatementText(sql, a.statements[2]), "SELECT 2");
}

TEST(StatementTextTest, ARangeOutsideTheTextIsEmpty) {
  EXPECT_EQ(StatementText("SELECT 1", 8, 0), "");
  EXPECT_EQ(StatementText("SELECT 1", 100, 3), "");
  EXPECT_EQ(StatementText("SELECT 1", 7, 100), "1");
}

TEST(QuoteIdentifierTest, PlainNamesStayAndOthersAreQuoted) {
  EXPECT_EQ(QuoteIdentifier("app"), "app");
  EXPECT_EQ(QuoteIdentifier("_x9"), "_x9");
  EXPECT_EQ(QuoteIdentifier("select"), "select");  // a keyword: plain in a setting's list
  EXPECT_EQ(QuoteIdentifier("$user"), "\"$user\"");
  EXPECT_EQ(QuoteIdentifier("Billing"), "\"Billing\"");
  EXPECT_EQ(QuoteIdentifier("9lives"), "\"9lives\"");
  EXPECT_EQ(QuoteIdentifier("a b"), "\"a b\"");
  EXPECT_EQ(QuoteIdentifier("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(QuoteIdentifier(""), "\"\"");
  EXPECT_EQ(QuoteIdentifier("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
}

}  // namespace
}  // namespace pgb::policy
