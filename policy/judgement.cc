#include "policy/judgement.h"

#include <string>
#include <utility>

#include "base/str_cat.h"

namespace pgb::policy {

QueryJudgement JudgeQuery(const Policy& policy, const Scope& scope, const SqlAnalysis& analysis,
                          SessionPolicyState& state) {
  QueryJudgement judgement;
  if (!analysis.ok) {
    judgement.decisions.push_back(
        Decision{Decision::kDeny, "analysis",
                 Cat("the statement was not analysed: ", analysis.error_message, " (SQLSTATE ",
                     analysis.error_sqlstate, ", position ", analysis.error_position, ")"),
                 "nothing that cannot be analysed is forwarded; fix the statement"});
    judgement.first_refusal = 0;
    return judgement;
  }
  judgement.decisions.reserve(analysis.statements.size());
  for (const StatementSummary& statement : analysis.statements) {
    if (!judgement.allowed()) {
      const size_t refused = judgement.first_refusal;
      judgement.decisions.push_back(
          Decision{Decision::kDeny, judgement.decisions[refused].rule,
                   Cat("not judged: statement ", refused + 1,
                       " of the Query is refused, and a Query runs whole or not at all"),
                   ""});
      continue;
    }
    Decision d = policy.Decide(scope, statement, state);
    if (d.kind == Decision::kAllow) {
      state.Remember(statement);
    } else {
      judgement.first_refusal = judgement.decisions.size();
    }
    judgement.decisions.push_back(std::move(d));
  }
  return judgement;
}

}  // namespace pgb::policy
