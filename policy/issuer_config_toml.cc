#include "policy/issuer_config_toml.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "base/str_cat.h"
#include "policy/key_store.h"

namespace pgb::policy {
namespace {

constexpr size_t kMaxNameLength = 63;
constexpr absl::Duration kMaxClockSkew = absl::Minutes(10);
constexpr absl::Duration kMinRefresh = absl::Seconds(1);
constexpr absl::Duration kMaxHttpTimeout = absl::Minutes(2);
// audience, algorithms, client_id_claim: one string or a non-empty list.
constexpr TomlStringList kOneOrMore = {.single_string = true,
                                       .empty = TomlStringList::Empty::kNeedsOne};

bool IsIssuerName(std::string_view name) {
  return !name.empty() && name.size() <= kMaxNameLength &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' ||
                  c == '-';
         });
}

absl::Status CheckReadable(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    return absl::NotFoundError(Cat("cannot open \"", path, "\": ", std::strerror(errno)));
  }
  ::close(fd);
  return absl::OkStatus();
}

IssuerConfig ParseIssuer(const toml::table& table, const std::string& path,
                         const std::function<std::string(std::string_view)>& resolve_path,
                         const TomlProblemSink& sink) {
  TomlTableReader reader(table, path,
                         {"name",
                          "issuer",
                          "audience",
                          "jwks_file",
                          "jwks_uri",
                          "discovery",
                          "ca_file",
                          "clock_skew",
                          "algorithms",
                          "subject_claim",
                          "groups_claim",
                          "client_id_claim",
                          "run_id_claim",
                          "keep_claims",
                          "user_match",
                          "refresh_interval",
                          "refresh_min",
                          "refresh_max",
                          "http_timeout",
                          "session_grace",
                          "max_token_lifetime"},
                         sink,
                         {{"audiences", "use \"audience\""},
                          {"aud", "use \"audience\""},
                          {"jwks_url", "use \"jwks_uri\""},
                          {"url", "use \"issuer\""},
                          {"iss", "use \"issuer\""}});
  IssuerConfig out;
  if (auto v = reader.RequiredString("name", "names the issuer in logs and audit records")) {
    if (!IsIssuerName(*v)) {
      reader.Error("name", Cat("\"", *v, "\" must be 1..63 characters of A-Z a-z 0-9 _ . -"));
    } else {
      out.name = *v;
    }
  }
  if (auto v = reader.RequiredString("issuer", "the exact \"iss\" of the provider's tokens")) {
    if (!IsAllowedProviderUrl(*v)) {
      reader.Error("issuer", Cat("\"", *v,
                                 "\" must be an https:// URL (http:// only on a loopback "
                                 "address, for tests)"));
    } else {
      out.issuer = *v;
    }
  }
  reader.Require("audience", "the \"aud\" value tokens for this gateway carry; a string or a list");
  if (auto v = reader.StringList("audience", kOneOrMore)) out.audiences = *std::move(v);

  // Key source: exactly one of jwks_file, jwks_uri, discovery.
  const std::optional<std::string> jwks_file = reader.NonEmptyString("jwks_file");
  const std::optional<std::string> jwks_uri = reader.NonEmptyString("jwks_uri");
  const std::optional<bool> discovery = reader.Bool("discovery");
  const int explicit_sources = (reader.Has("jwks_file") ? 1 : 0) + (reader.Has("jwks_uri") ? 1 : 0);
  if (explicit_sources > 1) {
    reader.Error("jwks_uri", "set either jwks_file or jwks_uri, not both");
  } else if (explicit_sources == 1 && discovery.value_or(false)) {
    reader.Error("discovery", "discovery = true cannot be combined with jwks_file or jwks_uri");
  } else if (explicit_sources == 0 && discovery.has_value() && !*discovery) {
    reader.Error("discovery", "discovery = false needs jwks_file or jwks_uri");
  }
  if (jwks_file.has_value()) {
    out.key_source = KeySource::kJwksFile;
    out.jwks_file = resolve_path(*jwks_file);
    absl::StatusOr<KeySet> keys = LoadKeySetFile(out.jwks_file);
    if (!keys.ok()) {
      reader.Error("jwks_file", std::string(keys.status().message()));
    } else if (keys->keys.empty()) {
      reader.Error("jwks_file", Cat("\"", out.jwks_file, "\" has no usable signing key"));
    }
  } else if (jwks_uri.has_value()) {
    out.key_source = KeySource::kJwksUri;
    if (!IsAllowedProviderUrl(*jwks_uri)) {
      reader.Error("jwks_uri", Cat("\"", *jwks_uri,
                                   "\" must be an https:// URL (http:// only on a loopback "
                                   "address, for tests)"));
    }
    out.jwks_uri = *jwks_uri;
  } else {
    out.key_source = KeySource::kDiscovery;
  }
  if (auto v = reader.NonEmptyString("ca_file")) {
    if (out.key_source == KeySource::kJwksFile) {
      reader.Error("ca_file", "is only used when keys are fetched over HTTPS (not with jwks_file)");
    } else {
      out.ca_file = resolve_path(*v);
      if (absl::Status readable = CheckReadable(out.ca_file); !readable.ok()) {
        reader.Error("ca_file", std::string(readable.message()));
      }
    }
  }

  if (auto v = reader.Duration("clock_skew", absl::ZeroDuration(), kMaxClockSkew)) {
    out.clock_skew = *v;
  }
  out.algorithms.assign(std::begin(kAllJwsAlgorithms), std::end(kAllJwsAlgorithms));
  if (auto v = reader.StringList("algorithms", kOneOrMore)) {
    std::vector<JwsAlgorithm> algorithms;
    for (const std::string& name : *v) {
      const std::optional<JwsAlgorithm> alg = JwsAlgorithmFromName(name);
      if (!alg.has_value()) {
        std::vector<std::string_view> names;
        for (JwsAlgorithm a : kAllJwsAlgorithms) names.push_back(JwsAlgorithmName(a));
        reader.Error("algorithms",
                     Cat("\"", name, "\" is not a supported algorithm (", Join(names, ", "),
                         name == "none" || name.starts_with("HS")
                             ? "; unsigned and HMAC tokens are never accepted)"
                             : ")"));
        continue;
      }
      if (std::find(algorithms.begin(), algorithms.end(), *alg) == algorithms.end()) {
        algorithms.push_back(*alg);
      }
    }
    out.algorithms = std::move(algorithms);
  }

  if (auto v = reader.NonEmptyString("subject_claim")) out.claims.subject_claim = *v;
  if (auto v = reader.String("groups_claim")) out.claims.groups_claim = *v;  // "": no groups
  if (auto v = reader.StringList("client_id_claim", kOneOrMore)) {
    out.claims.client_id_claims = *std::move(v);
  }
  if (auto v = reader.NonEmptyString("run_id_claim")) out.claims.run_id_claim = *v;
  if (auto v = reader.StringList(
          "keep_claims", {.single_string = true, .empty = TomlStringList::Empty::kAllowed})) {
    out.claims.keep_claims = *std::move(v);
  }
  if (auto v = reader.Enum("user_match", {"subject", "ignore"})) {
    out.user_match = *v == 0 ? UserMatch::kSubject : UserMatch::kIgnore;
  }

  const absl::Duration kDay = absl::Hours(24);
  if (auto v = reader.Duration("refresh_interval", kMinRefresh, 7 * kDay))
    out.refresh_interval = *v;
  if (auto v = reader.Duration("refresh_min", kMinRefresh, kDay)) out.refresh_min = *v;
  if (auto v = reader.Duration("refresh_max", kMinRefresh, 7 * kDay)) out.refresh_max = *v;
  if (out.refresh_min > out.refresh_max) {
    reader.Error(
        reader.Has("refresh_min") ? "refresh_min" : "refresh_max",
        Cat("refresh_min (", absl::FormatDuration(out.refresh_min),
            ") must not be longer than refresh_max (", absl::FormatDuration(out.refresh_max), ")"));
  } else {
    out.refresh_interval = std::clamp(out.refresh_interval, out.refresh_min, out.refresh_max);
  }
  if (auto v = reader.Duration("session_grace", absl::ZeroDuration(), kDay)) {
    out.session_grace = *v;
  }
  if (auto v = reader.Duration("max_token_lifetime", absl::Minutes(1), 366 * kDay)) {
    out.max_token_lifetime = *v;
  }
  if (auto v = reader.Duration("http_timeout", absl::Milliseconds(100), kMaxHttpTimeout)) {
    out.http_timeout = *v;
  }
  return out;
}

}  // namespace

std::vector<IssuerConfig> ParseIssuerTables(
    const toml::node& node, const std::function<std::string(std::string_view)>& resolve_path,
    const TomlProblemSink& sink) {
  std::vector<IssuerConfig> issuers;
  TomlUniqueNames names("issuer"), urls("issuer", "issuer");
  ForEachTomlTable(node, "issuer", sink,
                   [&](const toml::table& table, const std::string& path, size_t i) {
                     IssuerConfig issuer = ParseIssuer(table, path, resolve_path, sink);
                     names.Add(table, path, i, issuer.name, sink);
                     const std::optional<size_t> earlier =
                         issuer.issuer.empty() ? std::nullopt : urls.Earlier(issuer.issuer, i);
                     if (earlier.has_value()) {
                       sink(table.get("issuer")->source(), Cat(path, ".issuer"),
                            Cat("issuer \"", issuer.issuer, "\" is configured twice (also issuer[",
                                *earlier, "]); list every audience in one [[issuer]]"));
                     }
                     issuers.push_back(std::move(issuer));
                   });
  return issuers;
}

}  // namespace pgb::policy
