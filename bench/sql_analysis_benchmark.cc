// The SQL analyser's cost per statement: uncached (libpg_query parse, JSON
// tree read, classification) and cached (an AnalysisCache hit, what the
// gateway pays for a statement it has seen before), for pgbench's select,
// its TPC-B update, and a ~2 KB report query; CachedNewLiteral is the select
// with a new literal each time (pgbench -M simple). The *ParseOnly rows are
// libpg_query alone, to show where the uncached time goes.
//
//   build/bench/sql_analysis_benchmark
#include <benchmark/benchmark.h>
#include <pg_query.h>

#include <string>

#include "policy/sql_analysis.h"

namespace pgb::policy {
namespace {

const std::string kPgbenchSelect = "SELECT abalance FROM pgbench_accounts WHERE aid = $1;";
const std::string kPgbenchUpdate =
    "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;";
const std::string kReport = R"(
WITH monthly AS (
  SELECT date_trunc('month', o.created_at) AS month, c.region, c.segment,
         sum(oi.quantity * oi.unit_price) AS revenue, count(DISTINCT o.id) AS orders,
         count(DISTINCT o.customer_id) AS customers
  FROM sales.orders o
  JOIN sales.order_items oi ON oi.order_id = o.id
  JOIN crm.customers c ON c.id = o.customer_id
  LEFT JOIN sales.refunds r ON r.order_id = o.id AND r.status = 'approved'
  WHERE o.created_at >= $1 AND o.created_at < $2 AND o.status IN ('paid', 'shipped')
    AND r.id IS NULL
  GROUP BY 1, 2, 3
), ranked AS (
  SELECT m.*, rank() OVER (PARTITION BY m.month ORDER BY m.revenue DESC) AS region_rank,
         lag(m.revenue) OVER (PARTITION BY m.region, m.segment ORDER BY m.month) AS prev_revenue,
         sum(m.revenue) OVER (PARTITION BY m.month) AS month_total,
         avg(m.revenue) OVER (PARTITION BY m.region ORDER BY m.month
                              ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS moving_avg
  FROM monthly m
), targets AS (
  SELECT t.region, t.month, t.target_revenue, t.owner_id
  FROM planning.targets t
  WHERE t.year = extract(year FROM $1::timestamptz)
)
SELECT r.month, r.region, r.segment, r.revenue, r.orders, r.customers, r.region_rank,
       round(100.0 * (r.revenue - r.prev_revenue) / nullif(r.prev_revenue, 0), 1) AS growth_pct,
       round(100.0 * r.revenue / nullif(r.month_total, 0), 2) AS share_pct,
       r.moving_avg, t.target_revenue,
       CASE WHEN t.target_revenue IS NULL THEN 'no target'
            WHEN r.revenue >= t.target_revenue THEN 'met'
            ELSE 'missed' END AS target_status,
       e.full_name AS owner, coalesce(e.email, 'unknown') AS owner_email,
       (SELECT count(*) FROM support.tickets st
         WHERE st.region = r.region AND date_trunc('month', st.opened_at) = r.month) AS tickets
FROM ranked r
LEFT JOIN targets t ON t.region = r.region AND t.month = r.month
LEFT JOIN hr.employees e ON e.id = t.owner_id
WHERE r.region_rank <= 10 OR r.revenue > (SELECT percentile_cont(0.9) WITHIN GROUP
                                          (ORDER BY revenue) FROM monthly)
ORDER BY r.month DESC, r.region_rank, r.region
LIMIT 500;
)";

void Uncached(benchmark::State& state, const std::string& sql) {
  for (auto _ : state) {
    SqlAnalysis a = AnalyseSql(sql);
    benchmark::DoNotOptimize(a);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * sql.size()));
}

void Cached(benchmark::State& state, const std::string& sql) {
  AnalysisCache cache(8 << 20);
  (void)cache.Analyse(sql);
  for (auto _ : state) {
    std::shared_ptr<const SqlAnalysis> a = cache.Analyse(sql);
    benchmark::DoNotOptimize(a);
  }
}

// pgbench -M simple: the select with a new account number each time, as the
// gateway sees it. Misses the exact-text key every time; hits the literal
// shape (policy/internal/literal_shape.h) after the first.
void CachedNewLiteral(benchmark::State& state) {
  AnalysisCache cache(8 << 20);
  uint32_t aid = 1;
  std::string sql;
  for (auto _ : state) {
    sql = "SELECT abalance FROM pgbench_accounts WHERE aid = ";
    sql += std::to_string(aid++ % 1000000 + 1);
    sql += ';';
    std::shared_ptr<const SqlAnalysis> a = cache.Analyse(sql);
    benchmark::DoNotOptimize(a);
  }
  state.counters["shape_hits"] = static_cast<double>(cache.shape_hits());
}

void ParseOnly(benchmark::State& state, const std::string& sql) {
  for (auto _ : state) {
    PgQueryParseResult r = pg_query_parse(sql.c_str());
    benchmark::DoNotOptimize(r.parse_tree);
    pg_query_free_parse_result(r);
  }
}

BENCHMARK_CAPTURE(Uncached, PgbenchSelect, kPgbenchSelect);
BENCHMARK_CAPTURE(Uncached, PgbenchUpdate, kPgbenchUpdate);
BENCHMARK_CAPTURE(Uncached, Report2KB, kReport);
BENCHMARK_CAPTURE(Cached, PgbenchSelect, kPgbenchSelect);
BENCHMARK_CAPTURE(Cached, PgbenchUpdate, kPgbenchUpdate);
BENCHMARK_CAPTURE(Cached, Report2KB, kReport);
BENCHMARK(CachedNewLiteral);
BENCHMARK_CAPTURE(ParseOnly, PgbenchSelect, kPgbenchSelect);
BENCHMARK_CAPTURE(ParseOnly, Report2KB, kReport);

}  // namespace
}  // namespace pgb::policy
