// [[issuer]] through the whole config loader (core/config.cc calling
// policy/issuer_config_toml.cc): values, defaults, and errors naming the key.
#include <stdlib.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pgb {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A JWKS with one P-256 key (RFC 7515 appendix A.3's public key).
constexpr char kJwks[] = R"({"keys":[{"kty":"EC","crv":"P-256","kid":"a3",)"
                         R"("x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",)"
                         R"("y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]})";

const std::string& TestDir() {
  static const std::string* dir = [] {
    char pattern[] = "/tmp/pgb_config_issuer_test.XXXXXX";
    auto* path = new std::string(::mkdtemp(pattern));
    std::ofstream(*path + "/jwks.json") << kJwks;
    std::ofstream(*path + "/garbage.json") << "{\"keys\": [ {";
    std::ofstream(*path + "/ca.pem") << "-----BEGIN CERTIFICATE-----\n";
    std::atexit([] { std::filesystem::remove_all(TestDir()); });
    return path;
  }();
  return *dir;
}

std::string Doc(std::string_view issuers) {
  return "[[listener]]\nport = 6432\n[[target]]\nname = \"app\"\nhost = \"127.0.0.1\"\n"
         "user = \"pgbastion\"\n"
         "[[scope]]\nname = \"agents\"\nsubjects = [\"*\"]\nprofile = \"read-only\"\n" +
         std::string(issuers);
}

absl::StatusOr<Config> Parse(std::string_view issuers) {
  return ParseConfig(Doc(issuers), "test.toml", TestDir());
}

std::string ErrorOf(std::string_view issuers) {
  absl::StatusOr<Config> config = Parse(issuers);
  EXPECT_FALSE(config.ok()) << issuers;
  return config.ok() ? "" : std::string(config.status().message());
}

TEST(ConfigIssuerTest, FullIssuerParses) {
  absl::StatusOr<Config> config = Parse(R"(
[[issuer]]
name = "corp"
issuer = "https://idp.example.com/realms/agents"
audience = ["pgbastion", "pgbastion-staging"]
ca_file = "ca.pem"
clock_skew = "30s"
algorithms = ["RS256", "ES256"]
subject_claim = "preferred_username"
groups_claim = "realm_access.roles"
client_id_claim = "azp"
run_id_claim = "ci_run"
keep_claims = ["repo", "branch"]
user_match = "ignore"
refresh_interval = "30m"
refresh_min = "15s"
refresh_max = "12h"
http_timeout = "5s"

[[issuer]]
name = "demo"
issuer = "https://demo.local"
audience = "pgbastion"
jwks_file = "jwks.json"
)");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->issuers.size(), 2u);
  EXPECT_TRUE(config->users.empty());  // [[user]] is optional with issuers
  const policy::IssuerConfig& corp = config->issuers[0];
  EXPECT_EQ(corp.name, "corp");
  EXPECT_EQ(corp.key_source, policy::KeySource::kDiscovery);
  EXPECT_THAT(corp.audiences, ElementsAre("pgbastion", "pgbastion-staging"));
  EXPECT_EQ(corp.ca_file, TestDir() + "/ca.pem");
  EXPECT_EQ(corp.clock_skew, absl::Seconds(30));
  EXPECT_THAT(corp.algorithms,
              ElementsAre(policy::JwsAlgorithm::kRS256, policy::JwsAlgorithm::kES256));
  EXPECT_EQ(corp.claims.subject_claim, "preferred_username");
  EXPECT_EQ(corp.claims.groups_claim, "realm_access.roles");
  EXPECT_THAT(corp.claims.client_id_claims, ElementsAre("azp"));
  EXPECT_EQ(corp.claims.run_id_claim, "ci_run");
  EXPECT_THAT(corp.claims.keep_claims, ElementsAre("repo", "branch"));
  EXPECT_EQ(corp.user_match, policy::UserMatch::kIgnore);
  EXPECT_EQ(corp.refresh_interval, absl::Minutes(30));
  EXPECT_EQ(corp.refresh_min, absl::Seconds(15));
  EXPECT_EQ(corp.refresh_max, absl::Hours(12));
  EXPECT_EQ(corp.http_timeout, absl::Seconds(5));
  const policy::IssuerConfig& demo = config->issuers[1];
  EXPECT_EQ(demo.key_source, policy::KeySource::kJwksFile);
  EXPECT_EQ(demo.jwks_file, TestDir() + "/jwks.json");
  EXPECT_THAT(demo.audiences, ElementsAre("pgbastion"));
  EXPECT_EQ(demo.user_match, policy::UserMatch::kSubject);
  EXPECT_EQ(demo.claims.subject_claim, "sub");
  EXPECT_THAT(demo.claims.client_id_claims, ElementsAre("azp", "client_id"));
  EXPECT_EQ(demo.algorithms.size(), 9u);
}

TEST(ConfigIssuerTest, MaxTokenLifetime) {
  const std::string base =
      "[[issuer]]\nname = \"demo\"\nissuer = \"https://demo.local\"\naudience = \"pgbastion\"\n"
      "jwks_file = \"jwks.json\"\n";
  absl::StatusOr<Config> config = Parse(base);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->issuers[0].max_token_lifetime, absl::Hours(24));
  config = Parse(base + "max_token_lifetime = \"15m\"\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->issuers[0].max_token_lifetime, absl::Minutes(15));
  EXPECT_THAT(ErrorOf(base + "max_token_lifetime = \"10s\"\n"),
              HasSubstr("issuer[0].max_token_lifetime:"));
  EXPECT_THAT(ErrorOf(base + "max_token_lifetime = \"forever\"\n"),
              HasSubstr("issuer[0].max_token_lifetime:"));
  EXPECT_THAT(ErrorOf(base + "max_token_lifetime = 3600\n"),
              HasSubstr("issuer[0].max_token_lifetime:"));
}

TEST(ConfigIssuerTest, RequiredKeys) {
  const std::string error = ErrorOf("[[issuer]]\nclock_skew = \"1s\"\n");
  EXPECT_THAT(error, HasSubstr("issuer[0].name: required"));
  EXPECT_THAT(error, HasSubstr("issuer[0].issuer: required"));
  EXPECT_THAT(error, HasSubstr("issuer[0].audience: required"));
}

TEST(ConfigIssuerTest, NoUsersAndNoIssuersIsStillAnError) {
  EXPECT_THAT(std::string(ParseConfig(Doc(""), "t.toml", TestDir()).status().message()),
              HasSubstr("at least one [[user]] is required"));
}

TEST(ConfigIssuerTest, BadValuesNameTheirKey) {
  const std::string error = ErrorOf(R"(
[[issuer]]
name = "bad name!"
issuer = "http://idp.example.com"
audience = []
algorithms = ["HS256", "none", "ES512"]
clock_skew = "1h"
user_match = "exact"
refresh_min = "2h"
refresh_max = "1h"
jwks_uri = "http://idp.example.com/certs"
audiences = "x"
)");
  EXPECT_THAT(error, HasSubstr("issuer[0].name: \"bad name!\" must be 1..63 characters"));
  EXPECT_THAT(error, HasSubstr("issuer[0].issuer: \"http://idp.example.com\" must be an https://"));
  EXPECT_THAT(error, HasSubstr("issuer[0].audience: must name at least one value"));
  EXPECT_THAT(error, HasSubstr("issuer[0].algorithms: \"HS256\" is not a supported algorithm"));
  EXPECT_THAT(error, HasSubstr("unsigned and HMAC tokens are never accepted"));
  EXPECT_THAT(error, HasSubstr("issuer[0].algorithms: \"ES512\""));
  EXPECT_THAT(error, HasSubstr("issuer[0].clock_skew: must be 0..10m"));
  EXPECT_THAT(error, HasSubstr("issuer[0].user_match: \"exact\" is not one of subject | ignore"));
  EXPECT_THAT(error, HasSubstr("issuer[0].refresh_min: refresh_min (2h) must not be longer"));
  EXPECT_THAT(error, HasSubstr("issuer[0].jwks_uri: \"http://idp.example.com/certs\" must be"));
  EXPECT_THAT(error, HasSubstr("issuer[0].audiences: unknown key; use \"audience\""));
  EXPECT_THAT(error, HasSubstr("(test.toml:"));
}

TEST(ConfigIssuerTest, KeySourcesExcludeEachOther) {
  EXPECT_THAT(ErrorOf(R"(
[[issuer]]
name = "a"
issuer = "https://a.test"
audience = "x"
jwks_file = "jwks.json"
discovery = true
)"),
              HasSubstr("issuer[0].discovery: discovery = true cannot be combined"));
  EXPECT_THAT(ErrorOf(R"(
[[issuer]]
name = "a"
issuer = "https://a.test"
audience = "x"
discovery = false
)"),
              HasSubstr("issuer[0].discovery: discovery = false needs jwks_file or jwks_uri"));
  EXPECT_THAT(ErrorOf(R"(
[[issuer]]
name = "a"
issuer = "https://a.test"
audience = "x"
jwks_file = "jwks.json"
ca_file = "ca.pem"
)"),
              HasSubstr("issuer[0].ca_file: is only used when keys are fetched over HTTPS"));
}

TEST(ConfigIssuerTest, JwksFileIsLoadedAtCheckTime) {
  EXPECT_THAT(ErrorOf(R"(
[[issuer]]
name = "a"
issuer = "https://a.test"
audience = "x"
jwks_file = "garbage.json"
)"),
              HasSubstr("issuer[0].jwks_file: \"" + TestDir() +
                        "/garbage.json\": key set is not valid JSON"));
  EXPECT_THAT(ErrorOf(R"(
[[issuer]]
name = "a"
issuer = "https://a.test"
audience = "x"
jwks_file = "missing.json"
)"),
              HasSubstr("issuer[0].jwks_file: cannot open \"" + TestDir() + "/missing.json\""));
}

TEST(ConfigIssuerTest, DuplicatesAreRefused) {
  const std::string error = ErrorOf(R"(
[[issuer]]
name = "a"
issuer = "https://a.test"
audience = "x"

[[issuer]]
name = "a"
issuer = "https://a.test"
audience = "y"
)");
  EXPECT_THAT(error, HasSubstr("issuer[1].name: duplicate issuer name \"a\" (also issuer[0])"));
  EXPECT_THAT(error, HasSubstr("issuer[1].issuer: issuer \"https://a.test\" is configured twice"));
}

TEST(ConfigIssuerTest, IssuerMustBeAnArrayOfTables) {
  EXPECT_THAT(
      std::string(ParseConfig("issuer = \"https://a.test\"\n" + Doc(""), "test.toml", TestDir())
                      .status()
                      .message()),
      HasSubstr("issuer: expected an array of tables ([[issuer]]), got string"));
}

}  // namespace
}  // namespace pgb
