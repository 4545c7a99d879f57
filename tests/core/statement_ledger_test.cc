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

TEST(StatementLedgerTest, SimpleQueryStatementsCompleteInOrder) {
  StatementLedger l;
  Reports r;
  auto text = Text("SELECT 1; UPDATE t SET x = 1 WHERE id = 2");
  l.OnBatchEnd();
  l.Query(text, 0, 8, 11, "profile.admin", 1);
  l.Query(text, 10, 0, 12, "profile.admin", 1);
  l.OnCommandComplete("SELECT 1", std::ref(r));
  l.OnCommandComplete("UPDATE 1", std::ref(r));
  l.OnReadyForQuery(std::ref(r));
  EXPECT_EQ(r.lines,
            (std::vector<std::string>{"SELECT 1|SELECT 1|profile.admin",
                                      "UPDATE t SET x = 1 WHERE id = 2|UPDATE 1|profile.admin"}));
  EXPECT_EQ(l.pending(), 0u);
}

TEST(StatementLedgerTest, StatementsAfterAnErrorAreSkipped) {
  StatementLedger l;
  Reports r;
  auto text = Text("SELECT 1/0; SELECT 2");
  l.OnBatchEnd();
  l.Query(text, 0, 10, 0, "a", 1);
  l.Query(text, 12, 0, 0, "a", 1);
  l.OnError("22012", "division by zero", std::ref(r));
  l.OnReadyForQuery(std::ref(r));
  EXPECT_EQ(r.lines, (std::vector<std::string>{"SELECT 1/0|22012|a", "SELECT 2|skipped|a"}));
}

TEST(StatementLedgerTest, ExtendedProtocolFollowsNamesAndPipelines) {
  StatementLedger l;
  Reports r;
  // Prepared once, executed twice over two Syncs (pgbench -M prepared).
  l.Parsed("P0_1", Text("SELECT abalance FROM a WHERE aid = $1"), 7, "profile.read-only");
  l.Bound("", "P0_1");
  l.Executing("", 1);
  l.OnBatchEnd();  // Sync
  l.Bound("", "P0_1");
  l.Executing("", 2);
  l.OnBatchEnd();  // Sync
  l.OnCommandComplete("SELECT 1", std::ref(r));
  l.OnReadyForQuery(std::ref(r));
  ASSERT_EQ(r.lines.size(), 1u);  // the second belongs to the next batch
  l.OnError("57014", "canceling statement", std::ref(r));
  l.OnReadyForQuery(std::ref(r));
  EXPECT_EQ(r.lines, (std::vector<std::string>{
                         "SELECT abalance FROM a WHERE aid = $1|SELECT 1|profile.read-only",
                         "SELECT abalance FROM a WHERE aid = $1|57014|profile.read-only"}));
}

TEST(StatementLedgerTest, RefusedParseIsNotExpectedToRun) {
  StatementLedger l;
  Reports r;
  l.Parsed("", Text("INSERT INTO t VALUES (1)"), 7, "profile.read-write");
  l.Bound("", "");
  l.Executing("", 1);
  l.Refused("");  // the next Parse of the unnamed statement was refused
  l.Bound("", "");
  l.Executing("", 1);
  l.OnBatchEnd();
  l.OnCommandComplete("INSERT 0 1", std::ref(r));
  l.OnReadyForQuery(std::ref(r));
  EXPECT_EQ(r.lines,
            (std::vector<std::string>{"INSERT INTO t VALUES (1)|INSERT 0 1|profile.read-write"}));
}

TEST(StatementLedgerTest, SuspendedPortalsAndClosedNames) {
  StatementLedger l;
  Reports r;
  l.Parsed("s", Text("SELECT * FROM big"), 7, "x");
  l.Bound("c", "s");
  l.Executing("c", 1);
  l.OnBatchEnd();
  l.OnPortalSuspended(std::ref(r));
  l.OnReadyForQuery(std::ref(r));
  l.Closed('P', "c");
  l.Executing("c", 2);  // no such portal any more: nothing to record
  l.Closed('S', "s");
  l.Bound("d", "s");
  l.Executing("d", 3);  // the statement is gone too
  EXPECT_EQ(l.pending(), 0u);
  EXPECT_EQ(r.lines, (std::vector<std::string>{"SELECT * FROM big|suspended|x"}));
}

TEST(StatementLedgerTest, FunctionCallIsReportedAtReadyForQuery) {
  StatementLedger l;
  Reports r;
  l.OnBatchEnd();
  l.FunctionCall("profile.admin", 1);
  l.OnReadyForQuery(std::ref(r));
  EXPECT_EQ(r.lines, (std::vector<std::string>{"|ran|profile.admin"}));
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
  l.OnClientBytes(24);  // the Query
  l.OnBatchEnd();
  l.Query(text, 0, 8, 11, "a", 1);
  l.Query(text, 10, 0, 12, "a", 1);
  l.OnBackendBytes(30);  // RowDescription
  l.OnBackendBytes(11);  // DataRow
  l.OnBackendBytes(14);  // CommandComplete
  l.OnCommandComplete("SELECT 1", report);
  l.OnBackendBytes(30 + 11 + 14);
  l.OnCommandComplete("SELECT 1", report);
  l.OnBackendBytes(6);  // ReadyForQuery
  l.OnReadyForQuery(report);
  // Extended: Parse, Bind, Execute, then Sync (which counts for the next).
  l.OnClientBytes(40);
  l.Parsed("", text, 13, "a");
  l.OnClientBytes(14);
  l.Bound("", "");
  l.OnClientBytes(10);
  l.Executing("", 2);
  l.OnClientBytes(5);
  l.OnBatchEnd();
  l.OnBackendBytes(5 + 5);  // ParseComplete, BindComplete
  l.OnBackendBytes(100);
  l.OnError("22012", "division by zero", report);
  l.OnReadyForQuery(report);
  EXPECT_EQ(bytes, (std::vector<std::pair<uint64_t, uint64_t>>{{24, 55}, {0, 55}, {64, 110}}));
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
  l.Executing("p", 1);
  l.Executing("p", 2);  // the same portal again: the same parameters
  l.Bound("", "s");
  l.Executing("", 3);
  l.OnBatchEnd();
  l.OnPortalSuspended(report);
  l.OnCommandComplete("SELECT 1", report);
  l.OnCommandComplete("SELECT 1", report);
  EXPECT_EQ(counts, (std::vector<size_t>{2, 2, 0}));
}

}  // namespace
}  // namespace pgb
