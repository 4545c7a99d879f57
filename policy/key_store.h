// The verification keys of every configured issuer, kept fresh by one
// background thread per process, read by the shards without locks or I/O.
//
// Each issuer's keys are an immutable KeySnapshot behind an atomic
// shared_ptr: a shard loads it (one atomic load, a reference count), the
// refresher builds a new one and swaps it in. Keys come from a JWKS file, a
// jwks_uri, or OIDC discovery ({issuer}/.well-known/openid-configuration,
// whose "issuer" must equal the configured one, then its "jwks_uri"). They are
// refetched when the provider's Cache-Control max-age runs out (bounded to
// [refresh_min, refresh_max]), and early when a shard meets an unknown kid
// (RequestRefresh), but never twice within refresh_min, so a flood of invented
// kids cannot hammer the provider. A failed fetch keeps the last good keys
// (sessions whose keys are cached keep working), is logged, and is retried
// with backoff.
//
//   auto store = std::make_shared<KeyStore>(config.issuers, &HttpGet);  // base/http_client.h
//   store->StartRefresher();
//   // shard thread:
//   const IssuerKeys* issuer = store->FindByIssuer(iss);
//   std::shared_ptr<const KeySnapshot> keys = issuer->Snapshot();
//
// The HTTP client is passed in (HttpGetFn) so this file does no I/O of its own
// beyond reading a jwks_file.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/http_client.h"
#include "policy/issuer_config.h"
#include "policy/jwks.h"

namespace pgb::policy {

// Performs one GET. Errors: Unavailable (connect, TLS, timeout), or
// InvalidArgument (body over max_body, refused URL). A non-200 status is a
// response, not an error.
using HttpGetFn = std::function<absl::StatusOr<HttpResponse>(const HttpRequest&)>;

// The max-age of a Cache-Control header value; zero for no-store / no-cache;
// nullopt when it says nothing about lifetime.
std::optional<absl::Duration> CacheControlMaxAge(std::string_view header);

// Reads and parses a JWKS file (at most kMaxJwksSize bytes).
[[nodiscard]] absl::StatusOr<KeySet> LoadKeySetFile(const std::string& path);

struct KeySnapshot {
  KeySet keys;
  // Bumped whenever the set of (kid, key) pairs changes; 0 until keys have
  // been loaded once. Verified-token caches compare it to know when to
  // recheck that the key they relied on is still published.
  uint64_t generation = 0;
  absl::Time loaded_at = absl::InfinitePast();
  std::string last_error;  // the latest fetch's failure; empty after a success
};

class KeyStore;

class IssuerKeys {
 public:
  IssuerKeys(IssuerConfig config, KeyStore* store);

  const IssuerConfig& config() const { return config_; }

  // Any thread; an atomic load. Never null.
  std::shared_ptr<const KeySnapshot> Snapshot() const {
    return snapshot_.load(std::memory_order_acquire);
  }

  // Any thread, never blocks on I/O: asks the refresher to fetch this
  // issuer's keys as soon as refresh_min since the last fetch allows.
  void RequestRefresh() const;

 private:
  friend class KeyStore;

  const IssuerConfig config_;
  KeyStore* const store_;
  std::atomic<std::shared_ptr<const KeySnapshot>> snapshot_;
  mutable std::atomic<bool> refresh_requested_{false};
  // Refresher state (the refresher thread, or the one calling Refresh).
  absl::Time next_refresh_ = absl::InfinitePast();
  absl::Time last_attempt_ = absl::InfinitePast();
  int consecutive_failures_ = 0;
};

class KeyStore {
 public:
  KeyStore(const std::vector<IssuerConfig>& issuers, HttpGetFn http_get);
  ~KeyStore();  // stops the refresher
  KeyStore(const KeyStore&) = delete;
  KeyStore& operator=(const KeyStore&) = delete;

  // The issuer whose configured "issuer" equals `iss` exactly; nullptr if none.
  const IssuerKeys* FindByIssuer(std::string_view iss) const;
  size_t size() const { return issuers_.size(); }
  const IssuerKeys& issuer(size_t index) const { return *issuers_[index]; }

  // Fetches one issuer's keys now on the calling thread and publishes them
  // (or records the failure, keeping the previous keys). Not concurrently with
  // the refresher: for startup checks, the CLI and tests.
  absl::Status Refresh(size_t index, absl::Time now);

  // Starts the background refresher: it loads every issuer's keys at once,
  // then follows the schedule and RequestRefresh.
  void StartRefresher();
  void StopRefresher();

 private:
  friend class IssuerKeys;

  void Wake();
  void RefresherLoop();
  absl::StatusOr<std::pair<KeySet, absl::Duration>> Fetch(const IssuerConfig& config);
  absl::StatusOr<HttpResponse> Get(const IssuerConfig& config, const std::string& url,
                                   size_t max_body);

  std::vector<std::unique_ptr<IssuerKeys>> issuers_;
  HttpGetFn http_get_;
  std::mutex mutex_;  // guards stopping_ and the wakeup; never held during I/O
  std::condition_variable wake_;
  bool stopping_ = false;
  bool woken_ = false;
  std::thread refresher_;
};

}  // namespace pgb::policy
