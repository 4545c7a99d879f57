#include "core/metrics.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "policy/rules.h"

namespace pgb {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(LatencyHistogramTest, BucketsByUpperBound) {
  LatencyHistogram h;
  h.Observe(5'000);           // <= 10 µs
  h.Observe(10'000);          // <= 10 µs (bounds are inclusive)
  h.Observe(10'001);          // <= 25 µs
  h.Observe(20'000'000'000);  // above 10 s
  h.Observe(-5);              // a clock that went back counts as 0
  EXPECT_EQ(h.counts[0], 3u);
  EXPECT_EQ(h.counts[1], 1u);
  EXPECT_EQ(h.counts.back(), 1u);
  EXPECT_EQ(h.sum_ns, 5'000u + 10'000u + 10'001u + 20'000'000'000u);
}

TEST(StatementCountsTest, CountsByDecisionClassAndRule) {
  StatementCounts counts;
  counts.Count(policy::Decision::kAllow, "read", "profile.read-only");
  counts.Count(policy::Decision::kAllow, "read", "profile.read-only");
  counts.Count(policy::Decision::kDeny, "ddl", "profile.read-only.class");
  int keys = 0;
  counts.ForEach([&](const StatementCounts::Key& key, uint64_t n) {
    ++keys;
    EXPECT_EQ(n, key.decision == policy::Decision::kAllow ? 2u : 1u);
  });
  EXPECT_EQ(keys, 2);
}

TEST(MetricsTest, ShardsAreSummedAndFormatted) {
  ShardMetrics a;
  ShardMetrics b;
  a.statements.Count(policy::Decision::kAllow, "read", "profile.read-only");
  b.statements.Count(policy::Decision::kAllow, "read", "profile.read-only");
  b.statements.Count(policy::Decision::kDeny, "ddl", "profile.read-only.class");
  b.statements.Count(policy::Decision::kApproval, "write", "profile.read-write.destructive");
  a.CountLogin("token", LoginOutcome::kSuccess);
  b.CountLogin("password", LoginOutcome::kBadCredential);
  b.CountLogin("something-else", LoginOutcome::kRefused);  // counted as "none"
  ++a.sessions_started[{"app", "readers"}];
  ++b.sessions_started[{"app", "readers"}];
  a.gate_latency.Observe(30'000);
  b.gate_latency.Observe(30'000);
  a.bytes_from_client = 10;
  b.bytes_from_client = 5;
  ShardMetrics total;
  a.MergeInto(total);
  b.MergeInto(total);
  ScrapeExtras extras;
  extras.version = "1.2.3";
  extras.shards = extras.shards_answered = 2;
  extras.sessions_open[{"app", "readers"}] = 1;
  extras.targets_up = {{"app", true}, {"other", false}};
  extras.reloads_failed = 1;
  const std::string text = FormatMetrics(total, extras);

  EXPECT_THAT(text, HasSubstr("# TYPE pgbastion_statements_total counter\n"));
  EXPECT_THAT(text, HasSubstr("pgbastion_statements_total{decision=\"allow\",class=\"read\","
                              "rule=\"profile.read-only\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("pgbastion_refusals_total{rule=\"profile.read-only.class\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("pgbastion_refusals_total{rule=\"profile.read-write.destructive\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("pgbastion_refusals_total{rule=\"profile.read-only\"}")));
  EXPECT_THAT(text, HasSubstr("pgbastion_logins_total{method=\"token\",outcome=\"success\"} 1\n"));
  EXPECT_THAT(
      text,
      HasSubstr("pgbastion_logins_total{method=\"password\",outcome=\"bad_credential\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("pgbastion_logins_total{method=\"none\",outcome=\"refused\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("pgbastion_logins_total{method=\"none\",outcome=\"success\"}")));
  EXPECT_THAT(text, HasSubstr("pgbastion_sessions_total{target=\"app\",scope=\"readers\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("pgbastion_sessions{target=\"app\",scope=\"readers\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE pgbastion_statement_gate_seconds histogram\n"));
  EXPECT_THAT(text, HasSubstr("pgbastion_statement_gate_seconds_bucket{le=\"2.5e-05\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("pgbastion_statement_gate_seconds_bucket{le=\"5e-05\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("pgbastion_statement_gate_seconds_bucket{le=\"+Inf\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("pgbastion_statement_gate_seconds_sum 6e-05\n"));
  EXPECT_THAT(text, HasSubstr("pgbastion_relayed_bytes_total{from=\"client\"} 15\n"));
  EXPECT_THAT(text, HasSubstr("pgbastion_build_info{version=\"1.2.3\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("pgbastion_target_up{target=\"other\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("pgbastion_reloads_total{outcome=\"failure\"} 1\n"));
  // No [audit]: no audit families.
  EXPECT_THAT(text, Not(HasSubstr("pgbastion_audit_")));
  // Every family is declared once, before its samples, and counters end in _total.
  EXPECT_THAT(text, Not(HasSubstr("# TYPE pgbastion_sessions_total gauge")));
}

TEST(MetricsTest, AuditFamiliesWhenThereIsATrail) {
  ScrapeExtras extras;
  extras.audit = true;
  extras.audit_queue_depth = 7;
  extras.audit_records_lost = 2;
  const std::string text = FormatMetrics(ShardMetrics{}, extras);
  EXPECT_THAT(text, HasSubstr("pgbastion_audit_queue_depth 7\n"));
  EXPECT_THAT(text, HasSubstr("pgbastion_audit_records_lost_total 2\n"));
  EXPECT_THAT(text, HasSubstr("pgbastion_audit_healthy 1\n"));
}

}  // namespace
}  // namespace pgb
