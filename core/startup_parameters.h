// Which parameters of a client's StartupMessage go on to the database, how
// the settings among them are judged, and the startup packet the gateway
// sends the database for a session.
//
// Two kinds of settings arrive at startup, as parameters of their own or
// inside `options` (`-c name=value` and `--name=value`, split as PostgreSQL's
// pg_split_opts splits them):
//   - connection parameters that drivers send to describe the connection
//     (application_name, client_encoding, DateStyle, TimeZone, ...): passed
//     on, with two checked by value because they decide how the policy reads
//     statement text (client_encoding must keep ASCII bytes ASCII,
//     standard_conforming_strings must stay on);
//   - every other setting (search_path, statement_timeout, `myapp.tenant`,
//     ...): judged once the scope is known, exactly as the policy judges
//     `SET name TO 'value'` (JudgeStartupSettings: the same analyser, rules,
//     rule names and SQLSTATEs), and refused with a FATAL when the SET would
//     be refused.
// Fail closed: `replication`, other command-line switches, the names that
// mean something else in a startup packet (user, database, options, ...),
// settings PostgreSQL takes only at connection start (a SET of them fails),
// malformed or overlong options, and role / session_authorization (in every
// scope: the gateway chooses who the session is) are refused.
//
// A refusal is an absl::Status whose payloads carry the SQLSTATE and a hint
// (proto/error_status.h), as for every login failure.
//
//   absl::StatusOr<ClientStartup> startup = ReadClientStartup(packet);
//   if (!startup.ok()) { fail with proto::ErrorFieldsOf(startup.status(), "FATAL"); }
//   ... authenticate, match the scope ...
//   StartupJudgement j = JudgeStartupSettings(*policy, *scope, role, startup->forwarded);
//   if (!j.refusal.ok()) { fail with j.refusal (j.refused says what, for the audit) }
//   params = BackendStartupParameters(role, database, startup->forwarded, limits, &path);
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "policy/rules.h"
#include "proto/startup.h"

namespace pgb {

using StartupSettings = std::vector<std::pair<std::string, std::string>>;

// At most this many bytes of `options`, and this many settings in all
// (PostgreSQL's own bound is the 10,000-byte startup packet).
inline constexpr size_t kMaxStartupOptionsBytes = 4096;
inline constexpr size_t kMaxStartupSettings = 64;

struct ClientStartup {
  std::string user;
  std::string database;  // the target's name; the user's when not given
  std::string application_name;
  // Every setting, names in lower case, in the order PostgreSQL applies them
  // (those of `options` first, then the packet's own, the last of a name
  // winning): passed on to the database once JudgeStartupSettings allowed
  // them.
  StartupSettings forwarded;
};

// Reads a StartupMessage's parameters (`packet.kind` is kStartup).
[[nodiscard]] absl::StatusOr<ClientStartup> ReadClientStartup(const proto::StartupPacket& packet);

// Splits an `options` value into settings, as PostgreSQL's pg_split_opts and
// process_postgres_switches read it: words separated by white space, a
// backslash taking the next character literally; `-c name=value`,
// `-cname=value` and `--name=value` (a '-' in the name read as '_'). Names
// come back in lower case. Any other switch or word, a setting without '=',
// or more than kMaxStartupOptionsBytes is refused.
[[nodiscard]] absl::StatusOr<StartupSettings> ParseStartupOptions(std::string_view options);

// Whether `name` (lower case) is a connection parameter, passed on without
// a policy judgement.
bool IsConnectionParameter(std::string_view name);

// One setting judged as its equivalent SET.
struct JudgedStartupSetting {
  std::string name;
  std::string value;
  std::string statement;  // the equivalent SET, as judged and as the audit trail records it
  policy::Decision decision;
  uint64_t fingerprint = 0;  // the analyser's
};

struct StartupJudgement {
  std::vector<JudgedStartupSetting> allowed;  // in order
  // The first setting refused (then `refusal` says why, with its SQLSTATE);
  // the settings after it are not judged.
  std::optional<JudgedStartupSetting> refused;
  absl::Status refusal;
};

// Judges each setting of `settings` that is not a connection parameter as
// the policy judges `SET name TO 'value'` for `scope` (a session running as
// database role `role`). A decision to hold for approval refuses too: a
// login cannot wait for one.
[[nodiscard]] StartupJudgement JudgeStartupSettings(const policy::Policy& policy,
                                                    const policy::Scope& scope,
                                                    const std::string& role,
                                                    const StartupSettings& settings);

// The parameters of the StartupMessage to the database: the target's role
// and database, standard_conforming_strings on whatever the role's default
// says, the scope's `limits` (its search_path and timeouts), then the
// client's settings, which JudgeStartupSettings has allowed (a limit is only
// ever lowered by them), in their order. `client_search_path` receives the
// client's search_path ("" if none), for the policy's name resolution.
[[nodiscard]] StartupSettings BackendStartupParameters(const std::string& role,
                                                       const std::string& database,
                                                       const StartupSettings& forwarded,
                                                       const StartupSettings& limits,
                                                       std::string* client_search_path);

}  // namespace pgb
