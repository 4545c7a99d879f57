// The relay with its stages (gate + pipeline, masking + pipeline) against a
// fake sink: bytes in as a client and a database would send them, bytes out
// as the other side would receive them. No sockets, no database; the
// integration suites run the same paths against PostgreSQL.
#include "core/relay.h"

#include <sys/socket.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "proto/error_status.h"
#include "proto/frame.h"
#include "proto/messages.h"
#include "proto/protocol.h"
#include "proto/wire.h"
#include "tests/policy/test_catalog.h"

namespace pgb {
namespace {

using proto::MessageWriter;

// What the relay sent each way, and how.
class FakeSink : public RelaySink {
 public:
  void Forward(Side to, const char* data, size_t n, int32_t buffer_id) override {
    Out(to).append(data, n);
    if (buffer_id >= 0) forwarded_buffers.push_back(buffer_id);
  }
  void Send(Side to, std::string bytes) override { Out(to) += bytes; }
  void Recycle(int32_t buffer_id) override { recycled_buffers.push_back(buffer_id); }

  std::string& Out(Side to) { return to == Side::kClient ? to_client : to_database; }

  std::string to_client;
  std::string to_database;
  std::vector<int32_t> forwarded_buffers;  // handed over zero-copy
  std::vector<int32_t> recycled_buffers;   // copied instead (or dropped)
};

// The type bytes of a stream of messages, and the messages themselves.
std::vector<std::string> Messages(const std::string& stream, proto::Direction direction) {
  std::vector<std::string> out;
  std::string_view rest = stream;
  while (!rest.empty()) {
    const proto::MessageResult m =
        proto::DecodeMessage(rest, direction, proto::kDefaultMaxMessageLength);
    EXPECT_EQ(m.status, proto::DecodeStatus::kOk);
    if (m.status != proto::DecodeStatus::kOk) break;
    out.emplace_back(rest.substr(0, m.message.total_size));
    rest.remove_prefix(m.message.total_size);
  }
  return out;
}

std::string Types(const std::string& stream, proto::Direction direction) {
  std::string types;
  for (const std::string& m : Messages(stream, direction)) types.push_back(m[0]);
  return types;
}

std::string Query(std::string_view sql) {
  std::string s;
  proto::AppendQuery(s, sql);
  return s;
}

std::string RowDescription(std::string_view column) {
  std::string s;
  MessageWriter(s, proto::kPqMsg_RowDescription)
      .Int16(1)
      .CString(column)
      .Int32(0)
      .Int16(0)
      .Int32(25)  // text
      .Int16(-1)
      .Int32(-1)
      .Int16(0);
  return s;
}

std::string DataRow(std::string_view value) {
  std::string s;
  MessageWriter(s, proto::kPqMsg_DataRow)
      .Int16(1)
      .Int32(static_cast<int32_t>(value.size()))
      .Bytes(value);
  return s;
}

std::string CommandComplete(std::string_view tag) {
  std::string s;
  MessageWriter(s, proto::kPqMsg_CommandComplete).CString(tag);
  return s;
}

std::string Ready(char status = proto::kTxnIdle) {
  std::string s;
  proto::AppendReadyForQuery(s, status);
  return s;
}

std::string Error(std::string_view sqlstate, std::string_view message) {
  std::string s;
  proto::AppendErrorResponse(
      s, proto::ErrorFields{"ERROR", std::string(sqlstate), std::string(message), "", ""});
  return s;
}

// Parse, Bind and Execute of an unnamed statement, then Sync.
std::string ExtendedSelect(std::string_view sql) {
  std::string s;
  proto::AppendParse(s, "", sql);
  MessageWriter(s, proto::kPqMsg_Bind).CString("").CString("").Int16(0).Int16(0).Int16(0);
  MessageWriter(s, proto::kPqMsg_Execute).CString("").Int32(0);
  MessageWriter(s, proto::kPqMsg_Sync);
  return s;
}

class RelayTest : public ::testing::Test {
 protected:
  // A read-only scope for everyone; `masks` on its results.
  void Start(std::vector<policy::ColumnMask> masks = {}) {
    policy::Scope scope;
    scope.name = "agents";
    scope.subjects = {"*"};
    scope.profile = policy::Profile::kReadOnly;
    scope.masks = std::move(masks);
    std::vector<policy::Scope> scopes;
    scopes.push_back(std::move(scope));
    auto policy = std::make_shared<const policy::Policy>(std::move(scopes));
    identity_.subject = "agent-7";
    const policy::Scope* matched = policy->MatchScope(identity_, "app");
    ASSERT_NE(matched, nullptr);
    relay_ = std::make_unique<Relay>(policy, *matched, identity_, "app", "app_owner", cache_,
                                     Relay::Limits{1 << 20, 1 << 20}, audit_, sink_);
    // The target's catalog, as the gateway's reader would have read it.
    catalogs_->Publish(0, policy::TestCatalog());
    relay_->UseCatalog(catalogs_, 0);
  }

  absl::Status FromClient(const std::string& bytes, int32_t buffer_id = -1) {
    return relay_->Feed(Side::kClient, bytes.data(), bytes.size(), buffer_id);
  }
  absl::Status FromDatabase(const std::string& bytes, int32_t buffer_id = -1) {
    // The relay may rewrite a row where it lies: hand it its own copy.
    buffers_.push_back(std::make_unique<std::string>(bytes));
    return relay_->Feed(Side::kBackend, buffers_.back()->data(), bytes.size(), buffer_id);
  }

  policy::Identity identity_;
  policy::AnalysisCache cache_{1 << 20};
  SessionAudit audit_{nullptr, sockaddr_storage{}};
  FakeSink sink_;
  std::unique_ptr<Relay> relay_;
  std::vector<std::unique_ptr<std::string>> buffers_;
  std::vector<TargetConfig> targets_ = std::vector<TargetConfig>(1);  // "app"
  std::shared_ptr<CatalogReader> catalogs_ = std::make_shared<CatalogReader>(targets_);
};

TEST_F(RelayTest, AnAllowedQueryGoesOnInItsOwnBuffer) {
  Start();
  const std::string q = Query("SELECT 1");
  ASSERT_TRUE(FromClient(q, /*buffer_id=*/7).ok());
  EXPECT_EQ(sink_.to_database, q);
  EXPECT_EQ(sink_.forwarded_buffers, std::vector<int32_t>{7});
  EXPECT_TRUE(sink_.recycled_buffers.empty());
  EXPECT_FALSE(relay_->BetweenStatements());
  const std::string answer =
      RowDescription("?column?") + DataRow("1") + CommandComplete("SELECT 1") + Ready();
  ASSERT_TRUE(FromDatabase(answer, 8).ok());
  EXPECT_EQ(sink_.to_client, answer);
  EXPECT_TRUE(relay_->Idle());
}

// A refused statement is replaced by a substitute; the database's error for
// it becomes the refusal, and the session goes on.
TEST_F(RelayTest, ARefusedStatementIsAnsweredWithTheRefusalAndTheSessionGoesOn) {
  Start();
  ASSERT_TRUE(FromClient(Query("DROP TABLE orders"), 3).ok());
  EXPECT_EQ(sink_.recycled_buffers, std::vector<int32_t>{3});  // not forwarded
  const std::vector<std::string> sent = Messages(sink_.to_database, proto::Direction::kFrontend);
  ASSERT_EQ(sent.size(), 1u);
  const std::string token(*proto::ParseQuery(std::string_view(sent[0]).substr(5)));
  ASSERT_EQ(token.rfind("pgbastion_refused_", 0), 0u) << token;
  ASSERT_TRUE(
      FromDatabase(Error("42601", "syntax error at or near \"" + token + "\"") + Ready()).ok());
  const std::vector<std::string> got = Messages(sink_.to_client, proto::Direction::kBackend);
  ASSERT_EQ(got.size(), 2u);
  const proto::ErrorFields e = *proto::ParseErrorFields(std::string_view(got[0]).substr(5));
  EXPECT_EQ(e.sqlstate, "42501");
  EXPECT_NE(e.message.find("DROP"), std::string::npos) << e.message;
  EXPECT_EQ(got[1][0], proto::kPqMsg_ReadyForQuery);
  // The next statement is relayed as usual.
  sink_.to_database.clear();
  ASSERT_TRUE(FromClient(Query("SELECT 2")).ok());
  EXPECT_EQ(sink_.to_database, Query("SELECT 2"));
}

// In an aborted transaction the database never reaches the substitute: the
// client gets PostgreSQL's own error, as it would without the gateway.
TEST_F(RelayTest, InAnAbortedTransactionTheDatabasesErrorPassesThrough) {
  Start();
  ASSERT_TRUE(FromClient(Query("DROP TABLE orders")).ok());
  const std::string aborted =
      Error("25P02",
            "current transaction is aborted, commands ignored until end of transaction "
            "block");
  ASSERT_TRUE(FromDatabase(aborted + Ready(proto::kTxnFailed)).ok());
  EXPECT_EQ(sink_.to_client, aborted + Ready(proto::kTxnFailed));
}

// A refused Query among pipelined ones: each refusal answers its own request.
TEST_F(RelayTest, RefusalsInAPipelineAnswerTheirOwnRequests) {
  Start();
  ASSERT_TRUE(FromClient(Query("SELECT 1") + Query("DELETE FROM t") + Query("SELECT 3")).ok());
  const std::vector<std::string> sent = Messages(sink_.to_database, proto::Direction::kFrontend);
  ASSERT_EQ(sent.size(), 3u);
  const std::string token(*proto::ParseQuery(std::string_view(sent[1]).substr(5)));
  ASSERT_TRUE(FromDatabase(CommandComplete("SELECT 1") + Ready() +
                           Error("42601", "syntax error at or near \"" + token + "\"") + Ready() +
                           CommandComplete("SELECT 1") + Ready())
                  .ok());
  const std::vector<std::string> got = Messages(sink_.to_client, proto::Direction::kBackend);
  ASSERT_EQ(Types(sink_.to_client, proto::Direction::kBackend), "CZEZCZ");
  EXPECT_EQ(proto::ParseErrorFields(std::string_view(got[2]).substr(5))->sqlstate, "42501");
}

TEST_F(RelayTest, MaskedColumnsAreRewrittenInSimpleQueryRows) {
  Start({policy::ColumnMask{.column = "email"}});
  ASSERT_TRUE(FromClient(Query("SELECT email FROM customers")).ok());
  ASSERT_TRUE(FromDatabase(RowDescription("email") + DataRow("ada@example.com") +
                           CommandComplete("SELECT 1") + Ready())
                  .ok());
  const std::vector<std::string> got = Messages(sink_.to_client, proto::Direction::kBackend);
  ASSERT_EQ(Types(sink_.to_client, proto::Direction::kBackend), "TDCZ");
  EXPECT_EQ(got[1], DataRow("****"));
  EXPECT_EQ(sink_.to_client.find("ada@"), std::string::npos);
}

// An Execute has no RowDescription of its own: masking sends a Describe of
// the portal before it and drops that answer; the pipeline says whose it is.
TEST_F(RelayTest, MaskingDescribesAPortalBeforeItsExecuteAndDropsTheAnswer) {
  Start({policy::ColumnMask{.column = "email"}});
  ASSERT_TRUE(FromClient(ExtendedSelect("SELECT email FROM customers")).ok());
  EXPECT_EQ(Types(sink_.to_database, proto::Direction::kFrontend), "PBDES");
  std::string answer;
  answer += std::string("1\0\0\0\x04", 5);  // ParseComplete
  answer += std::string("2\0\0\0\x04", 5);  // BindComplete
  answer += RowDescription("email");        // answers the gateway's Describe
  answer += DataRow("ada@example.com") + CommandComplete("SELECT 1") + Ready();
  ASSERT_TRUE(FromDatabase(answer).ok());
  const std::vector<std::string> got = Messages(sink_.to_client, proto::Direction::kBackend);
  ASSERT_EQ(Types(sink_.to_client, proto::Direction::kBackend), "12DCZ");
  EXPECT_EQ(got[2], DataRow("****"));
}

// The client's own Describe is answered to the client, the gateway's is not.
TEST_F(RelayTest, TheClientsDescribeIsAnsweredAndTheGatewaysIsNot) {
  Start({policy::ColumnMask{.column = "email"}});
  std::string batch;
  proto::AppendParse(batch, "", "SELECT email FROM customers");
  MessageWriter(batch, proto::kPqMsg_Bind).CString("").CString("").Int16(0).Int16(0).Int16(0);
  proto::AppendDescribe(batch, 'P', "");
  MessageWriter(batch, proto::kPqMsg_Execute).CString("").Int32(0);
  MessageWriter(batch, proto::kPqMsg_Sync);
  ASSERT_TRUE(FromClient(batch).ok());
  EXPECT_EQ(Types(sink_.to_database, proto::Direction::kFrontend), "PBDDES");
  std::string answer = std::string("1\0\0\0\x04", 5) + std::string("2\0\0\0\x04", 5);
  answer += RowDescription("email") + RowDescription("email");
  answer += DataRow("ada@example.com") + CommandComplete("SELECT 1") + Ready();
  ASSERT_TRUE(FromDatabase(answer).ok());
  EXPECT_EQ(Types(sink_.to_client, proto::Direction::kBackend), "12TDCZ");
}

// A reload that removes the masks while the gateway's Describe is on its way:
// its answer is still taken out (the client never asked for it), and the
// next Execute goes on without one.
TEST_F(RelayTest, MasksRemovedByAReloadMidBatchStillDropTheGatewaysDescription) {
  Start({policy::ColumnMask{.column = "email"}});
  std::string batch;
  MessageWriter(batch, proto::kPqMsg_Bind).CString("").CString("s1").Int16(0).Int16(0).Int16(0);
  proto::AppendDescribe(batch, 'P', "");
  MessageWriter(batch, proto::kPqMsg_Execute).CString("").Int32(0);
  MessageWriter(batch, proto::kPqMsg_Sync);
  ASSERT_TRUE(FromClient(batch).ok());
  EXPECT_EQ(Types(sink_.to_database, proto::Direction::kFrontend), "BDDES");

  policy::Scope unmasked;
  unmasked.name = "agents";
  unmasked.subjects = {"*"};
  unmasked.profile = policy::Profile::kReadOnly;
  std::vector<policy::Scope> scopes;
  scopes.push_back(std::move(unmasked));
  relay_->UsePolicy(std::make_shared<const policy::Policy>(std::move(scopes)), identity_);

  std::string answer = std::string("2\0\0\0\x04", 5);
  answer += RowDescription("email") + RowDescription("email");
  answer += DataRow("ada@example.com") + CommandComplete("SELECT 1") + Ready();
  ASSERT_TRUE(FromDatabase(answer).ok());
  EXPECT_EQ(Types(sink_.to_client, proto::Direction::kBackend), "2TDCZ");

  sink_.to_database.clear();
  ASSERT_TRUE(FromClient(batch).ok());
  EXPECT_EQ(Types(sink_.to_database, proto::Direction::kFrontend), "BDES");
}

TEST_F(RelayTest, AnAnswerToNoRequestEndsTheSession) {
  Start();
  const absl::Status s = FromDatabase(CommandComplete("DELETE 1000"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(proto::ErrorFieldsOf(s, "FATAL").sqlstate, "08P01");
  EXPECT_TRUE(sink_.to_client.empty());  // nothing of it reaches the client
}

TEST_F(RelayTest, ABadFrameFromTheClientEndsTheSessionAfterTheGoodOnes) {
  Start();
  const std::string good = Query("SELECT 1");
  const absl::Status s = FromClient(good + std::string("Q\0\0\0\x02", 5));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(proto::ErrorFieldsOf(s, "FATAL").sqlstate, "08P01");
  EXPECT_EQ(sink_.to_database, good);
}

// After login a PasswordMessage (also SASLResponse, GSSResponse: all 'p') or
// a second startup packet is not a message the client may send: the relay
// refuses it at its header, as PostgreSQL's main loop does ("invalid frontend
// message type"), and none of its bytes reach the database, so the session
// ends with the gateway's one FATAL and not the database's as well.
TEST_F(RelayTest, AMessageOnlyValidDuringLoginEndsTheSessionBeforeTheDatabaseSeesIt) {
  std::string password;
  proto::AppendPasswordMessage(password, "hunter2");
  std::string sasl_response;
  proto::AppendSaslResponse(sasl_response, "c=biws,r=abc,p=xyz");
  std::string startup;
  proto::AppendStartupMessage(startup, proto::kProtocolVersion3, {{"user", "agent-7"}});
  for (const std::string& late : {password, sasl_response, startup}) {
    const std::string good = Query("SELECT 1");
    // Alone, behind a good message in the same chunk, and cut after its type byte.
    for (size_t cut : {size_t{0}, late.size(), size_t{1}}) {
      SCOPED_TRACE(testing::Message() << "cut " << cut << " of " << late.size());
      sink_ = FakeSink();
      Start();
      const std::string first = good + late.substr(0, cut);
      absl::Status s = FromClient(first, 5);
      if (s.ok()) s = FromClient(late.substr(cut), 6);
      ASSERT_FALSE(s.ok());
      const proto::ErrorFields fields = proto::ErrorFieldsOf(s, "FATAL");
      EXPECT_EQ(fields.sqlstate, "08P01");
      if (late[0] == proto::kPqMsg_PasswordMessage) {
        EXPECT_EQ(fields.message,
                  "invalid frontend message type 0x70: PasswordMessage is only valid during login");
      }
      EXPECT_EQ(sink_.to_database, good);
      EXPECT_TRUE(sink_.to_client.empty());
    }
  }
}

TEST_F(RelayTest, AResultThatCannotBeMaskedEndsTheSession) {
  Start({policy::ColumnMask{.column = "email"}});
  ASSERT_TRUE(FromClient(Query("SELECT 1")).ok());
  const absl::Status s = FromDatabase(DataRow("no description came first"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(proto::ErrorFieldsOf(s, "FATAL").sqlstate, "42501");
  EXPECT_TRUE(sink_.to_client.empty());
}

}  // namespace
}  // namespace pgb
