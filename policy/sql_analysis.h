// The SQL analyser: statement text in, one StatementSummary per statement out
// (policy/statement.h), from PostgreSQL's own parser (libpg_query 15). The
// rules (policy/rules.h) decide on the summaries; the gateway analyses every
// simple Query, every Parse, and SQL-level PREPARE/EXECUTE before anything is
// forwarded.
//
//   SqlAnalysis a = AnalyseSql("SELECT 1; DELETE FROM app.orders WHERE true");
//   // a.ok, a.statements.size() == 2,
//   // a.statements[1]: class kWrite, command "DELETE", unfiltered_write,
//   //                  relations {{"app", "orders", kAccessDelete}}
//
//   AnalysisCache cache(8 << 20);  // one per shard
//   std::shared_ptr<const SqlAnalysis> cached = cache.Analyse(query_text);
//
// Fail closed: text that does not parse, is too deeply nested, contains a zero
// byte or invalid UTF-8, or holds a statement the analyser cannot classify,
// gives ok == false with the SQLSTATE and message to send to the client, and
// no statement of it may be forwarded. Every input is safe to pass: nesting
// that would overflow the parser's stack is parsed on a larger stack or
// refused with 54001, never a crash. AnalyseSql may be called from several
// threads at once (libpg_query keeps its memory per thread); an AnalysisCache
// belongs to one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "policy/function_classes.h"
#include "policy/statement.h"

namespace pgb::policy {

// SQLSTATEs of a refused analysis.
inline constexpr std::string_view kSqlStateSyntaxError = "42601";
inline constexpr std::string_view kSqlStateTooComplex = "54001";     // statement_too_complex
inline constexpr std::string_view kSqlStateNotClassified = "42501";  // insufficient_privilege
inline constexpr std::string_view kSqlStateBadEncoding = "22021";    // character_not_in_repertoire
inline constexpr std::string_view kSqlStateOutOfMemory = "53200";

// ok and the error's fields rather than a StatusOr: an analysis, refused or
// not, is what the per-shard AnalysisCache keeps and shares on the hot path,
// and a refusal carries the SQLSTATE and cursor position of its ErrorResponse.
struct SqlAnalysis {
  std::vector<StatementSummary> statements;  // in order; empty text -> empty vector, ok
  bool ok = true;
  // When !ok: why the text was not analysed. Syntax errors carry PostgreSQL's
  // own message and SQLSTATE 42601 with the 1-based cursor position (in
  // characters, as PostgreSQL counts it); too deep nesting 54001 ("statement
  // is too complex"); a zero byte or invalid UTF-8 22021; anything the
  // analyser cannot classify 42501 with a message saying so.
  std::string error_sqlstate;
  std::string error_message;
  int error_position = 0;
};

[[nodiscard]] SqlAnalysis AnalyseSql(std::string_view sql);

// A per-shard cache of analyses keyed by the exact statement text: single
// threaded, no locks. Bounded by bytes (the text plus an estimate of the
// analysis), least recently used first out. Refused analyses are cached too:
// the same text is refused the same way. An analysis larger than the whole
// bound is returned without being cached.
//
// A text in the simple subset of policy/internal/literal_shape.h whose
// analysis cannot depend on its literals (SameForEveryLiteral) is kept under
// its literal shape instead, so `... WHERE aid = 5` and `... WHERE aid = 7`
// share one entry: the second is answered with the first's analysis, its
// statement's length adjusted to the second text.
class AnalysisCache {
 public:
  explicit AnalysisCache(size_t max_bytes) : max_bytes_(max_bytes) {}
  AnalysisCache(const AnalysisCache&) = delete;
  AnalysisCache& operator=(const AnalysisCache&) = delete;

  [[nodiscard]] std::shared_ptr<const SqlAnalysis> Analyse(std::string_view sql);

  size_t bytes() const { return bytes_; }
  size_t max_bytes() const { return max_bytes_; }
  size_t entries() const { return lru_.size(); }
  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }
  uint64_t shape_hits() const { return shape_hits_; }  // hits through a literal shape

 private:
  struct Entry {
    std::string key;  // the text, or its literal shape
    std::shared_ptr<const SqlAnalysis> analysis;
    size_t bytes = 0;
    bool by_shape = false;
    uint32_t text_size = 0;  // of the text `analysis` was made from
  };

  void Insert(std::string_view key, bool by_shape, std::shared_ptr<const SqlAnalysis> analysis,
              size_t text_size);

  size_t max_bytes_;
  size_t bytes_ = 0;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
  uint64_t shape_hits_ = 0;
  std::list<Entry> lru_;  // most recently used first
  // Keys view the Entry::key they point at: texts, and literal shapes.
  absl::flat_hash_map<std::string_view, std::list<Entry>::iterator> index_;
  absl::flat_hash_map<std::string_view, std::list<Entry>::iterator> shape_index_;
};

// Whether an analysis holds for every text of the same literal shape: one
// SELECT that changes nothing, or one INSERT without a data-modifying WITH,
// calling no function and setting nothing (no COPY, EXPLAIN, SELECT INTO,
// PREPARE or EXECUTE either). The analyser reads constants' values only for
// settings, set_config() and the constant-true WHERE of UPDATE, DELETE and
// MERGE, none of which such a statement has.
bool SameForEveryLiteral(const SqlAnalysis& analysis);

// The bytes an analysis holds, as the cache counts them (estimate).
size_t EstimateAnalysisBytes(const SqlAnalysis& analysis);

// `sql` with every constant replaced by $n (libpg_query's normalizer), for
// audit records that must not hold literals:
// NormalizeSql("SELECT 1 WHERE a = 'x'") == "SELECT $1 WHERE a = $2".
// Errors: InvalidArgument with the parser's message (the text does not parse).
[[nodiscard]] absl::StatusOr<std::string> NormalizeSql(const std::string& sql);

}  // namespace pgb::policy
