// StatementGate is the policy at one session's message boundary: every Query,
// Parse and FunctionCall the client sends is gathered whole, analysed with
// PostgreSQL's parser (through the shard's AnalysisCache), and decided by the
// session's scope before a byte of it reaches the database. Allowed messages
// go on unchanged; a refused one is replaced by a substitute
// (proto/statement_refusals.h), so the database aborts exactly what
// PostgreSQL would abort, and the client sees the refusal (SQLSTATE 42501,
// the rule, a hint) in the place of the substitute's error.
//
// A Query is judged whole: if any of its statements is refused, none of them
// runs (as with a syntax error anywhere in it).
//
// The gate writes into the session's request pipeline what it must know when
// the answers come: a Query's statements (inserted before the Query's batch
// end), the refusal a request stands in for, and, with an audit trail, the
// ledger's execution for each statement (StatementLedger: Bind, Execute and
// Close names and the database's command tags and errors are peeked at,
// never copied out of the relay). Through SessionAudit it writes each
// execution's record before the statement is forwarded (write-ahead: a
// Query's records all before any of it) and its completion when the answer
// comes or the session ends without one, and one record per refusal; while
// the trail cannot take records, statements are refused with 53400.
//
//   StatementGate gate(policy, *scope, identity, "app", "app_owner", shard_cache, 16 << 20,
//                      audit, pipeline);
//   client: header -> pipeline.Push(type), gate.OnClientMessage(type, size); peeks ->
//     gate.OnClientPeek; whole -> gate.OnWholeClientMessage(type, message, oversize, to_database)
//   backend: header -> pipeline.OnBackendMessage(type, on_closed -> gate.OnClosed),
//     gate.OnBackendMessage(type, size); peeks -> gate.OnBackendPeek; whole errors ->
//     gate.OnBackendError(message, to_client)
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/approvals/session_holds.h"
#include "core/catalog_reader.h"
#include "core/metrics.h"
#include "core/prepared_judgements.h"
#include "core/session_audit.h"
#include "core/statement_ledger.h"
#include "policy/identity.h"
#include "policy/judgement.h"
#include "policy/rules.h"
#include "policy/sql_analysis.h"
#include "proto/frame_tracker.h"
#include "proto/messages.h"
#include "proto/protocol.h"

namespace pgb {

class StatementGate {
 public:
  StatementGate(std::shared_ptr<const policy::Policy> policy, const policy::Scope& scope,
                policy::Identity identity, std::string target, std::string role,
                policy::AnalysisCache& cache, uint32_t max_statement_size, SessionAudit& audit,
                SessionPipeline& pipeline, approvals::SessionHolds* holds = nullptr);

  // What the relay must gather whole and peek at for the gate.
  const proto::FrameTracker::Gather& client_gather() const { return client_gather_; }
  const proto::FrameTracker::Gather& backend_gather() const;

  // Client -> database: every message header (after the pipeline has its
  // request), each peeked message's prefix, then each gathered message whole.
  // `size`: the whole message's bytes.
  void OnClientMessage(uint32_t size) { ledger_.OnClientBytes(size); }
  void OnClientPeek(char type, std::string_view prefix);
  // True: the message goes on as it is (the caller forwards `message`, from
  // its receive buffer when it lies there). False: it was refused, and what
  // replaces it was appended to `to_database`.
  [[nodiscard]] bool OnWholeClientMessage(char type, std::string_view message, bool oversize,
                                          std::string& to_database);
  // After OnWholeClientMessage returned true: the statement it let through
  // is held for approval (the caller keeps it, and what follows it, back
  // from the database until ResolveHold). Its pipeline requests are in
  // place, marked with the hold's number.
  std::optional<approvals::HeldStatement> TakeHold() { return std::exchange(held_, std::nullopt); }
  // A held statement's end: `refusal` null: approved (the caller forwards
  // it); otherwise its substitute is appended to `to_database` and the
  // client will see `refusal` in its place.
  // `decision` and `note` are what the audit trail records (kApproved with
  // who approved; kRejected or kApprovalTimedOut with the refusal).
  void ResolveHold(const approvals::HeldStatement& held, const proto::ErrorFields* refusal,
                   audit::AuditDecision decision, std::string_view note, std::string& to_database);
  // An audit record of a held statement's request: stored (kHold), or
  // withdrawn as the session ends (kRejected).
  void RecordHold(const approvals::HeldStatement& held, audit::AuditDecision decision,
                  std::string_view message);

  // Database -> client: every message header (after the pipeline placed
  // it), peeked prefixes (command tags, errors), and whole ErrorResponses
  // while a refusal's answer is awaited (appends what goes to the client).
  void OnBackendMessage(char type, uint32_t size);
  void OnBackendPeek(char type, std::string_view prefix);
  void OnBackendError(std::string_view message, std::string& to_client);
  // The pipeline closed `request` (answered, or skipped by the database).
  void OnClosed(SessionPipeline::Request& request);
  // The session ends: statements still unanswered get a completion that
  // says no answer came, and why (`reason`).
  void OnSessionEnd(std::string_view reason);
  // Values masked in the rows relayed since the last call (for the audit).
  void OnMaskedValues(uint32_t count) {
    if (metrics_ != nullptr) metrics_->masked_values += count;
    if (audit_.enabled()) ledger_.OnMaskedValues(count);
  }

  // Counts decisions and masked values into the shard's metrics from now on
  // (null: none, as in unit tests). Only the owning shard's thread counts.
  void CountInto(ShardMetrics* metrics) { metrics_ = metrics; }
  // Query/Parse/FunctionCall messages judged so far, and the text of the last
  // Query or Parse (its first kMaxShownStatement bytes), for the session list.
  static constexpr size_t kMaxShownStatement = 256;
  uint64_t judged() const { return judged_; }
  const std::string& last_statement() const { return last_statement_; }

  // The client set search_path at startup: names resolve against it too.
  void RememberSearchPath(std::string_view value);

  // A reloaded policy applies to the statements that follow; the scope is
  // matched again for `identity` (a local user's groups may have changed with
  // the file); none matching refuses everything with rule no-scope.
  void UsePolicy(std::shared_ptr<const policy::Policy> policy, policy::Identity identity);
  const std::shared_ptr<const policy::Policy>& policy() const { return policy_; }
  const policy::Scope* scope() const { return scope_; }

  // Where the target's catalog comes from (null: nowhere, and a scope with
  // masks refuses statements on relations), and the target's index there.
  // A statement that changes the schema asks for a fresh read.
  void UseCatalog(std::shared_ptr<CatalogReader> catalogs, size_t target) {
    catalogs_ = std::move(catalogs);
    catalog_target_ = target;
  }

 private:
  // After a reload made a session's scope read-only in the database (which
  // its database session was not started as), every statement is refused
  // until the client reconnects; true when `type` was refused so.
  bool RefuseUntilReconnect(char type, std::string_view statement_name, std::string_view statement,
                            std::string& to_database);
  // An Execute of `portal` whose statement was judged under an older policy
  // (issue 24, item 4): judges it again; false when it was refused.
  bool RejudgeStale(std::string_view portal, std::string& to_database);
  policy::QueryJudgement Judge(const policy::SqlAnalysis& analysis);
  // Judges the text of a Query or Parse; false when it was refused.
  bool Admit(char type, std::string_view statement_name, std::string_view sql,
             std::string& to_database);
  void NoteSchemaChanges(const policy::SqlAnalysis& analysis);
  // Refuses a message: `statement` is what the audit record names.
  void Refuse(char type, std::string_view statement_name, std::string_view statement,
              uint64_t fingerprint, const policy::Decision& decision, std::string& to_database,
              std::string_view statement_class);
  // `kind` and `statement_class` are what the metrics count.
  void RefuseUnjudged(char type, std::string_view statement_name, std::string_view statement,
                      uint64_t fingerprint, proto::ErrorFields error, std::string rule,
                      std::string& to_database, uint8_t kind = policy::Decision::kDeny,
                      std::string_view statement_class = "none");
  void Count(uint8_t kind, std::string_view statement_class, std::string_view rule) {
    if (metrics_ != nullptr) metrics_->statements.Count(kind, statement_class, rule);
  }
  // A Bind's parameters as the audit trail records them (nullptr: not recorded).
  std::shared_ptr<const BoundParameters> ParametersOf(const proto::BindPrefix& bind) const;
  // The note of the request the database's current message answers (null: none).
  RequestNote* Answered() {
    SessionPipeline::Request* r = pipeline_.answering();
    return r ? &r->note : nullptr;
  }
  void ReportExecution(const StatementLedger::Execution& e, const StatementLedger::Outcome& o) {
    if (e.id == 0) return;  // never recorded (held, then refused): nothing to complete
    audit_.Completion(e, o);
  }

  // Holds `sql` for approval when the approvals store runs and the only
  // statement not allowed is the last one, needing approval; false: refuse.
  bool Hold(char type, std::string_view statement_name, std::string_view sql,
            const policy::SqlAnalysis& analysis, const policy::QueryJudgement& judgement);

  std::shared_ptr<const policy::Policy> policy_;
  const policy::Scope* scope_;  // inside *policy_; nullptr: no scope matches any more
  policy::Identity identity_;
  const std::string target_;
  policy::AnalysisCache& cache_;
  policy::SessionPolicyState state_;
  proto::FrameTracker::Gather client_gather_;
  SessionAudit& audit_;
  SessionPipeline& pipeline_;
  StatementLedger ledger_;
  // Requests in the pipeline that stand in for a refusal: while there are
  // any, the database's errors are gathered whole.
  size_t refusals_outstanding_ = 0;
  ShardMetrics* metrics_ = nullptr;
  uint64_t judged_ = 0;
  std::string last_statement_;
  approvals::SessionHolds* holds_;                // null: approvals refuse
  std::optional<approvals::HeldStatement> held_;  // the message just judged, until taken
  // The texts of held Parses (as the ledger keeps them; kept alive here, so
  // that no other text takes their address) and their holds.
  std::vector<std::pair<std::shared_ptr<const std::string>, uint64_t>> held_texts_;
  uint64_t holds_made_ = 0;
  // Protocol-level prepared statements and the policy generation (one per
  // UsePolicy) each was judged under.
  PreparedJudgements prepared_;
  uint64_t policy_generation_ = 0;
  // The database session was started read-only (policy::ReadOnlyInDatabase).
  bool started_read_only_ = false;
  bool must_reconnect_ = false;
  std::shared_ptr<CatalogReader> catalogs_;
  size_t catalog_target_ = 0;
  bool schema_changed_ = false;  // DDL since the last catalog refresh request at a COMMIT
};

// The settings a session of `scope` starts with on the database, as startup
// parameters: its search_path (so that the rules resolve names as the
// database will) and its limits (statement_timeout, ...). Values are in the
// form PostgreSQL reads from a startup packet.
std::vector<std::pair<std::string, std::string>> BackendSettings(const policy::Scope& scope);

}  // namespace pgb
