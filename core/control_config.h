// [control]: where the control plane listens (core/control_plane.h): its HTTP
// server (/metrics, /healthz, /readyz) and the local admin socket that
// `pgbastion sessions` talks to. Without a [control] table there is neither.
// The keys are documented in docs/configuration.md.
//
//   [control]
//   address = "127.0.0.1"   # port 9432 by default; port = 0: no HTTP server
//   admin_socket = "/run/pgbastion/admin.sock"
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/time/time.h"
#include "base/toml_table.h"
#include "toml++/toml.h"

namespace pgb {

struct ControlConfig {
  bool enabled = false;  // a [control] table exists
  std::string address = "127.0.0.1";
  uint16_t port = 9432;       // 0: no HTTP server
  std::string tls_cert_file;  // both or neither: HTTPS
  std::string tls_key_file;
  // When set, /metrics answers only a request with "Authorization: Bearer
  // <the file's content>" (Prometheus: authorization.credentials_file).
  std::string metrics_token_file;
  uint32_t threads = 2;                              // HTTP worker threads: requests served at once
  absl::Duration check_interval = absl::Seconds(5);  // readiness checks of the targets
  absl::Duration check_timeout = absl::Seconds(2);   // one TCP connect
  absl::Duration request_timeout = absl::Seconds(5);  // one read or write of a request
  std::string admin_socket;  // absolute path of the admin socket; empty: none
};

// Parses the [control] node (nullptr if absent) into `out`; `resolve` makes
// file paths absolute against the config file's directory.
void ParseControlConfig(const toml::node* control,
                        const std::function<std::string(std::string_view)>& resolve,
                        const TomlProblemSink& sink, ControlConfig* out);

}  // namespace pgb
