// BackendLogin is the gateway's half of logging in to the database for one
// session, once the socket (and TLS, if the target wants it) is up: it
// answers the database's authentication requests with the target's
// credentials (SCRAM-SHA-256, checking the server's proof; md5; cleartext),
// and collects what the client must see once the database is ready
// (AuthenticationOk, ParameterStatus, notices) and the backend's own cancel
// key, which the client never sees. It does no I/O: the session hands it
// each whole message and sends what it appends.
//
// Failures are absl::Status with the SQLSTATE the client gets
// (proto/error_status.h). Why the database refused the gateway (wrong
// password, missing role) is the operator's business: it is logged, and the
// client is told only that the gateway could not log in; load shedding
// (53300 too many connections, 57P03 starting up) is the client's, so that
// it may retry.
//
//   BackendLogin login(target_config, scram_cache, "session 0.3 ...");
//   for each whole message from the database:
//     absl::StatusOr<bool> ready = login.OnMessage(type, body, raw, to_database);
//     if (!ready.ok()) fail the client with ready.status();
//     if (*ready) { client gets login.TakeForClient() + key + ReadyForQuery }
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/config.h"
#include "proto/scram.h"

namespace pgb {

class BackendLogin {
 public:
  // `log_prefix` names the session in log lines. `login`, if given, replaces
  // the target's user and password (a scope's database role,
  // core/role_config.h; `scram_cache` must then be null or its own).
  BackendLogin(const TargetConfig& target, proto::ScramClientKeyCache* scram_cache,
               std::string log_prefix, const DatabaseLogin* login = nullptr);

  // A whole message from the database during login (`raw`: header included).
  // Appends any reply to `to_database`. True once the database is ready
  // (its first ReadyForQuery, which is not kept: the session sends its own
  // BackendKeyData before relaying it).
  [[nodiscard]] absl::StatusOr<bool> OnMessage(char type, std::string_view body,
                                               std::string_view raw, std::string& to_database);

  // What the client gets before the gateway's BackendKeyData, in order.
  std::string TakeForClient() { return std::move(for_client_); }
  int32_t backend_pid() const { return backend_pid_; }
  int32_t backend_key() const { return backend_key_; }

 private:
  absl::StatusOr<bool> OnAuthenticationRequest(std::string_view body, std::string& to_database);
  absl::Status CouldNotLogIn() const;

  const TargetConfig& target_;
  proto::ScramClientKeyCache* scram_cache_;
  const std::string log_prefix_;
  const std::string& user_;  // the target's, or login's
  const Secret& password_;
  std::unique_ptr<proto::ScramClient> scram_;
  bool authenticated_ = false;  // AuthenticationOk seen
  std::string for_client_;
  int32_t backend_pid_ = 0;
  int32_t backend_key_ = 0;
};

}  // namespace pgb
