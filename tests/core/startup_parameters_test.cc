#include "core/startup_parameters.h"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
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

TEST(StartupParametersTest, SessionSettingsPassInOrder) {
  absl::StatusOr<ClientStartup> s = ReadClientStartup(Packet({{"user", "agent"},
                                                              {"application_name", "psql"},
                                                              {"client_encoding", "UTF8"},
                                                              {"_pq_.compression", "on"},
                                                              {"DateStyle", "ISO"}}));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->user, "agent");
  EXPECT_EQ(s->database, "agent");  // the user's when not given, as PostgreSQL does
  EXPECT_EQ(s->application_name, "psql");
  EXPECT_EQ(s->forwarded,
            (StartupSettings{
                {"application_name", "psql"}, {"client_encoding", "UTF8"}, {"DateStyle", "ISO"}}));
}

TEST(StartupParametersTest, WhatCouldChangeWhoTheSessionIsIsRefused) {
  EXPECT_EQ(Refused({{"user", "a"}, {"options", "-c search_path=evil"}}), "42501");
  EXPECT_EQ(Refused({{"user", "a"}, {"replication", "database"}}), "42501");
  EXPECT_EQ(Refused({{"user", "a"}, {"role", "postgres"}}), "42501");
  EXPECT_EQ(Refused({{"user", "a"}, {"session_authorization", "postgres"}}), "42501");
  // Empty options and replication=false are what drivers send by default.
  EXPECT_EQ(Refused({{"user", "a"}, {"options", ""}, {"replication", "false"}}), "");
  absl::StatusOr<ClientStartup> s = ReadClientStartup(Packet({{"user", "a"}, {"options", "-c x"}}));
  EXPECT_EQ(proto::ErrorFieldsOf(s.status(), "FATAL").hint,
            "Unset PGOPTIONS and use SET after connecting.");
}

TEST(StartupParametersTest, EncodingsThatCouldHideAQuoteAreRefused) {
  EXPECT_EQ(Refused({{"user", "a"}, {"client_encoding", "SJIS"}}), "42501");
  EXPECT_EQ(Refused({{"user", "a"}, {"client_encoding", "gb18030"}}), "42501");
  EXPECT_EQ(Refused({{"user", "a"}, {"client_encoding", "LATIN1"}}), "");
  EXPECT_EQ(Refused({{"user", "a"}, {"client_encoding", "utf-8"}}), "");
  EXPECT_EQ(Refused({{"user", "a"}, {"standard_conforming_strings", "off"}}), "42501");
  EXPECT_EQ(Refused({{"user", "a"}, {"standard_conforming_strings", "on"}}), "");
}

TEST(StartupParametersTest, TheScopesLimitsWinOverTheClientsSettings) {
  std::string client_path;
  const StartupSettings params = BackendStartupParameters(
      "gw_role", "appdb",
      {{"statement_timeout", "0"},
       {"search_path", "mine"},
       {"standard_conforming_strings", "on"},
       {"TimeZone", "UTC"}},
      {{"search_path", "public"}, {"statement_timeout", "5000"}}, &client_path);
  EXPECT_EQ(params, (StartupSettings{{"user", "gw_role"},
                                     {"database", "appdb"},
                                     {"standard_conforming_strings", "on"},
                                     {"TimeZone", "UTC"},
                                     {"search_path", "public"},
                                     {"statement_timeout", "5000"}}));
  // The client's search_path is limited by the scope's: the scope's wins.
  EXPECT_EQ(client_path, "");
  const StartupSettings own = BackendStartupParameters("r", "d", {{"search_path", "mine"}},
                                                       {{"statement_timeout", "1"}}, &client_path);
  EXPECT_EQ(client_path, "mine");
  EXPECT_EQ(own.back(), (std::pair<std::string, std::string>{"statement_timeout", "1"}));
}

}  // namespace
}  // namespace pgb
