#include <arpa/inet.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "base/str_cat.h"
#include "core/audit/audit_config_parse.h"
#include "core/audit/chain.h"
#include "core/audit/postgres_sink.h"

namespace pgb::audit {
namespace {

bool IsEnvironmentName(std::string_view name) {
  return !name.empty() && name.size() <= 255 && !(name[0] >= '0' && name[0] <= '9') &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_';
         });
}

bool IsSinkName(std::string_view name) {
  return !name.empty() && name.size() <= 63 && name != "." && name != ".." &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '.';
         });
}

void ParsePostgresSink(const toml::table& table, const std::string& path,
                       const std::function<std::string(std::string_view)>& resolve,
                       const AuditConfigError& error, AuditSinkConfig* sink) {
  PostgresSinkConfig* out = &sink->postgres;
  TomlTableReader r(table, path,
                    {"type", "name", "conninfo", "host", "port", "dbname", "user", "password_file",
                     "password_env", "table", "create_table", "connect_timeout",
                     "statement_timeout", "application_name"},
                    error);
  if (auto v = r.String("conninfo")) {
    // The message never quotes the string: it may hold a secret.
    if (absl::Status status = CheckAuditConninfo(*v); !status.ok()) {
      r.Error("conninfo", std::string(status.message()));
    } else {
      out->conninfo = *v;
    }
  }
  for (const auto& [key, field] :
       {std::pair{"host", &out->host}, std::pair{"dbname", &out->dbname},
        std::pair{"user", &out->user}, std::pair{"application_name", &out->application_name}}) {
    if (auto v = r.String(key)) {
      if (v->empty()) {
        r.Error(key, "must not be empty");
      } else {
        *field = *v;
      }
    }
  }
  if (out->conninfo.empty() && out->dbname.empty() && r.Get("conninfo") == nullptr) {
    r.Error("conninfo",
            "required: the audit database, as conninfo (\"host=audit-db dbname=audit "
            "user=pgbastion sslmode=verify-full\") or dbname (with host, port, user)");
  }
  if (auto v = r.Integer("port", 1, 65535)) out->port = static_cast<uint16_t>(*v);
  if (auto v = r.String("password_file")) out->password_file = resolve(*v);
  if (auto v = r.String("password_env")) {
    if (!IsEnvironmentName(*v)) {
      r.Error("password_env",
              "must name an environment variable (letters, digits, _), such as "
              "\"PGBASTION_AUDIT_DB_PASSWORD\"");
    } else {
      out->password_env = *v;
    }
  }
  if (!out->password_file.empty() && !out->password_env.empty()) {
    r.Error("password_env", "set password_file or password_env, not both");
  }
  if (auto v = r.String("table")) {
    if (absl::Status status = CheckAuditTableName(*v); !status.ok()) {
      r.Error("table", std::string(status.message()));
    } else {
      out->table = *v;
    }
  }
  if (auto v = r.Bool("create_table")) out->create_table = *v;
  if (auto v = r.Duration("connect_timeout")) {
    if (*v < absl::Seconds(2)) {
      r.Error("connect_timeout", "must be at least 2s (libpq's minimum)");
    } else {
      out->connect_timeout = *v;
    }
  }
  if (auto v = r.Duration("statement_timeout")) {
    if (*v < absl::Milliseconds(100)) {
      r.Error("statement_timeout", "must be at least 100ms");
    } else {
      out->statement_timeout = *v;
    }
  }
  if (auto v = r.String("name")) sink->name = *v;
}

void ParseSink(const toml::table& table, const std::string& path, size_t index,
               const std::function<std::string(std::string_view)>& resolve,
               const AuditConfigError& error, AuditSinkConfig* out) {
  const toml::node* type_node = table.get("type");
  std::string type;
  if (type_node == nullptr || !type_node->is_string()) {
    error(type_node != nullptr ? type_node->source() : table.source(), path + ".type",
          "required: \"file\" | \"syslog\" | \"http\" | \"postgres\"");
    return;
  }
  type = type_node->as_string()->get();
  if (type == "file") {
    out->type = AuditSinkType::kFile;
    TomlTableReader r(table, path,
                      {"type", "name", "path", "rotate_bytes", "rotate_interval", "keep", "fsync",
                       "fsync_interval"},
                      error);
    if (auto v = r.RequiredString("path", "the audit file, e.g. /var/log/pgbastion/audit.jsonl")) {
      out->file.path = resolve(*v);
    }
    if (auto v = r.Integer("rotate_bytes", 0, int64_t{1} << 50)) {
      if (*v != 0 && *v < 4096) {
        r.Error("rotate_bytes", "must be 0 (no size rotation) or at least 4096");
      } else {
        out->file.rotate_bytes = static_cast<uint64_t>(*v);
      }
    }
    if (auto v = r.Duration("rotate_interval", absl::ZeroDuration(), absl::InfiniteDuration())) {
      out->file.rotate_interval = *v;
    }
    if (auto v = r.Integer("keep", 0, 1000000)) out->file.keep = static_cast<uint32_t>(*v);
    if (auto v = r.Enum("fsync", {"always", "interval", "never"})) {
      out->file.fsync = static_cast<FsyncPolicy>(*v);
    }
    if (auto v = r.Duration("fsync_interval")) out->file.fsync_interval = *v;
    if (auto v = r.String("name")) out->name = *v;
  } else if (type == "syslog") {
    out->type = AuditSinkType::kSyslog;
    TomlTableReader r(
        table, path,
        {"type", "name", "transport", "host", "port", "socket", "facility", "app_name", "hostname"},
        error);
    if (auto v = r.Enum("transport", {"udp", "tcp", "unix"})) {
      out->syslog.transport = static_cast<SyslogTransport>(*v);
    }
    if (out->syslog.transport == SyslogTransport::kUnix) {
      if (auto v = r.RequiredString("socket", "the unix datagram socket, e.g. /dev/log")) {
        out->syslog.socket_path = *v;
      }
      if (r.Get("host") != nullptr) r.Error("host", "is not used with transport = \"unix\"");
    } else {
      if (auto v = r.String("host")) {
        unsigned char buf[16];
        if (inet_pton(AF_INET, v->c_str(), buf) != 1 && inet_pton(AF_INET6, v->c_str(), buf) != 1) {
          r.Error("host", "\"" + *v + "\" is not an IPv4 or IPv6 address literal");
        } else {
          out->syslog.host = *v;
        }
      }
      if (auto v = r.Integer("port", 1, 65535)) out->syslog.port = static_cast<uint16_t>(*v);
    }
    if (auto v = r.Integer("facility", 0, 23)) out->syslog.facility = static_cast<int>(*v);
    if (auto v = r.String("app_name")) out->syslog.app_name = *v;
    if (auto v = r.String("hostname")) out->syslog.hostname = *v;
    if (auto v = r.String("name")) out->name = *v;
  } else if (type == "http") {
    out->type = AuditSinkType::kHttp;
    TomlTableReader r(table, path,
                      {"type", "name", "url", "timeout", "max_batch", "retry_initial", "retry_max",
                       "tls_ca", "bearer_token_file"},
                      error);
    if (auto v = r.RequiredString("url", "the collector, http:// or https://")) {
      if (v->rfind("http://", 0) != 0 && v->rfind("https://", 0) != 0) {
        r.Error("url", "must start with http:// or https://");
      } else {
        out->http.url = *v;
      }
    }
    if (auto v = r.Duration("timeout")) out->http.timeout = *v;
    if (auto v = r.Integer("max_batch", 1, 100000)) out->http.max_batch = static_cast<uint32_t>(*v);
    if (auto v = r.Duration("retry_initial")) out->http.retry_initial = *v;
    if (auto v = r.Duration("retry_max")) out->http.retry_max = *v;
    if (out->http.retry_max < out->http.retry_initial) {
      r.Error("retry_max", "must be at least retry_initial");
    }
    if (auto v = r.String("tls_ca")) out->http.tls_ca = resolve(*v);
    if (auto v = r.String("bearer_token_file")) out->http.bearer_token_file = resolve(*v);
    if (auto v = r.String("name")) out->name = *v;
  } else if (type == "postgres") {
    out->type = AuditSinkType::kPostgres;
    ParsePostgresSink(table, path, resolve, error, out);
  } else {
    error(type_node->source(), path + ".type",
          "\"" + type + "\" is not one of file | syslog | http | postgres");
    return;
  }
  if (out->name.empty()) {
    out->name = type + std::to_string(index);
  } else if (!IsSinkName(out->name)) {
    error(table.get("name")->source(), path + ".name",
          "must be 1..63 characters of A-Z a-z 0-9 _ . - (it names the spill directory)");
  }
}

}  // namespace

void ParseAuditConfig(const toml::node* audit,
                      const std::function<std::string(std::string_view)>& resolve_path,
                      const AuditConfigError& error, AuditConfig* out) {
  *out = AuditConfig{};
  if (audit == nullptr) return;
  const toml::table* table = audit->as_table();
  if (table == nullptr) {
    error(audit->source(), "audit", "expected a table ([audit])");
    return;
  }
  out->enabled = true;
  TomlTableReader r(
      *table, "audit",
      {"enabled", "mode", "ring_slots", "signing_key", "checkpoint_every", "checkpoint_interval",
       "spill_dir", "spill_max_bytes", "statement_text", "parameters", "sink"},
      error);
  if (auto v = r.Bool("enabled")) out->enabled = *v;
  if (auto v = r.Enum("mode", {"fail-closed", "fail-open"})) out->mode = static_cast<AuditMode>(*v);
  if (auto v = r.Integer("ring_slots", 64, 1 << 20)) {
    if ((*v & (*v - 1)) != 0) {
      r.Error("ring_slots", "must be a power of two (64, 128, ..., 1048576)");
    } else {
      out->ring_slots = static_cast<uint32_t>(*v);
    }
  }
  if (auto v = r.Integer("checkpoint_every", 1, 100'000'000)) {
    out->checkpoint_every = static_cast<uint64_t>(*v);
  }
  if (auto v = r.Duration("checkpoint_interval")) out->checkpoint_interval = *v;
  if (auto v = r.String("spill_dir")) {
    if (v->empty()) {
      r.Error("spill_dir", "must not be empty");
    } else {
      out->spill_dir = resolve_path(*v);
    }
  }
  if (auto v = r.Integer("spill_max_bytes", 1 << 20, int64_t{1} << 50)) {
    out->spill_max_bytes = static_cast<uint64_t>(*v);
  }
  if (auto v = r.Enum("statement_text", {"full", "normalized"})) {
    out->statement_text = static_cast<StatementText>(*v);
  }
  if (auto v = r.Enum("parameters", {"off", "redacted", "on"})) {
    out->parameters = static_cast<ParameterMode>(*v);
  }

  if (auto v = r.String("signing_key")) {
    out->signing_key = resolve_path(*v);
    if (out->enabled) {
      absl::StatusOr<AuditSigningKey> key = AuditSigningKey::LoadFile(out->signing_key);
      if (!key.ok()) r.Error("signing_key", std::string(key.status().message()));
    }
  } else if (out->enabled && r.Get("signing_key") == nullptr) {
    r.Error("signing_key",
            "required: the Ed25519 private key that signs checkpoints (make one with "
            "`pgbastion audit keygen`)");
  }

  const toml::node* sinks = table->get("sink");
  if (sinks == nullptr) {
    if (out->enabled) {
      error(table->source(), "audit.sink", "at least one [[audit.sink]] is required");
    }
    return;
  }
  const toml::array* array = sinks->as_array();
  if (array != nullptr && array->empty()) {
    error(sinks->source(), "audit.sink", "expected one or more [[audit.sink]] tables");
    return;
  }
  TomlUniqueNames names("sink");
  ForEachTomlTable(*sinks, "audit.sink", error,
                   [&](const toml::table& sink_table, const std::string& path, size_t i) {
                     AuditSinkConfig sink;
                     ParseSink(sink_table, path, i, resolve_path, error, &sink);
                     names.Add(sink_table, path, i, sink.name, error);
                     out->sinks.push_back(std::move(sink));
                   });
}

}  // namespace pgb::audit
