#include "policy/sql_analysis.h"

#include <pg_query.h>
#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "base/str_cat.h"
#include "base/utf8.h"
#include "policy/internal/literal_shape.h"
#include "policy/internal/parse_tree.h"
#include "policy/internal/parser_stack.h"
#include "policy/internal/statement_classifier.h"
#include "policy/internal/statement_fingerprint.h"

namespace pgb::policy {
namespace {

// A thread's simdjson parser keeps its buffers between parses; one that grew
// for an unusually large tree is dropped instead of being kept for good.
constexpr size_t kRetainedParserCapacity = 1 << 20;

SqlAnalysis Refused(std::string_view sqlstate, std::string message, int position = 0) {
  SqlAnalysis a;
  a.ok = false;
  a.error_sqlstate = std::string(sqlstate);
  a.error_message = std::move(message);
  a.error_position = position;
  return a;
}

SqlAnalysis TooComplex(int position = 0) {
  return Refused(kSqlStateTooComplex, "statement is too complex", position);
}

SqlAnalysis BadEncoding(std::string_view sql, size_t at, size_t len) {
  std::string bytes;
  for (size_t k = 0; k < len; ++k) {
    Append(bytes, k == 0 ? "" : " ", "0x",
           absl::Hex(static_cast<unsigned char>(sql[at + k]), absl::kZeroPad2));
  }
  return Refused(kSqlStateBadEncoding, Cat("invalid byte sequence for encoding \"UTF8\": ", bytes));
}

// Frees a libpg_query result on every path.
struct ParseResultOwner {
  PgQueryParseResult result;
  ~ParseResultOwner() { pg_query_free_parse_result(result); }
};

// Classifies every RawStmt of libpg_query's JSON `tree`.
SqlAnalysis ClassifyTree(simdjson::dom::parser& json, const char* tree, std::string_view sql) {
  simdjson::dom::element root;
  simdjson::error_code code = json.parse(tree, std::strlen(tree)).get(root);
  if (code == simdjson::DEPTH_ERROR) return TooComplex();
  if (code != simdjson::SUCCESS) {
    return Refused(
        kSqlStateNotClassified,
        Cat("statement could not be classified (parse tree: ", simdjson::error_message(code), ")"));
  }
  SqlAnalysis analysis;
  simdjson::dom::object top;
  simdjson::dom::array stmts;
  if (root.get_object().get(top) != simdjson::SUCCESS ||
      top.at_key("stmts").get_array().get(stmts) != simdjson::SUCCESS) {
    return analysis;  // no statements: empty text or only comments
  }
  for (simdjson::dom::element raw : stmts) {
    simdjson::dom::object raw_stmt;
    simdjson::dom::element stmt;
    if (raw.get_object().get(raw_stmt) != simdjson::SUCCESS ||
        raw_stmt.at_key("stmt").get(stmt) != simdjson::SUCCESS) {
      return Refused(kSqlStateNotClassified, "statement could not be classified (no node)");
    }
    StatementSummary summary;
    int64_t size = static_cast<int64_t>(sql.size());
    int64_t location = std::clamp<int64_t>(internal::IntField(raw_stmt, "stmt_location"), 0, size);
    int64_t length = internal::IntField(raw_stmt, "stmt_len");
    // stmt_len 0: the statement runs to the end of the text.
    if (length <= 0 || location + length > size) length = size - location;
    summary.location = static_cast<uint32_t>(location);
    summary.length = static_cast<uint32_t>(length);
    summary.fingerprint = internal::StatementFingerprint(stmt);
    absl::Status status = internal::ClassifyStatement(stmt, sql, summary);
    if (!status.ok()) return Refused(kSqlStateNotClassified, std::string(status.message()));
    analysis.statements.push_back(std::move(summary));
  }
  // The analysis may be cached for long: without the growth slack of the
  // vector (up to half of it, ~330 bytes a statement).
  analysis.statements.shrink_to_fit();
  return analysis;
}

SqlAnalysis ParseAndClassify(std::string_view sql) {
  std::string text(sql);  // libpg_query takes a C string
  ParseResultOwner parsed{pg_query_parse(text.c_str())};
  if (const PgQueryError* error = parsed.result.error) {
    std::string_view message = error->message != nullptr ? error->message : "syntax error";
    // Bison's own stack limit (10000 nested levels) reads "memory exhausted".
    if (message.rfind("memory exhausted", 0) == 0) return TooComplex(error->cursorpos);
    return Refused(kSqlStateSyntaxError, std::string(message), error->cursorpos);
  }
  if (parsed.result.parse_tree == nullptr) {
    return Refused(kSqlStateNotClassified, "statement could not be classified (no parse tree)");
  }

  thread_local simdjson::dom::parser json;
  SqlAnalysis analysis = ClassifyTree(json, parsed.result.parse_tree, sql);
  if (json.capacity() > kRetainedParserCapacity) json = simdjson::dom::parser();
  return analysis;
}

size_t SummaryBytes(const StatementSummary& s) {
  size_t n = sizeof(StatementSummary) + s.command.size() + s.prepare_name.size() +
             s.execute_name.size() + s.deallocate_name.size();
  n += s.relations.capacity() * sizeof(RelationRef);
  for (const RelationRef& r : s.relations) n += r.schema.size() + r.name.size();
  n += s.functions.capacity() * sizeof(FunctionRef);
  for (const FunctionRef& f : s.functions) n += f.schema.size() + f.name.size();
  n += s.settings.capacity() * sizeof(SettingChange);
  for (const SettingChange& c : s.settings) n += c.name.size() + c.value.size();
  for (const auto* names : {&s.output_columns, &s.other_columns}) {
    n += names->capacity() * sizeof(std::string);
    for (const std::string& name : *names) n += name.size();
  }
  if (s.prepared) n += 32 + SummaryBytes(*s.prepared);  // with the shared_ptr control block
  return n;
}

}  // namespace

SqlAnalysis AnalyseSql(std::string_view sql) {
  if (size_t nul = sql.find('\0'); nul != std::string_view::npos) {
    return BadEncoding(sql, nul, 1);  // PostgreSQL: ... "UTF8": 0x00
  }
  if (auto [at, len] = FirstInvalidUtf8(sql); len != 0) return BadEncoding(sql, at, len);
  size_t stack = internal::StackNeededFor(sql.size());
  if (stack > internal::kMaxStack) return TooComplex();
  SqlAnalysis analysis;
  if (!internal::RunWithStack(stack, [&] { analysis = ParseAndClassify(sql); })) {
    return Refused(kSqlStateOutOfMemory,
                   "out of memory: no thread could be started to analyse a large statement");
  }
  return analysis;
}

size_t EstimateAnalysisBytes(const SqlAnalysis& analysis) {
  size_t n = sizeof(SqlAnalysis) + analysis.error_sqlstate.size() + analysis.error_message.size();
  n += (analysis.statements.capacity() - analysis.statements.size()) * sizeof(StatementSummary);
  for (const StatementSummary& s : analysis.statements) n += SummaryBytes(s);
  return n;
}

bool SameForEveryLiteral(const SqlAnalysis& analysis) {
  if (!analysis.ok || analysis.statements.size() != 1) return false;
  const StatementSummary& s = analysis.statements[0];
  const bool select =
      s.command == "SELECT" && s.statement_class == StatementClass::kRead && !s.modifies_data;
  const bool insert =
      s.command == "INSERT" && s.statement_class == StatementClass::kWrite && !s.data_modifying_cte;
  return (select || insert) && s.functions.empty() && s.settings.empty() &&
         s.copy.direction == CopyDirection::kNone && !s.explain_analyze && !s.select_into &&
         !s.unfiltered_write && !s.destructive && s.prepare_name.empty() && !s.prepared &&
         s.execute_name.empty() && s.deallocate_name.empty() && !s.deallocate_all;
}

std::shared_ptr<const SqlAnalysis> AnalysisCache::Analyse(std::string_view sql) {
  if (auto it = index_.find(sql); it != index_.end()) {
    ++hits_;
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->analysis;
  }
  const std::optional<std::string> shape = internal::LiteralShape(sql);
  if (shape) {
    if (auto it = shape_index_.find(*shape); it != shape_index_.end()) {
      ++hits_;
      ++shape_hits_;
      lru_.splice(lru_.begin(), lru_, it->second);
      const Entry& e = *it->second;
      if (e.text_size == sql.size()) return e.analysis;
      // The texts differ only inside literals, which lie inside the one
      // statement: it starts at the same place and ends as much later as the
      // text is longer.
      auto adjusted = std::make_shared<SqlAnalysis>(*e.analysis);
      const int64_t longer = static_cast<int64_t>(sql.size()) - e.text_size;
      adjusted->statements[0].length =
          static_cast<uint32_t>(adjusted->statements[0].length + longer);
      return adjusted;
    }
  }
  ++misses_;
  auto analysis = std::make_shared<const SqlAnalysis>(AnalyseSql(sql));
  if (shape && SameForEveryLiteral(*analysis)) {
    Insert(*shape, true, analysis, sql.size());
  } else {
    Insert(sql, false, analysis, sql.size());
  }
  return analysis;
}

void AnalysisCache::Insert(std::string_view key, bool by_shape,
                           std::shared_ptr<const SqlAnalysis> analysis, size_t text_size) {
  // The list node, the map slot and the shared_ptr control block.
  constexpr size_t kEntryOverhead = sizeof(Entry) + 64;
  size_t entry_bytes = key.size() + EstimateAnalysisBytes(*analysis) + kEntryOverhead;
  if (entry_bytes > max_bytes_) return;
  while (bytes_ + entry_bytes > max_bytes_ && !lru_.empty()) {
    Entry& oldest = lru_.back();
    bytes_ -= oldest.bytes;
    (oldest.by_shape ? shape_index_ : index_).erase(std::string_view(oldest.key));
    lru_.pop_back();
  }
  lru_.push_front(Entry{std::string(key), std::move(analysis), entry_bytes, by_shape,
                        static_cast<uint32_t>(text_size)});
  (by_shape ? shape_index_ : index_).emplace(std::string_view(lru_.front().key), lru_.begin());
  bytes_ += entry_bytes;
}

absl::StatusOr<std::string> NormalizeSql(const std::string& sql) {
  PgQueryNormalizeResult result = pg_query_normalize(sql.c_str());
  absl::StatusOr<std::string> out =
      result.error != nullptr
          ? absl::StatusOr<std::string>(absl::InvalidArgumentError(result.error->message))
          : absl::StatusOr<std::string>(std::string(result.normalized_query));
  pg_query_free_normalize_result(result);
  return out;
}

}  // namespace pgb::policy
