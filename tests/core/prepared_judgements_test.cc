#include "core/prepared_judgements.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace pgb {
namespace {

std::shared_ptr<const std::string> Text(const char* sql) {
  return std::make_shared<const std::string>(sql);
}

TEST(PreparedJudgementsTest, APortalIsStaleWhenItsStatementWasJudgedUnderAnOlderPolicy) {
  PreparedJudgements j;
  j.Parsed("s1", Text("INSERT INTO t VALUES (1)"), 0);
  j.Bound("p", "s1");
  EXPECT_EQ(j.Stale("p", 0), nullptr);
  const PreparedJudgements::Judged* stale = j.Stale("p", 1);
  ASSERT_NE(stale, nullptr);
  EXPECT_EQ(*stale->text, "INSERT INTO t VALUES (1)");
  EXPECT_EQ(stale->statement, "s1");
  // Judged again and allowed: current for the portal and its statement.
  j.Rejudged("p", 1);
  EXPECT_EQ(j.Stale("p", 1), nullptr);
  j.Bound("q", "s1");
  EXPECT_EQ(j.Stale("q", 1), nullptr);
  EXPECT_NE(j.Stale("q", 2), nullptr);
}

TEST(PreparedJudgementsTest, AReplacedOrClosedStatementIsNotConfused) {
  PreparedJudgements j;
  j.Parsed("", Text("SELECT 1"), 0);
  j.Bound("", "");
  j.Parsed("", Text("DELETE FROM t WHERE id = 1"), 0);  // the unnamed statement replaced
  ASSERT_NE(j.Stale("", 1), nullptr);
  EXPECT_EQ(*j.Stale("", 1)->text, "SELECT 1");  // the portal runs what was bound
  j.Rejudged("", 1);
  j.Bound("p", "");
  EXPECT_NE(j.Stale("p", 1), nullptr);  // the new text was not judged again
  j.Closed('S', "");
  j.Bound("r", "");  // a Bind of a statement that is gone: nothing known
  EXPECT_EQ(j.Stale("r", 1), nullptr);
  j.Closed('P', "p");
  EXPECT_EQ(j.Stale("p", 1), nullptr);
  j.Parsed("x", Text("SELECT 2"), 0);
  j.Refused("x");
  EXPECT_EQ(j.statements(), 0u);
}

}  // namespace
}  // namespace pgb
