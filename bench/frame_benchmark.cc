// DecodeMessage throughput over backend replies, the per-message cost the
// gateway pays on every relayed byte.
//
//   build/bench/frame_benchmark --benchmark_filter=PgbenchReplies
#include <benchmark/benchmark.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "proto/frame.h"
#include "proto/messages.h"
#include "proto/protocol.h"
#include "proto/wire.h"

namespace pgb::proto {
namespace {

void AppendDataRow(std::string& out, std::string_view value) {
  MessageWriter w(out, kPqMsg_DataRow);
  w.Int16(1).Int32(static_cast<int32_t>(value.size())).Bytes(value);
}

// The reply to pgbench -S's "SELECT abalance FROM pgbench_accounts WHERE
// aid = $1" in the simple protocol, repeated to fill about 64 KiB.
std::string PgbenchReplies() {
  std::string one;
  {
    MessageWriter w(one, kPqMsg_RowDescription);
    w.Int16(1).CString("abalance").Int32(16396).Int16(3).Int32(23).Int16(4).Int32(-1).Int16(0);
  }
  AppendDataRow(one, "-2417");
  MessageWriter(one, kPqMsg_CommandComplete).CString("SELECT 1");
  AppendReadyForQuery(one, kTxnIdle);
  std::string buffer;
  while (buffer.size() < 64 * 1024) buffer += one;
  return buffer;
}

// Rows of 8 KiB each, about 1 MiB: a bulk SELECT.
std::string LargeDataRows() {
  const std::string value(8 * 1024 - 11, 'x');  // 8 KiB including the 11-byte framing
  std::string buffer;
  while (buffer.size() < 1024 * 1024) AppendDataRow(buffer, value);
  return buffer;
}

void DecodeAll(benchmark::State& state, const std::string& buffer) {
  size_t messages = 0;
  for (auto _ : state) {
    std::string_view rest = buffer;
    for (;;) {
      const MessageResult r = DecodeMessage(rest, Direction::kBackend, kDefaultMaxMessageLength);
      if (r.status != DecodeStatus::kOk) break;
      benchmark::DoNotOptimize(r.message.body.data());
      rest.remove_prefix(r.message.total_size);
      ++messages;
    }
    if (!rest.empty()) state.SkipWithError("buffer did not decode completely");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(buffer.size()));
  state.SetItemsProcessed(static_cast<int64_t>(messages));
}

void BM_DecodeMessage_PgbenchReplies(benchmark::State& state) {
  static const std::string buffer = PgbenchReplies();
  DecodeAll(state, buffer);
}
BENCHMARK(BM_DecodeMessage_PgbenchReplies);

void BM_DecodeMessage_DataRows8KiB(benchmark::State& state) {
  static const std::string buffer = LargeDataRows();
  DecodeAll(state, buffer);
}
BENCHMARK(BM_DecodeMessage_DataRows8KiB);

}  // namespace
}  // namespace pgb::proto
