// PostgreSQL v3 wire protocol constants, named as in PostgreSQL's
// src/include/libpq/protocol.h and pqcomm.h.
// Spec: https://www.postgresql.org/docs/15/protocol-message-formats.html
//
//   if (type == kPqMsg_Query) ...
#pragma once

#include <cstdint>

namespace pgb::proto {

// Frontend (client -> server) message types.
inline constexpr char kPqMsg_Bind = 'B';
inline constexpr char kPqMsg_Close = 'C';
inline constexpr char kPqMsg_Describe = 'D';
inline constexpr char kPqMsg_Execute = 'E';
inline constexpr char kPqMsg_FunctionCall = 'F';
inline constexpr char kPqMsg_Flush = 'H';
inline constexpr char kPqMsg_Parse = 'P';
inline constexpr char kPqMsg_Query = 'Q';
inline constexpr char kPqMsg_Sync = 'S';
inline constexpr char kPqMsg_Terminate = 'X';
inline constexpr char kPqMsg_CopyFail = 'f';
// PasswordMessage, SASLInitialResponse, SASLResponse and GSSResponse share 'p'.
inline constexpr char kPqMsg_PasswordMessage = 'p';

// Backend (server -> client) message types.
inline constexpr char kPqMsg_ParseComplete = '1';
inline constexpr char kPqMsg_BindComplete = '2';
inline constexpr char kPqMsg_CloseComplete = '3';
inline constexpr char kPqMsg_NotificationResponse = 'A';
inline constexpr char kPqMsg_CommandComplete = 'C';
inline constexpr char kPqMsg_DataRow = 'D';
inline constexpr char kPqMsg_ErrorResponse = 'E';
inline constexpr char kPqMsg_CopyInResponse = 'G';
inline constexpr char kPqMsg_CopyOutResponse = 'H';
inline constexpr char kPqMsg_EmptyQueryResponse = 'I';
inline constexpr char kPqMsg_BackendKeyData = 'K';
inline constexpr char kPqMsg_NoticeResponse = 'N';
inline constexpr char kPqMsg_AuthenticationRequest = 'R';
inline constexpr char kPqMsg_ParameterStatus = 'S';
inline constexpr char kPqMsg_RowDescription = 'T';
inline constexpr char kPqMsg_FunctionCallResponse = 'V';
inline constexpr char kPqMsg_CopyBothResponse = 'W';
inline constexpr char kPqMsg_ReadyForQuery = 'Z';
inline constexpr char kPqMsg_NoData = 'n';
inline constexpr char kPqMsg_PortalSuspended = 's';
inline constexpr char kPqMsg_ParameterDescription = 't';
inline constexpr char kPqMsg_NegotiateProtocolVersion = 'v';

// Both directions.
inline constexpr char kPqMsg_CopyData = 'd';
inline constexpr char kPqMsg_CopyDone = 'c';

// Authentication request codes (the Int32 after 'R').
inline constexpr int32_t kAuthReqOk = 0;
inline constexpr int32_t kAuthReqPassword = 3;  // cleartext
inline constexpr int32_t kAuthReqMd5 = 5;
inline constexpr int32_t kAuthReqSasl = 10;
inline constexpr int32_t kAuthReqSaslContinue = 11;
inline constexpr int32_t kAuthReqSaslFinal = 12;

// Startup-phase request codes (pqcomm.h): the Int32 after the length.
inline constexpr int32_t kProtocolVersion3 = 3 << 16;  // 196608
inline constexpr int32_t kCancelRequestCode = (1234 << 16) | 5678;
inline constexpr int32_t kSslRequestCode = (1234 << 16) | 5679;
inline constexpr int32_t kGssEncRequestCode = (1234 << 16) | 5680;

// PostgreSQL's own limit for a startup packet, length word included:
// MAX_STARTUP_PACKET_LENGTH (10000) is what may follow the length word
// (ProcessStartupPacket subtracts the 4 bytes before comparing).
inline constexpr uint32_t kMaxStartupPacketLength = 10000 + 4;
// Default cap for one regular message (PostgreSQL's MaxAllocSize, 1 GiB - 1).
inline constexpr uint32_t kDefaultMaxMessageLength = 0x3fffffff;
// Header of a regular message: type byte + Int32 length (which counts itself).
inline constexpr uint32_t kHeaderLength = 5;

// Transaction status in ReadyForQuery.
inline constexpr char kTxnIdle = 'I';
inline constexpr char kTxnInBlock = 'T';
inline constexpr char kTxnFailed = 'E';

// SQLSTATEs the gateway raises itself (errcodes.txt).
namespace sqlstate {
inline constexpr const char* kProtocolViolation = "08P01";
inline constexpr const char* kConfigurationLimitExceeded = "53400";
inline constexpr const char* kConnectionFailure = "08006";
inline constexpr const char* kConnectionException = "08000";
inline constexpr const char* kSqlclientUnableToEstablish = "08001";
inline constexpr const char* kInvalidAuthorizationSpecification = "28000";
inline constexpr const char* kInvalidPassword = "28P01";
inline constexpr const char* kFeatureNotSupported = "0A000";
inline constexpr const char* kProgramLimitExceeded = "54000";
inline constexpr const char* kTooManyConnections = "53300";
inline constexpr const char* kAdminShutdown = "57P01";
inline constexpr const char* kQueryCanceled = "57014";
inline constexpr const char* kInvalidCatalogName = "3D000";
inline constexpr const char* kInsufficientPrivilege = "42501";
inline constexpr const char* kSyntaxError = "42601";
inline constexpr const char* kInvalidName = "42602";
inline constexpr const char* kCantChangeRuntimeParam = "55P02";
inline constexpr const char* kInternalError = "XX000";
}  // namespace sqlstate

}  // namespace pgb::proto
