// Framing of regular v3 protocol messages: a type byte, then an Int32 length
// that counts itself but not the type byte, then the body.
// Spec: https://www.postgresql.org/docs/15/protocol-overview.html#PROTOCOL-MESSAGE-CONCEPTS
//       https://www.postgresql.org/docs/15/protocol-message-formats.html
//
// The decoder does no I/O and copies nothing: it looks at the front of a
// receive buffer and says "need more bytes", "here is one message" (a view
// into the buffer) or "this stream is broken" (fail closed: send an
// ErrorResponse with SQLSTATE 08P01 and disconnect).
//
//   MessageResult r = DecodeMessage(buffer, Direction::kFrontend, max_length);
//   switch (r.status) {
//     case DecodeStatus::kNeedMore: return ReadMore();            // buffer untouched
//     case DecodeStatus::kError: return FailClosed(r.error);      // 08P01
//     case DecodeStatus::kOk: Handle(r.message); buffer.remove_prefix(r.message.total_size);
//   }
//
// The hot path is inline here; error texts are built out of line. The
// results are small structs rather than absl::StatusOr (the project's error
// convention elsewhere): a decode runs for every message on the data path,
// must tell "need more bytes" from an error, and must not allocate, so an
// error's text lives in thread-local storage (HeaderResult::error).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>

#include "proto/protocol.h"
#include "proto/wire.h"

namespace pgb::proto {

// Which stream a message comes in, and for the client's, which phase:
// kFrontend is client -> server once logged in, where PostgreSQL's main loop
// (postgres.c, SocketBackend) accepts only Query, FunctionCall, Terminate,
// the extended protocol and COPY; kFrontendLogin is client -> server while
// the authentication exchange runs, where only a PasswordMessage (or its
// SASL/GSS forms, all type 'p') and Terminate may come; kBackend is
// server -> client. A PasswordMessage after login is therefore a framing
// error, refused at its header like an unknown type, never forwarded.
enum class Direction { kFrontend, kBackend, kFrontendLogin };

// Whether `type` is a message type that may come in that direction (and
// phase), after the startup packet.
[[nodiscard]] inline bool IsKnownMessageType(Direction dir, char type);

// PostgreSQL's name for the message ("Query", "DataRow", ...), or "unknown".
// For logs; never null.
[[nodiscard]] const char* MessageName(Direction dir, char type);

struct FrameHeader {
  char type = 0;
  uint32_t length = 0;  // as on the wire: counts itself, >= 4 once decoded
  // The whole message including the type byte. Never overflows: DecodeHeader
  // rejects lengths above INT32_MAX whatever the cap.
  uint32_t total() const { return length + 1; }
};

enum class DecodeStatus { kNeedMore, kOk, kError };

struct HeaderResult {
  DecodeStatus status = DecodeStatus::kNeedMore;
  // On kOk the header; on kError what was read (for logs); zero on kNeedMore.
  FrameHeader header;
  // On kError a message fit for an ErrorResponse ("invalid message length 2").
  // It points into storage owned by this thread and stays valid until the next
  // decode error on the same thread: copy it if you keep it.
  std::string_view error;
};

// Decodes the 5-byte header at the front of `bytes`. Needs 5 bytes, except
// that an unknown type byte is reported as soon as it arrives. The length is
// checked against `max_length` (and against INT32_MAX, PostgreSQL reads it as
// a signed Int32) before the type.
[[nodiscard]] inline HeaderResult DecodeHeader(std::string_view bytes, Direction dir,
                                               uint32_t max_length);

struct MessageView {
  char type = 0;
  std::string_view body;  // after the 5-byte header; a view into the input
  size_t total_size = 0;  // header + body: how many bytes to consume
};

struct MessageResult {
  DecodeStatus status = DecodeStatus::kNeedMore;
  MessageView message;     // valid on kOk
  std::string_view error;  // on kError; same lifetime as HeaderResult::error
};

// Decodes one complete message from the front of `bytes`; kNeedMore until all
// of it has arrived. Never reads past the message.
[[nodiscard]] inline MessageResult DecodeMessage(std::string_view bytes, Direction dir,
                                                 uint32_t max_length);

// ---------------------------------------------------------------------------
// Implementation details.

namespace internal {

// One bit per Direction. One table lookup per message.
inline constexpr uint8_t kFrontendBit = 1;
inline constexpr uint8_t kBackendBit = 2;
inline constexpr uint8_t kFrontendLoginBit = 4;

constexpr uint8_t DirectionBit(Direction dir) {
  switch (dir) {
    case Direction::kFrontend:
      return kFrontendBit;
    case Direction::kBackend:
      return kBackendBit;
    case Direction::kFrontendLogin:
      return kFrontendLoginBit;
  }
  return 0;
}

constexpr std::array<uint8_t, 256> MakeTypeTable() {
  std::array<uint8_t, 256> t{};
  for (char c : std::string_view("BCDEFHPQSXdcf")) {
    t[static_cast<unsigned char>(c)] |= kFrontendBit;
  }
  for (char c : std::string_view("pX")) {
    t[static_cast<unsigned char>(c)] |= kFrontendLoginBit;
  }
  for (char c : std::string_view("123ACDEGHIKNRSTVWZnstvdc")) {
    t[static_cast<unsigned char>(c)] |= kBackendBit;
  }
  return t;
}
inline constexpr std::array<uint8_t, 256> kTypeTable = MakeTypeTable();

// Cold paths: format the error text into thread-local storage.
[[nodiscard]] HeaderResult InvalidLength(char type, uint32_t length);
[[nodiscard]] HeaderResult LengthOverLimit(char type, uint32_t length, uint32_t limit);
[[nodiscard]] HeaderResult UnknownType(Direction dir, char type, uint32_t length);

}  // namespace internal

inline bool IsKnownMessageType(Direction dir, char type) {
  return (internal::kTypeTable[static_cast<unsigned char>(type)] & internal::DirectionBit(dir)) !=
         0;
}

inline HeaderResult DecodeHeader(std::string_view bytes, Direction dir, uint32_t max_length) {
  HeaderResult result;
  if (bytes.size() < kHeaderLength) [[unlikely]] {
    // Fail fast on garbage: the type byte alone can prove the stream broken.
    if (!bytes.empty() && !IsKnownMessageType(dir, bytes[0])) {
      return internal::UnknownType(dir, bytes[0], 0);
    }
    return result;
  }
  const char type = bytes[0];
  const uint32_t length = LoadBigEndian32(bytes.data() + 1);
  constexpr uint32_t kMaxRepresentable = std::numeric_limits<int32_t>::max();
  const uint32_t limit = max_length < kMaxRepresentable ? max_length : kMaxRepresentable;
  if (length < 4) [[unlikely]] {
    return internal::InvalidLength(type, length);
  }
  if (length > limit) [[unlikely]] {
    return internal::LengthOverLimit(type, length, limit);
  }
  if (!IsKnownMessageType(dir, type)) [[unlikely]] {
    return internal::UnknownType(dir, type, length);
  }
  result.status = DecodeStatus::kOk;
  result.header.type = type;
  result.header.length = length;
  return result;
}

inline MessageResult DecodeMessage(std::string_view bytes, Direction dir, uint32_t max_length) {
  MessageResult result;
  const HeaderResult h = DecodeHeader(bytes, dir, max_length);
  if (h.status != DecodeStatus::kOk) {
    result.status = h.status;
    result.error = h.error;
    return result;
  }
  const size_t total = size_t{h.header.length} + 1;
  if (bytes.size() < total) return result;  // kNeedMore
  result.status = DecodeStatus::kOk;
  result.message.type = h.header.type;
  result.message.body = bytes.substr(kHeaderLength, total - kHeaderLength);
  result.message.total_size = total;
  return result;
}

}  // namespace pgb::proto
