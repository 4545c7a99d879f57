#include "proto/frame.h"

#include <cstdio>

namespace pgb::proto {

const char* MessageName(Direction dir, char type) {
  if (!IsKnownMessageType(dir, type)) return "unknown";
  // https://www.postgresql.org/docs/15/protocol-message-formats.html
  switch (type) {
    case kPqMsg_CopyData:
      return "CopyData";
    case kPqMsg_CopyDone:
      return "CopyDone";
    default:
      break;
  }
  if (dir != Direction::kBackend) {
    switch (type) {
      case kPqMsg_Bind:
        return "Bind";
      case kPqMsg_Close:
        return "Close";
      case kPqMsg_Describe:
        return "Describe";
      case kPqMsg_Execute:
        return "Execute";
      case kPqMsg_FunctionCall:
        return "FunctionCall";
      case kPqMsg_Flush:
        return "Flush";
      case kPqMsg_Parse:
        return "Parse";
      case kPqMsg_Query:
        return "Query";
      case kPqMsg_Sync:
        return "Sync";
      case kPqMsg_Terminate:
        return "Terminate";
      case kPqMsg_CopyFail:
        return "CopyFail";
      case kPqMsg_PasswordMessage:
        // Also SASLInitialResponse, SASLResponse, GSSResponse: only the
        // authentication exchange in progress tells them apart.
        return "PasswordMessage";
      default:
        return "unknown";
    }
  }
  switch (type) {
    case kPqMsg_ParseComplete:
      return "ParseComplete";
    case kPqMsg_BindComplete:
      return "BindComplete";
    case kPqMsg_CloseComplete:
      return "CloseComplete";
    case kPqMsg_NotificationResponse:
      return "NotificationResponse";
    case kPqMsg_CommandComplete:
      return "CommandComplete";
    case kPqMsg_DataRow:
      return "DataRow";
    case kPqMsg_ErrorResponse:
      return "ErrorResponse";
    case kPqMsg_CopyInResponse:
      return "CopyInResponse";
    case kPqMsg_CopyOutResponse:
      return "CopyOutResponse";
    case kPqMsg_EmptyQueryResponse:
      return "EmptyQueryResponse";
    case kPqMsg_BackendKeyData:
      return "BackendKeyData";
    case kPqMsg_NoticeResponse:
      return "NoticeResponse";
    case kPqMsg_AuthenticationRequest:
      return "AuthenticationRequest";
    case kPqMsg_ParameterStatus:
      return "ParameterStatus";
    case kPqMsg_RowDescription:
      return "RowDescription";
    case kPqMsg_FunctionCallResponse:
      return "FunctionCallResponse";
    case kPqMsg_CopyBothResponse:
      return "CopyBothResponse";
    case kPqMsg_ReadyForQuery:
      return "ReadyForQuery";
    case kPqMsg_NoData:
      return "NoData";
    case kPqMsg_PortalSuspended:
      return "PortalSuspended";
    case kPqMsg_ParameterDescription:
      return "ParameterDescription";
    case kPqMsg_NegotiateProtocolVersion:
      return "NegotiateProtocolVersion";
    default:
      return "unknown";
  }
}

namespace internal {
namespace {

// The decoder returns views so that its results stay trivially copyable on
// the per-message path; the rare error text lives here, one buffer per thread
// (shards are threads, and a decode error ends the connection at once).
thread_local char error_text[128];

HeaderResult ErrorResult(char type, uint32_t length) {
  HeaderResult result;
  result.status = DecodeStatus::kError;
  result.header.type = type;
  result.header.length = length;
  result.error = error_text;
  return result;
}

}  // namespace

HeaderResult InvalidLength(char type, uint32_t length) {
  std::snprintf(error_text, sizeof(error_text), "invalid message length %u", length);
  return ErrorResult(type, length);
}

HeaderResult LengthOverLimit(char type, uint32_t length, uint32_t limit) {
  std::snprintf(error_text, sizeof(error_text), "message length %u exceeds the limit of %u bytes",
                length, limit);
  return ErrorResult(type, length);
}

HeaderResult UnknownType(Direction dir, char type, uint32_t length) {
  const unsigned code = static_cast<unsigned char>(type);
  // A client message of the other phase (a PasswordMessage after login, a
  // Query during it): PostgreSQL's "invalid frontend message type", named.
  const Direction other_phase =
      dir == Direction::kFrontend ? Direction::kFrontendLogin : Direction::kFrontend;
  if (dir != Direction::kBackend && IsKnownMessageType(other_phase, type)) {
    std::snprintf(error_text, sizeof(error_text),
                  "invalid frontend message type 0x%02x: %s is only valid %s login", code,
                  MessageName(other_phase, type), dir == Direction::kFrontend ? "during" : "after");
    return ErrorResult(type, length);
  }
  std::snprintf(error_text, sizeof(error_text), "unknown %s message type 0x%02x",
                dir == Direction::kBackend ? "backend" : "frontend", code);
  return ErrorResult(type, length);
}

}  // namespace internal
}  // namespace pgb::proto
