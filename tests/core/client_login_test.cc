// ClientLogin against a fake client socket: startup packets as libpq sends
// them, SCRAM with the gateway's own SCRAM client on the other side, and a
// Runtime built from a config text as `serve` builds it.
#include "core/client_login.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/config.h"
#include "core/runtime.h"
#include "gtest/gtest.h"
#include "proto/error_status.h"
#include "proto/frame.h"
#include "proto/messages.h"
#include "proto/protocol.h"
#include "proto/scram.h"
#include "proto/wire.h"

namespace pgb {
namespace {

// The client's socket without TLS: what the login sent, in order.
class FakeChannel : public ClientLogin::Channel {
 public:
  void SendToClient(std::string bytes) override { sent += bytes; }
  absl::Status StartTls() override { return absl::UnavailableError("no TLS in this test"); }
  const proto::TlsStream* Tls() const override { return nullptr; }
  std::string sent;
};

std::string Startup(std::vector<std::pair<std::string, std::string>> params) {
  std::string s;
  proto::AppendStartupMessage(s, proto::kProtocolVersion3, params);
  return s;
}

std::shared_ptr<const Runtime> TestRuntime() {
  const std::string verifier = *proto::MakeScramVerifier("alice's password", 4096);
  const std::string text =
      "[[listener]]\nport = 6432\n"
      "[[target]]\nname = \"app\"\nhost = \"127.0.0.1\"\nuser = \"pgbastion\"\n"
      "[[target]]\nname = \"billing\"\nhost = \"127.0.0.1\"\nuser = \"pgbastion\"\n"
      "[[user]]\nname = \"alice\"\ntargets = [\"app\"]\ngroups = [\"dev\"]\n"
      "scram_verifier = \"" +
      verifier +
      "\"\n"
      "[[scope]]\nname = \"devs\"\nsources = [\"local\"]\ngroups = [\"dev\"]\n"
      "profile = \"read-only\"\n";
  absl::StatusOr<Config> config = ParseConfig(text, "test.toml", "/tmp");
  EXPECT_TRUE(config.ok()) << config.status();
  absl::StatusOr<std::shared_ptr<const Runtime>> runtime = BuildRuntime(*std::move(config));
  EXPECT_TRUE(runtime.ok()) << runtime.status();
  return *runtime;
}

class ClientLoginTest : public ::testing::Test {
 protected:
  ClientLoginTest()
      : runtime_(TestRuntime()),
        login_(*runtime_, runtime_->listeners.front(), nullptr, channel_, "test session") {}

  absl::StatusOr<ClientLogin::Step> Feed(const std::string& bytes) {
    staging_ += bytes;
    return login_.Feed(staging_);
  }

  // The next message the login sent, removed from what it sent.
  proto::MessageView NextSent() {
    const proto::MessageResult m = proto::DecodeMessage(channel_.sent, proto::Direction::kBackend,
                                                        proto::kDefaultMaxMessageLength);
    EXPECT_EQ(m.status, proto::DecodeStatus::kOk);
    last_sent_ = channel_.sent.substr(0, m.message.total_size);
    channel_.sent.erase(0, m.message.total_size);
    const proto::MessageResult own = proto::DecodeMessage(last_sent_, proto::Direction::kBackend,
                                                          proto::kDefaultMaxMessageLength);
    return own.message;
  }

  // A whole SCRAM exchange as `user` with `password`, from the startup packet.
  absl::StatusOr<ClientLogin::Step> Scram(const std::string& user, const std::string& password,
                                          const std::string& database = "app") {
    absl::StatusOr<ClientLogin::Step> step =
        Feed(Startup({{"user", user}, {"database", database}}));
    if (!step.ok()) return step;
    EXPECT_EQ(*step, ClientLogin::Step::kNeedMore);
    absl::StatusOr<proto::AuthenticationRequest> sasl =
        proto::ParseAuthenticationRequest(NextSent().body);
    EXPECT_TRUE(sasl.ok());
    EXPECT_EQ(sasl->code, proto::kAuthReqSasl);
    proto::ScramClient client(password);
    std::string initial;
    proto::AppendSaslInitialResponse(initial, "SCRAM-SHA-256", client.ClientFirst());
    step = Feed(initial);
    if (!step.ok()) return step;
    absl::StatusOr<proto::AuthenticationRequest> more =
        proto::ParseAuthenticationRequest(NextSent().body);
    EXPECT_EQ(more->code, proto::kAuthReqSaslContinue);
    absl::StatusOr<std::string> final_message = client.HandleServerFirst(more->sasl_data);
    EXPECT_TRUE(final_message.ok());
    std::string response;
    proto::AppendSaslResponse(response, *final_message);
    step = Feed(response);
    if (!step.ok()) return step;
    absl::StatusOr<proto::AuthenticationRequest> done =
        proto::ParseAuthenticationRequest(NextSent().body);
    EXPECT_EQ(done->code, proto::kAuthReqSaslFinal);
    EXPECT_TRUE(client.HandleServerFinal(done->sasl_data).ok());
    return step;
  }

  static std::string SqlState(const absl::StatusOr<ClientLogin::Step>& step) {
    return step.ok() ? "" : proto::ErrorFieldsOf(step.status(), "FATAL").sqlstate;
  }

  std::shared_ptr<const Runtime> runtime_;
  FakeChannel channel_;
  ClientLogin login_;
  std::string staging_;
  std::string last_sent_;
};

TEST_F(ClientLoginTest, ScramLoginGivesTheIdentityTargetAndScope) {
  const absl::StatusOr<ClientLogin::Step> step = Scram("alice", "alice's password");
  ASSERT_TRUE(step.ok()) << step.status();
  EXPECT_EQ(*step, ClientLogin::Step::kAuthenticated);
  EXPECT_EQ(login_.identity().subject, "alice");
  EXPECT_EQ(login_.identity().method, policy::AuthMethod::kLocalPassword);
  EXPECT_EQ(login_.identity().groups, std::vector<std::string>{"dev"});
  EXPECT_EQ(login_.target().config->name, "app");
  EXPECT_EQ(login_.scope().name, "devs");
  EXPECT_TRUE(staging_.empty());
}

TEST_F(ClientLoginTest, AWrongPasswordAndAnUnknownUserFailAlike) {
  const absl::StatusOr<ClientLogin::Step> wrong = Scram("alice", "guess");
  ASSERT_FALSE(wrong.ok());
  const proto::ErrorFields e = proto::ErrorFieldsOf(wrong.status(), "FATAL");
  EXPECT_EQ(e.sqlstate, "28P01");
  EXPECT_EQ(e.message, "password authentication failed for user \"alice\"");

  FakeChannel channel;
  ClientLogin unknown(*runtime_, runtime_->listeners.front(), nullptr, channel, "test");
  std::string staging = Startup({{"user", "mallory"}, {"database", "app"}});
  ASSERT_TRUE(unknown.Feed(staging).ok());
  // The same SASL offer as for a real user: the name cannot be probed.
  std::string offer_for_alice;
  proto::AppendAuthenticationSasl(offer_for_alice, {"SCRAM-SHA-256"});
  EXPECT_EQ(channel.sent, offer_for_alice);
}

TEST_F(ClientLoginTest, AUserMayOnlyUseItsTargets) {
  const absl::StatusOr<ClientLogin::Step> step = Scram("alice", "alice's password", "billing");
  EXPECT_EQ(SqlState(step), "42501");
}

TEST_F(ClientLoginTest, ATargetThatDoesNotExistIsNamed) {
  const absl::StatusOr<ClientLogin::Step> step = Scram("alice", "alice's password", "nowhere");
  EXPECT_EQ(SqlState(step), "3D000");
  EXPECT_EQ(proto::ErrorFieldsOf(step.status(), "FATAL").message,
            "target \"nowhere\" does not exist");
}

TEST_F(ClientLoginTest, ForbiddenStartupParametersEndTheLoginBeforeAnyPassword) {
  EXPECT_EQ(SqlState(Feed(Startup({{"user", "alice"}, {"options", "-c user=postgres"}}))), "42501");
  EXPECT_EQ(login_.user_name(), "alice");  // for the audit's failed-login record
  EXPECT_TRUE(channel_.sent.empty());
}

TEST_F(ClientLoginTest, SslRequestWithoutTlsIsAnsweredNAndTheLoginGoesOn) {
  std::string bytes;
  proto::AppendSslRequest(bytes);
  absl::StatusOr<ClientLogin::Step> step = Feed(bytes);
  ASSERT_TRUE(step.ok()) << step.status();
  EXPECT_EQ(channel_.sent, "N");
  channel_.sent.clear();
  step = Feed(Startup({{"user", "alice"}, {"database", "app"}}));
  ASSERT_TRUE(step.ok()) << step.status();
  EXPECT_EQ(NextSent().type, proto::kPqMsg_AuthenticationRequest);
  // A second SSLRequest is a protocol violation (CVE-2021-23214's family).
  ClientLogin again(*runtime_, runtime_->listeners.front(), nullptr, channel_, "test");
  std::string two = bytes + bytes;
  EXPECT_EQ(SqlState(again.Feed(two)), "08P01");
}

TEST_F(ClientLoginTest, DataAfterAnSslRequestGetsNThenTheError) {
  // As PostgreSQL: the 'N' the client waits for, then FATAL 08P01.
  std::string bytes;
  proto::AppendSslRequest(bytes);
  const absl::StatusOr<ClientLogin::Step> step =
      Feed(bytes + Startup({{"user", "alice"}, {"database", "app"}}));
  EXPECT_EQ(SqlState(step), "08P01");
  EXPECT_EQ(channel_.sent, "N");
}

// PostgreSQL reads the first 4 bytes as the startup packet's length; when it
// is out of range it logs "invalid length of startup packet" and closes
// without a byte. The login quits quietly, having sent nothing.
TEST_F(ClientLoginTest, BytesThatAreNoStartupPacketCloseWithoutAnAnswer) {
  std::string terminate;
  proto::AppendTerminate(terminate);
  std::string query;
  proto::AppendQuery(query, "SELECT 1");
  std::string short_cancel;
  proto::AppendCancelRequest(short_cancel, 1, 2);
  short_cancel.resize(12);
  proto::StoreBigEndian32(short_cancel.data(), 12);
  for (const std::string& first : {terminate, query, std::string("GET / HTTP/1.1\r\n\r\n"),
                                   std::string("\0\0\0\x07", 4), short_cancel}) {
    FakeChannel channel;
    ClientLogin login(*runtime_, runtime_->listeners.front(), nullptr, channel, "test");
    std::string staging = first;
    const absl::StatusOr<ClientLogin::Step> step = login.Feed(staging);
    ASSERT_TRUE(step.ok()) << step.status();
    EXPECT_EQ(*step, ClientLogin::Step::kQuit);
    EXPECT_EQ(channel.sent, "");
  }
  // After an SSLRequest answered 'N' the same: the 'N', then nothing.
  std::string ssl;
  proto::AppendSslRequest(ssl);
  ASSERT_TRUE(Feed(ssl).ok());
  const absl::StatusOr<ClientLogin::Step> step = Feed(terminate);
  ASSERT_TRUE(step.ok()) << step.status();
  EXPECT_EQ(*step, ClientLogin::Step::kQuit);
  EXPECT_EQ(channel_.sent, "N");
}

TEST_F(ClientLoginTest, ACancelRequestIsHandedOn) {
  std::string bytes;
  proto::AppendCancelRequest(bytes, 1234, -99);
  const absl::StatusOr<ClientLogin::Step> step = Feed(bytes);
  ASSERT_TRUE(step.ok());
  EXPECT_EQ(*step, ClientLogin::Step::kCancel);
  EXPECT_EQ(login_.cancel_pid(), 1234);
  EXPECT_EQ(login_.cancel_key(), -99);
  EXPECT_TRUE(channel_.sent.empty());
}

TEST_F(ClientLoginTest, TerminateDuringScramQuitsQuietly) {
  ASSERT_TRUE(Feed(Startup({{"user", "alice"}, {"database", "app"}})).ok());
  std::string terminate;
  proto::AppendTerminate(terminate);
  const absl::StatusOr<ClientLogin::Step> step = Feed(terminate);
  ASSERT_TRUE(step.ok());
  EXPECT_EQ(*step, ClientLogin::Step::kQuit);
}

TEST_F(ClientLoginTest, TheStartupPacketMayArriveByteByByte) {
  const std::string packet = Startup({{"user", "alice"}, {"database", "app"}});
  for (size_t i = 0; i + 1 < packet.size(); ++i) {
    const absl::StatusOr<ClientLogin::Step> step = Feed(packet.substr(i, 1));
    ASSERT_TRUE(step.ok()) << i << ": " << step.status();
    ASSERT_EQ(*step, ClientLogin::Step::kNeedMore);
    ASSERT_TRUE(channel_.sent.empty()) << i;
  }
  ASSERT_TRUE(Feed(packet.substr(packet.size() - 1)).ok());
  EXPECT_EQ(NextSent().type, proto::kPqMsg_AuthenticationRequest);
}

TEST_F(ClientLoginTest, AnythingButAPasswordMessageDuringScramIsRefused) {
  ASSERT_TRUE(Feed(Startup({{"user", "alice"}, {"database", "app"}})).ok());
  std::string query;
  proto::AppendQuery(query, "SELECT 1");
  EXPECT_EQ(SqlState(Feed(query)), "08P01");
}

}  // namespace
}  // namespace pgb
