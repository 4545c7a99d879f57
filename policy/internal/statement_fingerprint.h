// A statement's fingerprint: a 64-bit hash of its parse tree (libpg_query's
// JSON, PostgreSQL 15) with every constant and every source position left
// out, so statements that differ only in literal values, white space,
// comments or the case of unquoted names share it:
//
//   SELECT * FROM t WHERE id = 1       the same fingerprint as
//   select *  from T where id = 42     this one; but not as
//   SELECT * FROM t WHERE id = $1      this (a parameter is not a constant)
//
// It groups statements in the audit trail the way pg_stat_statements groups
// queries. It is computed from the tree the analyser already has (a walk over
// the DOM, well under a microsecond for a small statement) rather than by
// libpg_query's pg_query_fingerprint, which parses the text again (about 6 µs)
// and would double the cost of every statement the analysis cache misses.
// The hash is FNV-1a: stable across processes and machines, not a security
// property (never use it to decide anything).
#pragma once

#include <simdjson.h>

#include <cstdint>

namespace pgb::policy::internal {

// Never 0 (the audit record's "no fingerprint").
uint64_t StatementFingerprint(simdjson::dom::element statement);

}  // namespace pgb::policy::internal
