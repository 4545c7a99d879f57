// The judging of one Query: every statement of an analysed text, in order,
// each in the state the allowed ones before it leave (a
// `SET search_path = x; SELECT ...` resolves the SELECT's names against x).
// A Query is judged whole: the first statement not allowed refuses all of
// it, so the statements after it are not judged. This is the one loop the
// gateway (core/statement_gate.cc), `pgbastion policy explain` and the
// decision corpus test share.
//
//   SessionPolicyState state(*scope, "app_rw");           // one per session
//   QueryJudgement j = JudgeQuery(policy, *scope, *analysis, state);
//   if (!j.allowed()) {
//     const Decision& d = j.decisions[j.first_refusal];   // refuse with DecisionMessage(d)
//   }
//
// `state` remembers each allowed statement (policy/rules.h): the ones before
// a refusal too, although the refused Query does not run; that can only make
// later decisions stricter.
#pragma once

#include <cstddef>

#include "absl/container/inlined_vector.h"
#include "policy/rules.h"
#include "policy/sql_analysis.h"

namespace pgb::policy {

// What JudgeQuery found. A plain struct rather than a StatusOr: a refusal is
// an answer, not an error, and the gateway builds one per Query on its hot
// path (inline room for one decision: most Queries hold one statement).
struct QueryJudgement {
  static constexpr size_t kNone = static_cast<size_t>(-1);

  // One per statement of the analysis, in order. Those after the first
  // refusal were not judged: kDeny with the refusing statement's rule and a
  // reason saying so.
  absl::InlinedVector<Decision, 1> decisions;
  // The index of the first statement not allowed (kDeny or kApproval); kNone
  // when every statement is allowed.
  size_t first_refusal = kNone;

  bool allowed() const { return first_refusal == kNone; }
};

// Judges `analysis` (ok, or one kDeny "analysis" decision naming the
// analyser's SQLSTATE, message and position) for `scope`, remembering each
// allowed statement in `state`.
[[nodiscard]] QueryJudgement JudgeQuery(const Policy& policy, const Scope& scope,
                                        const SqlAnalysis& analysis, SessionPolicyState& state);

}  // namespace pgb::policy
