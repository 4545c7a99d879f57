#include "policy/judgement.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

#include "policy/sql_analysis.h"

namespace pgb::policy {
namespace {

using ::testing::HasSubstr;

Scope ScopeWith(Profile profile) {
  Scope scope;
  scope.name = "s";
  scope.subjects = {"*"};
  scope.profile = profile;
  return scope;
}

std::vector<Decision::Kind> Kinds(const QueryJudgement& j) {
  std::vector<Decision::Kind> kinds;
  for (const Decision& d : j.decisions) kinds.push_back(d.kind);
  return kinds;
}

TEST(JudgeQueryTest, EveryStatementAllowed) {
  const Policy policy({ScopeWith(Profile::kReadOnly)});
  SessionPolicyState state(policy.scopes()[0], "app");
  const QueryJudgement j =
      JudgeQuery(policy, policy.scopes()[0], AnalyseSql("SELECT 1; SELECT 2"), state);
  EXPECT_TRUE(j.allowed());
  EXPECT_EQ(j.first_refusal, QueryJudgement::kNone);
  EXPECT_EQ(Kinds(j), (std::vector<Decision::Kind>{Decision::kAllow, Decision::kAllow}));
  EXPECT_EQ(j.decisions[0].rule, "profile.read-only");
}

TEST(JudgeQueryTest, TheFirstRefusalRefusesTheQueryAndLaterStatementsAreNotJudged) {
  const Policy policy({ScopeWith(Profile::kReadWrite)});
  SessionPolicyState state(policy.scopes()[0], "app");
  // DROP needs approval; the deny after it is never reached.
  const QueryJudgement j =
      JudgeQuery(policy, policy.scopes()[0],
                 AnalyseSql("SELECT 1; DROP TABLE t; SELECT pg_read_file('/etc/passwd')"), state);
  EXPECT_FALSE(j.allowed());
  EXPECT_EQ(j.first_refusal, 1u);
  EXPECT_EQ(Kinds(j),
            (std::vector<Decision::Kind>{Decision::kAllow, Decision::kApproval, Decision::kDeny}));
  EXPECT_EQ(j.decisions[2].rule, j.decisions[1].rule);
  EXPECT_THAT(j.decisions[2].reason, HasSubstr("not judged: statement 2"));
}

TEST(JudgeQueryTest, OnlyAllowedStatementsAreRemembered) {
  const Policy policy({ScopeWith(Profile::kReadWrite)});
  SessionPolicyState state(policy.scopes()[0], "app");
  // The PREPARE needs approval, so it is not remembered: a later EXECUTE of
  // it is of an unknown statement.
  QueryJudgement j = JudgeQuery(policy, policy.scopes()[0],
                                AnalyseSql("PREPARE wipe AS DELETE FROM orders"), state);
  EXPECT_EQ(j.first_refusal, 0u);
  j = JudgeQuery(policy, policy.scopes()[0], AnalyseSql("EXECUTE wipe"), state);
  ASSERT_EQ(j.decisions.size(), 1u);
  EXPECT_EQ(j.decisions[0].rule, "prepared.unknown");
  // An allowed one is, for the statements after it in the same Query.
  j = JudgeQuery(policy, policy.scopes()[0], AnalyseSql("PREPARE one AS SELECT 1; EXECUTE one"),
                 state);
  EXPECT_TRUE(j.allowed());
}

TEST(JudgeQueryTest, AnAnalysisThatFailedIsOneDenial) {
  const Policy policy({ScopeWith(Profile::kAdmin)});
  SessionPolicyState state(policy.scopes()[0], "app");
  const QueryJudgement j = JudgeQuery(policy, policy.scopes()[0], AnalyseSql("SELEC 1"), state);
  EXPECT_EQ(j.first_refusal, 0u);
  ASSERT_EQ(j.decisions.size(), 1u);
  EXPECT_EQ(j.decisions[0].rule, "analysis");
  EXPECT_THAT(j.decisions[0].reason, HasSubstr("42601"));
}

TEST(JudgeQueryTest, AnEmptyQueryIsAllowed) {
  const Policy policy({ScopeWith(Profile::kReadOnly)});
  SessionPolicyState state(policy.scopes()[0], "app");
  const QueryJudgement j = JudgeQuery(policy, policy.scopes()[0], AnalyseSql(""), state);
  EXPECT_TRUE(j.allowed());
  EXPECT_TRUE(j.decisions.empty());
}

}  // namespace
}  // namespace pgb::policy
