// A Session is one client connection and the backend connection the gateway
// opens for it, pinned to one shard. It composes parts with one job each, in
// a fixed order (docs/architecture.md):
//
//   Endpoint x2 (core/endpoint.h)     the two sockets: io_uring receives and sends, TLS
//   ClientLogin (core/client_login.h)  SSL/GSS answer, startup packet, SCRAM/token/certificate
//   BackendLogin (core/backend_login.h) the gateway's login to the database
//   Relay (core/relay.h)               framing, request pipeline, statement gate, masking
//
// What stays here is what needs both sides at once: the completion dispatch
// and the TLS pump (decrypted bytes go to the login or the relay), the moves
// from one phase to the next (connect, backend TLS, relay), backpressure (a
// side's receive is re-armed only while the other side's queue is under
// kMaxQueuedBytes), the cancel secret the client gets instead of the
// backend's (the shard routes CancelRequests by it), and every ending: deadlines,
// shutdown, token expiry, FATALs. That is why session.cc is longer than the
// parts (about 750 lines): none of it belongs to one side alone.
//
// Relaying is zero-copy for plaintext sockets: a receive lands in a provided
// buffer, the relay walks the message headers in it, and the same buffer is
// handed to the other socket's send queue; it returns to the buffer ring once
// sent.
//
//   auto s = std::make_unique<Session>(shard, slot, generation, fd, listener, peer, address);
//   s->Start();
//   ... s->OnCompletion(op, cqe->res, cqe->flags) for each of its completions ...
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/approvals/session_holds.h"
#include "core/backend_login.h"
#include "core/client_login.h"
#include "core/endpoint.h"
#include "core/recording/session_recording.h"
#include "core/relay.h"
#include "core/ring.h"
#include "core/runtime.h"
#include "core/session_audit.h"
#include "core/session_role.h"
#include "core/startup_parameters.h"
#include "proto/frame.h"
#include "proto/messages.h"
#include "proto/scram.h"
#include "proto/tls.h"

namespace pgb {

class Shard;

// One open session as `pgbastion sessions` lists it (core/control_plane.h).
struct SessionInfo {
  uint64_t id = 0;  // the audit trail's session id
  int shard = 0;
  std::string subject;  // empty until logged in
  std::string method;   // "password", "token", "certificate"
  std::string issuer;   // a token's iss
  std::string scope;
  std::string target;
  std::string role;  // the database role the session uses
  std::string client;
  int32_t backend_pid = 0;
  std::string state;  // "login", "connecting", "idle", "idle in transaction", "active", "closing"
  std::string statement;                // the last Query or Parse judged (its first 256 bytes)
  int64_t statement_since_unix_us = 0;  // 0: none yet
  int64_t started_unix_us = 0;
  uint64_t bytes_from_client = 0;
  uint64_t bytes_from_backend = 0;
};

class Session : private RelaySink, private ClientLogin::Channel {
 public:
  using Side = ::pgb::Side;

  Session(Shard& shard, uint32_t slot, uint32_t generation, int client_fd,
          const ListenerRuntime& listener, std::string peer, const sockaddr_storage& peer_address);
  ~Session() override;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void Start();
  void OnCompletion(Op op, int res, uint32_t flags);
  // Called by the shard's tick (monotonic nanoseconds).
  void OnTick(int64_t now_ns);
  // Graceful shutdown: finish the current work, then close with a FATAL;
  // forced after deadline_ns.
  void BeginShutdown(int64_t deadline_ns);
  // Whether a CancelRequest with this session's pid and key (the shard looked
  // them up) is forwarded to its backend: only while statements can run.
  bool AcceptsCancel() const;
  // The approval store answered for the statement this session holds as
  // number `hold` (core/approvals/session_holds.h); on the shard's thread.
  void OnApprovalEvent(uint64_t hold, const approvals::ApprovalEvent& event);
  // A CancelRequest withdrew a held statement (57014); false: none is held.
  bool CancelHeld();
  // Re-arms receives that failed for lack of buffers.
  void RetryReceive(Side side);
  // A reload published `runtime`: statements from now on are judged by its
  // policy. The session keeps the Runtime it logged in with for the rest.
  void OnRuntimeChanged(const std::shared_ptr<const Runtime>& runtime);

  // The session as the operator's list shows it; `now_ns` is the shard's clock.
  SessionInfo Info(int64_t now_ns) const;
  // For the metrics' open sessions: (target, scope) once relaying, else nullopt.
  bool InRelay() const { return phase_ == Phase::kRelay; }
  std::pair<std::string_view, std::string_view> TargetAndScope() const;
  // An operator ended the session (`pgbastion sessions end`): FATAL 57P01,
  // "terminating connection due to administrator command", naming `by`; the
  // audit trail's disconnect record names them too.
  void EndByOperator(std::string_view by);

  bool finished() const { return closed_ && ops_in_flight_ == 0; }
  uint32_t slot() const { return slot_; }
  uint32_t generation() const { return generation_; }
  const TargetRuntime* target() const { return target_; }
  std::pair<int32_t, int32_t> backend_key() const { return {backend_pid_, backend_key_}; }

 private:
  enum class Phase : uint8_t {
    kClientLogin,         // client_login_ runs (TLS, startup packet, SCRAM/token/certificate)
    kProvisioning,        // the session's temporary database role is being created
    kBackendConnect,      // connect() in flight
    kBackendSslResponse,  // sent SSLRequest to the database
    kBackendTlsHandshake,
    kBackendAuth,  // sent StartupMessage; backend_login_ answers until ReadyForQuery
    kRelay,
    kClosing,  // flushing a final message, then close
  };

  Endpoint& ep(Side side) { return side == Side::kClient ? client_ : backend_; }
  Side Other(Side side) { return side == Side::kClient ? Side::kBackend : Side::kClient; }

  // I/O.
  void ArmRecv(Side side);
  void OnRecv(Side side, int res, uint32_t flags);
  void OnSend(Side side, int res);
  void Flush(Side side);
  // Queues bytes the gateway produced (copied).
  void WriteOwned(Side side, std::string bytes);
  // Queues received plaintext for sending; bid >= 0 transfers the buffer.
  void WriteReceived(Side side, const char* data, size_t n, int32_t bid);
  void MaybeResume(Side sender);
  void KeepReading(Side side);

  // Input after decryption.
  void OnPlaintext(Side side, const char* data, size_t n, int32_t bid);
  void OnTlsHandshakeDone(Side side);
  void OnPeerClosed(Side side, int res);

  // Login, client side: hands the client's bytes to client_login_.
  void ProcessClientLogin();
  // The login throttle (core/login_throttle.h) made this attempt wait: the
  // answer to the startup packet and the client's further bytes are held
  // for `wait_ns` (a ring timeout, Op::kLoginDelay), whatever its credential.
  void HoldLogin(int64_t wait_ns);
  void OnLoginDelayDone();
  // ClientLogin::Channel: the client socket as the login needs it.
  void SendToClient(std::string bytes) override;
  absl::Status StartTls() override;
  const proto::TlsStream* Tls() const override;
  // Login, backend side.
  // Judges the client's startup settings as their SETs (core/startup_parameters.h)
  // and records the allowed ones; false: refused (the client got a FATAL).
  bool AdmitStartupSettings();
  // Creates the session's temporary role first if its scope wants one
  // (core/session_role.h), then StartBackend.
  void ProvisionRole();
  void OnRoleProvisioned(absl::StatusOr<DatabaseLogin> login, ProvisionTarget target);
  void StartBackend();
  void OnBackendConnected(int res);
  void SendBackendStartup();
  void ProcessBackendLogin();
  // The database is ready (its ReadyForQuery is `ready`): false if the session ended.
  bool CompleteBackendLogin(std::string_view ready);
  void EnterRelay();

  // Hands a chunk to relay_, then flushes and reads on.
  void RelayChunk(Side from, const char* data, size_t n, int32_t bid);
  // RelaySink: what the relay sends goes to the endpoints.
  void Forward(Side to, const char* data, size_t n, int32_t buffer_id) override;
  void Send(Side to, std::string bytes) override;
  void Recycle(int32_t buffer_id) override;
  // Before relaying starts, both streams are at a boundary.
  bool AtBoundary(Side side) const { return relay_ == nullptr || relay_->AtBoundary(side); }
  bool ClientTerminated() const { return relay_ != nullptr && relay_->client_terminated(); }
  bool IdleBetweenTransactions() const;
  // Whether the token (plus the issuer's session_grace) or the client
  // certificate has expired.
  bool IdentityExpired() const;
  // Ends the session whose identity expired, whatever the protocol state, at
  // the next message from either side or the next tick (FATAL 28000).
  void EndIdentityExpired();

  // Recording (core/recording/session_recording.h): started with the relay
  // when the scope asks for it. Record(kBackend, ...) takes what the client
  // sent, as it sent it; Record(kClient, ...) what goes to the client, after
  // masking.
  void StartRecording();
  void Record(Side to, const char* data, size_t n) {
    if (recording_ != nullptr) {
      recording_->Observe(
          to == Side::kClient ? recording::Direction::kToClient : recording::Direction::kFromClient,
          data, n);
    }
  }
  // Writes the recording's incidents to the audit trail; false when the
  // session had to end (on_overflow = "end-session").
  bool CheckRecording();

  // Endings.
  void FailClient(const char* sqlstate, std::string message, std::string detail = "",
                  std::string hint = "");
  // A login failure as an absl::Status with its SQLSTATE (proto/error_status.h).
  void FailClient(const absl::Status& failure);
  void Terminate(const char* sqlstate, std::string message);
  void CloseAfterFlush();
  void Close();
  // The session's end in the audit trail, once: statements still awaiting
  // their answer get an "unknown" completion, then the disconnect record.
  void RecordEnd();
  void CloseEndpoint(Side side);

  std::string Describe() const;

  Shard& shard_;
  const std::shared_ptr<const Runtime> runtime_;  // target_ and listener_ point into it
  const uint32_t slot_;
  const uint32_t generation_;
  const ListenerRuntime& listener_;
  const std::string peer_;
  Phase phase_ = Phase::kClientLogin;
  bool closed_ = false;
  bool shutting_down_ = false;
  uint64_t relayed_from_client_ = 0;  // bytes received while relaying (the audit's totals)
  uint64_t relayed_from_backend_ = 0;
  uint32_t ops_in_flight_ = 0;
  int64_t deadline_ns_ = 0;  // login / connect / flush / shutdown deadline; 0 = none

  Endpoint client_;
  Endpoint backend_;

  // Login state (released when relaying starts).
  std::string user_name_;  // as the client named it, then the verified subject
  StartupSettings forwarded_params_;
  const TargetRuntime* target_ = nullptr;
  std::unique_ptr<ClientLogin> client_login_;
  std::unique_ptr<BackendLogin> backend_login_;
  SessionRole role_;  // the database role; a temporary one is released with the session
  std::string startup_search_path_;  // the client's, if it set one at startup
  // Who the session belongs to, and the scope that covers it (inside policy_,
  // which the gate takes over once relaying starts).
  policy::Identity identity_;
  std::shared_ptr<const policy::Policy> policy_;
  const policy::Scope* scope_ = nullptr;
  // Unix seconds from which the session ends at the next message or tick
  // (token exp + session_grace, or the certificate's notAfter); 0 = never.
  int64_t identity_ends_unix_ = 0;

  // Login throttling: this client's address key, whether this attempt was
  // admitted yet, and whether it is being held (output, reads, the timer).
  const uint64_t throttle_address_;
  std::optional<uid_t> peer_uid_;  // a Unix-domain socket's client process (SO_PEERCRED)
  bool login_admitted_ = false;
  bool login_held_ = false;
  bool login_timer_armed_ = false;
  __kernel_timespec login_delay_{};

  SessionAudit audit_;
  approvals::SessionHolds holds_;  // statements held for approval (before relay_, which uses it)
  // The steady state: framing, the request pipeline, the gate and masking.
  std::unique_ptr<Relay> relay_;
  std::unique_ptr<recording::SessionRecording> recording_;  // null: not recorded
  std::string application_name_;  // from the startup packet, for audit records
  std::string end_reason_;        // why the gateway ended the session, for the audit

  int64_t backend_started_ns_ = 0;  // connect() to the database, for the metrics
  int64_t statement_since_ns_ = 0;  // the last judged statement arrived (shard clock)
  int64_t started_unix_us_ = 0;

  int32_t gateway_key_ = 0;  // the secret the client got; registered with the shard
  bool cancel_key_registered_ = false;
  int32_t backend_pid_ = 0;
  int32_t backend_key_ = 0;
};

}  // namespace pgb
