// Reading libpg_query's JSON parse tree (PostgreSQL 15, libpg_query 15-4.0.0)
// with simdjson's DOM. A node is an object with one key, its type:
// {"RangeVar": {"relname": "t", ...}}. A field whose C type is a specific
// struct (RangeVar *relation, SelectStmt *larg, FuncCall *funccall, ...) holds
// the struct's fields bare, without the type key. Fields at their default
// (zero, false, NULL, empty list) are left out, so absent means default.
//
//   if (std::optional<Node> node = AsNode(element)) {
//     if (node->type == "RangeVar") Use(StringField(node->fields, "relname"));
//   }
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string_view>

namespace pgb::policy::internal {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

struct Node {
  std::string_view type;  // "SelectStmt", "A_Const", ...
  object fields;
};

// `e` as a node ({"Type": {...}}), or nullopt for lists, scalars and bare structs.
std::optional<Node> AsNode(element e);

std::optional<element> Field(object o, std::string_view key);
std::optional<object> ObjectField(object o, std::string_view key);
std::optional<array> ArrayField(object o, std::string_view key);
std::string_view StringField(object o, std::string_view key);  // "" when absent
bool BoolField(object o, std::string_view key);                // false when absent
int64_t IntField(object o, std::string_view key);              // 0 when absent

// The text of a {"String": {"sval": "x"}} node ("" for anything else).
std::string_view StringNodeValue(element e);

}  // namespace pgb::policy::internal
