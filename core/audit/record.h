// AuditRecord: one audit event (a statement, a statement's completion or a
// session event) as a shard writes it, in a fixed-size, self-contained slot
// of the shard's audit ring (core/audit/ring.h), and its JSON Lines form
// (schema "v":2, docs/audit.md).
//
// A statement the database runs gets two records: kStatement, written before
// its first byte is forwarded (who, what, the decision), and kCompletion,
// written when the answer arrives or the session ends without one (the
// outcome), both naming it by session and statement_id. So a client that
// leaves early cannot keep a statement out of the trail.
//
// The shard never allocates for a record: it fills the slot in place. Numbers
// are plain members; strings are copied into the slot's own byte area (the
// arena) by the Set*/Add* calls, each bounded by a per-field cap and by the
// space left. A string that does not fit is cut at a UTF-8 character
// boundary and its field is flagged truncated (the JSON says
// "truncated":[...] and, for the statement, its full length in bytes).
// Why one 4 KiB slot with an arena rather than a slot plus a separate byte
// ring: a statement costs one copy straight into ring memory, the consumer
// frees a record by moving one index, and nothing wraps in the middle of a
// string; the price is that statement text longer than about 3 KiB is cut.
//
//   AuditRecord* r = audit_shard.Begin();           // nullptr: ring full
//   r->kind = AuditKind::kStatement;
//   r->start_us = started; r->end_us = AuditClockMicros();
//   r->session_id = id; r->decision = AuditDecision::kAllow;
//   r->SetIdentity(identity); r->SetStatement(sql); r->SetCommandTag("SELECT 1");
//   audit_shard.Commit();
//
// Fields that do not apply to a kind are left unset and are omitted from the
// JSON line.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "policy/identity.h"

namespace pgb::audit {

enum class AuditKind : uint8_t {
  kStatement = 0,
  kConnect,
  kAuthOk,
  kAuthFailed,
  kDisconnect,
  kTokenExpired,
  kCancel,
  kCheckpoint,  // written by the writer only (signed chain head)
  kDropped,     // written by the writer only (records lost in fail-open mode)
  kCompletion,  // the outcome of a statement recorded before (same session, statement_id)
  kRecording,   // the session's recording lost bytes (a gap) or was truncated: message says how
};
const char* AuditKindName(AuditKind kind);

// What policy decided for a statement.
enum class AuditDecision : uint8_t {
  kNone = 0,          // not a statement, or no decision was reached
  kAllow,             // forwarded
  kDeny,              // refused by a rule
  kHold,              // held for approval (the record of the request itself)
  kApproved,          // held, then approved and forwarded
  kRejected,          // held, then denied by an approver
  kApprovalTimedOut,  // held, and nobody decided in time
};
const char* AuditDecisionName(AuditDecision decision);

// How the statement reached the gateway.
enum class AuditProtocol : uint8_t {
  kNone = 0,
  kSimple,        // Query
  kExtended,      // Parse/Bind/Execute
  kFunctionCall,  // FunctionCall
  kStartup,       // a setting of the startup packet, recorded as its equivalent SET
};
const char* AuditProtocolName(AuditProtocol protocol);

// How a statement the database was sent ended (completion records).
enum class AuditOutcome : uint8_t {
  kNone = 0,
  kOk,       // a command tag (or an empty query, a suspended portal)
  kError,    // an ErrorResponse: sqlstate and message
  kNotRun,   // skipped: an earlier statement of its batch failed
  kUnknown,  // no answer came: the session ended first (message says why)
};
const char* AuditOutcomeName(AuditOutcome outcome);

// The string fields, in their JSON order. Their index is the bit in
// AuditRecord::truncated_mask().
enum class AuditField : uint8_t {
  kSubject = 0,
  kIssuer,
  kClientId,
  kRunId,
  kGroups,
  kClaims,
  kApplicationName,
  kTarget,
  kDatabaseRole,
  kStatement,
  kParameters,
  kRule,
  kApprovalId,
  kCommandTag,
  kMessage,
  kRecordingSha256,  // disconnect: the SHA-256 (hex) of the session recording's content
  kCount,            // not a field
};
const char* AuditFieldName(AuditField field);

// Real time in microseconds since the Unix epoch (CLOCK_REALTIME, a vDSO
// call: about 20 ns).
int64_t AuditClockMicros();

class alignas(64) AuditRecord {
 public:
  static constexpr size_t kSlotBytes = 4096;
  // Caps per field, in bytes. The statement may use whatever the arena has
  // left except kReserveAfterStatement, kept for fields set after it (the
  // command tag, the error message).
  static constexpr size_t kShortFieldMax = 256;
  static constexpr size_t kListFieldMax = 512;  // groups, claims, parameters
  static constexpr size_t kMessageMax = 512;
  static constexpr size_t kReserveAfterStatement = 640;

  AuditRecord() { Reset(); }
  AuditRecord(const AuditRecord&) = delete;
  AuditRecord& operator=(const AuditRecord&) = delete;

  // Back to an empty record (kind kStatement, every field unset). Touches the
  // header only, never the arena.
  void Reset();

  // --- numbers: set directly -------------------------------------------------
  AuditKind kind = AuditKind::kStatement;
  AuditDecision decision = AuditDecision::kNone;
  AuditProtocol protocol = AuditProtocol::kNone;
  AuditOutcome outcome = AuditOutcome::kNone;
  policy::AuthMethod auth_method = policy::AuthMethod::kLocalPassword;
  bool has_identity = false;          // set by SetIdentity
  bool has_rows = false;              // set by SetRows: rows = 0 is still a count
  bool statement_normalized = false;  // the caller already replaced literals by $n
  uint16_t shard = 0;
  char sqlstate[5] = {};  // all zero = none
  uint32_t masked_values = 0;
  int64_t start_us = 0;  // AuditClockMicros(); 0 = unset
  int64_t end_us = 0;
  int64_t duration_us = -1;  // -1 = unset (then end - start when both are set)
  uint64_t session_id = 0;
  uint64_t statement_id = 0;  // 0 = unset; 1, 2, ... within a session
  uint64_t fingerprint = 0;   // 0 = none (e.g. pg_query_fingerprint's value)
  uint64_t rows = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  // Disconnect of a recorded session: the recording's content length (with
  // kRecordingSha256) and how it ended (core/recording/format.h).
  uint64_t recording_bytes = 0;
  enum class RecordingStatus : uint8_t { kNone = 0, kComplete, kGap, kTruncated, kOverflow };
  RecordingStatus recording_status = RecordingStatus::kNone;

  void SetRows(uint64_t n) {
    rows = n;
    has_rows = true;
  }
  void SetSqlState(std::string_view code);  // 5 characters; others are ignored
  // AF_INET, AF_INET6 (address and port) or AF_UNIX ("[local]"); other
  // families leave the address unset.
  void SetClientAddress(const sockaddr* address);
  // A Unix-domain socket client: "[local]", and the process that connected
  // (SO_PEERCRED), written as client_pid and client_uid.
  void SetLocalClient(int32_t pid, uint32_t uid);
  // Whether the client is a local process SetLocalClient named, and which.
  bool LocalClient(int32_t* pid, uint32_t* uid) const;

  // --- strings: copied into the slot ----------------------------------------
  void SetIdentity(const policy::Identity& identity);  // subject .. claims
  void SetSubject(std::string_view v) { Store(AuditField::kSubject, v, kShortFieldMax); }
  void SetIssuer(std::string_view v) { Store(AuditField::kIssuer, v, kShortFieldMax); }
  void SetApplicationName(std::string_view v) {
    Store(AuditField::kApplicationName, v, kShortFieldMax);
  }
  void SetTarget(std::string_view v) { Store(AuditField::kTarget, v, kShortFieldMax); }
  void SetDatabaseRole(std::string_view v) { Store(AuditField::kDatabaseRole, v, kShortFieldMax); }
  void SetStatement(std::string_view sql);
  void SetRule(std::string_view v) { Store(AuditField::kRule, v, kShortFieldMax); }
  void SetApprovalId(std::string_view v) { Store(AuditField::kApprovalId, v, kShortFieldMax); }
  void SetCommandTag(std::string_view v) { Store(AuditField::kCommandTag, v, kShortFieldMax); }
  // The error text (statements), or the reason (auth_failed, disconnect, ...).
  void SetMessage(std::string_view v) { Store(AuditField::kMessage, v, kMessageMax); }
  void SetRecordingSha256(std::string_view hex) {
    Store(AuditField::kRecordingSha256, hex, kShortFieldMax);
  }

  // Extended-protocol parameter values, in order (only when the configured
  // `parameters` mode is "on" or "redacted"; see AuditShard::parameters()).
  void AddParameter(std::string_view value) { AddListItem(AuditField::kParameters, value); }
  void AddNullParameter() { AddListItem(AuditField::kParameters, {}, kNullItem); }
  // A value recorded by its length only ("redacted").
  void AddRedactedParameter(size_t length);
  // Says a field holds less than there was (the writer names it in `truncated`).
  void MarkTruncated(AuditField field) { truncated_ |= 1u << Index(field); }

  // --- reading (the writer, tests) ------------------------------------------
  bool Has(AuditField field) const { return refs_[Index(field)].length != kUnset; }
  std::string_view Get(AuditField field) const;
  bool IsTruncated(AuditField field) const { return (truncated_ & (1u << Index(field))) != 0; }
  uint32_t truncated_mask() const { return truncated_; }
  size_t statement_bytes() const { return statement_bytes_; }  // before truncation
  size_t arena_used() const { return used_; }

  // A list field's items. Each item: a string, SQL NULL, or (parameters) a
  // redacted value's length.
  struct ListItem {
    enum Type : uint8_t { kString, kNull, kRedacted } type = kString;
    std::string_view value;
    uint64_t redacted_length = 0;
  };
  class ListReader {
   public:
    explicit ListReader(std::string_view bytes) : rest_(bytes) {}
    bool Next(ListItem* item);

   private:
    std::string_view rest_;
  };
  ListReader List(AuditField field) const { return ListReader(Get(field)); }

  // The client address as text ("10.0.0.1:5432", "[::1]:5432", "[local]"), or
  // empty if unset.
  std::string ClientAddressText() const;
  // The same into `out`, without allocating; returns its length.
  static constexpr size_t kClientAddressMax = 56;  // "[" INET6_ADDRSTRLEN "]:65535"
  size_t WriteClientAddress(char (&out)[kClientAddressMax]) const;

 private:
  static constexpr uint16_t kUnset = 0xffff;
  static constexpr uint8_t kNullItem = 0xfe;
  static constexpr uint8_t kRedactedItem = 0xfd;
  static constexpr size_t Index(AuditField f) { return static_cast<size_t>(f); }

  struct Ref {
    uint16_t offset = 0;
    uint16_t length = kUnset;
  };

  void Store(AuditField field, std::string_view value, size_t cap);
  // List items are [tag:1][length:2 LE][bytes]; tag 0 = string.
  void AddListItem(AuditField field, std::string_view value, uint8_t tag = 0);
  // Adds `count` items, all or none (values longer than kShortFieldMax are cut).
  void AddListItems(AuditField field, std::string_view* values, size_t count, uint8_t tag);
  // Appends at the end of the arena; a list field must be the last thing
  // appended to grow in place, otherwise it is moved to the end first.
  bool GrowList(AuditField field, size_t bytes);

  uint32_t truncated_ = 0;
  uint32_t statement_bytes_ = 0;
  uint16_t used_ = 0;
  uint16_t last_field_ = kUnset;  // the field that ends the used arena
  uint16_t client_port_ = 0;
  uint8_t client_family_ = 0;  // AF_UNSPEC, AF_INET, AF_INET6, AF_UNIX
  // The IP address; for AF_UNIX, the peer's pid and uid (client_port_ 1 when set).
  uint8_t client_addr_[16] = {};
  Ref refs_[static_cast<size_t>(AuditField::kCount)];

  static constexpr size_t kHeaderBytes = 256;

 public:
  static constexpr size_t kArenaBytes = kSlotBytes - kHeaderBytes;

 private:
  char arena_[kArenaBytes];
};
const char* RecordingStatusName(AuditRecord::RecordingStatus status);
static_assert(sizeof(AuditRecord) == AuditRecord::kSlotBytes,
              "adjust kHeaderBytes so that a record is exactly one slot");

// How records become JSON lines.
enum class StatementText : uint8_t { kFull, kNormalized };
enum class ParameterMode : uint8_t { kOff, kRedacted, kOn };

struct SerializeOptions {
  StatementText statement_text = StatementText::kFull;
  ParameterMode parameters = ParameterMode::kOff;
};

// The statement as the writer normalized it (statement_text = "normalized"):
// `text` with literals replaced by $n, or, when normalization failed, an
// `error` (then the statement is omitted: no literal leaks).
struct NormalizedStatement {
  std::string_view text;
  std::string_view error;
};

// Appends the JSON line for `record` (with the trailing '\n') to `out`:
// {"v":2,"seq":<seq>,"kind":...,...,"prev":"<prev_hex>"}. `prev_hex` is the
// SHA-256 (hex) of the previous line. Invalid UTF-8 becomes U+FFFD.
// `normalized`, when given, replaces the record's statement text.
void AppendRecordJson(const AuditRecord& record, const SerializeOptions& options, uint64_t seq,
                      std::string_view prev_hex, std::string* out,
                      const NormalizedStatement* normalized = nullptr);

// The same line written at `out`, which must have room for
// RecordJsonBound(record, normalized) bytes; returns the end of the line.
// For the writer thread, which reserves room in its batch once per record
// instead of growing a string piece by piece.
char* WriteRecordJson(const AuditRecord& record, const SerializeOptions& options, uint64_t seq,
                      std::string_view prev_hex, char* out,
                      const NormalizedStatement* normalized = nullptr);
// An upper bound of the line's length: a few KiB (each string byte counts
// as the 6 bytes of its worst escape).
size_t RecordJsonBound(const AuditRecord& record, const NormalizedStatement* normalized = nullptr);

// RFC 3339 UTC with microseconds: "2024-05-01T12:00:00.123456Z".
void AppendTimestamp(int64_t unix_micros, std::string* out);

}  // namespace pgb::audit
