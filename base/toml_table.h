// Reads one table of the configuration file (TOML, parsed by tomlplusplus)
// key by key: typed getters check types and ranges, and when the reader goes
// out of scope every key it was not told about is reported, with a "did you
// mean" suggestion or a hint. Problems go to a sink (where, the dotted key
// path, the message), so each caller keeps its own error format and order.
// The value of an unknown key is never echoed: it may be a secret.
//
//   TomlTableReader reader(table, "target[0]", {"name", "host", "port"}, sink,
//                          {{"sslmode", "use \"tls\""}});
//   if (auto port = reader.Integer("port", 1, 65535)) out.port = *port;
//   // prot = 1 -> target[0].prot: unknown key; did you mean "port"? (known keys: name, host, port)
//
// The readers of [gateway]/[[listener]]/[[target]]/[[user]] (core/config.cc),
// [[scope]] (policy/policy_config.cc) and [[issuer]]
// (policy/issuer_config_toml.cc) share it, so one key type reads and fails
// the same way in every section.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "base/str_cat.h"
#include "toml++/toml.h"

namespace pgb {

// Receives one problem: where it is in the file, the key path it concerns
// ("scope[0].relations.deny[1]") and what is wrong.
using TomlProblemSink = std::function<void(const toml::source_region& where,
                                           std::string_view key_path, std::string_view message)>;

// "string", "integer", "float", "boolean", "table", "array", "date", "time",
// "date-time": for "expected ..., got <type>".
std::string_view TomlTypeName(const toml::node& node);

// Calls fn(table, "<path>[i]", i) for each table of an array of tables
// (`node` is the value at `path`). Reports a value that is not an array and
// elements that are not tables; whether an empty array is allowed is the
// caller's business.
template <typename Fn>
void ForEachTomlTable(const toml::node& node, std::string_view path, const TomlProblemSink& sink,
                      Fn&& fn);

// What a list of strings may look like (TomlTableReader::Strings).
struct TomlStringList {
  enum class Empty {
    kOmitKey,   // an error: an empty list would read as "no condition"
    kNeedsOne,  // an error: the key needs a value
    kAllowed,
  };
  bool single_string = false;  // `key = "a"` reads as ["a"]
  Empty empty = Empty::kOmitKey;
};

// Catches a value of one key that two tables of an array of tables share,
// reported at the later table:
//   TomlUniqueNames names("target");
//   names.Add(table, "target[1]", 1, "app", sink);
//   // target[1].name: duplicate target name "app" (also target[0])
class TomlUniqueNames {
 public:
  explicit TomlUniqueNames(std::string_view array, std::string_view key = "name")
      : array_(array), key_(key) {}

  // The index of an earlier table with `value`; otherwise remembers `value`
  // for table `index` and returns nullopt.
  std::optional<size_t> Earlier(const std::string& value, size_t index);
  // Reports `value` (of the table at `path`, element `index`; at the table
  // when the key is absent and `value` a default) if an earlier table had
  // it. An empty value is skipped: it was reported as wrong already.
  void Add(const toml::table& table, std::string_view path, size_t index, const std::string& value,
           const TomlProblemSink& sink);

 private:
  std::string_view array_;
  std::string_view key_;
  std::map<std::string, size_t, std::less<>> seen_;
};

class TomlTableReader {
 public:
  // Said instead of a suggestion when `key` is found: {"password", "use password_file"}.
  struct Hint {
    std::string_view key;
    std::string_view text;
  };

  // `path` is the table's key path ("" for the root); `known_keys` and
  // `hints` must outlive the reader (string literals, as a rule).
  TomlTableReader(const toml::table& table, std::string path,
                  std::vector<std::string_view> known_keys, TomlProblemSink sink,
                  std::vector<Hint> hints = {});
  ~TomlTableReader();  // reports the unknown keys
  TomlTableReader(const TomlTableReader&) = delete;
  TomlTableReader& operator=(const TomlTableReader&) = delete;

  const toml::table& table() const { return table_; }
  const std::string& path() const { return path_; }
  const TomlProblemSink& sink() const { return sink_; }
  std::string KeyPath(std::string_view key) const;
  const toml::node* Get(std::string_view key) const { return table_.get(key); }
  bool Has(std::string_view key) const { return table_.contains(key); }

  // A problem with `key`, reported at its value (or at the table when absent).
  void Error(std::string_view key, std::string_view message);
  // "expected <expected>, got <type of node>".
  void TypeError(std::string_view key, std::string_view expected, const toml::node& node);
  // Reports "required (<what>)" and returns false when `key` is absent.
  bool Require(std::string_view key, std::string_view what);

  // Each getter returns nullopt when the key is absent or its value was
  // reported as wrong.
  [[nodiscard]] std::optional<std::string> String(std::string_view key);
  [[nodiscard]] std::optional<std::string> NonEmptyString(std::string_view key);
  // Present and non-empty; `what` explains the key in the message.
  [[nodiscard]] std::optional<std::string> RequiredString(std::string_view key,
                                                          std::string_view what);
  [[nodiscard]] std::optional<bool> Bool(std::string_view key);
  [[nodiscard]] std::optional<int64_t> Integer(std::string_view key, int64_t min, int64_t max);
  // A duration string ("500ms", "60s", "5m"), finite and > 0.
  [[nodiscard]] std::optional<absl::Duration> Duration(std::string_view key);
  // A duration string within [min, max]; max may be absl::InfiniteDuration()
  // (then any finite duration >= min).
  [[nodiscard]] std::optional<absl::Duration> Duration(std::string_view key, absl::Duration min,
                                                       absl::Duration max);
  // One of `allowed` (matched exactly); returns its index.
  [[nodiscard]] std::optional<size_t> Enum(std::string_view key,
                                           const std::vector<std::string_view>& allowed);

  // A list of non-empty strings: each good one is passed to
  // fn(value, node, element_path); a bad element is reported at its own path
  // ("scope[0].groups[1]") and skipped. Returns true when the key is present
  // and the list and all its elements are well-formed.
  template <typename Fn>
  bool Strings(std::string_view key, Fn&& fn, TomlStringList rules = {});
  // The same, collected; nullopt when absent or anything was reported.
  [[nodiscard]] std::optional<std::vector<std::string>> StringList(std::string_view key,
                                                                   TomlStringList rules = {});

 private:
  // The list itself (a string, an array, or a reported problem): returns the
  // elements to visit, each with its path.
  bool CheckList(std::string_view key, const TomlStringList& rules,
                 std::vector<std::pair<const toml::node*, std::string>>& elements);
  // A parsed duration string and its text (for the range message).
  std::optional<std::pair<absl::Duration, std::string>> DurationText(std::string_view key);
  void ReportUnknownKeys();

  const toml::table& table_;
  std::string path_;
  std::vector<std::string_view> known_keys_;
  TomlProblemSink sink_;
  std::vector<Hint> hints_;
};

template <typename Fn>
void ForEachTomlTable(const toml::node& node, std::string_view path, const TomlProblemSink& sink,
                      Fn&& fn) {
  const toml::array* array = node.as_array();
  if (array == nullptr) {
    sink(node.source(), path,
         Cat("expected an array of tables ([[", path, "]]), got ", TomlTypeName(node)));
    return;
  }
  for (size_t i = 0; i < array->size(); ++i) {
    const toml::node& element = *array->get(i);
    const std::string element_path = Cat(path, "[", i, "]");
    if (const toml::table* table = element.as_table()) {
      fn(*table, element_path, i);
    } else {
      sink(element.source(), element_path, Cat("expected a table, got ", TomlTypeName(element)));
    }
  }
}

template <typename Fn>
bool TomlTableReader::Strings(std::string_view key, Fn&& fn, TomlStringList rules) {
  std::vector<std::pair<const toml::node*, std::string>> elements;
  bool ok = CheckList(key, rules, elements);
  for (const auto& [node, element_path] : elements) {
    const std::string* value = node->is_string() ? &node->as_string()->get() : nullptr;
    if (value == nullptr) {
      sink_(node->source(), element_path, Cat("expected a string, got ", TomlTypeName(*node)));
      ok = false;
    } else if (value->empty()) {
      sink_(node->source(), element_path, "must not be empty");
      ok = false;
    } else {
      fn(*value, *node, element_path);
    }
  }
  return ok;
}

}  // namespace pgb
