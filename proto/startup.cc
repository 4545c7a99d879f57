#include "proto/startup.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "base/str_cat.h"

namespace pgb::proto {
namespace {

constexpr uint32_t kMinStartupPacketLength = 8;  // length word + request code
constexpr uint32_t kSslRequestLength = 8;
constexpr uint32_t kCancelRequestLength = 16;

// Debian 12's Abseil is built with its own absl::string_view, distinct from
// std::string_view.
absl::string_view AsAbsl(std::string_view s) { return {s.data(), s.size()}; }

StartupResult Fail(const char* sqlstate, std::string message) {
  StartupResult result;
  result.status = DecodeStatus::kError;
  result.sqlstate = sqlstate;
  result.error = std::move(message);
  return result;
}

StartupResult Violation(std::string message) {
  return Fail(sqlstate::kProtocolViolation, std::move(message));
}

// Where ProcessStartupPacket (postmaster.c, PostgreSQL 15) reports with
// COMMERROR and returns STATUS_ERROR: logged, nothing sent. A client that
// sent SSLRequest must not read an 'E' where it waits for 'S' or 'N', and a
// client that spoke first must see exactly what PostgreSQL shows it: a close.
StartupResult Silent(std::string message) {
  StartupResult result = Violation(std::move(message));
  result.silent = true;
  return result;
}

// The length a request code demands, or 0 when any length in range will do.
uint32_t RequiredLength(int32_t code) {
  switch (code) {
    case kSslRequestCode:
    case kGssEncRequestCode:
      return kSslRequestLength;
    case kCancelRequestCode:
      return kCancelRequestLength;
    default:
      return 0;
  }
}

const char* RequestName(int32_t code) {
  switch (code) {
    case kSslRequestCode:
      return "SSLRequest";
    case kGssEncRequestCode:
      return "GSSENCRequest";
    default:
      return "CancelRequest";
  }
}

// Parameter text comes from an unauthenticated client: quote it safely.
std::string Quoted(std::string_view s) {
  constexpr size_t kMaxShown = 64;
  std::string shown = absl::CHexEscape(AsAbsl(s.substr(0, kMaxShown)));
  if (s.size() > kMaxShown) shown += "...";
  return Cat("\"", shown, "\"");
}

// StartupMessage body after the version: name\0value\0 ... \0
// Spec: protocol-message-formats.html, StartupMessage.
StartupResult DecodeParams(std::string_view body, StartupResult result) {
  Cursor cursor(body);
  auto& params = result.packet.params;
  for (;;) {
    std::string_view name;
    if (!cursor.ReadCString(&name)) {
      return Violation(cursor.AtEnd()
                           ? "invalid startup packet layout: missing the final terminator"
                           : "invalid startup packet layout: parameter name is not terminated");
    }
    if (name.empty()) {
      // The terminator, unless something follows it: then it was an empty name.
      if (!cursor.AtEnd()) {
        return Violation(
            "invalid startup packet layout: empty parameter name or data after the terminator");
      }
      break;
    }
    std::string_view value;
    if (!cursor.ReadCString(&value)) {
      return Violation(
          Cat("invalid startup packet layout: parameter ", Quoted(name), " has no value"));
    }
    params.emplace_back(name, value);
  }
  // PostgreSQL lets the last duplicate win; we refuse, so that what the
  // policy filter saw is what the server gets. Sorted, not pairwise: a
  // 10000-byte packet holds ~2500 names.
  std::vector<std::string_view> names;
  names.reserve(params.size());
  for (const auto& param : params) names.push_back(param.first);
  std::sort(names.begin(), names.end());
  if (auto dup = std::adjacent_find(names.begin(), names.end()); dup != names.end()) {
    return Violation(Cat("invalid startup packet: duplicate parameter ", Quoted(*dup)));
  }
  bool has_user = false;
  for (const auto& [name, value] : params) {
    if (name == "user") has_user = !value.empty();
  }
  if (!has_user) {
    return Fail(sqlstate::kInvalidAuthorizationSpecification,
                "no PostgreSQL user name specified in startup packet");
  }
  return result;
}

}  // namespace

StartupResult DecodeStartupPacket(std::string_view bytes) {
  if (bytes.size() < 4) return StartupResult{};
  const uint32_t length = LoadBigEndian32(bytes.data());
  // Cap first ("don't believe nonsense"), before waiting for the rest.
  if (length < kMinStartupPacketLength || length > kMaxStartupPacketLength) {
    return Silent(Cat("invalid length of startup packet: ", length, " bytes"));
  }
  if (bytes.size() < 8) return StartupResult{};
  const auto code = static_cast<int32_t>(LoadBigEndian32(bytes.data() + 4));
  if (const uint32_t required = RequiredLength(code); required != 0 && length != required) {
    std::string message =
        Cat("invalid length of ", RequestName(code), ": ", length, " bytes, expected ", required);
    // PostgreSQL checks a CancelRequest's length (silently) but answers an
    // SSLRequest or GSSENCRequest of any length; those we refuse, with an
    // error, as nonsense no client sends.
    return code == kCancelRequestCode ? Silent(std::move(message)) : Violation(std::move(message));
  }
  const auto major = static_cast<uint32_t>(code) >> 16;
  const auto minor = static_cast<uint32_t>(code) & 0xffff;
  if (RequiredLength(code) == 0 && major != 3) {
    return Fail(sqlstate::kFeatureNotSupported,
                Cat("unsupported frontend protocol ", major, ".", minor, ": server supports 3.0"));
  }
  if (bytes.size() < length) return StartupResult{};

  StartupResult result;
  result.status = DecodeStatus::kOk;
  result.packet.protocol_version = code;
  result.packet.total_size = length;
  switch (code) {
    case kSslRequestCode:
      result.packet.kind = StartupPacket::Kind::kSslRequest;
      return result;
    case kGssEncRequestCode:
      result.packet.kind = StartupPacket::Kind::kGssEncRequest;
      return result;
    case kCancelRequestCode:
      result.packet.kind = StartupPacket::Kind::kCancelRequest;
      result.packet.cancel_pid = static_cast<int32_t>(LoadBigEndian32(bytes.data() + 8));
      result.packet.cancel_key = static_cast<int32_t>(LoadBigEndian32(bytes.data() + 12));
      return result;
    default:
      result.packet.kind = StartupPacket::Kind::kStartup;
      return DecodeParams(bytes.substr(8, length - 8), std::move(result));
  }
}

NegotiationNeed CheckProtocolNegotiation(const StartupPacket& packet) {
  NegotiationNeed need;
  if (packet.kind != StartupPacket::Kind::kStartup) return need;
  for (const auto& [name, value] : packet.params) {
    if (name.starts_with("_pq_.")) need.unrecognized_options.push_back(name);
  }
  const auto minor = static_cast<uint32_t>(packet.protocol_version) & 0xffff;
  need.needed = minor > static_cast<uint32_t>(need.newest_minor_supported) ||
                !need.unrecognized_options.empty();
  return need;
}

}  // namespace pgb::proto
