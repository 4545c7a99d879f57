#include "policy/jwks.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/token_test_keys.h"

namespace pgb::policy {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::JwksOf;
using testing::TestKeys;

TEST(ParseJwksTest, ReadsEverySupportedKeyType) {
  const auto& k = TestKeys();
  absl::StatusOr<KeySet> set = ParseJwks(JwksOf({&k.rsa, &k.ec256, &k.ec384, &k.ed25519}));
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_EQ(set->keys.size(), 4u);
  EXPECT_EQ(set->FindByKid("rsa-1")->type, JwkKeyType::kRsa);
  EXPECT_EQ(set->FindByKid("ec-256")->type, JwkKeyType::kEcP256);
  EXPECT_EQ(set->FindByKid("ec-384")->type, JwkKeyType::kEcP384);
  EXPECT_EQ(set->FindByKid("ed-1")->type, JwkKeyType::kEd25519);
  EXPECT_EQ(set->FindByKid("nope"), nullptr);
  EXPECT_EQ(set->FindByKid("rsa-1")->thumbprint, *JwkThumbprint(k.rsa.key.get()));
  EXPECT_TRUE(set->skipped.empty());
}

TEST(ParseJwksTest, ParsedKeysVerifyWhatThePrivateKeysSigned) {
  const auto& k = TestKeys();
  absl::StatusOr<KeySet> set = ParseJwks(JwksOf({&k.ec256}));
  ASSERT_TRUE(set.ok());
  absl::StatusOr<std::string> signature = SignJws(JwsAlgorithm::kES256, k.ec256.key.get(), "x.y");
  ASSERT_TRUE(signature.ok());
  EXPECT_TRUE(
      VerifyJwsSignature(JwsAlgorithm::kES256, set->keys[0].key.get(), "x.y", *signature).ok());
}

// RFC 7638 section 3.1's example key and thumbprint.
TEST(ParseJwksTest, ThumbprintMatchesRfc7638) {
  const std::string jwks =
      R"({"keys":[{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}]})";
  absl::StatusOr<KeySet> set = ParseJwks(jwks);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->keys[0].thumbprint, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
  EXPECT_EQ(set->keys[0].alg, JwsAlgorithm::kRS256);
}

TEST(ParseJwksTest, SkipsKeysItNeverVerifiesWith) {
  const auto& k = TestKeys();
  std::string jwks = JwksOf({&k.ec256});
  jwks.insert(jwks.size() - 2,
              R"(,{"kty":"oct","k":"c2VjcmV0","kid":"h"},)"
              R"({"kty":"EC","crv":"P-521","x":"AA","y":"AA","kid":"p521"},)"
              R"({"kty":"OKP","crv":"X25519","x":"AA","kid":"x"},)"
              R"({"kty":"RSA","n":"AQAB","e":"AQAB","use":"enc","kid":"enc"},)"
              R"({"kty":"RSA","n":"AQAB","e":"AQAB","alg":"RSA-OAEP","kid":"oaep"},)"
              R"({"kty":"RSA","n":"AQAB","e":"AQAB","key_ops":["encrypt"],"kid":"ops"})");
  absl::StatusOr<KeySet> set = ParseJwks(jwks);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->keys.size(), 1u);
  ASSERT_EQ(set->skipped.size(), 6u);
  EXPECT_THAT(set->skipped[0], HasSubstr("symmetric"));
  EXPECT_THAT(set->skipped[3], HasSubstr("\"use\" is \"enc\""));
}

TEST(ParseJwksTest, SkipsShortRsaKeys) {
  EvpPkeyPtr small(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{1024}));
  const std::string jwks = "{\"keys\":[" + *PublicJwkJson(small.get(), "old", std::nullopt) + "]}";
  absl::StatusOr<KeySet> set = ParseJwks(jwks);
  ASSERT_TRUE(set.ok());
  EXPECT_TRUE(set->keys.empty());
  EXPECT_THAT(set->skipped, ElementsAre(HasSubstr("RSA key of 1024 bits")));
}

TEST(ParseJwksTest, RejectsMalformedKeysWithTheirPosition) {
  struct Case {
    const char* jwks;
    const char* message;
  } cases[] = {
      {"", "not valid JSON"},
      {"[]", "not a JSON object"},
      {"{}", "no \"keys\" array"},
      {R"({"keys":[1]})", "keys[0]: not a JSON object"},
      {R"({"keys":[{"kid":"a"}]})", "keys[0] (kid \"a\"): member \"kty\" is missing"},
      {R"({"keys":[{"kty":"RSA","e":"AQAB","kid":"a"}]})", "member \"n\" is missing"},
      {R"({"keys":[{"kty":"RSA","n":"a+b/","e":"AQAB"}]})", "member \"n\" is not base64url"},
      {R"({"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}]})",
       "coordinates must be 32 bytes"},
      {R"({"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA"}]})", "must be 32 bytes"},
      {R"({"keys":[{"kty":"EC","kty":"EC"}]})", "duplicate member"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<KeySet> set = ParseJwks(c.jwks);
    ASSERT_FALSE(set.ok()) << c.jwks;
    EXPECT_THAT(set.status().message(), HasSubstr(c.message)) << c.jwks;
  }
}

TEST(ParseJwksTest, RejectsAPointOffTheCurve) {
  // x = y = 1 is not on P-256.
  const std::string one = EncodeBase64Url(std::string(31, '\0') + "\x01");
  const std::string jwks =
      R"({"keys":[{"kty":"EC","crv":"P-256","x":")" + one + R"(","y":")" + one + R"("}]})";
  EXPECT_THAT(ParseJwks(jwks).status().message(), HasSubstr("is not a valid public key"));
}

TEST(ParseJwksTest, RejectsAnAlgThatDoesNotFitTheKey) {
  std::string jwk = *PublicJwkJson(TestKeys().ec256.key.get(), "e", JwsAlgorithm::kRS256);
  EXPECT_THAT(ParseJwks("{\"keys\":[" + jwk + "]}").status().message(),
              HasSubstr("\"alg\" RS256 does not fit a EC P-256 key"));
}

TEST(ParseJwksTest, RejectsDuplicateKids) {
  const auto& k = TestKeys();
  EXPECT_THAT(ParseJwks(JwksOf({&k.rsa, &k.rsa_other})).status().message(),
              HasSubstr("kid is used by more than one key"));
}

TEST(ParseJwksTest, SizeCaps) {
  EXPECT_THAT(ParseJwks(std::string(kMaxJwksSize + 1, ' ')).status().message(),
              HasSubstr("more than the"));
  std::string many = "{\"keys\":[";
  for (size_t i = 0; i <= kMaxJwksKeys; ++i) many += i == 0 ? "{}" : ",{}";
  EXPECT_THAT(ParseJwks(many + "]}").status().message(), HasSubstr("keys, more than the 64"));
}

TEST(PublicJwkJsonTest, HasNoPrivateMembers) {
  for (const testing::TestKey* key :
       {&TestKeys().rsa, &TestKeys().ec256, &TestKeys().ec384, &TestKeys().ed25519}) {
    const std::string json = *PublicJwkJson(key->key.get(), key->kid, std::nullopt);
    for (const char* member : {"\"d\"", "\"p\"", "\"q\"", "\"dp\"", "\"dq\"", "\"qi\""}) {
      EXPECT_EQ(json.find(member), std::string::npos) << json;
    }
    EXPECT_THAT(json, HasSubstr("\"use\":\"sig\""));
  }
}

}  // namespace
}  // namespace pgb::policy
