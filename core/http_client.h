// Outbound HTTPS GET with libcurl, for work off the data path: OIDC discovery
// and JWKS fetches by the key refresher (policy/key_store.h). One call, one
// request: no redirects followed, no cookies, no proxy from the environment,
// TLS peer and host verified (against `ca_file` when given), a total timeout,
// and a body size cap enforced while reading. Only https:// URLs, and http://
// to a loopback host (tests), are fetched.
//
//   absl::StatusOr<policy::HttpResponse> response =
//       HttpGet({.url = "https://idp.example/jwks", .ca_file = "", .timeout = absl::Seconds(5)});
//
// Safe to call from several threads (each call has its own easy handle).
#pragma once

#include "absl/status/statusor.h"
#include "policy/key_store.h"

namespace pgb {

// Errors: Unavailable (resolve, connect, TLS, timeout: the provider is down
// or unreachable), InvalidArgument (refused URL, body over max_body).
[[nodiscard]] absl::StatusOr<policy::HttpResponse> HttpGet(const policy::HttpRequest& request);

}  // namespace pgb
