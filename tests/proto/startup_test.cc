#include "proto/startup.h"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "proto/protocol.h"
#include "proto/wire.h"

namespace pgb::proto {
namespace {

using Params = std::vector<std::pair<std::string_view, std::string_view>>;

std::string Int32(uint32_t v) {
  char b[4];
  StoreBigEndian32(b, v);
  return std::string(b, 4);
}

// An untyped packet built by hand: length (counting itself), code, body.
std::string Packet(uint32_t code, std::string_view body) {
  return Int32(static_cast<uint32_t>(body.size() + 8)) + Int32(code) + std::string(body);
}

std::string Startup(std::string_view params, uint32_t version = kProtocolVersion3) {
  return Packet(version, params);
}

// "user\0alice\0database\0app\0\0"
const std::string kParams("user\0alice\0database\0app\0\0", 25);

TEST(StartupTest, DecodesStartupMessage) {
  const std::string bytes = Startup(kParams);
  const StartupResult r = DecodeStartupPacket(bytes);
  ASSERT_EQ(r.status, DecodeStatus::kOk) << r.error;
  EXPECT_EQ(r.packet.kind, StartupPacket::Kind::kStartup);
  EXPECT_EQ(r.packet.protocol_version, 196608);
  EXPECT_EQ(r.packet.total_size, bytes.size());
  EXPECT_EQ(r.packet.params, (Params{{"user", "alice"}, {"database", "app"}}));
  // Views into the input.
  EXPECT_EQ(r.packet.params[0].second.data(), bytes.data() + 13);
  EXPECT_TRUE(r.error.empty());
  EXPECT_TRUE(r.sqlstate.empty());
}

TEST(StartupTest, EmptyValueIsAllowed) {
  const std::string bytes = Startup(std::string("user\0bob\0options\0\0\0", 19));
  const StartupResult r = DecodeStartupPacket(bytes);
  ASSERT_EQ(r.status, DecodeStatus::kOk) << r.error;
  EXPECT_EQ(r.packet.params, (Params{{"user", "bob"}, {"options", ""}}));
}

TEST(StartupTest, SslGssCancel) {
  StartupResult r = DecodeStartupPacket(Packet(kSslRequestCode, ""));
  ASSERT_EQ(r.status, DecodeStatus::kOk);
  EXPECT_EQ(r.packet.kind, StartupPacket::Kind::kSslRequest);
  EXPECT_EQ(r.packet.total_size, 8u);

  r = DecodeStartupPacket(Packet(kGssEncRequestCode, ""));
  ASSERT_EQ(r.status, DecodeStatus::kOk);
  EXPECT_EQ(r.packet.kind, StartupPacket::Kind::kGssEncRequest);

  r = DecodeStartupPacket(Packet(kCancelRequestCode, Int32(4242) + Int32(0xdeadbeef)));
  ASSERT_EQ(r.status, DecodeStatus::kOk);
  EXPECT_EQ(r.packet.kind, StartupPacket::Kind::kCancelRequest);
  EXPECT_EQ(r.packet.cancel_pid, 4242);
  EXPECT_EQ(r.packet.cancel_key, static_cast<int32_t>(0xdeadbeef));
  EXPECT_EQ(r.packet.total_size, 16u);
}

TEST(StartupTest, EveryPrefixNeedsMore) {
  for (const std::string& bytes :
       {Startup(kParams), Packet(kSslRequestCode, ""), Packet(kGssEncRequestCode, ""),
        Packet(kCancelRequestCode, Int32(1) + Int32(2))}) {
    for (size_t n = 0; n < bytes.size(); ++n) {
      const StartupResult r = DecodeStartupPacket(std::string_view(bytes.data(), n));
      EXPECT_EQ(r.status, DecodeStatus::kNeedMore) << "prefix " << n << ": " << r.error;
      EXPECT_EQ(r.packet.total_size, 0u);
      EXPECT_TRUE(r.packet.params.empty());
    }
    EXPECT_EQ(DecodeStartupPacket(bytes).status, DecodeStatus::kOk);
  }
}

TEST(StartupTest, PacketFollowedByMoreBytes) {
  // SSLRequest, then (after the TLS handshake, in practice) the startup
  // message: the decoder takes only the first packet.
  const std::string ssl = Packet(kSslRequestCode, "");
  const std::string startup = Startup(kParams);
  const std::string bytes = ssl + startup;
  StartupResult r = DecodeStartupPacket(bytes);
  ASSERT_EQ(r.status, DecodeStatus::kOk);
  EXPECT_EQ(r.packet.kind, StartupPacket::Kind::kSslRequest);
  EXPECT_EQ(r.packet.total_size, 8u);
  r = DecodeStartupPacket(std::string_view(bytes).substr(r.packet.total_size));
  ASSERT_EQ(r.status, DecodeStatus::kOk) << r.error;
  EXPECT_EQ(r.packet.kind, StartupPacket::Kind::kStartup);
  EXPECT_EQ(r.packet.total_size, startup.size());
  // A startup message followed by the first Query: params stop at the packet.
  r = DecodeStartupPacket(startup + "Q\0\0\0\x05x");
  ASSERT_EQ(r.status, DecodeStatus::kOk) << r.error;
  EXPECT_EQ(r.packet.params.size(), 2u);
}

// A refusal PostgreSQL answers with an ErrorResponse (FATAL).
void ExpectError(std::string_view bytes, std::string_view sqlstate, std::string_view error) {
  const StartupResult r = DecodeStartupPacket(bytes);
  ASSERT_EQ(r.status, DecodeStatus::kError);
  EXPECT_EQ(r.sqlstate, sqlstate);
  EXPECT_EQ(r.error, error);
  EXPECT_FALSE(r.silent) << error;
}

// A refusal PostgreSQL only logs (COMMERROR) before closing: nothing is sent.
void ExpectSilent(std::string_view bytes, std::string_view error) {
  const StartupResult r = DecodeStartupPacket(bytes);
  ASSERT_EQ(r.status, DecodeStatus::kError);
  EXPECT_EQ(r.error, error);
  EXPECT_TRUE(r.silent) << error;
}

TEST(StartupTest, LengthTooShort) {
  // 7 bytes claimed: refused as soon as the length arrives.
  ExpectSilent(Int32(7), "invalid length of startup packet: 7 bytes");
  ExpectSilent(Int32(0), "invalid length of startup packet: 0 bytes");
}

TEST(StartupTest, LengthAtAndOverTheCap) {
  // PostgreSQL allows MAX_STARTUP_PACKET_LENGTH (10000) bytes after the
  // length word: 10004 in all.
  ExpectSilent(Int32(10005), "invalid length of startup packet: 10005 bytes");
  ExpectSilent(Int32(20000), "invalid length of startup packet: 20000 bytes");
  ExpectSilent(Int32(0x80000000u), "invalid length of startup packet: 2147483648 bytes");
  // Exactly 10004: accepted (padding the value of one parameter).
  std::string params("user\0", 5);
  params.append(10004 - 8 - params.size() - 2, 'a');
  params.append("\0\0", 2);
  const std::string bytes = Startup(params);
  ASSERT_EQ(bytes.size(), 10004u);
  const StartupResult r = DecodeStartupPacket(bytes);
  ASSERT_EQ(r.status, DecodeStatus::kOk) << r.error;
  EXPECT_EQ(r.packet.total_size, 10004u);
  // With only its length and code arrived, a 10004-byte packet waits.
  EXPECT_EQ(DecodeStartupPacket(std::string_view(bytes).substr(0, 8)).status,
            DecodeStatus::kNeedMore);
}

// What a client that speaks first sends, read as a startup packet's length:
// PostgreSQL logs "invalid length of startup packet" and closes silently.
TEST(StartupTest, MessagesAndOtherProtocolsSentFirstAreRefusedSilently) {
  ExpectSilent(std::string("X\0\0\0\x04", 5),  // Terminate: 0x58000000 bytes
               "invalid length of startup packet: 1476395008 bytes");
  ExpectSilent(std::string("Q\0\0\0\x0dSELECT 1\0", 14),
               "invalid length of startup packet: 1358954496 bytes");
  ExpectSilent("GET / HTTP/1.1\r\n", "invalid length of startup packet: 1195725856 bytes");
  ExpectSilent("\x16\x03\x01\x02\x00", "invalid length of startup packet: 369295618 bytes");
  // Decided on the length word alone: 4 bytes are enough, 3 are not.
  EXPECT_TRUE(DecodeStartupPacket(std::string("X\0\0\0", 4)).silent);
  EXPECT_EQ(DecodeStartupPacket(std::string("X\0\0", 3)).status, DecodeStatus::kNeedMore);
}

TEST(StartupTest, RequestsMustHaveTheirExactLength) {
  // CancelRequest of 15 bytes: refused once length and code are known;
  // PostgreSQL checks it too, silently.
  ExpectSilent(Int32(15) + Int32(kCancelRequestCode),
               "invalid length of CancelRequest: 15 bytes, expected 16");
  ExpectSilent(Packet(kCancelRequestCode, Int32(1) + Int32(2) + "x"),
               "invalid length of CancelRequest: 17 bytes, expected 16");
  // PostgreSQL answers these whatever their length; the gateway refuses them
  // with an error.
  ExpectError(Packet(kSslRequestCode, "x"), "08P01",
              "invalid length of SSLRequest: 9 bytes, expected 8");
  ExpectError(Int32(9000) + Int32(kGssEncRequestCode), "08P01",
              "invalid length of GSSENCRequest: 9000 bytes, expected 8");
}

TEST(StartupTest, UnsupportedProtocolVersion) {
  ExpectError(Startup(kParams, 2u << 16), "0A000",
              "unsupported frontend protocol 2.0: server supports 3.0");
  // Refused as soon as the version arrives.
  ExpectError(Int32(100) + Int32(4u << 16 | 1), "0A000",
              "unsupported frontend protocol 4.1: server supports 3.0");
}

TEST(StartupTest, MalformedParameters) {
  ExpectError(Startup(std::string("user\0alice\0", 11)), "08P01",
              "invalid startup packet layout: missing the final terminator");
  ExpectError(Startup(""), "08P01", "invalid startup packet layout: missing the final terminator");
  ExpectError(Startup(std::string("user\0alice\0datab", 16)), "08P01",
              "invalid startup packet layout: parameter name is not terminated");
  ExpectError(Startup(std::string("user\0alice\0database\0", 20)), "08P01",
              "invalid startup packet layout: parameter \"database\" has no value");
  ExpectError(Startup(std::string("user\0alice\0database\0app", 23)), "08P01",
              "invalid startup packet layout: parameter \"database\" has no value");
  ExpectError(Startup(std::string("\0alice\0\0", 8)), "08P01",
              "invalid startup packet layout: empty parameter name or data after the terminator");
  ExpectError(Startup(std::string("user\0alice\0\0x", 13)), "08P01",
              "invalid startup packet layout: empty parameter name or data after the terminator");
  ExpectError(Startup(std::string("user\0alice\0user\0postgres\0\0", 26)), "08P01",
              "invalid startup packet: duplicate parameter \"user\"");
  // Client text in errors is escaped.
  ExpectError(Startup(std::string("user\0a\0x\n\0", 10)), "08P01",
              "invalid startup packet layout: parameter \"x\\n\" has no value");
}

TEST(StartupTest, UserIsRequired) {
  ExpectError(Startup(std::string("database\0app\0\0", 14)), "28000",
              "no PostgreSQL user name specified in startup packet");
  ExpectError(Startup(std::string("user\0\0\0", 7)), "28000",
              "no PostgreSQL user name specified in startup packet");
  ExpectError(Startup(std::string("\0", 1)), "28000",
              "no PostgreSQL user name specified in startup packet");
}

TEST(StartupTest, NegotiationNotNeededFor30) {
  const std::string bytes = Startup(kParams);
  const StartupResult r = DecodeStartupPacket(bytes);
  ASSERT_EQ(r.status, DecodeStatus::kOk);
  const NegotiationNeed need = CheckProtocolNegotiation(r.packet);
  EXPECT_FALSE(need.needed);
  EXPECT_EQ(need.newest_minor_supported, 0);
  EXPECT_TRUE(need.unrecognized_options.empty());
}

TEST(StartupTest, NegotiationForNewerMinor) {
  const std::string bytes = Startup(kParams, 3u << 16 | 2);
  const StartupResult r = DecodeStartupPacket(bytes);
  ASSERT_EQ(r.status, DecodeStatus::kOk) << r.error;
  EXPECT_EQ(r.packet.protocol_version, 196610);
  const NegotiationNeed need = CheckProtocolNegotiation(r.packet);
  EXPECT_TRUE(need.needed);
  EXPECT_EQ(need.newest_minor_supported, 0);
  EXPECT_TRUE(need.unrecognized_options.empty());
}

TEST(StartupTest, NegotiationForProtocolOptions) {
  const std::string bytes =
      Startup(std::string("user\0alice\0_pq_.compress\0on\0app\0x\0_pq_.other\0\0\0", 47));
  const StartupResult r = DecodeStartupPacket(bytes);
  ASSERT_EQ(r.status, DecodeStatus::kOk) << r.error;
  const NegotiationNeed need = CheckProtocolNegotiation(r.packet);
  EXPECT_TRUE(need.needed);
  EXPECT_EQ(need.unrecognized_options,
            (std::vector<std::string_view>{"_pq_.compress", "_pq_.other"}));
}

TEST(StartupTest, NoNegotiationForRequests) {
  const StartupResult r = DecodeStartupPacket(Packet(kSslRequestCode, ""));
  ASSERT_EQ(r.status, DecodeStatus::kOk);
  EXPECT_FALSE(CheckProtocolNegotiation(r.packet).needed);
}

}  // namespace
}  // namespace pgb::proto
