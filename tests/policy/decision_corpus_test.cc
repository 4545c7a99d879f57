// The decision corpus (corpus/decisions.txt, path from CMake): several hundred
// statements, each with the decision the read-only, read-write and admin
// profiles take on it, through the real analyser and the real rules.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "policy/judgement.h"
#include "policy/rules.h"
#include "policy/sql_analysis.h"

namespace pgb::policy {
namespace {

struct Case {
  int line = 0;
  char expected[3] = {};  // read-only, read-write, admin: 'A', 'D' or 'H'
  std::string sql;
};

std::vector<Case> LoadCorpus() {
  const std::string path = PGB_DECISION_CORPUS;
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  std::vector<Case> cases;
  std::string text;
  for (int line = 1; std::getline(in, text); ++line) {
    if (text.empty() || text[0] == '#') continue;
    Case c;
    c.line = line;
    const bool well_formed =
        text.size() > 8 && text[1] == ' ' && text[3] == ' ' && text.compare(5, 3, " | ") == 0;
    EXPECT_TRUE(well_formed) << "line " << line << ": expected \"X X X | SQL\": " << text;
    if (!well_formed) continue;
    for (int p = 0; p < 3; ++p) {
      c.expected[p] = text[static_cast<size_t>(p) * 2];
      EXPECT_TRUE(c.expected[p] == 'A' || c.expected[p] == 'D' || c.expected[p] == 'H')
          << "line " << line;
    }
    for (size_t i = 8; i < text.size(); ++i) {
      if (text.compare(i, 2, "\\n") == 0) {
        c.sql += '\n';
        ++i;
      } else {
        c.sql += text[i];
      }
    }
    cases.push_back(std::move(c));
  }
  return cases;
}

char Letter(Decision::Kind kind) {
  switch (kind) {
    case Decision::kAllow:
      return 'A';
    case Decision::kDeny:
      return 'D';
    case Decision::kApproval:
      return 'H';
  }
  return '?';
}

// As the gateway judges a Query (policy/judgement.h): the first statement
// not allowed decides; an allowed Query is named by its first statement.
Decision Judge(const Policy& policy, const Scope& scope, const SqlAnalysis& analysis) {
  SessionPolicyState state(scope, "app_user");
  QueryJudgement judgement = JudgeQuery(policy, scope, analysis, state);
  if (judgement.decisions.empty()) return Decision{Decision::kAllow, "", "", ""};
  return std::move(judgement.decisions[judgement.allowed() ? 0 : judgement.first_refusal]);
}

TEST(DecisionCorpusTest, EveryProfileDecidesAsExpected) {
  const std::vector<Case> cases = LoadCorpus();
  ASSERT_GE(cases.size(), 300u);
  std::vector<Scope> scopes;
  for (const auto& [name, profile] : {std::pair<const char*, Profile>{"ro", Profile::kReadOnly},
                                      {"rw", Profile::kReadWrite},
                                      {"admin", Profile::kAdmin}}) {
    Scope scope;
    scope.name = name;
    scope.subjects = {"*"};
    scope.profile = profile;
    scopes.push_back(scope);
  }
  const Policy policy(scopes);
  std::set<StatementClass> classes;
  int failures = 0;
  for (const Case& c : cases) {
    const SqlAnalysis analysis = AnalyseSql(c.sql);
    for (const StatementSummary& s : analysis.statements) classes.insert(s.statement_class);
    for (size_t p = 0; p < 3; ++p) {
      const Decision d = Judge(policy, policy.scopes()[p], analysis);
      if (Letter(d.kind) != c.expected[p]) {
        ++failures;
        ADD_FAILURE() << "decisions.txt:" << c.line << " under "
                      << ProfileName(policy.scopes()[p].profile) << ": expected " << c.expected[p]
                      << ", got " << Letter(d.kind) << " (" << d.rule << ": " << d.reason << ")\n  "
                      << c.sql;
      }
    }
  }
  EXPECT_EQ(failures, 0);
  // The corpus covers every statement class the analyser knows.
  EXPECT_EQ(classes.size(), 10u);
}

}  // namespace
}  // namespace pgb::policy
