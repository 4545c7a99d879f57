// The JWS compact serialization (RFC 7515) of a JWT (RFC 7519), for tokens that
// agents send as their password: strict splitting and base64url decoding under
// size caps, and signature creation and checking with OpenSSL 3 for the
// asymmetric JOSE algorithms (RFC 7518 section 3, RFC 8037). HMAC ("HS256"...)
// and "none" are not algorithms here at all, so no code path can verify with
// them (algorithm confusion: an RSA public key used as an HMAC secret).
//
// This file knows nothing of claims, issuers or keys sets: see
// policy/token_verifier.h for the whole check of a token.
//
//   PGB_ASSIGN_OR_RETURN(CompactJws jws, SplitCompactJws(token));
//   // ... parse jws.header_json, pick the key for its "alg" and "kid" ...
//   PGB_RETURN_IF_ERROR(VerifyJwsSignature(JwsAlgorithm::kES256, key,
//                                          jws.signing_input, jws.signature));
//
// No error message contains the token, a signature or key material.
#pragma once

#include <openssl/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pgb::policy {

// Caps checked before anything is decoded or allocated. The whole token first:
// a real access token is 0.5-4 KiB; 16 KiB leaves room for large group lists.
inline constexpr size_t kMaxTokenSize = 16 * 1024;
inline constexpr size_t kMaxJwsHeaderSize = 1024;  // decoded header JSON

enum class JwsAlgorithm : uint8_t {
  kRS256,  // RSASSA-PKCS1-v1_5 with SHA-2
  kRS384,
  kRS512,
  kPS256,  // RSASSA-PSS, MGF1 with the same hash, salt length = hash length
  kPS384,
  kPS512,
  kES256,  // ECDSA P-256 / SHA-256, signature r||s (32 + 32 bytes)
  kES384,  // ECDSA P-384 / SHA-384, signature r||s (48 + 48 bytes)
  kEdDSA,  // Ed25519 (RFC 8037)
};
inline constexpr JwsAlgorithm kAllJwsAlgorithms[] = {
    JwsAlgorithm::kRS256, JwsAlgorithm::kRS384, JwsAlgorithm::kRS512,
    JwsAlgorithm::kPS256, JwsAlgorithm::kPS384, JwsAlgorithm::kPS512,
    JwsAlgorithm::kES256, JwsAlgorithm::kES384, JwsAlgorithm::kEdDSA};

// The kind of key an algorithm needs (JWK "kty" and "crv").
enum class JwkKeyType : uint8_t { kRsa, kEcP256, kEcP384, kEd25519 };

// "RS256" -> kRS256. Exact, case-sensitive names; nullopt for anything else
// ("none", "HS256", "rs256", "ES512").
std::optional<JwsAlgorithm> JwsAlgorithmFromName(std::string_view name);
std::string_view JwsAlgorithmName(JwsAlgorithm alg);
JwkKeyType KeyTypeFor(JwsAlgorithm alg);
std::string_view KeyTypeName(JwkKeyType type);  // "RSA", "EC P-256", "EC P-384", "OKP Ed25519"

// RSA keys below this size are refused (RFC 7518 section 3.3: 2048 or larger).
inline constexpr int kMinRsaBits = 2048;

struct EvpPkeyDeleter {
  void operator()(EVP_PKEY* key) const;
};
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyDeleter>;

// A compact JWS split and decoded, NOT verified.
struct CompactJws {
  std::string header_json;         // decoded protected header
  std::string payload_json;        // decoded payload (the claims)
  std::string signature;           // raw signature bytes
  std::string_view signing_input;  // "<header>.<payload>" as sent: a view into the token
};

// Splits "<header>.<payload>.<signature>" and decodes each part strictly
// (base64url without padding, canonical trailing bits). Checks the token size
// (kMaxTokenSize) before anything else, then the header size. Errors
// (InvalidArgument) name the part: "token is 1048576 bytes, more than the
// 16384 allowed", "token payload is not base64url".
[[nodiscard]] absl::StatusOr<CompactJws> SplitCompactJws(std::string_view token);

// Strict base64url (RFC 4648 section 5) as JWS uses it: no padding, no
// whitespace, no other alphabet, unused bits of the last character zero.
// An error (InvalidArgument) says which rule the text breaks.
[[nodiscard]] absl::StatusOr<std::string> DecodeBase64Url(std::string_view text);
std::string EncodeBase64Url(std::string_view bytes);

// Whether `key` is a key `alg` can use: the right type and curve, RSA of at
// least kMinRsaBits. FailedPrecondition naming what was expected otherwise.
[[nodiscard]] absl::Status CheckKeyFitsAlgorithm(JwsAlgorithm alg, const EVP_PKEY* key);

// Checks a JOSE signature over `signing_input`. Unauthenticated("signature
// verification failed") when it does not verify (wrong key, altered token,
// malformed signature); FailedPrecondition when the key does not fit `alg`.
[[nodiscard]] absl::Status VerifyJwsSignature(JwsAlgorithm alg, EVP_PKEY* key,
                                              std::string_view signing_input,
                                              std::string_view signature);

// Signs with a private key; returns the raw JOSE signature (ECDSA as r||s).
// For `pgbastion token mint`, tests and benchmarks.
[[nodiscard]] absl::StatusOr<std::string> SignJws(JwsAlgorithm alg, EVP_PKEY* private_key,
                                                  std::string_view signing_input);

// The algorithm a key signs with when none is asked for: RSA -> RS256,
// P-256 -> ES256, P-384 -> ES384, Ed25519 -> EdDSA.
[[nodiscard]] absl::StatusOr<JwsAlgorithm> DefaultAlgorithmFor(const EVP_PKEY* key);

// "<b64url(header)>.<b64url(payload)>.<b64url(signature)>" signed with `key`.
[[nodiscard]] absl::StatusOr<std::string> MakeCompactJws(JwsAlgorithm alg, EVP_PKEY* private_key,
                                                         std::string_view header_json,
                                                         std::string_view payload_json);

}  // namespace pgb::policy
