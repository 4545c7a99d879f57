#include "core/config.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pgb {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// A well-formed verifier: 16-byte salt, two 32-byte keys (made up).
constexpr char kVerifier[] =
    "SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0c2FsdA==$h7BOWJYfmpnYU9QEagtbeT58Pku9IfWsqPsXwgzbHYs=:"
    "s+rNM0M7MbUlI1EDLJs+ei56p3ONXezfDdbGJoCFPAY=";
constexpr char kSecret[] = "S3cr3t-Hunter2-Value";

void WriteFile(const std::string& path, std::string_view contents, mode_t mode) {
  std::ofstream(path, std::ios::trunc) << contents;
  ASSERT_EQ(::chmod(path.c_str(), mode), 0) << path;
}

// One directory per test binary with the files the configs below refer to by
// relative path (so every parse also exercises base_dir resolution).
const std::string& TestDir() {
  static const std::string* dir = [] {
    char pattern[] = "/tmp/pgb_config_test.XXXXXX";
    auto* path = new std::string(::mkdtemp(pattern));
    WriteFile(*path + "/server.crt", "-----BEGIN CERTIFICATE-----\n", 0644);
    WriteFile(*path + "/server.key", "-----BEGIN PRIVATE KEY-----\n", 0600);
    WriteFile(*path + "/db-ca.crt", "-----BEGIN CERTIFICATE-----\n", 0644);
    WriteFile(*path + "/app.password", std::string(kSecret) + "\nsecond line\n", 0600);
    WriteFile(*path + "/open.password", std::string(kSecret) + "\n", 0644);
    WriteFile(*path + "/empty.password", "", 0600);
    std::atexit([] { std::filesystem::remove_all(TestDir()); });
    return path;
  }();
  return *dir;
}

std::vector<std::string> Lines(std::string_view text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = text.find('\n', start);
    lines.emplace_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return lines;
}

// A config document by section bodies; the defaults form a minimal valid config.
struct Doc {
  std::string gateway = "";
  std::string listener = "port = 6432";
  std::string target = "name = \"app\"\nhost = \"127.0.0.1\"\nuser = \"pgbastion\"";
  std::string user = std::string("name = \"alice\"\nscram_verifier = \"") + kVerifier + "\"";
  std::string scope = "name = \"admin\"\nsubjects = [\"*\"]\nprofile = \"admin\"";
  std::string tail = "";

  std::string Render() const {
    return "[gateway]\n" + gateway + "\n[[listener]]\n" + listener + "\n[[target]]\n" + target +
           "\n[[user]]\n" + user + "\n[[scope]]\n" + scope + "\n" + tail + "\n";
  }
};

absl::StatusOr<Config> Parse(const std::string& text) {
  return ParseConfig(text, "test.toml", TestDir());
}

std::string ErrorOf(const std::string& text) {
  absl::StatusOr<Config> config = Parse(text);
  EXPECT_FALSE(config.ok()) << text;
  return config.ok() ? "" : std::string(config.status().message());
}

TEST(ConfigTest, FullConfigParses) {
  ASSERT_EQ(::setenv("PGB_TEST_REPORTING_PASSWORD", "env-secret", 1), 0);
  const std::string text = R"(
[gateway]
workers = 2
max_message_size = 65536
auth_timeout = "5s"
shutdown_timeout = "1m"
log_level = "debug"

[[listener]]
address = "::"
port = 7432
tls = "required"
tls_cert = "server.crt"
tls_key = "${DIR}/server.key"

[[listener]]
address = "0.0.0.0"
port = 7432

[[target]]
name = "app"
host = "db.internal"
port = 5433
database = "appdb"
user = "pgbastion"
password_file = "app.password"
tls = "verify-ca"
tls_ca = "db-ca.crt"
tls_server_name = "db1.internal"
connect_timeout = "2500ms"

[[target]]
name = "reporting.v2"
host = "10.0.0.7"
user = "reader"
password_env = "PGB_TEST_REPORTING_PASSWORD"
tls = "require"

[[user]]
name = "alice"
scram_verifier = ")" + std::string(kVerifier) +
                           R"("
targets = ["app", "reporting.v2"]

[[user]]
name = "bob"
scram_verifier = ")" + std::string(kVerifier) +
                           R"("
groups = ["read-only", "oncall"]

[[scope]]
name = "bots"
sources = ["local", "certificate"]
subjects = ["ci-bot-*"]
targets = ["reporting.v2"]
profile = "read-only"
search_path = ["reporting", "public"]
statement_timeout = "30s"
[scope.relations]
deny = ["*.secrets", "\"Billing\".*"]

[[scope]]
name = "readers"
groups = ["read-only"]
issuers = ["https://idp.example"]
claims = { department = "finance" }
profile = "read-write"
classes = ["read", "write", "ddl"]
approval = ["destructive", "dcl"]
allow_function_call = true
lock_timeout = "5s"
idle_in_transaction_session_timeout = "1m"
functions = { allow = ["pg_catalog.*", "app.*", "pg_cancel_backend"], deny = ["pg_sleep"] }
)";
  // An absolute path is kept as is.
  const std::string absolute_key = TestDir() + "/server.key";
  std::string full = text;
  full.replace(full.find("${DIR}/server.key"), 17, absolute_key);
  absl::StatusOr<Config> parsed = Parse(full);
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  const Config& config = *parsed;
  EXPECT_EQ(config.workers, 2);
  EXPECT_EQ(config.ResolvedWorkers(), 2);
  EXPECT_EQ(config.max_message_size, 65536u);
  EXPECT_EQ(config.auth_timeout, absl::Seconds(5));
  EXPECT_EQ(config.shutdown_timeout, absl::Minutes(1));
  EXPECT_EQ(config.log_level, LogLevel::kDebug);

  ASSERT_EQ(config.listeners.size(), 2u);
  EXPECT_EQ(config.listeners[0].address, "::");
  EXPECT_EQ(config.listeners[0].port, 7432);
  EXPECT_EQ(config.listeners[0].tls, ListenerTls::kRequired);
  EXPECT_EQ(config.listeners[0].tls_cert_file, TestDir() + "/server.crt");
  EXPECT_EQ(config.listeners[0].tls_key_file, absolute_key);
  EXPECT_EQ(config.listeners[1].address, "0.0.0.0");
  EXPECT_EQ(config.listeners[1].tls, ListenerTls::kDisabled);

  ASSERT_EQ(config.targets.size(), 2u);
  const TargetConfig& app = config.targets[0];
  EXPECT_EQ(app.name, "app");
  EXPECT_EQ(app.host, "db.internal");
  EXPECT_EQ(app.port, 5433);
  EXPECT_EQ(app.database, "appdb");
  EXPECT_EQ(app.user, "pgbastion");
  EXPECT_EQ(app.password.Reveal(), kSecret);  // first line only
  EXPECT_EQ(app.tls, BackendTls::kVerifyCa);
  EXPECT_EQ(app.tls_ca_file, TestDir() + "/db-ca.crt");
  EXPECT_EQ(app.tls_server_name, "db1.internal");
  EXPECT_EQ(app.connect_timeout, absl::Milliseconds(2500));
  const TargetConfig& reporting = config.targets[1];
  EXPECT_EQ(reporting.password.Reveal(), "env-secret");
  EXPECT_EQ(reporting.tls, BackendTls::kRequire);
  EXPECT_EQ(reporting.tls_server_name, "10.0.0.7");

  ASSERT_EQ(config.users.size(), 2u);
  EXPECT_EQ(config.users[0].name, "alice");
  EXPECT_EQ(config.users[0].scram_verifier, kVerifier);
  EXPECT_THAT(config.users[0].targets, ::testing::ElementsAre("app", "reporting.v2"));
  EXPECT_TRUE(config.users[1].targets.empty());

  ASSERT_NE(config.FindTarget("reporting.v2"), nullptr);
  EXPECT_EQ(config.FindTarget("reporting.v2")->user, "reader");
  EXPECT_EQ(config.FindTarget("nope"), nullptr);
  ASSERT_NE(config.FindUser("bob"), nullptr);
  EXPECT_EQ(config.FindUser("bob")->name, "bob");
  EXPECT_EQ(config.FindUser("carol"), nullptr);
  EXPECT_THAT(config.users[1].groups, ::testing::ElementsAre("read-only", "oncall"));

  ASSERT_NE(config.policy, nullptr);
  const std::vector<policy::Scope>& scopes = config.policy->scopes();
  ASSERT_EQ(scopes.size(), 2u);
  const policy::Scope& bots = scopes[0];
  EXPECT_EQ(bots.name, "bots");
  EXPECT_THAT(bots.subjects, ::testing::ElementsAre("ci-bot-*"));
  ASSERT_EQ(bots.sources.size(), 2u);
  EXPECT_EQ(bots.sources[0].method, policy::AuthMethod::kLocalPassword);
  EXPECT_EQ(bots.sources[1].method, policy::AuthMethod::kCertificate);
  EXPECT_THAT(bots.targets, ::testing::ElementsAre("reporting.v2"));
  EXPECT_EQ(bots.profile, policy::Profile::kReadOnly);
  EXPECT_FALSE(bots.classes_set);
  EXPECT_THAT(bots.search_path, ::testing::ElementsAre("reporting", "public"));
  EXPECT_EQ(bots.statement_timeout, absl::Seconds(30));
  ASSERT_EQ(bots.relations_deny.size(), 2u);
  EXPECT_TRUE(bots.relations_deny[0].Matches("app", "secrets"));
  EXPECT_TRUE(bots.relations_deny[1].Matches("Billing", "invoices"));
  EXPECT_TRUE(bots.relations_allow.empty());
  const policy::Scope& readers = scopes[1];
  EXPECT_THAT(readers.groups, ::testing::ElementsAre("read-only"));
  EXPECT_THAT(readers.issuers, ::testing::ElementsAre("https://idp.example"));
  EXPECT_THAT(readers.claims,
              ::testing::ElementsAre(std::pair<std::string, std::string>("department", "finance")));
  EXPECT_EQ(readers.profile, policy::Profile::kReadWrite);
  EXPECT_TRUE(readers.classes_set);
  EXPECT_EQ(readers.classes, policy::ClassBit(policy::StatementClass::kRead) |
                                 policy::ClassBit(policy::StatementClass::kWrite) |
                                 policy::ClassBit(policy::StatementClass::kDdl));
  EXPECT_EQ(readers.approval,
            policy::kApprovalDestructive | policy::ClassBit(policy::StatementClass::kDcl));
  EXPECT_TRUE(readers.allow_function_call);
  EXPECT_EQ(readers.lock_timeout, absl::Seconds(5));
  EXPECT_EQ(readers.idle_in_transaction_session_timeout, absl::Minutes(1));
  EXPECT_EQ(readers.functions_allow.size(), 3u);
  EXPECT_EQ(readers.functions_deny.size(), 1u);
  EXPECT_THAT(readers.search_path, ::testing::ElementsAre("$user", "public"));  // the default

  // Local users match scopes by name (the subject) and groups.
  policy::Identity bob;
  bob.subject = "bob";
  bob.groups = config.users[1].groups;
  EXPECT_EQ(config.policy->MatchScope(bob, "app"), nullptr);  // no issuer, no claim
  bob.issuer = "https://idp.example";
  bob.claims = {{"department", "finance"}};
  ASSERT_NE(config.policy->MatchScope(bob, "app"), nullptr);
  EXPECT_EQ(config.policy->MatchScope(bob, "app")->name, "readers");
}

TEST(ConfigTest, DefaultsApplied) {
  absl::StatusOr<Config> parsed = Parse(Doc{}.Render());
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  const Config& config = *parsed;
  EXPECT_EQ(config.workers, 0);
  EXPECT_EQ(config.ResolvedWorkers(), static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN)));
  EXPECT_EQ(config.max_message_size, 1073741823u);
  EXPECT_EQ(config.auth_timeout, absl::Seconds(60));
  EXPECT_EQ(config.shutdown_timeout, absl::Seconds(30));
  EXPECT_EQ(config.log_level, LogLevel::kInfo);
  ASSERT_EQ(config.listeners.size(), 1u);
  EXPECT_EQ(config.listeners[0].address, "127.0.0.1");
  EXPECT_EQ(config.listeners[0].port, 6432);
  EXPECT_EQ(config.listeners[0].tls, ListenerTls::kDisabled);
  ASSERT_EQ(config.targets.size(), 1u);
  const TargetConfig& target = config.targets[0];
  EXPECT_EQ(target.port, 5432);
  EXPECT_EQ(target.database, "app");
  EXPECT_TRUE(target.password.empty());
  EXPECT_EQ(target.tls, BackendTls::kDisable);
  EXPECT_EQ(target.tls_server_name, "127.0.0.1");
  EXPECT_EQ(target.connect_timeout, absl::Seconds(10));
  EXPECT_TRUE(config.users[0].targets.empty());
}

TEST(ConfigTest, GatewayTableIsOptional) {
  Doc doc;
  std::string text = doc.Render();
  text.erase(0, std::string("[gateway]\n\n").size());
  absl::StatusOr<Config> parsed = Parse(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed->auth_timeout, absl::Seconds(60));
}

TEST(ConfigTest, TlsDefaultsFollowCertAndCa) {
  absl::StatusOr<Config> parsed =
      Parse(Doc{.listener = "tls_cert = \"server.crt\"\ntls_key = \"server.key\"",
                .target = "name = \"app\"\nhost = \"db\"\nuser = \"u\"\ntls_ca = \"db-ca.crt\""}
                .Render());
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed->listeners[0].tls, ListenerTls::kOptional);
  EXPECT_EQ(parsed->targets[0].tls, BackendTls::kVerifyFull);
  EXPECT_EQ(parsed->targets[0].tls_server_name, "db");
}

TEST(ConfigTest, PasswordFileWithMode0600IsAccepted) {
  absl::StatusOr<Config> parsed = Parse(
      Doc{.target = "name = \"app\"\nhost = \"db\"\nuser = \"u\"\npassword_file = \"app.password\""}
          .Render());
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed->targets[0].password.Reveal(), kSecret);
}

TEST(ConfigTest, PasswordFileWithMode0644IsRefused) {
  const std::string error = ErrorOf(Doc{
      .target = "name = \"app\"\nhost = \"db\"\nuser = \"u\"\npassword_file = \"open.password\""}
                                        .Render());
  EXPECT_THAT(error, AllOf(StartsWith("target[0].password_file: "), HasSubstr("0644"),
                           HasSubstr("chmod 600"), Not(HasSubstr(kSecret))));
}

TEST(ConfigTest, PasswordEnvMissingNamesKeyAndVariable) {
  ASSERT_EQ(::unsetenv("PGB_TEST_UNSET_VARIABLE"), 0);
  const std::string error = ErrorOf(Doc{.target = "name = \"app\"\nhost = \"db\"\nuser = \"u\"\n"
                                                  "password_env = \"PGB_TEST_UNSET_VARIABLE\""}
                                        .Render());
  EXPECT_THAT(error, AllOf(StartsWith("target[0].password_env: "),
                           HasSubstr("PGB_TEST_UNSET_VARIABLE"), HasSubstr("not set")));
}

// Every way a secret could reach a message: a refused file, both sources set,
// a password typed into the file, a syntax error next to it, a bad verifier.
TEST(ConfigTest, SecretNeverAppearsInErrors) {
  ASSERT_EQ(::setenv("PGB_TEST_SECRET", kSecret, 1), 0);
  const std::string target = "name = \"app\"\nhost = \"db\"\nuser = \"u\"\n";
  const std::vector<std::string> texts = {
      Doc{.target = target + "password_file = \"open.password\""}.Render(),
      Doc{.target = target + "password_file = \"app.password\"\npassword_env = \"PGB_TEST_SECRET\""}
          .Render(),
      Doc{.target = target + "password = \"" + kSecret + "\""}.Render(),
      Doc{.target = target + "passwrd = \"" + kSecret + "\""}.Render(),
      Doc{.target = target + "password = \"" + kSecret}.Render(),  // unterminated string
      Doc{.target = target + "password = " + kSecret}.Render(),    // bare value
      Doc{.user =
              std::string("name = \"a\"\nscram_verifier = \"SCRAM-SHA-256$4096:") + kSecret + "\""}
          .Render(),
  };
  for (const std::string& text : texts) {
    const std::string error = ErrorOf(text);
    EXPECT_FALSE(error.empty()) << text;
    EXPECT_THAT(error, Not(HasSubstr(kSecret))) << text;
    EXPECT_THAT(error, Not(HasSubstr("S3cr3t"))) << text;
  }
}

TEST(ConfigTest, EveryErrorIsReportedAtOnce) {
  const std::string error = ErrorOf(Doc{.gateway = "workers = -1\nlog_level = \"loud\"",
                                        .listener = "port = 0\ntsl = \"required\"",
                                        .target = "name = \"app\"\nhost = \"db\"",
                                        .user = "name = \"alice\"\ntargets = [\"nope\"]",
                                        .tail = "[metrics]\nport = 9000"}
                                        .Render());
  const std::vector<std::string> lines = Lines(error);
  EXPECT_EQ(lines.size(), 8u) << error;
  for (std::string_view key :
       {"gateway.workers: ", "gateway.log_level: ", "listener[0].port: ", "listener[0].tsl: ",
        "target[0].user: ", "user[0].scram_verifier: ", "user[0].targets[0]: ", "metrics: "}) {
    EXPECT_TRUE(std::any_of(lines.begin(), lines.end(),
                            [&](const std::string& line) { return line.starts_with(key); }))
        << key << " missing in:\n"
        << error;
  }
  // Sorted by position in the file, each with its location.
  EXPECT_THAT(lines.front(), StartsWith("gateway.workers: "));
  EXPECT_THAT(lines.front(), HasSubstr("(test.toml:2:11)"));
}

TEST(ConfigTest, SyntaxErrorHasLineAndColumn) {
  const std::string error = ErrorOf("[gateway]\nworkers = 2\n[[listener]\nport = 1\n");
  EXPECT_THAT(error, StartsWith("test.toml:3:"));
  EXPECT_THAT(error, HasSubstr("syntax error"));
  EXPECT_EQ(Lines(error).size(), 1u);
}

TEST(ConfigTest, LoadConfigFileResolvesPathsAgainstItsDirectory) {
  const std::string path = TestDir() + "/pgbastion.toml";
  WriteFile(path,
            Doc{.listener = "tls_cert = \"server.crt\"\ntls_key = \"./server.key\"",
                .target = "name = \"app\"\nhost = \"db\"\nuser = \"u\"\n"
                          "password_file = \"app.password\""}
                .Render(),
            0644);
  absl::StatusOr<Config> config = LoadConfigFile(path);
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->listeners[0].tls_cert_file, TestDir() + "/server.crt");
  EXPECT_EQ(config->listeners[0].tls_key_file, TestDir() + "/server.key");
  EXPECT_EQ(config->targets[0].password.Reveal(), kSecret);
}

TEST(ConfigTest, LoadConfigFileMissingFile) {
  absl::StatusOr<Config> config = LoadConfigFile(TestDir() + "/missing.toml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("missing.toml"));
}

// Each case is a config with exactly one mistake: the error must be a single
// line starting with the key and saying what is wrong.
struct ErrorCase {
  std::string name;
  std::string text;
  std::string key;   // the line starts with "<key>: "
  std::string says;  // and contains this
};

void PrintTo(const ErrorCase& c, std::ostream* os) { *os << c.name; }

class ConfigErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ConfigErrorTest, ReportsOneErrorNamingTheKey) {
  const ErrorCase& c = GetParam();
  const std::string error = ErrorOf(c.text);
  const std::vector<std::string> lines = Lines(error);
  ASSERT_EQ(lines.size(), 1u) << error;
  EXPECT_THAT(lines[0], StartsWith(c.key + ": "));
  EXPECT_THAT(lines[0], HasSubstr(c.says));
}

// A named function: a lambda's `info` parameter would shadow gtest's own (-Wshadow).
std::string CaseName(const ::testing::TestParamInfo<ErrorCase>& param_info) {
  return param_info.param.name;
}

const std::string kTarget = "name = \"app\"\nhost = \"127.0.0.1\"\nuser = \"pgbastion\"\n";
const std::string kUser = "name = \"alice\"\n";
const std::string kUserVerifier = kUser + "scram_verifier = \"" + kVerifier + "\"\n";
const std::string kScope = "[[scope]]\nname = \"admin\"\nsubjects = [\"*\"]\nprofile = \"admin\"\n";
std::string Verifier(std::string_view v) {
  return kUser + "scram_verifier = \"" + std::string(v) + "\"";
}
constexpr char kSalt[] = "c2FsdHNhbHRzYWx0c2FsdA==";
constexpr char kKey[] = "h7BOWJYfmpnYU9QEagtbeT58Pku9IfWsqPsXwgzbHYs=";
const std::string kKeys = std::string(kKey) + ":" + kKey;

INSTANTIATE_TEST_SUITE_P(
    Gateway, ConfigErrorTest,
    ::testing::Values(
        ErrorCase{"WorkersNegative", Doc{.gateway = "workers = -1"}.Render(), "gateway.workers",
                  "0..1024"},
        ErrorCase{"WorkersTooMany", Doc{.gateway = "workers = 1025"}.Render(), "gateway.workers",
                  "got 1025"},
        ErrorCase{"WorkersString", Doc{.gateway = "workers = \"2\""}.Render(), "gateway.workers",
                  "expected an integer 0..1024, got string"},
        ErrorCase{"MaxMessageTooSmall", Doc{.gateway = "max_message_size = 1023"}.Render(),
                  "gateway.max_message_size", "1024..1073741823"},
        ErrorCase{"MaxMessageTooLarge", Doc{.gateway = "max_message_size = 1073741824"}.Render(),
                  "gateway.max_message_size", "1024..1073741823"},
        ErrorCase{"MaxMessageFloat", Doc{.gateway = "max_message_size = 1e6"}.Render(),
                  "gateway.max_message_size", "got float"},
        ErrorCase{"AuthTimeoutGarbage", Doc{.gateway = "auth_timeout = \"soon\""}.Render(),
                  "gateway.auth_timeout", "not a duration"},
        ErrorCase{"AuthTimeoutNoUnit", Doc{.gateway = "auth_timeout = \"60\""}.Render(),
                  "gateway.auth_timeout", "not a duration"},
        ErrorCase{"AuthTimeoutZero", Doc{.gateway = "auth_timeout = \"0s\""}.Render(),
                  "gateway.auth_timeout", "> 0"},
        ErrorCase{"AuthTimeoutNegative", Doc{.gateway = "auth_timeout = \"-5s\""}.Render(),
                  "gateway.auth_timeout", "> 0"},
        ErrorCase{"AuthTimeoutInfinite", Doc{.gateway = "auth_timeout = \"inf\""}.Render(),
                  "gateway.auth_timeout", "finite"},
        ErrorCase{"AuthTimeoutInteger", Doc{.gateway = "auth_timeout = 60"}.Render(),
                  "gateway.auth_timeout", "expected a duration string"},
        ErrorCase{"ShutdownTimeout", Doc{.gateway = "shutdown_timeout = \"30 s\""}.Render(),
                  "gateway.shutdown_timeout", "not a duration"},
        ErrorCase{"LogLevel", Doc{.gateway = "log_level = \"verbose\""}.Render(),
                  "gateway.log_level", "debug | info | warning | error"},
        ErrorCase{"UnknownGatewayKey", Doc{.gateway = "worker = 2"}.Render(), "gateway.worker",
                  "unknown key; did you mean \"workers\"?"},
        ErrorCase{"GatewayNotATable",
                  "gateway = 5\n" + Doc{}.Render().substr(std::string("[gateway]\n").size()),
                  "gateway", "expected a table ([gateway]), got integer"}),
    CaseName);

INSTANTIATE_TEST_SUITE_P(
    TopLevel, ConfigErrorTest,
    ::testing::Values(
        ErrorCase{"UnknownTable", Doc{.tail = "[gatway]\nworkers = 1"}.Render(), "gatway",
                  "did you mean \"gateway\"?"},
        ErrorCase{"UnknownTopLevelArray", Doc{.tail = "[[listeners]]\nport = 1"}.Render(),
                  "listeners", "did you mean \"listener\"?"},
        ErrorCase{"NoListener", "[[target]]\n" + kTarget + "[[user]]\n" + kUserVerifier + kScope,
                  "listener", "at least one [[listener]]"},
        ErrorCase{"NoTarget", "[[listener]]\n[[user]]\n" + kUserVerifier + kScope, "target",
                  "at least one [[target]]"},
        ErrorCase{"NoUser", "[[listener]]\n[[target]]\n" + kTarget + kScope, "user",
                  "at least one [[user]]"},
        ErrorCase{"EmptyListenerArray",
                  "listener = []\n[[target]]\n" + kTarget + "[[user]]\n" + kUserVerifier + kScope,
                  "listener", "at least one [[listener]]"},
        ErrorCase{
            "ListenerAsTable",
            "[listener]\nport = 1\n[[target]]\n" + kTarget + "[[user]]\n" + kUserVerifier + kScope,
            "listener", "expected an array of tables ([[listener]]), got table"},
        ErrorCase{"ListenerElementNotTable",
                  "listener = [1]\n[[target]]\n" + kTarget + "[[user]]\n" + kUserVerifier + kScope,
                  "listener[0]", "expected a table, got integer"}),
    CaseName);

INSTANTIATE_TEST_SUITE_P(
    Listener, ConfigErrorTest,
    ::testing::Values(
        ErrorCase{"AddressHostname", Doc{.listener = "address = \"localhost\""}.Render(),
                  "listener[0].address", "not an IPv4 or IPv6 address literal"},
        ErrorCase{"AddressBadIpv4", Doc{.listener = "address = \"300.1.1.1\""}.Render(),
                  "listener[0].address", "not an IPv4 or IPv6"},
        ErrorCase{"PortZero", Doc{.listener = "port = 0"}.Render(), "listener[0].port", "1..65535"},
        ErrorCase{"PortTooLarge", Doc{.listener = "port = 65536"}.Render(), "listener[0].port",
                  "got 65536"},
        ErrorCase{"PortString", Doc{.listener = "port = \"6432\""}.Render(), "listener[0].port",
                  "got string"},
        ErrorCase{"TlsMode", Doc{.listener = "tls = \"yes\""}.Render(), "listener[0].tls",
                  "disabled | optional | required"},
        ErrorCase{"TlsRequiredWithoutCert",
                  Doc{.listener = "tls = \"required\"\ntls_key = \"server.key\""}.Render(),
                  "listener[0].tls_cert", "required unless tls = \"disabled\""},
        ErrorCase{"TlsCertWithoutKey", Doc{.listener = "tls_cert = \"server.crt\""}.Render(),
                  "listener[0].tls_key", "required"},
        ErrorCase{"TlsCertMissingFile",
                  Doc{.listener = "tls_cert = \"nope.crt\"\ntls_key = \"server.key\""}.Render(),
                  "listener[0].tls_cert", "nope.crt\": No such file"},
        ErrorCase{"TlsKeyIsDirectory",
                  Doc{.listener = "tls_cert = \"server.crt\"\ntls_key = \".\""}.Render(),
                  "listener[0].tls_key", "not a regular file"},
        ErrorCase{"Typo", Doc{.listener = "tsl = \"disabled\""}.Render(), "listener[0].tsl",
                  "unknown key; did you mean \"tls\"?"},
        ErrorCase{"Duplicate", Doc{.tail = "[[listener]]\naddress = \"127.0.0.1\""}.Render(),
                  "listener[1]", "duplicate listener 127.0.0.1 port 6432 (also listener[0])"},
        ErrorCase{
            "DuplicateIpv6Spelling",
            Doc{.listener = "address = \"::1\"", .tail = "[[listener]]\naddress = \"0:0:0::1\""}
                .Render(),
            "listener[1]", "duplicate listener"}),
    CaseName);

INSTANTIATE_TEST_SUITE_P(
    Target, ConfigErrorTest,
    ::testing::Values(
        ErrorCase{"NameMissing", Doc{.target = "host = \"db\"\nuser = \"u\""}.Render(),
                  "target[0].name", "required"},
        ErrorCase{"NameBadCharacters",
                  Doc{.target = "name = \"my app\"\n" + kTarget.substr(13)}.Render(),
                  "target[0].name", "A-Z a-z 0-9 _ . -"},
        ErrorCase{"NameDuplicate", Doc{.tail = "[[target]]\n" + kTarget}.Render(), "target[1].name",
                  "duplicate target name \"app\" (also target[0])"},
        ErrorCase{"HostMissing", Doc{.target = "name = \"app\"\nuser = \"u\""}.Render(),
                  "target[0].host", "required"},
        ErrorCase{"HostEmpty", Doc{.target = "name = \"app\"\nhost = \"\"\nuser = \"u\""}.Render(),
                  "target[0].host", "must not be empty"},
        ErrorCase{"HostInvalid",
                  Doc{.target = "name = \"app\"\nhost = \"db host\"\nuser = \"u\""}.Render(),
                  "target[0].host",
                  "not an IP address, a DNS name or an absolute socket directory"},
        ErrorCase{
            "HostSocketDirectoryTooLong",
            Doc{.target = "name = \"app\"\nhost = \"/" + std::string(100, 'd') + "\"\nuser = \"u\""}
                .Render(),
            "target[0].host", "is too long (at most 92 bytes)"},
        ErrorCase{"SocketDirectoryWithTls",
                  Doc{.target = "name = \"app\"\nhost = \"/var/run/postgresql\"\nuser = \"u\"\n"
                                "tls = \"require\""}
                      .Render(),
                  "target[0].tls", "must be \"disable\" for a Unix-domain socket"},
        ErrorCase{"Port", Doc{.target = kTarget + "port = 70000"}.Render(), "target[0].port",
                  "1..65535"},
        ErrorCase{"UserMissing", Doc{.target = "name = \"app\"\nhost = \"db\""}.Render(),
                  "target[0].user", "required"},
        ErrorCase{"UserWrongType",
                  Doc{.target = "name = \"app\"\nhost = \"db\"\nuser = 5"}.Render(),
                  "target[0].user", "expected a string, got integer"},
        ErrorCase{"DatabaseEmpty", Doc{.target = kTarget + "database = \"\""}.Render(),
                  "target[0].database", "1..63"},
        ErrorCase{"PasswordFileMissing",
                  Doc{.target = kTarget + "password_file = \"missing.password\""}.Render(),
                  "target[0].password_file", "No such file"},
        ErrorCase{"PasswordFileEmpty",
                  Doc{.target = kTarget + "password_file = \"empty.password\""}.Render(),
                  "target[0].password_file", "is empty"},
        ErrorCase{"PasswordFileAndEnv",
                  Doc{.target = kTarget + "password_file = \"app.password\"\npassword_env = \"X\""}
                      .Render(),
                  "target[0].password_env", "not both"},
        ErrorCase{"PasswordEnvBadName", Doc{.target = kTarget + "password_env = \"1 X\""}.Render(),
                  "target[0].password_env", "not an environment variable name"},
        ErrorCase{"PasswordInFile", Doc{.target = kTarget + "password = \"x\""}.Render(),
                  "target[0].password", "password_file"},
        ErrorCase{"TlsMode", Doc{.target = kTarget + "tls = \"prefer\""}.Render(), "target[0].tls",
                  "disable | require | verify-ca | verify-full"},
        ErrorCase{"VerifyFullWithoutCa", Doc{.target = kTarget + "tls = \"verify-full\""}.Render(),
                  "target[0].tls_ca", "required"},
        ErrorCase{"VerifyCaWithoutCa", Doc{.target = kTarget + "tls = \"verify-ca\""}.Render(),
                  "target[0].tls_ca", "required"},
        ErrorCase{"CaWithRequire",
                  Doc{.target = kTarget + "tls = \"require\"\ntls_ca = \"db-ca.crt\""}.Render(),
                  "target[0].tls_ca", "only used with"},
        ErrorCase{"CaMissingFile", Doc{.target = kTarget + "tls_ca = \"nope.crt\""}.Render(),
                  "target[0].tls_ca", "No such file"},
        ErrorCase{"ServerNameWithoutTls",
                  Doc{.target = kTarget + "tls_server_name = \"db\""}.Render(),
                  "target[0].tls_server_name", "not used with tls = \"disable\""},
        ErrorCase{"ConnectTimeout", Doc{.target = kTarget + "connect_timeout = \"10\""}.Render(),
                  "target[0].connect_timeout", "not a duration"},
        ErrorCase{"Typo", Doc{.target = kTarget + "hots = \"db\""}.Render(), "target[0].hots",
                  "did you mean \"host\"?"},
        ErrorCase{"SslmodeHint", Doc{.target = kTarget + "sslmode = \"require\""}.Render(),
                  "target[0].sslmode", "use \"tls\""},
        ErrorCase{"FarTypoNoSuggestion", Doc{.target = kTarget + "colour = 1"}.Render(),
                  "target[0].colour", "unknown key (known keys: name, host"}),
    CaseName);

INSTANTIATE_TEST_SUITE_P(
    User, ConfigErrorTest,
    ::testing::Values(
        ErrorCase{"NameMissing",
                  Doc{.user = std::string("scram_verifier = \"") + kVerifier + "\""}.Render(),
                  "user[0].name", "required"},
        ErrorCase{"VerifierMissing", Doc{.user = kUser}.Render(), "user[0].scram_verifier",
                  "required"},
        ErrorCase{
            "VerifierWrongPrefix",
            Doc{.user = Verifier(std::string("SCRAM-SHA-1$4096:") + kSalt + "$" + kKeys)}.Render(),
            "user[0].scram_verifier", "does not start with"},
        ErrorCase{"VerifierMd5", Doc{.user = Verifier("md5abcdef")}.Render(),
                  "user[0].scram_verifier", "does not start with"},
        ErrorCase{
            "VerifierZeroIterations",
            Doc{.user = Verifier(std::string("SCRAM-SHA-256$0:") + kSalt + "$" + kKeys)}.Render(),
            "user[0].scram_verifier", "iteration count"},
        ErrorCase{
            "VerifierIterationsNotNumber",
            Doc{.user = Verifier(std::string("SCRAM-SHA-256$4k:") + kSalt + "$" + kKeys)}.Render(),
            "user[0].scram_verifier", "iteration count"},
        ErrorCase{"VerifierSaltNotBase64",
                  Doc{.user = Verifier("SCRAM-SHA-256$4096:not*base64$" + kKeys)}.Render(),
                  "user[0].scram_verifier", "invalid salt"},
        ErrorCase{"VerifierKeyShort",
                  Doc{.user = Verifier(std::string("SCRAM-SHA-256$4096:") + kSalt + "$" + kKey +
                                       ":" + kSalt)}
                      .Render(),
                  "user[0].scram_verifier", "invalid ServerKey (not 32 bytes"},
        // Found by tests/fuzz/config_fuzzer: base64 with non-zero padding bits
        // must be refused here, as the SCRAM code refuses it at startup.
        ErrorCase{
            "VerifierSaltPaddingBits",
            Doc{.user = Verifier("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gR==$" + kKeys)}.Render(),
            "user[0].scram_verifier", "invalid salt"},
        ErrorCase{
            "VerifierMissingPart",
            Doc{.user = Verifier(std::string("SCRAM-SHA-256$4096:") + kSalt + "$" + kKey)}.Render(),
            "user[0].scram_verifier", "no ':' between StoredKey and ServerKey"},
        ErrorCase{"UnknownTarget", Doc{.user = kUserVerifier + "targets = [\"nope\"]"}.Render(),
                  "user[0].targets[0]", "no [[target]] named \"nope\" (targets: app)"},
        ErrorCase{"TargetsNotArray", Doc{.user = kUserVerifier + "targets = \"app\""}.Render(),
                  "user[0].targets", "expected an array of target names, got string"},
        ErrorCase{"TargetsEmpty", Doc{.user = kUserVerifier + "targets = []"}.Render(),
                  "user[0].targets", "omit the key to allow all"},
        ErrorCase{"TargetsElementType", Doc{.user = kUserVerifier + "targets = [1]"}.Render(),
                  "user[0].targets[0]", "expected a string"},
        ErrorCase{"TargetsListedTwice",
                  Doc{.user = kUserVerifier + "targets = [\"app\", \"app\"]"}.Render(),
                  "user[0].targets[1]", "listed twice"},
        ErrorCase{"Duplicate", Doc{.tail = "[[user]]\n" + kUserVerifier}.Render(), "user[1].name",
                  "duplicate user name \"alice\" (also user[0])"},
        ErrorCase{"Typo", Doc{.user = kUserVerifier + "target = [\"app\"]"}.Render(),
                  "user[0].target", "did you mean \"targets\"?"}),
    CaseName);

INSTANTIATE_TEST_SUITE_P(
    Scope, ConfigErrorTest,
    ::testing::Values(
        ErrorCase{"Missing", Doc{}.Render().substr(0, Doc{}.Render().find("[[scope]]")), "scope",
                  "at least one [[scope]] is required"},
        ErrorCase{"NotArray",
                  "scope = 1\n" + Doc{}.Render().substr(0, Doc{}.Render().find("[[scope]]")),
                  "scope", "expected an array of tables ([[scope]]), got integer"},
        ErrorCase{"NameMissing", Doc{.scope = "subjects = [\"*\"]\nprofile = \"admin\""}.Render(),
                  "scope[0].name", "required"},
        ErrorCase{"NameBad",
                  Doc{.scope = "name = \"a b\"\nsubjects = [\"*\"]\nprofile = \"admin\""}.Render(),
                  "scope[0].name", "A-Z a-z 0-9 _ -"},
        ErrorCase{"NameDuplicate", Doc{.tail = kScope}.Render(), "scope[1].name",
                  "duplicate scope name \"admin\" (also scope[0])"},
        ErrorCase{"NoIdentityCondition", Doc{.scope = "name = \"x\"\nprofile = \"admin\""}.Render(),
                  "scope[0]", "needs at least one of subjects, groups, issuers, claims"},
        ErrorCase{
            "SubjectsWithoutSources",
            Doc{.scope = "name = \"x\"\nsubjects = [\"alice\"]\nprofile = \"admin\""}.Render(),
            "scope[0]", "names subjects, groups or claims but not their sources"},
        ErrorCase{"GroupsWithoutSources",
                  Doc{.scope = "name = \"x\"\nsubjects = [\"*\"]\ngroups = [\"ops\"]\n"
                               "profile = \"admin\""}
                      .Render(),
                  "scope[0]", "sources = [\"local\"], [\"certificate\"] or [\"issuer:<name>\"]"},
        ErrorCase{"SourceUnknown",
                  Doc{.scope = "name = \"x\"\nsources = [\"ldap\"]\nsubjects = [\"alice\"]\n"
                               "profile = \"admin\""}
                      .Render(),
                  "scope[0].sources[0]", "\"ldap\" is not a source"},
        ErrorCase{"SourceIssuerUnknown",
                  Doc{.scope = "name = \"x\"\nsources = [\"issuer:corp\"]\n"
                               "subjects = [\"alice\"]\nprofile = \"admin\""}
                      .Render(),
                  "scope[0].sources[0]", "no [[issuer]] named \"corp\" (there is no [[issuer]])"},
        ErrorCase{"ProfileMissing", Doc{.scope = "name = \"x\"\nsubjects = [\"*\"]"}.Render(),
                  "scope[0].profile", "required (read-only | read-write | admin | none)"},
        ErrorCase{"ProfileUnknown",
                  Doc{.scope = "name = \"x\"\nsubjects = [\"*\"]\nprofile = \"readonly\""}.Render(),
                  "scope[0].profile", "\"readonly\" is not one of"},
        ErrorCase{"SubjectsEmpty",
                  Doc{.scope = "name = \"x\"\nsubjects = []\nprofile = \"admin\""}.Render(),
                  "scope[0].subjects", "must not be empty"},
        ErrorCase{"GroupsNotArray",
                  Doc{.scope = "name = \"x\"\ngroups = \"admin\"\nprofile = \"admin\""}.Render(),
                  "scope[0].groups", "expected an array of strings, got string"},
        ErrorCase{
            "ClaimNotString",
            Doc{.scope = "name = \"x\"\nclaims = { level = 3 }\nprofile = \"admin\""}.Render(),
            "scope[0].claims.level", "expected a string"},
        ErrorCase{"UnknownTarget",
                  Doc{.scope = "name = \"x\"\nsubjects = [\"*\"]\ntargets = [\"nope\"]\n"
                               "profile = \"admin\""}
                      .Render(),
                  "scope[0].targets[0]", "no [[target]] named \"nope\" (targets: app)"},
        ErrorCase{"ClassUnknown",
                  Doc{.scope = "name = \"x\"\nsubjects = [\"*\"]\nprofile = \"none\"\n"
                               "classes = [\"select\"]"}
                      .Render(),
                  "scope[0].classes[0]", "\"select\" is not a statement class (read | transaction"},
        ErrorCase{"ReadOnlyWithWrite",
                  Doc{.scope = "name = \"x\"\nsubjects = [\"*\"]\nprofile = \"read-only\"\n"
                               "classes = [\"read\", \"write\"]"}
                      .Render(),
                  "scope[0].classes[1]", "profile read-only cannot allow write"},
        ErrorCase{"ApprovalUnknown",
                  Doc{.scope = "name = \"x\"\nsubjects = [\"*\"]\nprofile = \"admin\"\n"
                               "approval = [\"drop\"]"}
                      .Render(),
                  "scope[0].approval[0]", "| destructive)"},
        ErrorCase{"PatternInvalid",
                  Doc{.scope = "name = \"x\"\nsubjects = [\"*\"]\nprofile = \"admin\"\n"
                               "[scope.relations]\nallow = [\"app.*\"]\ndeny = [\"app..x\"]"}
                      .Render(),
                  "scope[0].relations.deny[0]", "invalid pattern \"app..x\": "},
        ErrorCase{"FunctionPatternInvalid",
                  Doc{.scope = "name = \"x\"\nsubjects = [\"*\"]\nprofile = \"admin\"\n"
                               "functions = { allow = [\"a.b.c\"] }"}
                      .Render(),
                  "scope[0].functions.allow[0]", "too many '.'"},
        ErrorCase{"ListsNotTable",
                  Doc{.scope = "name = \"x\"\nsubjects = [\"*\"]\nprofile = \"admin\"\n"
                               "relations = [\"app.*\"]"}
                      .Render(),
                  "scope[0].relations", "expected a table with allow and deny lists"},
        ErrorCase{"ListsTypo",
                  Doc{.scope = "name = \"x\"\nsubjects = [\"*\"]\nprofile = \"admin\"\n"
                               "relations = { dney = [\"app.*\"] }"}
                      .Render(),
                  "scope[0].relations.dney", "did you mean \"deny\"?"},
        ErrorCase{"Timeout",
                  Doc{.scope = "name = \"x\"\nsubjects = [\"*\"]\nprofile = \"admin\"\n"
                               "statement_timeout = \"30\""}
                      .Render(),
                  "scope[0].statement_timeout", "\"30\" is not a duration"},
        ErrorCase{"TimeoutBelowAMillisecond",
                  Doc{.scope = "name = \"x\"\nsubjects = [\"*\"]\nprofile = \"admin\"\n"
                               "lock_timeout = \"500us\""}
                      .Render(),
                  "scope[0].lock_timeout", "must be 1ms.."},
        ErrorCase{"ResourceCapNotAValue",
                  Doc{.scope = "name = \"x\"\nsubjects = [\"*\"]\nprofile = \"admin\"\n"
                               "work_mem = \"64mb\""}
                      .Render(),
                  "scope[0].work_mem", "\"64mb\" is not a value PostgreSQL reads for work_mem"},
        ErrorCase{"ResourceCapNoLimit",
                  Doc{.scope = "name = \"x\"\nsubjects = [\"*\"]\nprofile = \"admin\"\n"
                               "temp_file_limit = -1"}
                      .Render(),
                  "scope[0].temp_file_limit", "below PostgreSQL's minimum"},
        ErrorCase{"FunctionCallNotBool",
                  Doc{.scope = "name = \"x\"\nsubjects = [\"*\"]\nprofile = \"admin\"\n"
                               "allow_function_call = \"yes\""}
                      .Render(),
                  "scope[0].allow_function_call", "expected true or false, got string"},
        ErrorCase{"Typo",
                  Doc{.scope = "name = \"x\"\nsubject = [\"*\"]\ngroups = [\"g\"]\n"
                               "sources = [\"local\"]\nprofile = \"admin\""}
                      .Render(),
                  "scope[0].subject", "did you mean \"subjects\"?"},
        ErrorCase{"UserGroupsNotStrings", Doc{.user = kUserVerifier + "groups = [1]"}.Render(),
                  "user[0].groups[0]", "expected a non-empty string"}),
    CaseName);

TEST(ConfigTest, ScopeResourceCapsAreReadAsPostgresReadsThem) {
  absl::StatusOr<Config> config =
      Parse(Doc{.scope = "name = \"capped\"\nsubjects = [\"*\"]\nprofile = \"read-write\"\n"
                         "work_mem = \"64MB\"\ntemp_buffers = \"8MB\"\ntemp_file_limit = 0\n"
                         "idle_session_timeout = \"0.5min\"\nmax_advisory_locks = 5\n",
                .tail = kScope}
                .Render());
  ASSERT_TRUE(config.ok()) << config.status().message();
  const policy::Scope& scope = config->policy->scopes()[0];
  EXPECT_EQ(scope.Cap("work_mem"), 65536);
  EXPECT_EQ(scope.Cap("temp_buffers"), 1024);
  EXPECT_EQ(scope.Cap("temp_file_limit"), 0);
  EXPECT_EQ(scope.Cap("idle_session_timeout"), 30000);
  EXPECT_EQ(scope.Cap("maintenance_work_mem"), std::nullopt);
  EXPECT_EQ(scope.max_advisory_locks, 5);
  EXPECT_EQ(scope.max_notifications, 10000);
}

// A scope for everyone with [[scope.mask]] tables (`masks`, each starting with
// its own [[scope.mask]] line).
std::string MaskScope(const std::string& masks) {
  return "name = \"support\"\nsubjects = [\"*\"]\nprofile = \"read-only\"\n" + masks;
}

TEST(ConfigTest, ScopeMasksParseOneEntryPerColumn) {
  absl::StatusOr<Config> config = Parse(Doc{
      .scope = MaskScope("[[scope.mask]]\ncolumns = [\"email\", \"Phone\", \"\\\"Tax Id\\\"\"]\n"
                         "method = \"partial\"\nkeep = 2\n"
                         "[[scope.mask]]\ncolumns = [\"ssn\"]\n"
                         "[[scope.mask]]\ncolumns = [\"notes\"]\nreplacement = \"[hidden]\"\n"
                         "[[scope.mask]]\ncolumns = [\"salary\"]\nmethod = \"null\"\n"),
      .tail = kScope}
                                            .Render());
  ASSERT_TRUE(config.ok()) << config.status().message();
  const std::vector<policy::ColumnMask>& masks = config->policy->scopes()[0].masks;
  ASSERT_EQ(masks.size(), 6u);
  EXPECT_EQ(masks[0].column, "email");
  EXPECT_EQ(masks[0].method, policy::MaskMethod::kPartial);
  EXPECT_EQ(masks[0].keep, 2u);
  EXPECT_EQ(masks[1].column, "phone");  // unquoted: folded as PostgreSQL folds it
  EXPECT_EQ(masks[1].method, policy::MaskMethod::kPartial);
  EXPECT_EQ(masks[2].column, "Tax Id");  // quoted: as written
  EXPECT_EQ(masks[3].column, "ssn");
  EXPECT_EQ(masks[3].method, policy::MaskMethod::kRedact);  // the default
  EXPECT_EQ(masks[3].replacement, "****");
  EXPECT_EQ(masks[4].column, "notes");
  EXPECT_EQ(masks[4].replacement, "[hidden]");
  EXPECT_EQ(masks[5].column, "salary");
  EXPECT_EQ(masks[5].method, policy::MaskMethod::kNull);
  EXPECT_TRUE(config->policy->scopes()[1].masks.empty());
}

INSTANTIATE_TEST_SUITE_P(
    ScopeMask, ConfigErrorTest,
    ::testing::Values(
        ErrorCase{"ColumnsMissing",
                  Doc{.scope = MaskScope("[[scope.mask]]\nmethod = \"null\"")}.Render(),
                  "scope[0].mask[0].columns", "required"},
        ErrorCase{"ColumnsEmpty", Doc{.scope = MaskScope("[[scope.mask]]\ncolumns = []")}.Render(),
                  "scope[0].mask[0].columns", "must name at least one value"},
        ErrorCase{"ColumnsNotStrings",
                  Doc{.scope = MaskScope("[[scope.mask]]\ncolumns = [1]")}.Render(),
                  "scope[0].mask[0].columns[0]", "expected a string"},
        ErrorCase{
            "ColumnQualified",
            Doc{.scope = MaskScope("[[scope.mask]]\ncolumns = [\"customers.email\"]")}.Render(),
            "scope[0].mask[0].columns[0]",
            "invalid column name \"customers.email\": a column name has no '.'"},
        ErrorCase{"ColumnPattern",
                  Doc{.scope = MaskScope("[[scope.mask]]\ncolumns = [\"e*\"]")}.Render(),
                  "scope[0].mask[0].columns[0]", "not a pattern"},
        ErrorCase{"ColumnUnterminatedQuote",
                  Doc{.scope = MaskScope("[[scope.mask]]\ncolumns = [\"\\\"Email\"]")}.Render(),
                  "scope[0].mask[0].columns[0]", "unterminated quoted identifier"},
        ErrorCase{
            "ColumnTooLong",
            Doc{.scope = MaskScope("[[scope.mask]]\ncolumns = [\"" + std::string(64, 'c') + "\"]")}
                .Render(),
            "scope[0].mask[0].columns[0]", "truncates names to 63 bytes"},
        ErrorCase{
            "ColumnTwiceInOneMask",
            Doc{.scope = MaskScope("[[scope.mask]]\ncolumns = [\"email\", \"EMAIL\"]")}.Render(),
            "scope[0].mask[0].columns[1]",
            "column \"email\" is already masked by scope[0].mask[0]"},
        ErrorCase{"ColumnInTwoMasks",
                  Doc{.tail = "[[scope]]\n" +
                              MaskScope("[[scope.mask]]\ncolumns = [\"email\"]\n"
                                        "[[scope.mask]]\ncolumns = [\"phone\"]\nmethod = \"null\"\n"
                                        "[[scope.mask]]\ncolumns = [\"email\"]\n")}
                      .Render(),
                  "scope[1].mask[2].columns[0]",
                  "column \"email\" is already masked by scope[1].mask[0]"},
        ErrorCase{
            "MethodUnknown",
            Doc{.scope = MaskScope("[[scope.mask]]\ncolumns = [\"email\"]\nmethod = \"hash\"")}
                .Render(),
            "scope[0].mask[0].method", "\"hash\" is not one of redact | partial | null"},
        ErrorCase{
            "KeepWithoutPartial",
            Doc{.scope = MaskScope("[[scope.mask]]\ncolumns = [\"email\"]\nkeep = 4")}.Render(),
            "scope[0].mask[0].keep", "only with method = \"partial\" (method is \"redact\")"},
        ErrorCase{"KeepOutOfRange",
                  Doc{.scope = MaskScope("[[scope.mask]]\ncolumns = [\"email\"]\n"
                                         "method = \"partial\"\nkeep = 0")}
                      .Render(),
                  "scope[0].mask[0].keep", "1..64"},
        ErrorCase{"ReplacementWithoutRedact",
                  Doc{.scope = MaskScope("[[scope.mask]]\ncolumns = [\"email\"]\n"
                                         "method = \"null\"\nreplacement = \"x\"")}
                      .Render(),
                  "scope[0].mask[0].replacement",
                  "only with method = \"redact\" (method is \"null\")"},
        ErrorCase{
            "ReplacementEmpty",
            Doc{.scope = MaskScope("[[scope.mask]]\ncolumns = [\"email\"]\nreplacement = \"\"")}
                .Render(),
            "scope[0].mask[0].replacement", "1..64 characters of printable ASCII"},
        ErrorCase{"ReplacementNotPrintable",
                  Doc{.scope = MaskScope("[[scope.mask]]\ncolumns = [\"email\"]\n"
                                         "replacement = \"a\\u00e9\"")}
                      .Render(),
                  "scope[0].mask[0].replacement", "1..64 characters of printable ASCII"},
        ErrorCase{"MaskTypo",
                  Doc{.scope = MaskScope("[[scope.mask]]\ncolumns = [\"email\"]\nmethd = \"null\"")}
                      .Render(),
                  "scope[0].mask[0].methd", "did you mean \"method\"?"},
        ErrorCase{"MaskNotArrayOfTables",
                  Doc{.scope = MaskScope("mask = { columns = [\"email\"] }")}.Render(),
                  "scope[0].mask", "expected an array of tables"},
        ErrorCase{"MasksKey", Doc{.scope = MaskScope("masks = [\"email\"]")}.Render(),
                  "scope[0].masks", "use [[scope.mask]] tables"}),
    CaseName);

TEST(ConfigTest, WithoutFileChecksSecretsAndTlsFilesNeedNotExist) {
  ASSERT_EQ(::unsetenv("PGB_TEST_UNSET_VARIABLE"), 0);
  const std::string text =
      Doc{.listener =
              "tls = \"required\"\ntls_cert = \"/nonexistent/server.crt\"\n"
              "tls_key = \"/nonexistent/server.key\"",
          .target = kTarget +
                    "password_file = \"/nonexistent/app.password\"\ntls = \"verify-full\"\n"
                    "tls_ca = \"/nonexistent/ca.crt\"",
          .tail =
              "[[target]]\nname = \"b\"\nhost = \"db\"\nuser = \"u\"\n"
              "password_env = \"PGB_TEST_UNSET_VARIABLE\""}
          .Render();
  EXPECT_FALSE(Parse(text).ok());
  absl::StatusOr<Config> parsed =
      ParseConfig(text, "test.toml", TestDir(), ConfigOptions{.check_files = false});
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_TRUE(parsed->targets[0].password.empty());
  EXPECT_NE(parsed->policy, nullptr);
  // Everything else is still checked.
  EXPECT_FALSE(ParseConfig(Doc{.target = kTarget + "password_env = \"1 X\""}.Render(), "test.toml",
                           TestDir(), ConfigOptions{.check_files = false})
                   .ok());
}

}  // namespace
}  // namespace pgb
