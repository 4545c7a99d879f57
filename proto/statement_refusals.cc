#include "proto/statement_refusals.h"

#include <openssl/rand.h>

#include <cstdio>

#include "proto/protocol.h"

namespace pgb::proto {
namespace {

constexpr std::string_view kTokenPrefix = "pgbastion_refused_";

// An unguessable identifier: a client cannot make another error look like a
// refusal. Falls back to a counter only if the RNG fails, which still
// identifies the refusal (the client never learns the value).
std::string NewToken() {
  static thread_local uint64_t fallback = 0;
  uint64_t r[2] = {0, ++fallback};
  if (RAND_bytes(reinterpret_cast<unsigned char*>(r), sizeof(r)) != 1) r[0] = ~fallback;
  char hex[33];
  std::snprintf(hex, sizeof(hex), "%016llx%016llx", static_cast<unsigned long long>(r[0]),
                static_cast<unsigned long long>(r[1]));
  return std::string(kTokenPrefix) + hex;
}

}  // namespace

Refusal SubstituteRefused(char type, std::string_view statement_name, ErrorFields error,
                          std::string& to_database) {
  Refusal r{NewToken(), std::move(error)};
  if (r.error.severity.empty()) r.error.severity = "ERROR";
  if (type == kPqMsg_Parse) {
    AppendParse(to_database, statement_name, r.token);
  } else if (type == kPqMsg_Execute) {
    // Named after itself: the failing Parse creates nothing, and leaves the
    // client's statements and portals as they were.
    AppendParse(to_database, r.token, r.token);
  } else {
    AppendQuery(to_database, r.token);
  }
  return r;
}

bool AnswerRefusal(const Refusal& refusal, std::string_view message, std::string& to_client) {
  const std::string_view body =
      message.size() > kHeaderLength ? message.substr(kHeaderLength) : std::string_view();
  absl::StatusOr<ErrorFields> fields = ParseErrorFields(body);
  if (fields.ok() && fields->message.find(refusal.token) != std::string::npos) {
    AppendErrorResponse(to_client, refusal.error);
    return true;
  }
  to_client.append(message);
  return false;
}

}  // namespace pgb::proto
