// The whole check of a token an agent sends as its password, and the
// Identity it yields. One TokenVerifier per shard: it is single-threaded (no
// locks) and owns that shard's verification cache and JSON parsers; the keys
// come from the process-wide KeyStore (policy/key_store.h) through lock-free
// snapshots, so Verify never blocks and never does I/O.
//
// Order of checks (each failure is one TokenRefusal naming its check):
//   size cap -> three base64url parts -> header JSON (alg: never "none" or
//   HS*; no "crit") -> payload JSON -> iss is a configured issuer -> alg is
//   allowed for it -> the key (by kid; without a kid, the only key that fits
//   alg) -> the key's type, curve and "alg" fit the token's alg -> signature
//   -> exp (required), nbf, iat, with the issuer's clock skew -> aud -> claims
//   mapping -> startup user (user_match).
// Claims are read for nothing but key selection before the signature holds.
//
//   TokenVerifier verifier(key_store);                   // per shard
//   TokenVerdict verdict = verifier.Verify(password, startup_user, absl::Now());
//   if (!verdict.ok()) {
//     SendError(verdict.refusal->sqlstate(), verdict.refusal->reason);  // FATAL
//   } else { session.identity = std::move(verdict.identity); }
//
// SQLSTATEs: 28P01 (invalid_password) when the token itself is not acceptable
// (malformed, badly signed, expired, for another audience, ...); 28000
// (invalid_authorization_specification) when the token may be fine but this
// login cannot be authorized as asked: the startup user does not match, or
// the key it names is not known (yet): retry_later() is then true.
// Reasons never contain the token, a signature or key material.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "policy/identity.h"
#include "policy/key_store.h"

namespace pgb::policy {

enum class TokenCheck : uint8_t {
  kFormat,           // size cap, three base64url parts, JSON objects
  kHeader,           // "crit", a malformed "kid", duplicate members
  kAlgorithm,        // "none", HS*, unsupported, or not allowed for the issuer
  kIssuer,           // "iss" missing or not a configured issuer
  kUnknownKey,       // "kid" not in the issuer's key set (a refresh is requested)
  kKeysUnavailable,  // the issuer's keys have never been loaded
  kKeyMismatch,      // the key does not fit alg; no kid and no single candidate
  kSignature,
  kExpired,
  kNotYetValid,     // nbf
  kIssuedInFuture,  // iat
  kLifetime,        // exp - iat (exp - now without iat) over the issuer's max_token_lifetime
  kAudience,
  kClaims,  // exp missing, claim of the wrong type, no subject
  kUser,    // the startup user is not the token's subject
};

// "format", "signature", "expired", ...: for audit and log events.
std::string_view TokenCheckName(TokenCheck check);

struct TokenRefusal {
  TokenCheck check = TokenCheck::kFormat;
  std::string reason;  // "token expired at 2026-11-28T10:00:00Z"

  std::string_view sqlstate() const;  // "28P01" or "28000"
  bool retry_later() const {
    return check == TokenCheck::kUnknownKey || check == TokenCheck::kKeysUnavailable;
  }
};

// A verdict rather than a StatusOr<Identity>: a refused token is an answer
// that carries what the audit record and the FATAL need (the check, its
// SQLSTATE, retry_later) and, when known, the issuer and key, on both paths.
struct TokenVerdict {
  std::optional<TokenRefusal> refusal;  // set when the token is refused
  Identity identity;                    // when accepted
  std::string issuer_name;              // the [[issuer]] name, when known
  std::string kid;                      // the key that verified the token
  bool cache_hit = false;

  bool ok() const { return !refusal.has_value(); }
};

class TokenVerifier {
 public:
  // A verified token is remembered (by its SHA-256) until it expires, in at
  // most `cache_capacity` entries; 0 disables the cache.
  explicit TokenVerifier(std::shared_ptr<const KeyStore> keys, size_t cache_capacity = 4096);

  ~TokenVerifier();
  TokenVerifier(const TokenVerifier&) = delete;
  TokenVerifier& operator=(const TokenVerifier&) = delete;

  [[nodiscard]] TokenVerdict Verify(std::string_view token, std::string_view startup_user,
                                    absl::Time now);

  size_t cache_size() const { return cache_.size(); }

 private:
  // What a cache hit needs to skip the signature check and still notice a
  // key that was withdrawn since: the key's thumbprint, rechecked whenever
  // the issuer's key generation moved.
  struct CacheEntry {
    Identity identity;
    const IssuerKeys* issuer = nullptr;
    std::string kid;
    std::string thumbprint;
    uint64_t generation = 0;
    absl::Time valid_until;  // exp + clock skew
  };

  TokenVerdict VerifyUncached(std::string_view token, absl::Time now, CacheEntry* entry);
  bool StillValid(CacheEntry& entry, absl::Time now);
  void Remember(std::string key, CacheEntry entry, absl::Time now);
  static void CheckUser(TokenVerdict& verdict, const IssuerConfig& config,
                        std::string_view startup_user);

  std::shared_ptr<const KeyStore> keys_;
  size_t cache_capacity_;
  absl::flat_hash_map<std::string, CacheEntry> cache_;  // SHA-256 of the token -> entry
  std::deque<std::string> cache_order_;                 // insertion order, for eviction
  // simdjson's parsers, kept out of this header (session code includes it).
  struct JsonParsers;
  std::unique_ptr<JsonParsers> parsers_;
};

}  // namespace pgb::policy
