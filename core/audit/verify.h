// Verification of an audit trail (the files of a file sink, rotated ones
// included): the hash chain, the sequence numbers and the checkpoint
// signatures, in order. It stops at the first bad record and says what kind
// of tampering explains it, and where (file:line, seq):
//
//   edited        a record's bytes changed (its hash no longer matches the
//                 next record's "prev"), or a line is not a valid record
//   deleted       records are missing (a gap in "seq")
//   reordered     a record appears out of place (its seq turns up later)
//   inserted      a record that does not belong (a copy, or a forgery) sits
//                 between two records that chain to each other
//   bad_signature a checkpoint's signature does not verify with the public
//                 key (or it was signed by another key): the records before
//                 it were rewritten and re-chained, or the checkpoint edited
//   unsigned_tail records after the last checkpoint: not covered by any
//                 signature (the tail was truncated, or the gateway is still
//                 running or crashed)
//   truncated     the trail ends at a periodic checkpoint, not at the final
//                 one a clean shutdown writes
// With `live` (a trail still being written) the last two are notes, not
// failures.
//
// Separately from tampering it checks completeness (records of schema
// version 2): every statement the database was sent has a completion, and
// every session that connected has a disconnect. The gateway writes both
// even when the client or the database vanishes mid-statement (outcome
// "unknown"), so a gap means the gateway itself died (kill -9, power loss),
// a record was lost (fail-open mode: see the "dropped" records), or the
// trail is still being written.
//
//   PGB_ASSIGN_OR_RETURN(AuditVerifyKey key, AuditVerifyKey::LoadFile("audit.pub"));
//   PGB_ASSIGN_OR_RETURN(VerifyReport report, VerifyTrail({"audit.jsonl"}, key, {}));
//   if (report.finding) puts(report.finding->Describe().c_str());
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/audit/chain.h"

namespace pgb::audit {

enum class TamperKind {
  kEdited,
  kDeleted,
  kReordered,
  kInserted,
  kBadSignature,
  kUnsignedTail,
  kTruncated,
};
const char* TamperKindName(TamperKind kind);

struct VerifyFinding {
  TamperKind kind;
  std::string file;
  uint64_t line = 0;  // 1-based
  uint64_t seq = 0;   // the record's seq (0 if it has none)
  std::string detail;
  std::string Describe() const;  // "audit.jsonl:17: seq 17: edited: ..."
};

struct VerifyOptions {
  bool live = false;
};

// What the trail began and never finished.
struct IncompleteTrail {
  uint64_t statements = 0;      // allowed statements with no completion
  uint64_t sessions = 0;        // connects with no disconnect
  std::string first_statement;  // the earliest: "file:line: session S, statement_id N"
  std::string first_session;    // "file:line: session S"
  bool empty() const { return statements == 0 && sessions == 0; }
};

struct VerifyReport {
  uint64_t records = 0;  // lines verified (checkpoints included)
  uint64_t checkpoints = 0;
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  uint64_t last_signed_seq = 0;
  std::optional<VerifyFinding> finding;  // the first problem; none = intact
  std::vector<std::string> notes;        // e.g. where the chain starts
  IncompleteTrail incomplete;            // (only when no finding stopped the check)
};

// Verifies `files` as one trail. The files are put in order by the seq of
// their first record, so `audit.jsonl*` in any order works. IO errors are
// errors; tampering is a finding.
absl::StatusOr<VerifyReport> VerifyTrail(const std::vector<std::string>& files,
                                         const AuditVerifyKey& key, const VerifyOptions& options);

}  // namespace pgb::audit
