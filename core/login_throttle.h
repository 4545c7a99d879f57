// LoginThrottle slows down password and token guessing: one per shard (the
// shard that owns the connection; no locks), it counts failed logins per
// client address and per user name and tells a new login attempt how long to
// wait before the gateway answers its startup packet. The wait comes before
// the verdict is known, so a throttled client cannot learn from the timing
// whether a guess was right, and a correct password from a throttled address
// waits too; a login from an address and for a user with no recent failures
// never waits. The session waits on an io_uring timeout, never blocking the
// shard ([login] in docs/configuration.md; the reasoning in docs/security.md).
//
//   LoginThrottle& throttle = shard.login_throttle();
//   int64_t wait_ns = throttle.Admit(config, address_key, user, now_ns);  // reserves a slot
//   ... on a failed password or token: throttle.OnFailure(config, address_key, user, now_ns,
//   "127.0.0.1");
//
// Memory is bounded: each table (addresses, user names) keeps at most
// `tracked` entries of a few dozen bytes; when full, entries idle for
// `throttle_reset_after` go first, then the longest idle eighth.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "base/toml_table.h"
#include "toml++/toml.h"

namespace pgb {

// [login]: the keys are documented in docs/configuration.md.
struct LoginThrottleConfig {
  bool enabled = true;                             // throttle
  uint32_t free_failures = 5;                      // throttle_after: failures before any wait
  absl::Duration delay = absl::Milliseconds(250);  // throttle_delay: the first wait, then doubled
  absl::Duration max_delay = absl::Seconds(10);    // throttle_max_delay
  absl::Duration reset_after = absl::Minutes(10);  // throttle_reset_after: quiet time that clears
  uint32_t tracked = 10000;                        // throttle_tracked: entries per table per shard
};

// Parses the [login] node (nullptr if absent: the defaults) into `out`.
void ParseLoginConfig(const toml::node* login, const TomlProblemSink& sink,
                      LoginThrottleConfig* out);

class LoginThrottle {
 public:
  // For a later metrics endpoint, which sums them over the shards.
  struct Counters {
    uint64_t failures = 0;  // failed logins counted
    uint64_t delayed = 0;   // attempts that had to wait
    uint64_t delay_ns = 0;  // their waits, summed
    uint64_t bursts = 0;    // times an address or user name became throttled
    uint64_t evicted = 0;   // entries dropped because a table was full
  };

  // The key of a client address: IPv4 (and IPv4-mapped IPv6) per address,
  // IPv6 per /64 (one host usually holds a whole /64), other families (Unix
  // sockets) all one key.
  static uint64_t AddressKey(const sockaddr_storage& address);

  // A login attempt from `address` for `user` whose startup packet just
  // arrived: how long (ns) to wait before answering it; 0 at once. A wait
  // for the address reserves the next slot, so parallel attempts from one
  // address queue one behind another instead of all waiting the same time.
  [[nodiscard]] int64_t Admit(const LoginThrottleConfig& config, uint64_t address,
                              std::string_view user, int64_t now_ns);
  // A login that failed at its credential (password, SCRAM proof, token).
  // `address_text` is for the one log line that starts a burst.
  void OnFailure(const LoginThrottleConfig& config, uint64_t address, std::string_view user,
                 int64_t now_ns, std::string_view address_text);

  const Counters& counters() const { return counters_; }
  size_t tracked_addresses() const { return addresses_.size(); }
  size_t tracked_users() const { return users_.size(); }

 private:
  struct Entry {
    uint32_t failures = 0;
    int64_t last_failure_ns = 0;
    int64_t next_slot_ns = 0;  // addresses: the earliest the next waiting attempt is answered
  };
  using Table = absl::flat_hash_map<uint64_t, Entry>;

  // The entry for `key`, reset if it has been quiet for reset_after; null if none.
  static Entry* Find(const LoginThrottleConfig& config, Table& table, uint64_t key, int64_t now_ns);
  // The entry for `key`, made room for if the table is full.
  Entry& Upsert(const LoginThrottleConfig& config, Table& table, uint64_t key, int64_t now_ns);
  // The wait a failure count earns: 0 up to free_failures, then delay doubled
  // per further failure, at most max_delay.
  static int64_t DelayFor(const LoginThrottleConfig& config, uint32_t failures);
  static uint32_t BurstStart(const LoginThrottleConfig& config);

  Table addresses_;
  Table users_;
  Counters counters_;
};

}  // namespace pgb
