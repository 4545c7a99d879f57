#include "policy/statement.h"

namespace pgb::policy {

const char* StatementClassName(StatementClass c) {
  switch (c) {
    case StatementClass::kRead:
      return "read";
    case StatementClass::kTransaction:
      return "transaction";
    case StatementClass::kSessionSetting:
      return "session_setting";
    case StatementClass::kUtility:
      return "utility";
    case StatementClass::kWrite:
      return "write";
    case StatementClass::kHazard:
      return "hazard";
    case StatementClass::kDdl:
      return "ddl";
    case StatementClass::kDcl:
      return "dcl";
    case StatementClass::kCodeExecution:
      return "code_execution";
    case StatementClass::kServerAccess:
      return "server_access";
  }
  return "unknown";
}

}  // namespace pgb::policy
