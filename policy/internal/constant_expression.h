// Folding constant expressions of a parse tree, as far as the policy needs:
// whether an UPDATE/DELETE condition lets every row through (`WHERE true`,
// `1 = 1`, `'a' = 'a'`, `x OR true`, `NOT false`, `'t'::bool`, `$1`), and the
// text of constant arguments (SET values, set_config() arguments).
//
//   DELETE FROM t WHERE id = 1 OR 2 > 1   -> PassesEveryRow(where) == true
//   UPDATE t SET a = 1 WHERE id = $1      -> PassesEveryRow(where) == false
//
// Parameters ($1) and values derived from them are chosen by the client after
// the statement was judged (extended protocol), so a condition a parameter
// alone can make true (`WHERE $1`, `x OR $1`, `NOT $1`) counts as passing every
// row. So does a column compared with itself (`id = id`). Conditions beyond
// these forms (`id > 0`, a function call) count as filtering: the check is a
// guard against careless and simple evasive statements, not a proof.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "policy/internal/parse_tree.h"

namespace pgb::policy::internal {

struct ConstantValue {
  enum class Kind : uint8_t {
    kNull,
    kBool,
    kInt,
    kNumeric,  // `text` holds the literal ("1.5", "9999999999")
    kText,     // a string literal, typed or not
    kOpaque,   // constant for every row but unknown here: a parameter, or a
               // negative integer literal (libpg_query's JSON leaves its value out)
  };
  Kind kind = Kind::kNull;
  bool boolean = false;
  int64_t integer = 0;
  std::string text;
};

// `sql` is the whole analysed text: some literals are read back from it.
// nullopt when `e` is not a constant the folder understands.
std::optional<ConstantValue> EvaluateConstant(element e, std::string_view sql);

// Whether UPDATE/DELETE ... WHERE `condition` selects every row (see above).
bool PassesEveryRow(element condition, std::string_view sql);

// PostgreSQL's boolean input (boolin): "t", "true", "yes", "on", "1", unique
// prefixes, any case, surrounding spaces. nullopt when not a boolean.
std::optional<bool> ParseBoolText(std::string_view text);

}  // namespace pgb::policy::internal
