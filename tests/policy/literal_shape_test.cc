#include "policy/internal/literal_shape.h"

#include <gtest/gtest.h>

#include <string>

namespace pgb::policy::internal {
namespace {

TEST(LiteralShape, MarksIntegerAndStringLiteralsAndKeepsEverythingElse) {
  EXPECT_EQ(LiteralShape("SELECT abalance FROM pgbench_accounts WHERE aid = 42;"),
            "SELECT abalance FROM pgbench_accounts WHERE aid = \x01;");
  EXPECT_EQ(LiteralShape("INSERT INTO t (a, b) VALUES (1, 'x y')"),
            "INSERT INTO t (a, b) VALUES (\x01, '\x02')");
  EXPECT_EQ(LiteralShape("select\n\t\"Col 1\" from \"T\" where x <> -7 and y = ''"),
            "select\n\t\"Col 1\" from \"T\" where x <> -\x01 and y = '\x02'");
  // Digits inside names are not literals.
  EXPECT_EQ(LiteralShape("SELECT t1.c2 FROM t1"), "SELECT t1.c2 FROM t1");
  // Comment and quote characters inside a string are its content.
  EXPECT_EQ(LiteralShape("SELECT '-- /* $$ \" ;'"), "SELECT '\x02'");
}

TEST(LiteralShape, TextsDifferingOnlyInLiteralValuesShareTheirShape) {
  EXPECT_EQ(LiteralShape("SELECT * FROM t WHERE id = 5 AND s = 'a'"),
            LiteralShape("SELECT * FROM t WHERE id = 123456 AND s = 'longer text'"));
  EXPECT_NE(LiteralShape("SELECT * FROM t WHERE id = 5"),
            LiteralShape("SELECT * FROM t WHERE id  = 5"));  // white space is kept
  EXPECT_NE(LiteralShape("SELECT * FROM t WHERE id = 5"),
            LiteralShape("SELECT * FROM t WHERE id = '5'"));  // another kind of literal
}

TEST(LiteralShape, AnIntegerBeyondInt32IsAnotherKindOfLiteral) {
  // PostgreSQL's lexer: ICONST up to 2147483647, FCONST (numeric) above.
  EXPECT_EQ(LiteralShape("SELECT 2147483647"), "SELECT \x01");
  EXPECT_EQ(LiteralShape("SELECT 0002147483647"), "SELECT \x01");
  EXPECT_EQ(LiteralShape("SELECT 2147483648"), "SELECT \x03");
  EXPECT_EQ(LiteralShape("SELECT 99999999999999999999"), "SELECT \x03");
  EXPECT_EQ(LiteralShape("SELECT 0"), "SELECT \x01");
}

TEST(LiteralShape, AnythingOutsideTheSimpleSubsetHasNoShape) {
  for (const char* sql : {
           "SELECT 1.5",
           "SELECT .5",
           "SELECT 1e5",
           "SELECT 1abc",
           "SELECT 0x1F",
           "SELECT E'a'",
           "SELECT e'a'",
           "SELECT B'101'",
           "SELECT X'1F'",
           "SELECT N'a'",
           "SELECT U&'a'",
           "SELECT 'it''s'",
           "SELECT 'a\\b'",
           "SELECT 'unterminated",
           "SELECT \"a\"\"b\"",
           "SELECT \"unterminated",
           "SELECT 1 -- comment",
           "SELECT /* c */ 1",
           "SELECT 1 */",
           "SELECT $1",
           "SELECT $$a$$",
           "SELECT a$1",
           "SELECT 1::int",
           "SELECT a[1]",
           "SELECT 'caf\xc3\xa9'",
           "SELECT \"caf\xc3\xa9\"",
           "SELECT 1 ! 2",
           "SELECT a || b",
           "SELECT 'a\x01'",
           "SELECT 1\x01",
           "SELECT CAST(x AS float(10))",
           "SELECT x::FLOAT",
           "SELECT current_timestamp(3)",
           "SELECT CURRENT_TIME(3)",
           "SELECT localtime(2)",
           "SELECT LocalTimestamp(2)",
           "FETCH 5 FROM c",
           "MOVE 5 IN c",
       }) {
    EXPECT_EQ(LiteralShape(sql), std::nullopt) << sql;
  }
}

TEST(LiteralShape, EveryPrefixOfAShapedTextIsSafeToScan) {
  const std::string sql = "SELECT \"q\", 'str' FROM t WHERE a = 12 AND b <> 'x' ;";
  for (size_t n = 0; n <= sql.size(); ++n) {
    std::optional<std::string> shape = LiteralShape(std::string_view(sql).substr(0, n));
    if (shape) {
      EXPECT_LE(shape->size(), n + 2) << n;  // '' around a marker at most
    }
  }
}

}  // namespace
}  // namespace pgb::policy::internal
