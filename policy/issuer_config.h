// An identity provider the gateway trusts: one [[issuer]] of the config file.
// It says where the provider's keys come from (a JWKS file, an explicit
// jwks_uri, or OIDC discovery), which tokens it accepts (audience, algorithms,
// clock skew) and how a verified token's claims become a policy::Identity.
// The keys are documented in docs/configuration.md ("[[issuer]]").
//
//   [[issuer]]
//   name = "corp"
//   issuer = "https://idp.example.com/realms/agents"
//   audience = "pgbastion"
//   groups_claim = "realm_access.roles"
//
// Parsed from TOML by policy/issuer_config_toml.h (called from core/config.cc).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "base/http_client.h"
#include "policy/jwt.h"

namespace pgb::policy {

// Whether the startup packet's `user` must equal the mapped subject.
enum class UserMatch : uint8_t {
  kSubject,  // user must equal the identity's subject (default)
  kIgnore,   // user is ignored: the identity comes from the token alone
};

// How claims become an Identity. Claim names may be dotted paths into nested
// objects: "realm_access.roles" reads {"realm_access":{"roles":[...]}}.
struct ClaimMapping {
  std::string subject_claim = "sub";
  std::string groups_claim = "groups";  // an array of strings or one string; absent = no groups
  // The first of these present becomes Identity::client_id.
  std::vector<std::string> client_id_claims = {"azp", "client_id"};
  std::string run_id_claim;              // empty: none
  std::vector<std::string> keep_claims;  // kept as (name, value text) in Identity::claims
};

enum class KeySource : uint8_t {
  kDiscovery,  // {issuer}/.well-known/openid-configuration -> jwks_uri
  kJwksUri,    // a configured jwks_uri, fetched as is
  kJwksFile,   // a local JWKS file, re-read on the refresh schedule
};

struct IssuerConfig {
  std::string name;                    // for logs, audit and errors
  std::string issuer;                  // the exact "iss" value (and discovery base URL)
  std::vector<std::string> audiences;  // the token's "aud" must contain one of them
  KeySource key_source = KeySource::kDiscovery;
  std::string jwks_file;  // kJwksFile: absolute path
  std::string jwks_uri;   // kJwksUri
  std::string ca_file;    // PEM CA bundle for the provider's HTTPS; empty: system CAs
  absl::Duration clock_skew = absl::Seconds(60);
  std::vector<JwsAlgorithm> algorithms;  // allowed; all of kAllJwsAlgorithms by default
  ClaimMapping claims;
  UserMatch user_match = UserMatch::kSubject;
  // Key refresh: the provider's Cache-Control max-age, bounded to
  // [refresh_min, refresh_max]; refresh_interval when it sends none. Two
  // fetches for one issuer are never closer than refresh_min, whatever asks
  // (an unknown kid included).
  absl::Duration refresh_interval = absl::Hours(1);
  absl::Duration refresh_min = absl::Seconds(10);
  absl::Duration refresh_max = absl::Hours(24);
  absl::Duration http_timeout = absl::Seconds(10);  // per HTTP request, connect included
  // How long a session may outlive its token's exp before it is ended at the
  // next statement boundary; 0: at the first boundary after exp.
  absl::Duration session_grace = absl::ZeroDuration();
  // The longest a token may live: exp - iat, or exp - now when it has no iat.
  absl::Duration max_token_lifetime = absl::Hours(24);

  bool AllowsAlgorithm(JwsAlgorithm alg) const;
};

// Whether the gateway fetches keys from `url`: https://, or plain http:// to
// a loopback host only (127.0.0.1, [::1], localhost), for local tests. The
// HTTP client (base/http_client.h) refuses any other URL with the same check.
using ::pgb::IsAllowedProviderUrl;

}  // namespace pgb::policy
