// `pgbastion token mint|jwks|verify`: tokens for demos and tests, the public
// JWKS of a local key, and the gateway's own verification of a token against
// a config file (for operators asking "why is my token refused?").
//
//   $ pgbastion token mint --key demo.pem --issuer https://demo.local
//       --audience pgbastion --subject agent-7 --groups read-only --ttl 15m   (one line)
//   eyJhbGciOiJFUzI1NiIs...
//   $ pgbastion token jwks --key demo.pem > jwks.json
//   $ pgbastion token verify --config pgbastion.toml --user agent-7 < token.txt
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/http_client.h"
#include "base/json_text.h"
#include "base/log.h"
#include "base/str_cat.h"
#include "core/config.h"
#include "policy/jwks.h"
#include "policy/jwt.h"
#include "policy/key_store.h"
#include "policy/token_verifier.h"
#include "tools/pgbastion/commands.h"

namespace pgb::tools {
namespace {

constexpr const char kTokenUsage[] =
    "Usage: pgbastion token mint|jwks|verify [OPTIONS]\n"
    "\n"
    "  mint    sign a token with a local private key (FOR DEMOS AND TESTS ONLY)\n"
    "  jwks    print the public JWKS of a key, for an [[issuer]] jwks_file\n"
    "  verify  check a token as the gateway would, and print the identity it maps to\n"
    "\n"
    "Run 'pgbastion token COMMAND --help' for a command's options.\n";

constexpr const char kMintUsage[] =
    "Usage: pgbastion token mint --key FILE --issuer URL --audience AUD --subject SUB\n"
    "                            [--alg ALG] [--kid ID] [--groups a,b] [--claim k=v]...\n"
    "                            [--ttl 15m]\n"
    "\n"
    "FOR DEMOS AND TESTS ONLY. Signs a JWT with a local private key and prints it.\n"
    "In production, agents get their tokens from the identity provider; a key that\n"
    "can mint tokens for the gateway is a master key to every database behind it.\n"
    "\n"
    "Options:\n"
    "  --key FILE       PEM private key: RSA (2048+ bits), EC P-256 / P-384, or Ed25519\n"
    "  --alg ALG        RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA\n"
    "                   (default from the key: RS256, ES256, ES384 or EdDSA)\n"
    "  --kid ID         key id in the header (default: the key's RFC 7638 thumbprint,\n"
    "                   as `token jwks` prints it)\n"
    "  --issuer URL     the \"iss\" claim\n"
    "  --audience AUD   the \"aud\" claim; repeat for several\n"
    "  --subject SUB    the \"sub\" claim\n"
    "  --groups a,b     the \"groups\" claim (an array of strings)\n"
    "  --claim k=v      another string claim; repeatable\n"
    "  --ttl DURATION   lifetime, 1s..24h (default 15m)\n"
    "  --help           show this help\n"
    "\n"
    "Exit status: 0 printed, 1 failed (key unreadable, ...), 2 usage error.\n";

constexpr const char kJwksUsage[] =
    "Usage: pgbastion token jwks --key FILE [--kid ID] [--alg ALG]\n"
    "\n"
    "Prints {\"keys\":[...]} with the public half of a PEM key (private or public),\n"
    "to save as an [[issuer]] jwks_file. For demos and tests.\n"
    "\n"
    "Options:\n"
    "  --key FILE  PEM key: RSA, EC P-256 / P-384 or Ed25519\n"
    "  --kid ID    key id (default: the key's RFC 7638 thumbprint)\n"
    "  --alg ALG   pin the key to one algorithm (its \"alg\" member)\n"
    "  --help      show this help\n";

constexpr const char kVerifyUsage[] =
    "Usage: pgbastion token verify --config FILE [--user NAME] [TOKEN | -]\n"
    "\n"
    "Checks a token exactly as the gateway does at login, fetching the issuers' keys\n"
    "(JWKS file, jwks_uri or OIDC discovery) first. Prints one JSON object:\n"
    "  {\"ok\":true,\"issuer\":NAME,\"kid\":ID,\"identity\":{...}}\n"
    "  {\"ok\":false,\"check\":\"expired\",\"sqlstate\":\"28P01\",\"reason\":\"...\"}\n"
    "The token is read from stdin when TOKEN is absent or \"-\" (keeps it out of\n"
    "shell history and the process list).\n"
    "\n"
    "Options:\n"
    "  --config FILE  the gateway's configuration ([[issuer]] tables)\n"
    "  --user NAME    the startup user to check against user_match (default: not checked)\n"
    "  --help         show this help\n"
    "\n"
    "Exit status: 0 accepted, 1 refused or config invalid, 2 usage error.\n";

int Usage(std::string_view command, std::string_view problem, const char* usage) {
  std::fprintf(stderr, "pgbastion token %.*s: %.*s\n\n%s", static_cast<int>(command.size()),
               command.data(), static_cast<int>(problem.size()), problem.data(), usage);
  return 2;
}

// Options as (name, value) pairs; every option takes a value.
struct Options {
  std::vector<std::pair<std::string_view, std::string_view>> values;
  std::vector<std::string_view> positional;

  std::vector<std::string_view> All(std::string_view name) const {
    std::vector<std::string_view> out;
    for (const auto& [n, v] : values) {
      if (n == name) out.push_back(v);
    }
    return out;
  }
  std::string_view One(std::string_view name) const {
    std::vector<std::string_view> all = All(name);
    return all.empty() ? std::string_view() : all.back();
  }
  bool Has(std::string_view name) const { return !All(name).empty(); }
};

// Parses "--name VALUE" / "--name=VALUE" for the names in `known`.
absl::StatusOr<Options> ParseOptions(const Args& args, const std::vector<std::string_view>& known) {
  Options out;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (!arg.starts_with("--") || arg == "-") {
      out.positional.push_back(arg);
      continue;
    }
    std::string_view name = arg;
    std::string_view value;
    bool has_value = false;
    if (const size_t eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      return absl::InvalidArgumentError("unknown option " + std::string(name));
    }
    if (!has_value) {
      if (i + 1 == args.size()) {
        return absl::InvalidArgumentError(std::string(name) + " needs a value");
      }
      value = args[++i];
    }
    out.values.emplace_back(name, value);
  }
  return out;
}

int PasswordCallback(char*, int, int, void*) { return -1; }  // never prompt

// A PEM private key, or (allow_public) a public key.
absl::StatusOr<policy::EvpPkeyPtr> ReadKey(std::string_view path, bool allow_public) {
  const std::string file(path);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_file(file.c_str(), "r"), &BIO_free);
  if (bio == nullptr) {
    ERR_clear_error();
    return absl::NotFoundError(Cat("cannot open \"", file, "\""));
  }
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, &PasswordCallback, nullptr);
  if (key == nullptr && allow_public) {
    ERR_clear_error();
    BIO_reset(bio.get());
    key = PEM_read_bio_PUBKEY(bio.get(), nullptr, &PasswordCallback, nullptr);
  }
  ERR_clear_error();
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        Cat("\"", file, "\" is not a PEM ",
            allow_public ? "key" : "private key (encrypted keys are not supported)"));
  }
  return policy::EvpPkeyPtr(key);
}

absl::StatusOr<policy::JwsAlgorithm> AlgorithmFor(const Options& options, const EVP_PKEY* key) {
  if (!options.Has("--alg")) return policy::DefaultAlgorithmFor(key);
  std::optional<policy::JwsAlgorithm> alg = policy::JwsAlgorithmFromName(options.One("--alg"));
  if (!alg.has_value()) {
    return absl::InvalidArgumentError(Cat("--alg ", options.One("--alg"), " is not supported"));
  }
  absl::Status fits = policy::CheckKeyFitsAlgorithm(*alg, key);
  if (!fits.ok()) return fits;
  return *alg;
}

std::vector<std::string_view> SplitComma(std::string_view text) {
  std::vector<std::string_view> parts;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    if (std::string_view part = text.substr(0, comma); !part.empty()) parts.push_back(part);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return parts;
}

std::string JsonArray(const std::vector<std::string_view>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ",";
    out += JsonString(values[i]);
  }
  return out + "]";
}

int RunMint(const Args& args) {
  constexpr std::string_view kCommand = "mint";
  absl::StatusOr<Options> parsed =
      ParseOptions(args, {"--key", "--alg", "--kid", "--issuer", "--audience", "--subject",
                          "--groups", "--claim", "--ttl"});
  if (!parsed.ok()) return Usage(kCommand, std::string(parsed.status().message()), kMintUsage);
  const Options& options = *parsed;
  if (!options.positional.empty()) return Usage(kCommand, "unexpected argument", kMintUsage);
  for (std::string_view required : {"--key", "--issuer", "--audience", "--subject"}) {
    if (!options.Has(required) || options.One(required).empty()) {
      return Usage(kCommand, std::string(required) + " is required", kMintUsage);
    }
  }
  absl::Duration ttl = absl::Minutes(15);
  if (options.Has("--ttl") && (!absl::ParseDuration(std::string(options.One("--ttl")), &ttl) ||
                               ttl < absl::Seconds(1) || ttl > absl::Hours(24))) {
    return Usage(kCommand, "--ttl must be a duration of 1s..24h, such as 15m", kMintUsage);
  }
  std::vector<std::pair<std::string_view, std::string_view>> claims;
  for (std::string_view claim : options.All("--claim")) {
    const size_t eq = claim.find('=');
    if (eq == 0 || eq == std::string_view::npos) {
      return Usage(kCommand, "--claim must be NAME=VALUE", kMintUsage);
    }
    const std::string_view name = claim.substr(0, eq);
    for (std::string_view reserved : {"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "groups"}) {
      if (name == reserved) {
        return Usage(kCommand, Cat("--claim cannot set \"", name, "\"; use its option"),
                     kMintUsage);
      }
    }
    claims.emplace_back(name, claim.substr(eq + 1));
  }

  absl::StatusOr<policy::EvpPkeyPtr> key = ReadKey(options.One("--key"), false);
  if (!key.ok()) {
    std::fprintf(stderr, "pgbastion token mint: %s\n", std::string(key.status().message()).c_str());
    return 1;
  }
  absl::StatusOr<policy::JwsAlgorithm> alg = AlgorithmFor(options, key->get());
  if (!alg.ok()) {
    std::fprintf(stderr, "pgbastion token mint: %s\n", std::string(alg.status().message()).c_str());
    return 1;
  }
  std::string kid(options.One("--kid"));
  if (!options.Has("--kid")) kid = *policy::JwkThumbprint(key->get());

  unsigned char jti[16];
  RAND_bytes(jti, sizeof(jti));
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  const std::vector<std::string_view> audiences = options.All("--audience");
  std::string payload = Cat(
      "{\"iss\":", JsonString(options.One("--issuer")),
      ",\"sub\":", JsonString(options.One("--subject")),
      ",\"aud\":", audiences.size() == 1 ? JsonString(audiences[0]) : JsonArray(audiences),
      ",\"iat\":", now, ",\"nbf\":", now, ",\"exp\":", now + absl::ToInt64Seconds(ttl), ",\"jti\":",
      JsonString(policy::EncodeBase64Url(
          std::string_view(reinterpret_cast<const char*>(jti), sizeof(jti)))));
  if (options.Has("--groups"))
    Append(payload, ",\"groups\":", JsonArray(SplitComma(options.One("--groups"))));
  for (const auto& [name, value] : claims)
    Append(payload, ",", JsonString(name), ":", JsonString(value));
  payload += "}";
  const std::string header = Cat("{\"alg\":\"", policy::JwsAlgorithmName(*alg),
                                 "\",\"typ\":\"JWT\",\"kid\":", JsonString(kid), "}");
  absl::StatusOr<std::string> token = policy::MakeCompactJws(*alg, key->get(), header, payload);
  if (!token.ok()) {
    std::fprintf(stderr, "pgbastion token mint: %s\n",
                 std::string(token.status().message()).c_str());
    return 1;
  }
  std::printf("%s\n", token->c_str());
  return 0;
}

int RunJwks(const Args& args) {
  constexpr std::string_view kCommand = "jwks";
  absl::StatusOr<Options> parsed = ParseOptions(args, {"--key", "--kid", "--alg"});
  if (!parsed.ok()) return Usage(kCommand, std::string(parsed.status().message()), kJwksUsage);
  const Options& options = *parsed;
  if (!options.positional.empty()) return Usage(kCommand, "unexpected argument", kJwksUsage);
  if (!options.Has("--key")) return Usage(kCommand, "--key FILE is required", kJwksUsage);
  absl::StatusOr<policy::EvpPkeyPtr> key = ReadKey(options.One("--key"), true);
  if (!key.ok()) {
    std::fprintf(stderr, "pgbastion token jwks: %s\n", std::string(key.status().message()).c_str());
    return 1;
  }
  std::optional<policy::JwsAlgorithm> alg;
  if (options.Has("--alg")) {
    absl::StatusOr<policy::JwsAlgorithm> chosen = AlgorithmFor(options, key->get());
    if (!chosen.ok()) {
      std::fprintf(stderr, "pgbastion token jwks: %s\n",
                   std::string(chosen.status().message()).c_str());
      return 1;
    }
    alg = *chosen;
  }
  std::string kid(options.One("--kid"));
  if (!options.Has("--kid")) kid = *policy::JwkThumbprint(key->get());
  absl::StatusOr<std::string> jwk = policy::PublicJwkJson(key->get(), kid, alg);
  if (!jwk.ok()) {
    std::fprintf(stderr, "pgbastion token jwks: %s\n", std::string(jwk.status().message()).c_str());
    return 1;
  }
  std::printf("{\"keys\":[%s]}\n", jwk->c_str());
  return 0;
}

std::string IdentityJson(const policy::Identity& identity) {
  std::vector<std::string_view> groups(identity.groups.begin(), identity.groups.end());
  std::string claims = "{";
  for (size_t i = 0; i < identity.claims.size(); ++i) {
    if (i > 0) claims += ",";
    Append(claims, JsonString(identity.claims[i].first), ":",
           JsonString(identity.claims[i].second));
  }
  claims += "}";
  return Cat("{\"method\":", JsonString(policy::AuthMethodName(identity.method)),
             ",\"subject\":", JsonString(identity.subject), ",\"groups\":", JsonArray(groups),
             ",\"issuer\":", JsonString(identity.issuer),
             ",\"client_id\":", JsonString(identity.client_id),
             ",\"run_id\":", JsonString(identity.run_id), ",\"claims\":", claims,
             ",\"expires_at\":",
             JsonString(absl::FormatTime("%Y-%m-%dT%H:%M:%SZ",
                                         absl::FromUnixSeconds(identity.expires_at_unix),
                                         absl::UTCTimeZone())),
             "}");
}

int RunVerify(const Args& args) {
  constexpr std::string_view kCommand = "verify";
  absl::StatusOr<Options> parsed = ParseOptions(args, {"--config", "--user"});
  if (!parsed.ok()) return Usage(kCommand, std::string(parsed.status().message()), kVerifyUsage);
  const Options& options = *parsed;
  if (!options.Has("--config")) return Usage(kCommand, "--config FILE is required", kVerifyUsage);
  if (options.positional.size() > 1) return Usage(kCommand, "one TOKEN at most", kVerifyUsage);
  std::string token;
  if (options.positional.empty() || options.positional[0] == "-") {
    // One line; more than the cap is read only far enough to be refused.
    std::string line;
    std::getline(std::cin, line);
    token = line;
  } else {
    token = std::string(options.positional[0]);
  }
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();

  SetLogLevel(LogLevel::kWarning);
  absl::StatusOr<Config> config = LoadConfigFile(std::string(options.One("--config")));
  if (!config.ok()) {
    std::fprintf(stderr, "pgbastion token verify: %s\n",
                 std::string(config.status().message()).c_str());
    return 1;
  }
  if (config->issuers.empty()) {
    std::fputs("pgbastion token verify: the configuration has no [[issuer]]\n", stderr);
    return 1;
  }
  auto store = std::make_shared<policy::KeyStore>(config->issuers, &HttpGet);
  const absl::Time now = absl::Now();
  for (size_t i = 0; i < store->size(); ++i) {
    (void)store->Refresh(i, now);  // a failure is logged; the verdict says what it means
  }
  policy::TokenVerifier verifier(store, /*cache_capacity=*/0);
  const bool check_user = options.Has("--user");
  policy::TokenVerdict verdict = verifier.Verify(token, options.One("--user"), now);
  OPENSSL_cleanse(token.data(), token.size());
  if (!check_user && !verdict.ok() && verdict.refusal->check == policy::TokenCheck::kUser) {
    verdict.refusal.reset();  // no --user: user_match is not checked
  }
  if (!verdict.ok()) {
    std::printf("{\"ok\":false,\"check\":%s,\"sqlstate\":%s,\"reason\":%s}\n",
                JsonString(policy::TokenCheckName(verdict.refusal->check)).c_str(),
                JsonString(verdict.refusal->sqlstate()).c_str(),
                JsonString(verdict.refusal->reason).c_str());
    return 1;
  }
  std::printf("{\"ok\":true,\"issuer\":%s,\"kid\":%s,\"identity\":%s}\n",
              JsonString(verdict.issuer_name).c_str(), JsonString(verdict.kid).c_str(),
              IdentityJson(verdict.identity).c_str());
  return 0;
}

}  // namespace

int RunToken(const Args& args) {
  if (args.empty()) {
    std::fputs(kTokenUsage, stderr);
    return 2;
  }
  const std::string_view command = args[0];
  const Args rest(args.begin() + 1, args.end());
  const bool help = HasFlag(rest, "--help") || HasFlag(rest, "-h");
  if (command == "--help" || command == "-h" || command == "help") {
    std::fputs(kTokenUsage, stdout);
    return 0;
  }
  if (command == "mint") {
    if (help) return std::fputs(kMintUsage, stdout), 0;
    return RunMint(rest);
  }
  if (command == "jwks") {
    if (help) return std::fputs(kJwksUsage, stdout), 0;
    return RunJwks(rest);
  }
  if (command == "verify") {
    if (help) return std::fputs(kVerifyUsage, stdout), 0;
    return RunVerify(rest);
  }
  std::fprintf(stderr, "pgbastion token: unknown command '%.*s'\n\n%s",
               static_cast<int>(command.size()), command.data(), kTokenUsage);
  return 2;
}

}  // namespace pgb::tools
