#include "policy/jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "base/str_cat.h"

namespace pgb::policy {
namespace {

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
struct EcdsaSigDeleter {
  void operator()(ECDSA_SIG* sig) const { ECDSA_SIG_free(sig); }
};

const EVP_MD* DigestFor(JwsAlgorithm alg) {
  switch (alg) {
    case JwsAlgorithm::kRS256:
    case JwsAlgorithm::kPS256:
    case JwsAlgorithm::kES256:
      return EVP_sha256();
    case JwsAlgorithm::kRS384:
    case JwsAlgorithm::kPS384:
    case JwsAlgorithm::kES384:
      return EVP_sha384();
    case JwsAlgorithm::kRS512:
    case JwsAlgorithm::kPS512:
      return EVP_sha512();
    case JwsAlgorithm::kEdDSA:
      return nullptr;  // Ed25519 hashes internally (one-shot EVP_DigestVerify)
  }
  return nullptr;
}

bool IsPss(JwsAlgorithm alg) {
  return alg == JwsAlgorithm::kPS256 || alg == JwsAlgorithm::kPS384 || alg == JwsAlgorithm::kPS512;
}

// Size of r and of s in a JOSE ECDSA signature (RFC 7518 section 3.4).
size_t EcdsaHalfSize(JwsAlgorithm alg) { return alg == JwsAlgorithm::kES256 ? 32 : 48; }

bool IsEcdsa(JwsAlgorithm alg) {
  return alg == JwsAlgorithm::kES256 || alg == JwsAlgorithm::kES384;
}

// OpenSSL keeps a per-thread error queue; a failed check must not leave
// entries there for the next TLS call on this shard to misread.
absl::Status Fail(absl::Status status) {
  ERR_clear_error();
  return status;
}

std::optional<JwkKeyType> KeyTypeOf(const EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "RSA")) return JwkKeyType::kRsa;
  if (EVP_PKEY_is_a(key, "ED25519")) return JwkKeyType::kEd25519;
  if (EVP_PKEY_is_a(key, "EC")) {
    char group[64];
    size_t length = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &length) != 1) {
      ERR_clear_error();
      return std::nullopt;
    }
    const std::string_view name(group, length);
    if (name == "prime256v1" || name == "P-256") return JwkKeyType::kEcP256;
    if (name == "secp384r1" || name == "P-384") return JwkKeyType::kEcP384;
  }
  return std::nullopt;
}

// JOSE r||s -> DER ECDSA-Sig-Value, as OpenSSL verifies it.
absl::StatusOr<std::string> JoseToDer(std::string_view signature, size_t half) {
  const absl::Status malformed = absl::InvalidArgumentError("malformed ECDSA signature");
  if (signature.size() != 2 * half) return malformed;
  std::unique_ptr<ECDSA_SIG, EcdsaSigDeleter> sig(ECDSA_SIG_new());
  const auto* bytes = reinterpret_cast<const unsigned char*>(signature.data());
  BIGNUM* r = BN_bin2bn(bytes, static_cast<int>(half), nullptr);
  BIGNUM* s = BN_bin2bn(bytes + half, static_cast<int>(half), nullptr);
  if (sig == nullptr || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return malformed;
  }
  const int length = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (length <= 0) return malformed;
  std::string der(static_cast<size_t>(length), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_ECDSA_SIG(sig.get(), &out) != length) return malformed;
  return der;
}

absl::StatusOr<std::string> DerToJose(std::string_view der, size_t half) {
  const absl::Status malformed = absl::InternalError("cannot convert the ECDSA signature");
  const auto* in = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<ECDSA_SIG, EcdsaSigDeleter> sig(
      d2i_ECDSA_SIG(nullptr, &in, static_cast<long>(der.size())));
  if (sig == nullptr) return malformed;
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  std::string out(2 * half, '\0');
  auto* bytes = reinterpret_cast<unsigned char*>(out.data());
  if (BN_bn2binpad(r, bytes, static_cast<int>(half)) < 0 ||
      BN_bn2binpad(s, bytes + half, static_cast<int>(half)) < 0) {
    return malformed;
  }
  return out;
}

// Sets the RSA-PSS parameters RFC 7518 section 3.5 fixes.
bool SetPssParameters(EVP_PKEY_CTX* pctx, const EVP_MD* md) {
  return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1 &&
         EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) == 1;
}

constexpr char kBase64UrlAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<int8_t, 256> MakeDecodeTable() {
  std::array<int8_t, 256> table{};
  for (auto& v : table) v = -1;
  for (int i = 0; i < 64; ++i) table[static_cast<unsigned char>(kBase64UrlAlphabet[i])] = int8_t(i);
  return table;
}
constexpr std::array<int8_t, 256> kDecodeTable = MakeDecodeTable();

}  // namespace

void EvpPkeyDeleter::operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }

std::optional<JwsAlgorithm> JwsAlgorithmFromName(std::string_view name) {
  for (JwsAlgorithm alg : kAllJwsAlgorithms) {
    if (JwsAlgorithmName(alg) == name) return alg;
  }
  return std::nullopt;
}

std::string_view JwsAlgorithmName(JwsAlgorithm alg) {
  switch (alg) {
    case JwsAlgorithm::kRS256:
      return "RS256";
    case JwsAlgorithm::kRS384:
      return "RS384";
    case JwsAlgorithm::kRS512:
      return "RS512";
    case JwsAlgorithm::kPS256:
      return "PS256";
    case JwsAlgorithm::kPS384:
      return "PS384";
    case JwsAlgorithm::kPS512:
      return "PS512";
    case JwsAlgorithm::kES256:
      return "ES256";
    case JwsAlgorithm::kES384:
      return "ES384";
    case JwsAlgorithm::kEdDSA:
      return "EdDSA";
  }
  return "?";
}

JwkKeyType KeyTypeFor(JwsAlgorithm alg) {
  switch (alg) {
    case JwsAlgorithm::kES256:
      return JwkKeyType::kEcP256;
    case JwsAlgorithm::kES384:
      return JwkKeyType::kEcP384;
    case JwsAlgorithm::kEdDSA:
      return JwkKeyType::kEd25519;
    default:
      return JwkKeyType::kRsa;
  }
}

std::string_view KeyTypeName(JwkKeyType type) {
  switch (type) {
    case JwkKeyType::kRsa:
      return "RSA";
    case JwkKeyType::kEcP256:
      return "EC P-256";
    case JwkKeyType::kEcP384:
      return "EC P-384";
    case JwkKeyType::kEd25519:
      return "OKP Ed25519";
  }
  return "?";
}

absl::StatusOr<std::string> DecodeBase64Url(std::string_view text) {
  if (text.size() % 4 == 1) {
    return absl::InvalidArgumentError("not base64url: a length of 4n+1 holds no whole byte");
  }
  std::string out;
  // The spare capacity lets simdjson parse the decoded JSON in place (it
  // needs SIMDJSON_PADDING, 64, readable bytes past the end).
  out.reserve(text.size() / 4 * 3 + 3 + 64);
  uint32_t accumulator = 0;
  int bits = 0;
  for (char c : text) {
    const int8_t value = kDecodeTable[static_cast<unsigned char>(c)];
    if (value < 0) return absl::InvalidArgumentError("not base64url: a character outside it");
    accumulator = (accumulator << 6) | static_cast<uint32_t>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((accumulator >> bits) & 0xff));
    }
  }
  // Leftover bits must be zero, so every byte string has exactly one encoding
  // (a token cannot be altered into a different text with the same bytes).
  if ((accumulator & ((1u << bits) - 1)) != 0) {
    return absl::InvalidArgumentError("not base64url: unused bits are not zero");
  }
  return out;
}

std::string EncodeBase64Url(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  uint32_t accumulator = 0;
  int bits = 0;
  for (char c : bytes) {
    accumulator = (accumulator << 8) | static_cast<unsigned char>(c);
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kBase64UrlAlphabet[(accumulator >> bits) & 0x3f]);
    }
  }
  if (bits > 0) out.push_back(kBase64UrlAlphabet[(accumulator << (6 - bits)) & 0x3f]);
  return out;
}

absl::StatusOr<CompactJws> SplitCompactJws(std::string_view token) {
  if (token.size() > kMaxTokenSize) {
    return absl::InvalidArgumentError(
        Cat("token is ", token.size(), " bytes, more than the ", kMaxTokenSize, " allowed"));
  }
  if (token.empty()) return absl::InvalidArgumentError("token is empty");
  const size_t first = token.find('.');
  const size_t second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) {
    return absl::InvalidArgumentError(
        "token is not a compact JWS (three base64url parts separated by '.')");
  }
  const std::string_view header = token.substr(0, first);
  const std::string_view payload = token.substr(first + 1, second - first - 1);
  const std::string_view signature = token.substr(second + 1);
  if (header.size() / 4 * 3 > kMaxJwsHeaderSize) {
    return absl::InvalidArgumentError(
        Cat("token header is larger than ", kMaxJwsHeaderSize, " bytes"));
  }
  CompactJws jws;
  absl::StatusOr<std::string> decoded = DecodeBase64Url(header);
  if (!decoded.ok() || decoded->empty()) {
    return absl::InvalidArgumentError("token header is not base64url");
  }
  jws.header_json = std::move(*decoded);
  decoded = DecodeBase64Url(payload);
  if (!decoded.ok() || decoded->empty()) {
    return absl::InvalidArgumentError("token payload is not base64url");
  }
  jws.payload_json = std::move(*decoded);
  decoded = DecodeBase64Url(signature);
  if (!decoded.ok()) return absl::InvalidArgumentError("token signature is not base64url");
  if (decoded->empty()) return absl::InvalidArgumentError("token has no signature");
  jws.signature = std::move(*decoded);
  jws.signing_input = token.substr(0, second);
  return jws;
}

absl::Status CheckKeyFitsAlgorithm(JwsAlgorithm alg, const EVP_PKEY* key) {
  const JwkKeyType wanted = KeyTypeFor(alg);
  const std::optional<JwkKeyType> actual = KeyTypeOf(key);
  if (actual != wanted) {
    return absl::FailedPreconditionError(
        Cat(JwsAlgorithmName(alg), " needs an ", KeyTypeName(wanted), " key, the key is ",
            actual.has_value() ? KeyTypeName(*actual) : "of an unsupported type"));
  }
  if (wanted == JwkKeyType::kRsa && EVP_PKEY_get_bits(key) < kMinRsaBits) {
    return absl::FailedPreconditionError(Cat("RSA key of ", EVP_PKEY_get_bits(key),
                                             " bits; at least ", kMinRsaBits, " are required"));
  }
  return absl::OkStatus();
}

absl::Status VerifyJwsSignature(JwsAlgorithm alg, EVP_PKEY* key, std::string_view signing_input,
                                std::string_view signature) {
  if (absl::Status fits = CheckKeyFitsAlgorithm(alg, key); !fits.ok()) return fits;
  const absl::Status failed = absl::UnauthenticatedError("signature verification failed");
  std::string der;
  if (IsEcdsa(alg)) {
    absl::StatusOr<std::string> converted = JoseToDer(signature, EcdsaHalfSize(alg));
    if (!converted.ok()) return Fail(failed);
    der = std::move(*converted);
    signature = der;
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  const EVP_MD* md = DigestFor(alg);
  if (ctx == nullptr || EVP_DigestVerifyInit(ctx.get(), &pctx, md, nullptr, key) != 1) {
    return Fail(absl::InternalError("cannot initialise signature verification"));
  }
  if (IsPss(alg) && !SetPssParameters(pctx, md)) {
    return Fail(absl::InternalError("cannot set RSA-PSS parameters"));
  }
  const int ok = EVP_DigestVerify(
      ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
      reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size());
  if (ok != 1) return Fail(failed);
  return absl::OkStatus();
}

absl::StatusOr<std::string> SignJws(JwsAlgorithm alg, EVP_PKEY* private_key,
                                    std::string_view signing_input) {
  if (absl::Status fits = CheckKeyFitsAlgorithm(alg, private_key); !fits.ok()) return fits;
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  const EVP_MD* md = DigestFor(alg);
  if (ctx == nullptr || EVP_DigestSignInit(ctx.get(), &pctx, md, nullptr, private_key) != 1) {
    return Fail(absl::InvalidArgumentError("cannot sign with this key (is it a private key?)"));
  }
  if (IsPss(alg) && !SetPssParameters(pctx, md)) {
    return Fail(absl::InternalError("cannot set RSA-PSS parameters"));
  }
  const auto* input = reinterpret_cast<const unsigned char*>(signing_input.data());
  size_t length = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &length, input, signing_input.size()) != 1) {
    return Fail(absl::InternalError("signing failed"));
  }
  std::string signature(length, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length, input,
                     signing_input.size()) != 1) {
    return Fail(absl::InternalError("signing failed"));
  }
  signature.resize(length);
  if (IsEcdsa(alg)) {
    absl::StatusOr<std::string> jose = DerToJose(signature, EcdsaHalfSize(alg));
    if (!jose.ok()) return Fail(jose.status());
    return *std::move(jose);
  }
  return signature;
}

absl::StatusOr<JwsAlgorithm> DefaultAlgorithmFor(const EVP_PKEY* key) {
  const std::optional<JwkKeyType> type = KeyTypeOf(key);
  if (!type.has_value()) {
    return absl::InvalidArgumentError(
        "unsupported key type (RSA, EC P-256, EC P-384 or Ed25519 are supported)");
  }
  switch (*type) {
    case JwkKeyType::kRsa:
      return JwsAlgorithm::kRS256;
    case JwkKeyType::kEcP256:
      return JwsAlgorithm::kES256;
    case JwkKeyType::kEcP384:
      return JwsAlgorithm::kES384;
    case JwkKeyType::kEd25519:
      return JwsAlgorithm::kEdDSA;
  }
  return absl::InternalError("unreachable");
}

absl::StatusOr<std::string> MakeCompactJws(JwsAlgorithm alg, EVP_PKEY* private_key,
                                           std::string_view header_json,
                                           std::string_view payload_json) {
  std::string token = EncodeBase64Url(header_json);
  token += '.';
  token += EncodeBase64Url(payload_json);
  absl::StatusOr<std::string> signature = SignJws(alg, private_key, token);
  if (!signature.ok()) return signature.status();
  token += '.';
  token += EncodeBase64Url(*signature);
  return token;
}

}  // namespace pgb::policy
