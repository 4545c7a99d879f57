// AuditTrail: the audit pipeline. Each shard has an AuditShard with its own
// single-producer ring of AuditRecord slots; one writer thread drains every
// ring round robin, stamps a sequence number, serializes each record to a
// JSON line, chains it (core/audit/chain.h), adds signed checkpoints, and
// hands each batch to every sink's delivery thread. A sink that fails spills
// to its on-disk queue and is fed from it, in order, once it is back.
//
// Health (what a shard reads before it forwards a statement):
//   fail-closed (default): MayProceed() is false while any sink's spill is
//     full or unwritable, the writer is stuck, or this shard's ring is more
//     than 3/4 full (the last quarter is headroom for the records of
//     statements already under way). The session answers 53400
//     ("audit trail unavailable") until it is true again.
//   fail-open: MayProceed() is always true; records that find the ring full,
//     or a full spill, are counted (metrics) and reported in the trail by a
//     "dropped" record once it recovers.
// Records lost to a full ring are reported by a "dropped" record in both
// modes: never silently.
//
//   PGB_ASSIGN_OR_RETURN(std::unique_ptr<AuditTrail> trail, AuditTrail::Start(config.audit,
//   shards)); AuditShard& audit = trail->shard(shard_id);        // on shard `shard_id` only if
//   (!audit.MayProceed()) { refuse with 53400; } if (AuditRecord* r = audit.Begin()) { ...fill...;
//   audit.Commit(); }
//   ...
//   trail->Stop();  // drains every ring, writes a final checkpoint, closes sinks
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "core/audit/audit_config.h"
#include "core/audit/chain.h"
#include "core/audit/record.h"
#include "core/audit/ring.h"
#include "core/audit/sink.h"

namespace pgb::audit {

class AuditTrail;
class BatchPool;
class LineBatch;
class SinkRunner;

// A shard's side of the trail. Used by exactly one thread (the shard's).
class AuditShard {
 public:
  // Cheap: a relaxed load of the trail's health; the writer's ring index is
  // loaded only when the ring looked 3/4 full at the last look.
  bool MayProceed() {
    if (fail_open_) return true;
    if (!healthy_->load(std::memory_order_relaxed)) return false;
    return ring_.ProducerSizeApprox() < high_water_ || ring_.ProducerSize() < high_water_;
  }
  // Whether `records` more fit in the ring now (fail-open: always). For the
  // write-ahead records of a whole Query, and their completions, before any
  // of it is forwarded.
  bool HasRoomFor(size_t records) {
    if (fail_open_) return true;
    if (records > ring_.capacity()) return false;
    const size_t limit = ring_.capacity() - records;
    return ring_.ProducerSizeApprox() <= limit || ring_.ProducerSize() <= limit;
  }
  // A cleared record to fill in, or nullptr when the ring is full (counted as
  // dropped). Do not call Begin again before Commit.
  AuditRecord* Begin() {
    AuditRecord* slot = ring_.TryClaim();
    if (slot == nullptr) {
      dropped_.store(dropped_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      return nullptr;
    }
    slot->Reset();
    slot->shard = shard_id_;
    return slot;
  }
  void Commit() { ring_.Publish(); }

  // What to put in records: parameters only when not kOff (AddParameter for
  // kOn, AddRedactedParameter for kRedacted saves copying the value).
  ParameterMode parameters() const { return parameters_; }
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  // Any thread: records waiting for the writer (an estimate, for metrics).
  size_t queued() const { return ring_.SizeApprox(); }

 private:
  friend class AuditTrail;
  AuditShard(uint16_t shard_id, size_t slots, const std::atomic<bool>* healthy, bool fail_open,
             ParameterMode parameters)
      : shard_id_(shard_id),
        fail_open_(fail_open),
        parameters_(parameters),
        high_water_(slots - slots / 4),
        healthy_(healthy),
        ring_(slots) {}

  const uint16_t shard_id_;
  const bool fail_open_;
  const ParameterMode parameters_;
  const size_t high_water_;
  const std::atomic<bool>* healthy_;
  SpscRing<AuditRecord> ring_;
  alignas(kCacheLine) std::atomic<uint64_t> dropped_{0};  // written by the shard only
};

struct AuditMetrics {
  uint64_t records_written = 0;  // lines handed to the sinks (checkpoints included)
  uint64_t records_dropped = 0;  // lost: ring full, or (fail-open) spill full
  uint64_t checkpoints = 0;
  uint64_t spilled_bytes = 0;  // pending in spill queues now
  uint64_t writer_cpu_us = 0;  // CPU time of the writer thread so far (as of its last round)
  uint64_t queue_depth = 0;    // records in the shards' rings now (approximate)
  uint64_t sink_errors = 0;    // failed deliveries, all sinks
  bool healthy = true;
};

class AuditTrail {
 public:
  // Loads the signing key, opens the configured sinks (plus `extra_sinks`,
  // for tests and embedders), continues the chain where the newest file of
  // the first file sink (or the spill directory's chain state) left it, and
  // starts the writer thread.
  static absl::StatusOr<std::unique_ptr<AuditTrail>> Start(
      const AuditConfig& config, int shards,
      std::vector<std::unique_ptr<AuditSink>> extra_sinks = {});
  ~AuditTrail();
  AuditTrail(const AuditTrail&) = delete;
  AuditTrail& operator=(const AuditTrail&) = delete;

  AuditShard& shard(int i) { return *shards_[static_cast<size_t>(i)]; }
  int shard_count() const { return static_cast<int>(shards_.size()); }
  bool healthy() const { return healthy_.load(std::memory_order_relaxed); }
  AuditMetrics metrics() const;

  // Drains every ring, writes a final checkpoint, delivers or spills what the
  // sinks hold, closes them. Idempotent. Shards must have stopped producing.
  void Stop();

 private:
  explicit AuditTrail(const AuditConfig& config);
  void Run();
  // Serializes up to `max` records of every ring into batch_; returns the count.
  size_t DrainRings(size_t max_per_ring);
  void Chain(size_t line_start);  // hashes the line that starts at batch_[line_start]
  void AddDroppedRecords();
  void AddCheckpoint(bool final);
  void Dispatch();
  void UpdateHealth();
  void SaveChainState();

  const AuditConfig config_;
  std::unique_ptr<AuditSigningKey> key_;
  std::vector<std::unique_ptr<AuditShard>> shards_;
  std::vector<std::unique_ptr<SinkRunner>> sinks_;
  std::atomic<bool> healthy_{true};
  std::atomic<bool> stop_{false};
  std::thread writer_;
  bool stopped_ = false;

  // Writer-thread state.
  SerializeOptions serialize_;
  // The round's lines. Dispatched batches come back through batch_pool_
  // once every sink is done with them.
  std::shared_ptr<BatchPool> batch_pool_;
  std::unique_ptr<LineBatch> batch_;
  uint64_t batch_lines_ = 0;  // lines in batch_
  std::string line_;          // a checkpoint or "dropped" line being built
  uint64_t next_seq_ = 1;
  HashHex prev_{};
  uint64_t since_checkpoint_ = 0;
  int64_t last_checkpoint_us_ = 0;
  std::vector<uint64_t> dropped_reported_;  // per shard, then per sink
  int chain_state_fd_ = -1;

  std::atomic<uint64_t> records_written_{0};
  std::atomic<uint64_t> checkpoints_{0};
  std::atomic<uint64_t> writer_cpu_us_{0};
};

}  // namespace pgb::audit
