#include "core/startup_parameters.h"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "base/str_cat.h"
#include "gtest/gtest.h"
#include "policy/rules.h"
#include "proto/error_status.h"

namespace pgb {
namespace {

proto::StartupPacket Packet(std::vector<std::pair<std::string_view, std::string_view>> params) {
  proto::StartupPacket p;
  p.params = std::move(params);
  return p;
}

// The SQLSTATE of a refusal ("" when accepted).
std::string Refused(std::vector<std::pair<std::string_view, std::string_view>> params) {
  absl::StatusOr<ClientStartup> s = ReadClientStartup(Packet(std::move(params)));
  return s.ok() ? "" : proto::ErrorFieldsOf(s.status(), "FATAL").sqlstate;
}

TEST(StartupParametersTest, SettingsPassInTheOrderPostgresAppliesThem) {
  absl::StatusOr<ClientStartup> s = ReadClientStartup(Packet({{"user", "agent"},
                                                              {"application_name", "psql"},
                                                              {"client_encoding", "UTF8"},
                                                              {"_pq_.compression", "on"},
                                                              {"DateStyle", "ISO"},
                                                              {"options", "-c search_path=a"},
                                                              {"MyApp.Tenant", "t1"}}));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->user, "agent");
  EXPECT_EQ(s->database, "agent");  // the user's when not given, as PostgreSQL does
  EXPECT_EQ(s->application_name, "psql");
  // options first (PostgreSQL applies them before the packet's own), names
  // in lower case (PostgreSQL finds settings whatever the case).
  EXPECT_EQ(s->forwarded, (StartupSettings{{"search_path", "a"},
                                           {"application_name", "psql"},
                                           {"client_encoding", "UTF8"},
                                           {"datestyle", "ISO"},
                                           {"myapp.tenant", "t1"}}));
}

TEST(StartupParametersTest, WhatCouldChangeWhoTheSessionIsIsRefused) {
  EXPECT_EQ(Refused({{"user", "a"}, {"replication", "database"}}), "42501");
  EXPECT_EQ(Refused({{"user", "a"}, {"replication", "true"}}), "42501");
  // Names a startup packet reads as the login, the database or the protocol,
  // smuggled through options or written in another case.
  for (const char* options :
       {"-c user=postgres", "--user=postgres", "-c database=postgres", "-c replication=database",
        "-c options=-c\\ role=x", "-c _pq_.x=y", "-cUSER=postgres", "--Database=x"}) {
    SCOPED_TRACE(options);
    EXPECT_EQ(Refused({{"user", "a"}, {"options", options}}), "42501");
  }
  EXPECT_EQ(Refused({{"user", "a"}, {"USER", "postgres"}}), "42501");
  EXPECT_EQ(Refused({{"user", "a"}, {"Replication", "database"}}), "42501");
  // Empty options and replication=false are what drivers send by default.
  EXPECT_EQ(Refused({{"user", "a"}, {"options", ""}, {"replication", "false"}}), "");
  EXPECT_EQ(Refused({{"user", "a"}, {"options", "  \t "}}), "");
}

TEST(StartupParametersTest, OptionsAreSplitAsPostgresSplitsThem) {
  absl::StatusOr<StartupSettings> s = ParseStartupOptions(
      "  -c search_path=a,\\ b  --statement-timeout=5s\t-cmyapp.tenant=x\\\\y "
      "-c empty= -c eq=a=b -c trailing=z\\");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(*s, (StartupSettings{{"search_path", "a, b"},
                                 {"statement_timeout", "5s"},
                                 {"myapp.tenant", "x\\y"},
                                 {"empty", ""},
                                 {"eq", "a=b"},
                                 {"trailing", "z"}}));
  // A value with an escaped space does not start a new switch: "-c" is data.
  s = ParseStartupOptions("-c application_name=x\\ -c\\ role=postgres");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(*s, (StartupSettings{{"application_name", "x -c role=postgres"}}));
}

TEST(StartupParametersTest, OptionsTheGatewayCannotReadAreRefused) {
  const auto code = [](std::string_view options) {
    absl::StatusOr<StartupSettings> s = ParseStartupOptions(options);
    return s.ok() ? "" : proto::ErrorFieldsOf(s.status(), "FATAL").sqlstate;
  };
  EXPECT_EQ(code("-c"), "42601");
  EXPECT_EQ(code("-c search_path"), "42601");  // no value
  EXPECT_EQ(code("--search_path"), "42601");
  EXPECT_EQ(code("--"), "42601");
  EXPECT_EQ(code("-O"), "42601");  // allow_system_table_mods
  EXPECT_EQ(code("-P"), "42601");  // ignore_system_indexes
  EXPECT_EQ(code("-S 100"), "42601");
  EXPECT_EQ(code("search_path=a"), "42601");
  EXPECT_EQ(code(std::string(kMaxStartupOptionsBytes + 1, ' ')), "54000");
  EXPECT_EQ(code(std::string(kMaxStartupOptionsBytes, ' ')), "");
  // Too many settings in all.
  std::string many;
  for (size_t i = 0; i <= kMaxStartupSettings; ++i) many += Cat("-c app.s", i, "=1 ");
  EXPECT_EQ(Refused({{"user", "a"}, {"options", many}}), "54000");
  // Names the gateway cannot write as a SET unchanged.
  for (const char* options :
       {"-c a..b=1", "-c .a=1", "-c a.=1", "-c 1a=1", "-c a\"b=1", "-c é=1", "-c =1"}) {
    SCOPED_TRACE(options);
    EXPECT_EQ(Refused({{"user", "a"}, {"options", options}}), "42602");
  }
  EXPECT_EQ(Refused({{"user", "a"}, {"options", Cat("-c app.", std::string(60, 'x'), "=1")}}),
            "42602");
  // Settings PostgreSQL takes only at connection start: a SET of them fails.
  EXPECT_EQ(Refused({{"user", "a"}, {"options", "-c post_auth_delay=100"}}), "55P02");
  EXPECT_EQ(Refused({{"user", "a"}, {"log_disconnections", "off"}}), "55P02");
}

TEST(StartupParametersTest, EncodingsThatCouldHideAQuoteAreRefused) {
  EXPECT_EQ(Refused({{"user", "a"}, {"client_encoding", "SJIS"}}), "42501");
  EXPECT_EQ(Refused({{"user", "a"}, {"client_encoding", "gb18030"}}), "42501");
  EXPECT_EQ(Refused({{"user", "a"}, {"options", "-c client_encoding=SJIS"}}), "42501");
  EXPECT_EQ(Refused({{"user", "a"}, {"client_encoding", "LATIN1"}}), "");
  EXPECT_EQ(Refused({{"user", "a"}, {"client_encoding", "utf-8"}}), "");
  EXPECT_EQ(Refused({{"user", "a"}, {"standard_conforming_strings", "off"}}), "42501");
  EXPECT_EQ(Refused({{"user", "a"}, {"options", "--standard-conforming-strings=off"}}), "42501");
  EXPECT_EQ(Refused({{"user", "a"}, {"standard_conforming_strings", "on"}}), "");
}

policy::Scope MakeScope(policy::Profile profile) {
  policy::Scope scope;
  scope.name = "s";
  scope.subjects = {"*"};
  scope.profile = profile;
  scope.statement_timeout = absl::Seconds(20);
  return scope;
}

TEST(StartupParametersTest, SettingsAreJudgedAsTheirSet) {
  const policy::Policy policy({MakeScope(policy::Profile::kReadOnly)});
  const policy::Scope& scope = policy.scopes()[0];
  StartupJudgement j = JudgeStartupSettings(policy, scope, "gw",
                                            {{"application_name", "x"},
                                             {"search_path", "app, public"},
                                             {"statement_timeout", "5s"},
                                             {"myapp.tenant", "it's"}});
  ASSERT_TRUE(j.refusal.ok()) << j.refusal;
  ASSERT_EQ(j.allowed.size(), 3u);  // application_name describes the connection: not judged
  EXPECT_EQ(j.allowed[0].statement, "SET \"search_path\" TO 'app, public'");
  EXPECT_EQ(j.allowed[2].statement, "SET \"myapp\".\"tenant\" TO 'it''s'");
  EXPECT_EQ(j.allowed[2].decision.rule, "profile.read-only");
  EXPECT_NE(j.allowed[2].fingerprint, 0u);

  struct Case {
    StartupSettings settings;
    std::string sqlstate;
    std::string rule;
  };
  for (const Case& c : std::vector<Case>{
           {{{"statement_timeout", "0"}}, "42501", "scope.s.limits"},
           {{{"statement_timeout", "1h"}}, "42501", "scope.s.limits"},
           {{{"default_transaction_read_only", "off"}}, "42501", "builtin.protected-setting"},
           {{{"session_replication_role", "replica"}}, "42501", "builtin.protected-setting"},
           // SET role is a privilege statement, which read-only does not allow.
           {{{"role", "postgres"}}, "42501", "profile.read-only.class"},
           {{{"session_authorization", "postgres"}}, "42501", "profile.read-only.class"},
           {{{"myapp.a", "1"}, {"log_statement", "none"}}, "42501", "builtin.protected-setting"},
           {{{"myapp.a", "\xff"}}, "22021", "analysis"},  // not UTF-8
       }) {
    SCOPED_TRACE(c.settings.back().first);
    j = JudgeStartupSettings(policy, scope, "gw", c.settings);
    ASSERT_FALSE(j.refusal.ok());
    const proto::ErrorFields f = proto::ErrorFieldsOf(j.refusal, "FATAL");
    EXPECT_EQ(f.sqlstate, c.sqlstate);
    ASSERT_TRUE(j.refused.has_value());
    EXPECT_EQ(j.refused->decision.rule, c.rule);
    EXPECT_EQ(j.refused->name, c.settings.back().first);
    EXPECT_NE(f.detail.find(j.refused->statement), std::string::npos) << f.detail;
    if (c.sqlstate == "42501") {
      EXPECT_NE(f.message.find(c.rule), std::string::npos) << f.message;
    }
    EXPECT_EQ(j.allowed.size(), c.settings.size() - 1);
  }
}

TEST(StartupParametersTest, AdminMayNotChooseTheRoleAtStartupEither) {
  const policy::Policy policy({MakeScope(policy::Profile::kAdmin)});
  StartupJudgement j =
      JudgeStartupSettings(policy, policy.scopes()[0], "gw", {{"log_statement", "none"}});
  EXPECT_TRUE(j.refusal.ok()) << j.refusal;  // as SET log_statement is for admin
  j = JudgeStartupSettings(policy, policy.scopes()[0], "gw", {{"role", "postgres"}});
  ASSERT_TRUE(j.refused.has_value());
  EXPECT_EQ(j.refused->decision.rule, "builtin.protected-setting");
}

TEST(StartupParametersTest, ClientSettingsComeAfterTheScopesAndWin) {
  std::string client_path;
  const StartupSettings params = BackendStartupParameters(
      "gw_role", "appdb",
      {{"statement_timeout", "1000"},
       {"search_path", "mine"},
       {"standard_conforming_strings", "on"},
       {"timezone", "UTC"}},
      {{"search_path", "public"}, {"statement_timeout", "5000"}}, &client_path);
  EXPECT_EQ(params, (StartupSettings{{"user", "gw_role"},
                                     {"database", "appdb"},
                                     {"standard_conforming_strings", "on"},
                                     {"search_path", "public"},
                                     {"statement_timeout", "5000"},
                                     {"statement_timeout", "1000"},
                                     {"search_path", "mine"},
                                     {"timezone", "UTC"}}));
  EXPECT_EQ(client_path, "mine");
  (void)BackendStartupParameters("r", "d", {}, {{"search_path", "x"}}, &client_path);
  EXPECT_EQ(client_path, "");
}

}  // namespace
}  // namespace pgb
