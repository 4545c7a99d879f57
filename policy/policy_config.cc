#include "policy/policy_config.h"

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/time/time.h"
#include "base/str_cat.h"
#include "policy/setting_value.h"

namespace pgb::policy {
namespace {

constexpr StatementClass kClasses[] = {
    StatementClass::kRead,        StatementClass::kTransaction, StatementClass::kSessionSetting,
    StatementClass::kUtility,     StatementClass::kWrite,       StatementClass::kHazard,
    StatementClass::kDdl,         StatementClass::kDcl,         StatementClass::kCodeExecution,
    StatementClass::kServerAccess};

std::vector<std::string_view> ClassNames() {
  std::vector<std::string_view> names;
  for (StatementClass c : kClasses) names.emplace_back(StatementClassName(c));
  return names;
}

std::optional<StatementClass> ClassByName(std::string_view name) {
  for (StatementClass c : kClasses) {
    if (name == StatementClassName(c)) return c;
  }
  return std::nullopt;
}

// Scope names appear in rule names (scope.<name>.relations.deny).
bool IsScopeName(std::string_view name) {
  return !name.empty() && name.size() <= 63 && std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

void ParsePatterns(TomlTableReader& reader, std::string_view key, std::vector<NamePattern>& out) {
  reader.Strings(
      key, [&](const std::string& text, const toml::node& node, const std::string& path) {
        absl::StatusOr<NamePattern> pattern = ParseNamePattern(text);
        if (!pattern.ok()) {
          reader.sink()(
              node.source(), path,
              Cat("invalid pattern \"", text, "\": ", std::string(pattern.status().message())));
        } else {
          out.push_back(*std::move(pattern));
        }
      });
}

// [scope.relations] / [scope.functions]: allow and deny lists.
void ParseLists(TomlTableReader& scope, std::string_view key, std::vector<NamePattern>& allow,
                std::vector<NamePattern>& deny) {
  const toml::node* node = scope.Get(key);
  if (node == nullptr) return;
  const toml::table* table = node->as_table();
  if (table == nullptr) {
    scope.Error(key, Cat("expected a table with allow and deny lists ([", scope.path(), ".", key,
                         "] or ", key, " = { deny = [...] }), got ", TomlTypeName(*node)));
    return;
  }
  TomlTableReader reader(*table, scope.KeyPath(key), {"allow", "deny"}, scope.sink());
  ParsePatterns(reader, "allow", allow);
  ParsePatterns(reader, "deny", deny);
}

// [[scope.mask]]: one ColumnMask per column name; a name is masked by one
// entry of the scope only.
void ParseMask(const toml::table& table, const std::string& path, const TomlProblemSink& sink,
               std::vector<std::pair<std::string, std::string>>& seen,
               std::vector<ColumnMask>& out) {
  TomlTableReader reader(table, path, {"columns", "method", "keep", "replacement"}, sink,
                         {{"column", "use columns = [\"...\"]"}});
  reader.Require("columns", "the column names to mask, as SQL writes them");
  ColumnMask mask;
  constexpr MaskMethod kMethods[] = {MaskMethod::kRedact, MaskMethod::kPartial, MaskMethod::kNull};
  const std::optional<size_t> method = reader.Enum("method", {"redact", "partial", "null"});
  if (method.has_value()) mask.method = kMethods[*method];
  // With a wrong method, which of keep and replacement belongs is unknown.
  const bool method_known = method.has_value() || !reader.Has("method");
  if (method_known && reader.Has("keep")) {
    if (mask.method != MaskMethod::kPartial) {
      reader.Error("keep", Cat("only with method = \"partial\" (method is \"",
                               MaskMethodName(mask.method), "\")"));
    } else if (auto keep = reader.Integer("keep", 1, 64)) {
      mask.keep = static_cast<uint32_t>(*keep);
    }
  }
  if (method_known && reader.Has("replacement")) {
    if (mask.method != MaskMethod::kRedact) {
      reader.Error("replacement", Cat("only with method = \"redact\" (method is \"",
                                      MaskMethodName(mask.method), "\")"));
    } else if (auto text = reader.String("replacement")) {
      const bool printable =
          std::all_of(text->begin(), text->end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
      if (text->empty() || text->size() > 64 || !printable) {
        reader.Error("replacement", "must be 1..64 characters of printable ASCII");
      } else {
        mask.replacement = *std::move(text);
      }
    }
  }
  reader.Strings(
      "columns",
      [&](const std::string& text, const toml::node& node, const std::string& element_path) {
        absl::StatusOr<std::string> column = ParseColumnName(text);
        if (!column.ok()) {
          sink(node.source(), element_path,
               Cat("invalid column name \"", text, "\": ", std::string(column.status().message())));
          return;
        }
        for (const auto& [name, where] : seen) {
          if (name == *column) {
            sink(node.source(), element_path,
                 Cat("column \"", name, "\" is already masked by ", where));
            return;
          }
        }
        seen.emplace_back(*column, path);
        ColumnMask entry = mask;
        entry.column = *std::move(column);
        out.push_back(std::move(entry));
      },
      TomlStringList{.empty = TomlStringList::Empty::kNeedsOne});
}

// `sources`: "local", "certificate", "peer" or "issuer:<[[issuer]] name>".
void ParseSources(TomlTableReader& reader, const std::vector<IssuerConfig>& issuers,
                  const TomlProblemSink& sink, std::vector<IdentitySource>& out) {
  reader.Strings("sources", [&](const std::string& text, const toml::node& node,
                                const std::string& element_path) {
    if (text == "local") {
      out.push_back({.method = AuthMethod::kLocalPassword, .issuer = {}});
      return;
    }
    if (text == "certificate") {
      out.push_back({.method = AuthMethod::kCertificate, .issuer = {}});
      return;
    }
    if (text == "peer") {
      out.push_back({.method = AuthMethod::kPeer, .issuer = {}});
      return;
    }
    std::vector<std::string_view> names;
    for (const IssuerConfig& issuer : issuers) names.push_back(issuer.name);
    const std::string known =
        names.empty() ? std::string("there is no [[issuer]]") : Cat("issuers: ", Join(names, ", "));
    if (!text.starts_with("issuer:")) {
      sink(node.source(), element_path,
           Cat("\"", text,
               "\" is not a source: \"local\" (gateway [[user]]s), \"certificate\" "
               "(client certificates), \"peer\" (OS users on a Unix-domain socket) or "
               "\"issuer:<name>\" (tokens of one [[issuer]]; ",
               known, ")"));
      return;
    }
    const std::string_view name = std::string_view(text).substr(7);
    const auto issuer = std::find_if(issuers.begin(), issuers.end(),
                                     [&](const IssuerConfig& i) { return i.name == name; });
    if (issuer == issuers.end()) {
      sink(node.source(), element_path, Cat("no [[issuer]] named \"", name, "\" (", known, ")"));
      return;
    }
    out.push_back({.method = AuthMethod::kToken, .issuer = issuer->issuer});
  });
}

// Whether the scope names anyone in particular (not only `subjects = ["*"]`).
bool NamesAnyone(const Scope& scope) {
  return !scope.groups.empty() || !scope.claims.empty() ||
         std::any_of(scope.subjects.begin(), scope.subjects.end(),
                     [](const std::string& s) { return s != "*"; });
}

void ParseScope(const toml::table& table, const std::string& path,
                const std::vector<std::string>& target_names,
                const std::vector<IssuerConfig>& issuers, const TomlProblemSink& sink, Scope& out) {
  TomlTableReader reader(table, path,
                         {"name",
                          "sources",
                          "subjects",
                          "groups",
                          "issuers",
                          "claims",
                          "targets",
                          "profile",
                          "classes",
                          "relations",
                          "functions",
                          "allow_function_call",
                          "approval",
                          "search_path",
                          "statement_timeout",
                          "lock_timeout",
                          "idle_in_transaction_session_timeout",
                          "mask",
                          "idle_session_timeout",
                          "work_mem",
                          "maintenance_work_mem",
                          "logical_decoding_work_mem",
                          "temp_buffers",
                          "temp_file_limit",
                          "max_parallel_workers_per_gather",
                          "max_advisory_locks",
                          "max_notifications",
                          "role",  // the database role template, read by core/role_config.h
                          "record"},  // the session recorder's: core/recording/recording_config.h
                         sink, {{"masks", "use [[scope.mask]] tables"}});
  reader.Require("name", "appears in rule names: scope.<name>.relations.deny");
  if (std::optional<std::string> name = reader.String("name")) {
    if (!IsScopeName(*name)) {
      reader.Error("name", Cat("\"", *name, "\" must be 1..63 characters of A-Z a-z 0-9 _ -"));
    } else {
      out.name = *name;
    }
  }

  // Who.
  ParseSources(reader, issuers, sink, out.sources);
  if (auto v = reader.StringList("subjects")) out.subjects = *std::move(v);
  if (auto v = reader.StringList("groups")) out.groups = *std::move(v);
  if (auto v = reader.StringList("issuers")) out.issuers = *std::move(v);
  if (const toml::node* node = reader.Get("claims")) {
    if (const toml::table* claims = node->as_table()) {
      for (const auto& [key, value] : *claims) {
        const std::string claim_path = Cat(reader.KeyPath("claims"), ".", key.str());
        if (!value.is_string()) {
          sink(value.source(), claim_path,
               Cat("expected a string (the claim's value), got ", TomlTypeName(value)));
        } else {
          out.claims.emplace_back(std::string(key.str()), value.as_string()->get());
        }
      }
      if (claims->empty()) reader.Error("claims", "must not be empty; omit the key instead");
    } else {
      reader.Error("claims",
                   Cat("expected a table of claim = \"value\", got ", TomlTypeName(*node)));
    }
  }
  if (!table.contains("subjects") && !table.contains("groups") && !table.contains("issuers") &&
      !table.contains("claims")) {
    sink(table.source(), path,
         "needs at least one of subjects, groups, issuers, claims (a scope for "
         "everyone says so: subjects = [\"*\"])");
  }
  // A name means something only within its source: the local user alice, a
  // token whose `sub` is alice and a certificate for CN=alice are three
  // identities. A scope that names someone must say which one it means.
  if (NamesAnyone(out) && !table.contains("sources") && !table.contains("issuers")) {
    sink(table.source(), path,
         "names subjects, groups or claims but not their sources: a name such as \"alice\" "
         "would then match the local user, a token subject from any issuer and a "
         "certificate's name alike, so whoever gets a token or certificate naming a privileged "
         "local user would get this scope; say which identities it is for with sources = "
         "[\"local\"], [\"certificate\"] or [\"issuer:<name>\"] (or issuers = [...])");
  }
  reader.Strings("targets", [&](const std::string& name, const toml::node& node,
                                const std::string& element_path) {
    if (std::find(target_names.begin(), target_names.end(), name) == target_names.end()) {
      sink(node.source(), element_path,
           Cat("no [[target]] named \"", name, "\" (targets: ", Join(target_names, ", "), ")"));
    } else {
      out.targets.push_back(name);
    }
  });

  // What.
  constexpr Profile kProfiles[] = {Profile::kReadOnly, Profile::kReadWrite, Profile::kAdmin,
                                   Profile::kNone};
  reader.Require("profile", "read-only | read-write | admin | none");
  if (auto v = reader.Enum("profile", {"read-only", "read-write", "admin", "none"})) {
    out.profile = kProfiles[*v];
  }
  const std::vector<std::string_view> class_names = ClassNames();
  if (reader.Get("classes") != nullptr) out.classes_set = true;
  reader.Strings("classes", [&](const std::string& name, const toml::node& node,
                                const std::string& element_path) {
    const std::optional<StatementClass> c = ClassByName(name);
    if (!c.has_value()) {
      sink(node.source(), element_path,
           Cat("\"", name, "\" is not a statement class (", Join(class_names, " | "), ")"));
    } else if (out.profile == Profile::kReadOnly &&
               (*c == StatementClass::kWrite || *c == StatementClass::kHazard ||
                *c == StatementClass::kDdl || *c == StatementClass::kDcl ||
                *c == StatementClass::kCodeExecution || *c == StatementClass::kServerAccess)) {
      sink(node.source(), element_path,
           Cat("profile read-only cannot allow ", name,
               " statements; use profile read-write, admin or none"));
    } else {
      out.classes |= ClassBit(*c);
    }
  });
  reader.Strings("approval", [&](const std::string& name, const toml::node& node,
                                 const std::string& element_path) {
    if (name == "destructive") {
      out.approval |= kApprovalDestructive;
    } else if (const std::optional<StatementClass> c = ClassByName(name)) {
      out.approval |= ClassBit(*c);
    } else {
      sink(node.source(), element_path,
           Cat("\"", name, "\" is not a statement class or \"destructive\" (",
               Join(class_names, " | "), " | destructive)"));
    }
  });
  ParseLists(reader, "relations", out.relations_allow, out.relations_deny);
  ParseLists(reader, "functions", out.functions_allow, out.functions_deny);
  if (std::optional<bool> v = reader.Bool("allow_function_call")) out.allow_function_call = *v;
  if (auto v = reader.StringList("search_path")) out.search_path = *std::move(v);

  // Limits.
  // At least 1ms: the gateway sends whole milliseconds, and 0 is "no limit".
  const auto timeout = [&](std::string_view key) {
    return reader.Duration(key, absl::Milliseconds(1), absl::Hours(24 * 24));
  };
  if (auto v = timeout("statement_timeout")) out.statement_timeout = *v;
  if (auto v = timeout("lock_timeout")) out.lock_timeout = *v;
  if (auto v = timeout("idle_in_transaction_session_timeout")) {
    out.idle_in_transaction_session_timeout = *v;
  }
  if (auto v = reader.Integer("max_advisory_locks", 0, 100000)) out.max_advisory_locks = *v;
  if (auto v = reader.Integer("max_notifications", 0, int64_t{1} << 40)) {
    out.max_notifications = *v;
  }
  // Resource caps, read as PostgreSQL reads the setting ("64MB", 65536,
  // "2min"): the scope's sessions start at the value, and may only lower it.
  for (const CappedSetting& capped : CappedSettings()) {
    const toml::node* node = reader.Get(capped.name);
    if (node == nullptr || capped.name == "statement_timeout" || capped.name == "lock_timeout" ||
        capped.name == "idle_in_transaction_session_timeout") {
      continue;  // durations, read above
    }
    std::optional<std::string> text;
    if (const auto* str = node->as_string()) text = str->get();
    if (const auto* integer = node->as_integer()) text = Cat(integer->get());
    if (!text.has_value()) {
      reader.TypeError(capped.name, "a string or an integer", *node);
      continue;
    }
    const std::optional<int64_t> value = ParseIntegerSetting(*text, capped.unit);
    if (!value.has_value()) {
      reader.Error(capped.name,
                   Cat("\"", *text, "\" is not a value PostgreSQL reads for ", capped.name));
    } else if (*value < capped.minimum || (*value == 0 && capped.zero_is_unlimited)) {
      reader.Error(capped.name, Cat("\"", *text, "\" is below PostgreSQL's minimum for ",
                                    capped.name, " or means no limit"));
    } else {
      out.setting_caps.emplace_back(std::string(capped.name), *value);
    }
  }

  // Masks.
  if (const toml::node* masks = reader.Get("mask")) {
    std::vector<std::pair<std::string, std::string>> seen;  // column, the mask's path
    ForEachTomlTable(*masks, reader.KeyPath("mask"), sink,
                     [&](const toml::table& mask, const std::string& mask_path, size_t) {
                       ParseMask(mask, mask_path, sink, seen, out.masks);
                     });
  }
}

}  // namespace

absl::StatusOr<std::shared_ptr<const Policy>> ParsePolicy(
    const toml::table& root, const std::vector<std::string>& target_names,
    const std::vector<IssuerConfig>& issuers, const TomlProblemSink& report) {
  size_t problems = 0;
  const TomlProblemSink sink = [&](const toml::source_region& where, std::string_view key,
                                   std::string_view message) {
    ++problems;
    report(where, key, message);
  };
  const auto failed = [&] {
    return absl::InvalidArgumentError(
        Cat("[[scope]]: ", problems, problems == 1 ? " problem" : " problems", " reported"));
  };
  const toml::node* node = root.get("scope");
  const toml::array* array = node != nullptr ? node->as_array() : nullptr;
  if (node == nullptr || (array != nullptr && array->empty())) {
    sink(node != nullptr ? node->source() : root.source(), "scope",
         "at least one [[scope]] is required: an identity that matches no scope "
         "gets no access (for a gateway-local admin: [[scope]] name = \"admin\" "
         "subjects = [\"*\"] profile = \"admin\")");
    return failed();
  }
  std::vector<Scope> scopes;
  TomlUniqueNames names("scope");
  ForEachTomlTable(*node, "scope", sink,
                   [&](const toml::table& table, const std::string& path, size_t i) {
                     Scope scope;
                     ParseScope(table, path, target_names, issuers, sink, scope);
                     names.Add(table, path, i, scope.name, sink);
                     scopes.push_back(std::move(scope));
                   });
  if (problems > 0) return failed();
  return std::make_shared<const Policy>(std::move(scopes));
}

}  // namespace pgb::policy
