// The checks a scope with masks makes with the target's catalog
// (policy/catalog.h), beyond the name rules of Judge::CheckMasks
// (policy/rules.cc): the catalog-aware half of masking.
//
// In a scope with masks:
//  - every relation a statement touches must be in the catalog (read, and
//    known there): a name the gateway cannot resolve could be anything, so
//    such statements are refused until the catalog has it (fail closed);
//  - `q.x` on a table or view q is a column only if q has a column x;
//    otherwise PostgreSQL calls the function (or cast) x on q's whole row
//    (`c.to_json`, `customers.row_to_json`, `c.record_out`, `c.text`), and
//    a whole row of a relation with masked columns is refused;
//  - a view is judged by its definition with the same mask rules, as if the
//    session had written it: `CREATE VIEW v AS SELECT email AS contact ...`
//    renames a masked column, so reading v is refused;
//  - channels that copy values out of the result path are refused:
//    pg_notify, set_config with a computed value, large-object functions,
//    the activity views that show other sessions' statements with their
//    literals (pg_stat_activity, pg_stat_statements), and ON CONFLICT ON
//    CONSTRAINT / without a target on a relation with masked columns (which
//    answers INSERT 0 0 or INSERT 0 1 for a guessed value).
//
//   if (auto refusal = CheckMaskedScope(scope, statement, state)) deny(refusal->reason, ...);
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "policy/rules.h"
#include "policy/statement.h"

namespace pgb::policy {

struct MaskRefusal {
  std::string reason;
  std::string hint;
};

// Whether result columns named `column` are masked in `scope`: by its
// [[scope.mask]] names, or by a `pgbastion:mask=` tag on a column of that
// name in `catalog` (may be null). Only for a scope with masks.
const ColumnMask* MaskedName(const Scope& scope, const RelationCatalog* catalog,
                             std::string_view column);

// Nullopt when `statement` passes; only for a scope with masks.
// `view_depth`: how many view definitions deep `statement` is (a view's
// definition is judged by the mask rules as if the session had written it).
std::optional<MaskRefusal> CheckMaskedScope(const Scope& scope, const StatementSummary& statement,
                                            const SessionPolicyState& state, int view_depth = 0);

}  // namespace pgb::policy
