#include "core/session_audit.h"

#include <openssl/rand.h>

#include <charconv>
#include <memory>
#include <string>
#include <utility>

#include "base/str_cat.h"

namespace pgb {
namespace {

audit::AuditProtocol ProtocolOf(StatementProtocol p) {
  switch (p) {
    case StatementProtocol::kSimple:
      return audit::AuditProtocol::kSimple;
    case StatementProtocol::kExtended:
      return audit::AuditProtocol::kExtended;
    case StatementProtocol::kFunctionCall:
      return audit::AuditProtocol::kFunctionCall;
    case StatementProtocol::kStartup:
      return audit::AuditProtocol::kStartup;
  }
  return audit::AuditProtocol::kNone;
}

// The row count of a command tag ("SELECT 5", "INSERT 0 5", "COPY 7"): its
// last word, when that is a number. Tags without one ("CREATE TABLE") have none.
bool RowsOf(std::string_view tag, uint64_t* rows) {
  const size_t space = tag.rfind(' ');
  if (space == std::string_view::npos) return false;
  const std::string_view last = tag.substr(space + 1);
  return !last.empty() &&
         std::from_chars(last.data(), last.data() + last.size(), *rows).ec == std::errc();
}

// The parameters as the configured mode records them: each value ("on"),
// each length ("redacted"), SQL NULLs as null; a Bind the gateway saw only
// part of is marked cut.
void AddParameters(const BoundParameters& parameters, audit::ParameterMode mode,
                   audit::AuditRecord* r) {
  if (mode == audit::ParameterMode::kOff) return;
  const bool values = mode == audit::ParameterMode::kOn;
  for (const BoundParameters::Value& v : parameters.values) {
    if (v.length < 0) {
      r->AddNullParameter();
    } else if (values) {
      r->AddParameter(v.text);
    } else {
      r->AddRedactedParameter(static_cast<size_t>(v.length));
    }
  }
  if (parameters.cut) r->MarkTruncated(audit::AuditField::kParameters);
}

}  // namespace

SessionAudit::SessionAudit(audit::AuditShard* shard, const sockaddr_storage& client)
    : shard_(shard), client_(client), session_id_(0), started_us_(audit::AuditClockMicros()) {
  // Drawn with or without a trail: `pgbastion sessions` names sessions by it.
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&session_id_), sizeof(session_id_)) != 1) {
    session_id_ = static_cast<uint64_t>(started_us_);
  }
}

void SessionAudit::SetSession(const policy::Identity* identity, std::string target,
                              std::string role, std::string application_name) {
  identity_ = identity;
  target_ = std::move(target);
  role_ = std::move(role);
  application_name_ = std::move(application_name);
}

audit::AuditRecord* SessionAudit::Begin(audit::AuditKind kind, bool who) {
  audit::AuditRecord* r = shard_->Begin();
  if (r == nullptr) return nullptr;  // counted as dropped by the trail, reported there
  r->kind = kind;
  r->session_id = session_id_;
  if (!who) return r;
  r->SetClientAddress(reinterpret_cast<const sockaddr*>(&client_));
  if (local_known_) r->SetLocalClient(local_pid_, local_uid_);
  if (identity_ != nullptr) {
    r->SetIdentity(*identity_);
    r->auth_method = identity_->method;
  }
  if (!target_.empty()) r->SetTarget(target_);
  if (!role_.empty()) r->SetDatabaseRole(role_);
  if (!application_name_.empty()) r->SetApplicationName(application_name_);
  return r;
}

void SessionAudit::Statement(StatementLedger::Execution& execution) {
  execution.id = ++statements_;
  if (shard_ == nullptr) return;
  audit::AuditRecord* r = Begin(audit::AuditKind::kStatement);
  if (r == nullptr) return;
  r->statement_id = execution.id;
  r->decision = audit::AuditDecision::kAllow;
  if (!execution.approval_id.empty()) {
    r->decision = audit::AuditDecision::kApproved;
    r->SetApprovalId(execution.approval_id);
    r->SetMessage(execution.approval_note);
  }
  r->protocol = ProtocolOf(execution.protocol);
  r->start_us = execution.start_us;
  r->SetRule(execution.rule);
  r->SetStatement(execution.statement());
  r->fingerprint = execution.fingerprint;
  r->bytes_in = execution.bytes_in;
  if (execution.parameters) AddParameters(*execution.parameters, shard_->parameters(), r);
  shard_->Commit();
}

void SessionAudit::Completion(const StatementLedger::Execution& execution,
                              const StatementLedger::Outcome& outcome) {
  if (shard_ == nullptr) return;
  audit::AuditRecord* r = Begin(audit::AuditKind::kCompletion, /*who=*/false);
  if (r == nullptr) return;
  r->statement_id = execution.id;
  r->start_us = execution.start_us;
  r->end_us = audit::AuditClockMicros();
  r->bytes_out = outcome.bytes_out;
  r->masked_values = outcome.masked_values;
  if (!outcome.answered) {
    r->outcome = audit::AuditOutcome::kUnknown;
    r->SetMessage(Cat("the session ended before the database answered: ", outcome.message));
  } else if (!outcome.sqlstate.empty()) {
    r->outcome = audit::AuditOutcome::kError;
    r->SetSqlState(outcome.sqlstate);
    r->SetMessage(outcome.message);
  } else if (!outcome.ran) {
    r->outcome = audit::AuditOutcome::kNotRun;
    r->SetMessage("not run: an earlier statement of the same batch failed");
  } else {
    r->outcome = audit::AuditOutcome::kOk;
    if (!outcome.command_tag.empty()) {
      r->SetCommandTag(outcome.command_tag);
      if (uint64_t rows = 0; RowsOf(outcome.command_tag, &rows)) r->SetRows(rows);
    }
    if (outcome.suspended) r->SetMessage("portal suspended: more rows to fetch");
  }
  shard_->Commit();
}

void SessionAudit::StartupSetting(std::string_view statement, std::string_view rule,
                                  uint64_t fingerprint) {
  StatementLedger::Execution e;
  e.text = std::make_shared<const std::string>(statement);
  e.protocol = StatementProtocol::kStartup;
  e.rule = std::string(rule);
  e.start_us = audit::AuditClockMicros();
  e.fingerprint = fingerprint;
  Statement(e);
  if (shard_ != nullptr) startup_settings_.push_back(std::move(e));
}

void SessionAudit::StartupSettingsDone(std::string_view failure) {
  StatementLedger::Outcome outcome;
  if (failure.empty()) {
    outcome.command_tag = "SET";
  } else {
    outcome.answered = false;
    outcome.message = failure;
  }
  for (const StatementLedger::Execution& e : startup_settings_) Completion(e, outcome);
  startup_settings_.clear();
}

void SessionAudit::Refusal(std::string_view statement, StatementProtocol protocol,
                           std::string_view rule, std::string_view sqlstate,
                           std::string_view message, uint64_t fingerprint, uint64_t bytes_in) {
  const uint64_t id = ++statements_;
  if (shard_ == nullptr) return;
  audit::AuditRecord* r = Begin(audit::AuditKind::kStatement);
  if (r == nullptr) return;
  r->statement_id = id;
  r->decision = audit::AuditDecision::kDeny;
  r->protocol = ProtocolOf(protocol);
  r->start_us = r->end_us = audit::AuditClockMicros();
  r->SetRule(rule);
  r->SetStatement(statement);
  r->SetSqlState(sqlstate);
  r->SetMessage(message);
  r->fingerprint = fingerprint;
  r->bytes_in = bytes_in;
  shard_->Commit();
}

void SessionAudit::Approval(audit::AuditDecision decision, std::string_view approval_id,
                            std::string_view statement, StatementProtocol protocol,
                            std::string_view rule, std::string_view sqlstate,
                            std::string_view message, uint64_t fingerprint) {
  const uint64_t id = ++statements_;
  if (shard_ == nullptr) return;
  audit::AuditRecord* r = Begin(audit::AuditKind::kStatement);
  if (r == nullptr) return;
  r->statement_id = id;
  r->decision = decision;
  r->protocol = ProtocolOf(protocol);
  r->start_us = r->end_us = audit::AuditClockMicros();
  r->SetApprovalId(approval_id);
  r->SetRule(rule);
  r->SetStatement(statement);
  r->SetSqlState(sqlstate);
  r->SetMessage(message);
  r->fingerprint = fingerprint;
  shard_->Commit();
}

void SessionAudit::Disconnect(std::string_view message, uint64_t bytes_in, uint64_t bytes_out,
                              const recording::SessionRecording::Summary* recording) {
  end_recorded_ = true;
  if (shard_ == nullptr) return;
  audit::AuditRecord* r = Begin(audit::AuditKind::kDisconnect);
  if (r == nullptr) return;
  r->bytes_in = bytes_in;
  r->bytes_out = bytes_out;
  if (recording != nullptr) {
    r->SetRecordingSha256(recording->sha256_hex);
    r->recording_bytes = recording->bytes;
    r->recording_status = recording->status;
  }
  Finish(r, audit::AuditKind::kDisconnect, message, {});
}

void SessionAudit::Event(audit::AuditKind kind, std::string_view message,
                         std::string_view user_name) {
  if (kind == audit::AuditKind::kAuthFailed) end_recorded_ = true;
  if (shard_ == nullptr) return;
  audit::AuditRecord* r = Begin(kind);
  if (r == nullptr) return;
  Finish(r, kind, message, user_name);
}

void SessionAudit::Finish(audit::AuditRecord* r, audit::AuditKind kind, std::string_view message,
                          std::string_view user_name) {
  r->start_us = kind == audit::AuditKind::kDisconnect ? started_us_ : audit::AuditClockMicros();
  r->end_us = audit::AuditClockMicros();
  if (identity_ == nullptr && !user_name.empty()) r->SetSubject(user_name);
  if (!message.empty()) r->SetMessage(message);
  shard_->Commit();
}

}  // namespace pgb
