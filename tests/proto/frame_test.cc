#include "proto/frame.h"

#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"
#include "proto/protocol.h"
#include "proto/wire.h"

namespace pgb::proto {
namespace {

// A regular message built by hand (not with MessageWriter, so a bug there
// cannot hide one here).
std::string Message(char type, std::string_view body) {
  std::string out(1, type);
  char length[4];
  StoreBigEndian32(length, static_cast<uint32_t>(body.size() + 4));
  out.append(length, 4);
  out.append(body);
  return out;
}

// A header with an arbitrary length field.
std::string Header(char type, uint32_t length) {
  std::string out(1, type);
  char buf[4];
  StoreBigEndian32(buf, length);
  out.append(buf, 4);
  return out;
}

constexpr uint32_t kCap = kDefaultMaxMessageLength;

TEST(FrameTest, KnownTypesPerDirection) {
  // Once logged in: what PostgreSQL's main loop accepts (postgres.c, SocketBackend).
  for (char c : std::string_view("BCDEFHPQSXdcf")) {
    EXPECT_TRUE(IsKnownMessageType(Direction::kFrontend, c)) << c;
  }
  // During login: PasswordMessage (and its SASL/GSS forms), or Terminate.
  for (char c : std::string_view("pX")) {
    EXPECT_TRUE(IsKnownMessageType(Direction::kFrontendLogin, c)) << c;
  }
  for (char c : std::string_view("123ACDEGHIKNRSTVWZnstvdc")) {
    EXPECT_TRUE(IsKnownMessageType(Direction::kBackend, c)) << c;
  }
  int frontend = 0;
  int login = 0;
  int backend = 0;
  for (int i = 0; i < 256; ++i) {
    frontend += IsKnownMessageType(Direction::kFrontend, static_cast<char>(i));
    login += IsKnownMessageType(Direction::kFrontendLogin, static_cast<char>(i));
    backend += IsKnownMessageType(Direction::kBackend, static_cast<char>(i));
  }
  EXPECT_EQ(frontend, 13);
  EXPECT_EQ(login, 2);
  EXPECT_EQ(backend, 24);
  // A password after login, a statement during it.
  EXPECT_FALSE(IsKnownMessageType(Direction::kFrontend, 'p'));
  EXPECT_FALSE(IsKnownMessageType(Direction::kFrontendLogin, 'Q'));
  // Backend-only and frontend-only types.
  EXPECT_FALSE(IsKnownMessageType(Direction::kFrontend, 'Z'));
  EXPECT_FALSE(IsKnownMessageType(Direction::kFrontend, 'R'));
  EXPECT_FALSE(IsKnownMessageType(Direction::kBackend, 'Q'));
  EXPECT_FALSE(IsKnownMessageType(Direction::kBackend, 'p'));
  EXPECT_FALSE(IsKnownMessageType(Direction::kBackend, '\0'));
  EXPECT_FALSE(IsKnownMessageType(Direction::kFrontend, static_cast<char>(0xff)));
}

TEST(FrameTest, MessageNames) {
  EXPECT_STREQ(MessageName(Direction::kFrontend, 'Q'), "Query");
  EXPECT_STREQ(MessageName(Direction::kFrontend, 'D'), "Describe");
  EXPECT_STREQ(MessageName(Direction::kBackend, 'D'), "DataRow");
  EXPECT_STREQ(MessageName(Direction::kBackend, 'C'), "CommandComplete");
  EXPECT_STREQ(MessageName(Direction::kFrontend, 'C'), "Close");
  EXPECT_STREQ(MessageName(Direction::kBackend, 'Z'), "ReadyForQuery");
  EXPECT_STREQ(MessageName(Direction::kBackend, 'd'), "CopyData");
  EXPECT_STREQ(MessageName(Direction::kFrontend, 'c'), "CopyDone");
  EXPECT_STREQ(MessageName(Direction::kFrontend, 'Z'), "unknown");
  EXPECT_STREQ(MessageName(Direction::kBackend, 'x'), "unknown");
  EXPECT_STREQ(MessageName(Direction::kFrontendLogin, 'p'), "PasswordMessage");
  EXPECT_STREQ(MessageName(Direction::kFrontend, 'p'), "unknown");
  // Every known type has a real name.
  for (int i = 0; i < 256; ++i) {
    const char c = static_cast<char>(i);
    for (Direction dir : {Direction::kFrontend, Direction::kBackend, Direction::kFrontendLogin}) {
      EXPECT_EQ(IsKnownMessageType(dir, c), std::string_view(MessageName(dir, c)) != "unknown")
          << i;
    }
  }
}

TEST(FrameTest, DecodesOneMessage) {
  const std::string bytes = Message('Q', std::string("SELECT 1", 9));
  const MessageResult r = DecodeMessage(bytes, Direction::kFrontend, kCap);
  ASSERT_EQ(r.status, DecodeStatus::kOk) << r.error;
  EXPECT_EQ(r.message.type, 'Q');
  EXPECT_EQ(r.message.body, std::string_view("SELECT 1", 9));
  EXPECT_EQ(r.message.total_size, bytes.size());
  EXPECT_EQ(r.message.body.data(), bytes.data() + 5);  // a view, not a copy

  const HeaderResult h = DecodeHeader(bytes, Direction::kFrontend, kCap);
  ASSERT_EQ(h.status, DecodeStatus::kOk);
  EXPECT_EQ(h.header.type, 'Q');
  EXPECT_EQ(h.header.length, 13u);
  EXPECT_EQ(h.header.total(), 14u);
}

TEST(FrameTest, EmptyBody) {
  const std::string bytes = Message('S', "");
  const MessageResult r = DecodeMessage(bytes, Direction::kFrontend, kCap);
  ASSERT_EQ(r.status, DecodeStatus::kOk);
  EXPECT_EQ(r.message.type, 'S');
  EXPECT_TRUE(r.message.body.empty());
  EXPECT_EQ(r.message.total_size, 5u);
}

TEST(FrameTest, EveryPrefixNeedsMore) {
  const std::string bytes = Message('D', std::string("\0\1\0\0\0\3abc", 9));
  for (size_t n = 0; n < bytes.size(); ++n) {
    const std::string_view prefix(bytes.data(), n);
    const MessageResult r = DecodeMessage(prefix, Direction::kBackend, kCap);
    EXPECT_EQ(r.status, DecodeStatus::kNeedMore) << "prefix " << n;
    EXPECT_EQ(r.message.total_size, 0u) << "prefix " << n;  // consumed nothing
    EXPECT_TRUE(r.message.body.empty()) << "prefix " << n;
    const HeaderResult h = DecodeHeader(prefix, Direction::kBackend, kCap);
    EXPECT_EQ(h.status, n < 5 ? DecodeStatus::kNeedMore : DecodeStatus::kOk) << "prefix " << n;
  }
  const MessageResult r = DecodeMessage(bytes, Direction::kBackend, kCap);
  ASSERT_EQ(r.status, DecodeStatus::kOk);
  EXPECT_EQ(r.message.total_size, bytes.size());
}

TEST(FrameTest, SplitAtEveryOffsetReassembles) {
  // Two messages in one stream, delivered as two chunks split at every
  // offset: decoding what has arrived so far must yield both, in order.
  const std::string stream = Message('T', std::string("\0\1a\0", 4)) + Message('Z', "I");
  for (size_t split = 0; split <= stream.size(); ++split) {
    std::string buffer = stream.substr(0, split);
    std::vector<char> types;
    auto drain = [&] {
      for (;;) {
        const MessageResult r = DecodeMessage(buffer, Direction::kBackend, kCap);
        ASSERT_NE(r.status, DecodeStatus::kError) << r.error;
        if (r.status == DecodeStatus::kNeedMore) return;
        types.push_back(r.message.type);
        buffer.erase(0, r.message.total_size);
      }
    };
    drain();
    buffer += stream.substr(split);
    drain();
    EXPECT_EQ(types, (std::vector<char>{'T', 'Z'})) << "split " << split;
    EXPECT_TRUE(buffer.empty()) << "split " << split;
  }
}

TEST(FrameTest, TwoMessagesInOneBuffer) {
  const std::string first = Message('Q', std::string("SELECT 1", 9));
  const std::string second = Message('X', "");
  const std::string bytes = first + second;
  MessageResult r = DecodeMessage(bytes, Direction::kFrontend, kCap);
  ASSERT_EQ(r.status, DecodeStatus::kOk);
  EXPECT_EQ(r.message.type, 'Q');
  EXPECT_EQ(r.message.total_size, first.size());  // does not run into the next one
  EXPECT_EQ(r.message.body.size(), 9u);
  r = DecodeMessage(std::string_view(bytes).substr(first.size()), Direction::kFrontend, kCap);
  ASSERT_EQ(r.status, DecodeStatus::kOk);
  EXPECT_EQ(r.message.type, 'X');
  EXPECT_EQ(r.message.total_size, second.size());
}

TEST(FrameTest, ManyMessagesInOneBuffer) {
  std::string bytes;
  std::vector<std::string> bodies;
  for (int i = 0; i < 100; ++i) {
    bodies.push_back(std::string(static_cast<size_t>(i), static_cast<char>('a' + i % 26)));
    bytes += Message(i % 2 == 0 ? 'D' : 'C', bodies.back());
  }
  std::string_view rest = bytes;
  for (int i = 0; i < 100; ++i) {
    const MessageResult r = DecodeMessage(rest, Direction::kBackend, kCap);
    ASSERT_EQ(r.status, DecodeStatus::kOk) << i;
    EXPECT_EQ(r.message.type, i % 2 == 0 ? 'D' : 'C') << i;
    EXPECT_EQ(r.message.body, bodies[static_cast<size_t>(i)]) << i;
    rest.remove_prefix(r.message.total_size);
  }
  EXPECT_TRUE(rest.empty());
  EXPECT_EQ(DecodeMessage(rest, Direction::kBackend, kCap).status, DecodeStatus::kNeedMore);
}

TEST(FrameTest, LengthBelowFourIsAnError) {
  for (uint32_t length : {0u, 1u, 2u, 3u}) {
    const std::string bytes = Header('Q', length);
    const HeaderResult h = DecodeHeader(bytes, Direction::kFrontend, kCap);
    ASSERT_EQ(h.status, DecodeStatus::kError) << length;
    EXPECT_EQ(h.error, "invalid message length " + std::to_string(length));
    EXPECT_EQ(DecodeMessage(bytes, Direction::kFrontend, kCap).status, DecodeStatus::kError);
  }
}

TEST(FrameTest, LengthAtCapIsAcceptedAndAboveIsRefused) {
  constexpr uint32_t kSmallCap = 100;
  // Exactly at the cap: a valid header, waiting for the body.
  std::string at_cap = Header('D', kSmallCap);
  HeaderResult h = DecodeHeader(at_cap, Direction::kBackend, kSmallCap);
  ASSERT_EQ(h.status, DecodeStatus::kOk);
  EXPECT_EQ(DecodeMessage(at_cap, Direction::kBackend, kSmallCap).status, DecodeStatus::kNeedMore);
  at_cap.append(kSmallCap - 4, 'x');
  const MessageResult m = DecodeMessage(at_cap, Direction::kBackend, kSmallCap);
  ASSERT_EQ(m.status, DecodeStatus::kOk);
  EXPECT_EQ(m.message.body.size(), kSmallCap - 4);

  // One above: refused on the header alone, before any body arrives.
  const std::string over = Header('D', kSmallCap + 1);
  h = DecodeHeader(over, Direction::kBackend, kSmallCap);
  ASSERT_EQ(h.status, DecodeStatus::kError);
  EXPECT_EQ(h.error, "message length 101 exceeds the limit of 100 bytes");
  const MessageResult mo = DecodeMessage(over, Direction::kBackend, kSmallCap);
  EXPECT_EQ(mo.status, DecodeStatus::kError);
  EXPECT_EQ(mo.error, "message length 101 exceeds the limit of 100 bytes");
}

TEST(FrameTest, DefaultCap) {
  EXPECT_EQ(DecodeHeader(Header('D', kCap), Direction::kBackend, kCap).status, DecodeStatus::kOk);
  const HeaderResult h = DecodeHeader(Header('D', 0x80000000u), Direction::kBackend, kCap);
  ASSERT_EQ(h.status, DecodeStatus::kError);
  EXPECT_EQ(h.error, "message length 2147483648 exceeds the limit of 1073741823 bytes");
}

TEST(FrameTest, LengthAboveInt32MaxIsRefusedWhateverTheCap) {
  // PostgreSQL reads the length as a signed Int32; total() must not overflow.
  const HeaderResult h = DecodeHeader(Header('D', 0xffffffffu), Direction::kBackend, 0xffffffffu);
  ASSERT_EQ(h.status, DecodeStatus::kError);
  EXPECT_EQ(h.error, "message length 4294967295 exceeds the limit of 2147483647 bytes");
  EXPECT_EQ(DecodeHeader(Header('D', 0x7fffffffu), Direction::kBackend, 0xffffffffu).status,
            DecodeStatus::kOk);
}

TEST(FrameTest, UnknownTypePerDirection) {
  // 'Z' is a backend message: a client must not send it.
  HeaderResult h = DecodeHeader(Header('Z', 5), Direction::kFrontend, kCap);
  ASSERT_EQ(h.status, DecodeStatus::kError);
  EXPECT_EQ(h.error, "unknown frontend message type 0x5a");
  EXPECT_EQ(DecodeHeader(Header('Z', 5), Direction::kBackend, kCap).status, DecodeStatus::kOk);
  // 'Q' is a frontend message.
  h = DecodeHeader(Header('Q', 5), Direction::kBackend, kCap);
  ASSERT_EQ(h.status, DecodeStatus::kError);
  EXPECT_EQ(h.error, "unknown backend message type 0x51");
  h = DecodeHeader(Header('\x01', 4), Direction::kFrontend, kCap);
  ASSERT_EQ(h.status, DecodeStatus::kError);
  EXPECT_EQ(h.error, "unknown frontend message type 0x01");
  h = DecodeHeader(Header('\xff', 4), Direction::kBackend, kCap);
  ASSERT_EQ(h.status, DecodeStatus::kError);
  EXPECT_EQ(h.error, "unknown backend message type 0xff");
  const MessageResult m = DecodeMessage(Header('\x01', 4), Direction::kFrontend, kCap);
  EXPECT_EQ(m.status, DecodeStatus::kError);
  EXPECT_EQ(m.error, "unknown frontend message type 0x01");
}

// A client message of the other phase is refused like an unknown one, and
// named: PostgreSQL's "invalid frontend message type".
TEST(FrameTest, AMessageOfTheOtherLoginPhaseIsInvalid) {
  const auto error_of = [](char type, Direction dir) {
    const HeaderResult h = DecodeHeader(Header(type, 9), dir, kCap);
    return h.status == DecodeStatus::kOk ? std::string("ok") : std::string(h.error);
  };
  EXPECT_EQ(error_of('p', Direction::kFrontend),
            "invalid frontend message type 0x70: PasswordMessage is only valid during login");
  EXPECT_EQ(error_of('Q', Direction::kFrontendLogin),
            "invalid frontend message type 0x51: Query is only valid after login");
  EXPECT_EQ(error_of('Z', Direction::kFrontendLogin), "unknown frontend message type 0x5a");
  EXPECT_EQ(error_of('p', Direction::kFrontendLogin), "ok");
  EXPECT_EQ(error_of('X', Direction::kFrontendLogin), "ok");
  // On its type byte alone, before a length that could ask for anything.
  EXPECT_EQ(DecodeHeader(std::string_view("p", 1), Direction::kFrontend, kCap).status,
            DecodeStatus::kError);
}

TEST(FrameTest, UnknownTypeFailsOnTheFirstByte) {
  EXPECT_EQ(DecodeHeader(std::string_view("\x01", 1), Direction::kFrontend, kCap).status,
            DecodeStatus::kError);
  EXPECT_EQ(DecodeMessage(std::string_view("Z\0", 2), Direction::kFrontend, kCap).status,
            DecodeStatus::kError);
  EXPECT_EQ(DecodeHeader(std::string_view("Q\0", 2), Direction::kFrontend, kCap).status,
            DecodeStatus::kNeedMore);
}

TEST(FrameTest, ErrorReportsWhatWasRead) {
  const HeaderResult h = DecodeHeader(Header('Q', 2), Direction::kFrontend, kCap);
  ASSERT_EQ(h.status, DecodeStatus::kError);
  EXPECT_EQ(h.header.type, 'Q');
  EXPECT_EQ(h.header.length, 2u);
}

}  // namespace
}  // namespace pgb::proto
