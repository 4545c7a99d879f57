// StatementRefusals keeps one session's protocol state exactly as PostgreSQL's
// own when the gateway refuses a statement.
//
// A refused Query, Parse or FunctionCall is not dropped: it is replaced by a
// statement that fails in PostgreSQL's parser, before it touches anything
// (`pgbastion_refused_<random>`). The database then does what it does for any
// failing statement: aborts the open transaction (or the implicit one of a
// multi-statement Query or an extended-protocol batch), skips the rest of the
// batch until Sync, and answers ReadyForQuery with the true transaction
// status. Its ErrorResponse carries the random token, so the gateway can tell
// it from every other error and replace it with the refusal the client should
// see (SQLSTATE 42501, the rule, a hint). If the database never reaches the
// substitute (an earlier error in the same batch, a transaction already
// aborted), the client gets the error PostgreSQL would have given, and the
// refusal is forgotten at the ReadyForQuery that closes its batch.
//
//   StatementRefusals refusals;
//   // client -> database, for each message header: refusals.OnClientMessage(type);
//   refusals.Refuse(kPqMsg_Query, "", error, to_database);   // instead of forwarding
//   // database -> client, while refusals.pending():
//   refusals.OnBackendError(whole_error_response, to_client);
//   refusals.OnReadyForQuery();
//
// Spec: https://www.postgresql.org/docs/15/protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proto/messages.h"

namespace pgb::proto {

class StatementRefusals {
 public:
  // Every client message header the gateway forwards, in order (counts the
  // messages that end a batch: Query, Sync, FunctionCall).
  void OnClientMessage(char type);
  // Appends to `to_database` the substitute for a refused message of `type`
  // (Query, Parse with the client's statement name, or FunctionCall) and
  // remembers `error` for the database's answer to it.
  void Refuse(char type, std::string_view statement_name, ErrorFields error,
              std::string& to_database);
  // Whether ErrorResponses from the database must pass through OnBackendError.
  bool pending() const { return !pending_.empty(); }
  // A whole ErrorResponse (header included) from the database: appends it to
  // `to_client`, or the refusal it answers (then returns true).
  bool OnBackendError(std::string_view message, std::string& to_client);
  // A ReadyForQuery from the database: refusals of the batch it closes are over.
  void OnReadyForQuery();

 private:
  struct Refusal {
    std::string token;  // the identifier the substitute consists of
    ErrorFields error;
    uint64_t batch;  // the batch-ending message whose ReadyForQuery closes it
  };
  uint64_t batches_sent_ = 0;
  uint64_t batches_done_ = 0;
  std::vector<Refusal> pending_;
};

}  // namespace pgb::proto
