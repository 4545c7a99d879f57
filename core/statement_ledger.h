// StatementLedger follows each statement a session runs from the client's
// message to the database's answer, so the audit trail gets one record per
// execution with its outcome: the command tag (and rows), or the error.
//
// It sees the client's messages in stream order (the texts the gate allowed,
// and the names in Bind, Execute and Close) and the database's answers
// (CommandComplete, EmptyQueryResponse, PortalSuspended, ErrorResponse,
// ReadyForQuery). PostgreSQL answers in order, so completions are matched
// first in, first out; statements left unanswered when their batch's
// ReadyForQuery arrives were skipped (an earlier statement of the batch
// failed) and are reported as not run.
//
// It also counts bytes: each execution gets the client messages since the
// previous one (a Query's whole size goes to its first statement) and the
// database messages since the previous completion (its rows and its command
// tag); what follows a batch's last completion (ReadyForQuery) is nobody's.
//
//   ledger.Query(text, 0, 8, fingerprint, "profile.admin", now_us);   // allowed Query
//   ledger.Parsed("s1", text, fingerprint, "profile.admin");  ledger.Bound("", "s1");
//   ledger.Executing("", now_us);  ledger.OnBatchEnd();          // Sync
//   backend: ledger.OnCommandComplete("SELECT 1", report); ... ledger.OnReadyForQuery(report);
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"

namespace pgb {

enum class StatementProtocol : uint8_t { kSimple, kExtended, kFunctionCall };

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

// One statement of a Query text, from the analyser's byte range (length 0:
// to the end), without the white space before it.
std::string_view StatementText(std::string_view text, uint32_t location, uint32_t length);

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
    uint64_t batch = 0;
    uint64_t fingerprint = 0;  // the analyser's (0: none)
    uint64_t bytes_in = 0;     // client messages since the previous execution, this one's included
    std::shared_ptr<const BoundParameters> parameters = nullptr;  // extended, when recorded

    std::string_view statement() const;
  };
  struct Outcome {
    bool ran = true;               // false: skipped, an earlier statement of its batch failed
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
  // A batch-ending message (Query, Sync, FunctionCall) went on.
  void OnBatchEnd() { ++batches_sent_; }
  // An allowed statement of a Query (call OnBatchEnd for the Query first).
  void Query(std::shared_ptr<const std::string> text, uint32_t location, uint32_t length,
             uint64_t fingerprint, std::string rule, int64_t now_us);
  // An allowed FunctionCall (after its OnBatchEnd): answered by
  // FunctionCallResponse, which reports it at the ReadyForQuery.
  void FunctionCall(std::string rule, int64_t now_us);
  // An allowed or refused Parse under `name`. Refused statements are not
  // expected to run: their Executes are not recorded (the refusal is).
  void Parsed(std::string_view name, std::shared_ptr<const std::string> text, uint64_t fingerprint,
              std::string rule);
  void Refused(std::string_view name);
  void Bound(std::string_view portal, std::string_view statement,
             std::shared_ptr<const BoundParameters> parameters = nullptr);
  void Executing(std::string_view portal, int64_t now_us);
  // Close of a statement ('S') or portal ('P').
  void Closed(char kind, std::string_view name);

  // --- database -> client ---------------------------------------------------
  // Every database message's size, as its header arrives (before the
  // completion it may be).
  void OnBackendBytes(uint32_t size) { backend_bytes_ += size; }
  // Values masked in the rows since the previous completion.
  void OnMaskedValues(uint32_t count) { masked_values_ += count; }
  void OnCommandComplete(std::string_view tag, Report report);
  void OnEmptyQuery(Report report);
  void OnPortalSuspended(Report report);
  void OnError(std::string_view sqlstate, std::string_view message, Report report);
  void OnReadyForQuery(Report report);

  size_t pending() const { return pending_.size() - head_; }

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
  void Expect(Execution execution);
  void CompleteFront(Outcome outcome, Report report);

  uint64_t batches_sent_ = 0;
  uint64_t batches_done_ = 0;
  uint64_t client_bytes_ = 0;
  uint64_t backend_bytes_ = 0;
  uint32_t masked_values_ = 0;
  // Executions awaiting their answer: [head_, size()). A vector rather than a
  // deque, which would allocate for every idle session.
  std::vector<Execution> pending_;
  size_t head_ = 0;
  absl::flat_hash_map<std::string, Prepared> statements_;
  absl::flat_hash_map<std::string, Portal> portals_;
};

}  // namespace pgb
