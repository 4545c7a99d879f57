// Audit trail costs: the shard's enqueue (claim a ring slot, fill a typical
// statement record, publish), the writer's per-record work (JSON line,
// SHA-256) apart and together, and the writer's throughput end to end
// (rings -> writer thread -> file sink, checkpoints signed).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "core/audit/chain.h"
#include "core/audit/file_sink.h"
#include "core/audit/ring.h"
#include "core/audit/writer.h"

namespace pgb::audit {
namespace {

constexpr std::string_view kSql = "SELECT abalance FROM pgbench_accounts WHERE aid = $1";

void FillStatement(AuditRecord* r, uint64_t i, const policy::Identity& identity) {
  r->kind = AuditKind::kStatement;
  r->start_us = 1714564800000000 + static_cast<int64_t>(i);
  r->end_us = r->start_us + 120;
  r->session_id = i & 1023;
  r->protocol = AuditProtocol::kExtended;
  r->SetIdentity(identity);
  r->SetTarget("app");
  r->SetDatabaseRole("pgb_s17");
  r->SetStatement(kSql);
  r->fingerprint = 0x5d3a4b8c9e0f1234ULL;
  r->decision = AuditDecision::kAllow;
  r->SetCommandTag("SELECT 1");
  r->SetRows(1);
  r->bytes_in = 96;
  r->bytes_out = 142;
}

policy::Identity TypicalIdentity() {
  policy::Identity id;
  id.method = policy::AuthMethod::kToken;
  id.subject = "ci-bot-7";
  id.issuer = "https://idp.example";
  id.groups = {"readers"};
  return id;
}

// The shard side alone (claim, reset, fill a typical record, publish).
void BM_AuditEnqueue(benchmark::State& state) {
  SpscRing<AuditRecord> ring(4096);
  const policy::Identity identity = TypicalIdentity();
  uint64_t i = 0;
  for (auto _ : state) {
    AuditRecord* r = ring.TryClaim();
    if (r == nullptr) {
      // Full: release everything as the writer would (one index store per
      // 4096 records), so that the loop measures the producer.
      ring.Release(ring.Available());
      r = ring.TryClaim();
    }
    r->Reset();
    FillStatement(r, i++, identity);
    ring.Publish();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AuditEnqueue);

// The JSON line alone, written in place as the writer does.
void BM_AuditSerialize(benchmark::State& state) {
  auto r = std::make_unique<AuditRecord>();
  FillStatement(r.get(), 1, TypicalIdentity());
  std::string batch(RecordJsonBound(*r), '\0');
  const HashHex prev{};
  uint64_t seq = 1;
  size_t bytes = 0;
  for (auto _ : state) {
    char* end = WriteRecordJson(*r, {}, seq++, View(prev), batch.data());
    bytes = static_cast<size_t>(end - batch.data());
    benchmark::DoNotOptimize(batch.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes_per_record"] = static_cast<double>(bytes);
}
BENCHMARK(BM_AuditSerialize);

// SHA-256 of one typical line (the chain's "prev" of the next).
void BM_AuditHashLine(benchmark::State& state) {
  auto r = std::make_unique<AuditRecord>();
  FillStatement(r.get(), 1, TypicalIdentity());
  std::string line;
  AppendRecordJson(*r, {}, 1, View(HashHex{}), &line);
  line.pop_back();
  for (auto _ : state) benchmark::DoNotOptimize(HashLine(line));
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes_per_record"] = static_cast<double>(line.size());
}
BENCHMARK(BM_AuditHashLine);

// Serialize + chain (SHA-256), as the writer does per record, no I/O.
void BM_AuditSerializeAndHash(benchmark::State& state) {
  auto r = std::make_unique<AuditRecord>();
  FillStatement(r.get(), 1, TypicalIdentity());
  std::string batch(RecordJsonBound(*r), '\0');
  HashHex prev{};
  uint64_t seq = 1;
  size_t bytes = 0;
  for (auto _ : state) {
    char* end = WriteRecordJson(*r, {}, seq++, View(prev), batch.data());
    bytes = static_cast<size_t>(end - batch.data());
    prev = HashLine(std::string_view(batch.data(), bytes - 1));
    benchmark::DoNotOptimize(prev);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes_per_record"] = static_cast<double>(bytes);
}
BENCHMARK(BM_AuditSerializeAndHash);

// The whole writer: a shard's ring -> writer thread -> file sink, an
// Ed25519-signed checkpoint every 1000 records. fsync_interval:1 is the
// default policy (fdatasync at most every second, and at close);
// fsync_interval:0 is "never", to tell the disk's share from the writer's.
// items_per_second is records per second of wall time from the first
// record enqueued until Stop returns (every record written, the file synced
// and closed); starting the trail (allocating the ring, loading the key) is
// not timed. stop_ms is the part spent in Stop: the writer's backlog, the
// sink's backlog and the final fdatasync of the ~110 MB written.
// The producer runs on this thread, the writer and the sink on their own. A
// producer that finds the ring 3/4 full sleeps 50 us instead of spinning (a
// shard would do other work), so that on a small machine it does not take
// the CPU the writer needs. writer_ns_per_record is the writer thread's CPU
// time per record: what a core of its own would give.
void BM_AuditWriterToFile(benchmark::State& state) {
  char pattern[] = "/tmp/pgb_audit_bench.XXXXXX";
  const std::string dir = ::mkdtemp(pattern);
  (void)GenerateKeyPairFiles(dir + "/k", dir + "/k.pub");
  AuditConfig config;
  config.enabled = true;
  config.signing_key = dir + "/k";
  config.spill_dir = dir + "/spill";
  config.ring_slots = 16384;
  AuditSinkConfig file;
  file.name = "file0";
  file.file.path = dir + "/audit.jsonl";
  file.file.fsync = state.range(0) == 1 ? FsyncPolicy::kInterval : FsyncPolicy::kNever;
  config.sinks.push_back(file);
  const policy::Identity identity = TypicalIdentity();
  constexpr uint64_t kRecords = 200000;
  uint64_t total = 0;
  uint64_t writer_cpu_us = 0;
  double stop_ms = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto trail = AuditTrail::Start(config, 1);
    if (!trail.ok()) {
      state.SkipWithError(std::string(trail.status().message()).c_str());
      break;
    }
    AuditShard& shard = (*trail)->shard(0);
    state.ResumeTiming();
    for (uint64_t i = 0; i < kRecords;) {
      AuditRecord* r = shard.MayProceed() ? shard.Begin() : nullptr;
      if (r == nullptr) {  // the writer catches up
        std::this_thread::sleep_for(std::chrono::microseconds(50));
        continue;
      }
      FillStatement(r, i++, identity);
      shard.Commit();
    }
    const auto stop_start = std::chrono::steady_clock::now();
    (*trail)->Stop();  // waits for every record to be written
    stop_ms +=
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - stop_start)
            .count();
    total += kRecords;
    writer_cpu_us += (*trail)->metrics().writer_cpu_us;
    state.PauseTiming();
    trail->reset();
    std::filesystem::remove(file.file.path);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<int64_t>(total));
  if (total > 0) {
    state.counters["writer_ns_per_record"] =
        1000.0 * static_cast<double>(writer_cpu_us) / static_cast<double>(total);
  }
  state.counters["stop_ms"] = stop_ms / static_cast<double>(state.iterations());
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_AuditWriterToFile)
    ->ArgName("fsync_interval")
    ->Arg(1)
    ->Arg(0)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(5);

}  // namespace
}  // namespace pgb::audit
