#include "core/statement_ledger.h"

#include <utility>

namespace pgb {

std::string_view StatementText(std::string_view text, uint32_t location, uint32_t length) {
  if (location >= text.size()) return {};
  std::string_view s = length == 0 ? text.substr(location) : text.substr(location, length);
  // A statement after the first of a Query starts where the previous one's
  // semicolon ended: drop the white space in between.
  while (!s.empty() &&
         (s.front() == ' ' || s.front() == '\n' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  return s;
}

std::string_view StatementLedger::Execution::statement() const {
  return text ? StatementText(*text, location, length) : std::string_view();
}

void StatementLedger::Expect(Execution execution) {
  execution.bytes_in = TakeClientBytes();
  if (head_ == pending_.size()) {
    pending_.clear();
    head_ = 0;
  }
  pending_.push_back(std::move(execution));
}

void StatementLedger::Query(std::shared_ptr<const std::string> text, uint32_t location,
                            uint32_t length, uint64_t fingerprint, std::string rule,
                            int64_t now_us) {
  Expect(Execution{.text = std::move(text),
                   .location = location,
                   .length = length,
                   .protocol = StatementProtocol::kSimple,
                   .rule = std::move(rule),
                   .start_us = now_us,
                   .batch = batches_sent_,
                   .fingerprint = fingerprint});
}

void StatementLedger::FunctionCall(std::string rule, int64_t now_us) {
  Expect(Execution{.protocol = StatementProtocol::kFunctionCall,
                   .rule = std::move(rule),
                   .start_us = now_us,
                   .batch = batches_sent_});
}

void StatementLedger::Parsed(std::string_view name, std::shared_ptr<const std::string> text,
                             uint64_t fingerprint, std::string rule) {
  statements_[std::string(name)] = Prepared{std::move(text), fingerprint, std::move(rule)};
}

void StatementLedger::Refused(std::string_view name) {
  statements_[std::string(name)] = Prepared{};
}

void StatementLedger::Bound(std::string_view portal, std::string_view statement,
                            std::shared_ptr<const BoundParameters> parameters) {
  portals_[std::string(portal)] = Portal{std::string(statement), std::move(parameters)};
}

void StatementLedger::Executing(std::string_view portal, int64_t now_us) {
  // (Debian's Abseil hashes only absl::string_view: look up by std::string.)
  const auto p = portals_.find(std::string(portal));
  if (p == portals_.end()) return;  // the database will say the portal does not exist
  const auto s = statements_.find(p->second.statement);
  if (s == statements_.end() || !s->second.text) return;  // unknown, or refused (recorded)
  // The batch ends at the next Sync.
  Expect(Execution{.text = s->second.text,
                   .protocol = StatementProtocol::kExtended,
                   .rule = s->second.rule,
                   .start_us = now_us,
                   .batch = batches_sent_ + 1,
                   .fingerprint = s->second.fingerprint,
                   .parameters = p->second.parameters});
}

void StatementLedger::Closed(char kind, std::string_view name) {
  if (kind == 'S') {
    statements_.erase(std::string(name));
  } else {
    portals_.erase(std::string(name));
  }
}

void StatementLedger::CompleteFront(Outcome outcome, Report report) {
  outcome.bytes_out = std::exchange(backend_bytes_, 0);
  outcome.masked_values = std::exchange(masked_values_, 0);
  if (head_ == pending_.size()) return;  // nothing we recorded (e.g. a refused statement)
  Execution execution = std::move(pending_[head_++]);
  report(execution, outcome);
}

void StatementLedger::OnCommandComplete(std::string_view tag, Report report) {
  Outcome outcome;
  outcome.command_tag = tag;
  CompleteFront(outcome, report);
}

void StatementLedger::OnEmptyQuery(Report report) { CompleteFront(Outcome(), report); }

void StatementLedger::OnPortalSuspended(Report report) {
  Outcome outcome;
  outcome.suspended = true;
  CompleteFront(outcome, report);
}

void StatementLedger::OnError(std::string_view sqlstate, std::string_view message, Report report) {
  Outcome outcome;
  outcome.sqlstate = sqlstate;
  outcome.message = message;
  CompleteFront(outcome, report);
}

void StatementLedger::OnReadyForQuery(Report report) {
  ++batches_done_;
  backend_bytes_ = 0;  // the ReadyForQuery itself, and what no statement answered
  masked_values_ = 0;
  // What is still pending from the batches this ReadyForQuery closes did not
  // run, except a FunctionCall, whose answer is not a completion message.
  while (head_ < pending_.size() && pending_[head_].batch <= batches_done_) {
    Outcome outcome;
    outcome.ran = pending_[head_].protocol == StatementProtocol::kFunctionCall;
    CompleteFront(outcome, report);
  }
}

}  // namespace pgb
