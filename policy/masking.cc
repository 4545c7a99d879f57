#include "policy/masking.h"

#include "absl/strings/string_view.h"
#include "policy/catalog.h"

namespace pgb::policy {
namespace {

// pg_type OIDs (src/include/catalog/pg_type.dat).
constexpr uint32_t kNameOid = 19;
constexpr uint32_t kTextOid = 25;
constexpr uint32_t kUnknownOid = 705;
constexpr uint32_t kBpcharOid = 1042;
constexpr uint32_t kVarcharOid = 1043;

}  // namespace

const ColumnMask* FindColumnMask(const std::vector<ColumnMask>& masks,
                                 const RelationCatalog* catalog, std::string_view column) {
  for (const ColumnMask& m : masks) {
    if (m.column == column) return &m;
  }
  if (catalog == nullptr) return nullptr;
  auto it = catalog->tagged_columns().find(absl::string_view(column.data(), column.size()));
  if (it == catalog->tagged_columns().end()) return nullptr;
  // A tag names a method only: the defaults of [[scope.mask]] for the rest.
  static const ColumnMask kTagged[] = {
      {.column = "", .method = MaskMethod::kRedact},
      {.column = "", .method = MaskMethod::kPartial},
      {.column = "", .method = MaskMethod::kNull},
  };
  return &kTagged[static_cast<size_t>(it->second)];
}

const char* MaskMethodName(MaskMethod method) {
  switch (method) {
    case MaskMethod::kRedact:
      return "redact";
    case MaskMethod::kPartial:
      return "partial";
    case MaskMethod::kNull:
      return "null";
  }
  return "?";
}

bool IsTextType(uint32_t type_oid) {
  switch (type_oid) {
    case kNameOid:
    case kTextOid:
    case kUnknownOid:
    case kBpcharOid:
    case kVarcharOid:
      return true;
    default:
      return false;
  }
}

MaskPlan MaskPlan::For(const std::vector<ColumnMask>& masks,
                       const std::vector<proto::ResultField>& fields,
                       const RelationCatalog* catalog) {
  MaskPlan plan;
  plan.columns_.resize(fields.size());
  for (size_t i = 0; i < fields.size(); ++i) {
    const ColumnMask* mask = FindColumnMask(masks, catalog, fields[i].name);
    if (mask == nullptr) continue;
    proto::ColumnRewrite& column = plan.columns_[i];
    ++plan.masked_;
    if (mask->method == MaskMethod::kNull || !IsTextType(fields[i].type_oid)) {
      column.action = proto::ValueRewrite::kNull;
    } else if (mask->method == MaskMethod::kPartial) {
      column.action = proto::ValueRewrite::kPartial;
      column.keep = mask->keep;
    } else {
      column.action = proto::ValueRewrite::kReplace;
      column.replacement = mask->replacement;
    }
  }
  return plan;
}

}  // namespace pgb::policy
