#include "core/session_role.h"

#include <algorithm>

#include "absl/time/clock.h"
#include "base/str_cat.h"
#include "base/utf8.h"
#include "proto/error_status.h"
#include "proto/protocol.h"

namespace pgb {

namespace sqlstate = proto::sqlstate;

SessionRole::~SessionRole() {
  if (held_on_ && provisioner_ != nullptr) {
    provisioner_->Release(*std::move(held_on_), name_);
  }
}

absl::Status SessionRole::Choose(const Runtime& runtime, const TargetRuntime& target,
                                 std::string_view scope, std::string_view subject,
                                 RoleProvisioner* provisioner) {
  template_ = runtime.config.FindRoleTemplate(scope);
  provisioner_ = provisioner;
  if (template_ == nullptr) {
    name_ = target.config->user;
    return absl::OkStatus();
  }
  if (template_->mode == RoleTemplate::Mode::kStatic) {
    name_ = template_->login;
    login_ = DatabaseLogin{template_->login, template_->password};
    return absl::OkStatus();
  }
  if (provisioner == nullptr) {
    return proto::ErrorStatus(sqlstate::kInvalidAuthorizationSpecification,
                              "this gateway cannot create database roles", "",
                              "The operator can find the reason in the gateway log.");
  }
  name_ = MakeRoleName(provisioner->config().prefix, subject);
  if (name_.empty()) {
    return proto::ErrorStatus(sqlstate::kInternalError,
                              "the gateway has no randomness for a database role name");
  }
  return absl::OkStatus();
}

RoleRequest SessionRole::Request(const TargetRuntime& target, int64_t identity_ends_unix,
                                 uint64_t session_id, std::string_view subject) const {
  RoleRequest r;
  r.target = ProvisionTargetOf(*target.config);
  r.role = name_;
  r.member_of = template_->member_of;
  r.settings = template_->settings;
  r.connection_limit = template_->connection_limit;
  const int64_t ends = identity_ends_unix != 0
                           ? identity_ends_unix
                           : absl::ToUnixSeconds(absl::Now() + template_->lifetime);
  r.valid_until_unix = ends + absl::ToInt64Seconds(template_->grace);
  r.session_id = session_id;
  r.identity = std::string(subject);
  return r;
}

void SessionRole::Adopt(DatabaseLogin login, ProvisionTarget target) {
  held_on_ = std::move(target);
  name_ = login.user;
  login_ = std::move(login);
}

void SessionRole::NameApplication(std::string_view subject, std::string_view client_application,
                                  StartupSettings* forwarded) const {
  if (template_ == nullptr) return;
  std::string name =
      client_application.empty() ? std::string(subject) : Cat(subject, "/", client_application);
  constexpr size_t kMax = 63;  // NAMEDATALEN - 1: PostgreSQL keeps no more
  if (name.size() > kMax) {
    name.resize(kMax);
    while (!name.empty() && !IsValidUtf8(name)) name.pop_back();
  }
  std::erase_if(*forwarded, [](const auto& p) { return p.first == "application_name"; });
  forwarded->emplace_back("application_name", std::move(name));
}

}  // namespace pgb
