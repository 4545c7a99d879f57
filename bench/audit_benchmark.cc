// Audit trail costs per statement: since write-ahead records (schema v2) a
// statement the database runs gives two records, the statement before it is
// forwarded and its completion after. Measured: the shard's enqueue (claim a
// ring slot, fill, publish: both records), the writer's work (JSON line,
// SHA-256) per record kind and per statement, and the writer's throughput
// end to end (rings -> writer thread -> file sink, checkpoints signed).
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

// What SessionAudit::Statement writes before the statement is forwarded.
void FillStatement(AuditRecord* r, uint64_t i, const policy::Identity& identity) {
  r->kind = AuditKind::kStatement;
  r->start_us = 1714564800000000 + static_cast<int64_t>(i);
  r->session_id = (i & 1023) + 1;
  r->statement_id = i + 1;
  r->protocol = AuditProtocol::kExtended;
  r->SetIdentity(identity);
  r->SetTarget("app");
  r->SetDatabaseRole("pgb_s17");
  r->SetStatement(kSql);
  r->fingerprint = 0x5d3a4b8c9e0f1234ULL;
  r->decision = AuditDecision::kAllow;
  r->bytes_in = 96;
}

// What SessionAudit::Completion writes when the answer comes.
void FillCompletion(AuditRecord* r, uint64_t i) {
  r->kind = AuditKind::kCompletion;
  r->start_us = 1714564800000000 + static_cast<int64_t>(i);
  r->end_us = r->start_us + 120;
  r->session_id = (i & 1023) + 1;
  r->statement_id = i + 1;
  r->outcome = AuditOutcome::kOk;
  r->SetCommandTag("SELECT 1");
  r->SetRows(1);
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

// A claimed slot, made free as the writer would when the ring is full (one
// index store per 4096 records), so that the loop measures the producer.
AuditRecord* Claim(SpscRing<AuditRecord>& ring) {
  AuditRecord* r = ring.TryClaim();
  if (r == nullptr) {
    ring.Release(ring.Available());
    r = ring.TryClaim();
  }
  r->Reset();
  return r;
}

// The shard side alone, per statement: its record and its completion
// (claim, reset, fill, publish each).
void BM_AuditEnqueue(benchmark::State& state) {
  SpscRing<AuditRecord> ring(4096);
  const policy::Identity identity = TypicalIdentity();
  uint64_t i = 0;
  for (auto _ : state) {
    FillStatement(Claim(ring), i, identity);
    ring.Publish();
    FillCompletion(Claim(ring), i++);
    ring.Publish();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AuditEnqueue);

// One record, the statement's (0) or the completion's (1).
std::unique_ptr<AuditRecord> Typical(int64_t kind) {
  auto r = std::make_unique<AuditRecord>();
  if (kind == 0) {
    FillStatement(r.get(), 1, TypicalIdentity());
  } else {
    FillCompletion(r.get(), 1);
  }
  return r;
}

// The JSON line alone, written in place as the writer does.
void BM_AuditSerialize(benchmark::State& state) {
  auto r = Typical(state.range(0));
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
BENCHMARK(BM_AuditSerialize)->ArgName("completion")->Arg(0)->Arg(1);

// SHA-256 of one typical line (the chain's "prev" of the next).
void BM_AuditHashLine(benchmark::State& state) {
  auto r = Typical(state.range(0));
  std::string line;
  AppendRecordJson(*r, {}, 1, View(HashHex{}), &line);
  line.pop_back();
  for (auto _ : state) benchmark::DoNotOptimize(HashLine(line));
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes_per_record"] = static_cast<double>(line.size());
}
BENCHMARK(BM_AuditHashLine)->ArgName("completion")->Arg(0)->Arg(1);

// Serialize + chain (SHA-256), as the writer does, per statement (its
// record and its completion), no I/O.
void BM_AuditSerializeAndHash(benchmark::State& state) {
  const std::unique_ptr<AuditRecord> records[] = {Typical(0), Typical(1)};
  std::string batch(RecordJsonBound(*records[0]) + RecordJsonBound(*records[1]), '\0');
  HashHex prev{};
  uint64_t seq = 1;
  size_t bytes = 0;
  for (auto _ : state) {
    bytes = 0;
    for (const auto& r : records) {
      char* start = batch.data() + bytes;
      char* end = WriteRecordJson(*r, {}, seq++, View(prev), start);
      prev = HashLine(std::string_view(start, static_cast<size_t>(end - start) - 1));
      bytes += static_cast<size_t>(end - start);
    }
    benchmark::DoNotOptimize(prev);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes_per_statement"] = static_cast<double>(bytes);
}
BENCHMARK(BM_AuditSerializeAndHash);

// The whole writer: a shard's ring -> writer thread -> file sink, an
// Ed25519-signed checkpoint every 1000 records. fsync_interval:1 is the
// default policy (fdatasync at most every second, and at close);
// fsync_interval:0 is "never", to tell the disk's share from the writer's.
// items_per_second is statements (two records each) per second of wall
// time from the first record enqueued until Stop returns (every record written, the file synced
// and closed); starting the trail (allocating the ring, loading the key) is
// not timed. stop_ms is the part spent in Stop: the writer's backlog, the
// sink's backlog and the final fdatasync of the ~95 MB written.
// The producer runs on this thread, the writer and the sink on their own. A
// producer that finds the ring 3/4 full sleeps 50 us instead of spinning (a
// shard would do other work), so that on a small machine it does not take
// the CPU the writer needs. writer_ns_per_statement is the writer thread's
// CPU time per statement: what a core of its own would give.
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
  constexpr uint64_t kStatements = 100000;
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
    for (uint64_t i = 0; i < kStatements;) {
      AuditRecord* r = shard.MayProceed() ? shard.Begin() : nullptr;
      if (r == nullptr) {  // the writer catches up
        std::this_thread::sleep_for(std::chrono::microseconds(50));
        continue;
      }
      FillStatement(r, i, identity);
      shard.Commit();
      while ((r = shard.Begin()) == nullptr) {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
      FillCompletion(r, i++);
      shard.Commit();
    }
    const auto stop_start = std::chrono::steady_clock::now();
    (*trail)->Stop();  // waits for every record to be written
    stop_ms +=
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - stop_start)
            .count();
    total += kStatements;
    writer_cpu_us += (*trail)->metrics().writer_cpu_us;
    state.PauseTiming();
    trail->reset();
    std::filesystem::remove(file.file.path);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<int64_t>(total));
  if (total > 0) {
    state.counters["writer_ns_per_statement"] =
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
