#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdint>
#include <iterator>
#include <memory>
#include <string>

#include "core/audit/record.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pgb::audit {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr std::string_view kPrev =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

std::string Json(const AuditRecord& r, SerializeOptions options = {}, uint64_t seq = 7) {
  std::string out;
  AppendRecordJson(r, options, seq, kPrev, &out);
  return out;
}

TEST(AuditRecordTest, SlotIsFixedSize) {
  EXPECT_EQ(sizeof(AuditRecord), 4096u);
  EXPECT_EQ(alignof(AuditRecord), 64u);
}

TEST(AuditRecordTest, StatementGolden) {
  auto r = std::make_unique<AuditRecord>();
  r->kind = AuditKind::kStatement;
  r->start_us = 1714564800123456;  // 2024-05-01T12:00:00.123456Z
  r->end_us = 1714564800124000;
  r->session_id = 42;
  r->shard = 3;
  r->protocol = AuditProtocol::kExtended;
  policy::Identity id;
  id.method = policy::AuthMethod::kToken;
  id.subject = "ci-bot-7";
  id.issuer = "https://idp.example";
  id.groups = {"read-only", "ci"};
  id.claims = {{"repo", "acme/app"}};
  r->SetIdentity(id);
  sockaddr_in in = {};
  in.sin_family = AF_INET;
  in.sin_port = htons(50123);
  ::inet_pton(AF_INET, "10.1.2.3", &in.sin_addr);
  r->SetClientAddress(reinterpret_cast<const sockaddr*>(&in));
  r->SetApplicationName("psql");
  r->SetTarget("app");
  r->SetDatabaseRole("pgb_s42");
  r->SetStatement("SELECT * FROM t WHERE name = $1");
  r->AddParameter("O'Brien \"x\"");
  r->AddNullParameter();
  r->fingerprint = 0x0123456789abcdefULL;
  r->decision = AuditDecision::kAllow;
  r->SetRule("readers");
  r->SetCommandTag("SELECT 2");
  r->SetRows(2);
  r->bytes_in = 120;
  r->bytes_out = 640;
  r->masked_values = 1;
  EXPECT_EQ(
      Json(*r, {StatementText::kFull, ParameterMode::kOn}),
      R"({"v":2,"seq":7,"kind":"statement","start":"2024-05-01T12:00:00.123456Z",)"
      R"("end":"2024-05-01T12:00:00.124000Z","duration_us":544,"session":42,"shard":3,)"
      R"("protocol":"extended","identity":{"method":"token","subject":"ci-bot-7",)"
      R"("issuer":"https://idp.example","groups":["read-only","ci"],"claims":{"repo":"acme/app"}},)"
      R"("client":"10.1.2.3:50123","application_name":"psql","target":"app","db_role":"pgb_s42",)"
      R"("statement":"SELECT * FROM t WHERE name = $1","parameters":["O'Brien \"x\"",null],)"
      R"("fingerprint":"0123456789abcdef","decision":"allow","rule":"readers",)"
      R"("command_tag":"SELECT 2","rows":2,"bytes_in":120,"bytes_out":640,"masked_values":1,)"
      R"("prev":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"})"
      "\n");
  // Redacted: lengths only. Off: no parameters at all.
  EXPECT_THAT(Json(*r, {StatementText::kFull, ParameterMode::kRedacted}),
              HasSubstr(R"("parameters":[11,null])"));
  EXPECT_THAT(Json(*r, {StatementText::kFull, ParameterMode::kOff}), Not(HasSubstr("parameters")));
}

TEST(AuditRecordTest, SessionEventsOmitWhatDoesNotApply) {
  auto r = std::make_unique<AuditRecord>();
  r->kind = AuditKind::kAuthFailed;
  r->start_us = 1714564800000000;
  r->session_id = 9;
  r->SetSqlState("28000");
  r->SetMessage("token expired");
  sockaddr_in6 in6 = {};
  in6.sin6_family = AF_INET6;
  in6.sin6_port = htons(6432);
  ::inet_pton(AF_INET6, "::1", &in6.sin6_addr);
  r->SetClientAddress(reinterpret_cast<const sockaddr*>(&in6));
  EXPECT_EQ(Json(*r),
            R"({"v":2,"seq":7,"kind":"auth_failed","start":"2024-05-01T12:00:00.000000Z",)"
            R"("session":9,"shard":0,"client":"[::1]:6432","sqlstate":"28000",)"
            R"("message":"token expired","prev":")" +
                std::string(kPrev) + "\"}\n");
}

// A Unix-domain socket client reads as PostgreSQL's "[local]", with the
// connecting process from SO_PEERCRED.
TEST(AuditRecordTest, LocalClientIsNamedWithItsProcess) {
  auto r = std::make_unique<AuditRecord>();
  r->kind = AuditKind::kConnect;
  r->session_id = 9;
  sockaddr un = {};
  un.sa_family = AF_UNIX;
  r->SetClientAddress(&un);
  EXPECT_EQ(r->ClientAddressText(), "[local]");
  int32_t pid = 0;
  uint32_t uid = 0;
  EXPECT_FALSE(r->LocalClient(&pid, &uid));
  EXPECT_THAT(Json(*r), HasSubstr(R"("client":"[local]","prev")"));
  r->SetLocalClient(4242, 4294967295u);
  ASSERT_TRUE(r->LocalClient(&pid, &uid));
  EXPECT_EQ(pid, 4242);
  EXPECT_EQ(uid, 4294967295u);
  EXPECT_EQ(Json(*r), R"({"v":2,"seq":7,"kind":"connect","session":9,"shard":0,"client":"[local]",)"
                      R"("client_pid":4242,"client_uid":4294967295,"prev":")" +
                          std::string(kPrev) + "\"}\n");
  // An IP address afterwards (a reused slot) forgets the process.
  sockaddr_in in = {};
  in.sin_family = AF_INET;
  r->SetClientAddress(reinterpret_cast<const sockaddr*>(&in));
  EXPECT_FALSE(r->LocalClient(&pid, &uid));
  r->Reset();
  EXPECT_FALSE(r->LocalClient(&pid, &uid));
}

TEST(AuditRecordTest, CompletionNamesItsStatementAndTheOutcome) {
  auto r = std::make_unique<AuditRecord>();
  r->kind = AuditKind::kCompletion;
  r->start_us = 1714564800000000;
  r->end_us = 1714564800000250;
  r->session_id = 42;
  r->statement_id = 3;
  r->outcome = AuditOutcome::kUnknown;
  r->SetMessage("the session ended before the database answered: connection closed");
  r->bytes_out = 12;
  EXPECT_EQ(Json(*r),
            R"({"v":2,"seq":7,"kind":"completion","start":"2024-05-01T12:00:00.000000Z",)"
            R"("end":"2024-05-01T12:00:00.000250Z","duration_us":250,"session":42,)"
            R"("statement_id":3,"shard":0,"outcome":"unknown",)"
            R"("message":"the session ended before the database answered: connection closed",)"
            R"("bytes_out":12,"prev":")" +
                std::string(kPrev) + "\"}\n");
  r->Reset();
  EXPECT_EQ(r->statement_id, 0u);
  EXPECT_EQ(r->outcome, AuditOutcome::kNone);
}

TEST(AuditRecordTest, ResetClearsEverything) {
  auto r = std::make_unique<AuditRecord>();
  r->SetStatement("DELETE FROM x");
  r->SetRows(5);
  r->decision = AuditDecision::kDeny;
  r->Reset();
  EXPECT_FALSE(r->Has(AuditField::kStatement));
  EXPECT_EQ(Json(*r), std::string(R"({"v":2,"seq":7,"kind":"statement","shard":0,"prev":")") +
                          std::string(kPrev) + "\"}\n");
}

// WriteRecordJson writes into room the caller reserved from
// RecordJsonBound: the worst case (every field set, its bytes all escaped
// to \u00XX, numbers at their widest, lists of the smallest items) must fit.
TEST(AuditRecordTest, WorstCaseRecordFitsItsBound) {
  for (ParameterMode mode : {ParameterMode::kOff, ParameterMode::kRedacted, ParameterMode::kOn}) {
    for (int parameters_first = 0; parameters_first < 2; ++parameters_first) {
      auto r = std::make_unique<AuditRecord>();
      const std::string control(5000, '\x01');
      r->kind = AuditKind::kTokenExpired;
      r->decision = AuditDecision::kApprovalTimedOut;
      r->protocol = AuditProtocol::kFunctionCall;
      r->start_us = INT64_MIN + 1;
      r->end_us = INT64_MAX;
      r->duration_us = INT64_MAX;
      r->session_id = r->fingerprint = r->rows = r->bytes_in = r->bytes_out = UINT64_MAX;
      r->has_rows = true;
      r->masked_values = UINT32_MAX;
      r->shard = UINT16_MAX;
      r->SetSqlState("\x01\x01\x01\x01\x01");
      sockaddr_in6 in6 = {};
      in6.sin6_family = AF_INET6;
      in6.sin6_port = htons(65535);
      ::inet_pton(AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &in6.sin6_addr);
      r->SetClientAddress(reinterpret_cast<const sockaddr*>(&in6));
      if (parameters_first == 1) {
        for (int i = 0; i < 200; ++i) r->AddNullParameter();
        for (int i = 0; i < 100; ++i) r->AddRedactedParameter(UINT32_MAX);
      }
      policy::Identity id;
      id.subject = id.issuer = id.client_id = id.run_id = control;
      for (int i = 0; i < 50; ++i) id.groups.push_back("\x01");
      for (int i = 0; i < 50; ++i) id.claims.emplace_back("\x01", "");
      r->SetIdentity(id);
      r->SetApplicationName(control);
      r->SetTarget(control);
      r->SetDatabaseRole(control);
      r->SetStatement(control);
      for (int i = 0; i < 200; ++i) r->AddParameter("");
      r->SetRule(control);
      r->SetApprovalId(control);
      r->SetCommandTag(control);
      r->SetMessage(control);
      ASSERT_GT(r->arena_used(), AuditRecord::kArenaBytes - 64);
      const std::string normalized_text(3000, '\x02');
      const NormalizedStatement normalized{normalized_text, ""};
      for (const NormalizedStatement* n :
           {static_cast<const NormalizedStatement*>(nullptr), &normalized}) {
        const size_t bound = RecordJsonBound(*r, n);
        std::string room(bound + 64, '#');
        const SerializeOptions options{StatementText::kFull, mode};
        char* end = WriteRecordJson(*r, options, UINT64_MAX, kPrev, room.data(), n);
        const size_t written = static_cast<size_t>(end - room.data());
        EXPECT_LE(written, bound);
        EXPECT_EQ(room.substr(bound), std::string(64, '#'));
        std::string appended;
        AppendRecordJson(*r, options, UINT64_MAX, kPrev, &appended, n);
        EXPECT_EQ(room.substr(0, written), appended);
        EXPECT_THAT(appended, HasSubstr("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"));
      }
    }
  }
}

TEST(AuditRecordTest, LongStatementIsTruncatedAtACharacterWithFlagAndLength) {
  auto r = std::make_unique<AuditRecord>();
  std::string sql = "SELECT '";
  while (sql.size() < 10000) sql += "\xC3\xA9";  // 2-byte characters
  sql += "'";
  r->SetStatement(sql);
  r->SetCommandTag("SELECT 1");
  r->SetMessage(std::string(300, 'm'));
  EXPECT_TRUE(r->IsTruncated(AuditField::kStatement));
  EXPECT_FALSE(r->IsTruncated(AuditField::kCommandTag));
  EXPECT_FALSE(r->IsTruncated(AuditField::kMessage));  // kept room after the statement
  const std::string_view kept = r->Get(AuditField::kStatement);
  EXPECT_LT(kept.size(), AuditRecord::kArenaBytes);
  EXPECT_GT(kept.size(), 2500u);
  EXPECT_EQ(sql.compare(0, kept.size(), kept), 0);
  const std::string json = Json(*r);
  EXPECT_THAT(json, HasSubstr("\"statement_bytes\":" + std::to_string(sql.size())));
  EXPECT_THAT(json, HasSubstr(R"("truncated":["statement"])"));
  EXPECT_THAT(json, Not(HasSubstr("\xEF\xBF\xBD")));  // cut between characters
}

TEST(AuditRecordTest, ListsStopAtTheirCapAndKeepPairsWhole) {
  auto r = std::make_unique<AuditRecord>();
  policy::Identity id;
  id.subject = "s";
  for (int i = 0; i < 100; ++i) id.groups.push_back("group-" + std::to_string(i));
  for (int i = 0; i < 100; ++i) id.claims.emplace_back("claim" + std::to_string(i), "value");
  r->SetIdentity(id);
  EXPECT_TRUE(r->IsTruncated(AuditField::kGroups));
  EXPECT_TRUE(r->IsTruncated(AuditField::kClaims));
  size_t items = 0;
  AuditRecord::ListItem item;
  for (auto reader = r->List(AuditField::kClaims); reader.Next(&item);) ++items;
  EXPECT_GT(items, 0u);
  EXPECT_EQ(items % 2, 0u);
  const std::string json = Json(*r);
  EXPECT_THAT(json, HasSubstr(R"("truncated":["groups","claims"])"));
  EXPECT_THAT(json, HasSubstr(R"("group-0","group-1")"));
}

TEST(AuditRecordTest, ParametersGrowAfterOtherFields) {
  auto r = std::make_unique<AuditRecord>();
  r->AddParameter("1");
  r->SetTarget("app");  // a field between two parameters
  r->AddParameter("2");
  r->AddRedactedParameter(12345);
  EXPECT_THAT(Json(*r, {StatementText::kFull, ParameterMode::kOn}),
              HasSubstr(R"("parameters":["1","2",12345])"));
  EXPECT_EQ(r->Get(AuditField::kTarget), "app");
}

TEST(AuditRecordTest, NormalizedStatementReplacesTextOrReportsError) {
  auto r = std::make_unique<AuditRecord>();
  r->SetStatement("SELECT 'secret'");
  std::string out;
  NormalizedStatement normalized{"SELECT $1", ""};
  AppendRecordJson(*r, {}, 1, kPrev, &out, &normalized);
  EXPECT_THAT(out, HasSubstr(R"("statement":"SELECT $1")"));
  EXPECT_THAT(out, Not(HasSubstr("secret")));
  out.clear();
  NormalizedStatement failed{"", "cannot normalize: syntax error"};
  AppendRecordJson(*r, {}, 1, kPrev, &out, &failed);
  EXPECT_THAT(out, Not(HasSubstr("secret")));
  EXPECT_THAT(out, HasSubstr(R"("statement_error":"cannot normalize: syntax error")"));
}

TEST(AuditRecordTest, TimestampsBeforeTheEpochAndAtSecondBoundaries) {
  std::string out;
  AppendTimestamp(-1, &out);
  EXPECT_EQ(out, "1969-12-31T23:59:59.999999Z");
  out.clear();
  AppendTimestamp(1'000'000, &out);
  EXPECT_EQ(out, "1970-01-01T00:00:01.000000Z");
}

}  // namespace
}  // namespace pgb::audit
