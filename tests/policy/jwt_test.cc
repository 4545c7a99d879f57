#include "policy/jwt.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/token_test_keys.h"

namespace pgb::policy {
namespace {

using ::testing::HasSubstr;
using testing::TestKeys;

TEST(Base64UrlTest, RoundTripsEveryLength) {
  std::string bytes;
  for (int i = 0; i < 70; ++i) {
    const std::string encoded = EncodeBase64Url(bytes);
    EXPECT_EQ(encoded.find_first_of("+/="), std::string::npos) << encoded;
    const absl::StatusOr<std::string> decoded = DecodeBase64Url(encoded);
    ASSERT_TRUE(decoded.ok()) << encoded;
    EXPECT_EQ(*decoded, bytes);
    bytes.push_back(static_cast<char>(i * 37 + 200));
  }
}

TEST(Base64UrlTest, KnownVector) {
  EXPECT_EQ(EncodeBase64Url("\xfb\xff"), "-_8");
  EXPECT_EQ(*DecodeBase64Url("eyJhbGciOiJFUzI1NiJ9"), R"({"alg":"ES256"})");
}

TEST(Base64UrlTest, RefusesPaddingWhitespaceAndTheOtherAlphabet) {
  EXPECT_FALSE(DecodeBase64Url("YQ==").ok());
  EXPECT_FALSE(DecodeBase64Url("Y Q").ok());
  EXPECT_FALSE(DecodeBase64Url("+/8").ok());
  EXPECT_FALSE(DecodeBase64Url("YQ\n").ok());
  EXPECT_FALSE(DecodeBase64Url("a").ok());  // a length of 4n+1 cannot be
}

TEST(Base64UrlTest, RefusesNonZeroTrailingBits) {
  // "YQ" and "YR" would both decode to "a" in a lax decoder.
  EXPECT_EQ(*DecodeBase64Url("YQ"), "a");
  EXPECT_FALSE(DecodeBase64Url("YR").ok());
}

TEST(SplitCompactJwsTest, SplitsAndDecodes) {
  const std::string token = EncodeBase64Url("{\"alg\":\"ES256\"}") + "." +
                            EncodeBase64Url("{\"sub\":\"a\"}") + "." + EncodeBase64Url("sig");
  absl::StatusOr<CompactJws> jws = SplitCompactJws(token);
  ASSERT_TRUE(jws.ok()) << jws.status();
  EXPECT_EQ(jws->header_json, "{\"alg\":\"ES256\"}");
  EXPECT_EQ(jws->payload_json, "{\"sub\":\"a\"}");
  EXPECT_EQ(jws->signature, "sig");
  EXPECT_EQ(jws->signing_input, token.substr(0, token.rfind('.')));
}

TEST(SplitCompactJwsTest, RefusesWrongShapes) {
  for (const char* bad :
       {"", "abc", "a.b", "a.b.c.d", "..", "e30.e30.", "e30..c2ln", ".e30.c2ln"}) {
    EXPECT_FALSE(SplitCompactJws(bad).ok()) << bad;
  }
}

TEST(SplitCompactJwsTest, SizeCapComesFirst) {
  const std::string huge(kMaxTokenSize + 1, '!');  // not even base64url
  absl::Status status = SplitCompactJws(huge).status();
  EXPECT_THAT(status.message(), HasSubstr("more than the 16384 allowed"));
}

TEST(SplitCompactJwsTest, HeaderSizeCap) {
  const std::string header = EncodeBase64Url(std::string(2000, ' '));
  EXPECT_THAT(SplitCompactJws(header + ".e30.c2ln").status().message(),
              HasSubstr("token header is larger"));
}

class SignVerifyTest : public ::testing::TestWithParam<JwsAlgorithm> {};

const testing::TestKey& KeyFor(JwsAlgorithm alg) {
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

TEST_P(SignVerifyTest, RoundTripAndTamper) {
  const JwsAlgorithm alg = GetParam();
  EVP_PKEY* key = KeyFor(alg).key.get();
  const std::string input = "eyJhbGciOiJ4In0.eyJzdWIiOiJhIn0";
  absl::StatusOr<std::string> signature = SignJws(alg, key, input);
  ASSERT_TRUE(signature.ok()) << signature.status();
  if (alg == JwsAlgorithm::kES384) {
    EXPECT_EQ(signature->size(), 96u);
  } else if (alg == JwsAlgorithm::kES256 || alg == JwsAlgorithm::kEdDSA) {
    EXPECT_EQ(signature->size(), 64u);
  }
  EXPECT_TRUE(VerifyJwsSignature(alg, key, input, *signature).ok());

  std::string altered = input;
  altered.back() ^= 1;
  EXPECT_TRUE(absl::IsUnauthenticated(VerifyJwsSignature(alg, key, altered, *signature)));
  std::string bad_signature = *signature;
  bad_signature[bad_signature.size() / 2] ^= 0x40;
  EXPECT_TRUE(absl::IsUnauthenticated(VerifyJwsSignature(alg, key, input, bad_signature)));
  EXPECT_TRUE(absl::IsUnauthenticated(
      VerifyJwsSignature(alg, key, input, signature->substr(0, signature->size() - 1))));
}

INSTANTIATE_TEST_SUITE_P(AllAlgorithms, SignVerifyTest, ::testing::ValuesIn(kAllJwsAlgorithms),
                         [](const ::testing::TestParamInfo<JwsAlgorithm>& param_info) {
                           return std::string(JwsAlgorithmName(param_info.param));
                         });

TEST(SignVerifyTest, Pkcs1AndPssAreNotInterchangeable) {
  EVP_PKEY* key = TestKeys().rsa.key.get();
  const std::string input = "a.b";
  absl::StatusOr<std::string> pkcs1 = SignJws(JwsAlgorithm::kRS256, key, input);
  ASSERT_TRUE(pkcs1.ok());
  EXPECT_FALSE(VerifyJwsSignature(JwsAlgorithm::kPS256, key, input, *pkcs1).ok());
  EXPECT_FALSE(VerifyJwsSignature(JwsAlgorithm::kRS384, key, input, *pkcs1).ok());
}

TEST(CheckKeyFitsAlgorithmTest, RefusesTheWrongKeyType) {
  absl::Status status = CheckKeyFitsAlgorithm(JwsAlgorithm::kRS256, TestKeys().ec256.key.get());
  EXPECT_TRUE(absl::IsFailedPrecondition(status));
  EXPECT_THAT(status.message(), HasSubstr("RS256 needs an RSA key, the key is EC P-256"));
  EXPECT_FALSE(CheckKeyFitsAlgorithm(JwsAlgorithm::kES384, TestKeys().ec256.key.get()).ok());
  EXPECT_FALSE(CheckKeyFitsAlgorithm(JwsAlgorithm::kEdDSA, TestKeys().rsa.key.get()).ok());
  EXPECT_TRUE(CheckKeyFitsAlgorithm(JwsAlgorithm::kPS512, TestKeys().rsa.key.get()).ok());
}

TEST(CheckKeyFitsAlgorithmTest, RefusesShortRsaKeys) {
  EvpPkeyPtr small(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{1024}));
  ASSERT_NE(small, nullptr);
  EXPECT_THAT(CheckKeyFitsAlgorithm(JwsAlgorithm::kRS256, small.get()).message(),
              HasSubstr("RSA key of 1024 bits"));
}

TEST(JwsAlgorithmTest, NamesAreExact) {
  EXPECT_EQ(JwsAlgorithmFromName("EdDSA"), JwsAlgorithm::kEdDSA);
  for (const char* name : {"none", "HS256", "rs256", "ES512", "", "RS256 "}) {
    EXPECT_FALSE(JwsAlgorithmFromName(name).has_value()) << name;
  }
}

TEST(DefaultAlgorithmForTest, FollowsTheKeyType) {
  EXPECT_EQ(*DefaultAlgorithmFor(TestKeys().rsa.key.get()), JwsAlgorithm::kRS256);
  EXPECT_EQ(*DefaultAlgorithmFor(TestKeys().ec256.key.get()), JwsAlgorithm::kES256);
  EXPECT_EQ(*DefaultAlgorithmFor(TestKeys().ec384.key.get()), JwsAlgorithm::kES384);
  EXPECT_EQ(*DefaultAlgorithmFor(TestKeys().ed25519.key.get()), JwsAlgorithm::kEdDSA);
}

}  // namespace
}  // namespace pgb::policy
