#include "policy/sql_analysis.h"

#include <pg_query.h>
#include <simdjson.h>

#include <algorithm>
#include <optional>
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

// libpg_query's JSON for a text is {"version":N,"stmts":[S1,S2,...]}, one
// element per statement. Parsed as one document, simdjson's tape and indexes
// take about 15 bytes per byte of JSON, and short statements make about 25
// bytes of JSON per byte of SQL: a 450 KB Query of 50,000 statements took
// 210 MB at its peak. So each statement's element is parsed on its own: the
// peak is what the largest statement needs, and the JSON text itself.
//
// Calls on_statement(json) with the text of each element, in order; false
// when `tree` does not have that shape. Strings are skipped with their
// escapes, so a bracket or quote inside one does not count.
template <typename OnStatement>
bool ForEachStatementJson(std::string_view tree, OnStatement&& on_statement) {
  constexpr std::string_view kVersion = "{\"version\":";
  constexpr std::string_view kStmts = ",\"stmts\":[";
  if (tree.substr(0, kVersion.size()) != kVersion) return false;
  size_t pos = kVersion.size();
  while (pos < tree.size() && tree[pos] >= '0' && tree[pos] <= '9') ++pos;
  if (tree.substr(pos) == "}") return true;  // no statements: empty text or only comments
  if (tree.substr(pos, kStmts.size()) != kStmts) return false;
  pos += kStmts.size();
  if (tree.substr(pos) == "]}") return true;
  while (pos < tree.size()) {
    if (tree[pos] != '{') return false;
    const size_t begin = pos;
    int depth = 0;
    bool in_string = false;
    for (; pos < tree.size(); ++pos) {
      const char c = tree[pos];
      if (in_string) {
        if (c == '\\') {
          ++pos;  // the escaped character
        } else if (c == '"') {
          in_string = false;
        }
      } else if (c == '"') {
        in_string = true;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if ((c == '}' || c == ']') && --depth == 0) {
        break;
      }
    }
    if (pos >= tree.size()) return false;
    ++pos;
    if (!on_statement(tree.substr(begin, pos - begin))) return true;  // stopped
    if (tree.substr(pos) == "]}") return true;
    if (tree[pos] != ',') return false;
    ++pos;
  }
  return false;
}

// Classifies one RawStmt element of libpg_query's JSON into `summary`.
// Errors: the analysis to return instead (refused, or too complex).
std::optional<SqlAnalysis> ClassifyRawStmt(simdjson::dom::parser& json, std::string_view element,
                                           std::string_view sql, StatementSummary& summary) {
  simdjson::dom::element raw;
  simdjson::error_code code = json.parse(element.data(), element.size()).get(raw);
  if (code == simdjson::DEPTH_ERROR) return TooComplex();
  if (code != simdjson::SUCCESS) {
    return Refused(
        kSqlStateNotClassified,
        Cat("statement could not be classified (parse tree: ", simdjson::error_message(code), ")"));
  }
  simdjson::dom::object raw_stmt;
  simdjson::dom::element stmt;
  if (raw.get_object().get(raw_stmt) != simdjson::SUCCESS ||
      raw_stmt.at_key("stmt").get(stmt) != simdjson::SUCCESS) {
    return Refused(kSqlStateNotClassified, "statement could not be classified (no node)");
  }
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
  return std::nullopt;
}

// Classifies every RawStmt of libpg_query's JSON `tree`, one at a time.
SqlAnalysis ClassifyTree(simdjson::dom::parser& json, std::string_view tree, std::string_view sql) {
  SqlAnalysis analysis;
  std::optional<SqlAnalysis> refused;
  const bool shaped = ForEachStatementJson(tree, [&](std::string_view element) {
    StatementSummary summary;
    refused = ClassifyRawStmt(json, element, sql, summary);
    if (refused) return false;
    analysis.statements.push_back(std::move(summary));
    return true;
  });
  if (refused) return *std::move(refused);
  if (!shaped) {
    return Refused(kSqlStateNotClassified,
                   "statement could not be classified (unexpected parse tree layout)");
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
  n += s.attribute_refs.capacity() * sizeof(StatementSummary::AttributeRef);
  for (const auto& a : s.attribute_refs)
    n += a.schema.size() + a.relation.size() + a.attribute.size();
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
  // FOR UPDATE/SHARE: whether its WHERE selects rows (`1 = 2`) or not
  // (`1 = 1`) decides the class.
  const bool locks_rows = std::any_of(s.relations.begin(), s.relations.end(),
                                      [](const RelationRef& r) { return r.access & kAccessLock; });
  return (select || insert) && !locks_rows && s.functions.empty() && s.settings.empty() &&
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
