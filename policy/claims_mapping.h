// Claims to identity: a verified token's payload read through an issuer's
// ClaimMapping (policy/issuer_config.h) into a policy::Identity. Used by the
// token verifier after every check has passed; on its own for the benchmark.
//
//   simdjson::dom::object payload = ...;   // a verified token's claims
//   PGB_ASSIGN_OR_RETURN(Identity identity, MapClaims(payload, issuer.claims));
//
// A claim name is first looked up as a top-level member of that exact name
// (namespaced claims such as "https://example.com/groups" contain dots), then
// as a dotted path into nested objects ("realm_access.roles").
#pragma once

#include "absl/status/statusor.h"
#include "policy/identity.h"
#include "policy/issuer_config.h"
#include "simdjson.h"

namespace pgb::policy {

// Errors (InvalidArgument) name the claim: `claim "groups" (groups) must hold
// only strings`. Sets method, subject, groups, client_id, run_id and claims;
// the caller sets issuer and expires_at_unix.
[[nodiscard]] absl::StatusOr<Identity> MapClaims(simdjson::dom::object payload,
                                                 const ClaimMapping& mapping);

}  // namespace pgb::policy
