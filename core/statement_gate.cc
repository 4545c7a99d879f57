#include "core/statement_gate.h"

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "base/str_cat.h"
#include "policy/judgement.h"
#include "policy/sql_text.h"
#include "proto/messages.h"
#include "proto/protocol.h"

namespace pgb {
namespace {

proto::FrameTracker::Gather GatherOf(std::string_view types, uint32_t max_size) {
  proto::FrameTracker::Gather g;
  for (char c : types) g.types.set(static_cast<unsigned char>(c));
  g.max_size = max_size;
  return g;
}

// What the relay gathers and peeks at. Client side: Query, Parse and
// FunctionCall whole (judged); with an audit trail, Execute whole (a few
// bytes: its record goes into the trail before it is forwarded, or it is
// refused) and the names at the start of Bind and Close. Database side, with an audit trail:
// command tags and errors; ErrorResponses whole while a refusal's answer is awaited (they are
// small; one longer than 64 KiB is not a refusal's answer).
constexpr uint32_t kNamesPrefix = 2 * 64 + 2;  // two NAMEDATALEN names and their NULs
// With `parameters = "on"` or `"redacted"`, Bind is peeked further: a record
// keeps at most 512 bytes of parameters, so 4 KiB covers the values it can
// hold and the lengths of many more (a Bind longer than that is marked cut).
constexpr uint32_t kParametersPrefix = 4096;
// A binary parameter recorded with "on": \x and the hex of its first bytes.
constexpr size_t kBinaryParameterBytes = 64;
constexpr uint32_t kErrorPrefix = 1024;  // enough for the SQLSTATE and a message

proto::FrameTracker::Gather BackendGatherOf(bool audit, bool refusals) {
  proto::FrameTracker::Gather g = refusals ? GatherOf({&proto::kPqMsg_ErrorResponse, 1}, 64 * 1024)
                                           : proto::FrameTracker::Gather{};
  if (audit) {
    g.peek.set(static_cast<unsigned char>(proto::kPqMsg_CommandComplete));
    g.peek.set(static_cast<unsigned char>(proto::kPqMsg_ErrorResponse));
    g.peek_size = kErrorPrefix;
  }
  return g;
}

const proto::FrameTracker::Gather kBackendRefusals = BackendGatherOf(false, true);
const proto::FrameTracker::Gather kBackendAudit = BackendGatherOf(true, false);
const proto::FrameTracker::Gather kBackendAuditRefusals = BackendGatherOf(true, true);

// The first C string of `bytes` (all of it when it is cut short).
std::string_view FirstString(std::string_view bytes) { return bytes.substr(0, bytes.find('\0')); }

// SQLSTATE and message of an ErrorResponse body, possibly cut short.
void ErrorFieldsOf(std::string_view body, std::string_view* sqlstate, std::string_view* message) {
  while (!body.empty() && body[0] != '\0') {
    const char code = body[0];
    const std::string_view value = FirstString(body.substr(1));
    if (code == 'C') *sqlstate = value;
    if (code == 'M') *message = value;
    body.remove_prefix(std::min(body.size(), value.size() + 2));
  }
}

}  // namespace

StatementGate::StatementGate(std::shared_ptr<const policy::Policy> policy,
                             const policy::Scope& scope, policy::Identity identity,
                             std::string target, std::string role, policy::AnalysisCache& cache,
                             uint32_t max_statement_size, SessionAudit& audit,
                             SessionPipeline& pipeline)
    : policy_(std::move(policy)),
      scope_(&scope),
      identity_(std::move(identity)),
      target_(std::move(target)),
      cache_(cache),
      state_(scope, std::move(role)),
      client_gather_(GatherOf({"QPF", 3}, max_statement_size)),
      audit_(audit),
      pipeline_(pipeline) {
  if (audit_.enabled()) {
    client_gather_.types.set(static_cast<unsigned char>(proto::kPqMsg_Execute));
    for (char c : {proto::kPqMsg_Bind, proto::kPqMsg_Close}) {
      client_gather_.peek.set(static_cast<unsigned char>(c));
    }
    client_gather_.peek_size =
        audit_.parameters() == audit::ParameterMode::kOff ? kNamesPrefix : kParametersPrefix;
  }
}

const proto::FrameTracker::Gather& StatementGate::backend_gather() const {
  const bool refusals = refusals_outstanding_ > 0;
  if (audit_.enabled()) return refusals ? kBackendAuditRefusals : kBackendAudit;
  return refusals ? kBackendRefusals : proto::FrameTracker::kNoGather;
}

void StatementGate::OnClientPeek(char type, std::string_view prefix) {
  switch (type) {
    case proto::kPqMsg_Bind: {
      if (audit_.parameters() != audit::ParameterMode::kOff) {
        const proto::BindPrefix bind = proto::ReadBindPrefix(prefix);
        ledger_.Bound(bind.portal, bind.statement, ParametersOf(bind));
        break;
      }
      const std::string_view portal = FirstString(prefix);
      const std::string_view rest = prefix.substr(std::min(prefix.size(), portal.size() + 1));
      ledger_.Bound(portal, FirstString(rest));
      break;
    }
    case proto::kPqMsg_Close:
      if (!prefix.empty()) ledger_.Closed(prefix[0], FirstString(prefix.substr(1)));
      break;
    default:
      break;
  }
}

std::shared_ptr<const BoundParameters> StatementGate::ParametersOf(
    const proto::BindPrefix& bind) const {
  auto parameters = std::make_shared<BoundParameters>();
  const bool values = audit_.parameters() == audit::ParameterMode::kOn;
  // Lengths only: a value cut short loses nothing of what is recorded.
  parameters->cut = values ? !bind.complete
                           : bind.parameters.size() < static_cast<size_t>(bind.count) ||
                                 (bind.count == 0 && !bind.complete);
  parameters->values.reserve(bind.parameters.size());
  for (const proto::BindParameter& p : bind.parameters) {
    BoundParameters::Value& v = parameters->values.emplace_back();
    v.length = p.length;
    if (!values || p.length < 0) continue;
    if (p.binary) {
      const std::string_view shown = p.value.substr(0, kBinaryParameterBytes);
      if (p.length > static_cast<int32_t>(shown.size())) parameters->cut = true;
      v.text = Cat("\\x", absl::BytesToHexString(absl::string_view(shown.data(), shown.size())));
    } else {
      // One byte over the record's cap, so that the record marks it cut.
      v.text.assign(p.value.substr(0, audit::AuditRecord::kShortFieldMax + 1));
    }
  }
  return parameters;
}

void StatementGate::OnBackendMessage(char type, uint32_t size) {
  if (!audit_.enabled()) return;
  ledger_.OnBackendBytes(size);
  const auto report = [this](const StatementLedger::Execution& e,
                             const StatementLedger::Outcome& o) { ReportExecution(e, o); };
  StatementLedger::Outcome outcome;
  switch (type) {
    case proto::kPqMsg_ReadyForQuery:
      ledger_.OnReadyForQuery();
      break;
    case proto::kPqMsg_EmptyQueryResponse:
      ledger_.OnCompletion(Answered(), outcome, report);
      break;
    case proto::kPqMsg_PortalSuspended:
      outcome.suspended = true;
      ledger_.OnCompletion(Answered(), outcome, report);
      break;
    default:
      break;
  }
}

void StatementGate::OnBackendPeek(char type, std::string_view prefix) {
  if (!audit_.enabled()) return;
  const auto report = [this](const StatementLedger::Execution& e,
                             const StatementLedger::Outcome& o) { ReportExecution(e, o); };
  StatementLedger::Outcome outcome;
  if (type == proto::kPqMsg_CommandComplete) {
    outcome.command_tag = FirstString(prefix);
    ledger_.OnCompletion(Answered(), outcome, report);
  } else if (type == proto::kPqMsg_ErrorResponse) {
    ErrorFieldsOf(prefix, &outcome.sqlstate, &outcome.message);
    ledger_.OnCompletion(Answered(), outcome, report);
  }
}

void StatementGate::OnBackendError(std::string_view message, std::string& to_client) {
  RequestNote* answered = Answered();
  if (answered != nullptr && answered->refusal) {
    // The refusal was recorded when it was made.
    proto::AnswerRefusal(*answered->refusal, message, to_client);
    return;
  }
  to_client.append(message);
}

void StatementGate::OnClosed(SessionPipeline::Request& request) {
  if (request.note.refusal) --refusals_outstanding_;
  if (audit_.enabled()) {
    ledger_.OnClosed(request.note,
                     [this](const StatementLedger::Execution& e,
                            const StatementLedger::Outcome& o) { ReportExecution(e, o); });
  }
}

void StatementGate::OnSessionEnd(std::string_view reason) {
  if (!audit_.enabled()) return;
  pipeline_.ForEachOutstanding([&](SessionPipeline::Request& request) {
    ledger_.Abandon(request.note, reason,
                    [this](const StatementLedger::Execution& e, const StatementLedger::Outcome& o) {
                      ReportExecution(e, o);
                    });
  });
}

void StatementGate::UsePolicy(std::shared_ptr<const policy::Policy> policy,
                              policy::Identity identity) {
  policy_ = std::move(policy);
  identity_ = std::move(identity);
  scope_ = policy_->MatchScope(identity_, target_);
}

bool StatementGate::OnWholeClientMessage(char type, std::string_view message, bool oversize,
                                         std::string& to_database) {
  if (oversize) {
    RefuseUnjudged(type, "", "(statement too large to judge)", 0,
                   proto::ErrorFields{"ERROR", proto::sqlstate::kInsufficientPrivilege,
                                      Cat("statement too large for the gateway to judge "
                                          "(more than ",
                                          client_gather_.max_size, " bytes)"),
                                      "",
                                      "Split the statement, or ask the operator to raise "
                                      "gateway.max_statement_size."},
                   "gateway.max_statement_size", to_database);
    return false;
  }
  if (!audit_.MayProceed()) {
    RefuseUnjudged(type, "", "(not judged: audit trail unavailable)", 0,
                   proto::ErrorFields{"ERROR", proto::sqlstate::kConfigurationLimitExceeded,
                                      "the audit trail is unavailable, so statements are refused "
                                      "until it recovers",
                                      "", "Retry later; the operator can see why in the log."},
                   "audit.unavailable", to_database);
    return false;
  }
  const std::string_view body = message.substr(proto::kHeaderLength);
  switch (type) {
    case proto::kPqMsg_Query: {
      absl::StatusOr<std::string_view> sql = proto::ParseQuery(body);
      if (!sql.ok()) {
        RefuseUnjudged(type, "", "(malformed Query message)", 0,
                       proto::ErrorFields{"ERROR", proto::sqlstate::kProtocolViolation,
                                          std::string(sql.status().message()), "", ""},
                       "protocol", to_database);
        return false;
      }
      return Admit(type, "", *sql, to_database);
    }
    case proto::kPqMsg_Parse: {
      absl::StatusOr<proto::ParseMessage> parse = proto::ParseParseMessage(body);
      if (!parse.ok()) {
        RefuseUnjudged(type, "", "(malformed Parse message)", 0,
                       proto::ErrorFields{"ERROR", proto::sqlstate::kProtocolViolation,
                                          std::string(parse.status().message()), "", ""},
                       "protocol", to_database);
        return false;
      }
      return Admit(type, parse->statement, parse->sql, to_database);
    }
    case proto::kPqMsg_FunctionCall: {
      policy::Decision d = scope_ ? policy_->DecideFunctionCall(*scope_)
                                  : policy::Policy::NoScope(identity_, target_);
      ++judged_;
      if (d.kind == policy::Decision::kAllow) {
        Count(d.kind, "function_call", d.rule);
        if (SessionPipeline::Request* call = pipeline_.last(); call && audit_.enabled()) {
          audit_.Statement(
              ledger_.FunctionCall(call->note, std::move(d.rule), audit::AuditClockMicros()));
        }
        return true;
      }
      Refuse(type, "", "(function call)", 0, d, to_database, "function_call");
      return false;
    }
    case proto::kPqMsg_Execute: {
      // Gathered for the trail (or for masking only); a malformed one goes
      // on for the database to refuse (it runs nothing).
      if (!audit_.enabled()) return true;
      absl::StatusOr<std::string_view> portal = proto::ParseExecutePortal(body);
      SessionPipeline::Request* execute = pipeline_.last();
      if (!portal.ok() || execute == nullptr) return true;
      if (StatementLedger::Execution* e =
              ledger_.Executing(execute->note, *portal, audit::AuditClockMicros())) {
        audit_.Statement(*e);
      }
      return true;
    }
    default:
      return true;  // not judged; gathered only by a wider set
  }
}

void StatementGate::RememberSearchPath(std::string_view value) {
  policy::StatementSummary set;
  set.statement_class = policy::StatementClass::kSessionSetting;
  set.command = "SET";
  set.settings.push_back(policy::SettingChange{"search_path", std::string(value)});
  state_.Remember(set);
}

// DDL changes what the catalog says once its transaction commits: a read is
// asked for at once (autocommit) and again at the next transaction command.
void StatementGate::NoteSchemaChanges(const policy::SqlAnalysis& analysis) {
  bool refresh = false;
  for (const policy::StatementSummary& s : analysis.statements) {
    if (s.statement_class == policy::StatementClass::kDdl) {
      schema_changed_ = refresh = true;
    } else if (s.statement_class == policy::StatementClass::kTransaction && schema_changed_) {
      schema_changed_ = false;
      refresh = true;
    }
  }
  if (refresh) catalogs_->RequestRefresh(catalog_target_);
}

bool StatementGate::Admit(char type, std::string_view statement_name, std::string_view sql,
                          std::string& to_database) {
  ++judged_;
  last_statement_.assign(sql.substr(0, kMaxShownStatement));
  if (scope_ == nullptr) {
    Refuse(type, statement_name, sql, 0, policy::Policy::NoScope(identity_, target_), to_database,
           "none");
    return false;
  }
  const std::shared_ptr<const policy::SqlAnalysis> analysis = cache_.Analyse(sql);
  if (!analysis->ok) {
    RefuseUnjudged(type, statement_name, sql, 0,
                   proto::ErrorFields{"ERROR", analysis->error_sqlstate, analysis->error_message,
                                      "", "", analysis->error_position},
                   "analysis", to_database);
    return false;
  }
  if (!pipeline_.HasRoomFor(analysis->statements.size())) {
    RefuseUnjudged(
        type, statement_name, sql, 0,
        proto::ErrorFields{
            "ERROR", proto::sqlstate::kProgramLimitExceeded,
            Cat("too many statements awaiting their results (", analysis->statements.size(),
                " in this one); the gateway follows at most ",
                pipeline_.outstanding() + analysis->statements.size() - 1, " at a time"),
            "", "Send fewer statements at once."},
        "gateway.max_outstanding_requests", to_database);
    return false;
  }
  if (!scope_->masks.empty()) {
    state_.UseCatalog(catalogs_ ? catalogs_->Snapshot(catalog_target_) : nullptr);
  }
  policy::QueryJudgement judgement = policy::JudgeQuery(*policy_, *scope_, *analysis, state_);
  if (catalogs_ && judgement.allowed()) NoteSchemaChanges(*analysis);
  if (!judgement.allowed()) {
    const policy::StatementSummary& statement = analysis->statements[judgement.first_refusal];
    Refuse(type, statement_name, policy::StatementText(sql, statement), statement.fingerprint,
           judgement.decisions[judgement.first_refusal], to_database,
           policy::StatementClassName(statement.statement_class));
    return false;
  }
  auto& allowed = judgement.decisions;
  // Counted once they go on: a Parse's one statement, or a Query's every one
  // once the trail has room for them.
  const auto count_allowed = [&](size_t n) {
    for (size_t i = 0; metrics_ != nullptr && i < n; ++i) {
      Count(allowed[i].kind, policy::StatementClassName(analysis->statements[i].statement_class),
            allowed[i].rule);
    }
  };
  if (type == proto::kPqMsg_Parse) {
    count_allowed(std::min<size_t>(allowed.size(), 1));
    if (audit_.enabled()) {
      ledger_.Parsed(statement_name, std::make_shared<const std::string>(sql),
                     allowed.empty() ? 0 : analysis->statements.front().fingerprint,
                     allowed.empty() ? std::string() : std::move(allowed.front().rule));
    }
    return true;
  }
  // A Query: one request per statement, answered in order before its
  // ReadyForQuery. With a trail, every statement's record (and room for its
  // completion) goes in before any of the Query is forwarded.
  if (audit_.enabled() && !audit_.HasRoomFor(2 * analysis->statements.size())) {
    RefuseUnjudged(
        type, statement_name, sql, 0,
        proto::ErrorFields{"ERROR", proto::sqlstate::kConfigurationLimitExceeded,
                           Cat("the audit trail has no room now for the records of this Query's ",
                               analysis->statements.size(), " statements, so none of them was run"),
                           "",
                           "Send fewer statements per Query or retry later; the operator can "
                           "raise audit.ring_slots."},
        "audit.unavailable", to_database);
    return false;
  }
  count_allowed(allowed.size());
  std::shared_ptr<const std::string> text;
  if (audit_.enabled()) text = std::make_shared<const std::string>(sql);
  const int64_t now = audit_.enabled() ? audit::AuditClockMicros() : 0;
  for (size_t i = 0; i < analysis->statements.size(); ++i) {
    SessionPipeline::Request& request =
        pipeline_.InsertBeforeLast(proto::RequestKind::kStatement, proto::kPqMsg_Query);
    if (!audit_.enabled()) continue;
    const policy::StatementSummary& st = analysis->statements[i];
    audit_.Statement(ledger_.Query(request.note, text, st.location, st.length, st.fingerprint,
                                   std::move(allowed[i].rule), now));
  }
  return true;
}

void StatementGate::Refuse(char type, std::string_view statement_name, std::string_view statement,
                           uint64_t fingerprint, const policy::Decision& decision,
                           std::string& to_database, std::string_view statement_class) {
  std::string detail;
  if (decision.kind == policy::Decision::kApproval) {
    detail = "This gateway cannot hold statements for approval yet, so the statement was refused.";
  }
  RefuseUnjudged(
      type, statement_name, statement, fingerprint,
      proto::ErrorFields{"ERROR", proto::sqlstate::kInsufficientPrivilege,
                         policy::DecisionMessage(decision), std::move(detail), decision.hint},
      decision.rule, to_database, decision.kind, statement_class);
}

void StatementGate::RefuseUnjudged(char type, std::string_view statement_name,
                                   std::string_view statement, uint64_t fingerprint,
                                   proto::ErrorFields error, std::string rule,
                                   std::string& to_database, uint8_t kind,
                                   std::string_view statement_class) {
  Count(kind, statement_class, rule);
  const StatementProtocol protocol =
      type == proto::kPqMsg_Parse || type == proto::kPqMsg_Execute ? StatementProtocol::kExtended
      : type == proto::kPqMsg_FunctionCall ? StatementProtocol::kFunctionCall
                                           : StatementProtocol::kSimple;
  audit_.Refusal(statement, protocol, rule, error.sqlstate, error.message, fingerprint,
                 ledger_.TakeClientBytes());
  if (type == proto::kPqMsg_Parse && audit_.enabled()) ledger_.Refused(statement_name);
  auto refusal = std::make_unique<proto::Refusal>(
      proto::SubstituteRefused(type, statement_name, std::move(error), to_database));
  // The substitute's error answers: a Query's one statement, the Parse, or
  // the FunctionCall's batch end (its substitute is a Query).
  SessionPipeline::Request* request =
      type == proto::kPqMsg_Query
          ? &pipeline_.InsertBeforeLast(proto::RequestKind::kStatement, proto::kPqMsg_Query)
          : pipeline_.last();
  // (Never null: the relay put the message's own request in the pipeline.)
  if (request == nullptr) return;
  request->note.refusal = std::move(refusal);
  ++refusals_outstanding_;
}

std::vector<std::pair<std::string, std::string>> BackendSettings(const policy::Scope& scope) {
  std::vector<std::pair<std::string, std::string>> settings;
  std::string path;
  for (const std::string& schema : scope.search_path) {
    if (!path.empty()) path += ", ";
    path += policy::QuoteIdentifier(schema);
  }
  settings.emplace_back("search_path", path);
  const auto limit = [&](const char* name, absl::Duration d) {
    if (d > absl::ZeroDuration()) {
      settings.emplace_back(name, Cat(absl::ToInt64Milliseconds(d)));
    }
  };
  limit("statement_timeout", scope.statement_timeout);
  limit("lock_timeout", scope.lock_timeout);
  limit("idle_in_transaction_session_timeout", scope.idle_in_transaction_session_timeout);
  return settings;
}

}  // namespace pgb
