// Just-in-time database roles: the config that says which database role a
// scope's sessions log in to the target as (core/role_provisioner.h does it).
//
//   [roles]                       # the gateway's side (all optional)
//   node_id = "gw-1"              # names this gateway in its roles' COMMENT (default: host name)
//   prefix = "pgb_"               # every temporary role's name starts with it
//   janitor_interval = "5m"       # how often leftover roles are looked for
//
//   [[scope]]
//   name = "ci"
//   role = { member_of = ["app_reader"], settings = { work_mem = "16MB" },
//            connection_limit = 2, grace = "5m" }          # a temporary role per session
//   # or, where the gateway may not create roles:
//   role = { mode = "static", login = "ci_login", password_file = "ci.password" }
//
//   [[target]]                     # the provisioning login, needed by temporary roles
//   provision_user = "pgb_provisioner"
//   provision_password_env = "PGB_PROVISION_PASSWORD"
//   reassign_owned_to = "app_owner"   # what a dropped role owned goes to
//
// A scope without `role` keeps the target's own `user`. The keys are
// documented in docs/configuration.md.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "base/toml_table.h"
#include "core/secret.h"
#include "toml++/toml.h"

namespace pgb {

// PostgreSQL's NAMEDATALEN - 1: the longest role name.
inline constexpr size_t kMaxRoleNameLength = 63;

// [scope.role]
struct RoleTemplate {
  enum class Mode { kTemporary, kStatic };
  std::string scope;  // the scope's name
  Mode mode = Mode::kTemporary;
  // Temporary: the NOLOGIN roles a DBA prepared; the session's role is made
  // a member of each (and nothing else).
  std::vector<std::string> member_of;
  // ALTER ROLE ... SET name = value, in order (values as PostgreSQL reads them).
  std::vector<std::pair<std::string, std::string>> settings;
  int connection_limit = -1;  // -1: no limit
  // VALID UNTIL = the identity's expiry + grace (a token's exp; an identity
  // without one: now + lifetime + grace).
  absl::Duration grace = absl::Minutes(1);
  absl::Duration lifetime = absl::Hours(24);
  // Static: the pre-created login role and its password.
  std::string login;
  Secret password;
};

// Who a session logs in to the database as, when not the target's user: its
// temporary role, or a static role of its scope.
struct DatabaseLogin {
  std::string user;
  Secret password;
};

// [roles]
struct RolesConfig {
  std::string node_id;  // [a-z0-9_-], <= 24 bytes; default: the host name, sanitised
  std::string prefix = "pgb_";
  absl::Duration janitor_interval = absl::Minutes(5);
  // One provisioning statement may take this long (statement_timeout on the
  // provisioning connection); a login waits for it at most auth_timeout.
  absl::Duration statement_timeout = absl::Seconds(10);
};

// Reads [roles] (nullptr if absent) into `out`.
void ParseRolesConfig(const toml::node* roles, const TomlProblemSink& sink, RolesConfig* out);

// Reads the `role` key of each [[scope]] of `root` into `out` (scopes
// without one are skipped). `read_secret` reads a static role's
// password_file / password_env (core/secret.h, with the parser's paths).
void ParseScopeRoles(const toml::table& root, const TomlProblemSink& sink,
                     const std::function<void(TomlTableReader&, Secret*)>& read_secret,
                     std::vector<RoleTemplate>* out);

// The host name made a node id: lower case, [a-z0-9_-] kept, others '_', at
// most 24 bytes ("gw" if nothing is left).
std::string DefaultNodeId();

}  // namespace pgb
