// Outbound HTTPS GET with libcurl, for work off the data path: OIDC discovery
// and JWKS fetches by the key refresher (policy/key_store.h). One call, one
// request: no redirects followed, no cookies, no proxy from the environment,
// TLS peer and host verified (against `ca_file` when given), a total timeout,
// and a body size cap enforced while reading. Only https:// URLs, and http://
// to a loopback host (tests), are fetched.
//
//   absl::StatusOr<HttpResponse> response =
//       HttpGet({.url = "https://idp.example/jwks", .ca_file = "", .timeout = absl::Seconds(5)});
//
// Safe to call from several threads (each call has its own easy handle).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace pgb {

struct HttpRequest {
  std::string url;
  std::string ca_file;  // empty: the system's CAs
  absl::Duration timeout = absl::Seconds(10);
  size_t max_body = 256 * 1024;
};

struct HttpResponse {
  long status = 0;  // NOLINT(runtime/int): libcurl's type
  std::string body;
  std::string cache_control;  // the Cache-Control header's value, if any
};

// True for an https:// URL, or an http:// one whose host is a loopback
// address (127.0.0.1, [::1], localhost: tests).
bool IsAllowedProviderUrl(std::string_view url);

// Errors: Unavailable (resolve, connect, TLS, timeout: the provider is down
// or unreachable), InvalidArgument (refused URL, body over max_body).
[[nodiscard]] absl::StatusOr<HttpResponse> HttpGet(const HttpRequest& request);

}  // namespace pgb
