// Outbound HTTP(S) with libcurl, for work off the data path: OIDC discovery
// and JWKS fetches by the key refresher (policy/key_store.h) and the audit
// trail's HTTP sink (core/audit/http_sink.h). Every outbound request starts
// from ConfigureCurl, the one libcurl setup: no signals (threads), only http
// and https, TLS peer and host verified (against `ca_file` when given), a
// total and a connect timeout, and the standard proxy variables (https_proxy,
// http_proxy, no_proxy) honoured, as an appliance behind an egress proxy needs.
//
// HttpGet is one GET, one request: no redirects followed, no cookies, and a
// body size cap enforced while reading. Only https:// URLs, and http:// to a
// loopback host (tests), are fetched.
//
//   absl::StatusOr<HttpResponse> response =
//       HttpGet({.url = "https://idp.example/jwks", .ca_file = "", .timeout = absl::Seconds(5)});
//
// Safe to call from several threads (each call has its own easy handle).
#pragma once

#include <curl/curl.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"
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

// A new easy handle (nullptr if libcurl cannot make one), after initialising
// libcurl once per process (curl_global_init is not thread-safe on its own).
// The caller frees it with curl_easy_cleanup.
[[nodiscard]] CURL* NewCurlHandle();

// Sets the options every outbound
// request shares (see the overview) on `curl`, a fresh or reset easy handle.
// Errors: Internal (an option libcurl refused).
[[nodiscard]] absl::Status ConfigureCurl(CURL* curl, const std::string& ca_file,
                                         absl::Duration timeout);

// Errors: Unavailable (resolve, connect, TLS, timeout: the provider is down
// or unreachable), InvalidArgument (refused URL, body over max_body).
[[nodiscard]] absl::StatusOr<HttpResponse> HttpGet(const HttpRequest& request);

}  // namespace pgb
