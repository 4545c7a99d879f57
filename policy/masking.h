// Masking: which result columns a scope's sessions never see in clear, and
// what they see instead. A scope lists masks by column name ([[scope.mask]],
// docs/configuration.md); when the database describes a result
// (RowDescription), MaskPlan decides per column whether and how its values
// are rewritten on their way to the client (proto/data_row_rewrite.h does the
// rewriting, DataRow by DataRow).
//
// Names are matched on the result's field names, so a statement can only
// reveal a masked column under its own name: the rules (policy/rules.h) refuse
// statements that use a masked column anywhere but as a plain output column
// (renamed, in an expression, a filter, a subquery, a whole-row reference).
//
//   std::vector<ColumnMask> masks = {{.column = "email", .method = MaskMethod::kPartial}};
//   MaskPlan plan = MaskPlan::For(masks, fields);   // fields: the RowDescription's
//   if (plan.masks_anything()) { ... rewrite each DataRow with plan.columns() ... }
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proto/data_row_rewrite.h"

namespace pgb::policy {

enum class MaskMethod : uint8_t {
  kRedact,   // text: the replacement ("****"); other types: NULL
  kPartial,  // text: every character but the last `keep` becomes '*'; other types: NULL
  kNull,     // NULL, whatever the type
};

const char* MaskMethodName(MaskMethod method);  // "redact", "partial", "null"

// One [[scope.mask]] entry, for one column name.
struct ColumnMask {
  std::string column;  // as PostgreSQL names it: unquoted names folded to lower case
  MaskMethod method = MaskMethod::kRedact;
  uint32_t keep = 4;                 // kPartial
  std::string replacement = "****";  // kRedact
};

class RelationCatalog;  // policy/catalog.h

// The mask for result columns named `column`: the scope's `masks` by name,
// else the method of a `pgbastion:mask=` tag on a column of that name in
// `catalog` (may be null); null when neither masks it.
const ColumnMask* FindColumnMask(const std::vector<ColumnMask>& masks,
                                 const RelationCatalog* catalog, std::string_view column);

class MaskPlan {
 public:
  MaskPlan() = default;
  // The plan for a result described by `fields`, under `masks` (which must
  // outlive the plan).
  // With a `catalog` (may be null), columns tagged `pgbastion:mask=` there
  // are masked by name too (policy/catalog.h).
  static MaskPlan For(const std::vector<ColumnMask>& masks,
                      const std::vector<proto::ResultField>& fields,
                      const RelationCatalog* catalog = nullptr);

  bool masks_anything() const { return masked_ > 0; }
  size_t masked_columns() const { return masked_; }
  const std::vector<proto::ColumnRewrite>& columns() const { return columns_; }

 private:
  std::vector<proto::ColumnRewrite> columns_;
  size_t masked_ = 0;
};

// Whether values of `type_oid` are text whose bytes a client reads as
// characters in both formats (text, varchar, bpchar, name, unknown): only
// these take a replacement or a partial mask; others become NULL ("char" too:
// its binary form is one byte, which "****" is not).
bool IsTextType(uint32_t type_oid);

}  // namespace pgb::policy
