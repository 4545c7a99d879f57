// The guardrails of issue 24 that depend on a scope's limits, through the
// real analyser and rules: resource caps compared as PostgreSQL reads the
// value (items 3 and 9), holdable cursors under statement_timeout, advisory
// locks and notifications counted per session, read-only in the database.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "policy/judgement.h"
#include "policy/rules.h"
#include "policy/sql_analysis.h"

namespace pgb::policy {
namespace {

Scope Limited(Profile profile) {
  Scope scope;
  scope.name = "agents";
  scope.subjects = {"*"};
  scope.profile = profile;
  scope.statement_timeout = absl::Seconds(20);
  scope.lock_timeout = absl::Milliseconds(1500);
  scope.setting_caps = {{"work_mem", 65536}, {"temp_buffers", 1024}, {"temp_file_limit", 1048576}};
  scope.max_advisory_locks = 3;
  scope.max_notifications = 2;
  return scope;
}

// The decision on `sql` (its first refusal, or allowed) with `state`.
Decision Decide(const Scope& scope, std::string_view sql, SessionPolicyState& state) {
  const Policy policy({scope});
  const SqlAnalysis analysis = AnalyseSql(sql);
  EXPECT_TRUE(analysis.ok) << sql << ": " << analysis.error_message;
  QueryJudgement j = JudgeQuery(policy, policy.scopes()[0], analysis, state);
  return j.allowed() ? Decision{Decision::kAllow, "", "", ""} : j.decisions[j.first_refusal];
}

Decision Decide(const Scope& scope, std::string_view sql) {
  SessionPolicyState state(scope, "app_user");
  return Decide(scope, sql, state);
}

TEST(SettingCapsTest, EverySpellingIsComparedAsPostgresReadsIt) {
  for (Profile profile : {Profile::kReadOnly, Profile::kReadWrite}) {
    const Scope scope = Limited(profile);
    for (const char* sql :
         {"SET statement_timeout = '20s'", "SET statement_timeout = 19999",
          "SET LOCAL statement_timeout = '0.2min'", "SET statement_timeout = '19999.5'",
          "SELECT set_config('statement_timeout', '1s', false)", "SET lock_timeout = '1.5s'",
          "SET lock_timeout = 1", "SET work_mem = '64MB'", "SET work_mem = 65536",
          "SET work_mem = '0.0625GB'", "SET work_mem = '1024kB'", "SET temp_buffers = '8MB'",
          "SET temp_buffers = 800", "SET temp_file_limit = 0", "SET temp_file_limit = '1GB'",
          "SET work_mem = '0x10000'"}) {
      EXPECT_EQ(Decide(scope, sql).kind, Decision::kAllow) << sql;
    }
    for (const char* sql : {"SET statement_timeout = 0",
                            "SET statement_timeout = '0.4'",
                            "SET statement_timeout = '400us'",
                            "SET statement_timeout = '0.000000001d'",
                            "SET statement_timeout = '20001'",
                            "SET statement_timeout = '20000.6'",
                            "SET statement_timeout = '1min'",
                            "SET statement_timeout = '5 sec'",
                            "SET statement_timeout = -1",
                            "SET statement_timeout = 'ten'",
                            "SET statement_timeout TO DEFAULT",
                            "RESET statement_timeout",
                            "SELECT set_config('statement_timeout', '0.3', true)",
                            "SELECT set_config('statement_timeout', current_setting('x.y'), false)",
                            "SET lock_timeout = '1501'",
                            "SET lock_timeout = '0.5'",
                            "SET work_mem = '65MB'",
                            "SET work_mem = '64.01MB'",
                            "SET work_mem = '1GB'",
                            "SET work_mem = '0x10001'",
                            "SET work_mem = 'lots'",
                            "RESET work_mem",
                            "SET temp_buffers = '9MB'",
                            "SET temp_buffers = 1025",
                            "SET temp_file_limit = -1",
                            "SET temp_file_limit = '2GB'",
                            "RESET ALL",
                            "DISCARD ALL"}) {
      const Decision d = Decide(scope, sql);
      EXPECT_EQ(d.kind, Decision::kDeny) << sql;
      EXPECT_EQ(d.rule, "scope.agents.limits") << sql;
    }
  }
  // Settings the scope does not cap are free.
  EXPECT_EQ(Decide(Limited(Profile::kReadWrite), "SET maintenance_work_mem = '2GB'").kind,
            Decision::kAllow);
}

TEST(SettingCapsTest, MessagesNameTheCap) {
  const Decision d = Decide(Limited(Profile::kReadWrite), "SET work_mem = '1GB'");
  EXPECT_NE(d.reason.find("work_mem (limit 65536kB)"), std::string::npos) << d.reason;
  EXPECT_NE(d.hint.find("work_mem"), std::string::npos) << d.hint;
}

TEST(HoldableCursorTest, RefusedWhereStatementTimeoutLimits) {
  const char* hold = "DECLARE c CURSOR WITH HOLD FOR SELECT pg_sleep(10)";
  const Decision d = Decide(Limited(Profile::kReadOnly), hold);
  EXPECT_EQ(d.kind, Decision::kDeny);
  EXPECT_EQ(d.rule, "scope.agents.limits");
  EXPECT_EQ(Decide(Limited(Profile::kReadOnly), "DECLARE c CURSOR FOR SELECT 1").kind,
            Decision::kAllow);
  Scope unlimited = Limited(Profile::kReadOnly);
  unlimited.statement_timeout = absl::ZeroDuration();
  EXPECT_EQ(Decide(unlimited, hold).kind, Decision::kAllow);
}

TEST(AdvisoryLocksTest, DistinctKeysAreCountedPerSession) {
  const Scope scope = Limited(Profile::kReadOnly);
  SessionPolicyState state(scope, "app_user");
  for (const char* sql : {"SELECT pg_advisory_lock(1)", "SELECT pg_advisory_lock(1)",
                          "SELECT pg_try_advisory_lock(2), pg_advisory_lock_shared(2)",
                          "SELECT pg_advisory_xact_lock(7)"}) {
    EXPECT_EQ(Decide(scope, sql, state).kind, Decision::kAllow) << sql;
  }
  EXPECT_EQ(state.advisory_locks(), 3u);
  Decision d = Decide(scope, "SELECT pg_advisory_lock(3)", state);
  EXPECT_EQ(d.rule, "scope.agents.advisory-locks");
  // Releasing makes room: an unlock, the end of the transaction for _xact_.
  EXPECT_EQ(Decide(scope, "SELECT pg_advisory_unlock(1)", state).kind, Decision::kAllow);
  EXPECT_EQ(Decide(scope, "SELECT pg_advisory_lock(3)", state).kind, Decision::kAllow);
  EXPECT_EQ(Decide(scope, "SELECT pg_advisory_lock(4)", state).kind, Decision::kDeny);
  EXPECT_EQ(Decide(scope, "COMMIT", state).kind, Decision::kAllow);
  EXPECT_EQ(Decide(scope, "SELECT pg_advisory_lock(4)", state).kind, Decision::kAllow);
  EXPECT_EQ(Decide(scope, "SELECT pg_advisory_unlock_all()", state).kind, Decision::kAllow);
  EXPECT_EQ(state.advisory_locks(), 0u);
  // A key per row is refused whatever the count.
  d = Decide(scope, "SELECT pg_advisory_lock(g) FROM generate_series(1, 100000) g", state);
  EXPECT_EQ(d.rule, "builtin.advisory-lock");
}

TEST(NotificationsTest, CountedPerSession) {
  const Scope scope = Limited(Profile::kReadWrite);
  SessionPolicyState state(scope, "app_user");
  EXPECT_EQ(Decide(scope, "NOTIFY jobs", state).kind, Decision::kAllow);
  EXPECT_EQ(Decide(scope, "SELECT pg_notify('jobs', 'x')", state).kind, Decision::kAllow);
  EXPECT_EQ(Decide(scope, "NOTIFY jobs, 'again'", state).rule, "scope.agents.notifications");
}

TEST(ReadOnlyInDatabaseTest, ReadOnlyProfileAndReadOnlyClasses) {
  Scope scope = Limited(Profile::kReadOnly);
  EXPECT_TRUE(ReadOnlyInDatabase(scope));
  scope.profile = Profile::kReadWrite;
  EXPECT_FALSE(ReadOnlyInDatabase(scope));
  scope.profile = Profile::kNone;
  scope.classes_set = true;
  scope.classes = ClassBit(StatementClass::kRead);
  EXPECT_TRUE(ReadOnlyInDatabase(scope));
  scope.classes |= ClassBit(StatementClass::kWrite);
  EXPECT_FALSE(ReadOnlyInDatabase(scope));
  scope.profile = Profile::kAdmin;
  EXPECT_FALSE(ReadOnlyInDatabase(scope));
}

}  // namespace
}  // namespace pgb::policy
