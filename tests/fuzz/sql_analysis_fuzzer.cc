// Fuzzes the SQL analyser (policy/sql_analysis.h): statement text straight
// from a client's Query or Parse message. Invariants checked on every input:
//   - ok: every statement's byte range lies in the text, in order, without
//     overlap; each has a command; every relation has a name and some access;
//     `prepared` is there exactly when `prepare_name` is.
//   - refused: one of the SQLSTATEs the analyser uses, a message, no statements.
//   - the same text analyses the same way twice.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "policy/sql_analysis.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/policy/summary_text.h"

using pgb::policy::SqlAnalysis;
using pgb::policy::StatementSummary;
using pgb::policy::testing::AnalysisText;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view sql(reinterpret_cast<const char*>(data), size);
  SqlAnalysis a = pgb::policy::AnalyseSql(sql);
  if (!a.ok) {
    static const std::set<std::string> kStates = {"42601", "54001", "22021", "42501", "53200"};
    FUZZ_CHECK(kStates.count(a.error_sqlstate) == 1);
    FUZZ_CHECK(!a.error_message.empty());
    FUZZ_CHECK(a.statements.empty());
  } else {
    size_t end = 0;
    for (const StatementSummary& s : a.statements) {
      FUZZ_CHECK(s.location >= end);
      FUZZ_CHECK(static_cast<size_t>(s.location) + s.length <= size);
      end = s.location + s.length;
      FUZZ_CHECK(!s.command.empty());
      for (const pgb::policy::RelationRef& r : s.relations) {
        FUZZ_CHECK(!r.name.empty());
        FUZZ_CHECK(r.access != 0);
      }
      FUZZ_CHECK(s.prepare_name.empty() == (s.prepared == nullptr));
    }
  }
  FUZZ_CHECK(AnalysisText(pgb::policy::AnalyseSql(sql)) == AnalysisText(a));
  return 0;
}
