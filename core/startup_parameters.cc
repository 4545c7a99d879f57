#include "core/startup_parameters.h"

#include <algorithm>
#include <string_view>

#include "absl/strings/ascii.h"
#include "base/str_cat.h"
#include "proto/error_status.h"
#include "proto/protocol.h"

namespace pgb {
namespace {

namespace sqlstate = proto::sqlstate;

// Startup parameters passed on to the database: session settings that change
// nothing about who the session is or what it may do. Everything else is
// refused (fail closed), `options` and `replication` included.
constexpr std::string_view kForwardedParameters[] = {
    "application_name",
    "client_encoding",
    "DateStyle",
    "IntervalStyle",
    "TimeZone",
    "extra_float_digits",
    "search_path",
    "standard_conforming_strings",
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "bytea_output",
    "datestyle",
    "timezone",
    "intervalstyle",
    "lc_monetary",
    "lc_numeric",
    "lc_time",
};

bool IsForwardedParameter(std::string_view name) {
  for (std::string_view p : kForwardedParameters) {
    if (p == name) return true;
  }
  return false;
}

bool IsFalse(std::string_view v) {
  return v == "false" || v == "0" || v == "off" || v == "no" || v.empty();
}

// The policy reads statements as UTF-8 with standard_conforming_strings on.
// A client encoding whose multibyte characters can contain ASCII bytes (SJIS,
// BIG5, GBK, UHC, GB18030, JOHAB) or backslash escapes in plain strings would
// let the database split a text where the analyser did not: `'\'; DROP ...`.
// Returns why `value` is refused for `name`, or "" when it is fine.
std::string StartupSettingProblem(std::string_view name, std::string_view value) {
  std::string folded;  // PostgreSQL's clean_encoding_name: lower case, alphanumerics only
  for (char c : value) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c))) {
      folded += absl::ascii_tolower(static_cast<unsigned char>(c));
    }
  }
  if (name == "client_encoding") {
    static constexpr std::string_view kAsciiSafePrefixes[] = {
        "utf8",   "unicode", "sqlascii", "latin", "iso8859", "win125", "win866",
        "win874", "cp125",   "cp866",    "koi8",  "euc",     "alt"};
    for (std::string_view prefix : kAsciiSafePrefixes) {
      if (folded.starts_with(prefix)) return "";
    }
    return Cat("client_encoding \"", value,
               "\" is not allowed through the gateway: the gateway checks statements "
               "as UTF-8, and this encoding could hide a quote or backslash from it");
  }
  if (name == "standard_conforming_strings" &&
      !(folded == "on" || folded == "true" || folded == "yes" || folded == "1")) {
    return "standard_conforming_strings must stay on through the gateway: with it off, a "
           "backslash in a string could end the string where the gateway's check did not";
  }
  return "";
}

}  // namespace

absl::StatusOr<ClientStartup> ReadClientStartup(const proto::StartupPacket& packet) {
  ClientStartup startup;
  for (const auto& [name, value] : packet.params) {
    if (name == "user") {
      startup.user = std::string(value);
    } else if (name == "database") {
      startup.database = std::string(value);
    } else if (name.substr(0, 5) == "_pq_.") {
      // Protocol options: answered by NegotiateProtocolVersion.
    } else if (name == "replication") {
      if (!IsFalse(value)) {
        return proto::ErrorStatus(sqlstate::kInsufficientPrivilege,
                                  "replication connections are not allowed through the gateway");
      }
    } else if (name == "options") {
      if (!value.empty()) {
        return proto::ErrorStatus(
            sqlstate::kInsufficientPrivilege,
            "the startup parameter \"options\" is not allowed through the gateway",
            "Command-line options could change settings before any statement is checked.",
            "Unset PGOPTIONS and use SET after connecting.");
      }
    } else if (IsForwardedParameter(name)) {
      if (name == "application_name") startup.application_name = std::string(value);
      if (std::string problem = StartupSettingProblem(name, value); !problem.empty()) {
        return proto::ErrorStatus(
            sqlstate::kInsufficientPrivilege, problem, "",
            "Connect with client_encoding=UTF8 and standard_conforming_strings=on.");
      }
      startup.forwarded.emplace_back(std::string(name), std::string(value));
    } else {
      return proto::ErrorStatus(
          sqlstate::kInsufficientPrivilege,
          Cat("the startup parameter \"", name, "\" is not allowed through the gateway"), "",
          "Set it with SET after connecting.");
    }
  }
  if (startup.database.empty()) startup.database = startup.user;
  return startup;
}

StartupSettings BackendStartupParameters(const std::string& role, const std::string& database,
                                         const StartupSettings& forwarded,
                                         const StartupSettings& limits,
                                         std::string* client_search_path) {
  StartupSettings params;
  params.emplace_back("user", role);
  params.emplace_back("database", database);
  // Whatever the role or database default says: the policy's reading of
  // string literals depends on it (see StartupSettingProblem).
  params.emplace_back("standard_conforming_strings", "on");
  client_search_path->clear();
  bool client_path = false;
  for (const auto& p : forwarded) {
    const bool limited = std::any_of(limits.begin(), limits.end(),
                                     [&](const auto& l) { return l.first == p.first; });
    if (limited || p.first == "standard_conforming_strings") continue;
    if (p.first == "search_path") {
      client_path = true;
      *client_search_path = p.second;
    }
    params.push_back(p);
  }
  for (const auto& l : limits) {
    if (l.first == "search_path" && client_path) continue;
    params.push_back(l);
  }
  return params;
}

}  // namespace pgb
