// The startup phase: the untyped packets a client sends before the first
// regular message (Int32 length counting itself, Int32 request code, body).
// Spec: https://www.postgresql.org/docs/15/protocol-flow.html#id-1.10.6.7.3
//       https://www.postgresql.org/docs/15/protocol-message-formats.html
//       (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest)
//
// Like the frame decoder this does no I/O: it says "need more", "here is the
// packet" (parameter views point into the input) or "refuse this client"
// with the SQLSTATE and text PostgreSQL would send in its ErrorResponse, or,
// where PostgreSQL sends nothing at all, `silent`: log and close.
//
//   StartupResult r = DecodeStartupPacket(buffer);
//   if (r.status == DecodeStatus::kNeedMore) return ReadMore();
//   if (r.status == DecodeStatus::kError && r.silent) return LogAndClose(r.error);
//   if (r.status == DecodeStatus::kError) return SendFatal(r.sqlstate, r.error);
//   if (r.packet.kind == StartupPacket::Kind::kSslRequest) return StartTls();
//   NegotiationNeed n = CheckProtocolNegotiation(r.packet);
//   if (n.needed) AppendNegotiateProtocolVersion(out, n.newest_minor_supported,
//                                                n.unrecognized_options);
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proto/frame.h"

namespace pgb::proto {

struct StartupPacket {
  enum class Kind { kSslRequest, kGssEncRequest, kCancelRequest, kStartup };
  Kind kind = Kind::kStartup;
  // The request code as sent; for kStartup this is the protocol version,
  // major << 16 | minor.
  int32_t protocol_version = 0;
  int32_t cancel_pid = 0;  // kCancelRequest only
  int32_t cancel_key = 0;  // kCancelRequest only
  // kStartup only: name/value pairs in wire order, views into the input.
  // Names are unique and non-empty; "user" is present and non-empty.
  std::vector<std::pair<std::string_view, std::string_view>> params;
  size_t total_size = 0;  // bytes to consume
};

struct StartupResult {
  DecodeStatus status = DecodeStatus::kNeedMore;
  StartupPacket packet;  // valid on kOk
  std::string error;     // on kError: text for the ErrorResponse (severity FATAL)
  std::string sqlstate;  // on kError: 08P01, 0A000 or 28000
  // On kError: PostgreSQL answers these bytes with no message at all, it only
  // logs (COMMERROR) and closes: a length word out of range (which is what a
  // Terminate, a Query, an HTTP request or a TLS ClientHello sent first reads
  // as) or a CancelRequest of the wrong length. The caller must close without
  // sending a byte; `error` is for its log.
  bool silent = false;
};

// Decodes one startup-phase packet from the front of `bytes`. The length is
// checked (8..kMaxStartupPacketLength) as soon as its 4 bytes arrive, and the
// length a request code implies as soon as the code arrives, so a client
// cannot make the gateway wait for bytes it would refuse anyway.
[[nodiscard]] StartupResult DecodeStartupPacket(std::string_view bytes);

// Whether the server must answer with NegotiateProtocolVersion before
// authenticating: the client asked for a minor version above 3.0 or sent
// protocol options ("_pq_.*" parameters). As in PostgreSQL 15, which supports
// 3.0 and no options (ProcessStartupPacket in postmaster.c).
struct NegotiationNeed {
  int32_t newest_minor_supported = 0;
  std::vector<std::string_view> unrecognized_options;  // views into the packet's input
  bool needed = false;
};
[[nodiscard]] NegotiationNeed CheckProtocolNegotiation(const StartupPacket& packet);

}  // namespace pgb::proto
