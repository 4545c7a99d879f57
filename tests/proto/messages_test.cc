#include "proto/messages.h"

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "proto/frame.h"
#include "proto/protocol.h"
#include "proto/startup.h"

namespace pgb::proto {
namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;

// Frames exactly one backend or frontend message from `bytes` and returns it.
MessageView Single(const std::string& bytes, Direction dir) {
  const MessageResult r = DecodeMessage(bytes, dir, kDefaultMaxMessageLength);
  EXPECT_EQ(r.status, DecodeStatus::kOk) << r.error;
  EXPECT_EQ(r.message.total_size, bytes.size()) << "trailing bytes after the message";
  return r.message;
}

TEST(MessagesTest, ErrorResponseLayoutByteForByte) {
  std::string out = "prefix";  // builders append
  AppendErrorResponse(out, {"ERROR", "42501", "denied", "rule r1", ""});
  const std::string_view expected =
      "prefix"
      "E\0\0\0\x2b"  // 4 + 7 + 7 + 7 + 8 + 9 + 1 = 43
      "SERROR\0"
      "VERROR\0"
      "C42501\0"
      "Mdenied\0"
      "Drule r1\0"
      "\0"sv;
  EXPECT_EQ(out, expected);
}

TEST(MessagesTest, ErrorResponseRoundTrip) {
  const ErrorFields in{"FATAL", "28P01", "password authentication failed", "detail text", "a hint"};
  std::string out;
  AppendErrorResponse(out, in);
  const MessageView m = Single(out, Direction::kBackend);
  EXPECT_EQ(m.type, kPqMsg_ErrorResponse);
  absl::StatusOr<ErrorFields> parsed = ParseErrorFields(m.body);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->severity, in.severity);
  EXPECT_EQ(parsed->sqlstate, in.sqlstate);
  EXPECT_EQ(parsed->message, in.message);
  EXPECT_EQ(parsed->detail, in.detail);
  EXPECT_EQ(parsed->hint, in.hint);
}

TEST(MessagesTest, NoticeResponseRoundTrip) {
  std::string out;
  AppendNoticeResponse(out, {"NOTICE", "00000", "approval requested: 17", "", ""});
  const MessageView m = Single(out, Direction::kBackend);
  EXPECT_EQ(m.type, kPqMsg_NoticeResponse);
  absl::StatusOr<ErrorFields> parsed = ParseErrorFields(m.body);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->severity, "NOTICE");
  EXPECT_EQ(parsed->message, "approval requested: 17");
  EXPECT_TRUE(parsed->detail.empty());
  EXPECT_EQ(out.find('D', 5), std::string::npos);  // empty detail not sent
}

TEST(MessagesTest, EmbeddedNulCannotForgeFields) {
  std::string out;
  AppendErrorResponse(out, {"ERROR", "42501", "bad\0Ssecret"s, "", ""});
  absl::StatusOr<ErrorFields> parsed = ParseErrorFields(Single(out, Direction::kBackend).body);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->message, "bad");
  EXPECT_EQ(parsed->severity, "ERROR");
}

TEST(MessagesTest, ParseErrorFieldsPrefersV) {
  absl::StatusOr<ErrorFields> parsed = ParseErrorFields("SFEHLER\0VERROR\0C22012\0Mx\0\0"sv);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->severity, "ERROR");
  parsed = ParseErrorFields("SFEHLER\0C22012\0Mx\0\0"sv);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->severity, "FEHLER");
}

TEST(MessagesTest, ParseErrorFieldsSkipsUnknownFields) {
  absl::StatusOr<ErrorFields> parsed =
      ParseErrorFields("SERROR\0P12\0Fscan.l\0C42601\0Msyntax error\0R\0\0"sv);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->sqlstate, "42601");
  EXPECT_EQ(parsed->message, "syntax error");
}

TEST(MessagesTest, ParseErrorFieldsRejectsMalformed) {
  EXPECT_FALSE(ParseErrorFields(""sv).ok());                // no terminator
  EXPECT_FALSE(ParseErrorFields("SERROR\0"sv).ok());        // no terminator
  EXPECT_FALSE(ParseErrorFields("SERROR"sv).ok());          // field not terminated
  EXPECT_FALSE(ParseErrorFields("SERROR\0\0junk"sv).ok());  // bytes after it
  EXPECT_EQ(ParseErrorFields("SERROR"sv).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ParseErrorFields("\0"sv).ok());
}

TEST(MessagesTest, AuthenticationOkAndCleartext) {
  std::string out;
  AppendAuthenticationOk(out);
  EXPECT_EQ(out, "R\0\0\0\x08\0\0\0\0"sv);
  MessageView m = Single(out, Direction::kBackend);
  absl::StatusOr<AuthenticationRequest> req = ParseAuthenticationRequest(m.body);
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->code, kAuthReqOk);

  out.clear();
  AppendAuthenticationCleartextPassword(out);
  req = ParseAuthenticationRequest(Single(out, Direction::kBackend).body);
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->code, kAuthReqPassword);
}

TEST(MessagesTest, AuthenticationMd5) {
  std::string out;
  AppendAuthenticationMd5Password(out, "\x01\x00\xff\x7f"sv);
  absl::StatusOr<AuthenticationRequest> req =
      ParseAuthenticationRequest(Single(out, Direction::kBackend).body);
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->code, kAuthReqMd5);
  EXPECT_EQ(req->md5_salt, "\x01\x00\xff\x7f"sv);
}

TEST(MessagesTest, AuthenticationSasl) {
  std::string out;
  AppendAuthenticationSasl(out, {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"});
  absl::StatusOr<AuthenticationRequest> req =
      ParseAuthenticationRequest(Single(out, Direction::kBackend).body);
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->code, kAuthReqSasl);
  EXPECT_EQ(req->sasl_mechanisms,
            (std::vector<std::string_view>{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}));

  for (int32_t code : {kAuthReqSaslContinue, kAuthReqSaslFinal}) {
    out.clear();
    const std::string_view data = "r=abc,s=c2FsdA==,i=4096\0binary"sv;
    if (code == kAuthReqSaslContinue) {
      AppendAuthenticationSaslContinue(out, data);
    } else {
      AppendAuthenticationSaslFinal(out, data);
    }
    req = ParseAuthenticationRequest(Single(out, Direction::kBackend).body);
    ASSERT_TRUE(req.ok()) << req.status();
    EXPECT_EQ(req->code, code);
    EXPECT_EQ(req->sasl_data, data);  // opaque bytes, NUL included
  }
}

TEST(MessagesTest, ParseAuthenticationRejectsMalformed) {
  EXPECT_FALSE(ParseAuthenticationRequest("\0\0\0"sv).ok());
  EXPECT_FALSE(ParseAuthenticationRequest("\0\0\0\0x"sv).ok());                  // Ok with extra
  EXPECT_FALSE(ParseAuthenticationRequest("\0\0\0\x05\1\2\3"sv).ok());           // short salt
  EXPECT_FALSE(ParseAuthenticationRequest("\0\0\0\x05\1\2\3\4\5"sv).ok());       // long salt
  EXPECT_FALSE(ParseAuthenticationRequest("\0\0\0\x0aSCRAM-SHA-256\0"sv).ok());  // no end
  EXPECT_FALSE(ParseAuthenticationRequest("\0\0\0\x0a\0"sv).ok());               // no mechanisms
  const absl::Status gss = ParseAuthenticationRequest("\0\0\0\x07"sv).status();
  EXPECT_EQ(gss.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(gss.message(), "unsupported authentication request code 7");
}

TEST(MessagesTest, ParameterStatus) {
  std::string out;
  AppendParameterStatus(out, "server_version", "15.8");
  const MessageView m = Single(out, Direction::kBackend);
  EXPECT_EQ(m.type, kPqMsg_ParameterStatus);
  absl::StatusOr<std::pair<std::string_view, std::string_view>> p = ParseParameterStatus(m.body);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->first, "server_version");
  EXPECT_EQ(p->second, "15.8");
  EXPECT_FALSE(ParseParameterStatus("a\0b"sv).ok());
  EXPECT_FALSE(ParseParameterStatus("a\0b\0c"sv).ok());
}

TEST(MessagesTest, BackendKeyData) {
  std::string out;
  AppendBackendKeyData(out, 12345, -2);
  const MessageView m = Single(out, Direction::kBackend);
  EXPECT_EQ(m.type, kPqMsg_BackendKeyData);
  absl::StatusOr<std::pair<int32_t, int32_t>> k = ParseBackendKeyData(m.body);
  ASSERT_TRUE(k.ok()) << k.status();
  EXPECT_EQ(k->first, 12345);
  EXPECT_EQ(k->second, -2);
  EXPECT_FALSE(ParseBackendKeyData("1234567"sv).ok());
  EXPECT_FALSE(ParseBackendKeyData("123456789"sv).ok());
}

TEST(MessagesTest, ReadyForQuery) {
  for (char status : {kTxnIdle, kTxnInBlock, kTxnFailed}) {
    std::string out;
    AppendReadyForQuery(out, status);
    EXPECT_EQ(out, std::string("Z\0\0\0\x05", 5) + status);
    absl::StatusOr<char> s = ParseReadyForQuery(Single(out, Direction::kBackend).body);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ(*s, status);
  }
  EXPECT_FALSE(ParseReadyForQuery("X"sv).ok());
  EXPECT_FALSE(ParseReadyForQuery(""sv).ok());
  EXPECT_FALSE(ParseReadyForQuery("II"sv).ok());
}

TEST(MessagesTest, NegotiateProtocolVersionLayout) {
  std::string out;
  AppendNegotiateProtocolVersion(out, 0, {"_pq_.a", "_pq_.b"});
  EXPECT_EQ(out, "v\0\0\0\x1a\0\0\0\0\0\0\0\x02_pq_.a\0_pq_.b\0"sv);
  EXPECT_EQ(Single(out, Direction::kBackend).type, kPqMsg_NegotiateProtocolVersion);
}

TEST(MessagesTest, StartupMessageRoundTrip) {
  std::string out;
  AppendStartupMessage(out, kProtocolVersion3,
                       {{"user", "pgb_session_17"}, {"database", "app"}, {"application_name", ""}});
  const StartupResult r = DecodeStartupPacket(out);
  ASSERT_EQ(r.status, DecodeStatus::kOk) << r.error;
  EXPECT_EQ(r.packet.kind, StartupPacket::Kind::kStartup);
  EXPECT_EQ(r.packet.protocol_version, kProtocolVersion3);
  EXPECT_EQ(r.packet.total_size, out.size());
  EXPECT_EQ(r.packet.params,
            (std::vector<std::pair<std::string_view, std::string_view>>{
                {"user", "pgb_session_17"}, {"database", "app"}, {"application_name", ""}}));
}

TEST(MessagesTest, CancelAndSslRequestRoundTrip) {
  std::string out;
  AppendCancelRequest(out, 777, -123456789);
  EXPECT_EQ(out.size(), 16u);
  StartupResult r = DecodeStartupPacket(out);
  ASSERT_EQ(r.status, DecodeStatus::kOk) << r.error;
  EXPECT_EQ(r.packet.kind, StartupPacket::Kind::kCancelRequest);
  EXPECT_EQ(r.packet.cancel_pid, 777);
  EXPECT_EQ(r.packet.cancel_key, -123456789);

  out.clear();
  AppendSslRequest(out);
  EXPECT_EQ(out, "\0\0\0\x08\x04\xd2\x16\x2f"sv);
  r = DecodeStartupPacket(out);
  ASSERT_EQ(r.status, DecodeStatus::kOk) << r.error;
  EXPECT_EQ(r.packet.kind, StartupPacket::Kind::kSslRequest);
}

TEST(MessagesTest, PasswordMessage) {
  std::string out;
  AppendPasswordMessage(out, "eyJhbGciOiJSUzI1NiJ9.e30.sig");
  const MessageView m = Single(out, Direction::kFrontendLogin);
  EXPECT_EQ(m.type, kPqMsg_PasswordMessage);
  absl::StatusOr<std::string_view> p = ParsePasswordMessage(m.body);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(*p, "eyJhbGciOiJSUzI1NiJ9.e30.sig");
  EXPECT_FALSE(ParsePasswordMessage("secret"sv).ok());
  EXPECT_FALSE(ParsePasswordMessage("secret\0x"sv).ok());
  EXPECT_TRUE(ParsePasswordMessage("\0"sv).ok());
}

TEST(MessagesTest, SaslInitialResponse) {
  std::string out;
  AppendSaslInitialResponse(out, "SCRAM-SHA-256", "n,,n=,r=rOprNGfwEbeRWgbNEkqO"sv);
  MessageView m = Single(out, Direction::kFrontendLogin);
  absl::StatusOr<SaslInitialResponse> s = ParseSaslInitialResponse(m.body);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->mechanism, "SCRAM-SHA-256");
  EXPECT_TRUE(s->has_data);
  EXPECT_EQ(s->data, "n,,n=,r=rOprNGfwEbeRWgbNEkqO");

  out.clear();
  AppendSaslInitialResponse(out, "SCRAM-SHA-256", std::nullopt);
  EXPECT_EQ(out, "p\0\0\0\x16SCRAM-SHA-256\0\xff\xff\xff\xff"sv);
  s = ParseSaslInitialResponse(Single(out, Direction::kFrontendLogin).body);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->has_data);
  EXPECT_TRUE(s->data.empty());

  out.clear();
  AppendSaslInitialResponse(out, "X", ""sv);
  s = ParseSaslInitialResponse(Single(out, Direction::kFrontendLogin).body);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->has_data);  // empty, not absent
}

TEST(MessagesTest, SaslInitialResponseLengthMustFit) {
  EXPECT_FALSE(ParseSaslInitialResponse("SCRAM"sv).ok());
  EXPECT_FALSE(ParseSaslInitialResponse("SCRAM\0\0\0"sv).ok());
  EXPECT_FALSE(ParseSaslInitialResponse("SCRAM\0\0\0\0\x05"
                                        "abcd"sv)
                   .ok());  // too long
  EXPECT_FALSE(ParseSaslInitialResponse("SCRAM\0\0\0\0\x03"
                                        "abcd"sv)
                   .ok());                                                    // short
  EXPECT_FALSE(ParseSaslInitialResponse("SCRAM\0\xff\xff\xff\xfe"sv).ok());   // -2
  EXPECT_FALSE(ParseSaslInitialResponse("SCRAM\0\x7f\xff\xff\xff"sv).ok());   // huge
  EXPECT_FALSE(ParseSaslInitialResponse("SCRAM\0\xff\xff\xff\xffx"sv).ok());  // -1 + data
  const absl::Status st = ParseSaslInitialResponse(
                              "SCRAM\0\0\0\0\x05"
                              "abcd"sv)
                              .status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(),
            "malformed SASLInitialResponse: data length 5 does not match the 4 bytes that follow");
}

TEST(MessagesTest, SaslResponseAndTerminate) {
  std::string out;
  AppendSaslResponse(out, "c=biws,r=abc,p=xyz");
  MessageView m = Single(out, Direction::kFrontendLogin);
  EXPECT_EQ(m.type, kPqMsg_PasswordMessage);
  EXPECT_EQ(m.body, "c=biws,r=abc,p=xyz");
  out.clear();
  AppendTerminate(out);
  EXPECT_EQ(out, "X\0\0\0\x04"sv);
}

TEST(MessagesTest, BuildersAppendBackToBack) {
  // A typical startup reply: several messages in one buffer, each framed.
  std::string out;
  AppendAuthenticationOk(out);
  AppendParameterStatus(out, "client_encoding", "UTF8");
  AppendBackendKeyData(out, 1, 2);
  AppendReadyForQuery(out, kTxnIdle);
  std::vector<char> types;
  std::string_view rest = out;
  while (!rest.empty()) {
    const MessageResult r = DecodeMessage(rest, Direction::kBackend, kDefaultMaxMessageLength);
    ASSERT_EQ(r.status, DecodeStatus::kOk) << r.error;
    types.push_back(r.message.type);
    rest.remove_prefix(r.message.total_size);
  }
  EXPECT_EQ(types, (std::vector<char>{'R', 'S', 'K', 'Z'}));
}

// A Bind body: portal, statement, format codes, parameters (nullopt: NULL),
// no result formats.
std::string BindBody(std::string_view portal, std::string_view statement,
                     const std::vector<int16_t>& formats,
                     const std::vector<std::optional<std::string>>& values) {
  std::string b;
  const auto int16 = [&](int v) {
    b.push_back(static_cast<char>((v >> 8) & 0xff));
    b.push_back(static_cast<char>(v & 0xff));
  };
  const auto int32 = [&](int32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8)
      b.push_back(static_cast<char>((v >> shift) & 0xff));
  };
  b.append(portal).push_back('\0');
  b.append(statement).push_back('\0');
  int16(static_cast<int>(formats.size()));
  for (int16_t f : formats) int16(f);
  int16(static_cast<int>(values.size()));
  for (const auto& v : values) {
    int32(v ? static_cast<int32_t>(v->size()) : -1);
    if (v) b += *v;
  }
  int16(0);
  return b;
}

TEST(MessagesTest, BindPrefixWhole) {
  const std::string body = BindBody("p1", "s1", {0, 1}, {"42", "\x01\x02"s});
  const BindPrefix bind = ReadBindPrefix(body);
  EXPECT_EQ(bind.portal, "p1");
  EXPECT_EQ(bind.statement, "s1");
  ASSERT_EQ(bind.parameters.size(), 2u);
  EXPECT_EQ(bind.parameters[0].length, 2);
  EXPECT_FALSE(bind.parameters[0].binary);
  EXPECT_EQ(bind.parameters[0].value, "42");
  EXPECT_TRUE(bind.parameters[1].binary);
  EXPECT_EQ(bind.parameters[1].value, "\x01\x02"sv);
  EXPECT_EQ(bind.count, 2);
  EXPECT_TRUE(bind.complete);
}

TEST(MessagesTest, BindPrefixOneFormatForAllAndNull) {
  const BindPrefix bind = ReadBindPrefix(BindBody("", "", {1}, {std::nullopt, "abcd"}));
  ASSERT_EQ(bind.parameters.size(), 2u);
  EXPECT_EQ(bind.parameters[0].length, -1);
  EXPECT_TRUE(bind.parameters[1].binary);
  EXPECT_TRUE(bind.complete);
}

TEST(MessagesTest, BindPrefixCutShortAtEveryOffset) {
  const std::string body = BindBody("portal", "stmt", {}, {"first value", std::nullopt, "x"});
  for (size_t n = 0; n < body.size() - 2; ++n) {  // the last 2 bytes: result formats
    const BindPrefix bind = ReadBindPrefix(std::string_view(body).substr(0, n));
    EXPECT_FALSE(bind.complete) << n;
    EXPECT_LE(bind.parameters.size(), 3u) << n;
    for (const BindParameter& p : bind.parameters) {
      EXPECT_LE(p.value.size(), static_cast<size_t>(std::max(p.length, 0))) << n;
    }
    if (n >= 12) {
      EXPECT_EQ(bind.statement, "stmt") << n;
    }
  }
  EXPECT_TRUE(ReadBindPrefix(std::string_view(body).substr(0, body.size() - 2)).complete);
}

TEST(MessagesTest, BindPrefixMalformedEndsTheList) {
  // A count of 1000 parameters with nothing behind it yields none, not 1000.
  std::string body = BindBody("", "", {}, {});
  body[4] = '\x03';
  body[5] = '\xe8';
  const BindPrefix bind = ReadBindPrefix(body);
  EXPECT_TRUE(bind.parameters.empty());
  EXPECT_FALSE(bind.complete);
  // Two format codes for three parameters is not a Bind.
  EXPECT_FALSE(ReadBindPrefix(BindBody("", "", {0, 0}, {"a", "b", "c"})).complete);
  // A length below -1.
  std::string negative = BindBody("", "", {}, {"abc"});
  negative[6] = negative[7] = negative[8] = negative[9] = '\xf0';
  EXPECT_FALSE(ReadBindPrefix(negative).complete);
}

// The count boundaries of an Int16 count read the way PostgreSQL reads it
// (pq_getmsgint(msg, 2): unsigned, 0..65535).
constexpr int kCountBoundaries[] = {0, 1, 32767, 32768, 40000, 65535};

// A Parse body: name, text, `types` parameter type OIDs (int4, 23).
std::string ParseBody(std::string_view statement, std::string_view sql, int types) {
  std::string b;
  b.append(statement).push_back('\0');
  b.append(sql).push_back('\0');
  b.push_back(static_cast<char>((types >> 8) & 0xff));
  b.push_back(static_cast<char>(types & 0xff));
  for (int i = 0; i < types; ++i) b.append("\0\0\0\x17", 4);
  return b;
}

TEST(MessagesTest, ParseReadsItsParts) {
  const std::string body = ParseBody("s1", "SELECT $1", 1);
  absl::StatusOr<ParseMessage> parse = ParseParseMessage(body);
  ASSERT_TRUE(parse.ok()) << parse.status();
  EXPECT_EQ(parse->statement, "s1");
  EXPECT_EQ(parse->sql, "SELECT $1");
  EXPECT_EQ(parse->parameter_types, 1);
  // What AppendParse writes (no types) reads back.
  std::string built;
  AppendParse(built, "s2", "SELECT 1");
  parse = ParseParseMessage(Single(built, Direction::kFrontend).body);
  ASSERT_TRUE(parse.ok()) << parse.status();
  EXPECT_EQ(parse->parameter_types, 0);
}

TEST(MessagesTest, ParseParameterTypeCountIsUnsigned) {
  for (int n : kCountBoundaries) {
    const std::string body = ParseBody("", "SELECT 1", n);
    absl::StatusOr<ParseMessage> parse = ParseParseMessage(body);
    ASSERT_TRUE(parse.ok()) << n << ": " << parse.status();
    EXPECT_EQ(parse->parameter_types, n);
    // One type short, or a byte too many: refused.
    EXPECT_FALSE(ParseParseMessage(body + "x").ok()) << n;
    if (n > 0) {
      EXPECT_FALSE(ParseParseMessage(body.substr(0, body.size() - 4)).ok()) << n;
    }
  }
  // A count of 65535 with two types behind it is cut short, not negative.
  std::string cut = ParseBody("", "SELECT 1", 2);
  cut[10] = cut[11] = '\xff';
  absl::StatusOr<ParseMessage> parse = ParseParseMessage(cut);
  ASSERT_FALSE(parse.ok());
  EXPECT_NE(parse.status().message().find("cut short"), std::string_view::npos) << parse.status();
  EXPECT_FALSE(ParseParseMessage(std::string("\0SELECT 1\0\x01", 11)).ok());  // count cut
}

TEST(MessagesTest, BindCountsAreUnsigned) {
  for (int n : kCountBoundaries) {
    // n parameters, all NULL; no format codes, one for all, and one each.
    const std::vector<std::optional<std::string>> values(static_cast<size_t>(n));
    for (const std::vector<int16_t>& formats : {std::vector<int16_t>{}, std::vector<int16_t>{1},
                                                std::vector<int16_t>(static_cast<size_t>(n), 0)}) {
      const std::string body = BindBody("p", "s", formats, values);
      const BindPrefix bind = ReadBindPrefix(body);
      EXPECT_EQ(bind.count, n) << formats.size();
      EXPECT_EQ(bind.parameters.size(), static_cast<size_t>(n)) << formats.size();
      EXPECT_TRUE(bind.complete) << n << " " << formats.size();
      if (n > 0) {
        EXPECT_EQ(bind.parameters.back().binary, formats == std::vector<int16_t>{1});
      }
      // A prefix of it (as the audit peeks) still knows the count.
      const BindPrefix cut =
          ReadBindPrefix(std::string_view(body).substr(0, 64 + 2 * formats.size()));
      EXPECT_EQ(cut.count, n);
      EXPECT_EQ(cut.complete, n * 4 <= 56) << n << " " << formats.size();  // 56: after the counts
    }
  }
  // n format codes for n + 1 parameters: not a Bind, above 32767 as below.
  EXPECT_FALSE(ReadBindPrefix(BindBody("", "", std::vector<int16_t>(40000, 0),
                                       std::vector<std::optional<std::string>>(40001)))
                   .complete);
}

}  // namespace
}  // namespace pgb::proto
