// SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it, both roles.
//
// ScramServer is the gateway authenticating a client against a stored
// verifier (PostgreSQL's src/backend/libpq/auth-scram.c); ScramClient is the
// gateway logging in to PostgreSQL (src/interfaces/libpq/fe-auth-scram.c).
// Both are pure message-in/message-out state machines: the caller moves the
// bytes in SASLInitialResponse/SASLResponse and AuthenticationSASL* messages.
// Channel binding (SCRAM-SHA-256-PLUS, tls-server-end-point) is supported on
// the server side; the client side sends gs2 flag 'n'.
// Spec: https://www.postgresql.org/docs/15/sasl-authentication.html
//
//   // Gateway as server, after advertising "SCRAM-SHA-256" in AuthenticationSASL:
//   ScramServer server(verifier_or_null, startup_user);
//   PGB_ASSIGN_OR_RETURN(std::string server_first, server.HandleClientFirst(initial_data));
//   ... send AuthenticationSASLContinue(server_first), read SASLResponse ...
//   PGB_ASSIGN_OR_RETURN(std::string server_final, server.HandleClientFinal(response_data));
//   ... send AuthenticationSASLFinal(server_final), then AuthenticationOk ...
//
//   // Gateway as client of PostgreSQL:
//   ScramClient client(password);
//   send SASLInitialResponse("SCRAM-SHA-256", client.ClientFirst());
//   PGB_ASSIGN_OR_RETURN(std::string client_final, client.HandleServerFirst(continue_data));
//   send SASLResponse(client_final);
//   PGB_RETURN_IF_ERROR(client.HandleServerFinal(final_data));
//
// Errors: malformed or out-of-order messages give InvalidArgumentError (a
// protocol violation, SQLSTATE 08P01) or FailedPreconditionError; a wrong
// proof gives UnauthenticatedError("password authentication failed"). No
// error text contains a password, key, proof or signature.
#pragma once

#include <array>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pgb::proto {

// The SASL mechanism name the gateway advertises and accepts.
inline constexpr std::string_view kScramSha256Mechanism = "SCRAM-SHA-256";
// PostgreSQL's SCRAM_SHA_256_DEFAULT_ITERATIONS.
inline constexpr int kScramDefaultIterations = 4096;
// The most PBKDF2 iterations the gateway itself will compute (as a client, or
// when making a verifier). A server demanding more is refused rather than
// letting it pin a shard for seconds; 1'000'000 is ~250x PostgreSQL's default.
inline constexpr int kScramMaxIterations = 1'000'000;
// SHA-256 output: the length of StoredKey, ServerKey, proofs and signatures.
inline constexpr size_t kScramKeyLength = 32;
// PostgreSQL's SCRAM_DEFAULT_SALT_LEN.
inline constexpr size_t kScramSaltLength = 16;
// Longest SCRAM message accepted from the peer. Real ones are under 200 bytes;
// PostgreSQL caps the whole SASL message at 65535 (PG_MAX_AUTH_TOKEN_LENGTH).
inline constexpr size_t kScramMaxMessageLength = 8192;

struct ScramVerifier {
  int iterations = 0;
  std::string salt;        // raw bytes
  std::string stored_key;  // raw, kScramKeyLength bytes
  std::string server_key;  // raw, kScramKeyLength bytes
};

// Parses PostgreSQL's pg_authid format
// "SCRAM-SHA-256$<iterations>:<salt base64>$<StoredKey base64>:<ServerKey base64>".
// Errors say which part is wrong, never what the keys are.
absl::StatusOr<ScramVerifier> ParseScramVerifier(std::string_view text);

// A new verifier (in the format above) for `password`, with a random 16-byte
// salt and `iterations` in 1..kScramMaxIterations.
absl::StatusOr<std::string> MakeScramVerifier(std::string_view password,
                                              int iterations = kScramDefaultIterations);

// Server side of one SCRAM-SHA-256 exchange. Without UseChannelBinding it
// accepts gs2 flags 'n' and 'y' (nothing was offered, so 'y' is no downgrade)
// and refuses 'p'. The user name in client-first is ignored, as PostgreSQL does: the
// startup packet's user is the one being authenticated.
//
// With verifier == nullptr (unknown user) the exchange runs in full against a
// fake verifier derived from a per-process random secret and `user_name`, and
// fails at the proof exactly as a wrong password would: an unknown user cannot
// be told from a known one (PostgreSQL's "mock" authentication). The verifier
// is copied; it need not outlive the ScramServer.
class ScramServer {
 public:
  ScramServer(const ScramVerifier* verifier, std::string_view user_name);
  ~ScramServer();
  ScramServer(ScramServer&&) = default;
  ScramServer& operator=(ScramServer&&) = default;
  ScramServer(const ScramServer&) = delete;
  ScramServer& operator=(const ScramServer&) = delete;

  // On a TLS connection where "SCRAM-SHA-256-PLUS" was advertised, call this
  // before HandleClientFirst: `end_point` is the tls-server-end-point data of
  // the gateway's certificate (TlsContext::server_end_point), `plus_selected`
  // whether the client chose the -PLUS mechanism. As PostgreSQL: -PLUS requires
  // gs2 flag "p=tls-server-end-point" and the binding data in c=; plain
  // SCRAM-SHA-256 with flag 'y' is then a downgrade and refused.
  void UseChannelBinding(std::string end_point, bool plus_selected);

  // The data of SASLInitialResponse -> server-first-message (to send in
  // AuthenticationSASLContinue).
  [[nodiscard]] absl::StatusOr<std::string> HandleClientFirst(std::string_view client_first);
  // The data of SASLResponse -> server-final-message ("v=...", to send in
  // AuthenticationSASLFinal). A wrong proof, or any proof for an unknown user,
  // gives UnauthenticatedError("password authentication failed").
  [[nodiscard]] absl::StatusOr<std::string> HandleClientFinal(std::string_view client_final);

  // Tests only: a fixed server nonce instead of a random one.
  static ScramServer ForTest(const ScramVerifier* verifier, std::string_view user_name,
                             std::string_view server_nonce);

 private:
  enum class State { kExpectClientFirst, kExpectClientFinal, kDone };

  State state_ = State::kExpectClientFirst;
  ScramVerifier verifier_;  // the real one, or the mock when doomed_
  bool doomed_ = false;     // unknown user or unusable verifier: the proof must fail
  absl::Status setup_status_;
  char cbind_flag_ = 'n';
  bool cbind_offered_ = false;  // -PLUS was advertised (TLS)
  bool plus_selected_ = false;  // the client chose -PLUS
  std::string end_point_;       // tls-server-end-point data
  std::string gs2_header_;      // as the client sent it; c= must repeat it
  std::string client_first_bare_;
  std::string server_first_;
  std::string nonce_;  // client nonce + server nonce
  std::string fixed_server_nonce_;
};

// Client side of one SCRAM-SHA-256 exchange, for the gateway logging in to
// PostgreSQL. Sends gs2 flag 'n' (no channel binding) and an empty user name,
// as libpq does without channel binding.
// The keys derived from one password for one (salt, iterations), kept so the
// gateway skips PBKDF2 (about 1.5 ms at 4096 iterations) when it logs in to the
// same role again: PostgreSQL keeps a role's salt until its password changes.
// One entry, filled only after the server proved it knows the same keys
// (a verified ServerSignature); a different salt or count replaces it. Owned by one
// shard (not thread-safe); the keys are wiped on replacement and destruction.
class ScramClientKeyCache {
 public:
  ScramClientKeyCache() = default;
  ~ScramClientKeyCache();
  ScramClientKeyCache(const ScramClientKeyCache&) = delete;
  ScramClientKeyCache& operator=(const ScramClientKeyCache&) = delete;
  ScramClientKeyCache(ScramClientKeyCache&&) = default;
  ScramClientKeyCache& operator=(ScramClientKeyCache&&) = default;

 private:
  friend class ScramClient;
  bool valid_ = false;
  std::string salt_;
  int iterations_ = 0;
  std::array<unsigned char, kScramKeyLength> client_key_{};
  std::array<unsigned char, kScramKeyLength> stored_key_{};
  std::array<unsigned char, kScramKeyLength> server_key_{};
};

class ScramClient {
 public:
  // `cache`, if given, must outlive the client and belong to this password.
  explicit ScramClient(std::string_view password, ScramClientKeyCache* cache = nullptr);
  ~ScramClient();
  ScramClient(ScramClient&&) = default;
  ScramClient& operator=(ScramClient&&) = default;
  ScramClient(const ScramClient&) = delete;
  ScramClient& operator=(const ScramClient&) = delete;

  // "n,,n=,r=<nonce>", the nonce being 18 random bytes in base64 as libpq's.
  // The nonce is drawn once; calling again returns the same message. If the
  // random source fails this returns "" and HandleServerFirst reports it.
  std::string ClientFirst();
  // server-first-message -> client-final-message. Checks that the server nonce
  // extends ours, the salt decodes, and the iteration count is in
  // 1..kScramMaxIterations.
  [[nodiscard]] absl::StatusOr<std::string> HandleServerFirst(std::string_view server_first);
  // Verifies the ServerSignature ("v=..."); "e=..." gives an error naming the
  // server's error.
  [[nodiscard]] absl::Status HandleServerFinal(std::string_view server_final);

  // Tests only: a fixed client nonce and the user name to put in client-first
  // (RFC 7677's vector uses "user"; PostgreSQL ignores it).
  static ScramClient ForTest(std::string_view password, std::string_view client_nonce,
                             std::string_view sasl_user_name = "");

 private:
  enum class State { kStart, kSentClientFirst, kSentClientFinal, kDone };

  State state_ = State::kStart;
  std::string password_;
  ScramClientKeyCache* cache_ = nullptr;
  ScramClientKeyCache derived_;  // keys derived in this exchange, cached once verified
  std::string client_nonce_;
  std::string sasl_user_name_;  // already escaped as a saslname
  absl::Status nonce_status_;
  std::string client_first_bare_;
  std::array<unsigned char, kScramKeyLength> expected_server_signature_{};
};

namespace internal_scram {
// Exposed for tests and the scram-verifier command; not part of the API.
// Derives a verifier from a password with a given salt (no randomness).
absl::StatusOr<ScramVerifier> DeriveScramVerifier(std::string_view password, std::string_view salt,
                                                  int iterations);
// Formats a verifier in pg_authid's format (inverse of ParseScramVerifier).
std::string FormatScramVerifier(const ScramVerifier& verifier);
// Strict RFC 4648 base64 (padding required, no whitespace, zero pad bits).
std::string Base64Encode(std::string_view raw);
[[nodiscard]] bool Base64Decode(std::string_view text, std::string* raw);
}  // namespace internal_scram

}  // namespace pgb::proto
