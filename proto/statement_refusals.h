// How the gateway refuses a statement while keeping the session's protocol
// state exactly as PostgreSQL's own.
//
// A refused Query, Parse, Execute or FunctionCall is not dropped: it is replaced by a
// statement that fails in PostgreSQL's parser, before it touches anything
// (`pgbastion_refused_<random>`). The database then does what it does for any
// failing statement: aborts the open transaction (or the implicit one of a
// multi-statement Query or an extended-protocol batch), skips the rest of the
// batch until Sync, and answers ReadyForQuery with the true transaction
// status. The request pipeline (proto/request_pipeline.h) says which
// ErrorResponse answers the substitute; that error must also carry the random
// token (a second check that the pairing is right), and is then replaced by
// the refusal the client should see (SQLSTATE 42501, the rule, a hint). If
// the database never reached the substitute (a transaction already aborted:
// 25P02), its own error is what the client gets, as without the gateway.
//
//   Refusal r = SubstituteRefused(kPqMsg_Query, "", error, to_database);  // instead of forwarding
//   // the ErrorResponse that answers the substitute's request, whole:
//   AnswerRefusal(r, error_response, to_client);
//
// Spec: https://www.postgresql.org/docs/15/protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY
#pragma once

#include <string>
#include <string_view>

#include "proto/messages.h"

namespace pgb::proto {

struct Refusal {
  std::string token;  // the identifier the substitute consists of
  ErrorFields error;  // what the client sees in the database's error's place
};

// Appends to `to_database` the substitute for a refused message of `type`:
// a Parse under the client's statement name for a Parse (so that a later
// Bind fails as PostgreSQL would make it fail), a Parse under a name of its
// own for an Execute (it creates nothing), otherwise a Query (a Query and a
// FunctionCall are both answered by an error and one ReadyForQuery).
[[nodiscard]] Refusal SubstituteRefused(char type, std::string_view statement_name,
                                        ErrorFields error, std::string& to_database);

// A whole ErrorResponse (header included) that answers the substitute:
// appends the refusal to `to_client` when the error is the substitute's own
// (returns true), otherwise the database's error unchanged.
bool AnswerRefusal(const Refusal& refusal, std::string_view message, std::string& to_client);

}  // namespace pgb::proto
