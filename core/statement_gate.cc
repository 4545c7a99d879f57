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
                             SessionPipeline& pipeline, approvals::SessionHolds* holds)
    : policy_(std::move(policy)),
      scope_(&scope),
      identity_(std::move(identity)),
      target_(std::move(target)),
      cache_(cache),
      state_(scope, std::move(role)),
      client_gather_(GatherOf({"QPFE", 4}, max_statement_size)),
      audit_(audit),
      pipeline_(pipeline),
      holds_(holds),
      started_read_only_(policy::ReadOnlyInDatabase(scope)) {
  // Bind and Close names always (a statement parsed before a reload is
  // judged again when it runs), Execute whole (a few bytes).
  for (char c : {proto::kPqMsg_Bind, proto::kPqMsg_Close}) {
    client_gather_.peek.set(static_cast<unsigned char>(c));
  }
  client_gather_.peek_size = audit_.enabled() && audit_.parameters() != audit::ParameterMode::kOff
                                 ? kParametersPrefix
                                 : kNamesPrefix;
}

const proto::FrameTracker::Gather& StatementGate::backend_gather() const {
  const bool refusals = refusals_outstanding_ > 0;
  if (audit_.enabled()) return refusals ? kBackendAuditRefusals : kBackendAudit;
  return refusals ? kBackendRefusals : proto::FrameTracker::kNoGather;
}

void StatementGate::OnClientPeek(char type, std::string_view prefix) {
  switch (type) {
    case proto::kPqMsg_Bind: {
      if (audit_.enabled() && audit_.parameters() != audit::ParameterMode::kOff) {
        const proto::BindPrefix bind = proto::ReadBindPrefix(prefix);
        prepared_.Bound(bind.portal, bind.statement);
        ledger_.Bound(bind.portal, bind.statement, ParametersOf(bind));
        break;
      }
      const std::string_view portal = FirstString(prefix);
      const std::string_view rest = prefix.substr(std::min(prefix.size(), portal.size() + 1));
      prepared_.Bound(portal, FirstString(rest));
      if (audit_.enabled()) ledger_.Bound(portal, FirstString(rest));
      break;
    }
    case proto::kPqMsg_Close:
      if (prefix.empty()) break;
      prepared_.Closed(prefix[0], FirstString(prefix.substr(1)));
      if (audit_.enabled()) ledger_.Closed(prefix[0], FirstString(prefix.substr(1)));
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
  ++policy_generation_;
  must_reconnect_ = scope_ != nullptr && !started_read_only_ && policy::ReadOnlyInDatabase(*scope_);
}

bool StatementGate::RefuseUntilReconnect(char type, std::string_view statement_name,
                                         std::string_view statement, std::string& to_database) {
  if (!must_reconnect_) return false;
  Refuse(type, statement_name, statement, 0,
         policy::Decision{policy::Decision::kDeny, "builtin.read-only-reconnect",
                          Cat("scope '", scope_->name,
                              "' became read-only in a reload, and this session's database "
                              "session was not started read-only, so its statements are refused "
                              "until it reconnects"),
                          "reconnect: a new session runs read-only in the database"},
         to_database, "none");
  return true;
}

// A masked scope judges with the catalog as the gateway last read it.
policy::QueryJudgement StatementGate::Judge(const policy::SqlAnalysis& analysis) {
  if (!scope_->masks.empty()) {
    state_.UseCatalog(catalogs_ ? catalogs_->Snapshot(catalog_target_) : nullptr);
  }
  return policy::JudgeQuery(*policy_, *scope_, analysis, state_);
}

bool StatementGate::RejudgeStale(std::string_view portal, std::string& to_database) {
  if (policy_generation_ == 0) return true;  // no reload: all judged by this policy
  const PreparedJudgements::Judged* stale = prepared_.Stale(portal, policy_generation_);
  if (stale == nullptr) return true;
  // The text was allowed when parsed, so it analyses; judged as a Parse of
  // it would be now, and refused in the Execute's place.
  const std::shared_ptr<const std::string> text = stale->text;
  const std::shared_ptr<const policy::SqlAnalysis> analysis = cache_.Analyse(*text);
  policy::Decision refusal = policy::Policy::NoScope(identity_, target_);
  std::string_view statement = *text;
  uint64_t fingerprint = 0;
  std::string_view statement_class = "none";
  if (scope_ != nullptr && analysis->ok) {
    policy::QueryJudgement judgement = Judge(*analysis);
    if (judgement.allowed()) {
      prepared_.Rejudged(portal, policy_generation_);
      return true;
    }
    const policy::StatementSummary& refused = analysis->statements[judgement.first_refusal];
    refusal = std::move(judgement.decisions[judgement.first_refusal]);
    statement = policy::StatementText(*text, refused);
    fingerprint = refused.fingerprint;
    statement_class = policy::StatementClassName(refused.statement_class);
  } else if (scope_ != nullptr) {
    refusal = policy::Decision{policy::Decision::kDeny, "analysis",
                               "the statement cannot be "
                               "judged again after the policy changed",
                               ""};
  }
  ++judged_;
  refusal.reason = Cat(refusal.reason,
                       " (the statement was prepared before the policy was "
                       "reloaded, and is judged again when it runs)");
  Refuse(proto::kPqMsg_Execute, "", statement, fingerprint, refusal, to_database, statement_class);
  return false;
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
      if (RefuseUntilReconnect(type, "", "(function call)", to_database)) return false;
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
      // Gathered to judge again what a reload changed, and for the trail; a
      // malformed one goes on for the database to refuse (it runs nothing).
      absl::StatusOr<std::string_view> portal = proto::ParseExecutePortal(body);
      if (RefuseUntilReconnect(type, "", "(execute)", to_database)) return false;
      if (portal.ok() && !RejudgeStale(*portal, to_database)) return false;
      if (!audit_.enabled()) return true;
      SessionPipeline::Request* execute = pipeline_.last();
      if (!portal.ok() || execute == nullptr) return true;
      if (StatementLedger::Execution* e =
              ledger_.Executing(execute->note, *portal, audit::AuditClockMicros())) {
        // An Execute of a statement whose Parse is held waits with it: its
        // record is written once the Parse is approved (ResolveHold).
        for (const auto& [text, hold] : held_texts_) {
          if (e->text == text) execute->note.hold = hold;
        }
        if (execute->note.hold == 0) audit_.Statement(*e);
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
  if (RefuseUntilReconnect(type, statement_name, sql, to_database)) return false;
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
  policy::QueryJudgement judgement = Judge(*analysis);
  if (catalogs_ && judgement.allowed()) NoteSchemaChanges(*analysis);
  if (!judgement.allowed() && !Hold(type, statement_name, sql, *analysis, judgement)) {
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
  const uint64_t hold = held_ ? held_->hold : 0;
  if (type == proto::kPqMsg_Parse) {
    if (SessionPipeline::Request* parse = pipeline_.last(); parse != nullptr) {
      parse->note.hold = hold;
    }
    count_allowed(std::min<size_t>(allowed.size(), 1));
    auto text = std::make_shared<const std::string>(sql);
    prepared_.Parsed(statement_name, text, policy_generation_);
    if (audit_.enabled()) {
      if (hold != 0) held_texts_.emplace_back(text, hold);
      ledger_.Parsed(statement_name, std::move(text),
                     allowed.empty() ? 0 : analysis->statements.front().fingerprint,
                     allowed.empty() ? std::string() : std::move(allowed.front().rule));
    }
    return true;
  }
  // A Query: one request per statement, answered in order before its
  // ReadyForQuery. With a trail, every statement's record (and room for its
  // completion) goes in before any of the Query is forwarded.
  if (audit_.enabled() && !audit_.HasRoomFor(2 * analysis->statements.size())) {
    if (held_) {  // refused after all: its request goes
      holds_->Withdraw(held_->hold, "the audit trail had no room for its records");
      held_.reset();
    }
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
    request.note.hold = hold;
    if (!audit_.enabled()) continue;
    const policy::StatementSummary& st = analysis->statements[i];
    StatementLedger::Execution& e = ledger_.Query(request.note, text, st.location, st.length,
                                                  st.fingerprint, std::move(allowed[i].rule), now);
    // A held Query's records wait for its approval (ResolveHold).
    if (hold == 0) audit_.Statement(e);
  }
  return true;
}

bool StatementGate::Hold(char type, std::string_view statement_name, std::string_view sql,
                         const policy::SqlAnalysis& analysis,
                         const policy::QueryJudgement& judgement) {
  const policy::Decision& decision = judgement.decisions[judgement.first_refusal];
  // Statements after the first refusal were not judged: only a Query whose
  // last statement is the one needing approval can be held whole.
  if (holds_ == nullptr || !holds_->enabled() || decision.kind != policy::Decision::kApproval ||
      judgement.first_refusal + 1 != analysis.statements.size()) {
    return false;
  }
  const policy::StatementSummary& statement = analysis.statements[judgement.first_refusal];
  approvals::HeldStatement held;
  held.hold = ++holds_made_;
  held.type = type;
  held.statement_name.assign(statement_name);
  held.statement.assign(sql.substr(0, 64 * 1024));
  held.fingerprint = statement.fingerprint;
  held.statement_class = policy::StatementClassName(statement.statement_class);
  held.rule = decision.rule;
  held.reason = decision.reason;
  held.settings = holds_->config().For(scope_->name, decision.rule);
  approvals::ApprovalRequest request;
  request.id = approvals::NewApprovalId();
  if (request.id.empty()) return false;  // no randomness: refuse
  request.mode = held.settings.mode;
  request.subject = identity_.subject;
  request.issuer = identity_.issuer;
  request.target = target_;
  request.scope = scope_->name;
  request.rule = held.rule;
  request.reason = held.reason;
  request.statement = held.statement;
  request.binding =
      approvals::ApprovalBinding(sql, identity_.subject, identity_.issuer, target_, scope_->name);
  request.approver_groups = held.settings.approver_groups;
  request.approvers = held.settings.approvers;
  request.uses = held.settings.uses;
  request.timeout = held.settings.timeout;
  request.session_id = audit_.session_id();
  held.id = request.id;
  holds_->Submit(held.hold, std::move(request));
  held_ = std::move(held);
  return true;
}

void StatementGate::ResolveHold(const approvals::HeldStatement& held,
                                const proto::ErrorFields* refusal, audit::AuditDecision decision,
                                std::string_view note, std::string& to_database) {
  const auto report = [this](const StatementLedger::Execution& e,
                             const StatementLedger::Outcome& o) { ReportExecution(e, o); };
  std::erase_if(held_texts_, [&](const auto& entry) { return entry.second == held.hold; });
  SessionPipeline::Request* first = nullptr;
  pipeline_.ForEachOutstanding([&](SessionPipeline::Request& r) {
    if (r.note.hold != held.hold) return;
    if (first == nullptr) first = &r;
    if (!r.note.execution) return;
    StatementLedger::Execution& e = *r.note.execution;
    if (refusal == nullptr) {
      // Approved: its record goes into the trail now, before it is forwarded.
      if (e.id == 0) {
        e.approval_id = held.id;
        e.approval_note.assign(note);
        audit_.Statement(e);
      }
    } else if (e.id == 0) {
      r.note.execution.reset();  // never recorded: it never runs
    } else {
      ledger_.Abandon(r.note, refusal->message, report);
    }
  });
  if (refusal == nullptr) return;
  audit_.Approval(
      decision, held.id, held.statement,
      held.type == proto::kPqMsg_Parse ? StatementProtocol::kExtended : StatementProtocol::kSimple,
      held.rule, refusal->sqlstate, refusal->message, held.fingerprint);
  if (held.type == proto::kPqMsg_Parse && audit_.enabled()) ledger_.Refused(held.statement_name);
  auto substitute = std::make_unique<proto::Refusal>(
      proto::SubstituteRefused(held.type, held.statement_name, *refusal, to_database));
  if (first == nullptr) return;  // (the relay keeps the held requests until it resolves them)
  first->note.refusal = std::move(substitute);
  ++refusals_outstanding_;
}

void StatementGate::RecordHold(const approvals::HeldStatement& held, audit::AuditDecision decision,
                               std::string_view message) {
  audit_.Approval(
      decision, held.id, held.statement,
      held.type == proto::kPqMsg_Parse ? StatementProtocol::kExtended : StatementProtocol::kSimple,
      held.rule, "", message, held.fingerprint);
}

void StatementGate::Refuse(char type, std::string_view statement_name, std::string_view statement,
                           uint64_t fingerprint, const policy::Decision& decision,
                           std::string& to_database, std::string_view statement_class) {
  std::string detail;
  if (decision.kind == policy::Decision::kApproval) {
    detail = holds_ != nullptr && holds_->enabled()
                 ? "Only a statement sent alone, or last in its Query, can be held for approval; "
                   "the statements after it could not be judged."
                 : "Approvals are not configured on this gateway ([approvals]), so the statement "
                   "was refused.";
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
  if (type == proto::kPqMsg_Parse) prepared_.Refused(statement_name);
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
  // Read-only in the database too (issue 24, item 8): what the analyser
  // cannot see, a function that writes, PostgreSQL refuses.
  if (policy::ReadOnlyInDatabase(scope)) {
    settings.emplace_back("default_transaction_read_only", "on");
  }
  const auto limit = [&](const char* name, absl::Duration d) {
    if (d > absl::ZeroDuration()) {
      settings.emplace_back(name, Cat(absl::ToInt64Milliseconds(d)));
    }
  };
  limit("statement_timeout", scope.statement_timeout);
  limit("lock_timeout", scope.lock_timeout);
  limit("idle_in_transaction_session_timeout", scope.idle_in_transaction_session_timeout);
  for (const auto& [name, value] : scope.setting_caps) settings.emplace_back(name, Cat(value));
  return settings;
}

}  // namespace pgb
