// [scope.role], [roles] and the provisioning keys of [[target]]
// (core/role_config.h), and the names and statements of temporary roles
// (core/role_provisioner.h).
#include <stdlib.h>

#include <string>

#include "base/str_cat.h"
#include "core/config.h"
#include "core/role_provisioner.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pgb {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

std::string Doc(std::string_view target_extra, std::string_view role, std::string_view tail = "") {
  return Cat(
      "[[listener]]\nport = 6432\n[[target]]\nname = \"app\"\nhost = \"127.0.0.1\"\n"
      "user = \"pgbastion\"\n",
      target_extra,
      "\n[[user]]\nname = \"alice\"\nscram_verifier = \"SCRAM-SHA-256$4096:"
      "c2FsdHNhbHRzYWx0c2FsdA==$h7BOWJYfmpnYU9QEagtbeT58Pku9IfWsqPsXwgzbHYs=:"
      "s+rNM0M7MbUlI1EDLJs+ei56p3ONXezfDdbGJoCFPAY=\"\n"
      "[[scope]]\nname = \"ci\"\nsubjects = [\"*\"]\nprofile = \"admin\"\n",
      role, "\n", tail, "\n");
}

constexpr char kProvision[] =
    "provision_user = \"prov\"\nprovision_password_env = \"PGB_ROLE_TEST_PW\"";

absl::StatusOr<Config> Parse(const std::string& text) {
  ::setenv("PGB_ROLE_TEST_PW", "provision-secret", 1);
  ::setenv("PGB_ROLE_TEST_STATIC", "static-secret", 1);
  return ParseConfig(text, "test.toml", "/tmp");
}

TEST(RoleConfigTest, TemporaryTemplateParses) {
  absl::StatusOr<Config> c = Parse(Doc(
      kProvision,
      "role = { member_of = [\"app_reader\", \"orders_writer\"], settings = { work_mem = \"16MB\", "
      "statement_timeout = 30000, jit = false }, connection_limit = 2, grace = \"5m\" }",
      "[roles]\nnode_id = \"gw-1\"\njanitor_interval = \"2s\""));
  ASSERT_TRUE(c.ok()) << c.status().message();
  const RoleTemplate* t = c->FindRoleTemplate("ci");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->mode, RoleTemplate::Mode::kTemporary);
  EXPECT_THAT(t->member_of, ::testing::ElementsAre("app_reader", "orders_writer"));
  EXPECT_EQ(t->settings.size(), 3u);
  EXPECT_EQ(t->connection_limit, 2);
  EXPECT_EQ(t->grace, absl::Minutes(5));
  EXPECT_EQ(c->roles.node_id, "gw-1");
  EXPECT_EQ(c->roles.janitor_interval, absl::Seconds(2));
  EXPECT_EQ(c->targets[0].provision_user, "prov");
  EXPECT_EQ(c->targets[0].provision_password.Reveal(), "provision-secret");
  EXPECT_EQ(c->targets[0].reassign_owned_to, "prov");  // the default
}

TEST(RoleConfigTest, StaticTemplateParses) {
  absl::StatusOr<Config> c =
      Parse(Doc("",
                "role = { mode = \"static\", login = \"ci_login\", password_env = "
                "\"PGB_ROLE_TEST_STATIC\" }"));
  ASSERT_TRUE(c.ok()) << c.status().message();
  const RoleTemplate* t = c->FindRoleTemplate("ci");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->mode, RoleTemplate::Mode::kStatic);
  EXPECT_EQ(t->login, "ci_login");
  EXPECT_EQ(t->password.Reveal(), "static-secret");
}

TEST(RoleConfigTest, ErrorsNameTheirKeys) {
  const auto error = [](const std::string& text) {
    absl::StatusOr<Config> c = Parse(text);
    EXPECT_FALSE(c.ok()) << text;
    return c.ok() ? std::string() : std::string(c.status().message());
  };
  EXPECT_THAT(error(Doc("", "role = { member_of = [\"r\"] }")),
              AllOf(HasSubstr("scope[0].role: temporary roles need a provisioning login on "
                              "target \"app\""),
                    HasSubstr("provision_user")));
  EXPECT_THAT(error(Doc(kProvision, "role = { member_of = [\"r\"], login = \"x\" }")),
              HasSubstr("scope[0].role.login: is not used with mode = \"temporary\""));
  EXPECT_THAT(error(Doc(kProvision, "role = { mode = \"static\", login = \"x\" }")),
              HasSubstr("scope[0].role.password_file: required with mode = \"static\""));
  EXPECT_THAT(error(Doc(kProvision, "role = { mode = \"fleeting\" }")),
              HasSubstr("scope[0].role.mode"));
  EXPECT_THAT(error(Doc(kProvision, "role = { connection_limit = 0 }")),
              HasSubstr("scope[0].role.connection_limit"));
  EXPECT_THAT(error(Doc(kProvision, "role = { settings = { role = \"postgres\" } }")),
              HasSubstr("scope[0].role.settings.role: the gateway chooses who the session is"));
  EXPECT_THAT(error(Doc(kProvision, "role = { member_of = [\"r\"], password = \"x\" }")),
              HasSubstr("scope[0].role.password: unknown key"));
  EXPECT_THAT(error(Doc("reassign_owned_to = \"o\"", "")),
              HasSubstr("target[0].reassign_owned_to: is only used with provision_user"));
  EXPECT_THAT(error(Doc(kProvision, "", "[roles]\nnode_id = \"Has Space\"")),
              HasSubstr("roles.node_id: \"Has Space\" must be"));
  EXPECT_THAT(error(Doc(kProvision, "", "[roles]\nprefix = \"9x\"")), HasSubstr("roles.prefix"));
  // The provisioning password never appears in a message.
  ::setenv("PGB_ROLE_TEST_PW", "provision-secret", 1);
  EXPECT_THAT(error(Doc("provision_user = \"p\"\nprovision_password_env = \"PGB_ROLE_TEST_PW\"\n"
                        "provision_password_file = \"/nonexistent\"",
                        "")),
              AllOf(HasSubstr("target[0].provision_password_env: set either"),
                    Not(HasSubstr("provision-secret"))));
}

TEST(RoleNameTest, SanitisedRandomAndWithinNamedatalen) {
  EXPECT_THAT(MakeRoleName("pgb_", "ci-bot@example.com"),
              MatchesRegex("pgb_ci_bot_example_com_[0-9a-f]{8}"));
  EXPECT_THAT(MakeRoleName("pgb_", "\"; DROP ROLE x; --"),
              MatchesRegex("pgb_drop_role_x_[0-9a-f]{8}"));
  EXPECT_THAT(MakeRoleName("pgb_", "Ünïcode"), MatchesRegex("pgb_n_code_[0-9a-f]{8}"));
  EXPECT_THAT(MakeRoleName("pgb_", "@@@"), MatchesRegex("pgb_session_[0-9a-f]{8}"));
  const std::string long_name = MakeRoleName("pgb_", std::string(200, 'a'));
  EXPECT_EQ(long_name.size(), 63u);
  EXPECT_NE(MakeRoleName("pgb_", "a"), MakeRoleName("pgb_", "a"));
}

TEST(CreateRoleSqlTest, QuotesEveryNameAndValue) {
  RoleRequest r;
  r.role = "pgb_alice_0123abcd";
  r.member_of = {"app_reader", "we\"ird"};
  r.settings = {{"work_mem", "16MB"}, {"search_path", "a', b"}};
  r.connection_limit = 2;
  r.valid_until_unix = 1'800'000'000;
  r.session_id = 42;
  r.identity = "o'brien";
  const auto ident = [](std::string_view s) { return Cat("<I:", s, ">"); };
  const auto lit = [](std::string_view s) { return Cat("<L:", s, ">"); };
  const std::string sql = CreateRoleSql(r, "SCRAM-SHA-256$16:x$y:z", "gw-1", ident, lit);
  EXPECT_EQ(sql,
            "CREATE ROLE <I:pgb_alice_0123abcd> LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE "
            "NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 2 PASSWORD <L:SCRAM-SHA-256$16:x$y:z> "
            "VALID UNTIL <L:2027-01-15 08:00:00+00> IN ROLE <I:app_reader>, <I:we\"ird>;\n"
            "ALTER ROLE <I:pgb_alice_0123abcd> SET <I:work_mem> = <L:16MB>;\n"
            "ALTER ROLE <I:pgb_alice_0123abcd> SET <I:search_path> = <L:a', b>;\n"
            "COMMENT ON ROLE <I:pgb_alice_0123abcd> IS "
            "<L:pgbastion node=gw-1 session=42 identity=o'brien>;");
}

}  // namespace
}  // namespace pgb
