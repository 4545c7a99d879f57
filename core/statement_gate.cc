#include "core/statement_gate.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
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

// A refusal of a message the gateway could not judge (malformed, too large,
// not analysable). Fail closed: it never reaches the database.
policy::Decision Unjudged(std::string rule, std::string reason, std::string hint = "") {
  return policy::Decision{policy::Decision::kDeny, std::move(rule), std::move(reason),
                          std::move(hint)};
}

}  // namespace

// ErrorResponses are small; one longer than this is not a refusal's answer.
const proto::FrameTracker::Gather StatementGate::kErrorResponses =
    GatherOf({&proto::kPqMsg_ErrorResponse, 1}, 64 * 1024);

StatementGate::StatementGate(std::shared_ptr<const policy::Policy> policy,
                             const policy::Scope& scope, policy::Identity identity,
                             std::string target, std::string role, policy::AnalysisCache& cache,
                             uint32_t max_statement_size)
    : policy_(std::move(policy)),
      scope_(&scope),
      identity_(std::move(identity)),
      target_(std::move(target)),
      cache_(cache),
      state_(scope, std::move(role)),
      client_gather_(GatherOf({"QPF", 3}, max_statement_size)) {}

void StatementGate::UsePolicy(std::shared_ptr<const policy::Policy> policy,
                              policy::Identity identity) {
  policy_ = std::move(policy);
  identity_ = std::move(identity);
  scope_ = policy_->MatchScope(identity_, target_);
}

void StatementGate::OnWholeClientMessage(char type, std::string_view message, bool oversize,
                                         std::string& to_database) {
  if (oversize) {
    Refuse(type, "",
           Unjudged("gateway.max_statement_size",
                    absl::StrCat("statement too large for the gateway to judge (more than ",
                                 client_gather_.max_size, " bytes)"),
                    "split the statement, or ask the operator to raise "
                    "gateway.max_statement_size"),
           to_database);
    return;
  }
  const std::string_view body = message.substr(proto::kHeaderLength);
  switch (type) {
    case proto::kPqMsg_Query: {
      absl::StatusOr<std::string_view> sql = proto::ParseQuery(body);
      if (!sql.ok()) {
        Refuse(type, "", Unjudged("protocol", std::string(sql.status().message())), to_database);
      } else if (Admit(type, "", *sql, to_database)) {
        to_database.append(message);
      }
      return;
    }
    case proto::kPqMsg_Parse: {
      absl::StatusOr<proto::ParseMessage> parse = proto::ParseParseMessage(body);
      if (!parse.ok()) {
        Refuse(type, "", Unjudged("protocol", std::string(parse.status().message())), to_database);
      } else if (Admit(type, parse->statement, parse->sql, to_database)) {
        to_database.append(message);
      }
      return;
    }
    case proto::kPqMsg_FunctionCall: {
      const policy::Decision d = scope_ ? policy_->DecideFunctionCall(*scope_)
                                        : policy::Policy::NoScope(identity_, target_);
      if (d.kind == policy::Decision::kAllow) {
        to_database.append(message);
      } else {
        Refuse(type, "", d, to_database);
      }
      return;
    }
    default:
      to_database.append(message);  // not judged; gathered only by a wider set
  }
}

void StatementGate::RememberSearchPath(std::string_view value) {
  policy::StatementSummary set;
  set.statement_class = policy::StatementClass::kSessionSetting;
  set.command = "SET";
  set.settings.push_back(policy::SettingChange{"search_path", std::string(value)});
  state_.Remember(set);
}

bool StatementGate::Admit(char type, std::string_view statement_name, std::string_view sql,
                          std::string& to_database) {
  if (scope_ == nullptr) {
    Refuse(type, statement_name, policy::Policy::NoScope(identity_, target_), to_database);
    return false;
  }
  const std::shared_ptr<const policy::SqlAnalysis> analysis = cache_.Analyse(sql);
  if (!analysis->ok) {
    refusals_.Refuse(type, statement_name,
                     proto::ErrorFields{"ERROR", analysis->error_sqlstate, analysis->error_message,
                                        "", "", analysis->error_position},
                     to_database);
    return false;
  }
  // Each statement is judged in the state the ones before it leave (a
  // `SET search_path = x; SELECT ...` resolves the SELECT's names against x).
  // Remembering a statement that then does not run only makes later
  // decisions stricter.
  for (const policy::StatementSummary& statement : analysis->statements) {
    const policy::Decision d = policy_->Decide(*scope_, statement, state_);
    if (d.kind != policy::Decision::kAllow) {
      Refuse(type, statement_name, d, to_database);
      return false;
    }
    state_.Remember(statement);
  }
  return true;
}

void StatementGate::Refuse(char type, std::string_view statement_name,
                           const policy::Decision& decision, std::string& to_database) {
  std::string detail;
  if (decision.kind == policy::Decision::kApproval) {
    detail = "This gateway cannot hold statements for approval yet, so the statement was refused.";
  }
  refusals_.Refuse(
      type, statement_name,
      proto::ErrorFields{"ERROR", proto::sqlstate::kInsufficientPrivilege,
                         policy::DecisionMessage(decision), std::move(detail), decision.hint},
      to_database);
}

std::vector<std::pair<std::string, std::string>> BackendSettings(const policy::Scope& scope) {
  std::vector<std::pair<std::string, std::string>> settings;
  std::string path;
  for (const std::string& schema : scope.search_path) {
    if (!path.empty()) path += ", ";
    const bool plain = !schema.empty() && std::all_of(schema.begin(), schema.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    }) && !(schema[0] >= '0' && schema[0] <= '9');
    if (plain) {
      path += schema;
    } else {
      path += '"' + absl::StrReplaceAll(schema, {{"\"", "\"\""}}) + '"';
    }
  }
  settings.emplace_back("search_path", path);
  const auto limit = [&](const char* name, absl::Duration d) {
    if (d > absl::ZeroDuration()) {
      settings.emplace_back(name, absl::StrCat(absl::ToInt64Milliseconds(d)));
    }
  };
  limit("statement_timeout", scope.statement_timeout);
  limit("lock_timeout", scope.lock_timeout);
  limit("idle_in_transaction_session_timeout", scope.idle_in_transaction_session_timeout);
  return settings;
}

}  // namespace pgb
