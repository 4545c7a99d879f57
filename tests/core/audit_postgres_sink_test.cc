// The audit database sink against a real PostgreSQL 15 (initdb + pg_ctl,
// tests/core/postgres_test_cluster.h): rows and columns, the exact line kept
// for `audit verify`, no duplicates after a lost acknowledgement, another
// trail's table refused, the server killed and restarted mid-stream (every
// record once, in order), and errors that never show the password.
#include <set>

#include "core/audit/postgres_sink.h"
#include "core/audit/verify.h"
#include "gmock/gmock.h"
#include "tests/core/audit_test_support.h"
#include "tests/core/postgres_test_cluster.h"

namespace pgb::audit {
namespace {

using ::pgb::audit::testing::Produce;
using ::pgb::audit::testing::ReadLines;
using ::pgb::audit::testing::SeqOf;
using ::pgb::audit::testing::TrailDir;
using ::pgb::audit::testing::WriteLines;
using ::pgb::testing::TestPostgres;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPassword[] = "s3cret-Audit-pw";

template <typename Fn>
bool WaitFor(Fn&& done, int millis = 20000) {
  for (int i = 0; i < millis / 5; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return done();
}

TEST(AuditConninfoTest, RefusesPasswordsAndNeverQuotesTheString) {
  EXPECT_TRUE(CheckAuditConninfo("host=db dbname=audit user=pgb sslmode=verify-full").ok());
  EXPECT_TRUE(CheckAuditConninfo("postgresql://pgb@db:5433/audit?sslmode=require").ok());
  for (const char* bad : {"host=db password=hunter2", "postgresql://pgb:hunter2@db/audit",
                          "postgresql://db/audit?password=hunter2"}) {
    const absl::Status status = CheckAuditConninfo(bad);
    EXPECT_THAT(std::string(status.message()), HasSubstr("must not contain a password")) << bad;
    EXPECT_THAT(std::string(status.message()), Not(HasSubstr("hunter2")));
  }
  EXPECT_THAT(std::string(CheckAuditConninfo("host=db sslmod=require").message()),
              HasSubstr("invalid connection option \"sslmod\""));
  const absl::Status garbled = CheckAuditConninfo("host=db hunter2");
  EXPECT_FALSE(garbled.ok());
  EXPECT_THAT(std::string(garbled.message()), Not(HasSubstr("hunter2")));
}

TEST(AuditConninfoTest, TableNames) {
  for (const char* good : {"pgbastion_audit", "audit.trail", "_t1"}) {
    EXPECT_TRUE(CheckAuditTableName(good).ok()) << good;
  }
  for (const char* bad : {"", "Audit", "1t", "a.b.c", "t;drop", "a.", "\"t\"",
                          "x234567890123456789012345678901234567890123456789012345678901234"}) {
    EXPECT_FALSE(CheckAuditTableName(bad).ok()) << bad;
  }
}

class AuditPostgresSinkTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pg_ = new TestPostgres();
    pg_->Sql(std::string("CREATE ROLE auditor LOGIN PASSWORD '") + kPassword + "';");
    pg_->Sql("CREATE DATABASE audit OWNER auditor ENCODING 'UTF8';");
  }
  static void TearDownTestSuite() {
    delete pg_;
    pg_ = nullptr;
  }

  void SetUp() override {
    std::ofstream(dir_.path("db.password")) << kPassword << "\n";
    ::chmod(dir_.path("db.password").c_str(), 0600);
  }

  PostgresSinkConfig SinkConfig(const std::string& table) const {
    PostgresSinkConfig config;
    config.conninfo = "host=127.0.0.1 port=" + std::to_string(pg_->port()) +
                      " dbname=audit user=auditor sslmode=disable";
    config.password_file = dir_.path("db.password");
    config.table = table;
    config.connect_timeout = absl::Seconds(5);
    config.statement_timeout = absl::Seconds(10);
    return config;
  }
  AuditSinkConfig TrailSink(const std::string& table) const {
    AuditSinkConfig sink;
    sink.type = AuditSinkType::kPostgres;
    sink.name = "auditdb";
    sink.postgres = SinkConfig(table);
    return sink;
  }
  std::unique_ptr<PostgresSink> MakeSink(const std::string& table) const {
    absl::StatusOr<std::unique_ptr<PostgresSink>> sink =
        PostgresSink::Create("auditdb", SinkConfig(table));
    EXPECT_TRUE(sink.ok()) << sink.status();
    return sink.ok() ? *std::move(sink) : nullptr;
  }
  std::string Query(const std::string& sql) { return pg_->Sql(sql, "audit"); }
  // The table's lines in seq order, exported as the docs say.
  std::vector<std::string> StoredLines(const std::string& table) {
    const std::string out = Query("SELECT line FROM " + table + " ORDER BY seq");
    std::vector<std::string> lines;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }
  // A trail of `records` statement records written to the file sink only.
  std::vector<std::string> FileTrail(const TrailDir& dir, int records) {
    absl::StatusOr<std::unique_ptr<AuditTrail>> trail = AuditTrail::Start(dir.Config(100), 1);
    EXPECT_TRUE(trail.ok()) << trail.status();
    if (!trail.ok()) return {};
    Produce(**trail, records);
    (*trail)->Stop();
    return ReadLines(dir.path("audit.jsonl"));
  }
  static std::string Join(const std::vector<std::string>& lines, size_t from, size_t to) {
    std::string out;
    for (size_t i = from; i < to; ++i) out += lines[i] + "\n";
    return out;
  }

  static TestPostgres* pg_;
  TrailDir dir_;
};

TestPostgres* AuditPostgresSinkTest::pg_ = nullptr;

TEST_F(AuditPostgresSinkTest, EveryRecordIsARowAndTheExportedLinesVerify) {
  AuditConfig config = dir_.Config(50);
  config.sinks.push_back(TrailSink("public.trail_rows"));
  absl::StatusOr<std::unique_ptr<AuditTrail>> trail = AuditTrail::Start(config, 2);
  ASSERT_TRUE(trail.ok()) << trail.status();
  // Fields that land in columns, and text that COPY must escape.
  AuditRecord* r = (*trail)->shard(0).Begin();
  ASSERT_NE(r, nullptr);
  r->session_id = 18000000000000000077u;  // session ids use all 64 bits
  r->start_us = AuditClockMicros();
  r->decision = AuditDecision::kDeny;
  r->has_identity = true;
  r->SetSubject("ci-bot-7");
  r->SetRule("no\\writes\there");
  r->SetStatement("INSERT INTO t VALUES (E'a\\tb\\\\c\n')");
  r->SetSqlState("42501");
  (*trail)->shard(0).Commit();
  std::thread other([&] { Produce(**trail, 200, 1, "b"); });
  Produce(**trail, 250, 0, "a");
  other.join();
  (*trail)->Stop();

  const std::vector<std::string> file = ReadLines(dir_.path("audit.jsonl"));
  ASSERT_GT(file.size(), 451u);
  EXPECT_EQ(StoredLines("trail_rows"), file) << "the table holds the exact lines, in order";
  EXPECT_EQ(Query("SELECT count(*), min(seq), max(seq) FROM trail_rows"),
            std::to_string(file.size()) + "|1|" + std::to_string(file.size()));
  EXPECT_EQ(
      Query("SELECT kind, session, subject, decision, rule, sqlstate, "
            "record->'identity'->>'subject', start IS NOT NULL FROM trail_rows WHERE seq = 1"),
      "statement|18000000000000000077|ci-bot-7|deny|no\\writes\there|42501|ci-bot-7|t");
  EXPECT_EQ(Query("SELECT count(*) FROM trail_rows WHERE kind = 'statement' AND command_tag = "
                  "'SELECT 1' AND record->>'decision' = 'allow'"),
            "450");
  EXPECT_EQ(Query("SELECT count(*) FROM trail_rows WHERE kind = 'checkpoint' AND start IS NOT "
                  "NULL"),
            std::to_string(file.size() - 451));

  // psql -XAt 'SELECT line ... ORDER BY seq' gives a trail that verifies.
  WriteLines(dir_.path("exported.jsonl"), StoredLines("trail_rows"));
  absl::StatusOr<AuditVerifyKey> key = AuditVerifyKey::LoadFile(dir_.path("audit.pub"));
  ASSERT_TRUE(key.ok());
  absl::StatusOr<VerifyReport> report = VerifyTrail({dir_.path("exported.jsonl")}, *key, {});
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_FALSE(report->finding.has_value()) << report->finding->Describe();
  EXPECT_EQ(report->records, file.size());
}

TEST_F(AuditPostgresSinkTest, ALostAcknowledgementDoesNotStoreRecordsTwice) {
  const std::vector<std::string> lines = FileTrail(dir_, 40);
  ASSERT_GE(lines.size(), 40u);
  auto first = MakeSink("lost_ack");
  ASSERT_TRUE(first->Deliver(Join(lines, 0, 10)).ok());
  // The first sink committed 1..10 but "never heard": the same lines come
  // again, with more, on a new connection (a restarted gateway, or the spill).
  auto second = MakeSink("lost_ack");
  absl::Status status = second->Deliver(Join(lines, 4, 25));
  ASSERT_TRUE(status.ok()) << status;
  // Within one connection as well.
  status = second->Deliver(Join(lines, 20, lines.size()));
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(Query("SELECT count(*), count(DISTINCT seq), max(seq) FROM lost_ack"),
            std::to_string(lines.size()) + "|" + std::to_string(lines.size()) + "|" +
                std::to_string(lines.size()));
  EXPECT_EQ(StoredLines("lost_ack"), lines);
}

TEST_F(AuditPostgresSinkTest, ATableHoldingAnotherTrailIsRefusedNotSkipped) {
  const std::vector<std::string> ours = FileTrail(dir_, 20);
  TrailDir other_dir;
  const std::vector<std::string> theirs = FileTrail(other_dir, 30);
  ASSERT_TRUE(MakeSink("shared")->Deliver(Join(theirs, 0, theirs.size())).ok());
  const absl::Status status = MakeSink("shared")->Deliver(Join(ours, 0, ours.size()));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("is not this trail's"));
  EXPECT_EQ(StoredLines("shared"), theirs);
}

TEST_F(AuditPostgresSinkTest, ErrorsNameTheProblemNotThePassword) {
  std::ofstream(dir_.path("wrong.password"), std::ios::trunc) << "not-" << kPassword << "\n";
  ::chmod(dir_.path("wrong.password").c_str(), 0600);
  PostgresSinkConfig config = SinkConfig("wrong_pw");
  config.password_file = dir_.path("wrong.password");
  auto sink = PostgresSink::Create("auditdb", config);
  ASSERT_TRUE(sink.ok());
  absl::Status status = (*sink)->Deliver(FileTrail(dir_, 1)[0] + "\n");
  EXPECT_THAT(std::string(status.message()), HasSubstr("password authentication failed"));
  EXPECT_THAT(std::string(status.message()), Not(HasSubstr(kPassword)));

  config = SinkConfig("no_such_table");
  config.create_table = false;
  sink = PostgresSink::Create("auditdb", config);
  ASSERT_TRUE(sink.ok());
  status = (*sink)->Deliver(ReadLines(dir_.path("audit.jsonl"))[0] + "\n");
  EXPECT_THAT(std::string(status.message()), HasSubstr("no_such_table"));

  ::chmod(dir_.path("db.password").c_str(), 0644);
  sink = PostgresSink::Create("auditdb", SinkConfig("t"));
  EXPECT_THAT(std::string(sink.status().message()), HasSubstr("password_file:"));
  EXPECT_THAT(std::string(sink.status().message()), HasSubstr("mode 600"));

  config = SinkConfig("t");
  config.password_file.clear();
  config.password_env = "PGB_TEST_NO_SUCH_VARIABLE";
  sink = PostgresSink::Create("auditdb", config);
  EXPECT_THAT(std::string(sink.status().message()),
              HasSubstr("password_env: environment variable PGB_TEST_NO_SUCH_VARIABLE is not set"));
}

// The acceptance test of the issue for this sink: the audit database
// crashes (pg_ctl stop -m immediate) in the middle of a stream and comes
// back; every record arrives once, in order.
TEST_F(AuditPostgresSinkTest, KilledAndRestartedMidStreamEveryRecordOnce) {
  AuditConfig config = dir_.Config(100);
  config.sinks.push_back(TrailSink("crash"));
  absl::StatusOr<std::unique_ptr<AuditTrail>> trail = AuditTrail::Start(config, 2);
  ASSERT_TRUE(trail.ok()) << trail.status();
  std::atomic<bool> stop{false};
  std::atomic<int> produced{0};
  std::thread producer([&] {
    while (!stop.load()) {
      Produce(**trail, 20, 1, "during");
      produced += 20;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  // The sink creates the table on its first connection.
  ASSERT_TRUE(WaitFor([&] { return Query("SELECT to_regclass('crash') IS NOT NULL") == "t"; }));
  ASSERT_TRUE(WaitFor([&] { return Query("SELECT count(*) FROM crash") != "0"; }));
  pg_->Stop();
  ASSERT_TRUE(WaitFor([&] { return (*trail)->metrics().spilled_bytes > 0; }));
  EXPECT_TRUE((*trail)->healthy()) << "spilling is healthy";
  const int at_restart = produced.load();
  ASSERT_TRUE(WaitFor([&] { return produced.load() > at_restart + 500; }));
  pg_->Start();
  ASSERT_TRUE(WaitFor([&] { return produced.load() > at_restart + 1500; }));
  stop = true;
  producer.join();
  ASSERT_TRUE(WaitFor([&] { return (*trail)->metrics().spilled_bytes == 0; }, 30000));
  (*trail)->Stop();

  const std::vector<std::string> file = ReadLines(dir_.path("audit.jsonl"));
  size_t statements = 0;
  for (const std::string& line : file)
    statements += line.find("\"kind\":\"statement\"") != std::string::npos;
  EXPECT_EQ(statements, static_cast<size_t>(produced.load()));
  EXPECT_EQ(Query("SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM crash"),
            std::to_string(file.size()) + "|" + std::to_string(file.size()) + "|1|" +
                std::to_string(file.size()));
  const std::vector<std::string> stored = StoredLines("crash");
  for (size_t i = 0; i < std::min(stored.size(), file.size()); ++i) {
    ASSERT_EQ(stored[i], file[i]) << "first difference at line " << i + 1;
  }
  ASSERT_EQ(stored.size(), file.size());
  for (size_t i = 0; i < stored.size(); ++i) {
    ASSERT_EQ(SeqOf(stored[i]), i + 1);
    ASSERT_EQ(stored[i], file[i]);
  }
}

}  // namespace
}  // namespace pgb::audit
