#include "policy/rules.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "policy/sql_analysis.h"
#include "tests/policy/test_catalog.h"

namespace pgb::policy {
namespace {

using ::testing::HasSubstr;

// Statement summaries as the analyser would build them, by hand.
StatementSummary Stmt(StatementClass c, std::string command) {
  StatementSummary s;
  s.statement_class = c;
  s.command = std::move(command);
  return s;
}
StatementSummary Select(std::vector<RelationRef> relations = {},
                        std::vector<FunctionRef> functions = {}) {
  StatementSummary s = Stmt(StatementClass::kRead, "SELECT");
  s.relations = std::move(relations);
  s.functions = std::move(functions);
  return s;
}
RelationRef Rel(std::string schema, std::string name, uint8_t access = kAccessSelect) {
  return RelationRef{std::move(schema), std::move(name), access};
}
FunctionRef Fn(std::string schema, std::string name) {
  return FunctionRef{std::move(schema), std::move(name)};
}
StatementSummary Write(std::string command, RelationRef relation, bool unfiltered = false) {
  StatementSummary s = Stmt(StatementClass::kWrite, std::move(command));
  s.relations = {std::move(relation)};
  s.modifies_data = true;
  s.unfiltered_write = unfiltered;
  s.destructive = unfiltered;
  return s;
}
StatementSummary Set(std::string name, std::string value, bool via_function = false,
                     bool value_known = true) {
  StatementSummary s = via_function ? Select({}, {Fn("", "set_config")})
                                    : Stmt(StatementClass::kSessionSetting, "SET");
  SettingChange change;
  change.name = std::move(name);
  change.value = std::move(value);
  change.via_function = via_function;
  change.value_known = value_known;
  s.settings = {change};
  return s;
}
StatementSummary Reset(std::string name) {
  StatementSummary s = Stmt(StatementClass::kSessionSetting, "RESET");
  SettingChange change;
  change.name = std::move(name);
  change.reset = true;
  s.settings = {change};
  return s;
}
StatementSummary Prepare(std::string name, StatementSummary inner) {
  StatementSummary s = Stmt(StatementClass::kUtility, "PREPARE");
  s.prepare_name = std::move(name);
  s.prepared = std::make_shared<const StatementSummary>(std::move(inner));
  return s;
}
StatementSummary Execute(std::string name) {
  StatementSummary s = Stmt(StatementClass::kUtility, "EXECUTE");
  s.execute_name = std::move(name);
  return s;
}

Identity Who(std::string subject, std::vector<std::string> groups = {}) {
  Identity identity;
  identity.subject = std::move(subject);
  identity.groups = std::move(groups);
  return identity;
}

Scope MakeScope(std::string name, Profile profile) {
  Scope scope;
  scope.name = std::move(name);
  scope.profile = profile;
  scope.subjects = {"*"};
  return scope;
}

NamePattern Pattern(std::string_view text) {
  absl::StatusOr<NamePattern> p = ParseNamePattern(text);
  EXPECT_TRUE(p.ok()) << text << ": " << p.status();
  return p.ok() ? *p : NamePattern{};
}

struct Fixture {
  explicit Fixture(Scope s, std::string role = "app_user")
      : policy({std::move(s)}), state(policy.scopes()[0], std::move(role)) {}
  Decision Decide(const StatementSummary& s) const {
    return policy.Decide(policy.scopes()[0], s, state);
  }
  Policy policy;
  SessionPolicyState state;
};

Fixture ReadOnly() { return Fixture(MakeScope("analysts", Profile::kReadOnly)); }
Fixture ReadWrite() { return Fixture(MakeScope("app", Profile::kReadWrite)); }
Fixture Admin() { return Fixture(MakeScope("dba", Profile::kAdmin)); }

#define EXPECT_DECISION(decision, expected_kind, expected_rule)                  \
  do {                                                                           \
    const Decision d_ = (decision);                                              \
    EXPECT_EQ(d_.kind, Decision::expected_kind) << d_.rule << ": " << d_.reason; \
    EXPECT_EQ(d_.rule, expected_rule) << d_.reason;                              \
  } while (0)

// --- patterns ---------------------------------------------------------------

TEST(NamePatternTest, ParsesLikeSqlNames) {
  NamePattern p = Pattern("app.*");
  EXPECT_EQ(p.schema, "app");
  EXPECT_EQ(p.name, "*");
  EXPECT_TRUE(p.Matches("app", "orders"));
  EXPECT_FALSE(p.Matches("public", "orders"));
  EXPECT_FALSE(p.literal_name);

  p = Pattern("*.secrets");
  EXPECT_TRUE(p.Matches("public", "secrets"));
  EXPECT_TRUE(p.Matches("app", "secrets"));
  EXPECT_FALSE(p.Matches("app", "secrets2"));

  p = Pattern("Public.Orders");  // folded like an unquoted identifier
  EXPECT_TRUE(p.Matches("public", "orders"));
  EXPECT_FALSE(p.Matches("Public", "Orders"));
  EXPECT_TRUE(p.literal_name);

  p = Pattern("\"Billing\".\"a.b\"");
  EXPECT_TRUE(p.Matches("Billing", "a.b"));
  EXPECT_FALSE(p.Matches("billing", "a.b"));

  p = Pattern("pg_read_file");  // no schema: any schema
  EXPECT_EQ(p.schema, "*");
  EXPECT_TRUE(p.Matches("pg_catalog", "pg_read_file"));
  EXPECT_TRUE(p.literal_name);

  p = Pattern("app.tmp_*_old");
  EXPECT_TRUE(p.Matches("app", "tmp_x_old"));
  EXPECT_TRUE(p.Matches("app", "tmp__old"));
  EXPECT_FALSE(p.Matches("app", "tmp_x_new"));
}

TEST(NamePatternTest, RejectsMalformedPatterns) {
  for (std::string_view bad :
       {"", ".", "app.", ".orders", "a.b.c", "\"open", "a b", "a.\"b\"c", "\"\".x"}) {
    EXPECT_FALSE(ParseNamePattern(bad).ok()) << bad;
  }
  EXPECT_THAT(std::string(ParseNamePattern("a.b.c").status().message()), HasSubstr("too many '.'"));
}

// --- scope matching -----------------------------------------------------------

TEST(MatchScopeTest, ANameMatchesOnlyInTheSourcesTheScopeNames) {
  Scope local_admin = MakeScope("local-admin", Profile::kAdmin);
  local_admin.subjects = {"alice"};
  local_admin.sources = {{.method = AuthMethod::kLocalPassword, .issuer = {}}};
  Scope corp = MakeScope("corp", Profile::kReadOnly);
  corp.subjects = {"alice"};
  corp.sources = {{.method = AuthMethod::kToken, .issuer = "https://idp.example"}};
  const Policy policy({local_admin, corp});

  Identity alice = Who("alice");  // the local user
  ASSERT_NE(policy.MatchScope(alice, "app"), nullptr);
  EXPECT_EQ(policy.MatchScope(alice, "app")->name, "local-admin");
  alice.method = AuthMethod::kCertificate;  // a certificate for CN=alice
  EXPECT_EQ(policy.MatchScope(alice, "app"), nullptr);
  alice.method = AuthMethod::kToken;  // a token whose sub is alice
  alice.issuer = "https://idp.example";
  ASSERT_NE(policy.MatchScope(alice, "app"), nullptr);
  EXPECT_EQ(policy.MatchScope(alice, "app")->name, "corp");
  alice.issuer = "https://other.example";  // the same sub from another issuer
  EXPECT_EQ(policy.MatchScope(alice, "app"), nullptr);
}

TEST(MatchScopeTest, FirstMatchingScopeInFileOrderWins) {
  Scope bots = MakeScope("bots", Profile::kReadOnly);
  bots.subjects = {"ci-bot-*"};
  Scope writers = MakeScope("writers", Profile::kReadWrite);
  writers.subjects.clear();
  writers.groups = {"read-write", "writers"};
  writers.targets = {"app"};
  Scope idp = MakeScope("idp-admins", Profile::kAdmin);
  idp.subjects.clear();
  idp.issuers = {"https://idp.example"};
  idp.claims = {{"department", "dba"}, {"azp", "console"}};
  const Policy policy({bots, writers, idp});

  const Identity bot = Who("ci-bot-7", {"writers"});
  ASSERT_NE(policy.MatchScope(bot, "app"), nullptr);
  EXPECT_EQ(policy.MatchScope(bot, "app")->name, "bots");  // first match, not the best

  const Identity writer = Who("carol", {"staff", "writers"});
  ASSERT_NE(policy.MatchScope(writer, "app"), nullptr);
  EXPECT_EQ(policy.MatchScope(writer, "app")->name, "writers");
  EXPECT_EQ(policy.MatchScope(writer, "reporting"), nullptr);  // targets = ["app"]

  Identity admin = Who("dave");
  admin.method = AuthMethod::kToken;
  admin.issuer = "https://idp.example";
  admin.client_id = "console";
  admin.claims = {{"department", "dba"}};
  ASSERT_NE(policy.MatchScope(admin, "reporting"), nullptr);
  EXPECT_EQ(policy.MatchScope(admin, "reporting")->name, "idp-admins");
  admin.claims = {{"department", "sales"}};
  EXPECT_EQ(policy.MatchScope(admin, "reporting"), nullptr);
  admin.claims = {{"department", "dba"}};
  admin.issuer = "https://evil.example";
  EXPECT_EQ(policy.MatchScope(admin, "reporting"), nullptr);

  // Deny by default: nobody else gets anything.
  const Identity stranger = Who("mallory", {"read-only"});
  EXPECT_EQ(policy.MatchScope(stranger, "app"), nullptr);
  const Decision none = Policy::NoScope(stranger, "app");
  EXPECT_EQ(none.kind, Decision::kDeny);
  EXPECT_EQ(none.rule, "no-scope");
  EXPECT_THAT(none.reason, HasSubstr("\"mallory\""));
  EXPECT_FALSE(none.hint.empty());
}

TEST(MatchScopeTest, EverySetConditionMustHold) {
  Scope scope = MakeScope("s", Profile::kReadOnly);
  scope.subjects = {"alice"};
  scope.groups = {"analysts"};
  const Policy policy({scope});
  EXPECT_EQ(policy.MatchScope(Who("alice"), "app"), nullptr);
  EXPECT_EQ(policy.MatchScope(Who("bob", {"analysts"}), "app"), nullptr);
  EXPECT_NE(policy.MatchScope(Who("alice", {"analysts"}), "app"), nullptr);
}

// --- profiles -----------------------------------------------------------------

TEST(ReadOnlyTest, ReadsPassWritesAndChangesDoNot) {
  Fixture f = ReadOnly();
  EXPECT_DECISION(f.Decide(Select({Rel("public", "orders")})), kAllow, "profile.read-only");
  EXPECT_DECISION(f.Decide(Stmt(StatementClass::kTransaction, "BEGIN")), kAllow,
                  "profile.read-only");
  EXPECT_DECISION(f.Decide(Set("work_mem", "64MB")), kAllow, "profile.read-only");
  EXPECT_DECISION(f.Decide(Stmt(StatementClass::kUtility, "LISTEN")), kAllow, "profile.read-only");
  EXPECT_DECISION(f.Decide(Stmt(StatementClass::kUtility, "DISCARD ALL")), kAllow,
                  "profile.read-only");

  const Decision insert = f.Decide(Write("INSERT", Rel("public", "orders", kAccessInsert)));
  EXPECT_DECISION(insert, kDeny, "profile.read-only.class");
  EXPECT_THAT(insert.reason, HasSubstr("INSERT (write)"));
  EXPECT_THAT(insert.reason, HasSubstr("scope 'analysts' (profile read-only)"));
  EXPECT_EQ(insert.hint,
            "scope 'analysts' (profile read-only) allows read statements only; ask an "
            "administrator for a read-write scope");
  EXPECT_THAT(DecisionMessage(insert),
              HasSubstr("permission denied by pgbastion rule \"profile.read-only.class\": "
                        "INSERT (write)"));

  for (const auto& [c, command] : std::vector<std::pair<StatementClass, std::string>>{
           {StatementClass::kDdl, "DROP TABLE"},
           {StatementClass::kDcl, "GRANT"},
           {StatementClass::kCodeExecution, "DO"},
           {StatementClass::kServerAccess, "COPY"}}) {
    EXPECT_DECISION(f.Decide(Stmt(c, command)), kDeny, "profile.read-only.class");
  }
}

TEST(ReadOnlyTest, NoLocksNoWritingFunctionsNoMaintenance) {
  Fixture f = ReadOnly();
  EXPECT_DECISION(f.Decide(Select({Rel("public", "orders", kAccessSelect | kAccessLock)})), kDeny,
                  "profile.read-only.access");
  StatementSummary sneaky = Select({Rel("public", "orders")});
  sneaky.modifies_data = true;  // whatever the class says
  EXPECT_DECISION(f.Decide(sneaky), kDeny, "profile.read-only.access");
  EXPECT_DECISION(f.Decide(Select({}, {Fn("", "nextval")})), kDeny,
                  "profile.read-only.writing-function");
  EXPECT_DECISION(f.Decide(Select({}, {Fn("pg_catalog", "pg_notify")})), kDeny,
                  "profile.read-only.writing-function");
  EXPECT_DECISION(f.Decide(Stmt(StatementClass::kUtility, "VACUUM")), kDeny,
                  "profile.read-only.command");
  EXPECT_DECISION(f.Decide(Stmt(StatementClass::kUtility, "NOTIFY")), kDeny,
                  "profile.read-only.command");
  EXPECT_DECISION(f.Decide(Stmt(StatementClass::kTransaction, "PREPARE TRANSACTION")), kDeny,
                  "profile.read-only.command");
  EXPECT_DECISION(f.Decide(Set("default_transaction_read_only", "off")), kDeny,
                  "builtin.protected-setting");
  EXPECT_DECISION(f.Decide(Set("transaction_read_only", "on")), kAllow, "profile.read-only");
}

TEST(ReadWriteTest, RowsFreelyEverythingElseOnApproval) {
  Fixture f = ReadWrite();
  EXPECT_DECISION(f.Decide(Select({Rel("public", "orders")})), kAllow, "profile.read-write");
  EXPECT_DECISION(f.Decide(Write("INSERT", Rel("public", "orders", kAccessInsert))), kAllow,
                  "profile.read-write");
  EXPECT_DECISION(f.Decide(Write("DELETE", Rel("", "orders", kAccessDelete))), kAllow,
                  "profile.read-write");
  EXPECT_DECISION(f.Decide(Select({Rel("public", "orders", kAccessSelect | kAccessLock)})), kAllow,
                  "profile.read-write");
  EXPECT_DECISION(f.Decide(Select({}, {Fn("", "nextval")})), kAllow, "profile.read-write");
  EXPECT_DECISION(f.Decide(Stmt(StatementClass::kUtility, "VACUUM")), kAllow, "profile.read-write");

  const Decision unfiltered =
      f.Decide(Write("DELETE", Rel("", "orders", kAccessDelete), /*unfiltered=*/true));
  EXPECT_DECISION(unfiltered, kApproval, "profile.read-write.destructive");
  EXPECT_THAT(DecisionMessage(unfiltered),
              HasSubstr("approval required by pgbastion rule \"profile.read-write.destructive\""));
  StatementSummary truncate = Write("TRUNCATE TABLE", Rel("", "orders", kAccessTruncate));
  truncate.destructive = true;
  EXPECT_DECISION(f.Decide(truncate), kApproval, "profile.read-write.destructive");
  StatementSummary drop = Stmt(StatementClass::kDdl, "DROP TABLE");
  drop.destructive = true;
  EXPECT_DECISION(f.Decide(drop), kApproval, "profile.read-write.ddl");
  EXPECT_DECISION(f.Decide(Stmt(StatementClass::kDdl, "CREATE TABLE")), kApproval,
                  "profile.read-write.ddl");
  EXPECT_DECISION(f.Decide(Stmt(StatementClass::kDcl, "GRANT")), kApproval,
                  "profile.read-write.dcl");
  EXPECT_DECISION(f.Decide(Stmt(StatementClass::kCodeExecution, "DO")), kApproval,
                  "profile.read-write.code_execution");
  StatementSummary copy_program = Stmt(StatementClass::kServerAccess, "COPY");
  copy_program.copy = {CopyDirection::kFrom, true, false};
  EXPECT_DECISION(f.Decide(copy_program), kApproval, "profile.read-write.server_access");
  EXPECT_DECISION(f.Decide(Stmt(StatementClass::kUtility, "CHECKPOINT")), kApproval,
                  "profile.read-write.utility");
  // A query raised to utility by the function it calls (pg_notify(): a NOTIFY).
  StatementSummary notify = Select({}, {Fn("", "pg_notify")});
  notify.statement_class = StatementClass::kUtility;
  EXPECT_DECISION(f.Decide(notify), kAllow, "profile.read-write");
  EXPECT_DECISION(ReadOnly().Decide(notify), kDeny, "profile.read-only.writing-function");
}

TEST(AdminTest, EverythingIsAllowed) {
  Fixture f = Admin();
  StatementSummary read_file = Stmt(StatementClass::kServerAccess, "SELECT");
  read_file.functions = {Fn("", "pg_read_file")};
  EXPECT_DECISION(f.Decide(read_file), kAllow, "profile.admin");
  EXPECT_DECISION(f.Decide(Select({Rel("pg_catalog", "pg_authid")})), kAllow, "profile.admin");
  StatementSummary set_role = Set("role", "postgres");
  set_role.statement_class = StatementClass::kDcl;
  EXPECT_DECISION(f.Decide(set_role), kAllow, "profile.admin");
  EXPECT_DECISION(f.Decide(Stmt(StatementClass::kDdl, "DROP DATABASE")), kAllow, "profile.admin");
  EXPECT_DECISION(f.policy.DecideFunctionCall(f.policy.scopes()[0]), kAllow, "profile.admin");
}

TEST(ClassesTest, ClassesReplaceTheProfilesSet) {
  Scope scope = MakeScope("narrow", Profile::kReadWrite);
  scope.classes = ClassBit(StatementClass::kRead);
  scope.classes_set = true;
  Fixture f(scope);
  EXPECT_DECISION(f.Decide(Select({Rel("public", "t")})), kAllow, "scope.narrow.classes");
  const Decision d = f.Decide(Write("INSERT", Rel("public", "t", kAccessInsert)));
  EXPECT_DECISION(d, kDeny, "scope.narrow.classes");
  EXPECT_THAT(d.hint, HasSubstr("allows: read"));

  Scope none = MakeScope("custom", Profile::kNone);
  EXPECT_DECISION(Fixture(none).Decide(Select()), kDeny, "profile.none.class");
  none.classes = ClassBit(StatementClass::kRead) | ClassBit(StatementClass::kDdl);
  none.classes_set = true;
  EXPECT_DECISION(Fixture(none).Decide(Stmt(StatementClass::kDdl, "CREATE INDEX")), kAllow,
                  "scope.custom.classes");
}

TEST(ApprovalTest, ScopeApprovalRulesAndDenyWins) {
  Scope scope = MakeScope("ops", Profile::kAdmin);
  scope.approval = ClassBit(StatementClass::kDdl) | kApprovalDestructive;
  scope.functions_deny = {Pattern("*.pg_sleep")};
  Fixture f(scope);
  EXPECT_DECISION(f.Decide(Stmt(StatementClass::kDdl, "CREATE TABLE")), kApproval,
                  "scope.ops.approval.ddl");
  EXPECT_DECISION(f.Decide(Write("UPDATE", Rel("", "t", kAccessUpdate), true)), kApproval,
                  "scope.ops.approval.destructive");
  StatementSummary ddl_with_denied = Stmt(StatementClass::kDdl, "CREATE TABLE AS");
  ddl_with_denied.functions = {Fn("", "pg_sleep")};
  EXPECT_DECISION(f.Decide(ddl_with_denied), kDeny, "scope.ops.functions.deny");
}

// --- functions ------------------------------------------------------------------

TEST(FunctionsTest, DangerousFunctionsAreDeniedInEverySchema) {
  Fixture f = ReadWrite();
  for (const FunctionRef& fn :
       {Fn("", "pg_read_file"), Fn("pg_catalog", "pg_read_binary_file"), Fn("public", "lo_export"),
        Fn("", "pg_ls_waldir"), Fn("", "dblink"), Fn("", "dblink_exec"),
        Fn("", "pg_terminate_backend"), Fn("", "query_to_xml"), Fn("", "table_to_xmlschema"),
        Fn("", "pg_logical_slot_get_changes"), Fn("", "pg_reload_conf")}) {
    const Decision d = f.Decide(Select({}, {fn}));
    EXPECT_DECISION(d, kDeny, "builtin.dangerous-function");
    EXPECT_THAT(d.reason, HasSubstr(fn.name + "()"));
  }
  EXPECT_DECISION(f.Decide(Select({}, {Fn("", "now"), Fn("", "pg_size_pretty")})), kAllow,
                  "profile.read-write");
  EXPECT_TRUE(IsDangerousFunction("pg_ls_dir"));
  EXPECT_FALSE(IsDangerousFunction("pg_lsn"));
}

TEST(FunctionsTest, OnlyAnExactAllowEntryUnlocksADangerousFunction) {
  Scope scope = MakeScope("ops", Profile::kReadOnly);
  scope.functions_allow = {Pattern("*"), Pattern("pg_catalog.pg_*")};
  Fixture globbed(scope);
  EXPECT_DECISION(globbed.Decide(Select({}, {Fn("", "pg_cancel_backend")})), kDeny,
                  "builtin.dangerous-function");
  scope.functions_allow.push_back(Pattern("pg_cancel_backend"));
  Fixture named(scope);
  EXPECT_DECISION(named.Decide(Select({}, {Fn("", "pg_cancel_backend")})), kAllow,
                  "profile.read-only");
  EXPECT_DECISION(named.Decide(Select({}, {Fn("", "pg_terminate_backend")})), kDeny,
                  "builtin.dangerous-function");
}

TEST(FunctionsTest, AllowListMustHoldInEverySchemaTheNameCanReach) {
  Scope scope = MakeScope("fn", Profile::kReadOnly);
  scope.functions_allow = {Pattern("app.*")};
  scope.search_path = {"app"};
  Fixture f(scope);
  EXPECT_DECISION(f.Decide(Select({}, {Fn("app", "total")})), kAllow, "profile.read-only");
  // Unqualified: pg_catalog is searched first, and it is not allowed.
  const Decision d = f.Decide(Select({}, {Fn("", "total")}));
  EXPECT_DECISION(d, kDeny, "scope.fn.functions.allow");
  EXPECT_THAT(d.reason, HasSubstr("pg_catalog.total or app.total"));
  scope.functions_allow.push_back(Pattern("pg_catalog.*"));
  EXPECT_DECISION(Fixture(scope).Decide(Select({}, {Fn("", "total")})), kAllow,
                  "profile.read-only");
}

// --- relations --------------------------------------------------------------------

TEST(RelationsTest, SecretCatalogsAreDeniedButNotTheirNamesakes) {
  Fixture f = ReadWrite();
  EXPECT_DECISION(f.Decide(Select({Rel("", "pg_authid")})), kDeny, "builtin.secret-catalog");
  EXPECT_DECISION(f.Decide(Select({Rel("pg_catalog", "pg_shadow")})), kDeny,
                  "builtin.secret-catalog");
  EXPECT_DECISION(f.Decide(Select({Rel("", "pg_user_mappings")})), kDeny, "builtin.secret-catalog");
  EXPECT_DECISION(f.Decide(Select({Rel("public", "pg_authid")})), kAllow, "profile.read-write");
  EXPECT_DECISION(f.Decide(Select({Rel("pg_catalog", "pg_roles")})), kAllow, "profile.read-write");
}

TEST(RelationsTest, DenyMatchesAnySchemaTheNameCouldResolveTo) {
  Scope scope = MakeScope("s", Profile::kReadWrite);
  scope.relations_deny = {Pattern("secret.*"), Pattern("*.salaries"), Pattern("alice.*")};
  Fixture f(scope, "bob");
  EXPECT_DECISION(f.Decide(Select({Rel("", "orders")})), kAllow, "profile.read-write");
  EXPECT_DECISION(f.Decide(Select({Rel("secret", "orders")})), kDeny, "scope.s.relations.deny");
  EXPECT_DECISION(f.Decide(Select({Rel("", "salaries")})), kDeny, "scope.s.relations.deny");
  EXPECT_DECISION(f.Decide(Select({Rel("public", "salaries")})), kDeny, "scope.s.relations.deny");

  // "$user" is the database role: alice's own schema is on her path.
  Fixture as_alice(scope, "alice");
  const Decision d = as_alice.Decide(Select({Rel("", "orders")}));
  EXPECT_DECISION(d, kDeny, "scope.s.relations.deny");
  EXPECT_THAT(d.reason, HasSubstr("alice.orders"));
  EXPECT_THAT(d.reason, HasSubstr("\"alice.*\""));

  // Once the session may have put `secret` on its path, unqualified names may land there,
  // even after it set another path again (the first SET may have been rolled back).
  f.state.Remember(Set("search_path", "secret, public"));
  f.state.Remember(Set("search_path", "public"));
  EXPECT_DECISION(f.Decide(Select({Rel("", "orders")})), kDeny, "scope.s.relations.deny");
  EXPECT_DECISION(f.Decide(Select({Rel("public", "orders")})), kAllow, "profile.read-write");
}

TEST(RelationsTest, UnknownSearchPathFailsClosed) {
  Scope scope = MakeScope("s", Profile::kReadWrite);
  scope.relations_deny = {Pattern("secret.*")};
  Fixture f(scope);
  f.state.Remember(Set("search_path", "", /*via_function=*/true, /*value_known=*/false));
  EXPECT_TRUE(f.state.ResolveSchemas("orders", NameKind::kRelation).any_schema);
  const Decision d = f.Decide(Select({Rel("", "orders")}));
  EXPECT_DECISION(d, kDeny, "scope.s.relations.deny");
  EXPECT_THAT(d.reason, HasSubstr("not known"));
  EXPECT_DECISION(f.Decide(Select({Rel("app", "orders")})), kAllow, "profile.read-write");

  Scope allow = MakeScope("a", Profile::kReadOnly);
  allow.relations_allow = {Pattern("app.*"), Pattern("*.countries")};
  Fixture g(allow);
  g.state.Remember(Set("search_path", "", true, false));
  EXPECT_DECISION(g.Decide(Select({Rel("", "orders")})), kDeny, "scope.a.relations.allow");
  EXPECT_DECISION(g.Decide(Select({Rel("", "countries")})), kAllow, "profile.read-only");
}

TEST(RelationsTest, AllowListMustHoldWhereverTheNameLands) {
  Scope scope = MakeScope("s", Profile::kReadOnly);
  scope.relations_allow = {Pattern("app.*")};
  scope.search_path = {"app"};
  Fixture f(scope);
  EXPECT_DECISION(f.Decide(Select({Rel("", "orders")})), kAllow, "profile.read-only");
  EXPECT_DECISION(f.Decide(Select({Rel("app", "orders")})), kAllow, "profile.read-only");
  EXPECT_DECISION(f.Decide(Select({Rel("public", "orders")})), kDeny, "scope.s.relations.allow");
  // pg_* names may be system catalogs.
  EXPECT_DECISION(f.Decide(Select({Rel("", "pg_class")})), kDeny, "scope.s.relations.allow");
  f.state.Remember(Set("search_path", "app, public"));
  EXPECT_DECISION(f.Decide(Select({Rel("", "orders")})), kDeny, "scope.s.relations.allow");
}

TEST(SearchPathTest, ResolutionFollowsPostgres) {
  SessionPolicyState state(std::vector<std::string>{"$user", "public"}, "alice");
  SchemaResolution r = state.ResolveSchemas("orders", NameKind::kRelation);
  EXPECT_FALSE(r.any_schema);
  EXPECT_EQ(r.schemas, (std::vector<std::string>{"pg_temp", "alice", "public"}));
  r = state.ResolveSchemas("pg_class", NameKind::kRelation);
  EXPECT_EQ(r.schemas, (std::vector<std::string>{"pg_temp", "pg_catalog", "alice", "public"}));
  r = state.ResolveSchemas("now", NameKind::kFunction);  // never pg_temp for functions
  EXPECT_EQ(r.schemas, (std::vector<std::string>{"pg_catalog", "alice", "public"}));

  state.Remember(Set("search_path", "\"My Schema\", App,pg_temp"));
  r = state.ResolveSchemas("f", NameKind::kFunction);
  EXPECT_EQ(r.schemas,
            (std::vector<std::string>{"pg_catalog", "alice", "public", "My Schema", "app"}));
  state.Remember(Set("role", "auditor"));
  r = state.ResolveSchemas("f", NameKind::kFunction);
  EXPECT_THAT(r.schemas, ::testing::Contains("auditor"));
  state.Remember(Set("role", "", false, /*value_known=*/false));
  EXPECT_TRUE(state.ResolveSchemas("f", NameKind::kFunction).any_schema);
}

// --- settings ---------------------------------------------------------------------

TEST(SettingsTest, ProtectedSettingsAreDeniedButToAdmin) {
  Fixture f = ReadWrite();
  StatementSummary set_role = Set("role", "postgres");
  set_role.statement_class = StatementClass::kDcl;
  const Decision d = f.Decide(set_role);
  EXPECT_DECISION(d, kDeny, "builtin.protected-setting");  // denied, not held for approval
  EXPECT_THAT(d.reason, HasSubstr("role"));
  StatementSummary auth = Reset("session_authorization");
  auth.statement_class = StatementClass::kDcl;
  EXPECT_DECISION(f.Decide(auth), kDeny, "builtin.protected-setting");
  EXPECT_DECISION(f.Decide(Set("role", "postgres", /*via_function=*/true)), kDeny,
                  "builtin.protected-setting");
  EXPECT_DECISION(f.Decide(Set("session_authorization", "", true, /*value_known=*/false)), kDeny,
                  "builtin.protected-setting");
  EXPECT_DECISION(f.Decide(Set("", "x", true, false)), kDeny, "builtin.protected-setting");
  EXPECT_DECISION(f.Decide(Set("session_replication_role", "replica")), kDeny,
                  "builtin.protected-setting");
  EXPECT_DECISION(f.Decide(Set("pgaudit.log", "none")), kDeny, "builtin.protected-setting");
  EXPECT_DECISION(f.Decide(Set("log_statement", "none")), kDeny, "builtin.protected-setting");
  EXPECT_DECISION(f.Decide(Set("search_path", "app")), kAllow, "profile.read-write");
  EXPECT_DECISION(f.Decide(Set("search_path", "", true, false)), kAllow, "profile.read-write");
  EXPECT_DECISION(f.Decide(Set("application_name", "", true, false)), kAllow, "profile.read-write");
}

TEST(SettingsTest, LimitsCannotBeRaisedResetOrDiscarded) {
  Scope scope = MakeScope("limited", Profile::kReadWrite);
  scope.statement_timeout = absl::Seconds(30);
  Fixture f(scope);
  EXPECT_DECISION(f.Decide(Set("statement_timeout", "10s")), kAllow, "profile.read-write");
  EXPECT_DECISION(f.Decide(Set("statement_timeout", "30000")), kAllow, "profile.read-write");
  EXPECT_DECISION(f.Decide(Set("statement_timeout", "1500 ms")), kAllow, "profile.read-write");
  for (const char* value : {"1min", "0", "31s", "1h", "-1", "soon"}) {
    const Decision d = f.Decide(Set("statement_timeout", value));
    EXPECT_DECISION(d, kDeny, "scope.limited.limits");
    EXPECT_THAT(d.reason, HasSubstr("statement_timeout"));
  }
  EXPECT_DECISION(f.Decide(Reset("statement_timeout")), kDeny, "scope.limited.limits");
  EXPECT_DECISION(f.Decide(Set("statement_timeout", "", true, false)), kDeny,
                  "scope.limited.limits");
  EXPECT_DECISION(f.Decide(Reset("all")), kDeny, "scope.limited.limits");
  EXPECT_DECISION(f.Decide(Stmt(StatementClass::kSessionSetting, "DISCARD ALL")), kDeny,
                  "scope.limited.limits");
  EXPECT_DECISION(f.Decide(Set("lock_timeout", "0")), kAllow, "profile.read-write");  // no limit
}

// --- prepared statements ------------------------------------------------------------

TEST(PreparedTest, ExecuteIsJudgedByWhatItRuns) {
  Fixture f = ReadOnly();
  const StatementSummary prepare_read = Prepare("q", Select({Rel("public", "orders")}));
  EXPECT_DECISION(f.Decide(prepare_read), kAllow, "profile.read-only");
  const Decision prepare_write =
      f.Decide(Prepare("w", Write("DELETE", Rel("public", "orders", kAccessDelete))));
  EXPECT_DECISION(prepare_write, kDeny, "profile.read-only.class");
  EXPECT_THAT(prepare_write.reason, HasSubstr("PREPARE w prepares DELETE (write)"));

  const Decision unknown = f.Decide(Execute("q"));
  EXPECT_DECISION(unknown, kDeny, "prepared.unknown");
  EXPECT_THAT(unknown.reason, HasSubstr("\"q\""));
  f.state.Remember(prepare_read);
  EXPECT_DECISION(f.Decide(Execute("q")), kAllow, "profile.read-only");

  StatementSummary deallocate = Stmt(StatementClass::kUtility, "DEALLOCATE");
  deallocate.deallocate_name = "q";
  f.state.Remember(deallocate);
  EXPECT_DECISION(f.Decide(Execute("q")), kDeny, "prepared.unknown");

  f.state.Remember(prepare_read);
  StatementSummary all = Stmt(StatementClass::kUtility, "DEALLOCATE ALL");
  all.deallocate_all = true;
  f.state.Remember(all);
  EXPECT_DECISION(f.Decide(Execute("q")), kDeny, "prepared.unknown");
  f.state.Remember(prepare_read);
  f.state.Remember(Stmt(StatementClass::kSessionSetting, "DISCARD ALL"));
  EXPECT_DECISION(f.Decide(Execute("q")), kDeny, "prepared.unknown");
}

TEST(PreparedTest, ExecuteWeighsEveryStatementTheNameMayHold) {
  // A second PREPARE of a name in use fails in PostgreSQL; the gateway cannot
  // tell, so both statements are possible and the stricter decision holds.
  Fixture f = ReadWrite();
  f.state.Remember(Prepare("p", Select({Rel("public", "orders")})));
  f.state.Remember(
      Prepare("p", Write("DELETE", Rel("public", "orders", kAccessDelete), /*unfiltered=*/true)));
  const Decision d = f.Decide(Execute("p"));
  EXPECT_DECISION(d, kApproval, "profile.read-write.destructive");
  EXPECT_THAT(d.reason, HasSubstr("EXECUTE p runs DELETE (write)"));
}

TEST(PreparedTest, ExecuteArgumentsAreCheckedToo) {
  Fixture f = ReadOnly();
  f.state.Remember(Prepare("q", Select({Rel("public", "orders")})));
  StatementSummary execute = Execute("q");
  execute.functions = {Fn("", "pg_read_file")};
  EXPECT_DECISION(f.Decide(execute), kDeny, "builtin.dangerous-function");
}

TEST(FunctionCallTest, DeniedUnlessTheScopeAllowsIt) {
  Scope scope = MakeScope("rw", Profile::kReadWrite);
  Policy policy({scope});
  const Decision d = policy.DecideFunctionCall(policy.scopes()[0]);
  EXPECT_DECISION(d, kDeny, "builtin.function-call");
  EXPECT_THAT(d.hint, HasSubstr("allow_function_call"));
  scope.allow_function_call = true;
  Policy allowed({scope});
  EXPECT_DECISION(allowed.DecideFunctionCall(allowed.scopes()[0]), kAllow,
                  "scope.rw.allow_function_call");
}

// --- column masks ------------------------------------------------------------

TEST(ColumnNameTest, FoldsAsSqlNamesColumns) {
  EXPECT_EQ(ParseColumnName("email").value(), "email");
  EXPECT_EQ(ParseColumnName("EMail").value(), "email");
  EXPECT_EQ(ParseColumnName("\"EMail\"").value(), "EMail");
  EXPECT_EQ(ParseColumnName("\"a \"\"b\"\" c\"").value(), "a \"b\" c");
  EXPECT_EQ(ParseColumnName("\"a.b*\"").value(), "a.b*");  // quoted: taken as written
  for (std::string_view bad :
       {"", "\"\"", "t.email", "e*", "\"open", "a b", "\"a\"b",
        "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"}) {
    EXPECT_FALSE(ParseColumnName(bad).ok()) << bad;
  }
}

// A scope with masks on email and phone, judging SQL text through the real
// analyser, statement by statement as the gateway does.
struct MaskedFixture {
  explicit MaskedFixture(Profile profile, bool masked = true)
      : policy({[&] {
          Scope scope = MakeScope("support", profile);
          if (masked) {
            scope.masks = {ColumnMask{.column = "email", .method = MaskMethod::kPartial},
                           ColumnMask{.column = "phone"}};
          }
          return scope;
        }()}) {}

  Decision Judge(std::string_view sql) const {
    const SqlAnalysis analysis = AnalyseSql(sql);
    EXPECT_TRUE(analysis.ok) << sql << ": " << analysis.error_message;
    SessionPolicyState state(policy.scopes()[0], "app_user");
    state.UseCatalog(TestCatalog());
    Decision strictest{Decision::kAllow, "", "", ""};
    for (const StatementSummary& s : analysis.statements) {
      Decision d = policy.Decide(policy.scopes()[0], s, state);
      if (d.kind != Decision::kAllow && strictest.kind == Decision::kAllow) strictest = d;
      state.Remember(s);
    }
    return strictest;
  }
  Policy policy;
};

// Each can reveal a masked value under another name, or let it be inferred.
constexpr std::string_view kRevealing[] = {
    "SELECT email AS e FROM customers",
    "SELECT email AS \"EMAIL\" FROM customers",
    "SELECT c.email AS mail FROM customers c",
    "SELECT lower(email) FROM customers",
    "SELECT email::text FROM customers",
    "SELECT email || '' FROM customers",
    "SELECT max(email) FROM customers",
    "SELECT json_build_object('e', email) FROM customers",
    "SELECT id FROM customers WHERE email LIKE 'a%'",
    "SELECT id FROM customers c WHERE c.phone IS NULL",
    "SELECT id FROM customers ORDER BY email",
    "SELECT email FROM customers GROUP BY email",
    "SELECT id, row_number() OVER (ORDER BY email) FROM customers",
    "SELECT DISTINCT ON (email) id FROM customers",
    "SELECT (SELECT email FROM customers LIMIT 1)",
    "VALUES ((SELECT email FROM customers LIMIT 1))",
    "SELECT id FROM customers WHERE id IN (SELECT id FROM customers WHERE email = 'x')",
    "WITH x AS (SELECT email FROM customers) SELECT * FROM x",
    "SELECT email FROM customers UNION SELECT 'x'",
    "SELECT email FROM customers UNION ALL SELECT email FROM old_customers",
    "SELECT c FROM customers c",
    "SELECT customers FROM customers",
    "SELECT row_to_json(c) FROM customers c",
    // Column statistics hold column values (most common values, histogram bounds).
    "SELECT most_common_vals FROM pg_stats WHERE attname = 'email'",
    "SELECT histogram_bounds FROM pg_catalog.pg_stats",
    "SELECT * FROM pg_stats_ext_exprs",
    "SELECT (c).email FROM customers c",
    "SELECT count(c.*) FROM customers c",
    "SELECT * FROM customers WHERE customers = customers",
    "SELECT * FROM (SELECT * FROM customers) s",
    "SELECT email FROM customers ORDER BY 1",
    "SELECT * FROM customers ORDER BY 2",
    "SELECT email FROM customers GROUP BY 1",
    "SELECT email, count(*) FROM customers GROUP BY ROLLUP (1)",
    "SELECT DISTINCT ON (1) email FROM customers",
    "SELECT DISTINCT email FROM customers",
    "SELECT DISTINCT * FROM customers",
    "SELECT id FROM a JOIN b USING (email)",
    "SELECT * FROM customers JOIN orders USING (phone)",
    "SELECT * FROM a NATURAL JOIN b",
    "SELECT * FROM customers c(a, mail)",
    "SELECT mail FROM customers AS c(id, mail)",
    "SELECT * FROM (customers JOIN orders ON true) AS j(a, mail)",
    "COPY customers TO STDOUT",
    "COPY (SELECT id FROM customers) TO STDOUT",
    "COPY customers (id) TO STDOUT",
    "EXPLAIN ANALYZE SELECT id FROM customers WHERE email = 'x'",
    "EXPLAIN SELECT id FROM customers WHERE email = 'x'",
    "SELECT email INTO t2 FROM customers",
    "CREATE TABLE t2 AS SELECT email FROM customers",
    "CREATE VIEW v AS SELECT email FROM customers",
    "INSERT INTO t SELECT email FROM customers",
    "INSERT INTO t SELECT * FROM customers",
    "INSERT INTO customers (id) VALUES (1) ON CONFLICT (email) DO NOTHING",
    "INSERT INTO customers (id) VALUES (1) RETURNING email AS e",
    "UPDATE customers SET note = email",
    "UPDATE customers SET note = 'x' WHERE email = 'a' RETURNING id",
    "DELETE FROM customers WHERE id = 1 RETURNING customers",
    "WITH d AS (DELETE FROM customers WHERE id = 1 RETURNING email) SELECT * FROM d",
    "MERGE INTO t USING customers c ON t.id = c.id WHEN MATCHED THEN UPDATE SET x = c.email",
    "DECLARE k CURSOR FOR SELECT email FROM customers ORDER BY 1",
    "PREPARE p AS SELECT id FROM customers WHERE email = $1",
    "PREPARE p AS SELECT email FROM customers; CREATE TABLE t2 (e) AS EXECUTE p",
};

// Each gives masked columns only as plain output columns, or none at all.
constexpr std::string_view kPlain[] = {
    "SELECT id, email FROM customers WHERE id = 1",
    "SELECT * FROM customers",
    "SELECT c.* FROM customers c WHERE c.id = 1",
    "SELECT email FROM customers",
    "SELECT email AS email, phone FROM customers",
    "SELECT customers.email, id FROM customers ORDER BY id",
    "SELECT id, email FROM customers ORDER BY id DESC LIMIT 10",
    "SELECT * FROM customers WHERE id = $1",
    "SELECT c.id, email FROM customers c JOIN orders o ON o.customer_id = c.id",
    "SELECT id, email FROM customers WHERE id IN (SELECT customer_id FROM orders WHERE total > 1)",
    "SELECT id FROM customers ORDER BY 1",
    "SELECT DISTINCT id FROM customers",
    "SELECT count(*) FROM customers",
    "SELECT email FROM customers WHERE id = 1 FOR UPDATE",
    "TABLE customers",
    "SELECT 1",
    "INSERT INTO customers (id, email) VALUES (1, 'a@b') RETURNING id, email",
    "UPDATE customers SET email = 'x' WHERE id = 1",
    "DELETE FROM customers WHERE id = 1 RETURNING *",
    "DECLARE k CURSOR FOR SELECT id, email FROM customers; FETCH 10 FROM k",
    "PREPARE p AS SELECT id, email FROM customers WHERE id = $1; EXECUTE p(1)",
    "COPY customers FROM STDIN",
    "BEGIN; SELECT email FROM customers; COMMIT",
    "SET search_path = app; SHOW search_path",
};

TEST(MaskTest, StatementsThatCouldRevealAMaskedColumnAreRefusedUnderEveryProfile) {
  for (Profile profile : {Profile::kAdmin, Profile::kReadWrite}) {
    const MaskedFixture masked(profile);
    for (std::string_view sql : kRevealing) {
      const Decision d = masked.Judge(sql);
      EXPECT_EQ(d.kind, Decision::kDeny) << ProfileName(profile) << ": " << sql;
      EXPECT_EQ(d.rule, "scope.support.mask") << sql << ": " << d.reason;
      EXPECT_FALSE(d.hint.empty()) << sql;
    }
  }
  // Under read-only a refusal of the profile may come first; never an allow.
  const MaskedFixture read_only(Profile::kReadOnly);
  for (std::string_view sql : kRevealing) {
    EXPECT_EQ(read_only.Judge(sql).kind, Decision::kDeny) << sql;
  }
}

TEST(MaskTest, WithoutMasksTheSameStatementsAreJudgedAsBefore) {
  const MaskedFixture unmasked(Profile::kAdmin, /*masked=*/false);
  for (std::string_view sql : kRevealing) {
    EXPECT_EQ(unmasked.Judge(sql).kind, Decision::kAllow) << sql;
  }
}

TEST(MaskTest, PlainOutputColumnsPass) {
  for (Profile profile : {Profile::kAdmin, Profile::kReadWrite}) {
    const MaskedFixture masked(profile);
    for (std::string_view sql : kPlain) {
      const Decision d = masked.Judge(sql);
      EXPECT_EQ(d.kind, Decision::kAllow)
          << ProfileName(profile) << ": " << sql << "\n  " << d.rule << ": " << d.reason;
    }
  }
}

TEST(MaskTest, MessagesNameWhatIsRefusedAndWhatToDo) {
  const MaskedFixture f(Profile::kReadOnly);
  Decision d = f.Judge("SELECT id FROM customers WHERE email LIKE 'a%'");
  EXPECT_EQ(d.reason,
            "column \"email\" is masked for scope support: it can only be selected as a plain "
            "column");
  EXPECT_THAT(d.hint, HasSubstr("select it as is (SELECT email FROM ...), without renaming"));
  EXPECT_THAT(DecisionMessage(d), HasSubstr("permission denied by pgbastion rule "
                                            "\"scope.support.mask\": column \"email\""));
  d = f.Judge("SELECT row_to_json(c) FROM customers c");
  EXPECT_THAT(d.reason, HasSubstr("a whole-row reference"));
  EXPECT_EQ(d.hint, "list the columns you need");
  d = f.Judge("SELECT * FROM customers ORDER BY 2");
  EXPECT_THAT(d.reason, HasSubstr("by output position"));
  EXPECT_THAT(d.hint, HasSubstr("named columns"));
  d = f.Judge("COPY customers TO STDOUT");
  EXPECT_THAT(d.reason, HasSubstr("COPY TO is refused in a scope with masked columns"));
  EXPECT_EQ(d.hint, "use SELECT; masked values are rewritten in result rows only");
  d = f.Judge("SELECT mail FROM customers AS c(id, mail)");
  EXPECT_THAT(d.reason, HasSubstr("column alias list"));
  d = f.Judge("PREPARE p AS SELECT lower(phone) FROM customers");
  EXPECT_EQ(d.rule, "scope.support.mask");
  EXPECT_THAT(d.reason, HasSubstr("column \"phone\""));
}

TEST(MaskTest, MasksMatchExactNames) {
  Scope scope = MakeScope("support", Profile::kAdmin);
  scope.masks = {ColumnMask{.column = "Email"}};
  Fixture f(scope);
  f.state.UseCatalog(TestCatalog());
  const auto judge = [&](std::string_view sql) {
    const SqlAnalysis a = AnalyseSql(sql);
    return a.statements.empty() ? Decision{} : f.Decide(a.statements[0]);
  };
  EXPECT_DECISION(judge("SELECT lower(email) FROM customers"), kAllow, "profile.admin");
  EXPECT_DECISION(judge("SELECT lower(\"Email\") FROM customers"), kDeny, "scope.support.mask");
}

TEST(MaskTest, FunctionCallIsRefusedInAMaskedScopeEvenForAdmin) {
  Scope scope = MakeScope("support", Profile::kAdmin);
  scope.allow_function_call = true;
  scope.masks = {ColumnMask{.column = "email"}};
  const Policy policy({scope});
  const Decision d = policy.DecideFunctionCall(policy.scopes()[0]);
  EXPECT_DECISION(d, kDeny, "scope.support.mask");
  EXPECT_THAT(d.reason, HasSubstr("could return a masked value"));
}

TEST(DecisionTest, KindNames) {
  EXPECT_STREQ(DecisionKindName(Decision::kAllow), "allow");
  EXPECT_STREQ(DecisionKindName(Decision::kDeny), "deny");
  EXPECT_STREQ(DecisionKindName(Decision::kApproval), "approval");
  EXPECT_STREQ(ProfileName(Profile::kReadWrite), "read-write");
}

}  // namespace
}  // namespace pgb::policy
