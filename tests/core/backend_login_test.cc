// BackendLogin against a fake database: the messages PostgreSQL sends during
// a login, and a real SCRAM server (proto::ScramServer) on the other side.
#include "core/backend_login.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "proto/error_status.h"
#include "proto/frame.h"
#include "proto/md5_password.h"
#include "proto/messages.h"
#include "proto/protocol.h"
#include "proto/scram.h"
#include "proto/wire.h"

namespace pgb {
namespace {

using proto::MessageWriter;

// One message from the fake database.
struct Message {
  std::string raw;
  char type() const { return raw[0]; }
  std::string_view body() const { return std::string_view(raw).substr(5); }
};

Message Auth(int32_t code, std::string_view data = "") {
  Message m;
  MessageWriter(m.raw, proto::kPqMsg_AuthenticationRequest).Int32(code).Bytes(data);
  return m;
}

Message Sasl() {
  Message m;
  MessageWriter(m.raw, proto::kPqMsg_AuthenticationRequest)
      .Int32(proto::kAuthReqSasl)
      .CString("SCRAM-SHA-256")
      .Byte('\0');
  return m;
}

Message Parameter(std::string_view name, std::string_view value) {
  Message m;
  proto::AppendParameterStatus(m.raw, name, value);
  return m;
}

Message KeyData(int32_t pid, int32_t key) {
  Message m;
  proto::AppendBackendKeyData(m.raw, pid, key);
  return m;
}

Message Ready() {
  Message m;
  proto::AppendReadyForQuery(m.raw, proto::kTxnIdle);
  return m;
}

Message Error(std::string_view sqlstate, std::string_view message) {
  Message m;
  proto::AppendErrorResponse(
      m.raw, proto::ErrorFields{"FATAL", std::string(sqlstate), std::string(message), "", ""});
  return m;
}

class BackendLoginTest : public ::testing::Test {
 protected:
  BackendLoginTest() {
    target_.name = "app";
    target_.user = "gw_app";
    target_.password = Secret("s3cret-db-password");
  }

  // Feeds one message; what the gateway answered is in `reply_`.
  absl::StatusOr<bool> Feed(const Message& m) {
    reply_.clear();
    return login_.OnMessage(m.type(), m.body(), m.raw, reply_);
  }
  // The body of the one message the gateway answered with.
  std::string ReplyBody(char type) {
    const proto::MessageResult m = proto::DecodeMessage(reply_, proto::Direction::kFrontendLogin,
                                                        proto::kDefaultMaxMessageLength);
    EXPECT_EQ(m.status, proto::DecodeStatus::kOk);
    EXPECT_EQ(m.message.type, type);
    EXPECT_EQ(m.message.total_size, reply_.size());
    return std::string(m.message.body);
  }
  static std::string SqlState(const absl::StatusOr<bool>& r) {
    return r.ok() ? "" : proto::ErrorFieldsOf(r.status(), "FATAL").sqlstate;
  }

  // Runs SCRAM up to the server's final message against a verifier of `password`.
  absl::StatusOr<bool> Scram(const std::string& password, bool skip_final = false) {
    absl::StatusOr<std::string> text = proto::MakeScramVerifier(password, 4096);
    EXPECT_TRUE(text.ok());
    verifier_ = *proto::ParseScramVerifier(*text);
    server_ = std::make_unique<proto::ScramServer>(&verifier_, "gw_app");
    absl::StatusOr<bool> r = Feed(Sasl());
    if (!r.ok()) return r;
    const std::string initial_body = ReplyBody(proto::kPqMsg_PasswordMessage);
    absl::StatusOr<proto::SaslInitialResponse> initial =
        proto::ParseSaslInitialResponse(initial_body);
    EXPECT_TRUE(initial.ok());
    EXPECT_EQ(initial->mechanism, "SCRAM-SHA-256");
    absl::StatusOr<std::string> first = server_->HandleClientFirst(initial->data);
    EXPECT_TRUE(first.ok());
    r = Feed(Auth(proto::kAuthReqSaslContinue, *first));
    if (!r.ok()) return r;
    absl::StatusOr<std::string> final_message =
        server_->HandleClientFinal(ReplyBody(proto::kPqMsg_PasswordMessage));
    if (!final_message.ok()) return Feed(Error("28P01", "password authentication failed"));
    if (skip_final) return Feed(Auth(proto::kAuthReqOk));
    r = Feed(Auth(proto::kAuthReqSaslFinal, *final_message));
    if (!r.ok()) return r;
    return Feed(Auth(proto::kAuthReqOk));
  }

  TargetConfig target_;
  proto::ScramClientKeyCache cache_;
  BackendLogin login_{target_, &cache_, "test session"};
  std::string reply_;
  proto::ScramVerifier verifier_;
  std::unique_ptr<proto::ScramServer> server_;
};

TEST_F(BackendLoginTest, ScramThenStartupMessagesUntilReady) {
  absl::StatusOr<bool> r = Scram("s3cret-db-password");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(*r);
  for (const Message& m : {Parameter("server_version", "15.8"), KeyData(4242, 777)}) {
    r = Feed(m);
    ASSERT_TRUE(r.ok() && !*r) << r.status();
  }
  r = Feed(Ready());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(*r);
  EXPECT_EQ(login_.backend_pid(), 4242);
  EXPECT_EQ(login_.backend_key(), 777);
  // The client gets AuthenticationOk and the parameters; never the backend's key.
  std::string expected;
  proto::AppendAuthenticationOk(expected);
  proto::AppendParameterStatus(expected, "server_version", "15.8");
  EXPECT_EQ(login_.TakeForClient(), expected);
}

TEST_F(BackendLoginTest, AWrongPasswordIsTheOperatorsBusinessNotTheClients) {
  const absl::StatusOr<bool> r = Scram("another password");
  ASSERT_FALSE(r.ok());
  const proto::ErrorFields e = proto::ErrorFieldsOf(r.status(), "FATAL");
  EXPECT_EQ(e.sqlstate, "08006");
  EXPECT_EQ(e.message, "the gateway could not log in to target \"app\"");
  EXPECT_EQ(e.message.find("password authentication"), std::string::npos);
}

TEST_F(BackendLoginTest, AServerThatSkipsItsScramProofIsRefused) {
  const absl::StatusOr<bool> r = Scram("s3cret-db-password", /*skip_final=*/true);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string(r.status().message()).find("without proof"), std::string::npos);
}

TEST_F(BackendLoginTest, Md5AndCleartextAnswerWithTheTargetsPassword) {
  ASSERT_TRUE(Feed(Auth(proto::kAuthReqMd5, "salt")).ok());
  EXPECT_EQ(ReplyBody(proto::kPqMsg_PasswordMessage),
            proto::Md5PasswordResponse("gw_app", "s3cret-db-password", "salt") + '\0');
  EXPECT_EQ(ReplyBody(proto::kPqMsg_PasswordMessage).substr(0, 3), "md5");
  ASSERT_TRUE(Feed(Auth(proto::kAuthReqPassword)).ok());
  EXPECT_EQ(ReplyBody(proto::kPqMsg_PasswordMessage), std::string("s3cret-db-password") + '\0');
}

TEST_F(BackendLoginTest, LoadSheddingIsPassedOnSoThatTheClientMayRetry) {
  EXPECT_EQ(SqlState(Feed(Error("53300", "sorry, too many clients already"))), "53300");
  EXPECT_EQ(SqlState(Feed(Error("57P03", "the database system is starting up"))), "57P03");
  EXPECT_EQ(SqlState(Feed(Error("3D000", "database \"x\" does not exist"))), "08006");
}

TEST_F(BackendLoginTest, MessagesOutOfPlaceAreProtocolViolations) {
  // ParameterStatus and ReadyForQuery only come after AuthenticationOk.
  EXPECT_EQ(SqlState(Feed(Parameter("x", "y"))), "08P01");
  EXPECT_EQ(SqlState(Feed(Ready())), "08P01");
  Message row;
  MessageWriter(row.raw, proto::kPqMsg_DataRow).Int16(0);
  EXPECT_EQ(SqlState(Feed(row)), "08P01");
}

TEST_F(BackendLoginTest, AnAuthenticationMethodTheGatewayCannotAnswerIsRefused) {
  // A request the parser does not know (GSSAPI) is refused as such.
  EXPECT_EQ(SqlState(Feed(Auth(7))), "08P01");
  // A SCRAM continuation with no exchange begun.
  EXPECT_EQ(SqlState(Feed(Auth(proto::kAuthReqSaslContinue, "r=abc"))), "08006");
  // No password configured: trust is all the gateway can do.
  target_.password = Secret();
  EXPECT_EQ(SqlState(Feed(Auth(proto::kAuthReqMd5, "salt"))), "08006");
  EXPECT_TRUE(reply_.empty());
}

}  // namespace
}  // namespace pgb
