// Which parameters of a client's StartupMessage go on to the database, and
// the startup packet the gateway sends the database for a session.
//
// Only session settings that change nothing about who the session is or
// what it may do pass (application_name, DateStyle, TimeZone, ...); every
// other name is refused, `options` and `replication` included (fail closed:
// command-line options could change settings before any statement is
// checked). Two settings that decide how the policy reads statement text
// are checked by value: client_encoding must keep ASCII bytes ASCII, and
// standard_conforming_strings must stay on.
//
// A refusal is an absl::Status whose payloads carry the SQLSTATE and a hint
// (proto/error_status.h), as for every login failure.
//
//   absl::StatusOr<ClientStartup> startup = ReadClientStartup(packet);
//   if (!startup.ok()) { fail with proto::ErrorFieldsOf(startup.status(), "FATAL"); }
//   params = BackendStartupParameters(target_user, target_database, startup->forwarded, limits);
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/startup.h"

namespace pgb {

using StartupSettings = std::vector<std::pair<std::string, std::string>>;

struct ClientStartup {
  std::string user;
  std::string database;  // the target's name; the user's when not given
  std::string application_name;
  StartupSettings forwarded;  // passed on to the database, in the client's order
};

// Reads a StartupMessage's parameters (`packet.kind` is kStartup).
[[nodiscard]] absl::StatusOr<ClientStartup> ReadClientStartup(const proto::StartupPacket& packet);

// The parameters of the StartupMessage to the database: the target's role
// and database, standard_conforming_strings on whatever the role's default
// says, the client's settings, and the scope's `limits`, which win over the
// client's settings of the same name. BackendSettings() always limits
// search_path, so a client's search_path reaches the database only when the
// limits given here name none; `client_search_path` then receives it ("" if
// none).
[[nodiscard]] StartupSettings BackendStartupParameters(const std::string& role,
                                                       const std::string& database,
                                                       const StartupSettings& forwarded,
                                                       const StartupSettings& limits,
                                                       std::string* client_search_path);

}  // namespace pgb
