// The table-driven corpus of the SQL analyser: corpus/statements.tsv holds
// each statement with its expected class, command and facts (format in the
// file's header and summary_text.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "policy/sql_analysis.h"
#include "tests/policy/summary_text.h"

namespace pgb::policy {
namespace {

struct Row {
  int line = 0;
  std::string sql;  // decoded
  size_t index = 0;
  std::string expected;  // class \t command \t sorted facts
};

std::string Decode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      char next = s[i + 1];
      if (next == 'n' || next == 't' || next == '\\') {
        out += next == 'n' ? '\n' : next == 't' ? '\t' : '\\';
        ++i;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

std::vector<std::string> SplitTabs(const std::string& line) {
  std::vector<std::string> cols;
  std::stringstream in(line);
  std::string col;
  while (std::getline(in, col, '\t')) cols.push_back(col);
  if (!line.empty() && line.back() == '\t') cols.push_back("");
  return cols;
}

// Facts in the file may come in any order; the text form sorts them.
std::string NormalisedFacts(const std::string& facts) {
  std::vector<std::string> items;
  size_t start = 0;
  while (start < facts.size()) {
    size_t end = facts.find("; ", start);
    if (end == std::string::npos) end = facts.size();
    items.push_back(facts.substr(start, end - start));
    start = end + 2;
  }
  std::sort(items.begin(), items.end());
  return testing::JoinFacts(items);
}

std::vector<Row> LoadCorpus() {
  std::ifstream file(PGB_SQL_CORPUS);
  EXPECT_TRUE(file.good()) << "cannot open " << PGB_SQL_CORPUS;
  std::vector<Row> rows;
  std::string line;
  int number = 0;
  while (std::getline(file, line)) {
    ++number;
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> cols = SplitTabs(line);
    EXPECT_EQ(cols.size(), 5u) << "line " << number << ": want 5 tab-separated columns";
    if (cols.size() != 5) continue;
    Row row{number, Decode(cols[0]), std::stoul(cols[1]), ""};
    row.expected = cols[2].rfind("error:", 0) == 0
                       ? cols[2]
                       : cols[2] + "\t" + cols[3] + "\t" + NormalisedFacts(cols[4]);
    rows.push_back(std::move(row));
  }
  return rows;
}

TEST(SqlAnalysisCorpus, EveryStatementIsClassifiedAsExpected) {
  std::vector<Row> rows = LoadCorpus();
  ASSERT_GE(rows.size(), 300u);
  std::map<std::string, size_t> statements_per_text;
  for (const Row& row : rows) {
    size_t& n = statements_per_text[row.sql];
    n = std::max(n, row.index + 1);
  }
  std::map<std::string, SqlAnalysis> analyses;
  for (const Row& row : rows) {
    auto it = analyses.find(row.sql);
    if (it == analyses.end()) it = analyses.emplace(row.sql, AnalyseSql(row.sql)).first;
    const SqlAnalysis& a = it->second;
    EXPECT_EQ(testing::SummaryText(a, row.index), row.expected)
        << "statements.tsv line " << row.line << ": " << row.sql
        << (a.ok ? "" : "\n  error: " + a.error_message);
    if (a.ok) {
      EXPECT_EQ(a.statements.size(), statements_per_text[row.sql])
          << "statements.tsv line " << row.line << ": " << row.sql;
    }
  }
}

}  // namespace
}  // namespace pgb::policy
