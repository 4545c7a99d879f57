#include "policy/masking.h"

#include <vector>

#include "gtest/gtest.h"

namespace pgb::policy {
namespace {

constexpr uint32_t kInt4 = 23;
constexpr uint32_t kText = 25;
constexpr uint32_t kVarchar = 1043;
constexpr uint32_t kJsonb = 3802;

TEST(MaskPlanTest, MasksFieldsByNameAndTextTypesOnlyGetText) {
  const std::vector<ColumnMask> masks = {
      {.column = "email", .method = MaskMethod::kPartial, .keep = 3, .replacement = "****"},
      {.column = "ssn", .method = MaskMethod::kRedact, .keep = 4, .replacement = "[hidden]"},
      {.column = "salary", .method = MaskMethod::kNull, .keep = 4, .replacement = "****"},
      {.column = "Notes", .method = MaskMethod::kRedact, .keep = 4, .replacement = "****"},
  };
  const std::vector<proto::ResultField> fields = {
      {.name = "id", .type_oid = kInt4, .format = 0},
      {.name = "email", .type_oid = kVarchar, .format = 1},
      {.name = "ssn", .type_oid = kText, .format = 0},
      {.name = "ssn", .type_oid = kInt4, .format = 0},  // not text: NULL
      {.name = "salary", .type_oid = kText, .format = 0},
      {.name = "notes", .type_oid = kJsonb, .format = 0},  // "Notes" is another name
      {.name = "Notes", .type_oid = kJsonb, .format = 0},
  };
  const MaskPlan plan = MaskPlan::For(masks, fields);
  ASSERT_EQ(plan.columns().size(), fields.size());
  EXPECT_EQ(plan.masked_columns(), 5u);
  const auto& c = plan.columns();
  EXPECT_EQ(c[0].action, proto::ValueRewrite::kPass);
  EXPECT_EQ(c[1].action, proto::ValueRewrite::kPartial);
  EXPECT_EQ(c[1].keep, 3u);
  EXPECT_EQ(c[2].action, proto::ValueRewrite::kReplace);
  EXPECT_EQ(c[2].replacement, "[hidden]");
  EXPECT_EQ(c[3].action, proto::ValueRewrite::kNull);
  EXPECT_EQ(c[4].action, proto::ValueRewrite::kNull);
  EXPECT_EQ(c[5].action, proto::ValueRewrite::kPass);
  EXPECT_EQ(c[6].action, proto::ValueRewrite::kNull);
}

TEST(MaskPlanTest, NoMasksNoWork) {
  const MaskPlan plan = MaskPlan::For({}, {{.name = "email", .type_oid = kText, .format = 0}});
  EXPECT_FALSE(plan.masks_anything());
  EXPECT_FALSE(MaskPlan().masks_anything());
}

}  // namespace
}  // namespace pgb::policy
