// The gateway's configuration: the TOML file (`/etc/pgbastion/pgbastion.toml`)
// parsed and validated into an immutable Config. Loading reports every error
// it finds at once, each naming its key (`target[1].port: must be 1..65535`).
// Secrets (target passwords) come from a file readable only by the service or
// from an environment variable, never from the file itself; they are held in
// Secret, which cannot be printed.
//
//   absl::StatusOr<Config> config = LoadConfigFile("/etc/pgbastion/pgbastion.toml");
//   if (!config.ok()) { std::cerr << config.status().message(); return 1; }
//
// The keys are documented in docs/configuration.md.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/log.h"
#include "core/approvals/approvals_config.h"
#include "core/audit/audit_config.h"
#include "core/control_config.h"
#include "core/login_throttle.h"
#include "core/role_config.h"
#include "core/secret.h"
#include "core/recording/recording_config.h"
#include "policy/issuer_config.h"
#include "policy/rules.h"

namespace pgb {

enum class ListenerTls { kDisabled, kOptional, kRequired };

// How a client of a listener may prove who it is (listener key `auth`).
enum class LoginMethod : uint8_t {
  kPassword,     // SCRAM-SHA-256 against a [[user]]
  kToken,        // a JWT from an [[issuer]] sent as the password, over TLS only
  kCertificate,  // a TLS client certificate that chains to tls_client_ca; no password
  kPeer,         // Unix-domain sockets only: the connecting process's OS user (SO_PEERCRED)
};

struct ListenerConfig {
  std::string address = "127.0.0.1";  // IPv4 or IPv6 literal; unused with socket_dir
  uint16_t port = 6432;               // TCP port, or the number in the socket's name
  // A Unix-domain socket listener instead of TCP: the socket is
  // <socket_dir>/.s.PGSQL.<port>, as PostgreSQL names it (core/unix_listener.h).
  std::string socket_dir;  // absolute; empty = a TCP listener
  uint32_t socket_mode = 0770;
  int64_t socket_group = -1;  // gid the socket is given; -1 = the gateway's own group
  ListenerTls tls = ListenerTls::kDisabled;  // "disabled" | "optional" | "required"
  std::string tls_cert_file;                 // PEM; required unless tls = "disabled"
  std::string tls_key_file;                  // PEM
  // Default: password, plus token when [[issuer]]s exist and TLS is possible.
  std::vector<LoginMethod> auth;
  std::string tls_client_ca_file;  // PEM CAs of client certificates; needed by "certificate"
  // Whether the startup user must equal the certificate's subject
  // (certificate_user_match = "subject", the default, or "ignore").
  bool certificate_user_must_match = true;

  bool Allows(LoginMethod method) const;
  // A Unix-domain socket listener (socket_dir set).
  bool local() const { return !socket_dir.empty(); }
  // <socket_dir>/.s.PGSQL.<port> and its lock file (PostgreSQL's names).
  std::string SocketPath() const;
  std::string LockFilePath() const { return SocketPath() + ".lock"; }
  // "127.0.0.1:6432", "[::]:6432" or the socket's path, for logs and messages.
  std::string Describe() const;
};

// How the gateway secures its connection to the database (libpq's sslmode names).
enum class BackendTls { kDisable, kRequire, kVerifyCa, kVerifyFull };

struct TargetConfig {
  std::string name;  // clients select the target with dbname=<name>
  // IP literal or DNS name (resolved at startup), or, as libpq reads it, an
  // absolute directory holding PostgreSQL's Unix-domain socket .s.PGSQL.<port>.
  std::string host;
  uint16_t port = 5432;
  std::string database;  // defaults to name
  std::string user;      // the role the gateway logs in as
  Secret password;       // from password_file or password_env; may be empty (trust)
  BackendTls tls = BackendTls::kDisable;
  std::string tls_ca_file;      // required for verify-ca / verify-full
  std::string tls_server_name;  // defaults to host
  absl::Duration connect_timeout = absl::Seconds(10);

  bool local() const { return !host.empty() && host.front() == '/'; }
  // The login that creates and drops temporary roles (core/role_config.h);
  // empty: scopes with temporary roles cannot use this target.
  std::string provision_user;
  Secret provision_password;      // provision_password_file / provision_password_env
  std::string reassign_owned_to;  // what a dropped role owned goes to; default provision_user
};

// A gateway-local client login: SCRAM-SHA-256 with a password (LoginMethod::kPassword).
struct UserConfig {
  std::string name;
  std::string scram_verifier;        // SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>
  std::vector<std::string> targets;  // target names this user may use; empty = all
  std::vector<std::string> groups;   // matched by [[scope]] groups; the subject is `name`
};

struct Config {
  int workers = 0;  // 0 = one per online core
  uint32_t max_message_size = 0x3fffffff;
  // Largest Query / Parse / FunctionCall the policy judges; a longer one is
  // refused (it cannot be analysed, so it never reaches the database).
  uint32_t max_statement_size = 1 << 20;
  // Bytes of statement analyses each shard keeps (keyed by statement text).
  size_t analysis_cache_size = 8 << 20;
  absl::Duration auth_timeout = absl::Seconds(60);
  absl::Duration shutdown_timeout = absl::Seconds(30);
  LogLevel log_level = LogLevel::kInfo;
  std::vector<ListenerConfig> listeners;
  std::vector<TargetConfig> targets;
  std::vector<UserConfig> users;
  // The [[scope]]s (policy/policy_config.h); never null in a Config that loaded.
  std::shared_ptr<const policy::Policy> policy;
  audit::AuditConfig audit;                   // [audit]; core/audit/audit_config.h
  std::vector<policy::IssuerConfig> issuers;  // [[issuer]]: token identity providers
  LoginThrottleConfig login_throttle;         // [login]; core/login_throttle.h
  ControlConfig control;                      // [control]; core/control_config.h
  approvals::ApprovalsConfig approvals;       // [approvals]; core/approvals/approvals_config.h
  RolesConfig roles;                          // [roles]; core/role_config.h
  std::vector<RoleTemplate> scope_roles;      // [[scope]] role tables
  recording::RecordingConfig recording;       // [recording]; core/recording/recording_config.h

  // nullptr if there is no such target / user.
  const TargetConfig* FindTarget(std::string_view name) const;
  const UserConfig* FindUser(std::string_view name) const;
  // The role template of scope `scope` (nullptr: it uses the target's user).
  const RoleTemplate* FindRoleTemplate(std::string_view scope) const;

  // `workers`, with 0 resolved to the number of online cores (at least 1).
  int ResolvedWorkers() const;
};

struct ConfigOptions {
  // false: do not read password files or environment variables and do not
  // check TLS files, for tools that only need the policy (`policy explain`).
  // A Config loaded so has empty target passwords and must not serve.
  bool check_files = true;
};

// Parses and validates TOML text. `origin` names the file in messages
// (`target[0].port: must be 1..65535, got 0 (pgbastion.toml:9:8)`).
// Relative paths (password_file, tls_cert, tls_key, tls_client_ca, tls_ca,
// an issuer's jwks_file and ca_file, the [audit] files) are resolved against
// `base_dir`; an empty `base_dir` leaves them relative to the process's
// working directory. Validation touches the file system: it loads every
// target's secret (password_file / password_env) and checks that the TLS
// files are readable, so that every error is reported in one pass
// (ConfigOptions::check_files = false skips that).
// On failure the status (InvalidArgument) lists every error, one per line,
// each starting with the key it concerns. No secret appears in any message.
absl::StatusOr<Config> ParseConfig(std::string_view toml_text, std::string_view origin,
                                   std::string_view base_dir = "", ConfigOptions options = {});

// Reads the file and calls ParseConfig with the file's (absolute) directory
// as `base_dir`.
absl::StatusOr<Config> LoadConfigFile(const std::string& path, ConfigOptions options = {});

}  // namespace pgb
