#include "core/statement_ledger.h"

#include <utility>

#include "policy/sql_text.h"

namespace pgb {

std::string_view StatementLedger::Execution::statement() const {
  return text ? policy::StatementText(*text, location, length) : std::string_view();
}

StatementLedger::Execution& StatementLedger::Expect(RequestNote& note, Execution execution) {
  execution.bytes_in = TakeClientBytes();
  return note.execution.emplace(std::move(execution));
}

StatementLedger::Execution& StatementLedger::Query(RequestNote& statement,
                                                   std::shared_ptr<const std::string> text,
                                                   uint32_t location, uint32_t length,
                                                   uint64_t fingerprint, std::string rule,
                                                   int64_t now_us) {
  return Expect(statement, Execution{.text = std::move(text),
                                     .location = location,
                                     .length = length,
                                     .protocol = StatementProtocol::kSimple,
                                     .rule = std::move(rule),
                                     .start_us = now_us,
                                     .fingerprint = fingerprint});
}

StatementLedger::Execution& StatementLedger::FunctionCall(RequestNote& call, std::string rule,
                                                          int64_t now_us) {
  return Expect(call, Execution{.protocol = StatementProtocol::kFunctionCall,
                                .rule = std::move(rule),
                                .start_us = now_us});
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

StatementLedger::Execution* StatementLedger::Executing(RequestNote& execute,
                                                       std::string_view portal, int64_t now_us) {
  // (Debian's Abseil hashes only absl::string_view: look up by std::string.)
  const auto p = portals_.find(std::string(portal));
  if (p == portals_.end()) return nullptr;  // the database will say the portal does not exist
  const auto s = statements_.find(p->second.statement);
  if (s == statements_.end() || !s->second.text) return nullptr;  // unknown, or refused (recorded)
  return &Expect(execute, Execution{.text = s->second.text,
                                    .protocol = StatementProtocol::kExtended,
                                    .rule = s->second.rule,
                                    .start_us = now_us,
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

void StatementLedger::OnCompletion(RequestNote* answered, Outcome outcome, Report report) {
  outcome.bytes_out = std::exchange(backend_bytes_, 0);
  outcome.masked_values = std::exchange(masked_values_, 0);
  if (answered == nullptr || !answered->execution) return;  // nothing recorded (a refusal, ...)
  const Execution execution = *std::move(answered->execution);
  answered->execution.reset();
  report(execution, outcome);
}

void StatementLedger::OnClosed(RequestNote& closed, Report report) {
  if (!closed.execution) return;
  Outcome outcome;
  outcome.ran = closed.execution->protocol == StatementProtocol::kFunctionCall;
  if (outcome.ran) {  // its result's bytes
    outcome.bytes_out = std::exchange(backend_bytes_, 0);
    outcome.masked_values = std::exchange(masked_values_, 0);
  }
  const Execution execution = *std::move(closed.execution);
  closed.execution.reset();
  report(execution, outcome);
}

void StatementLedger::Abandon(RequestNote& request, std::string_view reason, Report report) {
  if (!request.execution) return;
  Outcome outcome;
  outcome.answered = false;
  outcome.message = reason;
  outcome.bytes_out = std::exchange(backend_bytes_, 0);
  outcome.masked_values = std::exchange(masked_values_, 0);
  const Execution execution = *std::move(request.execution);
  request.execution.reset();
  report(execution, outcome);
}

}  // namespace pgb
