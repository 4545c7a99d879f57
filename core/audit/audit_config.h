// The [audit] section of the configuration file and its [[audit.sink]]
// tables, as the gateway uses them. Parsing and validation are in
// audit_config_parse.h (only core/config.cc needs TOML); every error names its key
// (`audit.sink[1].port: must be 1..65535, got 0`). The keys are documented in
// docs/configuration.md and docs/audit.md.
//
//   [audit]
//   signing_key = "/etc/pgbastion/audit.key"
//   [[audit.sink]]
//   type = "file"
//   path = "/var/log/pgbastion/audit.jsonl"
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "core/audit/record.h"

namespace pgb::audit {

enum class AuditMode : uint8_t { kFailClosed, kFailOpen };
enum class FsyncPolicy : uint8_t { kAlways, kInterval, kNever };
enum class AuditSinkType : uint8_t { kFile, kSyslog, kHttp, kPostgres };
enum class SyslogTransport : uint8_t { kUdp, kTcp, kUnix };

struct FileSinkConfig {
  std::string path;                                       // the active file
  uint64_t rotate_bytes = 0;                              // 0 = no size rotation
  absl::Duration rotate_interval = absl::ZeroDuration();  // 0 = no time rotation
  uint32_t keep = 0;                                      // rotated files kept; 0 = all
  FsyncPolicy fsync = FsyncPolicy::kInterval;
  absl::Duration fsync_interval = absl::Seconds(1);
};

struct SyslogSinkConfig {
  SyslogTransport transport = SyslogTransport::kUdp;
  std::string host = "127.0.0.1";  // IP literal (udp, tcp)
  uint16_t port = 514;
  std::string socket_path;  // unix (a datagram socket, like /dev/log)
  int facility = 13;        // RFC 5424 "log audit"
  std::string app_name = "pgbastion";
  std::string hostname;  // empty = gethostname()
};

struct HttpSinkConfig {
  std::string url;                             // http:// or https://
  absl::Duration timeout = absl::Seconds(10);  // per request
  uint32_t max_batch = 1000;                   // records per POST
  absl::Duration retry_initial = absl::Milliseconds(200);
  absl::Duration retry_max = absl::Seconds(30);
  std::string tls_ca;             // PEM; empty = system store
  std::string bearer_token_file;  // optional; mode 600
};

// A table in a separate PostgreSQL audit database (postgres_sink.h). The
// connection is libpq's: `conninfo` (keyword/value string or URI, sslmode and
// the rest pass through) and/or host, port, dbname, user; the password comes
// from a file or an environment variable, never from the config file itself.
struct PostgresSinkConfig {
  std::string conninfo;  // without a password (refused by the parser)
  std::string host;      // these four override what conninfo says
  uint16_t port = 0;     // 0 = conninfo's or libpq's default
  std::string dbname;
  std::string user;
  std::string password_file;              // first line; mode 600
  std::string password_env;               // name of an environment variable
  std::string table = "pgbastion_audit";  // [schema.]name, lower-case identifiers
  bool create_table = true;
  absl::Duration connect_timeout = absl::Seconds(10);
  absl::Duration statement_timeout = absl::Seconds(30);  // also TCP's user timeout
  std::string application_name = "pgbastion-audit";
};

struct AuditSinkConfig {
  AuditSinkType type = AuditSinkType::kFile;
  std::string name;  // unique; default "<type><index>" (file0, syslog1, ...)
  FileSinkConfig file;
  SyslogSinkConfig syslog;
  HttpSinkConfig http;
  PostgresSinkConfig postgres;
};

struct AuditConfig {
  bool enabled = false;  // true when [audit] is present, unless enabled = false
  AuditMode mode = AuditMode::kFailClosed;
  uint32_t ring_slots = 4096;  // per shard, power of two (4 KiB each)
  std::string signing_key;     // PEM Ed25519 private key file, mode 600
  uint64_t checkpoint_every = 1000;
  absl::Duration checkpoint_interval = absl::Seconds(10);
  std::string spill_dir = "/var/lib/pgbastion/audit-spill";
  uint64_t spill_max_bytes = uint64_t{1} << 30;
  StatementText statement_text = StatementText::kFull;
  ParameterMode parameters = ParameterMode::kOff;
  std::vector<AuditSinkConfig> sinks;
};

}  // namespace pgb::audit
