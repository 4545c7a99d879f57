#include "core/role_provisioner.h"

#include <libpq-fe.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>

#include "absl/strings/ascii.h"
#include "base/log.h"
#include "base/str_cat.h"
#include "base/thread_name.h"
#include "proto/error_status.h"
#include "proto/protocol.h"
#include "proto/scram.h"

namespace pgb {

namespace sqlstate = proto::sqlstate;

namespace {

constexpr size_t kSuffixHexDigits = 8;
constexpr size_t kPasswordBytes = 32;
// How long the drop waits for each backend of the role to exit (ms).
constexpr int kTerminateWaitMs = 5000;

std::string Hex(const unsigned char* bytes, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[bytes[i] >> 4]);
    out.push_back(kDigits[bytes[i] & 15]);
  }
  return out;
}

// libpq's messages end with a newline: one safe line for the log and the client.
std::string ServerMessage(std::string_view message) {
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
    message.remove_suffix(1);
  }
  return LogSafe(message);
}

std::string Iso8601(int64_t unix_seconds) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S+00", absl::FromUnixSeconds(unix_seconds),
                          absl::UTCTimeZone());
}

}  // namespace

ProvisionTarget ProvisionTargetOf(const TargetConfig& target) {
  ProvisionTarget t;
  t.name = target.name;
  t.host = target.host;
  t.port = target.port;
  t.database = target.database;
  t.user = target.provision_user;
  t.password = target.provision_password;
  t.reassign_owned_to = target.reassign_owned_to;
  t.tls = target.tls;
  t.tls_ca_file = target.tls_ca_file;
  t.connect_timeout = target.connect_timeout;
  return t;
}

std::string MakeRoleName(std::string_view prefix, std::string_view identity) {
  std::array<unsigned char, kSuffixHexDigits / 2> random{};
  if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) return "";
  const size_t room = kMaxRoleNameLength - prefix.size() - 1 - kSuffixHexDigits;
  std::string name(prefix);
  std::string middle;
  for (char c : identity) {
    if (middle.size() >= room) break;
    const unsigned char u = static_cast<unsigned char>(absl::ascii_tolower(c));
    const char keep = absl::ascii_isalnum(u) && u < 0x80 ? static_cast<char>(u) : '_';
    if (keep == '_' && (middle.empty() || middle.back() == '_')) continue;  // no runs of _
    middle.push_back(keep);
  }
  while (!middle.empty() && middle.back() == '_') middle.pop_back();
  if (middle.empty()) middle = "session";
  name += middle;
  name += '_';
  name += Hex(random.data(), random.size());
  return name;
}

std::string CreateRoleSql(const RoleRequest& request, std::string_view verifier,
                          std::string_view node,
                          const std::function<std::string(std::string_view)>& quote_identifier,
                          const std::function<std::string(std::string_view)>& quote_literal) {
  const std::string role = quote_identifier(request.role);
  std::string sql = Cat("CREATE ROLE ", role,
                        " LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                        "NOBYPASSRLS CONNECTION LIMIT ",
                        request.connection_limit, " PASSWORD ", quote_literal(verifier),
                        " VALID UNTIL ", quote_literal(Iso8601(request.valid_until_unix)));
  for (size_t i = 0; i < request.member_of.size(); ++i) {
    sql += i == 0 ? " IN ROLE " : ", ";
    sql += quote_identifier(request.member_of[i]);
  }
  sql += ";\n";
  for (const auto& [name, value] : request.settings) {
    sql += Cat("ALTER ROLE ", role, " SET ", quote_identifier(name), " = ", quote_literal(value),
               ";\n");
  }
  sql += Cat("COMMENT ON ROLE ", role, " IS ",
             quote_literal(Cat("pgbastion node=", node, " session=", request.session_id,
                               " identity=", request.identity)),
             ";");
  return sql;
}

// ---------------------------------------------------------------------------
// The worker

struct RoleProvisioner::Connection {
  std::string target;
  std::string key;  // what it was made with (host, port, database, user)
  PGconn* conn = nullptr;
  ~Connection() {
    if (conn != nullptr) PQfinish(conn);
  }
  std::string QuoteIdentifier(std::string_view text) const {
    char* quoted = PQescapeIdentifier(conn, text.data(), text.size());
    std::string out = quoted != nullptr ? quoted : "\"\"";
    PQfreemem(quoted);
    return out;
  }
  std::string QuoteLiteral(std::string_view text) const {
    char* quoted = PQescapeLiteral(conn, text.data(), text.size());
    std::string out = quoted != nullptr ? quoted : "''";
    PQfreemem(quoted);
    return out;
  }
};

namespace {

// One statement's outcome: ok, or the server's SQLSTATE and message.
struct ExecResult {
  bool ok = false;
  std::string sqlstate;
  std::string message;
  PGresult* result = nullptr;  // for rows; the caller clears it
};

ExecResult Exec(PGconn* conn, const std::string& sql, const std::vector<std::string>& params = {}) {
  std::vector<const char*> values;
  for (const std::string& p : params) values.push_back(p.c_str());
  PGresult* r = params.empty() ? PQexec(conn, sql.c_str())
                               : PQexecParams(conn, sql.c_str(), static_cast<int>(values.size()),
                                              nullptr, values.data(), nullptr, nullptr, 0);
  ExecResult out;
  const ExecStatusType status = PQresultStatus(r);
  out.ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
  if (!out.ok) {
    const char* code = r != nullptr ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    out.sqlstate = code != nullptr ? code : "";
    out.message =
        ServerMessage(r != nullptr && *PQresultErrorMessage(r) != '\0' ? PQresultErrorMessage(r)
                                                                       : PQerrorMessage(conn));
    PQclear(r);
    return out;
  }
  out.result = r;
  return out;
}

void IgnoreNotice(void*, const char*) {}

}  // namespace

RoleProvisioner::RoleProvisioner(RolesConfig config,
                                 std::function<std::vector<ProvisionTarget>()> targets)
    : config_(std::move(config)), targets_(std::move(targets)) {}

RoleProvisioner::~RoleProvisioner() { Stop(); }

void RoleProvisioner::Start() {
  creations_.thread = std::thread([this] {
    NameThisThread("pgb-roles-new");
    RunCreations();
  });
  drops_.thread = std::thread([this] {
    NameThisThread("pgb-roles-drop");
    RunDrops();
  });
}

void RoleProvisioner::Stop() {
  // Creations first: a role they still make is held, and the drops' final
  // sweep takes it.
  for (Lane* lane : {&creations_, &drops_}) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      lane->stopping = true;
    }
    lane->wake.notify_all();
    if (lane->thread.joinable()) lane->thread.join();
  }
}

void RoleProvisioner::Create(RoleRequest request, Done done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!creations_.stopping) {
      creations_.jobs.push_back(Job{std::move(request), std::move(done)});
      creations_.wake.notify_one();
      return;
    }
  }
  done(proto::ErrorStatus(sqlstate::kAdminShutdown, "the gateway is shutting down"));
}

void RoleProvisioner::Release(ProvisionTarget target, std::string role) {
  RoleRequest request;
  request.target = std::move(target);
  request.role = std::move(role);
  std::lock_guard<std::mutex> lock(mu_);
  // Queued even while stopping: Stop finishes the queue.
  drops_.jobs.push_back(Job{std::move(request), nullptr});
  drops_.wake.notify_one();
}

bool RoleProvisioner::Held(const std::string& target, const std::string& role) {
  std::lock_guard<std::mutex> lock(mu_);
  return held_.contains({target, role});
}

void RoleProvisioner::RunCreations() {
  for (;;) {
    std::unique_lock<std::mutex> lock(mu_);
    creations_.wake.wait(lock, [&] { return !creations_.jobs.empty() || creations_.stopping; });
    if (creations_.jobs.empty()) break;  // stopping, and nothing left
    Job job = std::move(creations_.jobs.front());
    creations_.jobs.pop_front();
    lock.unlock();
    DoCreate(job);
  }
  creations_.connections.clear();
}

void RoleProvisioner::RunDrops() {
  RunJanitor();
  absl::Time next_janitor = absl::Now() + config_.janitor_interval;
  for (;;) {
    std::unique_lock<std::mutex> lock(mu_);
    drops_.wake.wait_until(lock, absl::ToChronoTime(next_janitor), [&] {
      return !drops_.jobs.empty() || drops_.stopping || absl::Now() >= next_janitor;
    });
    if (!drops_.jobs.empty()) {
      Job job = std::move(drops_.jobs.front());
      drops_.jobs.pop_front();
      held_.erase({job.request.target.name, job.request.role});
      lock.unlock();
      DoDrop(job.request.target, job.request.role, "its session ended");
      continue;
    }
    if (drops_.stopping) break;
    lock.unlock();
    RunJanitor();
    next_janitor = absl::Now() + config_.janitor_interval;
  }
  // Sessions whose end never reached us (a shard stopped first).
  std::set<std::pair<std::string, std::string>> held;
  std::vector<ProvisionTarget> targets;
  {
    std::lock_guard<std::mutex> lock(mu_);
    held.swap(held_);
    targets = held_targets_;
  }
  for (const ProvisionTarget& target : targets) {
    for (const auto& [name, role] : held) {
      if (name == target.name) DoDrop(target, role, "the gateway is stopping");
    }
  }
  drops_.connections.clear();
}

RoleProvisioner::Connection* RoleProvisioner::Connect(Lane& lane, const ProvisionTarget& target,
                                                      std::string* error) {
  std::vector<std::unique_ptr<Connection>>& connections = lane.connections;
  const std::string key = Cat(target.host, ":", target.port, "/", target.database, "/", target.user,
                              "/", static_cast<int>(target.tls), "/", target.tls_ca_file);
  auto it = std::find_if(connections.begin(), connections.end(),
                         [&](const auto& c) { return c->target == target.name; });
  if (it != connections.end() && ((*it)->key != key || PQstatus((*it)->conn) != CONNECTION_OK)) {
    connections.erase(it);
    it = connections.end();
  }
  if (it != connections.end()) return it->get();
  auto c = std::make_unique<Connection>();
  c->target = target.name;
  c->key = key;
  const std::string port = std::to_string(target.port);
  const std::string connect_timeout =
      std::to_string(std::max<int64_t>(2, absl::ToInt64Seconds(target.connect_timeout)));
  const std::string options =
      Cat("-c statement_timeout=", absl::ToInt64Milliseconds(config_.statement_timeout));
  static constexpr const char* kSslModes[] = {"disable", "require", "verify-ca", "verify-full"};
  std::vector<std::pair<const char*, std::string>> params = {
      {"host", target.host},
      {"port", port},
      {"dbname", target.database},
      {"user", target.user},
      {"connect_timeout", connect_timeout},
      {"application_name", "pgbastion-provisioner"},
      {"options", options},
      {"sslmode", kSslModes[static_cast<int>(target.tls)]},
      {"client_encoding", "UTF8"},
  };
  if (!target.tls_ca_file.empty()) params.emplace_back("sslrootcert", target.tls_ca_file);
  if (!target.password.empty()) params.emplace_back("password", target.password.Reveal());
  std::vector<const char*> keywords, values;
  for (const auto& [k, v] : params) {
    keywords.push_back(k);
    values.push_back(v.c_str());
  }
  keywords.push_back(nullptr);
  values.push_back(nullptr);
  c->conn = PQconnectdbParams(keywords.data(), values.data(), 0);
  if (c->conn == nullptr || PQstatus(c->conn) != CONNECTION_OK) {
    *error = c->conn != nullptr ? ServerMessage(PQerrorMessage(c->conn)) : "out of memory";
    return nullptr;
  }
  PQsetNoticeProcessor(c->conn, IgnoreNotice, nullptr);
  connections.push_back(std::move(c));
  return connections.back().get();
}

void RoleProvisioner::DoCreate(Job& job) {
  const RoleRequest& r = job.request;
  const std::string& target = r.target.name;
  std::array<unsigned char, kPasswordBytes> random{};
  if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) {
    job.done(proto::ErrorStatus(sqlstate::kInternalError,
                                "the gateway has no randomness for a database password"));
    return;
  }
  std::string password = Hex(random.data(), random.size());
  absl::StatusOr<std::string> verifier =
      proto::MakeScramVerifier(password, kTemporaryRoleIterations);
  if (!verifier.ok()) {
    job.done(proto::ErrorStatus(sqlstate::kInternalError,
                                "the gateway could not make a database password"));
    return;
  }
  const int64_t started = absl::ToUnixMillis(absl::Now());
  {
    std::lock_guard<std::mutex> lock(mu_);
    held_.insert({target, r.role});
    if (std::none_of(held_targets_.begin(), held_targets_.end(),
                     [&](const ProvisionTarget& t) { return t.name == target; })) {
      held_targets_.push_back(r.target);
    }
  }
  const auto unhold = [&] {
    std::lock_guard<std::mutex> lock(mu_);
    held_.erase({target, r.role});
  };
  ExecResult result;
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::string error;
    Connection* c = Connect(creations_, r.target, &error);
    if (c == nullptr) {
      unhold();
      PGB_LOG(kWarning) << "roles: cannot connect to target \"" << target
                        << "\" as its provision_user \"" << LogSafe(r.target.user)
                        << "\": " << error;
      job.done(proto::ErrorStatus(sqlstate::kSqlclientUnableToEstablish,
                                  Cat("could not connect to target \"", target, "\""), "",
                                  "The operator can find the reason in the gateway log."));
      return;
    }
    const std::string sql = CreateRoleSql(
        r, *verifier, config_.node_id, [c](std::string_view s) { return c->QuoteIdentifier(s); },
        [c](std::string_view s) { return c->QuoteLiteral(s); });
    result = Exec(c->conn, sql);
    // A connection the server closed since its last use: once more, anew.
    if (result.ok || PQstatus(c->conn) == CONNECTION_OK) break;
  }
  if (result.ok) {
    PQclear(result.result);
    PGB_LOG(kInfo) << "roles: created role " << r.role << " on target \"" << target
                   << "\" for session " << r.session_id << " ("
                   << absl::ToUnixMillis(absl::Now()) - started << " ms)";
    job.done(DatabaseLogin{r.role, Secret(std::move(password))});
    return;
  }
  unhold();
  const std::string missing =
      result.sqlstate == "42501"
          ? Cat("the provisioning login \"", r.target.user,
                "\" lacks a right: grant it CREATEROLE (on PostgreSQL 16 and later also "
                "ADMIN OPTION on each role of member_of)")
      : result.sqlstate == "42704"
          ? "a role named in the scope's member_of does not exist: the DBA must create it"
          : "";
  PGB_LOG(kWarning) << "roles: could not create role " << r.role << " on target \"" << target
                    << "\": " << result.message << " [" << result.sqlstate << "]"
                    << (missing.empty() ? "" : Cat("; ", missing));
  const bool privilege = result.sqlstate == "42501";
  job.done(proto::ErrorStatus(
      privilege ? sqlstate::kInsufficientPrivilege : sqlstate::kInvalidAuthorizationSpecification,
      Cat("the gateway could not create a database role for this session on target \"", target,
          "\": ", result.message),
      "",
      missing.empty() ? "The operator can find the reason in the gateway log."
                      : Cat("The operator must fix the target: ", missing, ".")));
}

bool RoleProvisioner::DoDrop(const ProvisionTarget& target, const std::string& role,
                             std::string_view why) {
  std::string error;
  Connection* c = Connect(drops_, target, &error);
  if (c == nullptr) {
    PGB_LOG(kWarning) << "roles: cannot connect to target \"" << target.name << "\" to drop role "
                      << role << " (the janitor retries): " << error;
    return false;
  }
  const std::string quoted = c->QuoteIdentifier(role);
  // The provisioning login takes the role's privileges for the drop: PostgreSQL
  // asks for them to end its backends and to REASSIGN / DROP what it owns.
  ExecResult grant = Exec(c->conn, Cat("GRANT ", quoted, " TO CURRENT_USER"));
  if (!grant.ok) {
    if (grant.sqlstate == "42704") return true;  // gone already
    PGB_LOG(kWarning) << "roles: could not drop role " << role << " on target \"" << target.name
                      << "\" (the janitor retries): " << grant.message << " [" << grant.sqlstate
                      << "]";
    return false;
  }
  PQclear(grant.result);
  ExecResult ended = Exec(
      c->conn,
      Cat("SELECT count(*) FILTER (WHERE pg_catalog.pg_terminate_backend(a.pid, ", kTerminateWaitMs,
          ")) FROM pg_catalog.pg_stat_activity a JOIN pg_catalog.pg_roles r ON "
          "r.oid = a.usesysid WHERE r.rolname = $1"),
      {role});
  if (ended.ok) {
    const char* n = PQgetvalue(ended.result, 0, 0);
    if (n != nullptr && std::string_view(n) != "0") {
      PGB_LOG(kInfo) << "roles: ended " << n << " backend(s) of role " << role;
    }
    PQclear(ended.result);
  }
  ExecResult dropped =
      Exec(c->conn,
           Cat("REASSIGN OWNED BY ", quoted, " TO ", c->QuoteIdentifier(target.reassign_owned_to),
               ";\nDROP OWNED BY ", quoted, ";\nDROP ROLE ", quoted, ";"));
  if (!dropped.ok) {
    PGB_LOG(kWarning) << "roles: could not drop role " << role << " on target \"" << target.name
                      << "\" (the janitor retries): " << dropped.message << " [" << dropped.sqlstate
                      << "]";
    return false;
  }
  PQclear(dropped.result);
  PGB_LOG(kInfo) << "roles: dropped role " << role << " on target \"" << target.name << "\" ("
                 << why << ")";
  return true;
}

void RoleProvisioner::RunJanitor() {
  for (const ProvisionTarget& target : targets_()) {
    std::string error;
    Connection* c = Connect(drops_, target, &error);
    if (c == nullptr) {
      PGB_LOG(kWarning) << "roles: janitor cannot connect to target \"" << target.name
                        << "\": " << error;
      continue;
    }
    // This node's roles (by the COMMENT the gateway wrote) without a backend.
    ExecResult found = Exec(
        c->conn,
        "SELECT r.rolname FROM pg_catalog.pg_roles r "
        "WHERE left(r.rolname, length($1)) = $1 "
        "AND substring(pg_catalog.shobj_description(r.oid, 'pg_authid') "
        "FROM '^pgbastion node=([^ ]+) ') = $2 "
        "AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a WHERE a.usesysid = r.oid)",
        {config_.prefix, config_.node_id});
    if (!found.ok) {
      PGB_LOG(kWarning) << "roles: janitor cannot list roles on target \"" << target.name
                        << "\": " << found.message << " [" << found.sqlstate << "]";
      continue;
    }
    std::vector<std::string> leftovers;
    for (int i = 0; i < PQntuples(found.result); ++i) {
      std::string role = PQgetvalue(found.result, i, 0);
      if (!Held(target.name, role)) leftovers.push_back(std::move(role));
    }
    PQclear(found.result);
    for (const std::string& role : leftovers) DoDrop(target, role, "janitor: no live session");
  }
}

}  // namespace pgb
