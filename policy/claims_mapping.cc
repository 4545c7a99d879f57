#include "policy/claims_mapping.h"

#include <string>
#include <string_view>

#include "base/json_text.h"
#include "base/log.h"
#include "base/str_cat.h"

namespace pgb::policy {
namespace {

// Token text quoted for a message: JSON-escaped and cut.
std::string Quote(std::string_view untrusted) { return JsonString(LogSafe(untrusted)); }

// A claim by name: the top-level member of that exact name if there is one
// (namespaced claims like "https://example.com/groups" contain dots), else
// the dotted path into nested objects ("realm_access.roles").
bool FindClaim(simdjson::dom::object payload, std::string_view name, simdjson::dom::element* out) {
  if (payload.at_key(name).get(*out) == simdjson::SUCCESS) return true;
  simdjson::dom::object object = payload;
  while (true) {
    const size_t dot = name.find('.');
    if (dot == std::string_view::npos) return object.at_key(name).get(*out) == simdjson::SUCCESS;
    simdjson::dom::element child;
    if (object.at_key(name.substr(0, dot)).get(child) != simdjson::SUCCESS ||
        child.get_object().get(object) != simdjson::SUCCESS) {
      return false;
    }
    name.remove_prefix(dot + 1);
  }
}

// A claim's value as text: strings as they are, anything else as compact JSON.
std::string ClaimText(simdjson::dom::element element) {
  std::string_view text;
  if (element.get_string().get(text) == simdjson::SUCCESS) return std::string(text);
  return simdjson::minify(element);
}

absl::Status ClaimError(std::string_view name, std::string_view problem) {
  return absl::InvalidArgumentError(Cat("claim ", Quote(name), " ", problem));
}

}  // namespace

absl::StatusOr<Identity> MapClaims(simdjson::dom::object payload, const ClaimMapping& mapping) {
  Identity identity;
  identity.method = AuthMethod::kToken;
  simdjson::dom::element element;
  std::string_view text;

  if (!FindClaim(payload, mapping.subject_claim, &element)) {
    return ClaimError(mapping.subject_claim, "(the subject) is missing");
  }
  if (element.get_string().get(text) != simdjson::SUCCESS || text.empty()) {
    return ClaimError(mapping.subject_claim, "(the subject) must be a non-empty string");
  }
  identity.subject = std::string(text);

  if (!mapping.groups_claim.empty() && FindClaim(payload, mapping.groups_claim, &element)) {
    simdjson::dom::array array;
    if (element.get_string().get(text) == simdjson::SUCCESS) {
      identity.groups.emplace_back(text);
    } else if (element.get_array().get(array) == simdjson::SUCCESS) {
      for (simdjson::dom::element group : array) {
        if (group.get_string().get(text) != simdjson::SUCCESS) {
          return ClaimError(mapping.groups_claim, "(groups) must hold only strings");
        }
        identity.groups.emplace_back(text);
      }
    } else {
      return ClaimError(mapping.groups_claim, "(groups) must be a string or an array of strings");
    }
  }

  for (const std::string& name : mapping.client_id_claims) {
    if (!FindClaim(payload, name, &element)) continue;
    if (element.get_string().get(text) != simdjson::SUCCESS) {
      return ClaimError(name, "(the client id) must be a string");
    }
    identity.client_id = std::string(text);
    break;
  }

  if (!mapping.run_id_claim.empty() && FindClaim(payload, mapping.run_id_claim, &element)) {
    if (element.is_array() || element.is_object() || element.is_null()) {
      return ClaimError(mapping.run_id_claim, "(the run id) must be a string or a number");
    }
    identity.run_id = ClaimText(element);
  }

  for (const std::string& name : mapping.keep_claims) {
    if (FindClaim(payload, name, &element)) identity.claims.emplace_back(name, ClaimText(element));
  }
  return identity;
}

}  // namespace pgb::policy
