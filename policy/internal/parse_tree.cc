#include "policy/internal/parse_tree.h"

namespace pgb::policy::internal {

std::optional<Node> AsNode(element e) {
  object o;
  if (e.get_object().get(o) != simdjson::SUCCESS) return std::nullopt;
  auto it = o.begin();
  if (it == o.end()) return std::nullopt;
  std::string_view key = it.key();
  if (key.empty() || key[0] < 'A' || key[0] > 'Z') return std::nullopt;
  object fields;
  if (it.value().get_object().get(fields) != simdjson::SUCCESS) return std::nullopt;
  ++it;
  if (it != o.end()) return std::nullopt;
  return Node{key, fields};
}

std::optional<element> Field(object o, std::string_view key) {
  element e;
  if (o.at_key(key).get(e) != simdjson::SUCCESS) return std::nullopt;
  return e;
}

std::optional<object> ObjectField(object o, std::string_view key) {
  object v;
  if (o.at_key(key).get_object().get(v) != simdjson::SUCCESS) return std::nullopt;
  return v;
}

std::optional<array> ArrayField(object o, std::string_view key) {
  array v;
  if (o.at_key(key).get_array().get(v) != simdjson::SUCCESS) return std::nullopt;
  return v;
}

std::string_view StringField(object o, std::string_view key) {
  std::string_view v;
  if (o.at_key(key).get_string().get(v) != simdjson::SUCCESS) return {};
  return v;
}

bool BoolField(object o, std::string_view key) {
  bool v = false;
  if (o.at_key(key).get_bool().get(v) != simdjson::SUCCESS) return false;
  return v;
}

int64_t IntField(object o, std::string_view key) {
  int64_t v = 0;
  if (o.at_key(key).get_int64().get(v) != simdjson::SUCCESS) return 0;
  return v;
}

std::string_view StringNodeValue(element e) {
  std::optional<Node> node = AsNode(e);
  if (!node || node->type != "String") return {};
  return StringField(node->fields, "sval");
}

}  // namespace pgb::policy::internal
