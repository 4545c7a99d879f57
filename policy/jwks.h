// JSON Web Key Sets (RFC 7517) as identity providers publish them: the public
// keys tokens are verified with. ParseJwks turns the document into OpenSSL
// keys, keyed by "kid": RSA (n, e), EC P-256 / P-384 (x, y) and OKP Ed25519
// (x). Keys the gateway never verifies with are skipped with a reason (a
// "use" other than "sig", symmetric "oct" keys, other curves, RSA under 2048
// bits); a key that claims to be usable but is malformed (a member missing or
// not base64url, a point off its curve, an "alg" that does not fit its type)
// rejects the whole set, so a half-read set never replaces a good one.
//
//   PGB_ASSIGN_OR_RETURN(KeySet set, ParseJwks(document));
//   if (const PublicJwk* key = set.FindByKid(kid)) { ... key->key.get() ... }
//
// A KeySet is immutable once built and shared between threads (OpenSSL 3
// keys may be used for verification concurrently).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "policy/jwt.h"

namespace pgb::policy {

// Caps on a key set document: real ones are a few KiB with 1-5 keys.
inline constexpr size_t kMaxJwksSize = 256 * 1024;
inline constexpr size_t kMaxJwksKeys = 64;

struct PublicJwk {
  std::string kid;  // empty when the key has none
  JwkKeyType type = JwkKeyType::kRsa;
  std::optional<JwsAlgorithm> alg;  // the key's own "alg", when it names one
  std::shared_ptr<EVP_PKEY> key;    // public key, never null
  // RFC 7638 SHA-256 thumbprint (base64url): names the key material itself, so
  // a key replaced under the same kid is a different key.
  std::string thumbprint;
};

struct KeySet {
  std::vector<PublicJwk> keys;
  std::vector<std::string> skipped;  // one line per ignored key, for the log

  const PublicJwk* FindByKid(std::string_view kid) const;
  // The keys an algorithm could use (type and curve fit, "alg" absent or equal).
  std::vector<const PublicJwk*> KeysFor(JwsAlgorithm alg) const;
};

// Parses a JWKS document ({"keys":[...]}). Errors (InvalidArgument) name the
// key by position and kid: `keys[1] (kid "a1"): member "n" is not base64url`.
[[nodiscard]] absl::StatusOr<KeySet> ParseJwks(std::string_view json);

// The public JWK of a key (private or public) as a JSON object, with "kid",
// "use":"sig" and, when given, "alg". For `pgbastion token jwks`.
[[nodiscard]] absl::StatusOr<std::string> PublicJwkJson(const EVP_PKEY* key, std::string_view kid,
                                                        std::optional<JwsAlgorithm> alg);

// The RFC 7638 thumbprint of a key, base64url: a stable default kid.
[[nodiscard]] absl::StatusOr<std::string> JwkThumbprint(const EVP_PKEY* key);

}  // namespace pgb::policy
