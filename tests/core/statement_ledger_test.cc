#include "core/statement_ledger.h"

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace pgb {
namespace {

// What the ledger reported: "<statement>|<tag or sqlstate or skipped>".
struct Reports {
  std::vector<std::string> lines;
  void operator()(const StatementLedger::Execution& e, const StatementLedger::Outcome& o) {
    std::string what = !o.sqlstate.empty()      ? std::string(o.sqlstate)
                       : !o.command_tag.empty() ? std::string(o.command_tag)
                       : o.suspended            ? "suspended"
                       : o.ran                  ? "ran"
                                                : "skipped";
    lines.push_back(std::string(e.statement()) + "|" + what + "|" + e.rule);
  }
};

std::shared_ptr<const std::string> Text(std::string s) {
  return std::make_shared<const std::string>(std::move(s));
}

StatementLedger::Outcome Tag(std::string_view tag) {
  StatementLedger::Outcome o;
  o.command_tag = tag;
  return o;
}

StatementLedger::Outcome Error(std::string_view sqlstate, std::string_view message) {
  StatementLedger::Outcome o;
  o.sqlstate = sqlstate;
  o.message = message;
  return o;
}

// The pipeline pairs answers with requests (proto/request_pipeline_test.cc);
// here each request's note is handed to the ledger as the session would.
TEST(StatementLedgerTest, StatementsReportTheirOwnCompletions) {
  StatementLedger l;
  Reports r;
  auto text = Text("SELECT 1; UPDATE t SET x = 1 WHERE id = 2");
  RequestNote s1, s2;
  l.Query(s1, text, 0, 8, 11, "profile.admin", 1);
  l.Query(s2, text, 10, 0, 12, "profile.admin", 1);
  l.OnCompletion(&s1, Tag("SELECT 1"), std::ref(r));
  l.OnCompletion(&s2, Tag("UPDATE 1"), std::ref(r));
  l.OnClosed(s1, std::ref(r));  // already reported: nothing more
  l.OnClosed(s2, std::ref(r));
  EXPECT_EQ(r.lines,
            (std::vector<std::string>{"SELECT 1|SELECT 1|profile.admin",
                                      "UPDATE t SET x = 1 WHERE id = 2|UPDATE 1|profile.admin"}));
  EXPECT_FALSE(s1.execution.has_value());
}

TEST(StatementLedgerTest, AStatementClosedUnansweredWasSkipped) {
  StatementLedger l;
  Reports r;
  auto text = Text("SELECT 1/0; SELECT 2");
  RequestNote s1, s2;
  l.Query(s1, text, 0, 10, 0, "a", 1);
  l.Query(s2, text, 12, 0, 0, "a", 1);
  l.OnCompletion(&s1, Error("22012", "division by zero"), std::ref(r));
  l.OnClosed(s1, std::ref(r));
  l.OnClosed(s2, std::ref(r));
  EXPECT_EQ(r.lines, (std::vector<std::string>{"SELECT 1/0|22012|a", "SELECT 2|skipped|a"}));
}

TEST(StatementLedgerTest, ExtendedProtocolFollowsNames) {
  StatementLedger l;
  Reports r;
  // Prepared once, executed twice (pgbench -M prepared).
  l.Parsed("P0_1", Text("SELECT abalance FROM a WHERE aid = $1"), 7, "profile.read-only");
  l.Bound("", "P0_1");
  RequestNote e1, e2;
  l.Executing(e1, "", 1);
  l.Bound("", "P0_1");
  l.Executing(e2, "", 2);
  l.OnCompletion(&e1, Tag("SELECT 1"), std::ref(r));
  l.OnCompletion(&e2, Error("57014", "canceling statement"), std::ref(r));
  EXPECT_EQ(r.lines, (std::vector<std::string>{
                         "SELECT abalance FROM a WHERE aid = $1|SELECT 1|profile.read-only",
                         "SELECT abalance FROM a WHERE aid = $1|57014|profile.read-only"}));
}

TEST(StatementLedgerTest, RefusedParseIsNotExpectedToRun) {
  StatementLedger l;
  Reports r;
  l.Parsed("", Text("INSERT INTO t VALUES (1)"), 7, "profile.read-write");
  l.Bound("", "");
  RequestNote e1, e2;
  l.Executing(e1, "", 1);
  l.Refused("");  // the next Parse of the unnamed statement was refused
  l.Bound("", "");
  l.Executing(e2, "", 1);
  EXPECT_FALSE(e2.execution.has_value());
  l.OnCompletion(&e1, Tag("INSERT 0 1"), std::ref(r));
  l.OnCompletion(&e2, Error("42501", "refused"), std::ref(r));
  EXPECT_EQ(r.lines,
            (std::vector<std::string>{"INSERT INTO t VALUES (1)|INSERT 0 1|profile.read-write"}));
}

TEST(StatementLedgerTest, SuspendedPortalsAndClosedNames) {
  StatementLedger l;
  Reports r;
  l.Parsed("s", Text("SELECT * FROM big"), 7, "x");
  l.Bound("c", "s");
  RequestNote e1, e2, e3;
  l.Executing(e1, "c", 1);
  StatementLedger::Outcome suspended;
  suspended.suspended = true;
  l.OnCompletion(&e1, suspended, std::ref(r));
  l.Closed('P', "c");
  l.Executing(e2, "c", 2);  // no such portal any more: nothing to record
  l.Closed('S', "s");
  l.Bound("d", "s");
  l.Executing(e3, "d", 3);  // the statement is gone too
  EXPECT_FALSE(e2.execution.has_value());
  EXPECT_FALSE(e3.execution.has_value());
  EXPECT_EQ(r.lines, (std::vector<std::string>{"SELECT * FROM big|suspended|x"}));
}

TEST(StatementLedgerTest, FunctionCallIsReportedWhenClosed) {
  StatementLedger l;
  Reports r;
  RequestNote call, failed;
  l.FunctionCall(call, "profile.admin", 1);
  l.OnClosed(call, std::ref(r));
  l.FunctionCall(failed, "profile.admin", 2);
  l.OnCompletion(&failed, Error("42883", "no function"), std::ref(r));
  l.OnClosed(failed, std::ref(r));
  EXPECT_EQ(r.lines, (std::vector<std::string>{"|ran|profile.admin", "|42883|profile.admin"}));
}

// Bytes: a Query's size goes to its first statement; each answer's bytes to
// the statement it answers; what follows the last answer (ReadyForQuery) and
// a refusal's bytes to nobody.
TEST(StatementLedgerTest, BytesInAndOutPerExecution) {
  StatementLedger l;
  std::vector<std::pair<uint64_t, uint64_t>> bytes;
  std::vector<uint64_t> fingerprints;
  const auto report = [&](const StatementLedger::Execution& e, const StatementLedger::Outcome& o) {
    bytes.emplace_back(e.bytes_in, o.bytes_out);
    fingerprints.push_back(e.fingerprint);
  };
  auto text = Text("SELECT 1; SELECT 2");
  RequestNote s1, s2, e;
  l.OnClientBytes(24);  // the Query
  l.Query(s1, text, 0, 8, 11, "a", 1);
  l.Query(s2, text, 10, 0, 12, "a", 1);
  l.OnBackendBytes(30);  // RowDescription
  l.OnBackendBytes(11);  // DataRow
  l.OnBackendBytes(14);  // CommandComplete
  l.OnCompletion(&s1, Tag("SELECT 1"), report);
  l.OnBackendBytes(30 + 11 + 14);
  l.OnCompletion(&s2, Tag("SELECT 1"), report);
  l.OnBackendBytes(6);  // ReadyForQuery
  l.OnReadyForQuery();
  // Extended: Parse, Bind, Execute, then Sync (which counts for the next).
  l.OnClientBytes(40);
  l.Parsed("", text, 13, "a");
  l.OnClientBytes(14);
  l.Bound("", "");
  l.OnClientBytes(10);
  l.Executing(e, "", 2);
  l.OnClientBytes(5);
  l.OnBackendBytes(5);                       // ParseComplete
  l.OnCompletion(nullptr, Tag(""), report);  // (the Parse carries no execution)
  l.OnBackendBytes(5 + 100);                 // BindComplete, the error
  l.OnCompletion(&e, Error("22012", "division by zero"), report);
  EXPECT_EQ(bytes, (std::vector<std::pair<uint64_t, uint64_t>>{{24, 55}, {0, 55}, {64, 105}}));
  EXPECT_EQ(fingerprints, (std::vector<uint64_t>{11, 12, 13}));
  EXPECT_EQ(l.TakeClientBytes(), 5u);  // the Sync: nobody's yet
}

TEST(StatementLedgerTest, ParametersFollowThePortal) {
  StatementLedger l;
  std::vector<size_t> counts;
  const auto report = [&](const StatementLedger::Execution& e, const StatementLedger::Outcome&) {
    counts.push_back(e.parameters ? e.parameters->values.size() : 0);
  };
  auto parameters = std::make_shared<BoundParameters>();
  parameters->values.resize(2);
  l.Parsed("s", Text("SELECT $1, $2"), 1, "a");
  l.Bound("p", "s", parameters);
  RequestNote e1, e2, e3;
  l.Executing(e1, "p", 1);
  l.Executing(e2, "p", 2);  // the same portal again: the same parameters
  l.Bound("", "s");
  l.Executing(e3, "", 3);
  for (RequestNote* e : {&e1, &e2, &e3}) l.OnCompletion(e, Tag("SELECT 1"), report);
  EXPECT_EQ(counts, (std::vector<size_t>{2, 2, 0}));
}

}  // namespace
}  // namespace pgb
