// SessionAudit writes one session's audit records into its shard's audit
// ring (core/audit/writer.h): one per statement execution or refusal, and one
// per session event (connection, authentication success or failure, token
// expiry, cancel request, the session's end). It holds what every record of
// the session repeats (session id, identity, client address, target, database
// role, application name) and never allocates per record: fields are copied
// straight into the ring slot.
//
//   SessionAudit audit(shard_audit, peer_address);  // shard_audit null: no trail, no-ops
//   audit.SetSession(&identity, "app", "app_owner", "psql");
//   audit.Execution(execution, outcome);  // from StatementLedger; the rule is in execution
//   audit.Refusal(text, StatementProtocol::kSimple, rule, "42501", message, fingerprint, bytes);
//   audit.Disconnect("client closed the connection", bytes_in, bytes_out);
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "core/audit/record.h"
#include "core/audit/writer.h"
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

  // Who and where, once known (after authentication).
  void SetSession(const policy::Identity* identity, std::string target, std::string role,
                  std::string application_name);
  uint64_t session_id() const { return session_id_; }

  // A statement that ran (or was skipped), as the ledger reports it.
  void Execution(const StatementLedger::Execution& execution,
                 const StatementLedger::Outcome& outcome);
  // A statement the gateway refused (it never reached the database).
  void Refusal(std::string_view statement, StatementProtocol protocol, std::string_view rule,
               std::string_view sqlstate, std::string_view message, uint64_t fingerprint,
               uint64_t bytes_in);
  // A session event; `message` is the reason for failures and ends.
  void Event(audit::AuditKind kind, std::string_view message = {}, std::string_view user_name = {});
  // The session's end, with every byte it received from the client and the
  // database.
  void Disconnect(std::string_view message, uint64_t bytes_in, uint64_t bytes_out);

 private:
  audit::AuditRecord* Begin(audit::AuditKind kind);
  // Fills an event's times, subject and message, and commits it.
  void Finish(audit::AuditRecord* r, audit::AuditKind kind, std::string_view message,
              std::string_view user_name);

  audit::AuditShard* shard_;
  sockaddr_storage client_;
  uint64_t session_id_;
  int64_t started_us_;
  const policy::Identity* identity_ = nullptr;
  std::string target_;
  std::string role_;
  std::string application_name_;
};

}  // namespace pgb
