#include "proto/statement_refusals.h"

#include <string>

#include "gtest/gtest.h"
#include "proto/frame.h"
#include "proto/messages.h"
#include "proto/protocol.h"

namespace pgb::proto {
namespace {

ErrorFields RefusalFields(std::string message) {
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
  std::string to_db;
  const Refusal r =
      SubstituteRefused(kPqMsg_Query, "", RefusalFields("DROP TABLE denied by rule x"), to_db);
  const std::string token = SubstituteText(to_db);
  // pgbastion_refused_ and 32 lower-case hex digits: an identifier that is a
  // syntax error on its own.
  ASSERT_EQ(token.size(), 18u + 32u) << token;
  EXPECT_EQ(token.substr(0, 18), "pgbastion_refused_");
  EXPECT_EQ(token.find_first_not_of("0123456789abcdef", 18), std::string::npos) << token;
  EXPECT_EQ(r.token, token);
  std::string to_client;
  EXPECT_TRUE(AnswerRefusal(r, SyntaxError(token), to_client));
  const ErrorFields e = Decoded(to_client);
  EXPECT_EQ(e.sqlstate, "42501");
  EXPECT_EQ(e.message, "DROP TABLE denied by rule x");
  EXPECT_EQ(e.hint, "ask for a read-write scope");
  EXPECT_EQ(e.severity, "ERROR");
}

TEST(StatementRefusalsTest, FunctionCallIsReplacedByAQuery) {
  std::string to_db;
  const Refusal r = SubstituteRefused(kPqMsg_FunctionCall, "", RefusalFields("no"), to_db);
  EXPECT_EQ(SubstituteText(to_db), r.token);
  EXPECT_EQ(to_db[0], kPqMsg_Query);
}

TEST(StatementRefusalsTest, TokensDiffer) {
  std::string a, b;
  const Refusal ra = SubstituteRefused(kPqMsg_Query, "", RefusalFields("a"), a);
  const Refusal rb = SubstituteRefused(kPqMsg_Query, "", RefusalFields("b"), b);
  EXPECT_NE(SubstituteText(a), SubstituteText(b));
  EXPECT_NE(ra.token, rb.token);
}

TEST(StatementRefusalsTest, OtherErrorsPassUnchanged) {
  std::string to_db;
  const Refusal r = SubstituteRefused(kPqMsg_Query, "", RefusalFields("no"), to_db);
  // An error naming a different token (a client guessing) is not a refusal.
  const std::string other = SyntaxError("pgbastion_refused_00000000000000000000000000000000");
  std::string to_client;
  EXPECT_FALSE(AnswerRefusal(r, other, to_client));
  EXPECT_EQ(to_client, other);
}

TEST(StatementRefusalsTest, RefusedParseKeepsItsName) {
  std::string to_db;
  const Refusal r = SubstituteRefused(kPqMsg_Parse, "s1", RefusalFields("no"), to_db);
  MessageResult m = DecodeMessage(to_db, Direction::kFrontend, kDefaultMaxMessageLength);
  EXPECT_EQ(ParseParseMessage(m.message.body)->statement, "s1");
  EXPECT_EQ(ParseParseMessage(m.message.body)->sql, r.token);
}

TEST(StatementRefusalsTest, AnAbortedTransactionsErrorPassesThrough) {
  // The database never reached the substitute: the client gets its error.
  std::string to_db;
  const Refusal r = SubstituteRefused(kPqMsg_Parse, "", RefusalFields("no"), to_db);
  std::string aborted;
  AppendErrorResponse(aborted, ErrorFields{"ERROR", "25P02",
                                           "current transaction is aborted, commands ignored "
                                           "until end of transaction block",
                                           "", ""});
  std::string to_client;
  EXPECT_FALSE(AnswerRefusal(r, aborted, to_client));
  EXPECT_EQ(to_client, aborted);
}

TEST(StatementRefusalsTest, MalformedErrorPassesThrough) {
  std::string to_db;
  const Refusal r = SubstituteRefused(kPqMsg_Query, "", RefusalFields("no"), to_db);
  const std::string junk("E\0\0\0\x06xy", 7);
  std::string to_client;
  EXPECT_FALSE(AnswerRefusal(r, junk, to_client));
  EXPECT_EQ(to_client, junk);
}

}  // namespace
}  // namespace pgb::proto
