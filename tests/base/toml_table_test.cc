#include "base/toml_table.h"

#include <string>
#include <string_view>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pgb {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// "line:column key: message", as a caller might print it.
class TomlTableTest : public ::testing::Test {
 protected:
  const toml::table& Parse(std::string_view text) {
    root_ = toml::parse(text, std::string_view("test.toml"));
    return root_;
  }
  const toml::table& Table(std::string_view key) { return *root_.get(key)->as_table(); }

  std::vector<std::string> problems_;
  const TomlProblemSink sink_ = [this](const toml::source_region& where, std::string_view key,
                                       std::string_view message) {
    problems_.push_back(std::to_string(where.begin.line) + ":" +
                        std::to_string(where.begin.column) + " " + std::string(key) + ": " +
                        std::string(message));
  };
  toml::table root_;
};

TEST_F(TomlTableTest, ReadsTypedValues) {
  const toml::table& t = Parse(R"(
name = "app"
port = 6432
on = true
timeout = "1m30s"
mode = "b"
list = ["x", "y"]
)");
  TomlTableReader reader(t, "", {"name", "port", "on", "timeout", "mode", "list", "absent"}, sink_);
  EXPECT_EQ(reader.String("name"), "app");
  EXPECT_EQ(reader.RequiredString("name", "the name"), "app");
  EXPECT_EQ(reader.Integer("port", 1, 65535), 6432);
  EXPECT_EQ(reader.Bool("on"), true);
  EXPECT_EQ(reader.Duration("timeout"), absl::Seconds(90));
  EXPECT_EQ(reader.Duration("timeout", absl::ZeroDuration(), absl::Minutes(2)), absl::Seconds(90));
  EXPECT_EQ(reader.Enum("mode", {"a", "b"}), 1u);
  EXPECT_EQ(reader.StringList("list"), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(reader.String("absent"), std::nullopt);
  EXPECT_EQ(reader.Integer("absent", 0, 1), std::nullopt);
  EXPECT_EQ(reader.Duration("absent"), std::nullopt);
  EXPECT_EQ(reader.StringList("absent"), std::nullopt);
  EXPECT_THAT(problems_, IsEmpty());
}

TEST_F(TomlTableTest, WrongTypesNameExpectedAndActual) {
  Parse(R"([gateway]
name = 5
port = "6432"
on = "yes"
timeout = 60
when = 1979-05-27
)");
  {
    TomlTableReader reader(Table("gateway"), "gateway", {"name", "port", "on", "timeout", "when"},
                           sink_);
    EXPECT_EQ(reader.String("name"), std::nullopt);
    EXPECT_EQ(reader.Integer("port", 1, 65535), std::nullopt);
    EXPECT_EQ(reader.Bool("on"), std::nullopt);
    EXPECT_EQ(reader.Duration("timeout"), std::nullopt);
    EXPECT_EQ(reader.String("when"), std::nullopt);
  }
  EXPECT_THAT(problems_,
              ElementsAre("2:8 gateway.name: expected a string, got integer",
                          "3:8 gateway.port: expected an integer 1..65535, got string",
                          "4:6 gateway.on: expected true or false, got string",
                          "5:11 gateway.timeout: expected a duration string such as \"500ms\", "
                          "\"60s\", \"5m\", got integer",
                          "6:8 gateway.when: expected a string, got date"));
}

TEST_F(TomlTableTest, RangesAndChoices) {
  const toml::table& t = Parse(R"(
port = 0
a = "60"
b = "0s"
c = "inf"
d = "20m"
e = "-1s"
mode = "c"
)");
  {
    TomlTableReader reader(t, "", {"port", "a", "b", "c", "d", "e", "mode"}, sink_);
    EXPECT_EQ(reader.Integer("port", 1, 65535), std::nullopt);
    EXPECT_EQ(reader.Duration("a"), std::nullopt);
    EXPECT_EQ(reader.Duration("b"), std::nullopt);
    EXPECT_EQ(reader.Duration("c"), std::nullopt);
    EXPECT_EQ(reader.Duration("d", absl::ZeroDuration(), absl::Minutes(10)), std::nullopt);
    EXPECT_EQ(reader.Duration("e", absl::ZeroDuration(), absl::InfiniteDuration()), std::nullopt);
    EXPECT_EQ(reader.Duration("b", absl::ZeroDuration(), absl::InfiniteDuration()),
              absl::ZeroDuration());
    EXPECT_EQ(reader.Enum("mode", {"a", "b"}), std::nullopt);
  }
  EXPECT_THAT(
      problems_,
      ElementsAre("2:8 port: must be 1..65535, got 0",
                  "3:5 a: \"60\" is not a duration; expected a duration string such as \"500ms\", "
                  "\"60s\", \"5m\"",
                  "4:5 b: must be a finite duration > 0, got \"0s\"",
                  "5:5 c: must be a finite duration > 0, got \"inf\"",
                  "6:5 d: must be 0..10m, got \"20m\"",
                  "7:5 e: must be a finite duration >= 0, got \"-1s\"",
                  "8:8 mode: \"c\" is not one of a | b"));
}

TEST_F(TomlTableTest, RequiredAndNonEmptyStrings) {
  Parse("[t]\nempty = \"\"\nother = \"\"\n");
  {
    TomlTableReader reader(Table("t"), "t", {"empty", "other", "missing"}, sink_);
    EXPECT_EQ(reader.RequiredString("missing", "the user name"), std::nullopt);
    EXPECT_EQ(reader.RequiredString("empty", "the user name"), std::nullopt);
    EXPECT_EQ(reader.NonEmptyString("other"), std::nullopt);
    EXPECT_EQ(reader.String("other"), "");
    EXPECT_FALSE(reader.Require("missing", "a list"));
    EXPECT_TRUE(reader.Require("empty", "a list"));
  }
  // A missing key is reported at its table.
  EXPECT_THAT(problems_,
              ElementsAre("1:1 t.missing: required (the user name)",
                          "2:9 t.empty: must not be empty (the user name)",
                          "3:9 t.other: must not be empty", "1:1 t.missing: required (a list)"));
}

TEST_F(TomlTableTest, UnknownKeysGetSuggestionsOrHintsAndNeverTheirValue) {
  const toml::table& t = Parse(R"([[listener]]
tsl = "S3cr3t-typo"
colour = "S3cr3t-far"
password = "S3cr3t-hint"
port = 1
)");
  {
    const toml::table& listener = *t.get("listener")->as_array()->get(0)->as_table();
    TomlTableReader reader(listener, "listener[0]", {"port", "tls"}, sink_,
                           {{"password", "use password_file"}});
    EXPECT_EQ(reader.Integer("port", 1, 2), 1);
  }
  // Sorted by the table's key order, which tomlplusplus keeps sorted by name.
  EXPECT_THAT(problems_,
              ElementsAre("3:1 listener[0].colour: unknown key (known keys: port, tls)",
                          "4:1 listener[0].password: unknown key; use password_file",
                          "2:1 listener[0].tsl: unknown key; did you mean \"tls\"? (known keys: "
                          "port, tls)"));
  for (const std::string& problem : problems_) EXPECT_THAT(problem, Not(HasSubstr("S3cr3t")));
}

TEST_F(TomlTableTest, RootKeysHaveNoPrefix) {
  const toml::table& t = Parse("[gatway]\n");
  { TomlTableReader reader(t, "", {"gateway", "listener"}, sink_); }
  EXPECT_THAT(problems_, ElementsAre("1:2 gatway: unknown key; did you mean \"gateway\"? (known "
                                     "keys: gateway, listener)"));
}

TEST_F(TomlTableTest, StringListsReportEachElementAtItsPath) {
  Parse(R"([s]
groups = ["a", 1, ""]
empty = []
single = "one"
table = { x = 1 }
)");
  std::vector<std::string> seen;
  {
    TomlTableReader reader(Table("s"), "s", {"groups", "empty", "single", "table"}, sink_);
    EXPECT_FALSE(reader.Strings(
        "groups", [&](const std::string& value, const toml::node&, const std::string& path) {
          seen.push_back(path + "=" + value);
        }));
    EXPECT_EQ(reader.StringList("empty"), std::nullopt);
    EXPECT_EQ(reader.StringList("empty", {.empty = TomlStringList::Empty::kNeedsOne}),
              std::nullopt);
    EXPECT_EQ(reader.StringList("empty", {.empty = TomlStringList::Empty::kAllowed}),
              std::vector<std::string>{});
    EXPECT_EQ(reader.StringList("single"), std::nullopt);
    EXPECT_EQ(reader.StringList("single", {.single_string = true}),
              std::vector<std::string>{"one"});
    EXPECT_EQ(reader.StringList("table", {.single_string = true}), std::nullopt);
  }
  EXPECT_THAT(seen, ElementsAre("s.groups[0]=a"));
  EXPECT_THAT(problems_,
              ElementsAre("2:16 s.groups[1]: expected a string, got integer",
                          "2:19 s.groups[2]: must not be empty",
                          "3:9 s.empty: must not be empty; omit the key instead",
                          "3:9 s.empty: must name at least one value",
                          "4:10 s.single: expected an array of strings, got string",
                          "5:9 s.table: expected a string or an array of strings, got table"));
}

TEST_F(TomlTableTest, ForEachTableVisitsTablesAndReportsTheRest) {
  const toml::table& t = Parse("scope = [{ name = \"a\" }, 5, { name = \"b\" }]\nissuer = 1\n");
  std::vector<std::string> visited;
  auto visit = [&](const toml::table& table, const std::string& path, size_t index) {
    visited.push_back(path + "#" + std::to_string(index) + "=" +
                      table.get("name")->as_string()->get());
  };
  ForEachTomlTable(*t.get("scope"), "scope", sink_, visit);
  ForEachTomlTable(*t.get("issuer"), "issuer", sink_, visit);
  EXPECT_THAT(visited, ElementsAre("scope[0]#0=a", "scope[2]#2=b"));
  EXPECT_THAT(problems_,
              ElementsAre("1:26 scope[1]: expected a table, got integer",
                          "2:10 issuer: expected an array of tables ([[issuer]]), got integer"));
}

TEST_F(TomlTableTest, UniqueNamesReportTheLaterTable) {
  const toml::table& t = Parse(R"(
[[target]]
name = "app"
[[target]]
name = "app"
[[target]]
name = ""
[[target]]
name = ""
[[target]]
name = "app"
)");
  TomlUniqueNames names("target");
  ForEachTomlTable(*t.get("target"), "target", sink_,
                   [&](const toml::table& table, const std::string& path, size_t index) {
                     names.Add(table, path, index, table.get("name")->as_string()->get(), sink_);
                   });
  EXPECT_THAT(problems_,
              ElementsAre("5:8 target[1].name: duplicate target name \"app\" (also target[0])",
                          "11:8 target[4].name: duplicate target name \"app\" (also target[0])"));
  // A default value (the key is absent) is reported at its table.
  problems_.clear();
  const toml::array& tables = *t.get("target")->as_array();
  TomlUniqueNames labels("target", "label");
  labels.Add(*tables.get(0)->as_table(), "target[0]", 0, "default", sink_);
  labels.Add(*tables.get(1)->as_table(), "target[1]", 1, "default", sink_);
  EXPECT_THAT(problems_, ElementsAre("4:1 target[1].label: duplicate target label \"default\" "
                                     "(also target[0])"));
  TomlUniqueNames urls("issuer", "issuer");
  EXPECT_EQ(urls.Earlier("https://a", 0), std::nullopt);
  EXPECT_EQ(urls.Earlier("https://b", 1), std::nullopt);
  EXPECT_EQ(urls.Earlier("https://a", 2), 0u);
}

}  // namespace
}  // namespace pgb
