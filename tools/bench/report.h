// The end-of-run report: TPS, latency percentiles from the merged histogram,
// error counts by SQLSTATE; as text for people or one JSON object (--json).
//
//   BenchReport r = MakeReport(options, merged_stats, elapsed_s, interrupted);
//   std::cout << (options.json ? ReportJson(r) : ReportText(r));
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "tools/bench/options.h"
#include "tools/bench/worker.h"

namespace pgb::bench {

struct BenchReport {
  const BenchOptions* options = nullptr;
  int64_t transactions = 0;
  int64_t warmup_transactions = 0;
  double elapsed_s = 0;
  double tps = 0;
  uint64_t p50_us = 0, p90_us = 0, p99_us = 0, p999_us = 0, max_us = 0;
  double mean_us = 0;
  std::map<std::string, int64_t> errors;
  int64_t error_total = 0;
  bool interrupted = false;
  std::string fatal;  // empty unless the run failed
};

BenchReport MakeReport(const BenchOptions& options, const WorkerStats& merged, double elapsed_s,
                       bool interrupted, std::string fatal);
std::string ReportText(const BenchReport& r);
std::string ReportJson(const BenchReport& r);

}  // namespace pgb::bench
