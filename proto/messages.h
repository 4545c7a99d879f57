// Builders and parsers for the messages the gateway writes or reads itself
// (errors, authentication, startup, session parameters). Everything else is
// relayed as framed by proto/frame.h.
// Spec: https://www.postgresql.org/docs/15/protocol-message-formats.html
//       https://www.postgresql.org/docs/15/protocol-error-fields.html
//
// Builders append one complete message to a byte string. Strings are written
// as C strings and cut at the first NUL, so text that came from a client can
// never end a field early and inject another. Parsers take a message body
// (after the 5-byte header, see MessageView::body) and check every length.
//
//   std::string out;
//   AppendErrorResponse(out, {"ERROR", "42501", "permission denied for table t"});
//   AppendReadyForQuery(out, kTxnIdle);
//
//   absl::StatusOr<ErrorFields> fields = ParseErrorFields(message.body);
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/protocol.h"

namespace pgb::proto {

// The fields of an ErrorResponse or NoticeResponse the gateway uses.
struct ErrorFields {
  std::string severity;  // "ERROR", "FATAL", "NOTICE", ...; sent as both 'S' and 'V'
  std::string sqlstate;  // 'C'
  std::string message;   // 'M'
  std::string detail;    // 'D', sent only if non-empty
  std::string hint;      // 'H', sent only if non-empty
  int position = 0;      // 'P': 1-based character position in the statement; sent if > 0
};

// Backend messages.
void AppendErrorResponse(std::string& out, const ErrorFields& fields);
void AppendNoticeResponse(std::string& out, const ErrorFields& fields);
void AppendAuthenticationOk(std::string& out);
void AppendAuthenticationCleartextPassword(std::string& out);
// salt4 must be 4 bytes (asserted; padded or cut to 4 in release builds).
void AppendAuthenticationMd5Password(std::string& out, std::string_view salt4);
void AppendAuthenticationSasl(std::string& out, const std::vector<std::string_view>& mechanisms);
void AppendAuthenticationSaslContinue(std::string& out, std::string_view data);
void AppendAuthenticationSaslFinal(std::string& out, std::string_view data);
void AppendParameterStatus(std::string& out, std::string_view name, std::string_view value);
void AppendBackendKeyData(std::string& out, int32_t pid, int32_t key);
void AppendReadyForQuery(std::string& out, char status);
void AppendNegotiateProtocolVersion(std::string& out, int32_t newest_minor,
                                    const std::vector<std::string_view>& options);

// Frontend messages (the gateway is a client of the backend).
void AppendStartupMessage(std::string& out, int32_t version,
                          const std::vector<std::pair<std::string, std::string>>& params);
void AppendCancelRequest(std::string& out, int32_t pid, int32_t key);
void AppendSslRequest(std::string& out);
void AppendPasswordMessage(std::string& out, std::string_view password);
// No data (std::nullopt) is sent as length -1, which SASL tells apart from
// an empty initial response.
void AppendSaslInitialResponse(std::string& out, std::string_view mechanism,
                               std::optional<std::string_view> data);
void AppendSaslResponse(std::string& out, std::string_view data);
void AppendTerminate(std::string& out);
void AppendQuery(std::string& out, std::string_view sql);
// Parse without parameter types (the server infers them).
void AppendParse(std::string& out, std::string_view statement, std::string_view sql);
// Describe of a prepared statement ('S') or a portal ('P').
void AppendDescribe(std::string& out, char kind, std::string_view name);

// AuthenticationRequest ('R'). Codes the gateway handles: kAuthReqOk,
// kAuthReqPassword, kAuthReqMd5, kAuthReqSasl, kAuthReqSaslContinue,
// kAuthReqSaslFinal; any other code is an error naming it.
struct AuthenticationRequest {
  int32_t code = 0;
  std::string_view md5_salt;                      // kAuthReqMd5: 4 bytes
  std::vector<std::string_view> sasl_mechanisms;  // kAuthReqSasl: at least one
  std::string_view sasl_data;                     // kAuthReqSaslContinue / kAuthReqSaslFinal
};
[[nodiscard]] absl::StatusOr<AuthenticationRequest> ParseAuthenticationRequest(
    std::string_view body);

// ErrorResponse / NoticeResponse. Unknown field codes are skipped; severity is
// 'V' (never localized) if present, else 'S'.
[[nodiscard]] absl::StatusOr<ErrorFields> ParseErrorFields(std::string_view body);

// Query: the statement text (NUL-terminated, nothing after it).
[[nodiscard]] absl::StatusOr<std::string_view> ParseQuery(std::string_view body);

// Parse: the statement name, its text and the number of parameter types
// (unsigned, 0..65535, as PostgreSQL reads it).
struct ParseMessage {
  std::string_view statement;
  std::string_view sql;
  uint16_t parameter_types = 0;
};
[[nodiscard]] absl::StatusOr<ParseMessage> ParseParseMessage(std::string_view body);

// Execute: the portal name (the row limit after it is not returned).
[[nodiscard]] absl::StatusOr<std::string_view> ParseExecutePortal(std::string_view body);

// Bind, read as far as `prefix` goes (the first bytes of the body, or all of
// it; the audit peeks at a prefix so that Bind stays on the zero-copy path):
// the portal and statement names and the parameters whose length is inside
// the prefix, each with as much of its value as the prefix holds. Never fails:
// what is cut short or malformed ends the list, with `complete` false.
struct BindParameter {
  int32_t length = -1;     // -1: SQL NULL
  bool binary = false;     // format code 1
  std::string_view value;  // the value's bytes in the prefix (fewer than length when cut)
};
struct BindPrefix {
  std::string_view portal;
  std::string_view statement;
  uint16_t count = 0;  // parameters the Bind says it has, 0..65535 (0 when cut before)
  std::vector<BindParameter> parameters;
  bool complete = false;  // every parameter's length and value were in the prefix
};
BindPrefix ReadBindPrefix(std::string_view prefix);

// ParameterStatus: (name, value).
[[nodiscard]] absl::StatusOr<std::pair<std::string_view, std::string_view>> ParseParameterStatus(
    std::string_view body);

// BackendKeyData: (pid, key).
[[nodiscard]] absl::StatusOr<std::pair<int32_t, int32_t>> ParseBackendKeyData(
    std::string_view body);

// ReadyForQuery: 'I', 'T' or 'E'.
[[nodiscard]] absl::StatusOr<char> ParseReadyForQuery(std::string_view body);

struct SaslInitialResponse {
  std::string_view mechanism;
  std::string_view data;
  bool has_data = false;  // false when the client sent length -1
};
[[nodiscard]] absl::StatusOr<SaslInitialResponse> ParseSaslInitialResponse(std::string_view body);

// PasswordMessage: the password (NUL-terminated, nothing after it).
[[nodiscard]] absl::StatusOr<std::string_view> ParsePasswordMessage(std::string_view body);

}  // namespace pgb::proto
