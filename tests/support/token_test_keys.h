// Test keys and token minting shared by the token tests and benchmarks: one
// key per supported type (generated once per process), JWKS documents for
// them, and MintToken, which signs arbitrary header and claims JSON.
//
//   const TestKey& key = TestKeys().rsa;
//   std::string token = MintToken(JwsAlgorithm::kRS256, key, R"({"sub":"a",...})");
#pragma once

#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "policy/jwks.h"
#include "policy/jwt.h"

namespace pgb::policy::testing {

struct TestKey {
  std::string kid;
  EvpPkeyPtr key;  // private key
};

inline EvpPkeyPtr GenerateKey(const char* type, const char* param) {
  EVP_PKEY* key = nullptr;
  if (std::string_view(type) == "RSA") {
    key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048});
  } else if (std::string_view(type) == "EC") {
    key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", param);
  } else {
    key = EVP_PKEY_Q_keygen(nullptr, nullptr, type);
  }
  if (key == nullptr) {
    std::fprintf(stderr, "cannot generate a %s test key\n", type);
    std::abort();
  }
  return EvpPkeyPtr(key);
}

struct TestKeySet {
  TestKey rsa{"rsa-1", GenerateKey("RSA", nullptr)};
  TestKey rsa_other{"rsa-1", GenerateKey("RSA", nullptr)};  // same kid, other key
  TestKey ec256{"ec-256", GenerateKey("EC", "P-256")};
  TestKey ec384{"ec-384", GenerateKey("EC", "P-384")};
  TestKey ed25519{"ed-1", GenerateKey("ED25519", nullptr)};
};

inline const TestKeySet& TestKeys() {
  static const TestKeySet* keys = new TestKeySet();
  return *keys;
}

// {"keys":[...]} with the public half of each key.
inline std::string JwksOf(const std::vector<const TestKey*>& keys) {
  std::string out = "{\"keys\":[";
  for (size_t i = 0; i < keys.size(); ++i) {
    if (i > 0) out += ",";
    out += *PublicJwkJson(keys[i]->key.get(), keys[i]->kid, std::nullopt);
  }
  return out + "]}";
}

// A compact JWS of `claims_json` with header {"alg":...,"typ":"JWT","kid":...}
// (no "kid" when kid is empty).
inline std::string MintToken(JwsAlgorithm alg, const TestKey& key, std::string_view claims_json,
                             std::string_view kid_override = "\x01") {
  const std::string kid = kid_override == "\x01" ? key.kid : std::string(kid_override);
  std::string header = "{\"alg\":\"" + std::string(JwsAlgorithmName(alg)) + "\",\"typ\":\"JWT\"";
  if (!kid.empty()) header += ",\"kid\":\"" + kid + "\"";
  header += "}";
  absl::StatusOr<std::string> token = MakeCompactJws(alg, key.key.get(), header, claims_json);
  if (!token.ok()) {
    std::fprintf(stderr, "MintToken: %s\n", std::string(token.status().message()).c_str());
    std::abort();
  }
  return *token;
}

}  // namespace pgb::policy::testing
