// The listener's login methods (`auth`, `tls_client_ca`,
// `certificate_user_match`) and [[issuer]] session_grace through the whole
// config loader: defaults, values, and errors naming the key.
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

constexpr char kIssuer[] =
    "[[issuer]]\nname = \"demo\"\nissuer = \"https://demo.local\"\naudience = \"pgbastion\"\n"
    "jwks_file = \"jwks.json\"\n";

const std::string& TestDir() {
  static const std::string* dir = [] {
    char pattern[] = "/tmp/pgb_config_listener_auth_test.XXXXXX";
    auto* path = new std::string(::mkdtemp(pattern));
    std::ofstream(*path + "/jwks.json") << kJwks;
    for (const char* name : {"/server.crt", "/server.key", "/clients.pem"}) {
      std::ofstream(*path + name) << "-----BEGIN CERTIFICATE-----\n";
    }
    std::atexit([] { std::filesystem::remove_all(TestDir()); });
    return path;
  }();
  return *dir;
}

// `listener` is the body of the [[listener]] table; `rest` follows the target.
absl::StatusOr<Config> Parse(std::string_view listener, std::string_view rest = "") {
  const std::string text =
      "[[listener]]\nport = 6432\n" + std::string(listener) +
      "\n[[target]]\nname = \"app\"\nhost = \"127.0.0.1\"\nuser = \"pgbastion\"\n"
      "[[user]]\nname = \"alice\"\nscram_verifier = "
      "\"SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0c2FsdA==$h7BOWJYfmpnYU9QEagtbeT58Pku9IfWsqPsXwgzbHYs=:"
      "s+rNM0M7MbUlI1EDLJs+ei56p3ONXezfDdbGJoCFPAY=\"\n"
      "[[scope]]\nname = \"agents\"\nsubjects = [\"*\"]\nprofile = \"read-only\"\n" +
      std::string(rest);
  return ParseConfig(text, "test.toml", TestDir());
}

std::string ErrorOf(std::string_view listener, std::string_view rest = "") {
  absl::StatusOr<Config> config = Parse(listener, rest);
  EXPECT_FALSE(config.ok()) << listener;
  return config.ok() ? "" : std::string(config.status().message());
}

constexpr char kTls[] = "tls = \"optional\"\ntls_cert = \"server.crt\"\ntls_key = \"server.key\"\n";

TEST(ConfigListenerAuthTest, DefaultIsPasswordWithoutIssuers) {
  absl::StatusOr<Config> config = Parse(kTls);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(config->listeners[0].auth, ElementsAre(LoginMethod::kPassword));
}

TEST(ConfigListenerAuthTest, DefaultAddsTokenWithIssuersOverTls) {
  absl::StatusOr<Config> config = Parse(kTls, kIssuer);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(config->listeners[0].auth, ElementsAre(LoginMethod::kPassword, LoginMethod::kToken));
  EXPECT_EQ(config->issuers[0].session_grace, absl::ZeroDuration());
}

TEST(ConfigListenerAuthTest, DefaultLeavesTokenOutWithoutTls) {
  absl::StatusOr<Config> config = Parse("", kIssuer);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(config->listeners[0].auth, ElementsAre(LoginMethod::kPassword));
}

TEST(ConfigListenerAuthTest, ExplicitMethodsAndCertificateKeys) {
  absl::StatusOr<Config> config =
      Parse(std::string(kTls) +
                "auth = [\"certificate\", \"token\"]\ntls_client_ca = \"clients.pem\"\n"
                "certificate_user_match = \"ignore\"\n",
            std::string(kIssuer) + "session_grace = \"90s\"\n");
  ASSERT_TRUE(config.ok()) << config.status();
  const ListenerConfig& listener = config->listeners[0];
  EXPECT_THAT(listener.auth, ElementsAre(LoginMethod::kCertificate, LoginMethod::kToken));
  EXPECT_FALSE(listener.Allows(LoginMethod::kPassword));
  EXPECT_EQ(listener.tls_client_ca_file, TestDir() + "/clients.pem");
  EXPECT_FALSE(listener.certificate_user_must_match);
  EXPECT_EQ(config->issuers[0].session_grace, absl::Seconds(90));
}

TEST(ConfigListenerAuthTest, TokenWithoutTlsIsRefused) {
  EXPECT_THAT(ErrorOf("auth = [\"token\"]\n", kIssuer),
              HasSubstr("listener[0].auth: \"token\" needs tls = \"optional\" or \"required\""));
}

TEST(ConfigListenerAuthTest, TokenWithoutIssuersIsRefused) {
  EXPECT_THAT(ErrorOf(std::string(kTls) + "auth = [\"token\"]\n"),
              HasSubstr("listener[0].auth: \"token\" needs at least one [[issuer]]"));
}

TEST(ConfigListenerAuthTest, UnknownMethodNamesItsIndex) {
  EXPECT_THAT(
      ErrorOf("auth = [\"password\", \"kerberos\"]\n"),
      HasSubstr(
          "listener[0].auth[1]: must be \"password\", \"token\", \"certificate\" or \"peer\""));
}

TEST(ConfigListenerAuthTest, DuplicateAndEmptyAndWrongType) {
  EXPECT_THAT(ErrorOf("auth = [\"password\", \"password\"]\n"),
              HasSubstr("listener[0].auth[1]: \"password\" is listed twice"));
  EXPECT_THAT(ErrorOf("auth = []\n"), HasSubstr("listener[0].auth: must name at least one"));
  EXPECT_THAT(ErrorOf("auth = \"password\"\n"), HasSubstr("listener[0].auth: expected an array"));
}

TEST(ConfigListenerAuthTest, CertificateNeedsClientCaAndTls) {
  EXPECT_THAT(ErrorOf(std::string(kTls) + "auth = [\"certificate\"]\n"),
              HasSubstr("listener[0].tls_client_ca: required with auth \"certificate\""));
  EXPECT_THAT(ErrorOf("auth = [\"certificate\"]\ntls_client_ca = \"clients.pem\"\n"),
              HasSubstr("listener[0].auth: \"certificate\" needs tls"));
  EXPECT_THAT(ErrorOf(std::string(kTls) + "tls_client_ca = \"clients.pem\"\n"),
              HasSubstr("listener[0].tls_client_ca: only used with auth"));
  EXPECT_THAT(
      ErrorOf(std::string(kTls) + "auth = [\"certificate\"]\ntls_client_ca = \"missing.pem\"\n"),
      HasSubstr("listener[0].tls_client_ca"));
}

TEST(ConfigListenerAuthTest, SessionGraceIsBounded) {
  EXPECT_THAT(ErrorOf(kTls, std::string(kIssuer) + "session_grace = \"48h\"\n"),
              HasSubstr("issuer[0].session_grace"));
}

}  // namespace
}  // namespace pgb
