#include <sys/stat.h>

#include <filesystem>
#include <string>

#include "core/audit/chain.h"
#include "core/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pgb {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kBase[] =
    "[[listener]]\nport = 6432\n[[target]]\nname = \"app\"\nhost = \"127.0.0.1\"\n"
    "user = \"pgbastion\"\n[[user]]\nname = \"alice\"\nscram_verifier = "
    "\"SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0c2FsdA==$h7BOWJYfmpnYU9QEagtbeT58Pku9IfWsqPsXwgzbHYs=:"
    "s+rNM0M7MbUlI1EDLJs+ei56p3ONXezfDdbGJoCFPAY=\"\n"
    "[[scope]]\nname = \"admins\"\nsubjects = [\"*\"]\nprofile = \"admin\"\n";

class AuditConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/pgb_audit_config.XXXXXX";
    dir_ = ::mkdtemp(pattern);
    ASSERT_TRUE(audit::GenerateKeyPairFiles(dir_ + "/audit.key", dir_ + "/audit.pub").ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  absl::StatusOr<Config> Parse(const std::string& audit) {
    return ParseConfig(std::string(kBase) + audit, "test.toml", dir_);
  }
  std::string dir_;
};

TEST_F(AuditConfigTest, NoSectionMeansNoTrail) {
  absl::StatusOr<Config> config = Parse("");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->audit.enabled);
}

TEST_F(AuditConfigTest, FullSection) {
  absl::StatusOr<Config> config = Parse(R"(
[audit]
mode = "fail-open"
ring_slots = 1024
signing_key = "audit.key"
checkpoint_every = 500
checkpoint_interval = "5s"
spill_dir = "spill"
spill_max_bytes = 10485760
statement_text = "normalized"
parameters = "redacted"
[[audit.sink]]
type = "file"
path = "log/audit.jsonl"
rotate_bytes = 1048576
rotate_interval = "1h"
keep = 7
fsync = "always"
[[audit.sink]]
type = "syslog"
name = "siem"
transport = "tcp"
host = "::1"
port = 6514
[[audit.sink]]
type = "http"
url = "https://collector.example/audit"
max_batch = 200
retry_initial = "100ms"
retry_max = "10s"
)");
  ASSERT_TRUE(config.ok()) << config.status();
  const audit::AuditConfig& a = config->audit;
  EXPECT_TRUE(a.enabled);
  EXPECT_EQ(a.mode, audit::AuditMode::kFailOpen);
  EXPECT_EQ(a.ring_slots, 1024u);
  EXPECT_EQ(a.signing_key, dir_ + "/audit.key");
  EXPECT_EQ(a.checkpoint_every, 500u);
  EXPECT_EQ(a.checkpoint_interval, absl::Seconds(5));
  EXPECT_EQ(a.spill_dir, dir_ + "/spill");
  EXPECT_EQ(a.statement_text, audit::StatementText::kNormalized);
  EXPECT_EQ(a.parameters, audit::ParameterMode::kRedacted);
  ASSERT_EQ(a.sinks.size(), 3u);
  EXPECT_EQ(a.sinks[0].name, "file0");
  EXPECT_EQ(a.sinks[0].file.path, dir_ + "/log/audit.jsonl");
  EXPECT_EQ(a.sinks[0].file.rotate_bytes, 1048576u);
  EXPECT_EQ(a.sinks[0].file.keep, 7u);
  EXPECT_EQ(a.sinks[0].file.fsync, audit::FsyncPolicy::kAlways);
  EXPECT_EQ(a.sinks[1].name, "siem");
  EXPECT_EQ(a.sinks[1].syslog.transport, audit::SyslogTransport::kTcp);
  EXPECT_EQ(a.sinks[1].syslog.port, 6514);
  EXPECT_EQ(a.sinks[2].name, "http2");
  EXPECT_EQ(a.sinks[2].http.max_batch, 200u);
}

TEST_F(AuditConfigTest, ErrorsNameTheirKeys) {
  absl::StatusOr<Config> config = Parse(R"(
[audit]
mode = "fail-sometimes"
ring_slots = 1000
signing_key = "missing.key"
statment_text = "full"
[[audit.sink]]
type = "file"
[[audit.sink]]
type = "syslog"
port = 0
[[audit.sink]]
type = "kafka"
)");
  ASSERT_FALSE(config.ok());
  const std::string message(config.status().message());
  EXPECT_THAT(message,
              HasSubstr("audit.mode: \"fail-sometimes\" is not one of fail-closed | fail-open"));
  EXPECT_THAT(message, HasSubstr("audit.ring_slots: must be a power of two"));
  EXPECT_THAT(message, HasSubstr("audit.signing_key: cannot open"));
  EXPECT_THAT(message,
              HasSubstr("audit.statment_text: unknown key; did you mean \"statement_text\"?"));
  EXPECT_THAT(message, HasSubstr("audit.sink[0].path: required"));
  EXPECT_THAT(message, HasSubstr("audit.sink[1].port: must be 1..65535, got 0"));
  EXPECT_THAT(message, HasSubstr("audit.sink[2].type: \"kafka\" is not one of"));
}

TEST_F(AuditConfigTest, SinkNamesAreUniqueAndSinksAreTables) {
  absl::StatusOr<Config> config = Parse(R"(
[audit]
signing_key = "audit.key"
[[audit.sink]]
type = "file"
path = "a.jsonl"
[[audit.sink]]
type = "file"
path = "b.jsonl"
name = "file0"
)");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()),
              HasSubstr("audit.sink[1].name: duplicate sink name \"file0\" (also sink[0])"));
  config = Parse("[audit]\nsigning_key = \"audit.key\"\nsink = 3\n");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()),
              HasSubstr("audit.sink: expected an array of tables ([[audit.sink]]), got integer"));
}

TEST_F(AuditConfigTest, PostgresSink) {
  absl::StatusOr<Config> config = Parse(R"(
[audit]
signing_key = "audit.key"
[[audit.sink]]
type = "postgres"
conninfo = "host=audit-db dbname=audit user=pgbastion sslmode=verify-full"
password_file = "db.password"
table = "audit.trail"
create_table = false
connect_timeout = "3s"
statement_timeout = "20s"
[[audit.sink]]
type = "postgres"
name = "second"
host = "10.0.0.5"
port = 5433
dbname = "audit"
user = "pgb"
password_env = "AUDIT_DB_PASSWORD"
)");
  ASSERT_TRUE(config.ok()) << config.status();
  const audit::AuditConfig& a = config->audit;
  ASSERT_EQ(a.sinks.size(), 2u);
  EXPECT_EQ(a.sinks[0].type, audit::AuditSinkType::kPostgres);
  EXPECT_EQ(a.sinks[0].name, "postgres0");
  const audit::PostgresSinkConfig& p = a.sinks[0].postgres;
  EXPECT_EQ(p.conninfo, "host=audit-db dbname=audit user=pgbastion sslmode=verify-full");
  EXPECT_EQ(p.password_file, dir_ + "/db.password");
  EXPECT_EQ(p.table, "audit.trail");
  EXPECT_FALSE(p.create_table);
  EXPECT_EQ(p.connect_timeout, absl::Seconds(3));
  EXPECT_EQ(p.statement_timeout, absl::Seconds(20));
  const audit::PostgresSinkConfig& q = a.sinks[1].postgres;
  EXPECT_EQ(a.sinks[1].name, "second");
  EXPECT_EQ(q.host, "10.0.0.5");
  EXPECT_EQ(q.port, 5433);
  EXPECT_EQ(q.dbname, "audit");
  EXPECT_EQ(q.user, "pgb");
  EXPECT_EQ(q.password_env, "AUDIT_DB_PASSWORD");
  EXPECT_EQ(q.table, "pgbastion_audit");
  EXPECT_TRUE(q.create_table);
}

TEST_F(AuditConfigTest, PostgresSinkErrorsNameTheirKeysAndNeverThePassword) {
  absl::StatusOr<Config> config = Parse(R"(
[audit]
signing_key = "audit.key"
[[audit.sink]]
type = "postgres"
conninfo = "host=db user=pgb password=hunter2"
table = "Audit-Trail"
[[audit.sink]]
type = "postgres"
[[audit.sink]]
type = "postgres"
conninfo = "postgresql://pgb:hunter2@db/audit"
password_env = "1BAD"
connect_timeout = "1s"
create_table = "yes"
sslmode = "require"
)");
  ASSERT_FALSE(config.ok());
  const std::string message(config.status().message());
  EXPECT_THAT(message, HasSubstr("audit.sink[0].conninfo: must not contain a password"));
  EXPECT_THAT(message, HasSubstr("audit.sink[0].table: \"Audit-Trail\" is not a table name"));
  EXPECT_THAT(message, HasSubstr("audit.sink[1].conninfo: required"));
  EXPECT_THAT(message, HasSubstr("audit.sink[2].conninfo: must not contain a password"));
  EXPECT_THAT(message, HasSubstr("audit.sink[2].password_env: must name an environment variable"));
  EXPECT_THAT(message, HasSubstr("audit.sink[2].connect_timeout: must be at least 2s"));
  EXPECT_THAT(message, HasSubstr("audit.sink[2].create_table: expected true or false"));
  EXPECT_THAT(message, HasSubstr("audit.sink[2].sslmode: unknown key"));
  EXPECT_THAT(message, Not(HasSubstr("hunter2")));
}

TEST_F(AuditConfigTest, SigningKeyMustBePrivateAndIsNeverPrinted) {
  ASSERT_EQ(::chmod((dir_ + "/audit.key").c_str(), 0644), 0);
  absl::StatusOr<Config> config = Parse(
      "[audit]\nsigning_key = \"audit.key\"\n[[audit.sink]]\ntype = \"file\"\npath = \"a\"\n");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("audit.signing_key:"));
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("chmod 600"));
  EXPECT_THAT(std::string(config.status().message()), Not(HasSubstr("PRIVATE KEY")));
}

TEST_F(AuditConfigTest, RequiresAKeyAndASink) {
  absl::StatusOr<Config> config = Parse("[audit]\n");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("audit.signing_key: required"));
  EXPECT_THAT(std::string(config.status().message()),
              HasSubstr("audit.sink: at least one [[audit.sink]] is required"));
  EXPECT_TRUE(Parse("[audit]\nenabled = false\n").ok());
}

}  // namespace
}  // namespace pgb
