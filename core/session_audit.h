// SessionAudit writes one session's audit records into its shard's audit
// ring (core/audit/writer.h): per statement execution a statement record
// before the database sees it and a completion after (numbered by
// statement_id within the session), one per refusal, and one per session
// event (connection, authentication success or failure, token expiry,
// cancel request, the session's end). It holds what every record of
// the session repeats (session id, identity, client address, target, database
// role, application name) and never allocates per record: fields are copied
// straight into the ring slot.
//
//   SessionAudit audit(shard_audit, peer_address);  // shard_audit null: no trail, no-ops
//   audit.SetSession(&identity, "app", "app_owner", "psql");
//   if (!audit.HasRoomFor(2 * statements)) { refuse with 53400 }
//   audit.Statement(execution);             // before forwarding; sets execution.id
//   audit.Completion(execution, outcome);   // from StatementLedger, when answered (or not)
//   audit.Refusal(text, StatementProtocol::kSimple, rule, "42501", message, fingerprint, bytes);
//   audit.Disconnect("client closed the connection", bytes_in, bytes_out);
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/audit/record.h"
#include "core/audit/writer.h"
#include "core/recording/session_recording.h"
#include "core/statement_ledger.h"
#include "policy/identity.h"

namespace pgb {

class SessionAudit {
 public:
  // `shard` null: no audit trail configured (every call is a no-op).
  SessionAudit(audit::AuditShard* shard, const sockaddr_storage& client);

  bool enabled() const { return shard_ != nullptr; }
  // Fail closed: false while the trail cannot take records (53400).
  bool MayProceed() const { return shard_ == nullptr || shard_->MayProceed(); }
  // What records hold of extended-protocol parameters.
  audit::ParameterMode parameters() const {
    return shard_ == nullptr ? audit::ParameterMode::kOff : shard_->parameters();
  }

  // A Unix-domain socket client: the process that connected (SO_PEERCRED),
  // in every record that names the client.
  void SetLocalClient(int32_t pid, uint32_t uid) {
    local_pid_ = pid;
    local_uid_ = uid;
    local_known_ = true;
  }

  // Who and where, once known (after authentication).
  void SetSession(const policy::Identity* identity, std::string target, std::string role,
                  std::string application_name);
  uint64_t session_id() const { return session_id_; }

  // Fail closed: whether `records` more can be written now (always true
  // without a trail or in fail-open mode).
  bool HasRoomFor(size_t records) const { return shard_ == nullptr || shard_->HasRoomFor(records); }
  // A statement about to be forwarded: its record, before the database
  // sees it. Numbers the execution (execution.id).
  void Statement(StatementLedger::Execution& execution);
  // Its outcome, as the ledger reports it: ran (a command tag or an error),
  // skipped, or unknown (the session ended first).
  void Completion(const StatementLedger::Execution& execution,
                  const StatementLedger::Outcome& outcome);
  // A setting the client sent at startup that the policy allowed, as its
  // equivalent SET (core/startup_parameters.h): its statement record, before
  // the database's startup packet carries it. StartupSettingsDone completes
  // them all once the database's login has answered: `failure` empty when
  // it accepted them (the session is in), else why the login ended.
  void StartupSetting(std::string_view statement, std::string_view rule, uint64_t fingerprint);
  void StartupSettingsDone(std::string_view failure = {});
  // A statement the gateway refused (it never reached the database).
  void Refusal(std::string_view statement, StatementProtocol protocol, std::string_view rule,
               std::string_view sqlstate, std::string_view message, uint64_t fingerprint,
               uint64_t bytes_in);
  // A statement held for approval (core/approvals/session_holds.h): its
  // request (`decision` kHold), or its end without running (kRejected:
  // denied, withdrawn, the store failed; kApprovalTimedOut). Once approved,
  // its executions are recorded by Statement with decision "approved".
  void Approval(audit::AuditDecision decision, std::string_view approval_id,
                std::string_view statement, StatementProtocol protocol, std::string_view rule,
                std::string_view sqlstate, std::string_view message, uint64_t fingerprint);
  // A session event; `message` is the reason for failures and ends.
  void Event(audit::AuditKind kind, std::string_view message = {}, std::string_view user_name = {});
  // The session's end, with every byte it received from the client and the
  // database.
  // `recording`: the session's recording (its content's SHA-256, length and
  // status go into the record), or null when it was not recorded.
  void Disconnect(std::string_view message, uint64_t bytes_in, uint64_t bytes_out,
                  const recording::SessionRecording::Summary* recording = nullptr);
  // Whether the session's end is recorded: a disconnect, or a failed login
  // (every connect record gets one of the two; `audit verify` checks).
  bool end_recorded() const { return end_recorded_; }

 private:
  // A record with the session's id; `who`: also the identity, client,
  // target, role and application (completions leave them to their statement).
  audit::AuditRecord* Begin(audit::AuditKind kind, bool who = true);
  // Fills an event's times, subject and message, and commits it.
  void Finish(audit::AuditRecord* r, audit::AuditKind kind, std::string_view message,
              std::string_view user_name);

  audit::AuditShard* shard_;
  sockaddr_storage client_;
  bool local_known_ = false;
  int32_t local_pid_ = 0;
  uint32_t local_uid_ = 0;
  uint64_t session_id_;
  int64_t started_us_;
  uint64_t statements_ = 0;  // statement_ids given so far
  bool end_recorded_ = false;
  const policy::Identity* identity_ = nullptr;
  std::string target_;
  std::string role_;
  std::string application_name_;
  std::vector<StatementLedger::Execution> startup_settings_;  // awaiting completion
};

}  // namespace pgb
