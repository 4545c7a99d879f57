// Fuzzes the SQL analyser (policy/sql_analysis.h): statement text straight
// from a client's Query or Parse message. Invariants checked on every input:
//   - ok: every statement's byte range lies in the text, in order, without
//     overlap; each has a command; every relation has a name and some access;
//     `prepared` is there exactly when `prepare_name` is.
//   - refused: one of the SQLSTATEs the analyser uses, a message, no statements.
//   - the same text analyses the same way twice.
//   - the analysis cache, primed with this text, answers a text of the same
//     literal shape (other literal contents, lengths chosen from the input's
//     bytes) exactly as a fresh analysis of that text does.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "policy/internal/literal_shape.h"
#include "policy/sql_analysis.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/policy/summary_text.h"

using pgb::policy::SqlAnalysis;
using pgb::policy::StatementSummary;
using pgb::policy::testing::AnalysisText;
using pgb::policy::testing::EverythingText;

namespace {

// A text of `shape` with literal contents picked by `seed`'s bytes.
std::string Refill(std::string_view shape, std::string_view seed) {
  static const char* const kIntegers[] = {"0", "1", "42", "007", "2147483647"};
  static const char* const kBig[] = {"2147483648", "99999999999999999999"};
  static const char* const kStrings[] = {"", "a", "x y", "--", "/*", ";", "1 = 1", "$$"};
  std::string out;
  size_t k = 0;
  for (char c : shape) {
    const uint8_t pick = seed.empty() ? 0 : static_cast<uint8_t>(seed[k++ % seed.size()]);
    if (c == pgb::policy::internal::kIntegerMarker) {
      out += kIntegers[pick % 5];
    } else if (c == pgb::policy::internal::kBigIntegerMarker) {
      out += kBig[pick % 2];
    } else if (c == pgb::policy::internal::kStringMarker) {
      out += kStrings[pick % 8];
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

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
  if (std::optional<std::string> shape = pgb::policy::internal::LiteralShape(sql)) {
    const std::string other = Refill(*shape, sql);
    FUZZ_CHECK(pgb::policy::internal::LiteralShape(other) == shape);
    pgb::policy::AnalysisCache cache(1 << 20);
    (void)cache.Analyse(sql);
    FUZZ_CHECK(EverythingText(*cache.Analyse(other)) ==
               EverythingText(pgb::policy::AnalyseSql(other)));
  }
  return 0;
}
