#include "policy/token_verifier.h"

#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/token_test_keys.h"

namespace pgb::policy {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::JwksOf;
using testing::MintToken;
using ::testing::Not;
using ::testing::Pair;
using testing::TestKey;
using testing::TestKeys;

constexpr char kIssuer[] = "https://idp.test/realms/agents";
// 2026-11-28T10:00:00Z
constexpr int64_t kNow = 1795860000;

std::string TempPath(std::string_view name) {
  // Never destroyed: the atexit handler runs after static destructors would.
  static const std::string* dir = [] {
    char pattern[] = "/tmp/pgb_token_test.XXXXXX";
    auto* d = new std::string(::mkdtemp(pattern));
    std::atexit([] { std::filesystem::remove_all(*dir); });
    return d;
  }();
  return *dir + "/" + std::string(name);
}

void WriteFile(const std::string& path, std::string_view contents) {
  std::ofstream(path, std::ios::trunc) << contents;
}

// The claims of a good token, with parts replaceable.
struct Claims {
  std::string iss = kIssuer;
  std::string aud = "\"pgbastion\"";
  std::string sub = "agent-7";
  std::string extra;  // appended members, each starting with ','
  int64_t exp = kNow + 600;
  std::optional<int64_t> nbf = kNow - 10;
  std::optional<int64_t> iat = kNow - 10;
  bool with_exp = true;

  std::string Json() const {
    std::string out = "{\"iss\":\"" + iss + "\",\"sub\":\"" + sub + "\"";
    if (!aud.empty()) out += ",\"aud\":" + aud;
    if (with_exp) out += ",\"exp\":" + std::to_string(exp);
    if (nbf) out += ",\"nbf\":" + std::to_string(*nbf);
    if (iat) out += ",\"iat\":" + std::to_string(*iat);
    return out + extra + "}";
  }
};

class TokenVerifierTest : public ::testing::Test {
 protected:
  TokenVerifierTest() {
    const auto& k = TestKeys();
    jwks_path_ = TempPath("jwks-" + std::to_string(counter_++) + ".json");
    WriteFile(jwks_path_, JwksOf({&k.rsa, &k.ec256, &k.ec384, &k.ed25519}));
    config_.name = "corp";
    config_.issuer = kIssuer;
    config_.audiences = {"pgbastion", "pgbastion-staging"};
    config_.key_source = KeySource::kJwksFile;
    config_.jwks_file = jwks_path_;
    config_.algorithms.assign(std::begin(kAllJwsAlgorithms), std::end(kAllJwsAlgorithms));
    config_.claims.groups_claim = "realm_access.roles";
    config_.claims.run_id_claim = "run_id";
    config_.claims.keep_claims = {"repo", "https://example.com/team"};
    Rebuild();
  }

  void Rebuild() {
    store_ = std::make_shared<KeyStore>(std::vector<IssuerConfig>{config_}, nullptr);
    ASSERT_TRUE(store_->Refresh(0, Now()).ok());
    verifier_ = std::make_unique<TokenVerifier>(store_);
  }

  static absl::Time Now() { return absl::FromUnixSeconds(kNow); }

  TokenVerdict Verify(std::string_view token, std::string_view user = "agent-7",
                      absl::Time now = Now()) {
    TokenVerdict verdict = verifier_->Verify(token, user, now);
    if (!verdict.ok()) {
      // No refusal ever quotes the token or its signature.
      EXPECT_THAT(verdict.refusal->reason, Not(HasSubstr(std::string(token))));
      const size_t dot = token.rfind('.');
      if (dot != std::string_view::npos && token.size() - dot > 8) {
        EXPECT_THAT(verdict.refusal->reason, Not(HasSubstr(std::string(token.substr(dot + 1)))));
      }
    }
    return verdict;
  }

  void ExpectRefused(const TokenVerdict& verdict, TokenCheck check, std::string_view reason,
                     std::string_view sqlstate = "28P01") {
    ASSERT_FALSE(verdict.ok()) << "accepted";
    EXPECT_EQ(TokenCheckName(verdict.refusal->check), TokenCheckName(check))
        << verdict.refusal->reason;
    EXPECT_THAT(verdict.refusal->reason, HasSubstr(std::string(reason)));
    EXPECT_EQ(verdict.refusal->sqlstate(), sqlstate);
  }

  std::string Good(JwsAlgorithm alg = JwsAlgorithm::kES256, const Claims& claims = Claims()) {
    return MintToken(alg, KeyFor(alg), claims.Json());
  }

  static const TestKey& KeyFor(JwsAlgorithm alg) {
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

  static inline int counter_ = 0;
  std::string jwks_path_;
  IssuerConfig config_;
  std::shared_ptr<KeyStore> store_;
  std::unique_ptr<TokenVerifier> verifier_;
};

class EveryAlgorithmTest : public TokenVerifierTest,
                           public ::testing::WithParamInterface<JwsAlgorithm> {};

TEST_P(EveryAlgorithmTest, AcceptsAGoodToken) {
  TokenVerdict verdict = Verify(Good(GetParam()));
  ASSERT_TRUE(verdict.ok()) << verdict.refusal->reason;
  EXPECT_EQ(verdict.identity.subject, "agent-7");
  EXPECT_EQ(verdict.identity.method, AuthMethod::kToken);
  EXPECT_EQ(verdict.identity.issuer, kIssuer);
  EXPECT_EQ(verdict.identity.expires_at_unix, kNow + 600);
  EXPECT_EQ(verdict.issuer_name, "corp");
  EXPECT_EQ(verdict.kid, KeyFor(GetParam()).kid);
  EXPECT_FALSE(verdict.cache_hit);
}

INSTANTIATE_TEST_SUITE_P(All, EveryAlgorithmTest, ::testing::ValuesIn(kAllJwsAlgorithms),
                         [](const ::testing::TestParamInfo<JwsAlgorithm>& param_info) {
                           return std::string(JwsAlgorithmName(param_info.param));
                         });

// --- the bad inputs of issue 3, each its own test

TEST_F(TokenVerifierTest, Expired) {
  Claims claims;
  claims.exp = kNow - 3600;
  claims.iat = kNow - 7200;
  claims.nbf = std::nullopt;
  ExpectRefused(Verify(Good(JwsAlgorithm::kES256, claims)), TokenCheck::kExpired,
                "token expired at 2026-11-28T09:00:00Z");
}

TEST_F(TokenVerifierTest, ExpiredWithinClockSkewIsAccepted) {
  Claims claims;
  claims.exp = kNow - 30;  // default skew 60 s
  EXPECT_TRUE(Verify(Good(JwsAlgorithm::kES256, claims)).ok());
  config_.clock_skew = absl::ZeroDuration();
  Rebuild();
  ExpectRefused(Verify(Good(JwsAlgorithm::kES256, claims)), TokenCheck::kExpired,
                "token expired at 2026-11-28T09:59:30Z");
}

TEST_F(TokenVerifierTest, NotYetValid) {
  Claims claims;
  claims.nbf = kNow + 600;
  ExpectRefused(Verify(Good(JwsAlgorithm::kES256, claims)), TokenCheck::kNotYetValid,
                "token is not valid before 2026-11-28T10:10:00Z");
}

TEST_F(TokenVerifierTest, IssuedInTheFuture) {
  Claims claims;
  claims.iat = kNow + 300;
  claims.nbf = std::nullopt;
  ExpectRefused(Verify(Good(JwsAlgorithm::kES256, claims)), TokenCheck::kIssuedInFuture,
                "issued in the future");
}

// Issue 22, item 4: exp 100 years ahead was accepted (and cached).
TEST_F(TokenVerifierTest, LifetimeOverTheIssuersMaximumIsRefused) {
  EXPECT_EQ(config_.max_token_lifetime, absl::Hours(24));  // the default
  Claims claims;
  claims.iat = kNow - 10;
  claims.exp = kNow + int64_t{100} * 365 * 86400;
  ExpectRefused(Verify(Good(JwsAlgorithm::kES256, claims)), TokenCheck::kLifetime,
                "(exp - iat), longer than issuer corp's max_token_lifetime of 24h");
  claims.exp = claims.iat.value() + 86400;  // exactly the maximum
  EXPECT_TRUE(Verify(Good(JwsAlgorithm::kES256, claims)).ok());
  claims.exp += 1;
  ExpectRefused(Verify(Good(JwsAlgorithm::kES256, claims)), TokenCheck::kLifetime,
                "token lives 24h1s (exp - iat)");
}

TEST_F(TokenVerifierTest, LifetimeWithoutIatCountsFromNow) {
  config_.max_token_lifetime = absl::Minutes(10);
  Rebuild();
  Claims claims;
  claims.iat = std::nullopt;
  claims.nbf = std::nullopt;
  claims.exp = kNow + 601;
  ExpectRefused(Verify(Good(JwsAlgorithm::kES256, claims)), TokenCheck::kLifetime,
                "token lives 10m1s (exp - now; it has no iat), longer than issuer corp's "
                "max_token_lifetime of 10m");
  claims.exp = kNow + 600;
  EXPECT_TRUE(Verify(Good(JwsAlgorithm::kES256, claims)).ok());
}

TEST_F(TokenVerifierTest, WrongIssuer) {
  Claims claims;
  claims.iss = "https://evil.test";
  ExpectRefused(Verify(Good(JwsAlgorithm::kES256, claims)), TokenCheck::kIssuer,
                "issuer \"https://evil.test\" is not configured");
}

TEST_F(TokenVerifierTest, WrongAudience) {
  Claims claims;
  claims.aud = "\"other-service\"";
  ExpectRefused(Verify(Good(JwsAlgorithm::kES256, claims)), TokenCheck::kAudience,
                "audience mismatch: the token is for \"other-service\", issuer corp accepts "
                "\"pgbastion\", \"pgbastion-staging\"");
}

TEST_F(TokenVerifierTest, AudienceArrayNeedsOneMatch) {
  Claims claims;
  claims.aud = R"(["a","pgbastion-staging"])";
  EXPECT_TRUE(Verify(Good(JwsAlgorithm::kES256, claims)).ok());
  claims.aud = R"(["a","b"])";
  ExpectRefused(Verify(Good(JwsAlgorithm::kES256, claims)), TokenCheck::kAudience,
                "audience mismatch");
  claims.aud = R"(["a",1])";
  ExpectRefused(Verify(Good(JwsAlgorithm::kES256, claims)), TokenCheck::kAudience,
                "must be a string or an array of strings");
  claims.aud = "";
  ExpectRefused(Verify(Good(JwsAlgorithm::kES256, claims)), TokenCheck::kAudience,
                "token has no \"aud\" claim");
}

TEST_F(TokenVerifierTest, BadSignature) {
  std::string token = Good(JwsAlgorithm::kRS256);
  token[token.size() - 10] = token[token.size() - 10] == 'A' ? 'B' : 'A';
  ExpectRefused(Verify(token), TokenCheck::kSignature, "signature verification failed");
}

TEST_F(TokenVerifierTest, AlteredClaimsBreakTheSignature) {
  const std::string token = Good(JwsAlgorithm::kEdDSA);
  const size_t first = token.find('.');
  const size_t second = token.rfind('.');
  Claims forged;
  forged.sub = "admin";
  const std::string altered =
      token.substr(0, first + 1) + EncodeBase64Url(forged.Json()) + token.substr(second);
  ExpectRefused(Verify(altered, "admin"), TokenCheck::kSignature, "signature verification failed");
}

TEST_F(TokenVerifierTest, SignedByAnotherKeyUnderAKnownKid) {
  const std::string token = MintToken(JwsAlgorithm::kRS256, TestKeys().rsa_other, Claims().Json());
  ExpectRefused(Verify(token), TokenCheck::kSignature, "signature verification failed");
}

TEST_F(TokenVerifierTest, UnknownKid) {
  const std::string token =
      MintToken(JwsAlgorithm::kES256, TestKeys().ec256, Claims().Json(), "invented-kid");
  const TokenVerdict verdict = Verify(token);
  ExpectRefused(verdict, TokenCheck::kUnknownKey,
                "unknown key id \"invented-kid\" for issuer corp; the gateway is refreshing",
                "28000");
  EXPECT_TRUE(verdict.refusal->retry_later());
}

TEST_F(TokenVerifierTest, MalformedBase64Url) {
  const std::string token = Good();
  ExpectRefused(Verify("eyJ+bGciOiJFUzI1NiJ9" + token.substr(token.find('.'))), TokenCheck::kFormat,
                "token header is not base64url");
  ExpectRefused(
      Verify(token.substr(0, token.find('.') + 1) + "e30=" + token.substr(token.rfind('.'))),
      TokenCheck::kFormat, "token payload is not base64url");
}

TEST_F(TokenVerifierTest, MalformedJson) {
  const std::string header = EncodeBase64Url(R"({"alg":"ES256","kid":"ec-256"})");
  ExpectRefused(Verify(header + "." + EncodeBase64Url("{\"sub\":") + ".c2lnbmF0dXJl"),
                TokenCheck::kFormat, "token payload is not a JSON object");
  ExpectRefused(Verify(EncodeBase64Url("{alg:ES256}") + ".e30.c2lnbmF0dXJl"), TokenCheck::kFormat,
                "token header is not a JSON object");
  ExpectRefused(Verify(header + "." + EncodeBase64Url("[1]") + ".c2lnbmF0dXJl"),
                TokenCheck::kFormat, "token payload is not a JSON object");
  ExpectRefused(Verify(header + "." + EncodeBase64Url("{\"a\":\"\xff\"}") + ".c2lnbmF0dXJl"),
                TokenCheck::kFormat, "token payload is not a JSON object");  // not UTF-8
}

TEST_F(TokenVerifierTest, OneMegabyteToken) {
  const std::string token(1 << 20, 'A');
  ExpectRefused(Verify(token), TokenCheck::kFormat,
                "token is 1048576 bytes, more than the 16384 allowed");
  // Also when it is otherwise a real token with an enormous claim.
  Claims claims;
  claims.extra = ",\"pad\":\"" + std::string(1 << 20, 'x') + "\"";
  ExpectRefused(Verify(Good(JwsAlgorithm::kES256, claims)), TokenCheck::kFormat,
                "more than the 16384 allowed");
}

TEST_F(TokenVerifierTest, AlgNone) {
  const std::string token = EncodeBase64Url(R"({"alg":"none","typ":"JWT"})") + "." +
                            EncodeBase64Url(Claims().Json()) + ".";
  ExpectRefused(Verify(token), TokenCheck::kFormat, "token has no signature");
  ExpectRefused(Verify(token + "c2ln"), TokenCheck::kAlgorithm,
                "algorithm \"none\" is refused: tokens must be signed");
}

// The classic algorithm confusion: HS256 with the RSA public key (as its PEM
// text) as the HMAC secret. A verifier that picks the method from "alg" and
// feeds it "the key" would accept it.
TEST_F(TokenVerifierTest, Hs256SignedWithTheRsaPublicKey) {
  BIO* bio = BIO_new(BIO_s_mem());
  ASSERT_EQ(PEM_write_bio_PUBKEY(bio, TestKeys().rsa.key.get()), 1);
  char* pem_data = nullptr;
  const long pem_length = BIO_get_mem_data(bio, &pem_data);
  const std::string pem(pem_data, static_cast<size_t>(pem_length));
  BIO_free(bio);
  const std::string input = EncodeBase64Url(R"({"alg":"HS256","typ":"JWT","kid":"rsa-1"})") + "." +
                            EncodeBase64Url(Claims().Json());
  unsigned char mac[32];
  unsigned int mac_length = 0;
  HMAC(EVP_sha256(), pem.data(), static_cast<int>(pem.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &mac_length);
  const std::string token =
      input + "." + EncodeBase64Url(std::string(reinterpret_cast<char*>(mac), mac_length));
  ExpectRefused(Verify(token), TokenCheck::kAlgorithm,
                "HMAC algorithm \"HS256\" is refused: only asymmetric signatures are accepted");
}

// A token that claims RS256 but names the EC key: never verified with it.
TEST_F(TokenVerifierTest, AlgorithmThatDoesNotFitTheKey) {
  const std::string token =
      MintToken(JwsAlgorithm::kRS256, TestKeys().rsa, Claims().Json(), "ec-256");
  ExpectRefused(Verify(token), TokenCheck::kKeyMismatch,
                "key \"ec-256\" is an EC P-256 key; the token says RS256");
}

TEST_F(TokenVerifierTest, KeyAlgMemberMustMatch) {
  const auto& k = TestKeys();
  WriteFile(jwks_path_,
            "{\"keys\":[" + *PublicJwkJson(k.rsa.key.get(), "rsa-1", JwsAlgorithm::kPS256) + "]}");
  ASSERT_TRUE(store_->Refresh(0, Now()).ok());
  EXPECT_TRUE(Verify(Good(JwsAlgorithm::kPS256)).ok());
  ExpectRefused(Verify(Good(JwsAlgorithm::kRS256)), TokenCheck::kKeyMismatch,
                "key \"rsa-1\" is an RSA key for PS256; the token says RS256");
}

TEST_F(TokenVerifierTest, UnknownCriticalHeader) {
  const std::string input =
      EncodeBase64Url(R"({"alg":"ES256","kid":"ec-256","crit":["exp-policy"],"exp-policy":1})") +
      "." + EncodeBase64Url(Claims().Json());
  const std::string token =
      input + "." +
      EncodeBase64Url(*SignJws(JwsAlgorithm::kES256, TestKeys().ec256.key.get(), input));
  ExpectRefused(Verify(token), TokenCheck::kHeader,
                "critical extensions the gateway does not understand (crit: \"exp-policy\")");
}

TEST_F(TokenVerifierTest, DuplicateMembers) {
  const std::string header = R"({"alg":"ES256","kid":"ec-256"})";
  const std::string payload = Claims().Json();
  const std::string twice = payload.substr(0, payload.size() - 1) + ",\"sub\":\"admin\"}";
  ExpectRefused(
      Verify(*MakeCompactJws(JwsAlgorithm::kES256, TestKeys().ec256.key.get(), header, twice)),
      TokenCheck::kClaims, "duplicate claim");
  ExpectRefused(Verify(*MakeCompactJws(JwsAlgorithm::kES256, TestKeys().ec256.key.get(),
                                       R"({"alg":"ES256","alg":"none","kid":"ec-256"})", payload)),
                TokenCheck::kHeader, "duplicate member");
}

TEST_F(TokenVerifierTest, ExpIsRequired) {
  Claims claims;
  claims.with_exp = false;
  ExpectRefused(Verify(Good(JwsAlgorithm::kES256, claims)), TokenCheck::kClaims,
                "token has no \"exp\" claim");
  claims.with_exp = true;
  claims.extra = ",\"exp\":\"tomorrow\"";  // and a duplicate: refused either way
  EXPECT_FALSE(Verify(Good(JwsAlgorithm::kES256, claims)).ok());
}

TEST_F(TokenVerifierTest, AlgorithmNotAllowedForTheIssuer) {
  config_.algorithms = {JwsAlgorithm::kES256};
  Rebuild();
  EXPECT_TRUE(Verify(Good(JwsAlgorithm::kES256)).ok());
  ExpectRefused(Verify(Good(JwsAlgorithm::kRS256)), TokenCheck::kAlgorithm,
                "algorithm RS256 is not allowed for issuer corp");
}

TEST_F(TokenVerifierTest, NoKidUsesTheOnlyKeyThatFits) {
  const std::string ed = MintToken(JwsAlgorithm::kEdDSA, TestKeys().ed25519, Claims().Json(), "");
  EXPECT_TRUE(Verify(ed).ok());
  const auto& k = TestKeys();
  TestKey second{"ed-2", testing::GenerateKey("ED25519", nullptr)};
  WriteFile(jwks_path_, JwksOf({&k.ed25519, &second}));
  ASSERT_TRUE(store_->Refresh(0, Now()).ok());
  verifier_ = std::make_unique<TokenVerifier>(store_);
  ExpectRefused(Verify(ed), TokenCheck::kKeyMismatch,
                "token has no \"kid\" and issuer corp has 2 keys for EdDSA");
}

TEST_F(TokenVerifierTest, StartupUserMustMatchTheSubject) {
  const TokenVerdict verdict = Verify(Good(), "someone-else");
  ExpectRefused(verdict, TokenCheck::kUser,
                "user \"someone-else\" does not match the token's subject \"agent-7\"", "28000");
  // Also on a cache hit.
  EXPECT_TRUE(Verify(Good()).ok());
  ExpectRefused(Verify(Good(), "someone-else"), TokenCheck::kUser, "does not match", "28000");
}

TEST_F(TokenVerifierTest, UserMatchIgnore) {
  config_.user_match = UserMatch::kIgnore;
  Rebuild();
  EXPECT_TRUE(Verify(Good(), "whatever").ok());
}

TEST_F(TokenVerifierTest, KeysNeverLoadedFailClosed) {
  config_.jwks_file = TempPath("missing.json");
  store_ = std::make_shared<KeyStore>(std::vector<IssuerConfig>{config_}, nullptr);
  EXPECT_FALSE(store_->Refresh(0, Now()).ok());
  verifier_ = std::make_unique<TokenVerifier>(store_);
  const TokenVerdict verdict = Verify(Good());
  ExpectRefused(verdict, TokenCheck::kKeysUnavailable,
                "the keys of issuer corp are not available yet (cannot open", "28000");
}

// --- claims mapping

TEST_F(TokenVerifierTest, MapsClaimsToTheIdentity) {
  Claims claims;
  claims.extra = R"(,"realm_access":{"roles":["read-only","ci"]},"azp":"ci-runner","run_id":12345,)"
                 R"("repo":"org/app","https://example.com/team":"payments","unkept":"x")";
  const TokenVerdict verdict = Verify(Good(JwsAlgorithm::kES256, claims));
  ASSERT_TRUE(verdict.ok()) << verdict.refusal->reason;
  EXPECT_THAT(verdict.identity.groups, ElementsAre("read-only", "ci"));
  EXPECT_EQ(verdict.identity.client_id, "ci-runner");
  EXPECT_EQ(verdict.identity.run_id, "12345");
  EXPECT_THAT(verdict.identity.claims,
              ElementsAre(Pair("repo", "org/app"), Pair("https://example.com/team", "payments")));
}

TEST_F(TokenVerifierTest, GroupsMayBeOneString) {
  Claims claims;
  claims.extra = R"(,"realm_access":{"roles":"admin"},"client_id":"svc")";
  const TokenVerdict verdict = Verify(Good(JwsAlgorithm::kES256, claims));
  ASSERT_TRUE(verdict.ok());
  EXPECT_THAT(verdict.identity.groups, ElementsAre("admin"));
  EXPECT_EQ(verdict.identity.client_id, "svc");
}

TEST_F(TokenVerifierTest, MalformedGroupsAreRefused) {
  Claims claims;
  claims.extra = R"(,"realm_access":{"roles":["a",{"b":1}]})";
  ExpectRefused(Verify(Good(JwsAlgorithm::kES256, claims)), TokenCheck::kClaims,
                "claim \"realm_access.roles\" (groups) must hold only strings");
}

TEST_F(TokenVerifierTest, ConfiguredSubjectClaim) {
  config_.claims.subject_claim = "preferred_username";
  Rebuild();
  ExpectRefused(Verify(Good()), TokenCheck::kClaims,
                "claim \"preferred_username\" (the subject) is missing");
  Claims claims;
  claims.extra = R"(,"preferred_username":"bot-1")";
  const TokenVerdict verdict = Verify(Good(JwsAlgorithm::kES256, claims), "bot-1");
  ASSERT_TRUE(verdict.ok());
  EXPECT_EQ(verdict.identity.subject, "bot-1");
}

// --- the verification cache

TEST_F(TokenVerifierTest, SecondLoginIsACacheHit) {
  const std::string token = Good(JwsAlgorithm::kRS256);
  EXPECT_FALSE(Verify(token).cache_hit);
  const TokenVerdict again = Verify(token);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again.cache_hit);
  EXPECT_EQ(again.identity.subject, "agent-7");
  EXPECT_EQ(verifier_->cache_size(), 1u);
}

TEST_F(TokenVerifierTest, CachedTokenStillExpires) {
  const std::string token = Good();
  ASSERT_TRUE(Verify(token).ok());
  const TokenVerdict later = Verify(token, "agent-7", Now() + absl::Minutes(12));
  ExpectRefused(later, TokenCheck::kExpired, "token expired at 2026-11-28T10:10:00Z");
  EXPECT_FALSE(later.cache_hit);
}

TEST_F(TokenVerifierTest, RemovedKeyEmptiesItsCacheEntries) {
  const std::string rsa_token = Good(JwsAlgorithm::kRS256);
  const std::string ec_token = Good(JwsAlgorithm::kES256);
  ASSERT_TRUE(Verify(rsa_token).ok());
  ASSERT_TRUE(Verify(ec_token).ok());
  const auto& k = TestKeys();
  WriteFile(jwks_path_, JwksOf({&k.ec256, &k.ed25519}));  // rsa-1 revoked
  ASSERT_TRUE(store_->Refresh(0, Now()).ok());
  ExpectRefused(Verify(rsa_token), TokenCheck::kUnknownKey, "unknown key id \"rsa-1\"", "28000");
  const TokenVerdict ec = Verify(ec_token);
  ASSERT_TRUE(ec.ok());
  EXPECT_TRUE(ec.cache_hit);  // its key is still published
}

TEST_F(TokenVerifierTest, KeyReplacedUnderTheSameKidEmptiesItsCacheEntries) {
  const std::string token = Good(JwsAlgorithm::kRS256);
  ASSERT_TRUE(Verify(token).ok());
  const auto& k = TestKeys();
  WriteFile(jwks_path_, JwksOf({&k.rsa_other, &k.ec256}));
  ASSERT_TRUE(store_->Refresh(0, Now()).ok());
  ExpectRefused(Verify(token), TokenCheck::kSignature, "signature verification failed");
}

TEST_F(TokenVerifierTest, CacheIsBounded) {
  verifier_ = std::make_unique<TokenVerifier>(store_, 8);
  for (int i = 0; i < 20; ++i) {
    Claims claims;
    claims.exp = kNow + 600 + i;
    ASSERT_TRUE(Verify(Good(JwsAlgorithm::kEdDSA, claims)).ok());
    EXPECT_LE(verifier_->cache_size(), 8u);
  }
}

TEST_F(TokenVerifierTest, SqlstatesAndNamesAreStable) {
  EXPECT_EQ((TokenRefusal{TokenCheck::kSignature, ""}).sqlstate(), "28P01");
  EXPECT_EQ((TokenRefusal{TokenCheck::kUnknownKey, ""}).sqlstate(), "28000");
  EXPECT_EQ(TokenCheckName(TokenCheck::kIssuedInFuture), "issued_in_future");
}

}  // namespace
}  // namespace pgb::policy
