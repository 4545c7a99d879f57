// Policy::Decide on analysed statements (the summaries are built here as the
// analyser builds them, so this measures the rules alone): the pgbench
// select-only statement, and a report query joining many relations with
// functions, under scopes with and without relation lists.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "policy/rules.h"

namespace pgb::policy {
namespace {

// SELECT abalance FROM pgbench_accounts WHERE aid = $1
StatementSummary PgbenchSelect() {
  StatementSummary s;
  s.statement_class = StatementClass::kRead;
  s.command = "SELECT";
  s.relations = {{"", "pgbench_accounts", kAccessSelect}};
  return s;
}

// A report: 16 relations, half of them unqualified, and 6 functions.
StatementSummary Report() {
  StatementSummary s;
  s.statement_class = StatementClass::kRead;
  s.command = "SELECT";
  for (int i = 0; i < 16; ++i) {
    s.relations.push_back(
        {i % 2 == 0 ? "reporting" : "", "table_" + std::to_string(i), kAccessSelect});
  }
  for (const char* f : {"date_trunc", "sum", "count", "coalesce", "round", "lower"}) {
    s.functions.push_back({"", f});
  }
  return s;
}

Scope ReadOnlyScope(bool with_lists) {
  Scope scope;
  scope.name = "analysts";
  scope.subjects = {"*"};
  scope.profile = Profile::kReadOnly;
  if (with_lists) {
    for (const char* text : {"reporting.*", "public.*", "pg_catalog.*"}) {
      scope.relations_allow.push_back(*ParseNamePattern(text));
    }
    for (const char* text : {"*.secrets", "audit.*", "public.salaries"}) {
      scope.relations_deny.push_back(*ParseNamePattern(text));
    }
    scope.search_path = {"reporting", "public"};
  }
  return scope;
}

void Run(benchmark::State& state, const StatementSummary& statement, bool with_lists) {
  const Policy policy({ReadOnlyScope(with_lists)});
  const Scope& scope = policy.scopes()[0];
  const SessionPolicyState session(scope, "analyst");
  for (auto _ : state) {
    Decision decision = policy.Decide(scope, statement, session);
    benchmark::DoNotOptimize(decision);
    if (decision.kind != Decision::kAllow) state.SkipWithError(decision.reason.c_str());
  }
}

void BM_DecidePgbenchSelectReadOnly(benchmark::State& state) { Run(state, PgbenchSelect(), false); }
BENCHMARK(BM_DecidePgbenchSelectReadOnly);

void BM_DecidePgbenchSelectReadOnlyWithLists(benchmark::State& state) {
  StatementSummary s = PgbenchSelect();
  s.relations[0].schema = "public";
  Run(state, s, true);
}
BENCHMARK(BM_DecidePgbenchSelectReadOnlyWithLists);

void BM_DecideReportReadOnly(benchmark::State& state) { Run(state, Report(), false); }
BENCHMARK(BM_DecideReportReadOnly);

void BM_DecideReportReadOnlyWithLists(benchmark::State& state) { Run(state, Report(), true); }
BENCHMARK(BM_DecideReportReadOnlyWithLists);

void BM_MatchScope(benchmark::State& state) {
  std::vector<Scope> scopes;
  for (int i = 0; i < 10; ++i) {
    Scope scope = ReadOnlyScope(false);
    scope.name = "scope" + std::to_string(i);
    scope.subjects.clear();
    scope.groups = {"group-" + std::to_string(i)};
    scopes.push_back(scope);
  }
  const Policy policy(std::move(scopes));
  Identity identity;
  identity.subject = "agent-7";
  identity.groups = {"staff", "group-9"};
  for (auto _ : state) benchmark::DoNotOptimize(policy.MatchScope(identity, "app"));
}
BENCHMARK(BM_MatchScope);

}  // namespace
}  // namespace pgb::policy
