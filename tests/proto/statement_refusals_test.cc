#include "proto/statement_refusals.h"

#include <string>

#include "gtest/gtest.h"
#include "proto/frame.h"
#include "proto/messages.h"
#include "proto/protocol.h"

namespace pgb::proto {
namespace {

ErrorFields Refusal(std::string message) {
  return ErrorFields{"ERROR", std::string(sqlstate::kInsufficientPrivilege), std::move(message), "",
                     "ask for a read-write scope"};
}

// The identifier the substitute consists of (Query or Parse).
std::string SubstituteText(const std::string& bytes) {
  MessageResult m = DecodeMessage(bytes, Direction::kFrontend, kDefaultMaxMessageLength);
  EXPECT_EQ(m.status, DecodeStatus::kOk);
  EXPECT_EQ(m.message.total_size, bytes.size());
  if (m.message.type == kPqMsg_Query) return std::string(*ParseQuery(m.message.body));
  EXPECT_EQ(m.message.type, kPqMsg_Parse);
  return std::string(ParseParseMessage(m.message.body)->sql);
}

// What PostgreSQL answers to the substitute.
std::string SyntaxError(std::string_view token) {
  std::string out;
  AppendErrorResponse(
      out, ErrorFields{"ERROR", "42601", "syntax error at or near \"" + std::string(token) + "\"",
                       "", ""});
  return out;
}

ErrorFields Decoded(const std::string& bytes) {
  MessageResult m = DecodeMessage(bytes, Direction::kBackend, kDefaultMaxMessageLength);
  EXPECT_EQ(m.status, DecodeStatus::kOk);
  EXPECT_EQ(m.message.type, kPqMsg_ErrorResponse);
  return *ParseErrorFields(m.message.body);
}

TEST(StatementRefusalsTest, RefusedQueryIsAnsweredWithTheRefusal) {
  StatementRefusals r;
  r.OnClientMessage(kPqMsg_Query);
  std::string to_db;
  r.Refuse(kPqMsg_Query, "", Refusal("DROP TABLE denied by rule x"), to_db);
  const std::string token = SubstituteText(to_db);
  // pgbastion_refused_ and 32 lower-case hex digits: an identifier that is a
  // syntax error on its own.
  ASSERT_EQ(token.size(), 18u + 32u) << token;
  EXPECT_EQ(token.substr(0, 18), "pgbastion_refused_");
  EXPECT_EQ(token.find_first_not_of("0123456789abcdef", 18), std::string::npos) << token;
  EXPECT_TRUE(r.pending());
  std::string to_client;
  EXPECT_TRUE(r.OnBackendError(SyntaxError(token), to_client));
  const ErrorFields e = Decoded(to_client);
  EXPECT_EQ(e.sqlstate, "42501");
  EXPECT_EQ(e.message, "DROP TABLE denied by rule x");
  EXPECT_EQ(e.hint, "ask for a read-write scope");
  EXPECT_EQ(e.severity, "ERROR");
  EXPECT_FALSE(r.pending());
}

TEST(StatementRefusalsTest, TokensDiffer) {
  StatementRefusals r;
  std::string a, b;
  r.Refuse(kPqMsg_Query, "", Refusal("a"), a);
  r.Refuse(kPqMsg_Query, "", Refusal("b"), b);
  EXPECT_NE(SubstituteText(a), SubstituteText(b));
}

TEST(StatementRefusalsTest, OtherErrorsPassUnchanged) {
  StatementRefusals r;
  r.OnClientMessage(kPqMsg_Query);
  std::string to_db;
  r.Refuse(kPqMsg_Query, "", Refusal("no"), to_db);
  // An error naming a different token (a client guessing) is not a refusal.
  const std::string other = SyntaxError("pgbastion_refused_00000000000000000000000000000000");
  std::string to_client;
  EXPECT_FALSE(r.OnBackendError(other, to_client));
  EXPECT_EQ(to_client, other);
  EXPECT_TRUE(r.pending());
}

TEST(StatementRefusalsTest, RefusedParseKeepsItsNameAndLivesUntilItsSync) {
  StatementRefusals r;
  r.OnClientMessage(kPqMsg_Query);  // an earlier batch, still running
  r.OnClientMessage(kPqMsg_Parse);
  std::string to_db;
  r.Refuse(kPqMsg_Parse, "s1", Refusal("no"), to_db);
  MessageResult m = DecodeMessage(to_db, Direction::kFrontend, kDefaultMaxMessageLength);
  EXPECT_EQ(ParseParseMessage(m.message.body)->statement, "s1");
  r.OnClientMessage(kPqMsg_Bind);
  r.OnClientMessage(kPqMsg_Execute);
  r.OnClientMessage(kPqMsg_Sync);
  r.OnReadyForQuery();  // the earlier Query's: the refusal stays
  EXPECT_TRUE(r.pending());
  r.OnReadyForQuery();  // its own Sync's
  EXPECT_FALSE(r.pending());
}

TEST(StatementRefusalsTest, SkippedSubstituteIsForgottenAtItsReadyForQuery) {
  // An earlier Execute in the batch failed, so the database skipped the
  // substitute: its error passes through and the refusal is dropped.
  StatementRefusals r;
  r.OnClientMessage(kPqMsg_Execute);
  r.OnClientMessage(kPqMsg_Parse);
  std::string to_db;
  r.Refuse(kPqMsg_Parse, "", Refusal("no"), to_db);
  r.OnClientMessage(kPqMsg_Sync);
  std::string division;
  AppendErrorResponse(division, ErrorFields{"ERROR", "22012", "division by zero", "", ""});
  std::string to_client;
  EXPECT_FALSE(r.OnBackendError(division, to_client));
  EXPECT_EQ(to_client, division);
  r.OnReadyForQuery();
  EXPECT_FALSE(r.pending());
}

TEST(StatementRefusalsTest, MalformedErrorPassesThrough) {
  StatementRefusals r;
  std::string to_db;
  r.Refuse(kPqMsg_Query, "", Refusal("no"), to_db);
  const std::string junk("E\0\0\0\x06xy", 7);
  std::string to_client;
  EXPECT_FALSE(r.OnBackendError(junk, to_client));
  EXPECT_EQ(to_client, junk);
}

}  // namespace
}  // namespace pgb::proto
