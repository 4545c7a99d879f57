#include "policy/policy_config.h"

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/time/time.h"

namespace pgb::policy {
namespace {

inline void AppendPart(std::string& out, std::string_view part) { out.append(part); }
template <typename T>
requires std::is_integral_v<T>
void AppendPart(std::string& out, T value) { out += std::to_string(value); }
template <typename... Parts>
std::string Cat(const Parts&... parts) {
  std::string out;
  (AppendPart(out, parts), ...);
  return out;
}

std::string Join(const std::vector<std::string_view>& parts, std::string_view separator) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out.append(separator);
    out.append(parts[i]);
  }
  return out;
}

std::string_view TypeName(const toml::node& node) {
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

// Optimal string alignment distance, for "did you mean" (as core/config.cc).
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min(
          {d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

constexpr StatementClass kClasses[] = {
    StatementClass::kRead,    StatementClass::kTransaction,   StatementClass::kSessionSetting,
    StatementClass::kUtility, StatementClass::kWrite,         StatementClass::kDdl,
    StatementClass::kDcl,     StatementClass::kCodeExecution, StatementClass::kServerAccess};

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

// Reads the keys of one table, collecting errors; reports unknown keys.
class Reader {
 public:
  Reader(const toml::table& table, std::string path, std::vector<std::string_view> known,
         std::vector<PolicyConfigError>& errors)
      : table_(table), path_(std::move(path)), known_(std::move(known)), errors_(errors) {}
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;
  ~Reader() { ReportUnknownKeys(); }

  std::string KeyPath(std::string_view key) const { return Cat(path_, ".", key); }
  const toml::node* Get(std::string_view key) const { return table_.get(key); }
  const toml::table& table() const { return table_; }
  const std::string& path() const { return path_; }
  std::vector<PolicyConfigError>& errors() { return errors_; }

  void ErrorAt(const toml::node& node, std::string key, std::string message) {
    errors_.push_back({node.source(), std::move(key), std::move(message)});
  }
  void Error(std::string_view key, std::string message) {
    const toml::node* node = table_.get(key);
    ErrorAt(node != nullptr ? *node : static_cast<const toml::node&>(table_), KeyPath(key),
            std::move(message));
  }

  std::optional<std::string> String(std::string_view key) {
    const toml::node* node = Get(key);
    if (node == nullptr) return std::nullopt;
    if (!node->is_string()) {
      Error(key, Cat("expected a string, got ", TypeName(*node)));
      return std::nullopt;
    }
    return node->as_string()->get();
  }

  std::optional<bool> Bool(std::string_view key) {
    const toml::node* node = Get(key);
    if (node == nullptr) return std::nullopt;
    if (!node->is_boolean()) {
      Error(key, Cat("expected true or false, got ", TypeName(*node)));
      return std::nullopt;
    }
    return node->as_boolean()->get();
  }

  std::optional<absl::Duration> Duration(std::string_view key) {
    std::optional<std::string> text = String(key);
    if (!text.has_value()) return std::nullopt;
    absl::Duration value;
    if (!absl::ParseDuration(*text, &value) || value <= absl::ZeroDuration() ||
        value == absl::InfiniteDuration()) {
      Error(key, Cat("\"", *text,
                     "\" is not a finite duration > 0; expected a duration string such as "
                     "\"500ms\", \"60s\", \"5m\""));
      return std::nullopt;
    }
    return value;
  }

  // An array of non-empty strings; each element is passed to fn(value, node,
  // element path). An empty array is an error: it would read as "no
  // condition" (everything) where a list is meant to narrow.
  template <typename Fn>
  void Strings(std::string_view key, Fn&& fn) {
    const toml::node* node = Get(key);
    if (node == nullptr) return;
    const toml::array* array = node->as_array();
    if (array == nullptr) {
      Error(key, Cat("expected an array of strings, got ", TypeName(*node)));
      return;
    }
    if (array->empty()) {
      Error(key, "must not be empty; omit the key instead");
      return;
    }
    for (size_t i = 0; i < array->size(); ++i) {
      const toml::node& element = *array->get(i);
      const std::string element_path = Cat(KeyPath(key), "[", i, "]");
      if (!element.is_string()) {
        ErrorAt(element, element_path, Cat("expected a string, got ", TypeName(element)));
      } else if (element.as_string()->get().empty()) {
        ErrorAt(element, element_path, "must not be empty");
      } else {
        fn(element.as_string()->get(), element, element_path);
      }
    }
  }

 private:
  void ReportUnknownKeys() {
    for (const auto& [key, node] : table_) {
      const std::string_view name = key.str();
      if (std::find(known_.begin(), known_.end(), name) != known_.end()) continue;
      std::string message = "unknown key";
      std::string_view best;
      size_t best_distance = 3;
      for (std::string_view known : known_) {
        const size_t distance = EditDistance(name, known);
        if (distance < best_distance) {
          best = known;
          best_distance = distance;
        }
      }
      if (!best.empty()) message += Cat("; did you mean \"", best, "\"?");
      message += Cat(" (known keys: ", Join(known_, ", "), ")");
      errors_.push_back({key.source(), KeyPath(name), std::move(message)});
    }
  }

  const toml::table& table_;
  std::string path_;
  std::vector<std::string_view> known_;
  std::vector<PolicyConfigError>& errors_;
};

void ParsePatterns(Reader& reader, std::string_view key, std::vector<NamePattern>& out) {
  reader.Strings(
      key, [&](const std::string& text, const toml::node& node, const std::string& path) {
        absl::StatusOr<NamePattern> pattern = ParseNamePattern(text);
        if (!pattern.ok()) {
          reader.ErrorAt(
              node, path,
              Cat("invalid pattern \"", text, "\": ", std::string(pattern.status().message())));
        } else {
          out.push_back(*std::move(pattern));
        }
      });
}

// [scope.relations] / [scope.functions]: allow and deny lists.
void ParseLists(Reader& scope, std::string_view key, std::vector<NamePattern>& allow,
                std::vector<NamePattern>& deny) {
  const toml::node* node = scope.Get(key);
  if (node == nullptr) return;
  const toml::table* table = node->as_table();
  if (table == nullptr) {
    scope.Error(key, Cat("expected a table with allow and deny lists ([", scope.path(), ".", key,
                         "] or ", key, " = { deny = [...] }), got ", TypeName(*node)));
    return;
  }
  Reader reader(*table, scope.KeyPath(key), {"allow", "deny"}, scope.errors());
  ParsePatterns(reader, "allow", allow);
  ParsePatterns(reader, "deny", deny);
}

void ParseScope(const toml::table& table, const std::string& path,
                const std::vector<std::string>& target_names,
                std::vector<PolicyConfigError>& errors, Scope& out) {
  Reader reader(table, path,
                {"name", "subjects", "groups", "issuers", "claims", "targets", "profile", "classes",
                 "relations", "functions", "allow_function_call", "approval", "search_path",
                 "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"},
                errors);
  if (!table.contains("name")) {
    reader.Error("name", "required (appears in rule names: scope.<name>.relations.deny)");
  } else if (std::optional<std::string> name = reader.String("name")) {
    if (!IsScopeName(*name)) {
      reader.Error("name", Cat("\"", *name, "\" must be 1..63 characters of A-Z a-z 0-9 _ -"));
    } else {
      out.name = *name;
    }
  }

  // Who.
  auto collect = [&](std::string_view key, std::vector<std::string>& into) {
    reader.Strings(key, [&](const std::string& value, const toml::node&, const std::string&) {
      into.push_back(value);
    });
  };
  collect("subjects", out.subjects);
  collect("groups", out.groups);
  collect("issuers", out.issuers);
  if (const toml::node* node = reader.Get("claims")) {
    if (const toml::table* claims = node->as_table()) {
      for (const auto& [key, value] : *claims) {
        const std::string claim_path = Cat(reader.KeyPath("claims"), ".", key.str());
        if (!value.is_string()) {
          reader.ErrorAt(value, claim_path,
                         Cat("expected a string (the claim's value), got ", TypeName(value)));
        } else {
          out.claims.emplace_back(std::string(key.str()), value.as_string()->get());
        }
      }
      if (claims->empty()) reader.Error("claims", "must not be empty; omit the key instead");
    } else {
      reader.Error("claims", Cat("expected a table of claim = \"value\", got ", TypeName(*node)));
    }
  }
  if (!table.contains("subjects") && !table.contains("groups") && !table.contains("issuers") &&
      !table.contains("claims")) {
    errors.push_back({table.source(), path,
                      "needs at least one of subjects, groups, issuers, claims (a scope for "
                      "everyone says so: subjects = [\"*\"])"});
  }
  reader.Strings("targets", [&](const std::string& name, const toml::node& node,
                                const std::string& element_path) {
    if (std::find(target_names.begin(), target_names.end(), name) == target_names.end()) {
      std::vector<std::string_view> names(target_names.begin(), target_names.end());
      reader.ErrorAt(node, element_path,
                     Cat("no [[target]] named \"", name, "\" (targets: ", Join(names, ", "), ")"));
    } else {
      out.targets.push_back(name);
    }
  });

  // What.
  constexpr std::string_view kProfiles[] = {"none", "read-only", "read-write", "admin"};
  constexpr Profile kProfileValues[] = {Profile::kNone, Profile::kReadOnly, Profile::kReadWrite,
                                        Profile::kAdmin};
  if (!table.contains("profile")) {
    reader.Error("profile", "required (read-only | read-write | admin | none)");
  } else if (std::optional<std::string> profile = reader.String("profile")) {
    const auto* it = std::find(std::begin(kProfiles), std::end(kProfiles), *profile);
    if (it == std::end(kProfiles)) {
      reader.Error("profile",
                   Cat("\"", *profile, "\" is not one of read-only | read-write | admin | none"));
    } else {
      out.profile = kProfileValues[it - std::begin(kProfiles)];
    }
  }
  const std::vector<std::string_view> class_names = ClassNames();
  if (reader.Get("classes") != nullptr) out.classes_set = true;
  reader.Strings("classes", [&](const std::string& name, const toml::node& node,
                                const std::string& element_path) {
    const std::optional<StatementClass> c = ClassByName(name);
    if (!c.has_value()) {
      reader.ErrorAt(
          node, element_path,
          Cat("\"", name, "\" is not a statement class (", Join(class_names, " | "), ")"));
    } else if (out.profile == Profile::kReadOnly &&
               (*c == StatementClass::kWrite || *c == StatementClass::kDdl ||
                *c == StatementClass::kDcl || *c == StatementClass::kCodeExecution ||
                *c == StatementClass::kServerAccess)) {
      reader.ErrorAt(node, element_path,
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
      reader.ErrorAt(node, element_path,
                     Cat("\"", name, "\" is not a statement class or \"destructive\" (",
                         Join(class_names, " | "), " | destructive)"));
    }
  });
  ParseLists(reader, "relations", out.relations_allow, out.relations_deny);
  ParseLists(reader, "functions", out.functions_allow, out.functions_deny);
  if (std::optional<bool> v = reader.Bool("allow_function_call")) out.allow_function_call = *v;
  if (reader.Get("search_path") != nullptr) {
    out.search_path.clear();
    collect("search_path", out.search_path);
  }

  // Limits.
  if (auto v = reader.Duration("statement_timeout")) out.statement_timeout = *v;
  if (auto v = reader.Duration("lock_timeout")) out.lock_timeout = *v;
  if (auto v = reader.Duration("idle_in_transaction_session_timeout")) {
    out.idle_in_transaction_session_timeout = *v;
  }
}

}  // namespace

std::shared_ptr<const Policy> ParsePolicy(const toml::table& root,
                                          const std::vector<std::string>& target_names,
                                          std::vector<PolicyConfigError>& errors) {
  const size_t errors_before = errors.size();
  const toml::node* node = root.get("scope");
  const toml::array* array = node != nullptr ? node->as_array() : nullptr;
  if (node == nullptr || (array != nullptr && array->empty())) {
    errors.push_back({node != nullptr ? node->source() : root.source(), "scope",
                      "at least one [[scope]] is required: an identity that matches no scope "
                      "gets no access (for a gateway-local admin: [[scope]] name = \"admin\" "
                      "subjects = [\"*\"] profile = \"admin\")"});
    return nullptr;
  }
  if (array == nullptr) {
    errors.push_back({node->source(), "scope",
                      Cat("expected an array of tables ([[scope]]), got ", TypeName(*node))});
    return nullptr;
  }
  std::vector<Scope> scopes;
  std::vector<std::pair<std::string, size_t>> names;  // for duplicates: name, index in the file
  for (size_t i = 0; i < array->size(); ++i) {
    const toml::node& element = *array->get(i);
    const std::string path = Cat("scope[", i, "]");
    const toml::table* table = element.as_table();
    if (table == nullptr) {
      errors.push_back({element.source(), path, Cat("expected a table, got ", TypeName(element))});
      continue;
    }
    Scope scope;
    ParseScope(*table, path, target_names, errors, scope);
    for (const auto& [name, index] : names) {
      if (!scope.name.empty() && name == scope.name) {
        errors.push_back({table->get("name")->source(), Cat(path, ".name"),
                          Cat("duplicate scope name \"", name, "\" (also scope[", index, "])")});
      }
    }
    names.emplace_back(scope.name, i);
    scopes.push_back(std::move(scope));
  }
  if (errors.size() != errors_before) return nullptr;
  return std::make_shared<const Policy>(std::move(scopes));
}

}  // namespace pgb::policy
