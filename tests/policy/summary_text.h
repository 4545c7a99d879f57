// A one-line text form of a SqlAnalysis for the table-driven corpus test
// (corpus/statements.tsv): `class <TAB> command <TAB> facts`, facts sorted and
// joined with "; ", each one of
//   rel=[schema.]name:access,access    fn=[schema.]name
//   set=name=value [+local] [+reset] [+fn] [+unknown]
//   copy=from|to:stdio|file|program    prepare=name (prepared=class:command)
//   execute=name    deallocate=name    deallocate_all
//   modifies  unfiltered  cte_write  explain_analyze  select_into  on_conflict  destructive
// A refused analysis reads `error:<sqlstate>`. Command words are joined by
// spaces as in PostgreSQL's command tags.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "policy/sql_analysis.h"

namespace pgb::policy::testing {

inline std::string AccessText(uint8_t access) {
  static const char* const kNames[] = {"select",   "insert",     "update", "delete",
                                       "truncate", "references", "lock",   "ddl"};
  std::string out;
  for (int bit = 0; bit < 8; ++bit) {
    if ((access & (1 << bit)) == 0) continue;
    if (!out.empty()) out += ",";
    out += kNames[bit];
  }
  return out;
}

inline std::string Qualified(const std::string& schema, const std::string& name) {
  return schema.empty() ? name : schema + "." + name;
}

inline std::vector<std::string> Facts(const StatementSummary& s) {
  std::vector<std::string> facts;
  for (const RelationRef& r : s.relations) {
    facts.push_back("rel=" + Qualified(r.schema, r.name) + ":" + AccessText(r.access));
  }
  for (const FunctionRef& f : s.functions) facts.push_back("fn=" + Qualified(f.schema, f.name));
  for (const SettingChange& c : s.settings) {
    std::string fact = "set=" + c.name + "=" + c.value;
    if (c.local) fact += " +local";
    if (c.reset) fact += " +reset";
    if (c.via_function) fact += " +fn";
    if (!c.value_known) fact += " +unknown";
    facts.push_back(fact);
  }
  if (s.copy.direction != CopyDirection::kNone) {
    std::string where = s.copy.program ? "program" : s.copy.server_file ? "file" : "stdio";
    facts.push_back(std::string("copy=") +
                    (s.copy.direction == CopyDirection::kFrom ? "from:" : "to:") + where);
  }
  if (!s.prepare_name.empty()) facts.push_back("prepare=" + s.prepare_name);
  if (s.prepared) {
    facts.push_back(std::string("prepared=") + StatementClassName(s.prepared->statement_class) +
                    ":" + s.prepared->command);
  }
  if (!s.execute_name.empty()) facts.push_back("execute=" + s.execute_name);
  if (!s.deallocate_name.empty()) facts.push_back("deallocate=" + s.deallocate_name);
  if (s.deallocate_all) facts.push_back("deallocate_all");
  if (s.modifies_data) facts.push_back("modifies");
  if (s.unfiltered_write) facts.push_back("unfiltered");
  if (s.data_modifying_cte) facts.push_back("cte_write");
  if (s.explain_analyze) facts.push_back("explain_analyze");
  if (s.select_into) facts.push_back("select_into");
  if (s.on_conflict) facts.push_back("on_conflict");
  if (s.destructive) facts.push_back("destructive");
  std::sort(facts.begin(), facts.end());
  return facts;
}

inline std::string JoinFacts(const std::vector<std::string>& facts) {
  std::string out;
  for (const std::string& f : facts) {
    if (!out.empty()) out += "; ";
    out += f;
  }
  return out;
}

// The text form of the statement at `index` of `a` (or of the error).
inline std::string SummaryText(const SqlAnalysis& a, size_t index) {
  if (!a.ok) return "error:" + a.error_sqlstate;
  if (index >= a.statements.size()) return "missing";
  const StatementSummary& s = a.statements[index];
  return std::string(StatementClassName(s.statement_class)) + "\t" + s.command + "\t" +
         JoinFacts(Facts(s));
}

// Every statement of `a` (or its error), one per line.
inline std::string AnalysisText(const SqlAnalysis& a) {
  std::string all;
  for (size_t i = 0; i < std::max<size_t>(a.statements.size(), 1); ++i) {
    all += SummaryText(a, i) + "\n";
  }
  return all;
}

// How a statement uses column names (the fields for column masks), in the
// order the analyser found them: `out=a,b other=c row star position distinct`.
inline std::string ColumnsText(const StatementSummary& s) {
  std::string out = "out=";
  for (size_t i = 0; i < s.output_columns.size(); ++i) {
    out += (i > 0 ? "," : "") + s.output_columns[i];
  }
  out += " other=";
  for (size_t i = 0; i < s.other_columns.size(); ++i) {
    out += (i > 0 ? "," : "") + s.other_columns[i];
  }
  if (s.row_reference) out += " row";
  if (s.renames_columns) out += " renames";
  if (s.star_output) out += " star";
  if (s.sorts_by_position) out += " position";
  if (s.distinct_output) out += " distinct";
  return out;
}

// AnalysisText plus what the gateway reads besides: the error fields, and each
// statement's byte range, fingerprint and column use (with its prepared
// statement's).
inline std::string EverythingText(const SqlAnalysis& a) {
  std::string out = AnalysisText(a) + a.error_sqlstate + "|" + a.error_message + "|" +
                    std::to_string(a.error_position);
  for (const StatementSummary& s : a.statements) {
    out += "|" + std::to_string(s.location) + "+" + std::to_string(s.length) + "#" +
           std::to_string(s.fingerprint) + " " + ColumnsText(s);
    if (s.prepared) out += " prepared: " + ColumnsText(*s.prepared);
  }
  return out;
}

}  // namespace pgb::policy::testing
