#include "core/audit/record.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <time.h>

#include <algorithm>
#include <cassert>
#include <cstring>

#include "base/json_text.h"

namespace pgb::audit {
namespace {

// The longest prefix of `text` of at most `max` bytes that does not end in
// the middle of a UTF-8 sequence.
size_t Utf8Prefix(std::string_view text, size_t max) {
  if (text.size() <= max) return text.size();
  size_t n = max;
  // Step back over continuation bytes (10xxxxxx) to a character start.
  size_t back = 0;
  while (n > 0 && back < 4 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) {
    --n;
    ++back;
  }
  return n;
}

constexpr char kHexDigits[] = "0123456789abcdef";

}  // namespace

const char* AuditKindName(AuditKind kind) {
  switch (kind) {
    case AuditKind::kStatement:
      return "statement";
    case AuditKind::kConnect:
      return "connect";
    case AuditKind::kAuthOk:
      return "auth_ok";
    case AuditKind::kAuthFailed:
      return "auth_failed";
    case AuditKind::kDisconnect:
      return "disconnect";
    case AuditKind::kTokenExpired:
      return "token_expired";
    case AuditKind::kCancel:
      return "cancel";
    case AuditKind::kCheckpoint:
      return "checkpoint";
    case AuditKind::kDropped:
      return "dropped";
    case AuditKind::kCompletion:
      return "completion";
    case AuditKind::kRecording:
      return "recording";
  }
  return "unknown";
}

const char* RecordingStatusName(AuditRecord::RecordingStatus status) {
  switch (status) {
    case AuditRecord::RecordingStatus::kNone:
      return "none";
    case AuditRecord::RecordingStatus::kComplete:
      return "complete";
    case AuditRecord::RecordingStatus::kGap:
      return "gap";
    case AuditRecord::RecordingStatus::kTruncated:
      return "truncated";
    case AuditRecord::RecordingStatus::kOverflow:
      return "overflow";
  }
  return "none";
}

const char* AuditOutcomeName(AuditOutcome outcome) {
  switch (outcome) {
    case AuditOutcome::kNone:
      return "none";
    case AuditOutcome::kOk:
      return "ok";
    case AuditOutcome::kError:
      return "error";
    case AuditOutcome::kNotRun:
      return "not_run";
    case AuditOutcome::kUnknown:
      return "unknown";
  }
  return "unknown";
}

const char* AuditDecisionName(AuditDecision decision) {
  switch (decision) {
    case AuditDecision::kNone:
      return "";
    case AuditDecision::kAllow:
      return "allow";
    case AuditDecision::kDeny:
      return "deny";
    case AuditDecision::kHold:
      return "hold";
    case AuditDecision::kApproved:
      return "approved";
    case AuditDecision::kRejected:
      return "rejected";
    case AuditDecision::kApprovalTimedOut:
      return "approval_timeout";
  }
  return "";
}

const char* AuditProtocolName(AuditProtocol protocol) {
  switch (protocol) {
    case AuditProtocol::kNone:
      return "";
    case AuditProtocol::kSimple:
      return "simple";
    case AuditProtocol::kExtended:
      return "extended";
    case AuditProtocol::kFunctionCall:
      return "function_call";
    case AuditProtocol::kStartup:
      return "startup";
  }
  return "";
}

const char* AuditFieldName(AuditField field) {
  switch (field) {
    case AuditField::kSubject:
      return "subject";
    case AuditField::kIssuer:
      return "issuer";
    case AuditField::kClientId:
      return "client_id";
    case AuditField::kRunId:
      return "run_id";
    case AuditField::kGroups:
      return "groups";
    case AuditField::kClaims:
      return "claims";
    case AuditField::kApplicationName:
      return "application_name";
    case AuditField::kTarget:
      return "target";
    case AuditField::kDatabaseRole:
      return "db_role";
    case AuditField::kStatement:
      return "statement";
    case AuditField::kParameters:
      return "parameters";
    case AuditField::kRule:
      return "rule";
    case AuditField::kApprovalId:
      return "approval_id";
    case AuditField::kCommandTag:
      return "command_tag";
    case AuditField::kMessage:
      return "message";
    case AuditField::kRecordingSha256:
      return "recording_sha256";
    case AuditField::kCount:
      break;
  }
  return "";
}

int64_t AuditClockMicros() {
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

void AuditRecord::Reset() {
  kind = AuditKind::kStatement;
  decision = AuditDecision::kNone;
  protocol = AuditProtocol::kNone;
  outcome = AuditOutcome::kNone;
  auth_method = policy::AuthMethod::kLocalPassword;
  has_identity = false;
  has_rows = false;
  statement_normalized = false;
  shard = 0;
  std::memset(sqlstate, 0, sizeof(sqlstate));
  masked_values = 0;
  start_us = 0;
  end_us = 0;
  duration_us = -1;
  session_id = 0;
  statement_id = 0;
  fingerprint = 0;
  rows = 0;
  bytes_in = 0;
  bytes_out = 0;
  recording_bytes = 0;
  recording_status = RecordingStatus::kNone;
  truncated_ = 0;
  statement_bytes_ = 0;
  used_ = 0;
  last_field_ = kUnset;
  client_port_ = 0;
  client_family_ = AF_UNSPEC;
  for (Ref& ref : refs_) ref = Ref{};
}

void AuditRecord::SetSqlState(std::string_view code) {
  if (code.size() != sizeof(sqlstate)) return;
  std::memcpy(sqlstate, code.data(), sizeof(sqlstate));
}

void AuditRecord::SetClientAddress(const sockaddr* address) {
  client_family_ = AF_UNSPEC;
  if (address == nullptr) return;
  switch (address->sa_family) {
    case AF_INET: {
      sockaddr_in in;
      std::memcpy(&in, address, sizeof(in));
      std::memcpy(client_addr_, &in.sin_addr, 4);
      client_port_ = ntohs(in.sin_port);
      client_family_ = AF_INET;
      break;
    }
    case AF_INET6: {
      sockaddr_in6 in6;
      std::memcpy(&in6, address, sizeof(in6));
      std::memcpy(client_addr_, &in6.sin6_addr, 16);
      client_port_ = ntohs(in6.sin6_port);
      client_family_ = AF_INET6;
      break;
    }
    case AF_UNIX:
      client_family_ = AF_UNIX;
      client_port_ = 0;
      break;
    default:
      break;
  }
}

void AuditRecord::SetLocalClient(int32_t pid, uint32_t uid) {
  client_family_ = AF_UNIX;
  client_port_ = 1;
  std::memcpy(client_addr_, &pid, sizeof(pid));
  std::memcpy(client_addr_ + sizeof(pid), &uid, sizeof(uid));
}

bool AuditRecord::LocalClient(int32_t* pid, uint32_t* uid) const {
  if (client_family_ != AF_UNIX || client_port_ != 1) return false;
  std::memcpy(pid, client_addr_, sizeof(*pid));
  std::memcpy(uid, client_addr_ + sizeof(*pid), sizeof(*uid));
  return true;
}

size_t AuditRecord::WriteClientAddress(char (&out)[kClientAddressMax]) const {
  char text[INET6_ADDRSTRLEN] = {};
  size_t n = 0;
  const auto put = [&](std::string_view s) {
    std::memcpy(out + n, s.data(), s.size());
    n += s.size();
  };
  const auto put_port = [&] {
    char digits[5];
    size_t k = sizeof(digits);
    uint16_t port = client_port_;
    do {
      digits[--k] = static_cast<char>('0' + port % 10);
      port = static_cast<uint16_t>(port / 10);
    } while (port != 0);
    put(":");
    put(std::string_view(digits + k, sizeof(digits) - k));
  };
  switch (client_family_) {
    case AF_INET:
      ::inet_ntop(AF_INET, client_addr_, text, sizeof(text));
      put(text);
      put_port();
      break;
    case AF_INET6:
      ::inet_ntop(AF_INET6, client_addr_, text, sizeof(text));
      put("[");
      put(text);
      put("]");
      put_port();
      break;
    case AF_UNIX:
      put("[local]");  // as PostgreSQL's log_line_prefix %h
      break;
    default:
      break;
  }
  return n;
}

std::string AuditRecord::ClientAddressText() const {
  char text[kClientAddressMax];
  return std::string(text, WriteClientAddress(text));
}

void AuditRecord::Store(AuditField field, std::string_view value, size_t cap) {
  const size_t room = kArenaBytes - used_;
  const size_t n = Utf8Prefix(value, std::min(cap, room));
  if (n < value.size()) truncated_ |= 1u << Index(field);
  if (n > 0) std::memcpy(arena_ + used_, value.data(), n);
  refs_[Index(field)] = Ref{used_, static_cast<uint16_t>(n)};
  used_ = static_cast<uint16_t>(used_ + n);
  last_field_ = static_cast<uint16_t>(Index(field));
}

void AuditRecord::SetStatement(std::string_view sql) {
  const size_t room = kArenaBytes - used_;
  const size_t cap = room > kReserveAfterStatement ? room - kReserveAfterStatement : 0;
  statement_bytes_ = static_cast<uint32_t>(std::min<size_t>(sql.size(), UINT32_MAX));
  Store(AuditField::kStatement, sql, cap);
}

bool AuditRecord::GrowList(AuditField field, size_t bytes) {
  Ref& ref = refs_[Index(field)];
  if (ref.length == kUnset) {
    ref = Ref{used_, 0};
  } else if (last_field_ != Index(field)) {
    // Another field was stored after this list: move the list to the end.
    if (kArenaBytes - used_ < ref.length + bytes) return false;
    std::memmove(arena_ + used_, arena_ + ref.offset, ref.length);
    ref.offset = used_;
    used_ = static_cast<uint16_t>(used_ + ref.length);
  }
  last_field_ = static_cast<uint16_t>(Index(field));
  if (kArenaBytes - used_ < bytes || ref.length + bytes > kListFieldMax) return false;
  return true;
}

void AuditRecord::AddListItem(AuditField field, std::string_view value, uint8_t tag) {
  AddListItems(field, &value, 1, tag);
}

void AuditRecord::AddListItems(AuditField field, std::string_view* values, size_t count,
                               uint8_t tag) {
  if (IsTruncated(field)) return;  // a list keeps its first items, never a later one
  size_t bytes = 0;
  for (size_t i = 0; i < count; ++i) {
    if (values[i].size() > kShortFieldMax) {
      values[i] = values[i].substr(0, Utf8Prefix(values[i], kShortFieldMax));
      truncated_ |= 1u << Index(field);
    }
    bytes += 3 + values[i].size();
  }
  if (!GrowList(field, bytes)) {
    truncated_ |= 1u << Index(field);
    return;
  }
  Ref& ref = refs_[Index(field)];
  for (size_t i = 0; i < count; ++i) {
    char* p = arena_ + used_;
    p[0] = static_cast<char>(tag);
    p[1] = static_cast<char>(values[i].size() & 0xff);
    p[2] = static_cast<char>(values[i].size() >> 8);
    if (!values[i].empty()) std::memcpy(p + 3, values[i].data(), values[i].size());
    used_ = static_cast<uint16_t>(used_ + 3 + values[i].size());
  }
  ref.length = static_cast<uint16_t>(ref.length + bytes);
}

void AuditRecord::AddRedactedParameter(size_t length) {
  char digits[8];
  uint64_t n = std::min<uint64_t>(length, 0xffffffffu);
  for (size_t i = 0; i < 4; ++i) {
    digits[i] = static_cast<char>(n & 0xff);
    n >>= 8;
  }
  AddListItem(AuditField::kParameters, std::string_view(digits, 4), kRedactedItem);
}

void AuditRecord::SetIdentity(const policy::Identity& identity) {
  has_identity = true;
  auth_method = identity.method;
  SetSubject(identity.subject);
  if (!identity.issuer.empty()) SetIssuer(identity.issuer);
  if (!identity.client_id.empty()) Store(AuditField::kClientId, identity.client_id, kShortFieldMax);
  if (!identity.run_id.empty()) Store(AuditField::kRunId, identity.run_id, kShortFieldMax);
  for (const std::string& group : identity.groups) AddListItem(AuditField::kGroups, group);
  for (const auto& [name, value] : identity.claims) {
    std::string_view pair[2] = {name, value};  // stored whole or not at all
    AddListItems(AuditField::kClaims, pair, 2, 0);
  }
}

std::string_view AuditRecord::Get(AuditField field) const {
  const Ref& ref = refs_[Index(field)];
  if (ref.length == kUnset) return {};
  return std::string_view(arena_ + ref.offset, ref.length);
}

bool AuditRecord::ListReader::Next(ListItem* item) {
  if (rest_.size() < 3) return false;
  const auto tag = static_cast<uint8_t>(rest_[0]);
  const size_t n = static_cast<unsigned char>(rest_[1]) |
                   (static_cast<size_t>(static_cast<unsigned char>(rest_[2])) << 8);
  if (rest_.size() < 3 + n) return false;
  const std::string_view value = rest_.substr(3, n);
  rest_.remove_prefix(3 + n);
  *item = ListItem{};
  if (tag == kNullItem) {
    item->type = ListItem::kNull;
  } else if (tag == kRedactedItem) {
    item->type = ListItem::kRedacted;
    for (size_t i = 0; i < value.size() && i < 8; ++i) {
      item->redacted_length |= static_cast<uint64_t>(static_cast<unsigned char>(value[i]))
                               << (8 * i);
    }
  } else {
    item->value = value;
  }
  return true;
}

namespace {

// The serializer writes through a raw cursor into room its caller reserved
// up front (RecordJsonBound): no capacity check, no size update per piece.
// Appending piece by piece to a std::string spent most of the writer's
// formatting time in push_back/append bookkeeping and small memmoves.
char* Put(char* p, std::string_view s) {
  std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

char* PutUnsigned(char* p, uint64_t value) {
  char buffer[20];
  char* end = buffer + sizeof(buffer);
  char* q = end;
  do {
    *--q = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  return Put(p, std::string_view(q, static_cast<size_t>(end - q)));
}

char* PutSigned(char* p, int64_t value) {
  if (value >= 0) return PutUnsigned(p, static_cast<uint64_t>(value));
  *p++ = '-';
  return PutUnsigned(p, static_cast<uint64_t>(-(value + 1)) + 1);
}

constexpr size_t kTimestampBytes = 27;  // "2024-05-01T12:00:00.123456Z"

char* PutTimestamp(char* p, int64_t unix_micros) {
  // Floor division, so that times before 1970 still format (tests, bad clocks).
  int64_t seconds = unix_micros / 1'000'000;
  int64_t micros = unix_micros % 1'000'000;
  if (micros < 0) {
    micros += 1'000'000;
    --seconds;
  }
  // The calendar part changes once a second: keep the last one per thread.
  thread_local int64_t cached_second = INT64_MIN;
  thread_local char cached[20];  // "YYYY-MM-DDTHH:MM:SS"
  if (seconds != cached_second) {
    const time_t t = static_cast<time_t>(seconds);
    tm parts;
    ::gmtime_r(&t, &parts);
    ::strftime(cached, sizeof(cached), "%Y-%m-%dT%H:%M:%S", &parts);
    cached_second = seconds;
  }
  p = Put(p, std::string_view(cached, 19));
  p[0] = '.';
  for (int k = 6; k >= 1; --k) {
    p[k] = static_cast<char>('0' + micros % 10);
    micros /= 10;
  }
  p[7] = 'Z';
  return p + 8;
}

// Runs `write` on room for `bound` bytes at the end of `out`, then trims
// `out` to what it wrote.
template <typename Write>
void AppendBounded(size_t bound, std::string* out, Write&& write) {
  const size_t start = out->size();
  out->resize(start + bound);
  char* const end = write(out->data() + start);
  assert(end <= out->data() + start + bound);
  out->resize(static_cast<size_t>(end - out->data()));
}

class JsonLine {
 public:
  explicit JsonLine(char* p) : p_(p) {}
  void Raw(std::string_view text) { p_ = Put(p_, text); }
  void Char(char c) { *p_++ = c; }
  void Key(std::string_view key) {
    *p_++ = ',';
    *p_++ = '"';
    p_ = Put(p_, key);
    *p_++ = '"';
    *p_++ = ':';
  }
  void String(std::string_view value) { p_ = PutJsonString(p_, value); }
  void String(std::string_view key, std::string_view value) {
    Key(key);
    String(value);
  }
  void Literal(std::string_view key, std::string_view value) {  // value needs no escaping
    Key(key);
    *p_++ = '"';
    p_ = Put(p_, value);
    *p_++ = '"';
  }
  void Unsigned(uint64_t value) { p_ = PutUnsigned(p_, value); }
  void Unsigned(std::string_view key, uint64_t value) {
    Key(key);
    Unsigned(value);
  }
  void Signed(std::string_view key, int64_t value) {
    Key(key);
    p_ = PutSigned(p_, value);
  }
  void Time(std::string_view key, int64_t micros) {
    Key(key);
    *p_++ = '"';
    p_ = PutTimestamp(p_, micros);
    *p_++ = '"';
  }
  char* end() const { return p_; }

 private:
  char* p_;
};

void PutStringList(const AuditRecord& record, AuditField field, JsonLine& line) {
  line.Char('[');
  bool first = true;
  AuditRecord::ListReader reader = record.List(field);
  AuditRecord::ListItem item;
  while (reader.Next(&item)) {
    if (!first) line.Char(',');
    first = false;
    line.String(item.value);
  }
  line.Char(']');
}

// Everything but the record's strings: keys, numbers, timestamps, names,
// the client address, the truncated list, "prev" (about 1,400 bytes at
// most; the margin is deliberate).
constexpr size_t kFixedJsonBound = 2048;

}  // namespace

void AppendTimestamp(int64_t unix_micros, std::string* out) {
  AppendBounded(kTimestampBytes, out, [&](char* p) { return PutTimestamp(p, unix_micros); });
}

size_t RecordJsonBound(const AuditRecord& record, const NormalizedStatement* normalized) {
  // A string byte of the arena becomes at most 6 bytes (\u00XX); a list
  // item's 3-byte header at most quotes and a separator, "null," or a
  // redacted length of up to 10 digits (an item of 7 bytes): 8 per byte
  // covers both.
  size_t bound = kFixedJsonBound + 8 * record.arena_used();
  if (normalized != nullptr) {
    bound += JsonStringBound(normalized->text.size()) + JsonStringBound(normalized->error.size());
  }
  return bound;
}

char* WriteRecordJson(const AuditRecord& r, const SerializeOptions& options, uint64_t seq,
                      std::string_view prev_hex, char* out, const NormalizedStatement* normalized) {
  JsonLine line(out);
  line.Raw("{\"v\":2");
  line.Unsigned("seq", seq);
  line.Literal("kind", AuditKindName(r.kind));
  if (r.start_us != 0) line.Time("start", r.start_us);
  if (r.end_us != 0) line.Time("end", r.end_us);
  if (r.duration_us >= 0) {
    line.Signed("duration_us", r.duration_us);
  } else if (r.start_us != 0 && r.end_us != 0) {
    line.Signed("duration_us", r.end_us - r.start_us);
  }
  if (r.session_id != 0) line.Unsigned("session", r.session_id);
  if (r.statement_id != 0) line.Unsigned("statement_id", r.statement_id);
  if (r.kind != AuditKind::kCheckpoint && r.kind != AuditKind::kDropped) {
    line.Unsigned("shard", r.shard);
  }
  if (r.protocol != AuditProtocol::kNone) line.Literal("protocol", AuditProtocolName(r.protocol));
  if (r.has_identity) {
    line.Key("identity");
    line.Raw("{\"method\":\"");
    line.Raw(policy::AuthMethodName(r.auth_method));
    line.Char('"');
    for (AuditField f :
         {AuditField::kSubject, AuditField::kIssuer, AuditField::kClientId, AuditField::kRunId}) {
      if (r.Has(f)) line.String(AuditFieldName(f), r.Get(f));
    }
    if (r.Has(AuditField::kGroups)) {
      line.Key("groups");
      PutStringList(r, AuditField::kGroups, line);
    }
    if (r.Has(AuditField::kClaims)) {
      line.Key("claims");
      line.Char('{');
      AuditRecord::ListReader reader = r.List(AuditField::kClaims);
      AuditRecord::ListItem name, value;
      bool first = true;
      while (reader.Next(&name) && reader.Next(&value)) {
        if (!first) line.Char(',');
        first = false;
        line.String(name.value);
        line.Char(':');
        line.String(value.value);
      }
      line.Char('}');
    }
    line.Char('}');
  }
  char client[AuditRecord::kClientAddressMax];
  if (const size_t n = r.WriteClientAddress(client); n > 0) {
    line.String("client", std::string_view(client, n));
  }
  int32_t client_pid = 0;
  uint32_t client_uid = 0;
  if (r.LocalClient(&client_pid, &client_uid)) {
    line.Unsigned("client_pid", static_cast<uint64_t>(client_pid));
    line.Unsigned("client_uid", client_uid);
  }
  for (AuditField f :
       {AuditField::kApplicationName, AuditField::kTarget, AuditField::kDatabaseRole}) {
    if (r.Has(f)) line.String(AuditFieldName(f), r.Get(f));
  }
  if (normalized != nullptr && r.Has(AuditField::kStatement)) {
    if (normalized->error.empty()) {
      line.String("statement", normalized->text);
    } else {
      line.String("statement_error", normalized->error);
    }
    if (r.IsTruncated(AuditField::kStatement))
      line.Unsigned("statement_bytes", r.statement_bytes());
  } else if (r.Has(AuditField::kStatement)) {
    line.String("statement", r.Get(AuditField::kStatement));
    if (r.IsTruncated(AuditField::kStatement))
      line.Unsigned("statement_bytes", r.statement_bytes());
  }
  if (options.parameters != ParameterMode::kOff && r.Has(AuditField::kParameters)) {
    line.Key("parameters");
    line.Char('[');
    AuditRecord::ListReader reader = r.List(AuditField::kParameters);
    AuditRecord::ListItem item;
    bool first = true;
    while (reader.Next(&item)) {
      if (!first) line.Char(',');
      first = false;
      if (item.type == AuditRecord::ListItem::kNull) {
        line.Raw("null");
      } else if (item.type == AuditRecord::ListItem::kRedacted) {
        line.Unsigned(item.redacted_length);
      } else if (options.parameters == ParameterMode::kRedacted) {
        line.Unsigned(item.value.size());
      } else {
        line.String(item.value);
      }
    }
    line.Char(']');
  }
  if (r.fingerprint != 0) {
    char hex[16];
    for (int i = 0; i < 16; ++i) hex[i] = kHexDigits[(r.fingerprint >> (60 - 4 * i)) & 0xF];
    line.Literal("fingerprint", std::string_view(hex, 16));
  }
  if (r.decision != AuditDecision::kNone) line.Literal("decision", AuditDecisionName(r.decision));
  if (r.Has(AuditField::kRule)) line.String("rule", r.Get(AuditField::kRule));
  if (r.Has(AuditField::kApprovalId)) line.String("approval_id", r.Get(AuditField::kApprovalId));
  if (r.outcome != AuditOutcome::kNone) line.Literal("outcome", AuditOutcomeName(r.outcome));
  if (r.Has(AuditField::kCommandTag)) line.String("command_tag", r.Get(AuditField::kCommandTag));
  if (r.has_rows) line.Unsigned("rows", r.rows);
  if (r.sqlstate[0] != 0) line.String("sqlstate", std::string_view(r.sqlstate, sizeof(r.sqlstate)));
  if (r.Has(AuditField::kMessage)) line.String("message", r.Get(AuditField::kMessage));
  if (r.bytes_in != 0) line.Unsigned("bytes_in", r.bytes_in);
  if (r.bytes_out != 0) line.Unsigned("bytes_out", r.bytes_out);
  if (r.masked_values != 0) line.Unsigned("masked_values", r.masked_values);
  if (r.Has(AuditField::kRecordingSha256)) {
    // {"sha256":"<64 hex>","bytes":N,"status":"..."}: what `pgbastion audit
    // verify --recordings DIR` checks the recording file against.
    line.Key("recording");
    line.Char('{');
    line.String("sha256");
    line.Char(':');
    line.String(r.Get(AuditField::kRecordingSha256));
    line.Raw(",\"bytes\":");
    line.Unsigned(r.recording_bytes);
    line.Raw(",\"status\":\"");
    line.Raw(RecordingStatusName(r.recording_status));
    line.Raw("\"}");
  }
  if (r.truncated_mask() != 0) {
    line.Key("truncated");
    line.Char('[');
    bool first = true;
    for (size_t i = 0; i < static_cast<size_t>(AuditField::kCount); ++i) {
      if ((r.truncated_mask() & (1u << i)) == 0) continue;
      if (!first) line.Char(',');
      first = false;
      line.Char('"');
      line.Raw(AuditFieldName(static_cast<AuditField>(i)));
      line.Char('"');
    }
    line.Char(']');
  }
  line.Literal("prev", prev_hex);
  line.Raw("}\n");
  return line.end();
}

void AppendRecordJson(const AuditRecord& record, const SerializeOptions& options, uint64_t seq,
                      std::string_view prev_hex, std::string* out,
                      const NormalizedStatement* normalized) {
  AppendBounded(RecordJsonBound(record, normalized), out, [&](char* p) {
    return WriteRecordJson(record, options, seq, prev_hex, p, normalized);
  });
}

}  // namespace pgb::audit
