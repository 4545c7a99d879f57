// StatementGate is the policy at one session's message boundary: every Query,
// Parse and FunctionCall the client sends is gathered whole, analysed with
// PostgreSQL's parser (through the shard's AnalysisCache), and decided by the
// session's scope before a byte of it reaches the database. Allowed messages
// go on unchanged; a refused one is replaced through StatementRefusals, so the
// database aborts exactly what PostgreSQL would abort and the client sees the
// refusal (SQLSTATE 42501, the rule, a hint) in the error's place.
//
// A Query is judged whole: if any of its statements is refused, none of them
// runs (as with a syntax error anywhere in it).
//
// With an audit trail, the gate also follows every execution to its answer
// (StatementLedger: Bind, Execute and Close names and the database's command
// tags and errors are peeked at, never copied out of the relay) and writes
// one record per execution and per refusal through SessionAudit; while the
// trail cannot take records, statements are refused with 53400.
//
//   StatementGate gate(policy, *scope, identity, "app", "app_owner", shard_cache, 16 << 20);
//   tracker.Feed(..., gate.client_gather(), on_header -> gate.OnClientMessage(type, size), ...,
//                on_whole -> gate.OnWholeClientMessage(type, message, oversize, to_database));
//   backend: gate.backend_gather(), gate.OnBackendError(...), gate.OnReadyForQuery()
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/session_audit.h"
#include "core/statement_ledger.h"
#include "policy/identity.h"
#include "policy/rules.h"
#include "policy/sql_analysis.h"
#include "proto/frame_tracker.h"
#include "proto/messages.h"
#include "proto/protocol.h"
#include "proto/statement_refusals.h"

namespace pgb {

class StatementGate {
 public:
  StatementGate(std::shared_ptr<const policy::Policy> policy, const policy::Scope& scope,
                policy::Identity identity, std::string target, std::string role,
                policy::AnalysisCache& cache, uint32_t max_statement_size, SessionAudit& audit);

  const proto::FrameTracker::Gather& client_gather() const { return client_gather_; }
  const proto::FrameTracker::Gather& backend_gather() const;

  // Client -> database: every message header, each peeked message's prefix,
  // then each gathered message whole.
  // `size`: the whole message's bytes.
  void OnClientMessage(char type, uint32_t size);
  void OnClientPeek(char type, std::string_view prefix);
  // True: the message goes on as it is (the caller forwards `message`, from
  // its receive buffer when it lies there). False: it was refused, and what
  // replaces it was appended to `to_database`.
  [[nodiscard]] bool OnWholeClientMessage(char type, std::string_view message, bool oversize,
                                          std::string& to_database);
  // Database -> client: every message header, peeked prefixes (command tags,
  // errors), and whole ErrorResponses while a refusal is pending (appends
  // what goes to the client).
  void OnBackendMessage(char type, uint32_t size);
  void OnBackendPeek(char type, std::string_view prefix);
  void OnBackendError(std::string_view message, std::string& to_client);
  // Values masked in the rows relayed since the last call (for the audit).
  void OnMaskedValues(uint32_t count) {
    if (audit_.enabled()) ledger_.OnMaskedValues(count);
  }

  // The client set search_path at startup: names resolve against it too.
  void RememberSearchPath(std::string_view value);

  // A reloaded policy applies to the statements that follow; the scope is
  // matched again for `identity` (a local user's groups may have changed with
  // the file); none matching refuses everything with rule no-scope.
  void UsePolicy(std::shared_ptr<const policy::Policy> policy, policy::Identity identity);
  const std::shared_ptr<const policy::Policy>& policy() const { return policy_; }
  const policy::Scope* scope() const { return scope_; }

 private:
  // Judges the text of a Query or Parse; false when it was refused.
  bool Admit(char type, std::string_view statement_name, std::string_view sql,
             std::string& to_database);
  // Refuses a message: `statement` is what the audit record names.
  void Refuse(char type, std::string_view statement_name, std::string_view statement,
              uint64_t fingerprint, const policy::Decision& decision, std::string& to_database);
  void RefuseUnjudged(char type, std::string_view statement_name, std::string_view statement,
                      uint64_t fingerprint, proto::ErrorFields error, std::string rule,
                      std::string& to_database);
  // A Bind's parameters as the audit trail records them (nullptr: not recorded).
  std::shared_ptr<const BoundParameters> ParametersOf(const proto::BindPrefix& bind) const;
  void ReportExecution(const StatementLedger::Execution& e, const StatementLedger::Outcome& o) {
    audit_.Execution(e, o);
  }

  std::shared_ptr<const policy::Policy> policy_;
  const policy::Scope* scope_;  // inside *policy_; nullptr: no scope matches any more
  policy::Identity identity_;
  const std::string target_;
  policy::AnalysisCache& cache_;
  policy::SessionPolicyState state_;
  proto::FrameTracker::Gather client_gather_;
  proto::StatementRefusals refusals_;
  SessionAudit& audit_;
  StatementLedger ledger_;
};

// The settings a session of `scope` starts with on the database, as startup
// parameters: its search_path (so that the rules resolve names as the
// database will) and its limits (statement_timeout, ...). Values are in the
// form PostgreSQL reads from a startup packet.
std::vector<std::pair<std::string, std::string>> BackendSettings(const policy::Scope& scope);

}  // namespace pgb
