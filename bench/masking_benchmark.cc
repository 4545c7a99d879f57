// Masking throughput: DataRow rewriting per core, over the wide workload's
// rows (10 text columns of 100 bytes), half of the columns masked. `partial`
// keeps lengths, so rows are rewritten in place; `redact` and `null` change
// them, so rows are re-framed into a new buffer.
//
//   build/bench/masking_benchmark
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "policy/masking.h"
#include "proto/data_row_rewrite.h"
#include "proto/protocol.h"
#include "proto/wire.h"

namespace pgb {
namespace {

constexpr int kColumns = 10;
constexpr int kRows = 1000;

std::vector<proto::ResultField> WideFields(std::vector<std::string>& names) {
  std::vector<proto::ResultField> fields;
  for (int i = 0; i < kColumns; ++i) names.push_back("c" + std::to_string(i + 1));
  for (const std::string& name : names) {
    fields.push_back({.name = name, .type_oid = 25, .format = 0});
  }
  return fields;
}

// One row per message, as the database sends them: about 1 MB.
std::vector<std::string> WideRows() {
  std::vector<std::string> rows;
  const std::string value(100, 'x');
  for (int r = 0; r < kRows; ++r) {
    std::string row;
    proto::MessageWriter w(row, proto::kPqMsg_DataRow);
    w.Int16(kColumns);
    for (int c = 0; c < kColumns; ++c) w.Int32(static_cast<int32_t>(value.size())).Bytes(value);
    rows.push_back(std::move(row));
  }
  return rows;
}

void MaskWideRows(benchmark::State& state, policy::MaskMethod method) {
  std::vector<std::string> names;
  const std::vector<proto::ResultField> fields = WideFields(names);
  std::vector<policy::ColumnMask> masks;
  for (int i = 1; i <= 5; ++i) {
    masks.push_back(
        {.column = "c" + std::to_string(i), .method = method, .keep = 4, .replacement = "****"});
  }
  const policy::MaskPlan plan = policy::MaskPlan::For(masks, fields);
  std::vector<std::string> rows = WideRows();
  std::string rebuilt;
  size_t bytes = 0;
  for (auto _ : state) {
    for (std::string& row : rows) {
      rebuilt.clear();
      absl::StatusOr<proto::RowRewrite> r =
          proto::RewriteDataRow(plan.columns(), row.data(), row.size(), rebuilt);
      benchmark::DoNotOptimize(r);
      bytes += row.size();
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.counters["rows/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * kRows,
                                                benchmark::Counter::kIsRate);
}

void BM_MaskWideRowsPartialInPlace(benchmark::State& state) {
  MaskWideRows(state, policy::MaskMethod::kPartial);
}
BENCHMARK(BM_MaskWideRowsPartialInPlace);

void BM_MaskWideRowsRedactRebuilt(benchmark::State& state) {
  MaskWideRows(state, policy::MaskMethod::kRedact);
}
BENCHMARK(BM_MaskWideRowsRedactRebuilt);

void BM_MaskWideRowsNullRebuilt(benchmark::State& state) {
  MaskWideRows(state, policy::MaskMethod::kNull);
}
BENCHMARK(BM_MaskWideRowsNullRebuilt);

// The plan for a RowDescription of the wide result: once per result.
void BM_PlanWideResult(benchmark::State& state) {
  std::vector<std::string> names;
  const std::vector<proto::ResultField> fields = WideFields(names);
  const std::vector<policy::ColumnMask> masks = {
      {.column = "c1", .method = policy::MaskMethod::kPartial, .keep = 4, .replacement = "****"},
      {.column = "email", .method = policy::MaskMethod::kRedact, .keep = 4, .replacement = "****"}};
  for (auto _ : state) benchmark::DoNotOptimize(policy::MaskPlan::For(masks, fields));
}
BENCHMARK(BM_PlanWideResult);

}  // namespace
}  // namespace pgb

BENCHMARK_MAIN();
