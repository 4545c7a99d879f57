// Token verification cost: the whole check per algorithm (cache off), a cache
// hit (what a reconnect storm pays), and the claims-to-identity mapping alone.
//
//   ninja -C build token_benchmark && build/bench/token_benchmark
#include <benchmark/benchmark.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "base/str_cat.h"
#include "policy/claims_mapping.h"
#include "policy/token_verifier.h"
#include "tests/support/token_test_keys.h"

namespace pgb::policy {
namespace {

using testing::TestKey;
using testing::TestKeys;

struct Fixture {
  Fixture() {
    const auto& k = TestKeys();
    path = std::filesystem::temp_directory_path() / "pgb_token_benchmark_jwks.json";
    std::ofstream(path) << testing::JwksOf({&k.rsa, &k.ec256, &k.ec384, &k.ed25519});
    IssuerConfig config;
    config.name = "bench";
    config.issuer = "https://idp.bench";
    config.audiences = {"pgbastion"};
    config.key_source = KeySource::kJwksFile;
    config.jwks_file = path.string();
    config.algorithms.assign(std::begin(kAllJwsAlgorithms), std::end(kAllJwsAlgorithms));
    config.claims.groups_claim = "realm_access.roles";
    config.claims.run_id_claim = "run_id";
    config.claims.keep_claims = {"repo"};
    store = std::make_shared<KeyStore>(std::vector<IssuerConfig>{config}, nullptr);
    if (!store->Refresh(0, absl::Now()).ok()) std::abort();
    std::filesystem::remove(path);
  }

  // A realistic access token: ~700 bytes of claims.
  static std::string Claims() {
    const int64_t now = absl::ToUnixSeconds(absl::Now());
    return Cat(
        R"({"iss":"https://idp.bench","aud":["pgbastion","account"],"sub":"ci-bot-7",)"
        R"("exp":)",
        now + 3600, R"(,"iat":)", now, R"(,"nbf":)", now,
        R"(,"jti":"8f2b4a3c-1d2e-4f5a-9b8c-7d6e5f4a3b2c","azp":"ci-runner","scope":"openid db",)"
        R"("realm_access":{"roles":["read-only","ci","offline_access","uma_authorization"]},)"
        R"("resource_access":{"account":{"roles":["manage-account","view-profile"]}},)"
        R"("run_id":"run-20261128-0042","repo":"org/app","preferred_username":"ci-bot-7",)"
        R"("email_verified":false,"client_host":"10.0.0.7","session_state":"x"})");
  }

  std::filesystem::path path;
  std::shared_ptr<KeyStore> store;
};

Fixture& GetFixture() {
  static Fixture* fixture = new Fixture();
  return *fixture;
}

const TestKey& KeyFor(JwsAlgorithm alg) {
  switch (KeyTypeFor(alg)) {
    case JwkKeyType::kRsa:
      return TestKeys().rsa;
    case JwkKeyType::kEcP256:
      return TestKeys().ec256;
    case JwkKeyType::kEcP384:
      return TestKeys().ec384;
    case JwkKeyType::kEd25519:
      return TestKeys().ed25519;
  }
  std::abort();
}

void BM_VerifyUncached(benchmark::State& state) {
  const auto alg = static_cast<JwsAlgorithm>(state.range(0));
  state.SetLabel(std::string(JwsAlgorithmName(alg)));
  TokenVerifier verifier(GetFixture().store, /*cache_capacity=*/0);
  const std::string token = testing::MintToken(alg, KeyFor(alg), Fixture::Claims());
  const absl::Time now = absl::Now();
  for (auto _ : state) {
    TokenVerdict verdict = verifier.Verify(token, "ci-bot-7", now);
    if (!verdict.ok()) state.SkipWithError(verdict.refusal->reason.c_str());
    benchmark::DoNotOptimize(verdict);
  }
}
BENCHMARK(BM_VerifyUncached)->DenseRange(0, std::size(kAllJwsAlgorithms) - 1);

void BM_VerifyCacheHit(benchmark::State& state) {
  TokenVerifier verifier(GetFixture().store);
  const std::string token =
      testing::MintToken(JwsAlgorithm::kRS256, TestKeys().rsa, Fixture::Claims());
  const absl::Time now = absl::Now();
  if (!verifier.Verify(token, "ci-bot-7", now).ok()) std::abort();
  for (auto _ : state) {
    TokenVerdict verdict = verifier.Verify(token, "ci-bot-7", now);
    if (!verdict.cache_hit) state.SkipWithError("not a cache hit");
    benchmark::DoNotOptimize(verdict);
  }
}
BENCHMARK(BM_VerifyCacheHit);

void BM_MapClaims(benchmark::State& state) {
  ClaimMapping mapping;
  mapping.groups_claim = "realm_access.roles";
  mapping.run_id_claim = "run_id";
  mapping.keep_claims = {"repo"};
  const std::string claims = Fixture::Claims();
  simdjson::dom::parser parser;
  for (auto _ : state) {
    simdjson::dom::object payload;
    if (parser.parse(claims).get_object().get(payload) != simdjson::SUCCESS) std::abort();
    absl::StatusOr<Identity> identity = MapClaims(payload, mapping);
    benchmark::DoNotOptimize(identity);
  }
}
BENCHMARK(BM_MapClaims);

}  // namespace
}  // namespace pgb::policy
