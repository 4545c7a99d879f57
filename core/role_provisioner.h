// RoleProvisioner creates and drops the temporary database roles of
// just-in-time access (core/role_config.h) on threads of its own (one
// creates, one drops), over libpq connections of the targets' provisioning
// logins: a shard never waits on the database. A session asks for its role once the identity and
// scope are known, waits (its ring runs on) until `done` reports, logs in to the target as that
// role with SCRAM, and releases it when it ends; the worker then ends any backend the role still
// has, REASSIGNs and DROPs what it owns, and drops it. A janitor on the same thread, at start-up
// and every janitor_interval, drops every role this gateway node made (its COMMENT names the node)
// that it does not hold for a live session and that has no backend: the leftovers of a failed drop
// or of a gateway that was killed. It runs on the thread that drops.
//
// The role's password is 32 random bytes the gateway draws; the database gets
// only its SCRAM-SHA-256 verifier (CREATE ROLE ... PASSWORD 'SCRAM-SHA-256$...'),
// so no password appears in the server's statement log.
//
//   RoleProvisioner provisioner(config.roles, [&] { return ProvisionTargetsOf(*store.Current());
//   }); provisioner.Start(); provisioner.Create(request, [](absl::StatusOr<DatabaseLogin> login) {
//   ... post to the shard ... });
//   ... the session ends: provisioner.Release(target, role) ...
//   provisioner.Stop();   // drops what is still held, then joins
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/config.h"

namespace pgb {

// How the worker reaches a target with its provisioning login (a copy: the
// worker outlives a reload's Runtime).
struct ProvisionTarget {
  std::string name;
  std::string host;
  uint16_t port = 5432;
  std::string database;
  std::string user;  // provision_user
  Secret password;
  std::string reassign_owned_to;
  BackendTls tls = BackendTls::kDisable;
  std::string tls_ca_file;
  absl::Duration connect_timeout = absl::Seconds(10);
};

ProvisionTarget ProvisionTargetOf(const TargetConfig& target);

// One temporary role to create.
struct RoleRequest {
  ProvisionTarget target;
  std::string role;  // MakeRoleName's
  std::vector<std::string> member_of;
  std::vector<std::pair<std::string, std::string>> settings;
  int connection_limit = -1;
  int64_t valid_until_unix = 0;
  uint64_t session_id = 0;
  std::string identity;  // the subject, for the COMMENT
};

// "<prefix><identity, sanitised>_<8 hex digits>", at most 63 bytes: lower case
// letters, digits and '_' only. Empty when there is no randomness.
std::string MakeRoleName(std::string_view prefix, std::string_view identity);

// PBKDF2 iterations of a temporary role's verifier. The password is 256
// random bits, which no dictionary holds: stretching it would add nothing
// but login latency (PostgreSQL accepts any count of at least 1).
inline constexpr int kTemporaryRoleIterations = 16;

// The statements that create `request.role` with `verifier` (identifiers
// and literals quoted by `quote_identifier` / `quote_literal`, libpq's
// PQescapeIdentifier / PQescapeLiteral in the worker): one multi-statement
// query, one implicit transaction. `node` goes in the COMMENT.
std::string CreateRoleSql(const RoleRequest& request, std::string_view verifier,
                          std::string_view node,
                          const std::function<std::string(std::string_view)>& quote_identifier,
                          const std::function<std::string(std::string_view)>& quote_literal);

class RoleProvisioner {
 public:
  using Done = std::function<void(absl::StatusOr<DatabaseLogin>)>;

  // `targets`: the targets with a provisioning login, as the current
  // Runtime has them (called by the janitor).
  RoleProvisioner(RolesConfig config, std::function<std::vector<ProvisionTarget>()> targets);
  ~RoleProvisioner();
  RoleProvisioner(const RoleProvisioner&) = delete;
  RoleProvisioner& operator=(const RoleProvisioner&) = delete;

  void Start();
  // Finishes the queued work, drops every role still held, closes the
  // connections and joins the threads.
  void Stop();

  // Thread-safe. `done` runs on the provisioner's thread, exactly once (also when
  // stopping: then with an error). A failure's status carries the SQLSTATE
  // the client gets (proto/error_status.h): 42501 when the provisioning login
  // lacks a right, 28000 for other refusals, 08001 when the target is down.
  void Create(RoleRequest request, Done done);
  // Thread-safe: the session that used `role` on `target` ended.
  void Release(ProvisionTarget target, std::string role);

  const RolesConfig& config() const { return config_; }

 private:
  struct Job {
    RoleRequest request;  // a drop: target and role only
    Done done;            // a creation's
  };
  struct Connection;
  // Creations and drops run on two threads with connections of their own,
  // so that a login never waits behind the drop of an ended session's role
  // (which waits for its backend to exit).
  struct Lane {
    std::deque<Job> jobs;
    bool stopping = false;
    std::condition_variable wake;
    std::thread thread;
    std::vector<std::unique_ptr<Connection>> connections;  // its thread's only
  };

  void RunCreations();
  void RunDrops();
  void DoCreate(Job& job);
  // True once the role is gone (or was never there).
  bool DoDrop(const ProvisionTarget& target, const std::string& role, std::string_view why);
  void RunJanitor();
  // `lane`'s connection to `target`, (re)connected; null with `error` set.
  Connection* Connect(Lane& lane, const ProvisionTarget& target, std::string* error);
  bool Held(const std::string& target, const std::string& role);

  const RolesConfig config_;
  const std::function<std::vector<ProvisionTarget>()> targets_;
  std::mutex mu_;  // the lanes' queues and flags, held_
  Lane creations_;
  Lane drops_;
  // (target, role) of the roles live sessions hold, entered before the
  // CREATE ROLE runs (so the janitor, which lists committed roles only,
  // never takes one being made), with how to reach each target at Stop.
  std::set<std::pair<std::string, std::string>> held_;
  std::vector<ProvisionTarget> held_targets_;
};

}  // namespace pgb
