// `[[listener]] socket_dir`, `socket_mode`, `socket_group`: a Unix-domain
// socket listener through the whole config loader: defaults, the socket's
// path, and errors naming the key (relative, missing, too long for sun_path,
// keys that only TCP listeners take).
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pgb {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kIssuer[] =
    "[[issuer]]\nname = \"demo\"\nissuer = \"https://demo.local\"\naudience = \"pgbastion\"\n"
    "jwks_file = \"jwks.json\"\n";

const std::string& TestDir() {
  static const std::string* dir = [] {
    char pattern[] = "/tmp/pgb_config_unix_listener_test.XXXXXX";
    auto* path = new std::string(::mkdtemp(pattern));
    std::ofstream(*path + "/jwks.json")
        << R"({"keys":[{"kty":"EC","crv":"P-256","kid":"a3",)"
        << R"("x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",)"
        << R"("y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]})";
    std::filesystem::create_directory(*path + "/open");
    ::chmod((*path + "/open").c_str(), 01777);  // as /tmp
    std::atexit([] { std::filesystem::remove_all(TestDir()); });
    return path;
  }();
  return *dir;
}

// `listeners` are the bodies of [[listener]] tables; `rest` follows the target.
absl::StatusOr<Config> Parse(std::vector<std::string> listeners, std::string_view rest = "") {
  std::string text;
  for (const std::string& l : listeners) text += "[[listener]]\n" + l + "\n";
  text +=
      "[[target]]\nname = \"app\"\nhost = \"127.0.0.1\"\nuser = \"pgbastion\"\n"
      "[[user]]\nname = \"alice\"\nscram_verifier = "
      "\"SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0c2FsdA==$h7BOWJYfmpnYU9QEagtbeT58Pku9IfWsqPsXwgzbHYs=:"
      "s+rNM0M7MbUlI1EDLJs+ei56p3ONXezfDdbGJoCFPAY=\"\n"
      "[[scope]]\nname = \"agents\"\nsubjects = [\"*\"]\nprofile = \"read-only\"\n" +
      std::string(rest);
  return ParseConfig(text, "test.toml", TestDir());
}

std::string SocketDir() { return "socket_dir = \"" + TestDir() + "\"\n"; }

std::string ErrorOf(std::vector<std::string> listeners, std::string_view rest = "") {
  absl::StatusOr<Config> config = Parse(listeners, rest);
  EXPECT_FALSE(config.ok());
  return config.ok() ? "" : std::string(config.status().message());
}

TEST(ConfigUnixListenerTest, DefaultsAndThePostgresSocketName) {
  absl::StatusOr<Config> config = Parse({"port = 6432\n", "port = 6432\n" + SocketDir()});
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->listeners.size(), 2u);
  const ListenerConfig& l = config->listeners[1];
  EXPECT_TRUE(l.local());
  EXPECT_FALSE(config->listeners[0].local());
  EXPECT_EQ(l.SocketPath(), TestDir() + "/.s.PGSQL.6432");
  EXPECT_EQ(l.LockFilePath(), TestDir() + "/.s.PGSQL.6432.lock");
  EXPECT_EQ(l.socket_mode, 0770u);
  EXPECT_EQ(l.socket_group, -1);
  EXPECT_EQ(l.tls, ListenerTls::kDisabled);
  EXPECT_THAT(l.auth, ElementsAre(LoginMethod::kPassword));
}

TEST(ConfigUnixListenerTest, ModeGroupAndTrailingSlash) {
  group* root = ::getgrgid(0);
  ASSERT_NE(root, nullptr);
  absl::StatusOr<Config> config =
      Parse({"port = 7000\nsocket_dir = \"" + TestDir() + "/\"\nsocket_mode = \"0777\"\n" +
             "socket_group = \"" + root->gr_name + "\"\n"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listeners[0].SocketPath(), TestDir() + "/.s.PGSQL.7000");
  EXPECT_EQ(config->listeners[0].socket_mode, 0777u);
  EXPECT_EQ(config->listeners[0].socket_group, 0);
}

// A token never crosses a network over a Unix socket: allowed without TLS.
TEST(ConfigUnixListenerTest, TokensAreAcceptedWithoutTls) {
  absl::StatusOr<Config> config = Parse({SocketDir()}, kIssuer);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(config->listeners[0].auth, ElementsAre(LoginMethod::kPassword, LoginMethod::kToken));
  config = Parse({SocketDir() + "auth = [\"token\"]\n"}, kIssuer);
  ASSERT_TRUE(config.ok()) << config.status();
}

// ... but not from a directory where another user could put a socket of its own.
TEST(ConfigUnixListenerTest, TokensNeedADirectoryOnlyTheGatewayWrites) {
  const std::string open_dir = "socket_dir = \"" + TestDir() + "/open\"\n";
  EXPECT_THAT(ErrorOf({open_dir + "auth = [\"token\"]\n"}, kIssuer),
              HasSubstr("listener[0].socket_dir: \"" + TestDir() +
                        "/open\" is writable by every user: with auth \"token\""));
  EXPECT_THAT(ErrorOf({open_dir}, kIssuer), HasSubstr("writable by every user"));
  EXPECT_TRUE(Parse({open_dir}).ok());  // SCRAM reveals nothing to a fake server
}

TEST(ConfigUnixListenerTest, RelativeMissingAndTooLongDirectories) {
  EXPECT_THAT(ErrorOf({"socket_dir = \"run/pgbastion\"\n"}),
              HasSubstr("listener[0].socket_dir: \"run/pgbastion\" must be an absolute path"));
  EXPECT_THAT(ErrorOf({"socket_dir = \"" + TestDir() + "/missing\"\n"}),
              HasSubstr("listener[0].socket_dir: cannot use \"" + TestDir() +
                        "/missing\": No such file or directory"));
  EXPECT_THAT(
      ErrorOf({"socket_dir = \"" + TestDir() + "/jwks.json\"\n"}),
      HasSubstr("listener[0].socket_dir: \"" + TestDir() + "/jwks.json\" is not a directory"));
  const std::string long_dir = "/" + std::string(100, 'd');  // + "/.s.PGSQL.6432": 115 bytes
  EXPECT_THAT(ErrorOf({"socket_dir = \"" + long_dir + "\"\n"}),
              HasSubstr("listener[0].socket_dir: the socket's path \"" + long_dir +
                        "/.s.PGSQL.6432\" is 115 bytes; a Unix-domain socket's path may have at "
                        "most 107"));
  EXPECT_THAT(ErrorOf({"socket_dir = 5\n"}),
              HasSubstr("listener[0].socket_dir: expected a string"));
}

TEST(ConfigUnixListenerTest, ModeAndGroupErrors) {
  for (const char* mode : {"\"777x\"", "\"1777\"", "\"77\"", "\"07777\""}) {
    EXPECT_THAT(ErrorOf({SocketDir() + "socket_mode = " + mode + "\n"}),
                HasSubstr("listener[0].socket_mode: "))
        << mode;
  }
  EXPECT_THAT(ErrorOf({SocketDir() + "socket_mode = \"999\"\n"}),
              HasSubstr("listener[0].socket_mode: \"999\" is not a file mode; write it in octal"));
  EXPECT_THAT(ErrorOf({SocketDir() + "socket_mode = 511\n"}),
              HasSubstr("listener[0].socket_mode: expected a string"));
  EXPECT_THAT(ErrorOf({SocketDir() + "socket_group = \"no-such-group-pgb\"\n"}),
              HasSubstr("listener[0].socket_group: no group named \"no-such-group-pgb\""));
  EXPECT_THAT(ErrorOf({"socket_mode = \"0770\"\n"}),
              HasSubstr("listener[0].socket_mode: only used with socket_dir"));
}

TEST(ConfigUnixListenerTest, TcpAndTlsKeysAreRefused) {
  for (const char* key : {"address = \"127.0.0.1\"", "tls = \"disabled\"", "tls_cert = \"a.pem\"",
                          "tls_key = \"a.pem\"", "certificate_user_match = \"ignore\""}) {
    EXPECT_THAT(ErrorOf({SocketDir() + key + "\n"}),
                HasSubstr("not used with socket_dir: a Unix-domain socket listener has no address "
                          "and no TLS"))
        << key;
  }
  EXPECT_THAT(ErrorOf({SocketDir() + "auth = [\"certificate\"]\n"}),
              HasSubstr("listener[0].auth: \"certificate\" needs TLS, which a Unix-domain socket "
                        "does not carry"));
}

TEST(ConfigUnixListenerTest, DuplicateSocketsAreRefused) {
  EXPECT_THAT(ErrorOf({SocketDir(), "socket_dir = \"" + TestDir() + "/.\"\n"}),
              HasSubstr("listener[1]: duplicate listener " + TestDir() +
                        "/.s.PGSQL.6432 (also listener[0])"));
  EXPECT_TRUE(Parse({SocketDir(), SocketDir() + "port = 6433\n"}).ok());
}

}  // namespace
}  // namespace pgb
