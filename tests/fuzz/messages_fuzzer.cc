// Fuzzes every Parse* of proto/messages.h with the whole input as the message
// body. On success each result must point into the body where it is a view,
// satisfy the documented shape, and survive a round trip: the matching
// Append* builder, framed again by DecodeMessage, parses to the same value.
// ReadBindPrefix (which never fails) is held to its bounds instead.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proto/frame.h"
#include "proto/messages.h"
#include "proto/protocol.h"
#include "proto/wire.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

namespace proto = pgb::proto;
using proto::Direction;

bool Within(std::string_view inner, std::string_view outer) {
  return inner.empty() || (inner.data() >= outer.data() &&
                           inner.data() + inner.size() <= outer.data() + outer.size());
}

// The body of the single message a builder wrote, checking its framing.
std::string_view BodyOf(const std::string& built, Direction dir, char type) {
  const proto::MessageResult m = proto::DecodeMessage(built, dir, proto::kDefaultMaxMessageLength);
  FUZZ_CHECK(m.status == proto::DecodeStatus::kOk);
  FUZZ_CHECK(m.message.type == type);
  FUZZ_CHECK(m.message.total_size == built.size());
  return m.message.body;
}

void FuzzAuthenticationRequest(std::string_view body) {
  absl::StatusOr<proto::AuthenticationRequest> r = proto::ParseAuthenticationRequest(body);
  if (!r.ok()) return;
  std::string built;
  switch (r->code) {
    case proto::kAuthReqOk:
      FUZZ_CHECK(body.size() == 4);
      proto::AppendAuthenticationOk(built);
      break;
    case proto::kAuthReqPassword:
      FUZZ_CHECK(body.size() == 4);
      proto::AppendAuthenticationCleartextPassword(built);
      break;
    case proto::kAuthReqMd5:
      FUZZ_CHECK(r->md5_salt.size() == 4 && Within(r->md5_salt, body));
      proto::AppendAuthenticationMd5Password(built, r->md5_salt);
      break;
    case proto::kAuthReqSasl:
      FUZZ_CHECK(!r->sasl_mechanisms.empty());
      for (std::string_view m : r->sasl_mechanisms) {
        FUZZ_CHECK(!m.empty() && Within(m, body) && m.find('\0') == std::string_view::npos);
      }
      proto::AppendAuthenticationSasl(built, r->sasl_mechanisms);
      break;
    case proto::kAuthReqSaslContinue:
      FUZZ_CHECK(Within(r->sasl_data, body) && r->sasl_data.size() + 4 == body.size());
      proto::AppendAuthenticationSaslContinue(built, r->sasl_data);
      break;
    case proto::kAuthReqSaslFinal:
      FUZZ_CHECK(Within(r->sasl_data, body) && r->sasl_data.size() + 4 == body.size());
      proto::AppendAuthenticationSaslFinal(built, r->sasl_data);
      break;
    default:
      FUZZ_CHECK(false && "a code the parser says it refuses");
  }
  // Every accepted AuthenticationRequest is canonical: rebuilding gives the same bytes.
  FUZZ_CHECK(BodyOf(built, Direction::kBackend, proto::kPqMsg_AuthenticationRequest) == body);
}

void FuzzErrorFields(std::string_view body) {
  absl::StatusOr<proto::ErrorFields> r = proto::ParseErrorFields(body);
  if (!r.ok()) return;
  FUZZ_CHECK(!body.empty() && body.back() == '\0');
  for (const std::string* s : {&r->severity, &r->sqlstate, &r->message, &r->detail, &r->hint}) {
    FUZZ_CHECK(s->find('\0') == std::string::npos);
  }
  for (char type : {proto::kPqMsg_ErrorResponse, proto::kPqMsg_NoticeResponse}) {
    std::string built;
    if (type == proto::kPqMsg_ErrorResponse) {
      proto::AppendErrorResponse(built, *r);
    } else {
      proto::AppendNoticeResponse(built, *r);
    }
    absl::StatusOr<proto::ErrorFields> again =
        proto::ParseErrorFields(BodyOf(built, Direction::kBackend, type));
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(again->severity == r->severity && again->sqlstate == r->sqlstate &&
               again->message == r->message && again->detail == r->detail &&
               again->hint == r->hint);
  }
}

void FuzzParameterStatus(std::string_view body) {
  auto r = proto::ParseParameterStatus(body);
  if (!r.ok()) return;
  FUZZ_CHECK(Within(r->first, body) && Within(r->second, body));
  FUZZ_CHECK(r->first.size() + r->second.size() + 2 == body.size());
  std::string built;
  proto::AppendParameterStatus(built, r->first, r->second);
  FUZZ_CHECK(BodyOf(built, Direction::kBackend, proto::kPqMsg_ParameterStatus) == body);
}

void FuzzBackendKeyData(std::string_view body) {
  auto r = proto::ParseBackendKeyData(body);
  FUZZ_CHECK(r.ok() == (body.size() == 8));
  if (!r.ok()) return;
  std::string built;
  proto::AppendBackendKeyData(built, r->first, r->second);
  FUZZ_CHECK(BodyOf(built, Direction::kBackend, proto::kPqMsg_BackendKeyData) == body);
}

void FuzzReadyForQuery(std::string_view body) {
  auto r = proto::ParseReadyForQuery(body);
  if (!r.ok()) return;
  FUZZ_CHECK(body.size() == 1 && body[0] == *r);
  FUZZ_CHECK(*r == proto::kTxnIdle || *r == proto::kTxnInBlock || *r == proto::kTxnFailed);
  std::string built;
  proto::AppendReadyForQuery(built, *r);
  FUZZ_CHECK(BodyOf(built, Direction::kBackend, proto::kPqMsg_ReadyForQuery) == body);
}

void FuzzSaslInitialResponse(std::string_view body) {
  auto r = proto::ParseSaslInitialResponse(body);
  if (!r.ok()) return;
  FUZZ_CHECK(Within(r->mechanism, body) && r->mechanism.find('\0') == std::string_view::npos);
  if (r->has_data) {
    FUZZ_CHECK(Within(r->data, body));
    FUZZ_CHECK(r->mechanism.size() + 1 + 4 + r->data.size() == body.size());
  } else {
    FUZZ_CHECK(r->data.empty());
    FUZZ_CHECK(r->mechanism.size() + 1 + 4 == body.size());
  }
  std::string built;
  proto::AppendSaslInitialResponse(
      built, r->mechanism, r->has_data ? std::optional<std::string_view>(r->data) : std::nullopt);
  FUZZ_CHECK(BodyOf(built, Direction::kFrontendLogin, proto::kPqMsg_PasswordMessage) == body);
}

void FuzzPasswordMessage(std::string_view body) {
  auto r = proto::ParsePasswordMessage(body);
  if (!r.ok()) return;
  FUZZ_CHECK(Within(*r, body) && r->size() + 1 == body.size());
  std::string built;
  proto::AppendPasswordMessage(built, *r);
  FUZZ_CHECK(BodyOf(built, Direction::kFrontendLogin, proto::kPqMsg_PasswordMessage) == body);
}

// Parse: the count of parameter types is unsigned (0..65535, as PostgreSQL
// reads it) and the types fill the rest of the body exactly.
void FuzzParse(std::string_view body) {
  auto r = proto::ParseParseMessage(body);
  if (!r.ok()) return;
  FUZZ_CHECK(Within(r->statement, body) && Within(r->sql, body));
  const size_t count_at = r->statement.size() + 1 + r->sql.size() + 1;
  FUZZ_CHECK(body.size() == count_at + 2 + size_t{r->parameter_types} * 4);
  FUZZ_CHECK(proto::LoadBigEndian16(body.data() + count_at) == r->parameter_types);
  if (r->parameter_types == 0) {
    std::string built;
    proto::AppendParse(built, r->statement, r->sql);
    FUZZ_CHECK(BodyOf(built, Direction::kFrontend, proto::kPqMsg_Parse) == body);
  }
}

// Bind, read as a prefix: never more parameters than the Bind claims nor than
// the bytes can hold (4 each), values inside the body and no longer than
// their length; complete means every claimed parameter was read.
void FuzzBindPrefix(std::string_view body) {
  const proto::BindPrefix bind = proto::ReadBindPrefix(body);
  FUZZ_CHECK(Within(bind.portal, body) && Within(bind.statement, body));
  FUZZ_CHECK(bind.parameters.size() <= bind.count);
  FUZZ_CHECK(bind.parameters.size() * 4 <= body.size());
  for (const proto::BindParameter& p : bind.parameters) {
    FUZZ_CHECK(p.length >= -1);
    FUZZ_CHECK(Within(p.value, body));
    FUZZ_CHECK(p.value.size() <= static_cast<size_t>(p.length < 0 ? 0 : p.length));
  }
  if (bind.complete) FUZZ_CHECK(bind.parameters.size() == bind.count);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  FuzzAuthenticationRequest(body);
  FuzzErrorFields(body);
  FuzzParameterStatus(body);
  FuzzBackendKeyData(body);
  FuzzReadyForQuery(body);
  FuzzSaslInitialResponse(body);
  FuzzPasswordMessage(body);
  FuzzParse(body);
  FuzzBindPrefix(body);
  return 0;
}
