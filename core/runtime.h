// What the shards read while they run: the Config plus everything derived from
// it once at startup (TLS contexts, resolved target addresses, parsed SCRAM
// verifiers). Immutable after BuildRuntime and shared read-only by all shards.
// `check-config` builds one too, so a bad certificate or an unresolvable host
// is reported before the service starts.
//
// A reload (SIGHUP) builds a new Runtime and publishes it in the RuntimeStore;
// each shard picks it up at its next wake-up and uses it for new sessions and
// new statements. A session keeps the Runtime it started with alive (its
// target, user and listener point into it).
//
//   PGB_ASSIGN_OR_RETURN(std::shared_ptr<const Runtime> rt, BuildRuntime(config));
//   RuntimeStore store(rt);  ... store.Publish(next); shard: store.Current()
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/catalog_reader.h"
#include "core/config.h"
#include "policy/key_store.h"
#include "proto/scram.h"
#include "proto/tls.h"

namespace pgb {

struct ListenerRuntime {
  const ListenerConfig* config;
  sockaddr_storage address{};
  socklen_t address_length = 0;
  std::shared_ptr<const proto::TlsContext> tls;  // null when tls = "disabled"
};

struct TargetRuntime {
  const TargetConfig* config;
  size_t index;  // position in Runtime::targets
  sockaddr_storage address{};
  socklen_t address_length = 0;
  std::shared_ptr<const proto::TlsContext> tls;  // null when tls = "disable"
  // Derived SCRAM keys for logging in to the target again without PBKDF2, one
  // cache per shard (indexed by shard; each touched only by its own shard).
  // They live here so they never outlive the password they were derived from.
  struct alignas(64) ShardScramKeys {
    proto::ScramClientKeyCache keys;
  };
  mutable std::vector<ShardScramKeys> scram_keys;
};

struct UserRuntime {
  const UserConfig* config;
  proto::ScramVerifier verifier;
};

struct Runtime {
  Config config;
  std::vector<ListenerRuntime> listeners;
  std::vector<TargetRuntime> targets;
  std::vector<UserRuntime> users;
  // The [[issuer]]s' keys (null without issuers). Built with the Runtime but
  // idle until StartKeyRefresh; a reload stops its refresher thread on the
  // reloading thread once the next Runtime is published (so that the shard
  // where the last holder lets go never waits for a fetch).
  std::shared_ptr<policy::KeyStore> keys;
  // Each target's catalog for scopes with masks (null when no scope has
  // masks). Idle until StartCatalogReads; a reload stops the previous one.
  std::shared_ptr<CatalogReader> catalogs;

  const TargetRuntime* FindTarget(std::string_view name) const;
  const UserRuntime* FindUser(std::string_view name) const;
  // Whether `user` may use `target` (the user's targets list, empty = all).
  static bool Allows(const UserRuntime& user, const TargetRuntime& target);
};

// Takes ownership of config; reports every problem found, one per line.
absl::StatusOr<std::shared_ptr<const Runtime>> BuildRuntime(Config config);

// Loads every issuer's keys once on the calling thread (a provider that is
// down is logged; its tokens are refused until the refresher gets them), then
// starts the KeyStore's refresher thread. Only for a Runtime that will serve:
// not for check-config.
void StartKeyRefresh(const Runtime& runtime);

// Reads every target's catalog once on the calling thread, then keeps them
// fresh on the reader's thread (core/catalog_reader.h). Only for a Runtime
// that will serve.
void StartCatalogReads(const Runtime& runtime);

// Whether `next` listens where `current` does, the same way: listeners are
// bound once, so a reload that moves them needs a restart. Empty when it
// does; otherwise what differs.
std::string ListenerChanges(const Runtime& current, const Runtime& next);

// The Runtime in force. Publish and Current take a mutex (rare: reloads and
// shard wake-ups); shards poll generation(), one atomic load.
class RuntimeStore {
 public:
  explicit RuntimeStore(std::shared_ptr<const Runtime> initial) : current_(std::move(initial)) {}
  void Publish(std::shared_ptr<const Runtime> next) {
    std::lock_guard<std::mutex> lock(mu_);
    current_ = std::move(next);
    generation_.fetch_add(1, std::memory_order_release);
  }
  std::shared_ptr<const Runtime> Current() const {
    std::lock_guard<std::mutex> lock(mu_);
    return current_;
  }
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const Runtime> current_;
  std::atomic<uint64_t> generation_{0};
};

}  // namespace pgb
