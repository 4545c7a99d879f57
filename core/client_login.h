// ClientLogin is the client's half of a session's login, from the first
// packet to a verified identity with its target and scope: SSL and GSS
// negotiation, the StartupMessage and its parameters (core/startup_parameters.h),
// then one of the listener's login methods: SCRAM-SHA-256 against a gateway
// [[user]] (with channel binding over TLS), an OIDC/JWT token sent as the
// password (TLS required), or the verified client certificate. Deny by
// default: an identity that no scope covers for the target gets no database
// connection. An unknown user runs the same SCRAM exchange as a known one and
// fails at the proof, so user names cannot be probed.
//
// It does no I/O: the session feeds it the client's bytes and gives it a
// Channel to answer on and to start TLS with. Failures are absl::Status with
// the SQLSTATE (proto/error_status.h) for the FATAL the client gets.
//
//   ClientLogin login(*runtime, listener, shard.token_verifier(), channel, "session 0.3 from ...");
//   absl::StatusOr<ClientLogin::Step> step = login.Feed(staging);
//   kNeedMore: read more; kTlsStarted: handshake, then login.OnTlsEstablished();
//   kCancel: route login.cancel_pid()/cancel_key(); kQuit: close quietly;
//   kAuthenticated: login.identity(), target(), scope() ... -> log in to the database
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "base/log.h"
#include "core/runtime.h"
#include "core/startup_parameters.h"
#include "policy/identity.h"
#include "policy/rules.h"
#include "policy/token_verifier.h"
#include "proto/messages.h"
#include "proto/scram.h"
#include "proto/tls.h"

namespace pgb {

class ClientLogin {
 public:
  // The client's socket, as the login needs it.
  class Channel {
   public:
    virtual ~Channel() = default;
    virtual void SendToClient(std::string bytes) = 0;
    // Everything after the 'S' just sent goes through TLS (server side).
    [[nodiscard]] virtual absl::Status StartTls() = 0;
    // The client's TLS stream once one is active; null without TLS.
    virtual const proto::TlsStream* Tls() const = 0;
  };

  enum class Step : uint8_t {
    kNeedMore,       // waiting for the client
    kTlsStarted,     // a TLS handshake runs now; call OnTlsEstablished when it is done
    kCancel,         // a CancelRequest: cancel_pid() and cancel_key(); then close
    kQuit,           // the client left (Terminate), TLS could not start, or the first
                     // bytes were not a startup packet (PostgreSQL is silent then too):
                     // close quietly
    kAuthenticated,  // identity, target and scope are known: log in to the database
  };

  // `runtime` and `listener` outlive the login; `verifier` may be null (no issuers);
  // `peer_uid`: the connecting process's uid on a Unix-domain socket.
  ClientLogin(const Runtime& runtime, const ListenerRuntime& listener,
              policy::TokenVerifier* verifier, Channel& channel, std::string session_name,
              std::optional<uid_t> peer_uid = std::nullopt);

  // Consumes what it can of `staging` (the client's bytes, decrypted).
  [[nodiscard]] absl::StatusOr<Step> Feed(std::string& staging);
  void OnTlsEstablished();

  // The startup packet was accepted and the client was asked for its
  // password, SCRAM proof or token: a failure now is a failed login.
  bool awaiting_credential() const {
    return state_ == State::kSaslInitial || state_ == State::kSaslContinue ||
           state_ == State::kToken;
  }
  // The method being tried, for the metrics: "password", "token",
  // "certificate" (once verified), or "none" before a credential was asked for.
  std::string_view method_name() const {
    if (state_ == State::kSaslInitial || state_ == State::kSaslContinue) return "password";
    if (state_ == State::kToken) return "token";
    if (state_ == State::kDone) return policy::AuthMethodName(identity_.method);
    return "none";
  }
  // Failed attempts are logged at debug, not info (the login throttle logs
  // one line for the burst they belong to).
  void QuietFailures() { failure_log_level_ = LogLevel::kDebug; }

  // The user the client named (then the verified subject), for logs and the audit.
  const std::string& user_name() const { return user_name_; }
  int32_t cancel_pid() const { return cancel_pid_; }
  int32_t cancel_key() const { return cancel_key_; }

  // After kAuthenticated.
  const policy::Identity& identity() const { return identity_; }
  const TargetRuntime& target() const { return *target_; }
  const std::shared_ptr<const policy::Policy>& policy() const { return policy_; }
  const policy::Scope& scope() const { return *scope_; }
  ClientStartup& startup() { return startup_; }
  // Unix seconds after which the session ends at its next statement boundary
  // (token exp + the issuer's session_grace, or the certificate's notAfter);
  // 0 = never.
  int64_t identity_ends_unix() const { return identity_ends_unix_; }

 private:
  enum class State : uint8_t { kStartup, kTls, kSaslInitial, kSaslContinue, kToken, kDone };

  absl::StatusOr<Step> OnStartupPacket(std::string& staging);
  // The next PasswordMessage (SASL responses and passwords share its type);
  // false while it has not fully arrived.
  absl::StatusOr<bool> NextPasswordMessage(std::string_view staging, std::string_view expected,
                                           proto::MessageView* msg);
  absl::StatusOr<Step> OnSaslMessage(std::string& staging);
  absl::StatusOr<Step> OnTokenMessage(std::string& staging);
  absl::StatusOr<Step> AcceptCertificate();
  absl::StatusOr<Step> AcceptPeer(std::string os_user);
  // The target named as the database, and the scope that covers the identity.
  absl::StatusOr<Step> Authorize();
  std::string Describe() const;

  const Runtime& runtime_;
  const ListenerRuntime& listener_;
  policy::TokenVerifier* verifier_;
  Channel& channel_;
  const std::string session_name_;
  const std::optional<uid_t> peer_uid_;
  State state_ = State::kStartup;
  // A message was consumed and the next may already be in `staging`.
  bool progressed_ = false;
  bool ssl_answered_ = false;  // SSLRequest already answered
  bool gss_answered_ = false;  // GSSENCRequest already answered
  LogLevel failure_log_level_ = LogLevel::kInfo;
  std::string user_name_;
  ClientStartup startup_;
  const UserRuntime* user_ = nullptr;
  std::unique_ptr<proto::ScramServer> scram_;
  int32_t cancel_pid_ = 0;
  int32_t cancel_key_ = 0;
  policy::Identity identity_;
  int64_t identity_ends_unix_ = 0;
  const TargetRuntime* target_ = nullptr;
  std::shared_ptr<const policy::Policy> policy_;
  const policy::Scope* scope_ = nullptr;  // inside *policy_
};

}  // namespace pgb
