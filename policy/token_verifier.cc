#include "policy/token_verifier.h"

#include <openssl/evp.h>

#include <cmath>
#include <limits>
#include <utility>

#include "base/json_text.h"
#include "base/log.h"
#include "base/str_cat.h"
#include "policy/claims_mapping.h"
#include "policy/internal/json_object.h"
#include "policy/jwt.h"

namespace pgb::policy {
namespace {

using internal::GetString;
using internal::HasDuplicateMember;
using internal::HasMember;

TokenVerdict Refuse(TokenCheck check, std::string reason) {
  TokenVerdict verdict;
  verdict.refusal = TokenRefusal{check, std::move(reason)};
  return verdict;
}

// Token text quoted for a reason: JSON-escaped and cut, so a claim cannot
// forge a log line or flood one.
std::string Quote(std::string_view untrusted) { return JsonString(LogSafe(untrusted)); }

std::string FormatUnix(int64_t seconds) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(seconds),
                          absl::UTCTimeZone());
}

std::string Sha256(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(digest), length);
}

// A NumericDate (RFC 7519 section 2): seconds since the epoch, integer or not.
enum class DateResult { kAbsent, kOk, kMalformed };
DateResult GetNumericDate(simdjson::dom::object object, std::string_view name, int64_t* out) {
  simdjson::dom::element element;
  if (object.at_key(name).get(element) != simdjson::SUCCESS) return DateResult::kAbsent;
  int64_t i = 0;
  uint64_t u = 0;
  double d = 0;
  if (element.get_int64().get(i) == simdjson::SUCCESS) {
    *out = i;
  } else if (element.get_uint64().get(u) == simdjson::SUCCESS) {
    return DateResult::kMalformed;  // beyond int64: not a date
  } else if (element.get_double().get(d) == simdjson::SUCCESS) {
    if (!std::isfinite(d) || d < -9.2e18 || d > 9.2e18) return DateResult::kMalformed;
    *out = static_cast<int64_t>(std::floor(d));
  } else {
    return DateResult::kMalformed;
  }
  // Far outside absl::Time's comfortable range; no real token says year 10^9.
  constexpr int64_t kLimit = int64_t{1} << 40;
  if (*out < -kLimit || *out > kLimit) return DateResult::kMalformed;
  return DateResult::kOk;
}

// The audiences of a token (RFC 7519 section 4.1.3: a string or an array of strings).
bool AudienceMatches(simdjson::dom::element aud, const std::vector<std::string>& accepted,
                     std::string* seen, bool* malformed) {
  auto matches = [&](std::string_view value) {
    if (!seen->empty()) *seen += ", ";
    *seen += Quote(value);
    for (const std::string& a : accepted) {
      if (a == value) return true;
    }
    return false;
  };
  std::string_view single;
  if (aud.get_string().get(single) == simdjson::SUCCESS) return matches(single);
  simdjson::dom::array array;
  if (aud.get_array().get(array) != simdjson::SUCCESS) {
    *malformed = true;
    return false;
  }
  bool found = false;
  for (simdjson::dom::element value : array) {
    std::string_view text;
    if (value.get_string().get(text) != simdjson::SUCCESS) {
      *malformed = true;
      return false;
    }
    if (matches(text)) found = true;
  }
  return found;
}

std::string AcceptedAudiences(const std::vector<std::string>& accepted) {
  std::string out;
  for (const std::string& a : accepted) {
    if (!out.empty()) out += ", ";
    out += JsonString(a);
  }
  return out;
}

}  // namespace

std::string_view TokenCheckName(TokenCheck check) {
  switch (check) {
    case TokenCheck::kFormat:
      return "format";
    case TokenCheck::kHeader:
      return "header";
    case TokenCheck::kAlgorithm:
      return "algorithm";
    case TokenCheck::kIssuer:
      return "issuer";
    case TokenCheck::kUnknownKey:
      return "unknown_key";
    case TokenCheck::kKeysUnavailable:
      return "keys_unavailable";
    case TokenCheck::kKeyMismatch:
      return "key_mismatch";
    case TokenCheck::kSignature:
      return "signature";
    case TokenCheck::kExpired:
      return "expired";
    case TokenCheck::kNotYetValid:
      return "not_yet_valid";
    case TokenCheck::kIssuedInFuture:
      return "issued_in_future";
    case TokenCheck::kLifetime:
      return "lifetime";
    case TokenCheck::kAudience:
      return "audience";
    case TokenCheck::kClaims:
      return "claims";
    case TokenCheck::kUser:
      return "user";
  }
  return "unknown";
}

std::string_view TokenRefusal::sqlstate() const {
  switch (check) {
    case TokenCheck::kUser:
    case TokenCheck::kUnknownKey:
    case TokenCheck::kKeysUnavailable:
      return "28000";  // invalid_authorization_specification
    default:
      return "28P01";  // invalid_password
  }
}

struct TokenVerifier::JsonParsers {
  simdjson::dom::parser header;
  simdjson::dom::parser payload;
};

TokenVerifier::TokenVerifier(std::shared_ptr<const KeyStore> keys, size_t cache_capacity)
    : keys_(std::move(keys)),
      cache_capacity_(cache_capacity),
      parsers_(std::make_unique<JsonParsers>()) {}

TokenVerifier::~TokenVerifier() = default;

void TokenVerifier::CheckUser(TokenVerdict& verdict, const IssuerConfig& config,
                              std::string_view startup_user) {
  if (config.user_match == UserMatch::kSubject && startup_user != verdict.identity.subject) {
    verdict.refusal = TokenRefusal{
        TokenCheck::kUser, Cat("user ", Quote(startup_user), " does not match the token's subject ",
                               Quote(verdict.identity.subject), " (issuer ", config.name,
                               " has user_match = \"subject\")")};
  }
}

bool TokenVerifier::StillValid(CacheEntry& entry, absl::Time now) {
  if (now > entry.valid_until) return false;
  const std::shared_ptr<const KeySnapshot> snapshot = entry.issuer->Snapshot();
  if (snapshot->generation == entry.generation) return true;
  // The key set changed: the entry stands only if its key is still published.
  const PublicJwk* key = snapshot->keys.FindByKid(entry.kid);
  if (key == nullptr || key->thumbprint != entry.thumbprint) return false;
  entry.generation = snapshot->generation;
  return true;
}

void TokenVerifier::Remember(std::string key, CacheEntry entry, absl::Time now) {
  if (cache_capacity_ == 0) return;
  if (cache_.size() >= cache_capacity_) {
    absl::erase_if(cache_, [now](const auto& item) { return now > item.second.valid_until; });
  }
  while (cache_.size() >= cache_capacity_ && !cache_order_.empty()) {
    cache_.erase(cache_order_.front());  // oldest first; keys already gone are skipped
    cache_order_.pop_front();
  }
  if (cache_order_.size() > 2 * cache_capacity_) {  // drop the names of erased entries
    std::erase_if(cache_order_, [this](const std::string& k) { return !cache_.contains(k); });
  }
  auto [it, inserted] = cache_.insert_or_assign(key, std::move(entry));
  (void)it;
  if (inserted) cache_order_.push_back(std::move(key));
}

TokenVerdict TokenVerifier::Verify(std::string_view token, std::string_view startup_user,
                                   absl::Time now) {
  // The cap comes before anything else, hashing included.
  if (token.size() > kMaxTokenSize) {
    return Refuse(TokenCheck::kFormat, Cat("token is ", token.size(), " bytes, more than the ",
                                           kMaxTokenSize, " allowed"));
  }
  std::string digest;
  if (cache_capacity_ > 0) {
    digest = Sha256(token);
    if (auto it = cache_.find(digest); it != cache_.end()) {
      if (StillValid(it->second, now)) {
        TokenVerdict verdict;
        verdict.identity = it->second.identity;
        verdict.issuer_name = it->second.issuer->config().name;
        verdict.kid = it->second.kid;
        verdict.cache_hit = true;
        CheckUser(verdict, it->second.issuer->config(), startup_user);
        return verdict;
      }
      cache_.erase(it);  // expired or its key withdrawn: check again from scratch
    }
  }
  CacheEntry entry;
  TokenVerdict verdict = VerifyUncached(token, now, &entry);
  if (!verdict.ok()) return verdict;
  const IssuerConfig& config = entry.issuer->config();
  if (cache_capacity_ > 0) Remember(std::move(digest), entry, now);
  CheckUser(verdict, config, startup_user);
  return verdict;
}

TokenVerdict TokenVerifier::VerifyUncached(std::string_view token, absl::Time now,
                                           CacheEntry* entry) {
  absl::StatusOr<CompactJws> jws = SplitCompactJws(token);
  if (!jws.ok()) return Refuse(TokenCheck::kFormat, std::string(jws.status().message()));

  // --- header
  simdjson::dom::object header;
  if (parsers_->header.parse(jws->header_json).get_object().get(header) != simdjson::SUCCESS) {
    return Refuse(TokenCheck::kFormat, "token header is not a JSON object");
  }
  if (HasDuplicateMember(header)) {
    return Refuse(TokenCheck::kHeader, "token header has a duplicate member");
  }
  std::string_view alg_name;
  if (!GetString(header, "alg", &alg_name)) {
    return Refuse(TokenCheck::kAlgorithm, "token header has no \"alg\"");
  }
  if (alg_name == "none") {
    return Refuse(TokenCheck::kAlgorithm, "algorithm \"none\" is refused: tokens must be signed");
  }
  if (alg_name.starts_with("HS")) {
    return Refuse(TokenCheck::kAlgorithm,
                  Cat("HMAC algorithm ", Quote(alg_name),
                      " is refused: only asymmetric signatures are accepted"));
  }
  const std::optional<JwsAlgorithm> alg = JwsAlgorithmFromName(alg_name);
  if (!alg.has_value()) {
    return Refuse(TokenCheck::kAlgorithm, Cat("algorithm ", Quote(alg_name), " is not supported"));
  }
  if (HasMember(header, "crit")) {
    // RFC 7515 section 4.1.11: extensions listed in "crit" must be understood,
    // and the gateway implements none.
    simdjson::dom::array crit;
    std::string names;
    if (header["crit"].get_array().get(crit) == simdjson::SUCCESS) {
      for (simdjson::dom::element name : crit) {
        std::string_view text;
        if (name.get_string().get(text) != simdjson::SUCCESS) continue;
        if (!names.empty()) names += ", ";
        names += Quote(text);
      }
    }
    return Refuse(TokenCheck::kHeader,
                  Cat("token header has critical extensions the gateway does not understand "
                      "(crit: ",
                      names.empty() ? std::string("malformed") : names, ")"));
  }
  std::string_view kid;
  const bool has_kid = HasMember(header, "kid");
  if (has_kid && !GetString(header, "kid", &kid)) {
    return Refuse(TokenCheck::kHeader, "token header \"kid\" is not a string");
  }

  // --- payload (read for the issuer only until the signature holds)
  simdjson::dom::object payload;
  if (parsers_->payload.parse(jws->payload_json).get_object().get(payload) != simdjson::SUCCESS) {
    return Refuse(TokenCheck::kFormat, "token payload is not a JSON object");
  }
  if (HasDuplicateMember(payload)) {
    return Refuse(TokenCheck::kClaims, "token payload has a duplicate claim");
  }
  std::string_view iss;
  if (!GetString(payload, "iss", &iss)) {
    return Refuse(TokenCheck::kIssuer, "token has no \"iss\" claim");
  }
  const IssuerKeys* issuer = keys_->FindByIssuer(iss);
  if (issuer == nullptr) {
    return Refuse(TokenCheck::kIssuer, Cat("issuer ", Quote(iss), " is not configured"));
  }
  const IssuerConfig& config = issuer->config();
  if (!config.AllowsAlgorithm(*alg)) {
    return Refuse(TokenCheck::kAlgorithm, Cat("algorithm ", JwsAlgorithmName(*alg),
                                              " is not allowed for issuer ", config.name));
  }

  // --- key
  const std::shared_ptr<const KeySnapshot> snapshot = issuer->Snapshot();
  if (snapshot->generation == 0) {
    issuer->RequestRefresh();
    return Refuse(
        TokenCheck::kKeysUnavailable,
        Cat("the keys of issuer ", config.name, " are not available yet",
            snapshot->last_error.empty() ? std::string() : Cat(" (", snapshot->last_error, ")"),
            "; retry shortly"));
  }
  const PublicJwk* key = nullptr;
  if (has_kid) {
    key = snapshot->keys.FindByKid(kid);
    if (key == nullptr) {
      // Perhaps the provider rotated: fetch early (rate-limited), refuse now.
      issuer->RequestRefresh();
      return Refuse(TokenCheck::kUnknownKey,
                    Cat("unknown key id ", Quote(kid), " for issuer ", config.name,
                        "; the gateway is refreshing the issuer's keys, retry in a few seconds"));
    }
  } else {
    const std::vector<const PublicJwk*> candidates = snapshot->keys.KeysFor(*alg);
    if (candidates.size() != 1) {
      if (candidates.empty()) issuer->RequestRefresh();
      return Refuse(TokenCheck::kKeyMismatch,
                    Cat("token has no \"kid\" and issuer ", config.name, " has ", candidates.size(),
                        " keys for ", JwsAlgorithmName(*alg)));
    }
    key = candidates.front();
  }
  if (key->type != KeyTypeFor(*alg) || (key->alg.has_value() && *key->alg != *alg)) {
    return Refuse(
        TokenCheck::kKeyMismatch,
        Cat("key ", Quote(key->kid), " is an ", KeyTypeName(key->type), " key",
            key->alg.has_value() ? Cat(" for ", JwsAlgorithmName(*key->alg)) : std::string(),
            "; the token says ", JwsAlgorithmName(*alg)));
  }

  // --- signature
  if (absl::Status verified =
          VerifyJwsSignature(*alg, key->key.get(), jws->signing_input, jws->signature);
      !verified.ok()) {
    return Refuse(TokenCheck::kSignature, std::string(verified.message()));
  }

  // --- time claims
  const int64_t now_unix = absl::ToUnixSeconds(now);
  const int64_t skew = absl::ToInt64Seconds(config.clock_skew);
  int64_t exp = 0, nbf = 0, iat = 0;
  bool has_iat = false;
  switch (GetNumericDate(payload, "exp", &exp)) {
    case DateResult::kAbsent:
      return Refuse(TokenCheck::kClaims, "token has no \"exp\" claim (an expiry is required)");
    case DateResult::kMalformed:
      return Refuse(TokenCheck::kClaims, "claim \"exp\" is not a NumericDate");
    case DateResult::kOk:
      break;
  }
  if (now_unix > exp + skew) {
    return Refuse(TokenCheck::kExpired, "token expired at " + FormatUnix(exp));
  }
  switch (GetNumericDate(payload, "nbf", &nbf)) {
    case DateResult::kMalformed:
      return Refuse(TokenCheck::kClaims, "claim \"nbf\" is not a NumericDate");
    case DateResult::kOk:
      if (now_unix + skew < nbf) {
        return Refuse(TokenCheck::kNotYetValid, "token is not valid before " + FormatUnix(nbf));
      }
      break;
    case DateResult::kAbsent:
      break;
  }
  switch (GetNumericDate(payload, "iat", &iat)) {
    case DateResult::kMalformed:
      return Refuse(TokenCheck::kClaims, "claim \"iat\" is not a NumericDate");
    case DateResult::kOk:
      if (iat > now_unix + skew) {
        return Refuse(TokenCheck::kIssuedInFuture,
                      Cat("token was issued in the future (iat ", FormatUnix(iat), ")"));
      }
      has_iat = true;
      break;
    case DateResult::kAbsent:
      break;
  }
  // A token that lives longer than the issuer allows is refused, however it
  // was signed: a stolen long-lived token would otherwise open sessions (and
  // sit in the verification cache) for as long as its exp says.
  const int64_t lifetime = exp - (has_iat ? iat : now_unix);
  if (lifetime > absl::ToInt64Seconds(config.max_token_lifetime)) {
    return Refuse(TokenCheck::kLifetime,
                  Cat("token lives ", absl::FormatDuration(absl::Seconds(lifetime)),
                      has_iat ? " (exp - iat)" : " (exp - now; it has no iat)",
                      ", longer than issuer ", config.name, "'s max_token_lifetime of ",
                      absl::FormatDuration(config.max_token_lifetime)));
  }

  // --- audience
  simdjson::dom::element aud;
  if (payload.at_key("aud").get(aud) != simdjson::SUCCESS) {
    return Refuse(
        TokenCheck::kAudience,
        Cat("token has no \"aud\" claim (accepted: ", AcceptedAudiences(config.audiences), ")"));
  }
  std::string seen;
  bool malformed = false;
  if (!AudienceMatches(aud, config.audiences, &seen, &malformed)) {
    if (malformed) {
      return Refuse(TokenCheck::kAudience, "claim \"aud\" must be a string or an array of strings");
    }
    return Refuse(TokenCheck::kAudience,
                  Cat("audience mismatch: the token is for ", seen, ", issuer ", config.name,
                      " accepts ", AcceptedAudiences(config.audiences)));
  }

  // --- identity
  absl::StatusOr<Identity> identity = MapClaims(payload, config.claims);
  if (!identity.ok()) return Refuse(TokenCheck::kClaims, std::string(identity.status().message()));
  identity->issuer = std::string(iss);
  identity->expires_at_unix = exp;

  TokenVerdict verdict;
  verdict.identity = *std::move(identity);
  verdict.issuer_name = config.name;
  verdict.kid = key->kid;
  entry->identity = verdict.identity;
  entry->issuer = issuer;
  entry->kid = key->kid;
  entry->thumbprint = key->thumbprint;
  entry->generation = snapshot->generation;
  entry->valid_until = absl::FromUnixSeconds(exp + skew);
  return verdict;
}

}  // namespace pgb::policy
