// Fuzzes what an agent controls at login: the token it sends as its password
// (policy/token_verifier.h), and what a provider controls: the JWKS document
// (policy/jwks.h). The first input byte picks which.
//
// Invariants: nothing crashes or leaks; a token is never accepted (the
// verifier's only key is generated at start-up, so no input can carry a valid
// signature: an accepted token would be a forgery); a refusal never quotes more
// than 64 bytes of the input; a JWKS the parser accepts has only keys that fit
// their declared type.
#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>

#include "absl/time/clock.h"
#include "policy/jwks.h"
#include "policy/token_verifier.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace pgb::policy;

std::shared_ptr<KeyStore> MakeStore() {
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  FUZZ_CHECK(key != nullptr);
  const std::string path =
      (std::filesystem::temp_directory_path() / "pgb_token_fuzzer_jwks.json").string();
  std::ofstream(path) << "{\"keys\":[" << *PublicJwkJson(key.get(), "fuzz", std::nullopt) << "]}";
  IssuerConfig config;
  config.name = "fuzz";
  config.issuer = "https://idp.fuzz";
  config.audiences = {"pgbastion"};
  config.key_source = KeySource::kJwksFile;
  config.jwks_file = path;
  config.algorithms.assign(std::begin(kAllJwsAlgorithms), std::end(kAllJwsAlgorithms));
  config.claims.groups_claim = "realm_access.roles";
  config.claims.keep_claims = {"repo"};
  auto store = std::make_shared<KeyStore>(std::vector<IssuerConfig>{config}, nullptr);
  FUZZ_CHECK(store->Refresh(0, absl::Now()).ok());
  std::filesystem::remove(path);
  return store;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::shared_ptr<KeyStore> store = MakeStore();
  static TokenVerifier verifier(store, 64);
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    const TokenVerdict verdict = verifier.Verify(input, "agent", absl::FromUnixSeconds(1795860000));
    FUZZ_CHECK(!verdict.ok());
    if (input.size() > 64) FUZZ_CHECK(verdict.refusal->reason.find(input) == std::string::npos);
  } else {
    absl::StatusOr<KeySet> set = ParseJwks(input);
    if (set.ok()) {
      for (const PublicJwk& key : set->keys) {
        FUZZ_CHECK(key.key != nullptr);
        FUZZ_CHECK(!key.alg.has_value() || KeyTypeFor(*key.alg) == key.type);
      }
    }
  }
  return 0;
}
