// Who a session belongs to: the verified identity that scopes (policy/rules.h),
// audit records and recordings are keyed by. It is built once at login, from a
// verified token's claims (policy/token_verifier.h,
// policy/claims_mapping.h), a client certificate, or a
// gateway-local [[user]] login, and is immutable afterwards.
//
//   Identity id{.method = AuthMethod::kToken, .subject = "ci-bot-7",
//               .groups = {"read-only"}, .issuer = "https://idp.example"};
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace pgb::policy {

enum class AuthMethod : uint8_t {
  kLocalPassword,  // a [[user]] of the config file, SCRAM
  kToken,          // an OIDC/JWT token sent as the password over TLS
  kCertificate,    // a client certificate (mutual TLS)
  kPeer,           // the OS user of a process on a Unix-domain socket (SO_PEERCRED)
};

struct Identity {
  AuthMethod method = AuthMethod::kLocalPassword;
  std::string subject;  // token `sub` (as mapped), certificate SAN/CN, user name, OS user name
  std::vector<std::string> groups;  // groups or roles from the mapped claim path
  std::string issuer;               // token `iss`; empty for local and certificate logins
  std::string client_id;            // agent metadata: `azp` / `client_id`
  std::string run_id;               // agent metadata: the configured task or run id claim
  // Further string claims kept for policy matching and audit, (name, value).
  std::vector<std::pair<std::string, std::string>> claims;
  int64_t expires_at_unix = 0;  // token `exp` or certificate notAfter; 0 = no expiry
};

const char* AuthMethodName(AuthMethod m);  // "password", "token", "certificate", "peer"

}  // namespace pgb::policy
