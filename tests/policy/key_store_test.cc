// The key store's schedule and failure handling, with the HTTP client replaced
// by a function serving documents from memory. The real client against a real
// socket is tested in tests/policy/http_client_test.cc, and against a real
// OpenID provider in tests/integration/test_identity_provider.py.
#include "policy/key_store.h"

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "policy/token_verifier.h"
#include "tests/support/token_test_keys.h"

namespace pgb::policy {
namespace {

using ::testing::HasSubstr;
using testing::JwksOf;
using testing::MintToken;
using testing::TestKeys;

constexpr char kIssuer[] = "https://idp.test";

// A provider in memory: URL -> response, and a log of requests.
class FakeProvider {
 public:
  void Serve(const std::string& url, absl::StatusOr<HttpResponse> response) {
    std::lock_guard<std::mutex> lock(mutex_);
    responses_[url] = std::move(response);
  }
  void ServeJwks(const std::string& jwks, std::string cache_control = "") {
    Serve(std::string(kIssuer) + "/.well-known/openid-configuration",
          HttpResponse{
              200,
              std::string(R"({"issuer":")") + kIssuer + R"(","jwks_uri":"https://idp.test/certs"})",
              ""});
    Serve("https://idp.test/certs", HttpResponse{200, jwks, std::move(cache_control)});
  }
  int requests(const std::string& url) {
    std::lock_guard<std::mutex> lock(mutex_);
    return counts_[url];
  }
  HttpGetFn Fn() {
    return [this](const HttpRequest& request) -> absl::StatusOr<HttpResponse> {
      std::lock_guard<std::mutex> lock(mutex_);
      ++counts_[request.url];
      auto it = responses_.find(request.url);
      if (it == responses_.end()) return HttpResponse{404, "not found", ""};
      return it->second;
    };
  }

 private:
  std::mutex mutex_;
  std::map<std::string, absl::StatusOr<HttpResponse>> responses_;
  std::map<std::string, int> counts_;
};

IssuerConfig DiscoveryIssuer() {
  IssuerConfig config;
  config.name = "idp";
  config.issuer = kIssuer;
  config.audiences = {"pgbastion"};
  config.key_source = KeySource::kDiscovery;
  config.algorithms.assign(std::begin(kAllJwsAlgorithms), std::end(kAllJwsAlgorithms));
  return config;
}

std::string Claims(int64_t now) {
  return R"({"iss":"https://idp.test","aud":"pgbastion","sub":"a","exp":)" +
         std::to_string(now + 600) + "}";
}

TEST(CacheControlMaxAgeTest, Parses) {
  EXPECT_EQ(CacheControlMaxAge("public, max-age=300"), absl::Seconds(300));
  EXPECT_EQ(CacheControlMaxAge("Max-Age=60 , must-revalidate"), absl::Seconds(60));
  EXPECT_EQ(CacheControlMaxAge("no-store"), absl::ZeroDuration());
  EXPECT_EQ(CacheControlMaxAge("max-age=abc"), std::nullopt);
  EXPECT_EQ(CacheControlMaxAge("max-age=99999999999999"), std::nullopt);
  EXPECT_EQ(CacheControlMaxAge(""), std::nullopt);
}

TEST(KeyStoreTest, DiscoveryThenJwks) {
  FakeProvider provider;
  provider.ServeJwks(JwksOf({&TestKeys().ec256}), "max-age=120");
  KeyStore store({DiscoveryIssuer()}, provider.Fn());
  EXPECT_EQ(store.issuer(0).Snapshot()->generation, 0u);
  ASSERT_TRUE(store.Refresh(0, absl::Now()).ok());
  auto snapshot = store.issuer(0).Snapshot();
  EXPECT_EQ(snapshot->generation, 1u);
  ASSERT_EQ(snapshot->keys.keys.size(), 1u);
  EXPECT_EQ(snapshot->keys.keys[0].kid, "ec-256");
  EXPECT_EQ(store.FindByIssuer(kIssuer), &store.issuer(0));
  EXPECT_EQ(store.FindByIssuer("https://idp.test/"), nullptr);  // exact match only
}

TEST(KeyStoreTest, DiscoveryDocumentMustNameTheConfiguredIssuer) {
  FakeProvider provider;
  provider.ServeJwks(JwksOf({&TestKeys().ec256}));
  provider.Serve(
      "https://idp.test/.well-known/openid-configuration",
      HttpResponse{200, R"({"issuer":"https://evil.test","jwks_uri":"https://idp.test/certs"})",
                   ""});
  KeyStore store({DiscoveryIssuer()}, provider.Fn());
  absl::Status status = store.Refresh(0, absl::Now());
  EXPECT_THAT(
      status.message(),
      HasSubstr("names issuer \"https://evil.test\", not the configured \"https://idp.test\""));
  EXPECT_EQ(store.issuer(0).Snapshot()->generation, 0u);
  EXPECT_EQ(provider.requests("https://idp.test/certs"), 0);
}

TEST(KeyStoreTest, RefusesAPlainHttpJwksUri) {
  FakeProvider provider;
  provider.Serve(
      "https://idp.test/.well-known/openid-configuration",
      HttpResponse{200, R"({"issuer":"https://idp.test","jwks_uri":"http://idp.test/certs"})", ""});
  KeyStore store({DiscoveryIssuer()}, provider.Fn());
  EXPECT_THAT(store.Refresh(0, absl::Now()).message(), HasSubstr("only https://"));
  EXPECT_EQ(provider.requests("http://idp.test/certs"), 0);
}

// A provider outage keeps the last good keys: tokens keep verifying.
TEST(KeyStoreTest, ProviderDownKeepsTheLastGoodKeys) {
  FakeProvider provider;
  provider.ServeJwks(JwksOf({&TestKeys().ec256}));
  auto store =
      std::make_shared<KeyStore>(std::vector<IssuerConfig>{DiscoveryIssuer()}, provider.Fn());
  const absl::Time now = absl::Now();
  ASSERT_TRUE(store->Refresh(0, now).ok());
  provider.Serve("https://idp.test/.well-known/openid-configuration",
                 absl::UnavailableError("GET https://idp.test/...: Connection refused"));
  EXPECT_TRUE(absl::IsUnavailable(store->Refresh(0, now + absl::Hours(1))));
  auto snapshot = store->issuer(0).Snapshot();
  EXPECT_EQ(snapshot->generation, 1u);
  EXPECT_EQ(snapshot->keys.keys.size(), 1u);
  EXPECT_THAT(snapshot->last_error, HasSubstr("Connection refused"));

  TokenVerifier verifier(store, /*cache_capacity=*/0);
  const int64_t unix_now = absl::ToUnixSeconds(absl::Now());
  EXPECT_TRUE(verifier
                  .Verify(MintToken(JwsAlgorithm::kES256, TestKeys().ec256, Claims(unix_now)), "a",
                          absl::Now())
                  .ok());
}

TEST(KeyStoreTest, GarbageKeepsTheLastGoodKeys) {
  FakeProvider provider;
  provider.ServeJwks(JwksOf({&TestKeys().ec256}));
  KeyStore store({DiscoveryIssuer()}, provider.Fn());
  ASSERT_TRUE(store.Refresh(0, absl::Now()).ok());
  provider.ServeJwks("<html>502 Bad Gateway</html>");
  EXPECT_THAT(store.Refresh(0, absl::Now()).message(),
              HasSubstr("key set from https://idp.test/certs: key set is not valid JSON"));
  EXPECT_EQ(store.issuer(0).Snapshot()->keys.keys.size(), 1u);
  provider.Serve("https://idp.test/certs", HttpResponse{503, "", ""});
  EXPECT_THAT(store.Refresh(0, absl::Now()).message(), HasSubstr("HTTP status 503"));
  EXPECT_EQ(store.issuer(0).Snapshot()->keys.keys.size(), 1u);
}

TEST(KeyStoreTest, GenerationMovesOnlyWhenKeysChange) {
  FakeProvider provider;
  const auto& k = TestKeys();
  provider.ServeJwks(JwksOf({&k.ec256, &k.rsa}));
  KeyStore store({DiscoveryIssuer()}, provider.Fn());
  ASSERT_TRUE(store.Refresh(0, absl::Now()).ok());
  provider.ServeJwks(JwksOf({&k.rsa, &k.ec256}));  // same keys, other order
  ASSERT_TRUE(store.Refresh(0, absl::Now()).ok());
  EXPECT_EQ(store.issuer(0).Snapshot()->generation, 1u);
  provider.ServeJwks(JwksOf({&k.rsa}));
  ASSERT_TRUE(store.Refresh(0, absl::Now()).ok());
  EXPECT_EQ(store.issuer(0).Snapshot()->generation, 2u);
}

template <typename Predicate>
bool WaitFor(Predicate predicate, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (predicate()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return predicate();
}

// The refresher loads keys at start, then a rotation at the provider is picked
// up early when a shard meets the new kid.
TEST(KeyStoreTest, RefresherPicksUpARotationOnAnUnknownKid) {
  FakeProvider provider;
  const auto& k = TestKeys();
  provider.ServeJwks(JwksOf({&k.ec256}));
  IssuerConfig config = DiscoveryIssuer();
  config.refresh_min = absl::Milliseconds(50);
  auto store = std::make_shared<KeyStore>(std::vector<IssuerConfig>{config}, provider.Fn());
  store->StartRefresher();
  ASSERT_TRUE(
      WaitFor([&] { return store->issuer(0).Snapshot()->generation == 1; }, absl::Seconds(5)));

  provider.ServeJwks(JwksOf({&k.ec256, &k.ed25519}));  // rotation: a new key
  TokenVerifier verifier(store);
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  const std::string token = MintToken(JwsAlgorithm::kEdDSA, k.ed25519, Claims(now));
  TokenVerdict first = verifier.Verify(token, "a", absl::Now());
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.refusal->check, TokenCheck::kUnknownKey);
  ASSERT_TRUE(
      WaitFor([&] { return store->issuer(0).Snapshot()->generation == 2; }, absl::Seconds(5)));
  TokenVerdict second = verifier.Verify(token, "a", absl::Now());
  EXPECT_TRUE(second.ok()) << second.refusal->reason;
  store->StopRefresher();
}

// A flood of invented kids makes at most one fetch per refresh_min.
TEST(KeyStoreTest, UnknownKidRefreshesAreRateLimited) {
  FakeProvider provider;
  provider.ServeJwks(JwksOf({&TestKeys().ec256}));
  IssuerConfig config = DiscoveryIssuer();
  config.refresh_min = absl::Milliseconds(250);
  auto store = std::make_shared<KeyStore>(std::vector<IssuerConfig>{config}, provider.Fn());
  store->StartRefresher();
  ASSERT_TRUE(
      WaitFor([&] { return store->issuer(0).Snapshot()->generation == 1; }, absl::Seconds(5)));
  const int before = provider.requests("https://idp.test/certs");
  TokenVerifier verifier(store);
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  const absl::Time end = absl::Now() + absl::Milliseconds(1100);
  int refused = 0;
  for (int i = 0; absl::Now() < end; ++i) {
    const std::string token = MintToken(JwsAlgorithm::kES256, TestKeys().ec256, Claims(now),
                                        "invented-" + std::to_string(i));
    refused += verifier.Verify(token, "a", absl::Now()).ok() ? 0 : 1;
  }
  store->StopRefresher();
  const int fetches = provider.requests("https://idp.test/certs") - before;
  EXPECT_GT(refused, 100);
  EXPECT_GE(fetches, 2);  // the requests were served...
  EXPECT_LE(fetches, 6);  // ...at most once per 250 ms (1.1 s: 5, plus one of slack)
}

TEST(KeyStoreTest, JwksFileIsReRead) {
  const std::string path = ::testing::TempDir() + "/key_store_test_jwks.json";
  const auto& k = TestKeys();
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    std::fputs(JwksOf({&k.rsa}).c_str(), f);
    std::fclose(f);
  }
  IssuerConfig config = DiscoveryIssuer();
  config.key_source = KeySource::kJwksFile;
  config.jwks_file = path;
  KeyStore store({config}, nullptr);
  ASSERT_TRUE(store.Refresh(0, absl::Now()).ok());
  EXPECT_NE(store.issuer(0).Snapshot()->keys.FindByKid("rsa-1"), nullptr);
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    std::fputs(JwksOf({&k.ec256}).c_str(), f);
    std::fclose(f);
  }
  ASSERT_TRUE(store.Refresh(0, absl::Now()).ok());
  EXPECT_EQ(store.issuer(0).Snapshot()->keys.FindByKid("rsa-1"), nullptr);
  EXPECT_NE(store.issuer(0).Snapshot()->keys.FindByKid("ec-256"), nullptr);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace pgb::policy
