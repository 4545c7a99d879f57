// The login throttle's table (core/login_throttle.h): waits grow with
// failures and reset after quiet time, addresses queue parallel attempts,
// user names never lock out, memory stays bounded under a flood of addresses,
// and the [login] keys parse with errors naming the key.
#include "core/login_throttle.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <string>

#include "core/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pgb {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSecond = 1000 * kMs;

sockaddr_storage V4(const char* text) {
  sockaddr_storage s{};
  auto& a = reinterpret_cast<sockaddr_in&>(s);
  a.sin_family = AF_INET;
  a.sin_port = htons(40000);
  inet_pton(AF_INET, text, &a.sin_addr);
  return s;
}

sockaddr_storage V6(const char* text, uint16_t port = 40000) {
  sockaddr_storage s{};
  auto& a = reinterpret_cast<sockaddr_in6&>(s);
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(port);
  inet_pton(AF_INET6, text, &a.sin6_addr);
  return s;
}

LoginThrottleConfig TestConfig() {
  LoginThrottleConfig c;
  c.free_failures = 3;
  c.delay = absl::Milliseconds(100);
  c.max_delay = absl::Milliseconds(800);
  c.reset_after = absl::Seconds(60);
  c.tracked = 64;
  return c;
}

TEST(LoginThrottleTest, AddressKeys) {
  EXPECT_EQ(LoginThrottle::AddressKey(V4("10.0.0.1")), LoginThrottle::AddressKey(V4("10.0.0.1")));
  EXPECT_NE(LoginThrottle::AddressKey(V4("10.0.0.1")), LoginThrottle::AddressKey(V4("10.0.0.2")));
  // IPv4-mapped IPv6 is the IPv4 address; IPv6 counts per /64, ports never.
  EXPECT_EQ(LoginThrottle::AddressKey(V6("::ffff:10.0.0.1")),
            LoginThrottle::AddressKey(V4("10.0.0.1")));
  EXPECT_EQ(LoginThrottle::AddressKey(V6("2001:db8:1:2::1", 1)),
            LoginThrottle::AddressKey(V6("2001:db8:1:2:ffff::9", 2)));
  EXPECT_NE(LoginThrottle::AddressKey(V6("2001:db8:1:2::1")),
            LoginThrottle::AddressKey(V6("2001:db8:1:3::1")));
}

TEST(LoginThrottleTest, WaitsGrowAfterTheFreeFailuresAndAreCapped) {
  const LoginThrottleConfig config = TestConfig();
  LoginThrottle t;
  const uint64_t a = LoginThrottle::AddressKey(V4("192.0.2.7"));
  int64_t now = 1000 * kSecond;
  std::vector<int64_t> waits;
  for (int i = 0; i < 8; ++i) {
    const int64_t wait = t.Admit(config, a, "alice", now);
    waits.push_back(wait);
    now += wait;  // the attempt is answered after its wait, and fails at once
    t.OnFailure(config, a, "alice", now, "192.0.2.7");
  }
  EXPECT_EQ(waits,
            (std::vector<int64_t>{0, 0, 0, 100 * kMs, 200 * kMs, 400 * kMs, 800 * kMs, 800 * kMs}));
  EXPECT_EQ(t.counters().failures, 8u);
  EXPECT_EQ(t.counters().delayed, 5u);
  EXPECT_EQ(t.counters().delay_ns, uint64_t{2300} * kMs);
  EXPECT_EQ(t.counters().bursts, 2u);  // the address and the user name, once each
}

TEST(LoginThrottleTest, OtherAddressesAndUsersDoNotWait) {
  const LoginThrottleConfig config = TestConfig();
  LoginThrottle t;
  const uint64_t attacker = LoginThrottle::AddressKey(V4("192.0.2.7"));
  const int64_t now = 1000 * kSecond;
  for (int i = 0; i < 10; ++i) t.OnFailure(config, attacker, "alice", now, "192.0.2.7");
  EXPECT_GT(t.Admit(config, attacker, "bob", now), 0);  // the address waits, whoever logs in
  EXPECT_EQ(t.Admit(config, LoginThrottle::AddressKey(V4("192.0.2.8")), "bob", now), 0);
  // The guessed-at name waits a little from anywhere, but at most max_delay.
  const int64_t wait = t.Admit(config, LoginThrottle::AddressKey(V4("192.0.2.8")), "alice", now);
  EXPECT_GT(wait, 0);
  EXPECT_LE(wait, 800 * kMs);
}

TEST(LoginThrottleTest, ParallelAttemptsFromOneAddressQueue) {
  const LoginThrottleConfig config = TestConfig();
  LoginThrottle t;
  const uint64_t a = LoginThrottle::AddressKey(V4("192.0.2.7"));
  const int64_t now = 1000 * kSecond;
  for (int i = 0; i < 10; ++i) t.OnFailure(config, a, "u" + std::to_string(i), now, "x");
  // Ten connections at once: each is answered one max_delay after the last.
  for (int i = 1; i <= 10; ++i) {
    EXPECT_EQ(t.Admit(config, a, "someone", now), i * 800 * kMs) << i;
  }
}

TEST(LoginThrottleTest, QuietTimeResets) {
  const LoginThrottleConfig config = TestConfig();
  LoginThrottle t;
  const uint64_t a = LoginThrottle::AddressKey(V4("192.0.2.7"));
  int64_t now = 1000 * kSecond;
  for (int i = 0; i < 10; ++i) t.OnFailure(config, a, "alice", now, "x");
  EXPECT_GT(t.Admit(config, a, "alice", now), 0);
  now += 61 * kSecond;
  EXPECT_EQ(t.Admit(config, a, "alice", now), 0);
  t.OnFailure(config, a, "alice", now, "x");  // counts from one again
  EXPECT_EQ(t.Admit(config, a, "alice", now), 0);
}

TEST(LoginThrottleTest, DisabledNeverWaits) {
  LoginThrottleConfig config = TestConfig();
  config.enabled = false;
  LoginThrottle t;
  const uint64_t a = LoginThrottle::AddressKey(V4("192.0.2.7"));
  for (int i = 0; i < 20; ++i) t.OnFailure(config, a, "alice", 0, "x");
  EXPECT_EQ(t.Admit(config, a, "alice", 0), 0);
  EXPECT_EQ(t.tracked_addresses(), 0u);
}

TEST(LoginThrottleTest, MemoryIsBoundedUnderManyAddressesAndNames) {
  const LoginThrottleConfig config = TestConfig();  // 64 entries per table
  LoginThrottle t;
  int64_t now = 1000 * kSecond;
  // A sustained attacker keeps failing from one address while a flood of
  // one-shot addresses and names (a botnet, a spray) fills the tables.
  const uint64_t attacker = LoginThrottle::AddressKey(V4("192.0.2.7"));
  for (uint32_t i = 0; i < 100'000; ++i) {
    now += kMs;
    sockaddr_storage s{};
    auto& v6 = reinterpret_cast<sockaddr_in6&>(s);
    v6.sin6_family = AF_INET6;
    std::memcpy(v6.sin6_addr.s6_addr, &i, sizeof(i));
    t.OnFailure(config, LoginThrottle::AddressKey(s), "spray" + std::to_string(i), now, "x");
    if (i % 8 == 0) t.OnFailure(config, attacker, "alice", now, "x");
    ASSERT_LE(t.tracked_addresses(), 64u);
    ASSERT_LE(t.tracked_users(), 64u);
  }
  EXPECT_GT(t.counters().evicted, 100'000u);
  // The busiest, most recent attacker is among the survivors.
  EXPECT_GT(t.Admit(config, attacker, "bob", now), 0);
}

// [login] through the whole config loader: defaults, values, errors naming the key.
std::string Doc(std::string_view login) {
  return "[[listener]]\nport = 6432\n[[target]]\nname = \"app\"\nhost = \"127.0.0.1\"\n"
         "user = \"pgbastion\"\n[[user]]\nname = \"alice\"\n"
         "scram_verifier = \"SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0c2FsdA==$"
         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
         "\"\n"
         "[[scope]]\nname = \"all\"\nsubjects = [\"*\"]\nprofile = \"read-only\"\n" +
         std::string(login);
}

TEST(LoginThrottleConfigTest, DefaultsAndValues) {
  absl::StatusOr<Config> config = ParseConfig(Doc(""), "test.toml", "");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->login_throttle.enabled);
  EXPECT_EQ(config->login_throttle.free_failures, 5u);
  EXPECT_EQ(config->login_throttle.delay, absl::Milliseconds(250));
  EXPECT_EQ(config->login_throttle.max_delay, absl::Seconds(10));
  EXPECT_EQ(config->login_throttle.reset_after, absl::Minutes(10));
  EXPECT_EQ(config->login_throttle.tracked, 10000u);
  config = ParseConfig(Doc("[login]\nthrottle_after = 2\nthrottle_delay = \"50ms\"\n"
                           "throttle_max_delay = \"1s\"\nthrottle_reset_after = \"30s\"\n"
                           "throttle_tracked = 100\n"),
                       "test.toml", "");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->login_throttle.free_failures, 2u);
  EXPECT_EQ(config->login_throttle.delay, absl::Milliseconds(50));
  EXPECT_EQ(config->login_throttle.max_delay, absl::Seconds(1));
  EXPECT_EQ(config->login_throttle.reset_after, absl::Seconds(30));
  EXPECT_EQ(config->login_throttle.tracked, 100u);
  config = ParseConfig(Doc("[login]\nthrottle = false\n"), "test.toml", "");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->login_throttle.enabled);
}

TEST(LoginThrottleConfigTest, ErrorsNameTheKey) {
  const auto error = [](std::string_view login) {
    absl::StatusOr<Config> config = ParseConfig(Doc(login), "test.toml", "");
    EXPECT_FALSE(config.ok()) << login;
    return config.ok() ? std::string() : std::string(config.status().message());
  };
  EXPECT_THAT(error("[login]\nthrottle_delay = \"soon\"\n"), HasSubstr("login.throttle_delay:"));
  EXPECT_THAT(error("[login]\nthrottle_after = -1\n"), HasSubstr("login.throttle_after:"));
  EXPECT_THAT(error("[login]\nthrottle_tracked = 1\n"), HasSubstr("login.throttle_tracked:"));
  EXPECT_THAT(error("[login]\nthrottle_delay = \"2s\"\nthrottle_max_delay = \"1s\"\n"),
              HasSubstr("login.throttle_max_delay: throttle_max_delay (1s) must not be shorter"));
  EXPECT_THAT(error("[login]\nthrotle = true\n"), HasSubstr("login.throtle"));
  absl::StatusOr<Config> config = ParseConfig("login = 3\n" + Doc(""), "test.toml", "");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), HasSubstr("login: expected a table"));
}

}  // namespace
}  // namespace pgb
