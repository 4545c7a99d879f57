#include "policy/statement.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace pgb::policy {
namespace {

TEST(StatementClassName, EveryClassHasItsOwnName) {
  const StatementClass all[] = {
      StatementClass::kRead,        StatementClass::kTransaction, StatementClass::kSessionSetting,
      StatementClass::kUtility,     StatementClass::kWrite,       StatementClass::kHazard,
      StatementClass::kDdl,         StatementClass::kDcl,         StatementClass::kCodeExecution,
      StatementClass::kServerAccess};
  std::set<std::string> names;
  for (StatementClass c : all) names.insert(StatementClassName(c));
  EXPECT_EQ(names.size(), std::size(all));
  EXPECT_EQ(names.count("unknown"), 0u);
  EXPECT_STREQ(StatementClassName(StatementClass::kWrite), "write");
  EXPECT_STREQ(StatementClassName(StatementClass::kHazard), "hazard");
}

}  // namespace
}  // namespace pgb::policy
