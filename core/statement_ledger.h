// StatementLedger follows each statement a session runs from the client's
// message to the database's answer, so the audit trail gets, per execution,
// a record before the database sees it and a completion with its outcome:
// the command tag (and rows), the error, or, when the session ends before
// the answer comes, that nobody knows (SessionAudit writes both).
//
// Which answer is whose is the request pipeline's business
// (proto/request_pipeline.h): the ledger writes an Execution into the note
// of the request that runs a statement (each allowed statement of a Query,
// each Execute of a known prepared statement, an allowed FunctionCall), and
// is told when an answer completes a request (CommandComplete,
// EmptyQueryResponse, PortalSuspended, ErrorResponse) and when the pipeline
// closes a request; one closed unanswered was skipped (an earlier statement
// of its batch failed) and is reported as not run. The ledger itself keeps
// only the names: prepared statements and portals, from Parse, Bind and Close.
//
// The ledger creates an execution where the request is known (Query,
// Executing, FunctionCall return it, for the write-ahead record); at the
// session's end, Abandon reports what is still unanswered.
//
// It also counts bytes: each execution gets the client messages since the
// previous one (a Query's whole size goes to its first statement) and the
// database messages since the previous completion (its rows and its command
// tag); what follows a batch's last completion (ReadyForQuery) is nobody's.
//
//   audit.Statement(ledger.Query(statement_note, text, 0, 8, fingerprint, "profile.admin", now));
//   ledger.Parsed("s1", text, fingerprint, "profile.admin");  ledger.Bound("", "s1");
//   if (auto* e = ledger.Executing(execute_note, "", now_us)) audit.Statement(*e);
//   backend: ledger.OnCompletion(pipeline.answering() note, outcome, report);
//            on_closed: ledger.OnClosed(note, report)
//   session end: ledger.Abandon(note, "client closed the connection", report) per request
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "proto/request_pipeline.h"
#include "proto/statement_refusals.h"

namespace pgb {

// kStartup: a setting the client sent at startup, judged and recorded as
// its equivalent SET (core/startup_parameters.h).
enum class StatementProtocol : uint8_t { kSimple, kExtended, kFunctionCall, kStartup };

// The parameters a Bind gave its portal, as the audit trail records them
// (only with `parameters = "on"` or `"redacted"`).
struct BoundParameters {
  struct Value {
    int32_t length = -1;  // -1: SQL NULL
    std::string text;     // "on": the value (binary ones as \x and hex), cut to a record's cap
  };
  std::vector<Value> values;
  bool cut = false;  // the Bind held more than the gateway looked at
};

struct RequestNote;

class StatementLedger {
 public:
  // One execution of a statement.
  struct Execution {
    std::shared_ptr<const std::string> text = nullptr;  // the whole Query or Parse text (shared)
    uint32_t location = 0;                              // this statement within it
    uint32_t length = 0;                                // 0: to the end
    StatementProtocol protocol = StatementProtocol::kSimple;
    std::string rule = {};  // the rule that allowed it
    int64_t start_us = 0;
    uint64_t fingerprint = 0;  // the analyser's (0: none)
    uint64_t bytes_in = 0;     // client messages since the previous execution, this one's included
    std::shared_ptr<const BoundParameters> parameters = nullptr;  // extended, when recorded
    uint64_t id = 0;  // the audit's statement_id (set by SessionAudit::Statement)
    // A statement held for approval: recorded once approved (decision
    // "approved"), with the request id and who approved it.
    std::string approval_id = {};
    std::string approval_note = {};

    std::string_view statement() const;
  };
  struct Outcome {
    bool ran = true;               // false: skipped, an earlier statement of its batch failed
    bool answered = true;          // false: the session ended first; `message` says why
    std::string_view command_tag;  // CommandComplete's tag ("SELECT 1"); empty otherwise
    std::string_view sqlstate;     // on error
    std::string_view message;      // on error
    bool suspended = false;        // PortalSuspended: the portal has more rows
    uint64_t bytes_out = 0;        // the database's answer: since the previous one, this included
    uint32_t masked_values = 0;    // values of its rows the gateway masked
  };
  using Report = absl::FunctionRef<void(const Execution&, const Outcome&)>;

  // --- client -> database, in stream order --------------------------------
  // Every client message's size, as its header arrives.
  void OnClientBytes(uint32_t size) { client_bytes_ += size; }
  // The client bytes not yet attributed to an execution (a refusal takes them).
  uint64_t TakeClientBytes() { return std::exchange(client_bytes_, 0); }
  // An allowed statement of a Query, on the request of that statement.
  Execution& Query(RequestNote& statement, std::shared_ptr<const std::string> text,
                   uint32_t location, uint32_t length, uint64_t fingerprint, std::string rule,
                   int64_t now_us);
  // An allowed FunctionCall, on its request: answered by FunctionCallResponse
  // (or an error), it is reported when its ReadyForQuery closes it.
  Execution& FunctionCall(RequestNote& call, std::string rule, int64_t now_us);
  // An allowed or refused Parse under `name`. Refused statements are not
  // expected to run: their Executes are not recorded (the refusal is).
  void Parsed(std::string_view name, std::shared_ptr<const std::string> text, uint64_t fingerprint,
              std::string rule);
  void Refused(std::string_view name);
  void Bound(std::string_view portal, std::string_view statement,
             std::shared_ptr<const BoundParameters> parameters = nullptr);
  // An Execute of `portal`, on its request; null when nothing will run (an
  // unknown portal or statement, or a refused one, already recorded).
  Execution* Executing(RequestNote& execute, std::string_view portal, int64_t now_us);
  // Close of a statement ('S') or portal ('P').
  void Closed(char kind, std::string_view name);

  // --- database -> client ---------------------------------------------------
  // Every database message's size, as its header arrives (after the
  // pipeline has closed what the previous message answered).
  void OnBackendBytes(uint32_t size) { backend_bytes_ += size; }
  // Values masked in the rows since the previous completion.
  void OnMaskedValues(uint32_t count) { masked_values_ += count; }
  // An answer that completes the request `answered` (null: it answers
  // none), or the batch end's error: reports its execution, if it has one.
  void OnCompletion(RequestNote* answered, Outcome outcome, Report report);
  // The pipeline closed a request: an execution still on it was never
  // answered (skipped), except a FunctionCall's, which ran.
  void OnClosed(RequestNote& closed, Report report);
  // The session ends with `request` unanswered: its execution, if any, is
  // reported as answered = false with `reason`.
  void Abandon(RequestNote& request, std::string_view reason, Report report);
  // A ReadyForQuery: its bytes and what no statement answered are nobody's.
  void OnReadyForQuery() {
    backend_bytes_ = 0;
    masked_values_ = 0;
  }

 private:
  struct Prepared {
    std::shared_ptr<const std::string> text;  // null: refused
    uint64_t fingerprint = 0;
    std::string rule;
  };
  struct Portal {
    std::string statement;
    std::shared_ptr<const BoundParameters> parameters;
  };
  Execution& Expect(RequestNote& note, Execution execution);

  uint64_t client_bytes_ = 0;
  uint64_t backend_bytes_ = 0;
  uint32_t masked_values_ = 0;
  absl::flat_hash_map<std::string, Prepared> statements_;
  absl::flat_hash_map<std::string, Portal> portals_;
};

// What a request in a session's pipeline carries for the stages that need
// its answer.
struct RequestNote {
  // The ledger's record of the statement it runs (with an audit trail).
  std::optional<StatementLedger::Execution> execution;
  // The gate refused what this request stands in for: the refusal the
  // client sees in place of the database's answer.
  std::unique_ptr<proto::Refusal> refusal;
  // Non-zero: the request belongs to a statement held for approval (its
  // number in the session, core/approvals/session_holds.h).
  uint64_t hold = 0;
};
using SessionPipeline = proto::RequestPipeline<RequestNote>;

}  // namespace pgb
