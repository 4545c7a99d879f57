// One benchmark connection's protocol state machine: login (StartupMessage,
// then AuthenticationOk / cleartext / MD5 / SCRAM-SHA-256 until ReadyForQuery;
// with a token, only cleartext: the token is the password the gateway asks for),
// an optional prepare step, then transactions, each ended by one
// ReadyForQuery. No I/O: the worker feeds it received bytes and sends what it
// appends to `out`.
// Spec: https://www.postgresql.org/docs/15/protocol-flow.html
//
// TLS, when used, sits below this class: it sees plaintext only.
//
//   BenchConnection conn(user, dbname, {password, Credential::Kind::kPassword}, &tx, &cache);
//   conn.Start(out);                                   // StartupMessage
//   ... on receive:
//   absl::StatusOr<FeedResult> r = conn.Feed(in, out); // consumes whole messages
//   if (!r.ok()) Fail(conn.fatal_error());             // login/protocol failure
//   if (r->ready) conn.BeginTransaction(out);
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "proto/messages.h"
#include "proto/scram.h"
#include "tools/bench/workload.h"

namespace pgb::bench {

// Largest backend message accepted (the wide workload's rows are ~1 KB;
// anything near this is a broken stream).
inline constexpr uint32_t kMaxBackendMessage = 64 << 20;

// What the connection logs in with. A token is only ever sent in answer to
// AuthenticationCleartextPassword (the gateway's token login); a server that
// asks for MD5 or SCRAM instead does not take tokens for this user.
struct Credential {
  enum class Kind { kPassword, kToken };
  std::string secret;
  Kind kind = Kind::kPassword;
};

struct FeedResult {
  size_t consumed = 0;       // bytes of whole messages taken from the input
  bool ready = false;        // login (and prepare) done, or a transaction done: idle now
  bool txn_done = false;     // a transaction's ReadyForQuery arrived
  std::string txn_sqlstate;  // its first ErrorResponse's SQLSTATE, if any
};

class BenchConnection {
 public:
  // credential must outlive the connection (the worker owns one for all).
  BenchConnection(std::string_view user, std::string_view dbname, const Credential* credential,
                  TransactionBuilder* tx, proto::ScramClientKeyCache* scram_cache);

  void Start(std::string& out);
  void BeginTransaction(std::string& out);
  [[nodiscard]] absl::StatusOr<FeedResult> Feed(std::string_view in, std::string& out);

  bool logged_in() const { return state_ == State::kIdle || state_ == State::kInTransaction; }
  // The server's error that ended the login, if that is what failed.
  const std::optional<proto::ErrorFields>& fatal_error() const { return fatal_error_; }

 private:
  enum class State { kAuth, kAwaitReady, kPreparing, kIdle, kInTransaction };

  [[nodiscard]] absl::Status OnAuthRequest(std::string_view body, std::string& out);

  std::string user_;
  std::string dbname_;
  const Credential* credential_;
  TransactionBuilder* tx_;
  proto::ScramClientKeyCache* scram_cache_;
  std::optional<proto::ScramClient> scram_;
  State state_ = State::kAuth;
  std::string txn_sqlstate_;
  std::optional<proto::ErrorFields> fatal_error_;
};

}  // namespace pgb::bench
