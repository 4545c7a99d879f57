#include "policy/jwks.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <string>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "base/json_text.h"
#include "base/str_cat.h"
#include "policy/internal/json_object.h"

namespace pgb::policy {
namespace {

using internal::GetString;
using internal::HasMember;

struct BnDeleter {
  void operator()(BIGNUM* bn) const { BN_free(bn); }
};
using BnPtr = std::unique_ptr<BIGNUM, BnDeleter>;
struct ParamBldDeleter {
  void operator()(OSSL_PARAM_BLD* bld) const { OSSL_PARAM_BLD_free(bld); }
};
struct ParamDeleter {
  void operator()(OSSL_PARAM* params) const { OSSL_PARAM_free(params); }
};
struct PkeyCtxDeleter {
  void operator()(EVP_PKEY_CTX* ctx) const { EVP_PKEY_CTX_free(ctx); }
};

// The base64url members RFC 7638 hashes, from the key itself (so a thumbprint
// does not depend on how a document happened to encode the numbers).
struct JwkMembers {
  std::string kty, crv, n, e, x, y;
};

std::string BnBytes(const BIGNUM* bn, int pad) {
  std::string out(static_cast<size_t>(pad > 0 ? pad : BN_num_bytes(bn)), '\0');
  auto* bytes = reinterpret_cast<unsigned char*>(out.data());
  if (pad > 0) {
    BN_bn2binpad(bn, bytes, pad);
  } else {
    BN_bn2bin(bn, bytes);
  }
  return out;
}

absl::StatusOr<JwkMembers> MembersOf(const EVP_PKEY* key) {
  absl::StatusOr<JwsAlgorithm> alg = DefaultAlgorithmFor(key);
  if (!alg.ok()) return alg.status();
  JwkMembers members;
  const JwkKeyType type = KeyTypeFor(*alg);
  if (type == JwkKeyType::kRsa) {
    BIGNUM* n = nullptr;
    BIGNUM* e = nullptr;
    const bool got = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n) == 1 &&
                     EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e) == 1;
    BnPtr n_owner(n), e_owner(e);
    if (!got) {
      ERR_clear_error();
      return absl::InternalError("cannot read the RSA key's modulus and exponent");
    }
    members.kty = "RSA";
    members.n = EncodeBase64Url(BnBytes(n, 0));
    members.e = EncodeBase64Url(BnBytes(e, 0));
  } else if (type == JwkKeyType::kEd25519) {
    unsigned char raw[32];
    size_t length = sizeof(raw);
    if (EVP_PKEY_get_raw_public_key(key, raw, &length) != 1 || length != sizeof(raw)) {
      ERR_clear_error();
      return absl::InternalError("cannot read the Ed25519 public key");
    }
    members.kty = "OKP";
    members.crv = "Ed25519";
    members.x = EncodeBase64Url(std::string_view(reinterpret_cast<const char*>(raw), length));
  } else {
    const int size = type == JwkKeyType::kEcP256 ? 32 : 48;
    BIGNUM* x = nullptr;
    BIGNUM* y = nullptr;
    const bool got = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x) == 1 &&
                     EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y) == 1;
    BnPtr x_owner(x), y_owner(y);
    if (!got) {
      ERR_clear_error();
      return absl::InternalError("cannot read the EC public point");
    }
    members.kty = "EC";
    members.crv = type == JwkKeyType::kEcP256 ? "P-256" : "P-384";
    members.x = EncodeBase64Url(BnBytes(x, size));
    members.y = EncodeBase64Url(BnBytes(y, size));
  }
  return members;
}

// RFC 7638 section 3.2: the required members only, in lexicographic order.
std::string ThumbprintInput(const JwkMembers& m) {
  if (m.kty == "RSA") return Cat("{\"e\":\"", m.e, "\",\"kty\":\"RSA\",\"n\":\"", m.n, "\"}");
  if (m.kty == "OKP") return Cat("{\"crv\":\"", m.crv, "\",\"kty\":\"OKP\",\"x\":\"", m.x, "\"}");
  return Cat("{\"crv\":\"", m.crv, "\",\"kty\":\"EC\",\"x\":\"", m.x, "\",\"y\":\"", m.y, "\"}");
}

std::string Sha256Base64Url(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr);
  return EncodeBase64Url(std::string_view(reinterpret_cast<const char*>(digest), length));
}

// A key of the set being parsed: either usable, skipped with a reason, or an
// error that rejects the set.
struct KeyOutcome {
  std::optional<PublicJwk> key;
  std::string skipped;  // non-empty: ignored, and why
};

class JwkParser {
 public:
  JwkParser(simdjson::dom::object object, std::string where)
      : object_(object), where_(std::move(where)) {}

  absl::StatusOr<KeyOutcome> Parse() {
    if (internal::HasDuplicateMember(object_)) return Error("has a duplicate member");
    std::string_view kty;
    if (!GetString(object_, "kty", &kty)) return Error("member \"kty\" is missing or not a string");
    std::string_view use;
    if (HasMember(object_, "use")) {
      if (!GetString(object_, "use", &use)) return Error("member \"use\" is not a string");
      if (use != "sig") return Skip(Cat("\"use\" is \"", use, "\", not \"sig\""));
    }
    if (HasMember(object_, "key_ops")) {
      simdjson::dom::array ops;
      if (object_["key_ops"].get_array().get(ops) != simdjson::SUCCESS) {
        return Error("member \"key_ops\" is not an array");
      }
      bool verify = false;
      for (simdjson::dom::element op : ops) {
        std::string_view name;
        if (op.get_string().get(name) == simdjson::SUCCESS && name == "verify") verify = true;
      }
      if (!verify) return Skip("\"key_ops\" does not include \"verify\"");
    }
    std::optional<JwsAlgorithm> alg;
    if (HasMember(object_, "alg")) {
      std::string_view name;
      if (!GetString(object_, "alg", &name)) return Error("member \"alg\" is not a string");
      alg = JwsAlgorithmFromName(name);
      if (!alg.has_value()) return Skip(Cat("algorithm \"", name, "\" is not supported"));
    }

    absl::StatusOr<EvpPkeyPtr> key;
    if (kty == "RSA") {
      key = RsaKey();
    } else if (kty == "EC") {
      std::string_view crv;
      if (!GetString(object_, "crv", &crv)) return Error("member \"crv\" is missing");
      if (crv != "P-256" && crv != "P-384") {
        return Skip(Cat("curve \"", crv, "\" is not supported"));
      }
      key = EcKey(crv == "P-256" ? 32 : 48, crv == "P-256" ? "prime256v1" : "secp384r1");
    } else if (kty == "OKP") {
      std::string_view crv;
      if (!GetString(object_, "crv", &crv)) return Error("member \"crv\" is missing");
      if (crv != "Ed25519") return Skip(Cat("curve \"", crv, "\" is not supported"));
      key = Ed25519Key();
    } else if (kty == "oct") {
      return Skip("symmetric (\"oct\") keys are never used");
    } else {
      return Skip(Cat("key type \"", kty, "\" is not supported"));
    }
    if (!key.ok()) return key.status();

    absl::StatusOr<JwsAlgorithm> natural = DefaultAlgorithmFor(key->get());
    if (!natural.ok()) return Error("has an unsupported key");
    PublicJwk jwk;
    jwk.type = KeyTypeFor(*natural);
    if (alg.has_value()) {
      if (KeyTypeFor(*alg) != jwk.type) {
        return Error(Cat("\"alg\" ", JwsAlgorithmName(*alg), " does not fit a ",
                         KeyTypeName(jwk.type), " key"));
      }
    }
    if (jwk.type == JwkKeyType::kRsa && EVP_PKEY_get_bits(key->get()) < kMinRsaBits) {
      return Skip(Cat("RSA key of ", EVP_PKEY_get_bits(key->get()), " bits (at least ", kMinRsaBits,
                      " required)"));
    }
    absl::StatusOr<JwkMembers> members = MembersOf(key->get());
    if (!members.ok()) return members.status();
    jwk.thumbprint = Sha256Base64Url(ThumbprintInput(*members));
    jwk.alg = alg;
    jwk.key = std::shared_ptr<EVP_PKEY>(key->release(), EvpPkeyDeleter());
    KeyOutcome outcome;
    outcome.key = std::move(jwk);
    return outcome;
  }

 private:
  absl::Status Error(std::string_view problem) const {
    return absl::InvalidArgumentError(Cat(where_, ": ", problem));
  }
  KeyOutcome Skip(std::string why) const {
    return KeyOutcome{std::nullopt, Cat(where_, ": ", why)};
  }

  // A required base64url member, decoded.
  absl::StatusOr<std::string> Bytes(std::string_view name) const {
    std::string_view text;
    if (!GetString(object_, name, &text)) {
      return Error(Cat("member \"", name, "\" is missing or not a string"));
    }
    absl::StatusOr<std::string> bytes = DecodeBase64Url(text);
    if (!bytes.ok() || bytes->empty()) {
      return Error(Cat("member \"", name, "\" is not base64url"));
    }
    return *std::move(bytes);
  }

  absl::StatusOr<EvpPkeyPtr> FromParams(const char* type, OSSL_PARAM_BLD* bld) const {
    std::unique_ptr<OSSL_PARAM, ParamDeleter> params(OSSL_PARAM_BLD_to_param(bld));
    std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter> ctx(
        EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
    EVP_PKEY* raw = nullptr;
    if (params == nullptr || ctx == nullptr || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
      ERR_clear_error();
      return Error("is not a valid public key");
    }
    EvpPkeyPtr key(raw);
    // fromdata decodes an EC point onto its curve; check the key as a whole
    // anyway (an off-curve point would make ECDSA unsound).
    std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter> check(
        EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
    if (check == nullptr || EVP_PKEY_public_check(check.get()) != 1) {
      ERR_clear_error();
      return Error("is not a valid public key");
    }
    return key;
  }

  absl::StatusOr<EvpPkeyPtr> RsaKey() const {
    absl::StatusOr<std::string> n = Bytes("n");
    if (!n.ok()) return n.status();
    absl::StatusOr<std::string> e = Bytes("e");
    if (!e.ok()) return e.status();
    if (n->size() > 2048 || e->size() > 8) return Error("RSA modulus or exponent is too large");
    BnPtr n_bn(BN_bin2bn(reinterpret_cast<const unsigned char*>(n->data()),
                         static_cast<int>(n->size()), nullptr));
    BnPtr e_bn(BN_bin2bn(reinterpret_cast<const unsigned char*>(e->data()),
                         static_cast<int>(e->size()), nullptr));
    std::unique_ptr<OSSL_PARAM_BLD, ParamBldDeleter> bld(OSSL_PARAM_BLD_new());
    if (n_bn == nullptr || e_bn == nullptr || bld == nullptr ||
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n_bn.get()) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e_bn.get()) != 1) {
      ERR_clear_error();
      return absl::InternalError("out of memory building an RSA key");
    }
    return FromParams("RSA", bld.get());
  }

  absl::StatusOr<EvpPkeyPtr> EcKey(size_t size, const char* group) const {
    absl::StatusOr<std::string> x = Bytes("x");
    if (!x.ok()) return x.status();
    absl::StatusOr<std::string> y = Bytes("y");
    if (!y.ok()) return y.status();
    if (x->size() != size || y->size() != size) {
      return Error(Cat("coordinates must be ", size, " bytes each"));
    }
    std::string point = Cat("\x04", *x, *y);  // SEC 1 uncompressed point
    std::unique_ptr<OSSL_PARAM_BLD, ParamBldDeleter> bld(OSSL_PARAM_BLD_new());
    if (bld == nullptr ||
        OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                         point.size()) != 1) {
      ERR_clear_error();
      return absl::InternalError("out of memory building an EC key");
    }
    return FromParams("EC", bld.get());
  }

  absl::StatusOr<EvpPkeyPtr> Ed25519Key() const {
    absl::StatusOr<std::string> x = Bytes("x");
    if (!x.ok()) return x.status();
    if (x->size() != 32) return Error("Ed25519 key \"x\" must be 32 bytes");
    EVP_PKEY* raw = EVP_PKEY_new_raw_public_key(
        EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(x->data()), x->size());
    if (raw == nullptr) {
      ERR_clear_error();
      return Error("is not a valid public key");
    }
    return EvpPkeyPtr(raw);
  }

  simdjson::dom::object object_;
  std::string where_;
};

}  // namespace

const PublicJwk* KeySet::FindByKid(std::string_view kid) const {
  for (const PublicJwk& key : keys) {
    if (key.kid == kid) return &key;
  }
  return nullptr;
}

std::vector<const PublicJwk*> KeySet::KeysFor(JwsAlgorithm alg) const {
  std::vector<const PublicJwk*> out;
  for (const PublicJwk& key : keys) {
    if (key.type == KeyTypeFor(alg) && (!key.alg.has_value() || *key.alg == alg)) {
      out.push_back(&key);
    }
  }
  return out;
}

absl::StatusOr<KeySet> ParseJwks(std::string_view json) {
  if (json.size() > kMaxJwksSize) {
    return absl::InvalidArgumentError(
        Cat("key set is ", json.size(), " bytes, more than the ", kMaxJwksSize, " allowed"));
  }
  simdjson::dom::parser parser;
  simdjson::dom::element document;
  if (parser.parse(json.data(), json.size()).get(document) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("key set is not valid JSON");
  }
  simdjson::dom::object root;
  simdjson::dom::array keys;
  if (document.get_object().get(root) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("key set is not a JSON object");
  }
  if (root["keys"].get_array().get(keys) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("key set has no \"keys\" array");
  }
  if (keys.size() > kMaxJwksKeys) {
    return absl::InvalidArgumentError(
        Cat("key set has ", keys.size(), " keys, more than the ", kMaxJwksKeys, " allowed"));
  }
  KeySet set;
  absl::flat_hash_set<std::string> kids;
  size_t index = 0;
  for (simdjson::dom::element element : keys) {
    std::string where = Cat("keys[", index++, "]");
    simdjson::dom::object object;
    if (element.get_object().get(object) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError(where + ": not a JSON object");
    }
    std::string_view kid;
    if (HasMember(object, "kid")) {
      if (!GetString(object, "kid", &kid)) {
        return absl::InvalidArgumentError(where + ": member \"kid\" is not a string");
      }
      Append(where, " (kid ", JsonString(kid), ")");
    }
    absl::StatusOr<KeyOutcome> outcome = JwkParser(object, where).Parse();
    if (!outcome.ok()) return outcome.status();
    if (!outcome->key.has_value()) {
      set.skipped.push_back(std::move(outcome->skipped));
      continue;
    }
    if (!kids.insert(std::string(kid)).second) {
      return absl::InvalidArgumentError(where + (kid.empty()
                                                     ? ": more than one usable key without a kid"
                                                     : ": kid is used by more than one key"));
    }
    outcome->key->kid = std::string(kid);
    set.keys.push_back(*std::move(outcome->key));
  }
  return set;
}

absl::StatusOr<std::string> PublicJwkJson(const EVP_PKEY* key, std::string_view kid,
                                          std::optional<JwsAlgorithm> alg) {
  absl::StatusOr<JwkMembers> m = MembersOf(key);
  if (!m.ok()) return m.status();
  std::string out = Cat("{\"kty\":\"", m->kty, "\"");
  if (!m->crv.empty()) Append(out, ",\"crv\":\"", m->crv, "\"");
  if (m->kty == "RSA") Append(out, ",\"n\":\"", m->n, "\",\"e\":\"", m->e, "\"");
  if (!m->x.empty()) Append(out, ",\"x\":\"", m->x, "\"");
  if (!m->y.empty()) Append(out, ",\"y\":\"", m->y, "\"");
  out += ",\"use\":\"sig\"";
  if (alg.has_value()) Append(out, ",\"alg\":\"", JwsAlgorithmName(*alg), "\"");
  if (!kid.empty()) out += ",\"kid\":" + JsonString(kid);
  out += "}";
  return out;
}

absl::StatusOr<std::string> JwkThumbprint(const EVP_PKEY* key) {
  absl::StatusOr<JwkMembers> m = MembersOf(key);
  if (!m.ok()) return m.status();
  return Sha256Base64Url(ThumbprintInput(*m));
}

}  // namespace pgb::policy
