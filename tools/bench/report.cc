#include "tools/bench/report.h"

#include "absl/strings/str_format.h"
#include "base/json_text.h"
#include "base/str_cat.h"

namespace pgb::bench {

BenchReport MakeReport(const BenchOptions& options, const WorkerStats& merged, double elapsed_s,
                       bool interrupted, std::string fatal) {
  BenchReport r;
  r.options = &options;
  r.transactions = merged.transactions;
  r.warmup_transactions = merged.warmup_transactions;
  r.elapsed_s = elapsed_s;
  r.tps = elapsed_s > 0 ? static_cast<double>(merged.transactions) / elapsed_s : 0;
  const LatencyHistogram& h = merged.histogram;
  r.p50_us = h.Percentile(50);
  r.p90_us = h.Percentile(90);
  r.p99_us = h.Percentile(99);
  r.p999_us = h.Percentile(99.9);
  r.max_us = h.max();
  r.mean_us = h.mean();
  r.errors = merged.errors;
  for (const auto& [state, n] : r.errors) r.error_total += n;
  r.interrupted = interrupted;
  r.fatal = std::move(fatal);
  return r;
}

std::string ReportText(const BenchReport& r) {
  const BenchOptions& o = *r.options;
  std::string out = absl::StrFormat(
      "workload: %s, protocol: %s, clients: %d, threads: %d, sslmode: %s, login: %s\n"
      "transactions: %d in %.3f s%s\n"
      "tps: %.1f\n"
      "latency (us): mean %.1f  p50 %d  p90 %d  p99 %d  p99.9 %d  max %d\n",
      WorkloadName(o.workload), ProtocolName(o.protocol), o.clients, o.threads,
      SslModeName(o.sslmode), o.token_env.empty() ? "password" : "token", r.transactions,
      r.elapsed_s, r.interrupted ? " (interrupted)" : "", r.tps, r.mean_us, r.p50_us, r.p90_us,
      r.p99_us, r.p999_us, r.max_us);
  Append(out, "errors: ", r.error_total);
  for (const auto& [state, n] : r.errors) Append(out, "  ", state, "=", n);
  Append(out, "\n");
  return out;
}

std::string ReportJson(const BenchReport& r) {
  const BenchOptions& o = *r.options;
  std::string errors = "{";
  bool first = true;
  for (const auto& [state, n] : r.errors) {
    Append(errors, first ? "" : ",", JsonString(state), ":", n);
    first = false;
  }
  errors += "}";
  return absl::StrFormat(
      "{\"workload\":%s,\"protocol\":%s,\"clients\":%d,\"threads\":%d,\"sslmode\":%s,"
      "\"login\":%s,"
      "\"transactions\":%d,\"warmup_transactions\":%d,\"elapsed_s\":%.6f,\"tps\":%.3f,"
      "\"latency_us\":{\"mean\":%.1f,\"p50\":%d,\"p90\":%d,\"p99\":%d,\"p99_9\":%d,\"max\":%d},"
      "\"errors\":%s,\"error_total\":%d,\"interrupted\":%s,\"fatal\":%s}\n",
      JsonString(WorkloadName(o.workload)), JsonString(ProtocolName(o.protocol)), o.clients,
      o.threads, JsonString(SslModeName(o.sslmode)),
      JsonString(o.token_env.empty() ? "password" : "token"), r.transactions, r.warmup_transactions,
      r.elapsed_s, r.tps, r.mean_us, r.p50_us, r.p90_us, r.p99_us, r.p999_us, r.max_us, errors,
      r.error_total, r.interrupted ? "true" : "false",
      r.fatal.empty() ? "null" : JsonString(r.fatal));
}

}  // namespace pgb::bench
