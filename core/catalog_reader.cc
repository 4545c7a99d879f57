#include "core/catalog_reader.h"

#include <arpa/inet.h>
#include <libpq-fe.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "base/log.h"
#include "base/str_cat.h"
#include "policy/sql_analysis.h"

namespace pgb {
namespace {

// Every table, view, materialized view, foreign and partitioned table, with
// its columns (system columns too: `c.ctid` is a column, not a function) and
// their comments. Temporary schemas are other sessions' and are left out.
constexpr char kCatalogQuery[] =
    "SELECT c.oid, n.nspname, c.relname, c.relkind, a.attname, a.atttypid, a.attnum, "
    "d.description "
    "FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum <> 0 "
    "AND NOT a.attisdropped "
    "LEFT JOIN pg_catalog.pg_description d ON d.objoid = c.oid "
    "AND d.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objsubid = a.attnum "
    "WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p') AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)' "
    "ORDER BY c.oid, a.attnum";

// Views and materialized views outside the system schemas, with their
// queries; read with search_path = pg_catalog, so that every other name in
// them is schema-qualified.
constexpr char kViewQuery[] =
    "SELECT c.oid, pg_catalog.pg_get_viewdef(c.oid) FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'";

// More columns than this (all relations together) is not read: the target
// stays without a catalog, and masked scopes refuse statements on it.
constexpr int kMaxCatalogRows = 2'000'000;

const char* SslMode(BackendTls tls) {
  switch (tls) {
    case BackendTls::kDisable:
      return "disable";
    case BackendTls::kRequire:
      return "require";
    case BackendTls::kVerifyCa:
      return "verify-ca";
    case BackendTls::kVerifyFull:
      return "verify-full";
  }
  return "verify-full";
}

struct ConnCloser {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct ResultCloser {
  void operator()(PGresult* r) const { PQclear(r); }
};

void IgnoreNotice(void*, const char*) {}

// A libpq message without its trailing newlines (it never holds the password).
std::string Message(const char* text) {
  std::string message = text != nullptr ? text : "no result";
  while (!message.empty() && message.back() == '\n') message.pop_back();
  return message;
}

bool IsAddressLiteral(const std::string& host) {
  in6_addr v6;
  in_addr v4;
  return inet_pton(AF_INET, host.c_str(), &v4) == 1 || inet_pton(AF_INET6, host.c_str(), &v6) == 1;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const policy::RelationCatalog>> ReadTargetCatalog(
    const TargetConfig& target) {
  const std::string port = std::to_string(target.port);
  const std::string database = target.database.empty() ? target.name : target.database;
  const std::string timeout =
      std::to_string(std::max<int64_t>(1, absl::ToInt64Seconds(target.connect_timeout)));
  // With a TLS name other than the host, libpq connects to the address in
  // hostaddr and verifies the name in host (an IP literal only: a DNS name
  // is connected to and verified as itself).
  const bool split_name = !target.tls_server_name.empty() && IsAddressLiteral(target.host);
  std::vector<std::pair<const char*, std::string>> params = {
      {"host", split_name ? target.tls_server_name : target.host},
      {"port", port},
      {"dbname", database},
      {"user", target.user},
      {"sslmode", SslMode(target.tls)},
      {"connect_timeout", timeout},
      {"application_name", "pgbastion catalog"},
      {"client_encoding", "UTF8"},
  };
  if (split_name) params.push_back({"hostaddr", target.host});
  if (!target.tls_ca_file.empty()) params.push_back({"sslrootcert", target.tls_ca_file});
  if (!target.password.empty()) params.push_back({"password", target.password.Reveal()});
  std::vector<const char*> keywords, values;
  for (const auto& [keyword, value] : params) {
    keywords.push_back(keyword);
    values.push_back(value.c_str());
  }
  keywords.push_back(nullptr);
  values.push_back(nullptr);
  std::unique_ptr<PGconn, ConnCloser> conn(
      PQconnectdbParams(keywords.data(), values.data(), /*expand_dbname=*/0));
  if (conn == nullptr) return absl::ResourceExhaustedError("out of memory");
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    // libpq's message names the host and the failure, never the password.
    return absl::UnavailableError(Cat("cannot connect: ", Message(PQerrorMessage(conn.get()))));
  }
  PQsetNoticeProcessor(conn.get(), IgnoreNotice, nullptr);
  // One snapshot for both queries; names in view definitions qualified.
  std::unique_ptr<PGresult, ResultCloser> begin(PQexec(
      conn.get(), "SET search_path = pg_catalog; BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
  if (PQresultStatus(begin.get()) != PGRES_COMMAND_OK) {
    return absl::UnavailableError(
        Cat("cannot start the catalog read: ", Message(PQresultErrorMessage(begin.get()))));
  }
  std::unique_ptr<PGresult, ResultCloser> result(PQexec(conn.get(), kCatalogQuery));
  if (PQresultStatus(result.get()) != PGRES_TUPLES_OK) {
    return absl::UnavailableError(
        Cat("catalog query failed: ", Message(PQresultErrorMessage(result.get()))));
  }
  const int rows = PQntuples(result.get());
  if (rows > kMaxCatalogRows) {
    return absl::ResourceExhaustedError(
        Cat("the catalog has ", rows, " columns, more than the ", kMaxCatalogRows, " read"));
  }
  // The views' definitions, names qualified but for pg_catalog's.
  std::unique_ptr<PGresult, ResultCloser> views(PQexec(conn.get(), kViewQuery));
  if (PQresultStatus(views.get()) != PGRES_TUPLES_OK) {
    return absl::UnavailableError(
        Cat("view query failed: ", Message(PQresultErrorMessage(views.get()))));
  }
  absl::flat_hash_map<uint32_t, std::string_view> definitions;
  for (int i = 0; i < PQntuples(views.get()); ++i) {
    definitions[static_cast<uint32_t>(std::strtoul(PQgetvalue(views.get(), i, 0), nullptr, 10))] =
        std::string_view(PQgetvalue(views.get(), i, 1),
                         static_cast<size_t>(PQgetlength(views.get(), i, 1)));
  }
  auto catalog = std::make_shared<policy::RelationCatalog>();
  policy::CatalogRelation current;
  auto flush = [&] {
    if (auto it = definitions.find(current.oid); current.oid != 0 && it != definitions.end()) {
      policy::SqlAnalysis analysis = policy::AnalyseSql(it->second);
      if (analysis.ok && analysis.statements.size() == 1) {
        current.definition =
            std::make_shared<const policy::StatementSummary>(std::move(analysis.statements[0]));
      } else {
        current.definition_unread = true;
      }
    }
    if (current.oid != 0) catalog->Add(std::move(current));
    current = policy::CatalogRelation();
  };
  PGresult* r = result.get();
  for (int i = 0; i < rows; ++i) {
    const auto oid = static_cast<uint32_t>(std::strtoul(PQgetvalue(r, i, 0), nullptr, 10));
    if (oid != current.oid) {
      flush();
      current.oid = oid;
      current.schema = PQgetvalue(r, i, 1);
      current.name = PQgetvalue(r, i, 2);
      current.kind = PQgetvalue(r, i, 3)[0];
    }
    if (PQgetisnull(r, i, 4)) continue;  // a relation without columns
    policy::CatalogColumn column;
    column.name = PQgetvalue(r, i, 4);
    column.type_oid = static_cast<uint32_t>(std::strtoul(PQgetvalue(r, i, 5), nullptr, 10));
    column.attnum = static_cast<int16_t>(std::strtol(PQgetvalue(r, i, 6), nullptr, 10));
    if (!PQgetisnull(r, i, 7)) column.mask_tag = policy::MaskTagOf(PQgetvalue(r, i, 7));
    current.columns.push_back(std::move(column));
  }
  flush();
  catalog->read_at = absl::Now();
  return catalog;
}

CatalogReader::CatalogReader(const std::vector<TargetConfig>& targets, absl::Duration refresh)
    : targets_(targets), refresh_(refresh), slots_(targets.size()) {}

CatalogReader::~CatalogReader() { Stop(); }

void CatalogReader::ReadOne(size_t target) {
  Slot& slot = slots_[target];
  slot.last_read = absl::Now();
  absl::StatusOr<std::shared_ptr<const policy::RelationCatalog>> read =
      ReadTargetCatalog(targets_[target]);
  if (!read.ok()) {
    PGB_LOG(kWarning) << "target " << targets_[target].name
                      << ": catalog not read (scopes with masks refuse statements on relations "
                         "it does not know): "
                      << read.status().message();
    return;
  }
  // The first read of a target says what it found and what it took; later
  // ones (every minute) only at debug level.
  PGB_LOG_AT(Snapshot(target) == nullptr ? LogLevel::kInfo : LogLevel::kDebug)
      << "target " << targets_[target].name << ": catalog read, " << (*read)->size()
      << " relations in " << absl::FormatDuration(absl::Now() - slot.last_read);
  Publish(target, *std::move(read));
}

void CatalogReader::Start() {
  for (size_t i = 0; i < slots_.size(); ++i) ReadOne(i);
  thread_ = std::thread([this] { Run(); });
}

void CatalogReader::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void CatalogReader::RequestRefresh(size_t target) {
  if (target >= slots_.size()) return;
  slots_[target].wanted.store(true, std::memory_order_relaxed);
  {
    // Held only while the refresher waits or decides, never during a read.
    std::lock_guard<std::mutex> lock(mu_);
  }
  wake_.notify_one();
}

void CatalogReader::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    const absl::Time now = absl::Now();
    absl::Time next = now + refresh_;
    for (size_t i = 0; i < slots_.size() && !stop_; ++i) {
      Slot& slot = slots_[i];
      const bool wanted = slot.wanted.load(std::memory_order_relaxed);
      const absl::Time due = slot.last_read + (wanted ? kMinInterval : refresh_);
      if (due <= now) {
        slot.wanted.store(false, std::memory_order_relaxed);
        lock.unlock();
        ReadOne(i);
        lock.lock();
      } else {
        next = std::min(next, due);
      }
    }
    if (stop_) break;
    const absl::Duration wait = std::max(absl::Milliseconds(1), next - absl::Now());
    wake_.wait_for(lock, absl::ToChronoNanoseconds(wait));
  }
}

}  // namespace pgb
