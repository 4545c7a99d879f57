#include "proto/messages.h"

#include <algorithm>
#include <cassert>

#include "absl/status/status.h"
#include "base/str_cat.h"
#include "proto/wire.h"

namespace pgb::proto {
namespace {

// A C string stops at its first NUL; writing the rest would let the text
// end the field early and forge the fields after it.
std::string_view UpToNul(std::string_view s) { return s.substr(0, s.find('\0')); }

// Spec: protocol-message-formats.html (ErrorResponse, NoticeResponse) and
// protocol-error-fields.html.
void AppendFields(std::string& out, char type, const ErrorFields& fields) {
  MessageWriter w(out, type);
  w.Byte('S').CString(UpToNul(fields.severity));
  w.Byte('V').CString(UpToNul(fields.severity));
  w.Byte('C').CString(UpToNul(fields.sqlstate));
  w.Byte('M').CString(UpToNul(fields.message));
  if (!fields.detail.empty()) w.Byte('D').CString(UpToNul(fields.detail));
  if (!fields.hint.empty()) w.Byte('H').CString(UpToNul(fields.hint));
  if (fields.position > 0) w.Byte('P').CString(std::to_string(fields.position));
  w.Byte('\0');
}

void AppendAuthentication(std::string& out, int32_t code, std::string_view data) {
  MessageWriter(out, kPqMsg_AuthenticationRequest).Int32(code).Bytes(data);
}

absl::Status Malformed(std::string_view what, std::string_view why) {
  return absl::InvalidArgumentError(Cat("malformed ", what, ": ", why));
}

}  // namespace

void AppendErrorResponse(std::string& out, const ErrorFields& fields) {
  AppendFields(out, kPqMsg_ErrorResponse, fields);
}

void AppendNoticeResponse(std::string& out, const ErrorFields& fields) {
  AppendFields(out, kPqMsg_NoticeResponse, fields);
}

void AppendAuthenticationOk(std::string& out) { AppendAuthentication(out, kAuthReqOk, {}); }

void AppendAuthenticationCleartextPassword(std::string& out) {
  AppendAuthentication(out, kAuthReqPassword, {});
}

void AppendAuthenticationMd5Password(std::string& out, std::string_view salt4) {
  assert(salt4.size() == 4);
  char salt[4] = {0, 0, 0, 0};
  salt4.copy(salt, sizeof(salt));
  AppendAuthentication(out, kAuthReqMd5, std::string_view(salt, sizeof(salt)));
}

void AppendAuthenticationSasl(std::string& out, const std::vector<std::string_view>& mechanisms) {
  MessageWriter w(out, kPqMsg_AuthenticationRequest);
  w.Int32(kAuthReqSasl);
  for (std::string_view mechanism : mechanisms) {
    // An empty name would read as the end of the list.
    if (!UpToNul(mechanism).empty()) w.CString(UpToNul(mechanism));
  }
  w.Byte('\0');
}

void AppendAuthenticationSaslContinue(std::string& out, std::string_view data) {
  AppendAuthentication(out, kAuthReqSaslContinue, data);
}

void AppendAuthenticationSaslFinal(std::string& out, std::string_view data) {
  AppendAuthentication(out, kAuthReqSaslFinal, data);
}

void AppendParameterStatus(std::string& out, std::string_view name, std::string_view value) {
  MessageWriter(out, kPqMsg_ParameterStatus).CString(UpToNul(name)).CString(UpToNul(value));
}

void AppendBackendKeyData(std::string& out, int32_t pid, int32_t key) {
  MessageWriter(out, kPqMsg_BackendKeyData).Int32(pid).Int32(key);
}

void AppendReadyForQuery(std::string& out, char status) {
  MessageWriter(out, kPqMsg_ReadyForQuery).Byte(status);
}

void AppendNegotiateProtocolVersion(std::string& out, int32_t newest_minor,
                                    const std::vector<std::string_view>& options) {
  MessageWriter w(out, kPqMsg_NegotiateProtocolVersion);
  w.Int32(newest_minor).Int32(static_cast<int32_t>(options.size()));
  for (std::string_view option : options) w.CString(UpToNul(option));
}

void AppendStartupMessage(std::string& out, int32_t version,
                          const std::vector<std::pair<std::string, std::string>>& params) {
  MessageWriter w(out, MessageWriter::Untyped{});
  w.Int32(version);
  for (const auto& [name, value] : params) {
    // An empty name would read as the terminator.
    if (UpToNul(name).empty()) continue;
    w.CString(UpToNul(name)).CString(UpToNul(value));
  }
  w.Byte('\0');
}

void AppendCancelRequest(std::string& out, int32_t pid, int32_t key) {
  MessageWriter(out, MessageWriter::Untyped{}).Int32(kCancelRequestCode).Int32(pid).Int32(key);
}

void AppendSslRequest(std::string& out) {
  MessageWriter(out, MessageWriter::Untyped{}).Int32(kSslRequestCode);
}

void AppendPasswordMessage(std::string& out, std::string_view password) {
  MessageWriter(out, kPqMsg_PasswordMessage).CString(UpToNul(password));
}

void AppendSaslInitialResponse(std::string& out, std::string_view mechanism,
                               std::optional<std::string_view> data) {
  MessageWriter w(out, kPqMsg_PasswordMessage);
  w.CString(UpToNul(mechanism));
  if (data.has_value()) {
    w.Int32(static_cast<int32_t>(data->size())).Bytes(*data);
  } else {
    w.Int32(-1);
  }
}

void AppendSaslResponse(std::string& out, std::string_view data) {
  MessageWriter(out, kPqMsg_PasswordMessage).Bytes(data);
}

void AppendTerminate(std::string& out) { MessageWriter(out, kPqMsg_Terminate); }

void AppendQuery(std::string& out, std::string_view sql) {
  MessageWriter(out, kPqMsg_Query).CString(sql);
}

void AppendParse(std::string& out, std::string_view statement, std::string_view sql) {
  MessageWriter(out, kPqMsg_Parse).CString(statement).CString(sql).Int16(0);
}

void AppendDescribe(std::string& out, char kind, std::string_view name) {
  MessageWriter(out, kPqMsg_Describe).Byte(kind).CString(name);
}

absl::StatusOr<AuthenticationRequest> ParseAuthenticationRequest(std::string_view body) {
  constexpr std::string_view kWhat = "AuthenticationRequest";
  Cursor cursor(body);
  AuthenticationRequest request;
  if (!cursor.ReadInt32(&request.code)) return Malformed(kWhat, "too short for the code");
  switch (request.code) {
    case kAuthReqOk:
    case kAuthReqPassword:
      break;
    case kAuthReqMd5:
      if (!cursor.ReadBytes(4, &request.md5_salt)) return Malformed(kWhat, "MD5 salt too short");
      break;
    case kAuthReqSasl:
      for (;;) {
        std::string_view mechanism;
        if (!cursor.ReadCString(&mechanism)) {
          return Malformed(kWhat, "SASL mechanism list is not terminated");
        }
        if (mechanism.empty()) break;
        request.sasl_mechanisms.push_back(mechanism);
      }
      if (request.sasl_mechanisms.empty()) return Malformed(kWhat, "no SASL mechanisms offered");
      break;
    case kAuthReqSaslContinue:
    case kAuthReqSaslFinal:
      request.sasl_data = cursor.Rest();
      return request;
    default:
      return absl::InvalidArgumentError(
          Cat("unsupported authentication request code ", request.code));
  }
  if (!cursor.AtEnd()) return Malformed(kWhat, "unexpected bytes after the request");
  return request;
}

absl::StatusOr<ErrorFields> ParseErrorFields(std::string_view body) {
  constexpr std::string_view kWhat = "error or notice message";
  Cursor cursor(body);
  ErrorFields fields;
  std::string_view severity_s;
  std::string_view severity_v;
  bool has_v = false;
  for (;;) {
    char code = 0;
    if (!cursor.ReadByte(&code)) return Malformed(kWhat, "missing the final terminator");
    if (code == '\0') break;
    std::string_view value;
    if (!cursor.ReadCString(&value)) {
      return Malformed(kWhat, Cat("field '", code, "' is not terminated"));
    }
    switch (code) {
      case 'S':
        severity_s = value;
        break;
      case 'V':
        severity_v = value;
        has_v = true;
        break;
      case 'C':
        fields.sqlstate = value;
        break;
      case 'M':
        fields.message = value;
        break;
      case 'D':
        fields.detail = value;
        break;
      case 'H':
        fields.hint = value;
        break;
      default:
        break;  // "Frontends should silently ignore fields of unrecognized type."
    }
  }
  if (!cursor.AtEnd()) return Malformed(kWhat, "unexpected bytes after the terminator");
  fields.severity = has_v ? severity_v : severity_s;
  return fields;
}

absl::StatusOr<std::pair<std::string_view, std::string_view>> ParseParameterStatus(
    std::string_view body) {
  constexpr std::string_view kWhat = "ParameterStatus";
  Cursor cursor(body);
  std::string_view name;
  std::string_view value;
  if (!cursor.ReadCString(&name)) return Malformed(kWhat, "name is not terminated");
  if (!cursor.ReadCString(&value)) return Malformed(kWhat, "value is not terminated");
  if (!cursor.AtEnd()) return Malformed(kWhat, "unexpected bytes after the value");
  return std::make_pair(name, value);
}

absl::StatusOr<std::pair<int32_t, int32_t>> ParseBackendKeyData(std::string_view body) {
  if (body.size() != 8) {
    return Malformed("BackendKeyData", Cat("body is ", body.size(), " bytes, expected 8"));
  }
  return std::make_pair(static_cast<int32_t>(LoadBigEndian32(body.data())),
                        static_cast<int32_t>(LoadBigEndian32(body.data() + 4)));
}

absl::StatusOr<char> ParseReadyForQuery(std::string_view body) {
  constexpr std::string_view kWhat = "ReadyForQuery";
  if (body.size() != 1) {
    return Malformed(kWhat, Cat("body is ", body.size(), " bytes, expected 1"));
  }
  const char status = body[0];
  if (status != kTxnIdle && status != kTxnInBlock && status != kTxnFailed) {
    return Malformed(
        kWhat, Cat("invalid transaction status 0x", absl::Hex(static_cast<unsigned char>(status))));
  }
  return status;
}

absl::StatusOr<SaslInitialResponse> ParseSaslInitialResponse(std::string_view body) {
  constexpr std::string_view kWhat = "SASLInitialResponse";
  Cursor cursor(body);
  SaslInitialResponse response;
  int32_t length = 0;
  if (!cursor.ReadCString(&response.mechanism)) {
    return Malformed(kWhat, "mechanism name is not terminated");
  }
  if (!cursor.ReadInt32(&length)) return Malformed(kWhat, "too short for the data length");
  if (length == -1) {
    response.has_data = false;
  } else if (length < 0 || static_cast<size_t>(length) != cursor.Rest().size()) {
    return Malformed(kWhat, Cat("data length ", length, " does not match the ",
                                cursor.Rest().size(), " bytes that follow"));
  } else {
    response.data = cursor.Rest();
    response.has_data = true;
    return response;
  }
  if (!cursor.AtEnd()) return Malformed(kWhat, "unexpected bytes after the data");
  return response;
}

absl::StatusOr<std::string_view> ParsePasswordMessage(std::string_view body) {
  constexpr std::string_view kWhat = "PasswordMessage";
  Cursor cursor(body);
  std::string_view password;
  if (!cursor.ReadCString(&password)) return Malformed(kWhat, "password is not terminated");
  if (!cursor.AtEnd()) return Malformed(kWhat, "unexpected bytes after the password");
  return password;
}

absl::StatusOr<std::string_view> ParseQuery(std::string_view body) {
  constexpr std::string_view kWhat = "Query";
  Cursor cursor(body);
  std::string_view sql;
  if (!cursor.ReadCString(&sql)) return Malformed(kWhat, "statement text is not terminated");
  if (!cursor.AtEnd()) return Malformed(kWhat, "unexpected bytes after the statement text");
  return sql;
}

absl::StatusOr<std::string_view> ParseExecutePortal(std::string_view body) {
  constexpr std::string_view kWhat = "Execute";
  Cursor cursor(body);
  std::string_view portal;
  int32_t max_rows = 0;
  if (!cursor.ReadCString(&portal)) return Malformed(kWhat, "portal name is not terminated");
  if (!cursor.ReadInt32(&max_rows)) return Malformed(kWhat, "too short for the row limit");
  if (!cursor.AtEnd()) return Malformed(kWhat, "unexpected bytes after the row limit");
  return portal;
}

absl::StatusOr<ParseMessage> ParseParseMessage(std::string_view body) {
  constexpr std::string_view kWhat = "Parse";
  Cursor cursor(body);
  ParseMessage parse;
  if (!cursor.ReadCString(&parse.statement)) {
    return Malformed(kWhat, "statement name is not terminated");
  }
  if (!cursor.ReadCString(&parse.sql)) return Malformed(kWhat, "statement text is not terminated");
  // Int16 on the wire but read unsigned, as PostgreSQL does (exec_parse_message
  // via pq_getmsgint(msg, 2)): up to 65535 types. ReadBytes checks them against
  // what the message holds; nothing is allocated for them.
  if (!cursor.ReadUint16(&parse.parameter_types)) {
    return Malformed(kWhat, "too short for the number of parameter types");
  }
  std::string_view oids;
  if (!cursor.ReadBytes(size_t{parse.parameter_types} * 4, &oids)) {
    return Malformed(kWhat, "parameter types are cut short");
  }
  if (!cursor.AtEnd()) return Malformed(kWhat, "unexpected bytes after the parameter types");
  return parse;
}

BindPrefix ReadBindPrefix(std::string_view prefix) {
  BindPrefix bind;
  Cursor cursor(prefix);
  if (!cursor.ReadCString(&bind.portal)) {
    bind.portal = prefix.substr(0, prefix.find('\0'));  // cut short: what there is
    return bind;
  }
  if (!cursor.ReadCString(&bind.statement)) {
    bind.statement = cursor.Rest();
    return bind;
  }
  // Both counts are unsigned 16-bit, as exec_bind_message reads them.
  uint16_t formats = 0;
  std::string_view format_codes;
  uint16_t count = 0;
  if (!cursor.ReadUint16(&formats) || !cursor.ReadBytes(size_t{formats} * 2, &format_codes) ||
      !cursor.ReadUint16(&count) || (formats > 1 && formats != count)) {
    return bind;
  }
  bind.count = count;
  const auto binary = [&](int i) {
    if (formats == 0) return false;
    const size_t at = formats == 1 ? 0 : static_cast<size_t>(i) * 2;
    return LoadBigEndian16(format_codes.data() + at) == 1;
  };
  // Each parameter takes at least 4 bytes of the prefix: the list is bounded
  // by the prefix, whatever `count` claims.
  for (int i = 0; i < count; ++i) {
    BindParameter parameter;
    if (!cursor.ReadInt32(&parameter.length) || parameter.length < -1) return bind;
    parameter.binary = binary(i);
    if (parameter.length > 0) {
      const std::string_view rest = cursor.Rest();
      const size_t have = std::min(rest.size(), static_cast<size_t>(parameter.length));
      (void)cursor.ReadBytes(have, &parameter.value);
      if (have < static_cast<size_t>(parameter.length)) {
        bind.parameters.push_back(parameter);
        return bind;
      }
    }
    bind.parameters.push_back(parameter);
  }
  bind.complete = true;
  return bind;
}

}  // namespace pgb::proto
