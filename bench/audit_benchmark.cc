// Audit trail costs: the shard's enqueue (claim a ring slot, fill a typical
// statement record, publish) and the writer's throughput (serialize, hash
// chain, write to the file sink).
#include <benchmark/benchmark.h>
#include <unistd.h>

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

// Serialize + chain (SHA-256) only, no I/O.
void BM_AuditSerializeAndHash(benchmark::State& state) {
  auto r = std::make_unique<AuditRecord>();
  FillStatement(r.get(), 1, TypicalIdentity());
  std::string batch;
  HashHex prev{};
  uint64_t seq = 1;
  for (auto _ : state) {
    batch.clear();
    AppendRecordJson(*r, {}, seq++, View(prev), &batch);
    prev = HashLine(std::string_view(batch.data(), batch.size() - 1));
    benchmark::DoNotOptimize(prev);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes_per_record"] = static_cast<double>(batch.size());
}
BENCHMARK(BM_AuditSerializeAndHash);

// The whole writer: shard rings -> writer thread -> file sink (fsync
// "interval"), checkpoints every 1000 records. Reports records/s.
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
  config.sinks.push_back(file);
  const policy::Identity identity = TypicalIdentity();
  constexpr uint64_t kRecords = 200000;
  uint64_t total = 0;
  for (auto _ : state) {
    auto trail = AuditTrail::Start(config, 1);
    if (!trail.ok()) {
      state.SkipWithError(std::string(trail.status().message()).c_str());
      break;
    }
    for (uint64_t i = 0; i < kRecords;) {
      if (!(*trail)->shard(0).MayProceed()) continue;  // the writer catches up
      AuditRecord* r = (*trail)->shard(0).Begin();
      if (r == nullptr) continue;
      FillStatement(r, i++, identity);
      (*trail)->shard(0).Commit();
    }
    (*trail)->Stop();  // waits for every record to be written
    total += kRecords;
    std::filesystem::remove(file.file.path);
  }
  state.SetItemsProcessed(static_cast<int64_t>(total));
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_AuditWriterToFile)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);

}  // namespace
}  // namespace pgb::audit
