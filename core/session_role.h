// SessionRole is the database role one session logs in as, chosen once its
// identity and scope are known: the target's own user (a scope without a
// role template), the scope's static login role, or a temporary role made
// for this session alone (core/role_provisioner.h), which it releases when
// it is destroyed. It also says what the backend's application_name is, so
// that a DBA reading pg_stat_activity sees who a session belongs to.
//
//   SessionRole role;
//   PGB_RETURN_IF_ERROR(role.Choose(runtime, target, scope_name, identity.subject, provisioner));
//   if (role.temporary()) provisioner->Create(role.Request(...), done);  // then role.Adopt(login)
//   BackendLogin login(*target.config, role.login() ? nullptr : cache, prefix, role.login());
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "core/role_provisioner.h"
#include "core/runtime.h"
#include "core/startup_parameters.h"

namespace pgb {

class SessionRole {
 public:
  SessionRole() = default;
  ~SessionRole();
  SessionRole(const SessionRole&) = delete;
  SessionRole& operator=(const SessionRole&) = delete;

  // Picks the role for `scope` on `target`; a temporary role's name is drawn
  // here (created later). Fails (with the client's SQLSTATE) when the scope
  // wants temporary roles and the gateway has no provisioner, or there is no
  // randomness for the name.
  [[nodiscard]] absl::Status Choose(const Runtime& runtime, const TargetRuntime& target,
                                    std::string_view scope, std::string_view subject,
                                    RoleProvisioner* provisioner);

  // The database role's name (the target's user without a template).
  const std::string& name() const { return name_; }
  // A temporary role that must be created before the backend login.
  bool temporary() const {
    return template_ != nullptr && template_->mode == RoleTemplate::Mode::kTemporary;
  }
  // What the scope's template asks for, for `provisioner->Create`.
  RoleRequest Request(const TargetRuntime& target, int64_t identity_ends_unix, uint64_t session_id,
                      std::string_view subject) const;
  // The role created on `target`: from now on released when this is destroyed.
  void Adopt(DatabaseLogin login, ProvisionTarget target);
  // Who the backend login logs in as; null: the target's user and password.
  const DatabaseLogin* login() const { return login_ ? &*login_ : nullptr; }

  // With a role template, the backend's application_name becomes
  // "<subject>" or "<subject>/<the client's application_name>" (63 bytes at
  // most, cut at a whole character).
  void NameApplication(std::string_view subject, std::string_view client_application,
                       StartupSettings* forwarded) const;

 private:
  const RoleTemplate* template_ = nullptr;
  std::string name_;
  std::optional<DatabaseLogin> login_;
  RoleProvisioner* provisioner_ = nullptr;
  std::optional<ProvisionTarget> held_on_;  // set once a temporary role was adopted
};

}  // namespace pgb
