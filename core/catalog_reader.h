// CatalogReader: each target's catalog (tables, views and their columns,
// column comments with `pgbastion:mask=` tags) read over the gateway's own
// libpq connection by one thread per gateway, never on a shard's ring, and
// published per target as an immutable policy::RelationCatalog snapshot that
// shards load with one atomic load (as the issuers' keys, policy/key_store.h).
//
// When: at start (StartCatalogReads, before any shard accepts a session),
// every `refresh` interval, at a reload (the new Runtime has a new reader),
// and soon after a session's statement changed the schema (RequestRefresh;
// at most one read per target every kMinInterval, so a flood of DDL cannot
// turn into a flood of catalog reads). A failed read keeps the last good
// snapshot and is retried; a target never read has no snapshot, and scopes
// with masks refuse statements on relations of it (policy/masked_scope.h).
//
// The reader logs in as the target's configured user: pg_class,
// pg_attribute, pg_namespace and pg_description are readable by every role.
//
//   auto reader = std::make_shared<CatalogReader>(runtime.config.targets);
//   reader->Start();
//   // shard thread:
//   std::shared_ptr<const policy::RelationCatalog> c = reader->Snapshot(target_index);
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/config.h"
#include "policy/catalog.h"

namespace pgb {

// Reads one target's catalog now, on the calling thread.
[[nodiscard]] absl::StatusOr<std::shared_ptr<const policy::RelationCatalog>> ReadTargetCatalog(
    const TargetConfig& target);

class CatalogReader {
 public:
  static constexpr absl::Duration kRefresh = absl::Seconds(60);
  static constexpr absl::Duration kMinInterval = absl::Milliseconds(200);

  // `targets` must outlive the reader (they live in the same Runtime).
  explicit CatalogReader(const std::vector<TargetConfig>& targets,
                         absl::Duration refresh = kRefresh);
  ~CatalogReader();
  CatalogReader(const CatalogReader&) = delete;
  CatalogReader& operator=(const CatalogReader&) = delete;

  // Reads every target once on the calling thread (a failure is logged), then
  // starts the thread that keeps them fresh.
  void Start();
  void Stop();

  // Any thread, no I/O. Null when the target's catalog was never read.
  std::shared_ptr<const policy::RelationCatalog> Snapshot(size_t target) const {
    return target < slots_.size() ? slots_[target].snapshot.load(std::memory_order_acquire)
                                  : nullptr;
  }
  // Any thread, never blocks on I/O: read `target` again soon.
  void RequestRefresh(size_t target);
  // Publishes a snapshot for `target` (what a read does; tests use it too).
  void Publish(size_t target, std::shared_ptr<const policy::RelationCatalog> catalog) {
    if (target < slots_.size()) slots_[target].snapshot.store(std::move(catalog));
  }

 private:
  struct Slot {
    std::atomic<std::shared_ptr<const policy::RelationCatalog>> snapshot;
    std::atomic<bool> wanted{false};
    absl::Time last_read = absl::InfinitePast();  // refresher thread only
  };
  void ReadOne(size_t target);
  void Run();

  const std::vector<TargetConfig>& targets_;
  const absl::Duration refresh_;
  std::vector<Slot> slots_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;  // under mu_
  std::thread thread_;
};

}  // namespace pgb
