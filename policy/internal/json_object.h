// Small helpers over simdjson's DOM shared by the JWKS and token parsers.
//
//   if (HasDuplicateMember(object)) return Error("duplicate member");
#pragma once

#include <algorithm>
#include <string_view>
#include <vector>

#include "simdjson.h"

namespace pgb::policy::internal {

// RFC 7515 section 5.2 lets a parser reject duplicate member names, and we do:
// simdjson returns the first of two "alg" (or "iss") members where another
// library would return the last, a classic way to slip a claim past one of them.
inline bool HasDuplicateMember(simdjson::dom::object object) {
  std::vector<std::string_view> names;
  names.reserve(object.size());
  for (simdjson::dom::key_value_pair field : object) names.push_back(field.key);
  std::sort(names.begin(), names.end());
  return std::adjacent_find(names.begin(), names.end()) != names.end();
}

// A member's string value into *out; false when absent or not a string.
inline bool GetString(simdjson::dom::object object, std::string_view name, std::string_view* out) {
  simdjson::dom::element element;
  if (object.at_key(name).get(element) != simdjson::SUCCESS) return false;
  return element.get_string().get(*out) == simdjson::SUCCESS;
}

inline bool HasMember(simdjson::dom::object object, std::string_view name) {
  simdjson::dom::element element;
  return object.at_key(name).get(element) == simdjson::SUCCESS;
}

}  // namespace pgb::policy::internal
