#include "policy/identity.h"

namespace pgb::policy {

const char* AuthMethodName(AuthMethod m) {
  switch (m) {
    case AuthMethod::kLocalPassword:
      return "password";
    case AuthMethod::kToken:
      return "token";
    case AuthMethod::kCertificate:
      return "certificate";
    case AuthMethod::kPeer:
      return "peer";
  }
  return "unknown";
}

}  // namespace pgb::policy
