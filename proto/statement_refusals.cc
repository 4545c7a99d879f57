#include "proto/statement_refusals.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cstdio>

#include "proto/protocol.h"

namespace pgb::proto {
namespace {

constexpr std::string_view kTokenPrefix = "pgbastion_refused_";

// An unguessable identifier: a client cannot make another error look like a
// refusal. Falls back to a counter only if the RNG fails, which still
// identifies the refusal (the client never learns the value).
std::string NewToken() {
  static thread_local uint64_t fallback = 0;
  uint64_t r[2] = {0, ++fallback};
  if (RAND_bytes(reinterpret_cast<unsigned char*>(r), sizeof(r)) != 1) r[0] = ~fallback;
  char hex[33];
  std::snprintf(hex, sizeof(hex), "%016llx%016llx", static_cast<unsigned long long>(r[0]),
                static_cast<unsigned long long>(r[1]));
  return std::string(kTokenPrefix) + hex;
}

}  // namespace

void StatementRefusals::OnClientMessage(char type) {
  if (type == kPqMsg_Query || type == kPqMsg_Sync || type == kPqMsg_FunctionCall) {
    ++batches_sent_;
  }
}

void StatementRefusals::Refuse(char type, std::string_view statement_name, ErrorFields error,
                               std::string& to_database) {
  Refusal r{NewToken(), std::move(error), 0};
  if (type == kPqMsg_Parse) {
    // The batch ends at the next Sync; the statement name is kept so that the
    // database's answer to a later Bind is the one PostgreSQL would give.
    AppendParse(to_database, statement_name, r.token);
    r.batch = batches_sent_ + 1;
  } else {
    // A Query or FunctionCall (already counted): both are answered by an
    // error and one ReadyForQuery.
    AppendQuery(to_database, r.token);
    r.batch = batches_sent_;
  }
  pending_.push_back(std::move(r));
}

bool StatementRefusals::OnBackendError(std::string_view message, std::string& to_client) {
  const std::string_view body =
      message.size() > kHeaderLength ? message.substr(kHeaderLength) : std::string_view();
  absl::StatusOr<ErrorFields> fields = ParseErrorFields(body);
  if (fields.ok() && fields->message.find(kTokenPrefix) != std::string::npos) {
    for (auto it = pending_.begin(); it != pending_.end(); ++it) {
      if (fields->message.find(it->token) == std::string::npos) continue;
      ErrorFields refusal = std::move(it->error);
      pending_.erase(it);
      if (refusal.severity.empty()) refusal.severity = "ERROR";
      AppendErrorResponse(to_client, refusal);
      return true;
    }
  }
  to_client.append(message);
  return false;
}

void StatementRefusals::OnReadyForQuery() {
  ++batches_done_;
  pending_.erase(std::remove_if(pending_.begin(), pending_.end(),
                                [this](const Refusal& r) { return r.batch <= batches_done_; }),
                 pending_.end());
}

}  // namespace pgb::proto
