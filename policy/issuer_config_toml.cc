#include "policy/issuer_config_toml.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "policy/key_store.h"

namespace pgb::policy {
namespace {

constexpr size_t kMaxNameLength = 63;
constexpr absl::Duration kMaxClockSkew = absl::Minutes(10);
constexpr absl::Duration kMinRefresh = absl::Seconds(1);
constexpr absl::Duration kMaxHttpTimeout = absl::Minutes(2);

constexpr std::string_view kKnownKeys[] = {
    "name",         "issuer",        "audience",     "jwks_file",
    "jwks_uri",     "discovery",     "ca_file",      "clock_skew",
    "algorithms",   "subject_claim", "groups_claim", "client_id_claim",
    "run_id_claim", "keep_claims",   "user_match",   "refresh_interval",
    "refresh_min",  "refresh_max",   "http_timeout", "session_grace"};

std::string Joined(const std::vector<std::string_view>& parts, std::string_view separator) {
  std::string out;
  for (std::string_view part : parts) {
    if (!out.empty()) out.append(separator);
    out.append(part);
  }
  return out;
}

std::string TypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "table";
    case toml::node_type::array:
      return "array";
    case toml::node_type::string:
      return "string";
    case toml::node_type::integer:
      return "integer";
    case toml::node_type::floating_point:
      return "float";
    case toml::node_type::boolean:
      return "boolean";
    default:
      return "date or time";
  }
}

// One [[issuer]] table: typed getters that record a problem and return
// nullopt on a wrong type, and unknown-key reporting.
class IssuerReader {
 public:
  IssuerReader(const toml::table& table, std::string path, std::vector<ConfigProblem>& problems)
      : table_(table), path_(std::move(path)), problems_(problems) {}

  void Error(std::string_view key, std::string message) {
    const toml::node* node = table_.get(key);
    problems_.push_back({node != nullptr ? node->source() : table_.source(),
                         path_ + "." + std::string(key), std::move(message)});
  }

  const toml::node* Get(std::string_view key) const { return table_.get(key); }
  bool Has(std::string_view key) const { return table_.contains(key); }

  std::optional<std::string> String(std::string_view key, bool allow_empty = false) {
    const toml::node* node = table_.get(key);
    if (node == nullptr) return std::nullopt;
    if (!node->is_string()) {
      Error(key, "expected a string, got " + TypeName(*node));
      return std::nullopt;
    }
    std::string value = node->as_string()->get();
    if (value.empty() && !allow_empty) {
      Error(key, "must not be empty");
      return std::nullopt;
    }
    return value;
  }

  // A string or an array of non-empty strings.
  std::optional<std::vector<std::string>> StringList(std::string_view key, bool allow_empty) {
    const toml::node* node = table_.get(key);
    if (node == nullptr) return std::nullopt;
    std::vector<std::string> out;
    if (node->is_string()) {
      out.push_back(node->as_string()->get());
    } else if (const toml::array* array = node->as_array()) {
      for (size_t i = 0; i < array->size(); ++i) {
        const toml::node& element = *array->get(i);
        if (!element.is_string()) {
          Error(key,
                "element " + std::to_string(i) + ": expected a string, got " + TypeName(element));
          return std::nullopt;
        }
        out.push_back(element.as_string()->get());
      }
    } else {
      Error(key, "expected a string or an array of strings, got " + TypeName(*node));
      return std::nullopt;
    }
    if (out.empty() && !allow_empty) {
      Error(key, "must name at least one value");
      return std::nullopt;
    }
    if (std::any_of(out.begin(), out.end(), [](const std::string& s) { return s.empty(); })) {
      Error(key, "must not contain an empty string");
      return std::nullopt;
    }
    return out;
  }

  std::optional<bool> Bool(std::string_view key) {
    const toml::node* node = table_.get(key);
    if (node == nullptr) return std::nullopt;
    if (!node->is_boolean()) {
      Error(key, "expected true or false, got " + TypeName(*node));
      return std::nullopt;
    }
    return node->as_boolean()->get();
  }

  // A duration string ("30s", "5m") within [min, max].
  std::optional<absl::Duration> Duration(std::string_view key, absl::Duration min,
                                         absl::Duration max) {
    std::optional<std::string> text = String(key);
    if (!text.has_value()) return std::nullopt;
    absl::Duration value;
    if (!absl::ParseDuration(*text, &value)) {
      Error(key, "\"" + *text +
                     "\" is not a duration; expected a duration string such as "
                     "\"500ms\", \"60s\", \"5m\"");
      return std::nullopt;
    }
    if (value < min || value > max) {
      Error(key, "must be " + absl::FormatDuration(min) + ".." + absl::FormatDuration(max) +
                     ", got \"" + *text + "\"");
      return std::nullopt;
    }
    return value;
  }

  void ReportUnknownKeys() {
    for (const auto& [key, node] : table_) {
      const std::string_view name = key.str();
      if (std::find(std::begin(kKnownKeys), std::end(kKnownKeys), name) != std::end(kKnownKeys)) {
        continue;
      }
      std::string message = "unknown key";
      if (name == "audiences" || name == "aud") message += "; use \"audience\"";
      if (name == "jwks_url") message += "; use \"jwks_uri\"";
      if (name == "url" || name == "iss") message += "; use \"issuer\"";
      problems_.push_back(
          {key.source(), path_ + "." + std::string(name),
           message + " (known keys: " +
               Joined(std::vector<std::string_view>(std::begin(kKnownKeys), std::end(kKnownKeys)),
                      ", ") +
               ")"});
    }
  }

 private:
  const toml::table& table_;
  std::string path_;
  std::vector<ConfigProblem>& problems_;
};

bool IsIssuerName(std::string_view name) {
  return !name.empty() && name.size() <= kMaxNameLength &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' ||
                  c == '-';
         });
}

std::optional<std::string> UnreadableFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return "cannot open \"" + path + "\": " + std::strerror(errno);
  ::close(fd);
  return std::nullopt;
}

IssuerConfig ParseIssuer(const toml::table& table, const std::string& path,
                         const std::function<std::string(std::string_view)>& resolve_path,
                         std::vector<ConfigProblem>& problems) {
  IssuerReader reader(table, path, problems);
  IssuerConfig out;
  if (!reader.Has("name")) {
    reader.Error("name", "required (names the issuer in logs and audit records)");
  } else if (auto v = reader.String("name")) {
    if (!IsIssuerName(*v)) {
      reader.Error("name", "\"" + *v + "\" must be 1..63 characters of A-Z a-z 0-9 _ . -");
    } else {
      out.name = *v;
    }
  }
  if (!reader.Has("issuer")) {
    reader.Error("issuer", "required (the exact \"iss\" of the provider's tokens)");
  } else if (auto v = reader.String("issuer")) {
    if (!IsAllowedProviderUrl(*v)) {
      reader.Error("issuer", "\"" + *v +
                                 "\" must be an https:// URL (http:// only on a loopback "
                                 "address, for tests)");
    } else {
      out.issuer = *v;
    }
  }
  if (!reader.Has("audience")) {
    reader.Error("audience",
                 "required (the \"aud\" value tokens for this gateway carry; a string or a list)");
  } else if (auto v = reader.StringList("audience", /*allow_empty=*/false)) {
    out.audiences = *v;
  }

  // Key source: exactly one of jwks_file, jwks_uri, discovery.
  const std::optional<std::string> jwks_file = reader.String("jwks_file");
  const std::optional<std::string> jwks_uri = reader.String("jwks_uri");
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
      reader.Error("jwks_file", "\"" + out.jwks_file + "\" has no usable signing key");
    }
  } else if (jwks_uri.has_value()) {
    out.key_source = KeySource::kJwksUri;
    if (!IsAllowedProviderUrl(*jwks_uri)) {
      reader.Error("jwks_uri", "\"" + *jwks_uri +
                                   "\" must be an https:// URL (http:// only on a loopback "
                                   "address, for tests)");
    }
    out.jwks_uri = *jwks_uri;
  } else {
    out.key_source = KeySource::kDiscovery;
  }
  if (auto v = reader.String("ca_file")) {
    if (out.key_source == KeySource::kJwksFile) {
      reader.Error("ca_file", "is only used when keys are fetched over HTTPS (not with jwks_file)");
    } else {
      out.ca_file = resolve_path(*v);
      if (std::optional<std::string> problem = UnreadableFile(out.ca_file)) {
        reader.Error("ca_file", *problem);
      }
    }
  }

  if (auto v = reader.Duration("clock_skew", absl::ZeroDuration(), kMaxClockSkew)) {
    out.clock_skew = *v;
  }
  out.algorithms.assign(std::begin(kAllJwsAlgorithms), std::end(kAllJwsAlgorithms));
  if (auto v = reader.StringList("algorithms", /*allow_empty=*/false)) {
    std::vector<JwsAlgorithm> algorithms;
    for (const std::string& name : *v) {
      const std::optional<JwsAlgorithm> alg = JwsAlgorithmFromName(name);
      if (!alg.has_value()) {
        std::vector<std::string_view> names;
        for (JwsAlgorithm a : kAllJwsAlgorithms) names.push_back(JwsAlgorithmName(a));
        reader.Error("algorithms", "\"" + name + "\" is not a supported algorithm (" +
                                       Joined(names, ", ") +
                                       (name == "none" || name.starts_with("HS")
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

  if (auto v = reader.String("subject_claim")) out.claims.subject_claim = *v;
  if (auto v = reader.String("groups_claim", /*allow_empty=*/true)) out.claims.groups_claim = *v;
  if (auto v = reader.StringList("client_id_claim", /*allow_empty=*/false)) {
    out.claims.client_id_claims = *v;
  }
  if (auto v = reader.String("run_id_claim")) out.claims.run_id_claim = *v;
  if (auto v = reader.StringList("keep_claims", /*allow_empty=*/true)) out.claims.keep_claims = *v;
  if (auto v = reader.String("user_match")) {
    if (*v == "subject") {
      out.user_match = UserMatch::kSubject;
    } else if (*v == "ignore") {
      out.user_match = UserMatch::kIgnore;
    } else {
      reader.Error("user_match", "\"" + *v + "\" is not one of subject | ignore");
    }
  }

  const absl::Duration kDay = absl::Hours(24);
  if (auto v = reader.Duration("refresh_interval", kMinRefresh, 7 * kDay))
    out.refresh_interval = *v;
  if (auto v = reader.Duration("refresh_min", kMinRefresh, kDay)) out.refresh_min = *v;
  if (auto v = reader.Duration("refresh_max", kMinRefresh, 7 * kDay)) out.refresh_max = *v;
  if (out.refresh_min > out.refresh_max) {
    reader.Error(reader.Has("refresh_min") ? "refresh_min" : "refresh_max",
                 "refresh_min (" + absl::FormatDuration(out.refresh_min) +
                     ") must not be longer than refresh_max (" +
                     absl::FormatDuration(out.refresh_max) + ")");
  } else {
    out.refresh_interval = std::clamp(out.refresh_interval, out.refresh_min, out.refresh_max);
  }
  if (auto v = reader.Duration("session_grace", absl::ZeroDuration(), kDay)) {
    out.session_grace = *v;
  }
  if (auto v = reader.Duration("http_timeout", absl::Milliseconds(100), kMaxHttpTimeout)) {
    out.http_timeout = *v;
  }
  reader.ReportUnknownKeys();
  return out;
}

}  // namespace

std::vector<IssuerConfig> ParseIssuerTables(
    const toml::node& node, const std::function<std::string(std::string_view)>& resolve_path,
    std::vector<ConfigProblem>& problems) {
  std::vector<IssuerConfig> issuers;
  const toml::array* array = node.as_array();
  if (array == nullptr) {
    problems.push_back({node.source(), "issuer",
                        "expected an array of tables ([[issuer]]), got " + TypeName(node)});
    return issuers;
  }
  absl::flat_hash_map<std::string, size_t> names, urls;
  for (size_t i = 0; i < array->size(); ++i) {
    const toml::node& element = *array->get(i);
    const std::string path = "issuer[" + std::to_string(i) + "]";
    const toml::table* table = element.as_table();
    if (table == nullptr) {
      problems.push_back({element.source(), path, "expected a table, got " + TypeName(element)});
      continue;
    }
    IssuerConfig issuer = ParseIssuer(*table, path, resolve_path, problems);
    if (!issuer.name.empty()) {
      auto [it, inserted] = names.emplace(issuer.name, i);
      if (!inserted) {
        problems.push_back({table->get("name")->source(), path + ".name",
                            "duplicate issuer name \"" + issuer.name + "\" (also issuer[" +
                                std::to_string(it->second) + "])"});
      }
    }
    if (!issuer.issuer.empty()) {
      auto [it, inserted] = urls.emplace(issuer.issuer, i);
      if (!inserted) {
        problems.push_back({table->get("issuer")->source(), path + ".issuer",
                            "issuer \"" + issuer.issuer + "\" is configured twice (also issuer[" +
                                std::to_string(it->second) +
                                "]); list every audience in one [[issuer]]"});
      }
    }
    issuers.push_back(std::move(issuer));
  }
  return issuers;
}

}  // namespace pgb::policy
