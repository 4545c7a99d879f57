#include "base/toml_table.h"

#include <algorithm>
#include <utility>

namespace pgb {
namespace {

constexpr std::string_view kDurationExpected =
    "a duration string such as \"500ms\", \"60s\", \"5m\"";

// Optimal string alignment distance (Levenshtein plus adjacent transposition,
// so "tsl" is one edit from "tls").
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

}  // namespace

std::string_view TomlTypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::none:
      return "nothing";
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
    case toml::node_type::date:
      return "date";
    case toml::node_type::time:
      return "time";
    case toml::node_type::date_time:
      return "date-time";
  }
  return "unknown";
}

std::optional<size_t> TomlUniqueNames::Earlier(const std::string& value, size_t index) {
  auto [it, inserted] = seen_.emplace(value, index);
  if (inserted) return std::nullopt;
  return it->second;
}

void TomlUniqueNames::Add(const toml::table& table, std::string_view path, size_t index,
                          const std::string& value, const TomlProblemSink& sink) {
  if (value.empty()) return;
  if (std::optional<size_t> earlier = Earlier(value, index)) {
    const toml::node* node = table.get(key_);  // absent when the value is a default
    sink(node != nullptr ? node->source() : table.source(), Cat(path, ".", key_),
         Cat("duplicate ", array_, " ", key_, " \"", value, "\" (also ", array_, "[", *earlier,
             "])"));
  }
}

TomlTableReader::TomlTableReader(const toml::table& table, std::string path,
                                 std::vector<std::string_view> known_keys, TomlProblemSink sink,
                                 std::vector<Hint> hints)
    : table_(table),
      path_(std::move(path)),
      known_keys_(std::move(known_keys)),
      sink_(std::move(sink)),
      hints_(std::move(hints)) {}

TomlTableReader::~TomlTableReader() { ReportUnknownKeys(); }

std::string TomlTableReader::KeyPath(std::string_view key) const {
  return path_.empty() ? std::string(key) : Cat(path_, ".", key);
}

void TomlTableReader::Error(std::string_view key, std::string_view message) {
  const toml::node* node = table_.get(key);
  sink_(node != nullptr ? node->source() : table_.source(), KeyPath(key), message);
}

void TomlTableReader::TypeError(std::string_view key, std::string_view expected,
                                const toml::node& node) {
  sink_(node.source(), KeyPath(key), Cat("expected ", expected, ", got ", TomlTypeName(node)));
}

bool TomlTableReader::Require(std::string_view key, std::string_view what) {
  if (Has(key)) return true;
  Error(key, Cat("required (", what, ")"));
  return false;
}

std::optional<std::string> TomlTableReader::String(std::string_view key) {
  const toml::node* node = table_.get(key);
  if (node == nullptr) return std::nullopt;
  if (!node->is_string()) {
    TypeError(key, "a string", *node);
    return std::nullopt;
  }
  return node->as_string()->get();
}

std::optional<std::string> TomlTableReader::NonEmptyString(std::string_view key) {
  std::optional<std::string> value = String(key);
  if (value.has_value() && value->empty()) {
    Error(key, "must not be empty");
    return std::nullopt;
  }
  return value;
}

std::optional<std::string> TomlTableReader::RequiredString(std::string_view key,
                                                           std::string_view what) {
  if (!Require(key, what)) return std::nullopt;
  std::optional<std::string> value = String(key);
  if (value.has_value() && value->empty()) {
    Error(key, Cat("must not be empty (", what, ")"));
    return std::nullopt;
  }
  return value;
}

std::optional<bool> TomlTableReader::Bool(std::string_view key) {
  const toml::node* node = table_.get(key);
  if (node == nullptr) return std::nullopt;
  if (!node->is_boolean()) {
    TypeError(key, "true or false", *node);
    return std::nullopt;
  }
  return node->as_boolean()->get();
}

std::optional<int64_t> TomlTableReader::Integer(std::string_view key, int64_t min, int64_t max) {
  const toml::node* node = table_.get(key);
  if (node == nullptr) return std::nullopt;
  if (!node->is_integer()) {
    TypeError(key, Cat("an integer ", min, "..", max), *node);
    return std::nullopt;
  }
  const int64_t value = node->as_integer()->get();
  if (value < min || value > max) {
    Error(key, Cat("must be ", min, "..", max, ", got ", value));
    return std::nullopt;
  }
  return value;
}

std::optional<std::pair<absl::Duration, std::string>> TomlTableReader::DurationText(
    std::string_view key) {
  const toml::node* node = table_.get(key);
  if (node == nullptr) return std::nullopt;
  if (!node->is_string()) {
    TypeError(key, kDurationExpected, *node);
    return std::nullopt;
  }
  const std::string& text = node->as_string()->get();
  absl::Duration value;
  if (!absl::ParseDuration(text, &value)) {
    Error(key, Cat("\"", text, "\" is not a duration; expected ", kDurationExpected));
    return std::nullopt;
  }
  return std::make_pair(value, text);
}

std::optional<absl::Duration> TomlTableReader::Duration(std::string_view key) {
  std::optional<std::pair<absl::Duration, std::string>> read = DurationText(key);
  if (!read.has_value()) return std::nullopt;
  const auto& [value, text] = *read;
  if (value <= absl::ZeroDuration() || value == absl::InfiniteDuration()) {
    Error(key, Cat("must be a finite duration > 0, got \"", text, "\""));
    return std::nullopt;
  }
  return value;
}

std::optional<absl::Duration> TomlTableReader::Duration(std::string_view key, absl::Duration min,
                                                        absl::Duration max) {
  std::optional<std::pair<absl::Duration, std::string>> read = DurationText(key);
  if (!read.has_value()) return std::nullopt;
  const auto& [value, text] = *read;
  if (value < min || value > max || value == absl::InfiniteDuration()) {
    Error(key, max == absl::InfiniteDuration()
                   ? Cat("must be a finite duration >= ", absl::FormatDuration(min), ", got \"",
                         text, "\"")
                   : Cat("must be ", absl::FormatDuration(min), "..", absl::FormatDuration(max),
                         ", got \"", text, "\""));
    return std::nullopt;
  }
  return value;
}

std::optional<size_t> TomlTableReader::Enum(std::string_view key,
                                            const std::vector<std::string_view>& allowed) {
  std::optional<std::string> text = String(key);
  if (!text.has_value()) return std::nullopt;
  for (size_t i = 0; i < allowed.size(); ++i) {
    if (*text == allowed[i]) return i;
  }
  Error(key, Cat("\"", *text, "\" is not one of ", Join(allowed, " | ")));
  return std::nullopt;
}

bool TomlTableReader::CheckList(std::string_view key, const TomlStringList& rules,
                                std::vector<std::pair<const toml::node*, std::string>>& elements) {
  const toml::node* node = table_.get(key);
  if (node == nullptr) return false;
  if (rules.single_string && node->is_string()) {
    elements.emplace_back(node, KeyPath(key));
    return true;
  }
  const toml::array* array = node->as_array();
  if (array == nullptr) {
    TypeError(key, rules.single_string ? "a string or an array of strings" : "an array of strings",
              *node);
    return false;
  }
  if (array->empty()) {
    switch (rules.empty) {
      case TomlStringList::Empty::kOmitKey:
        Error(key, "must not be empty; omit the key instead");
        return false;
      case TomlStringList::Empty::kNeedsOne:
        Error(key, "must name at least one value");
        return false;
      case TomlStringList::Empty::kAllowed:
        return true;
    }
  }
  for (size_t i = 0; i < array->size(); ++i) {
    elements.emplace_back(array->get(i), Cat(KeyPath(key), "[", i, "]"));
  }
  return true;
}

std::optional<std::vector<std::string>> TomlTableReader::StringList(std::string_view key,
                                                                    TomlStringList rules) {
  std::vector<std::string> values;
  const bool ok = Strings(
      key,
      [&](const std::string& value, const toml::node&, const std::string&) {
        values.push_back(value);
      },
      rules);
  if (!ok) return std::nullopt;
  return values;
}

void TomlTableReader::ReportUnknownKeys() {
  for (const auto& [key, node] : table_) {
    const std::string_view name = key.str();
    if (std::find(known_keys_.begin(), known_keys_.end(), name) != known_keys_.end()) continue;
    // The value is never echoed: it may be a secret someone tried to put in
    // the file (password = "...").
    std::string message = "unknown key";
    const auto hint =
        std::find_if(hints_.begin(), hints_.end(), [&](const Hint& h) { return h.key == name; });
    if (hint != hints_.end()) {
      message += Cat("; ", hint->text);
    } else {
      std::string_view best;
      size_t best_distance = 3;  // at most two edits away
      for (std::string_view known : known_keys_) {
        const size_t distance = EditDistance(name, known);
        if (distance < best_distance) {
          best = known;
          best_distance = distance;
        }
      }
      if (!best.empty()) message += Cat("; did you mean \"", best, "\"?");
      message += Cat(" (known keys: ", Join(known_keys_, ", "), ")");
    }
    sink_(key.source(), KeyPath(name), message);
  }
}

}  // namespace pgb
