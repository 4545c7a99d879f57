// ShardMetrics: what one shard counts for the control plane's /metrics
// (core/control_plane.h). Each shard owns one and only its own thread touches
// it: plain integers, no atomics, no locks on the data path. A scrape posts a
// request to every shard (Shard::Post); each shard copies its ShardMetrics on
// its own thread and the control thread sums the copies (MergeInto), so the
// data path never pays for a scrape except that one copy per second.
//
// Labels are bounded by the configuration: target, scope and rule names, the
// statement classes and login methods; never an identity or statement text.
//
//   shard.metrics().statements.Count(policy::Decision::kAllow, "read", rule);
//   shard.metrics().gate_latency.Observe(ns);
//   WriteMetrics(merged, extras, text);  // the exposition (core/control_plane.cc)
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace pgb {

// Observations of a duration in fixed buckets (upper bounds in ns), from
// 10 µs to 10 s.
struct LatencyHistogram {
  static constexpr std::array<int64_t, 19> kBoundsNs = {
      10'000,        25'000,        50'000,        100'000,       250'000,
      500'000,       1'000'000,     2'500'000,     5'000'000,     10'000'000,
      25'000'000,    50'000'000,    100'000'000,   250'000'000,   500'000'000,
      1'000'000'000, 2'500'000'000, 5'000'000'000, 10'000'000'000};
  std::array<uint64_t, kBoundsNs.size() + 1> counts{};
  uint64_t sum_ns = 0;

  void Observe(int64_t ns) {
    if (ns < 0) ns = 0;
    size_t i = 0;
    while (i < kBoundsNs.size() && ns > kBoundsNs[i]) ++i;
    ++counts[i];
    sum_ns += static_cast<uint64_t>(ns);
  }
  void MergeInto(LatencyHistogram& total) const {
    for (size_t i = 0; i < counts.size(); ++i) total.counts[i] += counts[i];
    total.sum_ns += sum_ns;
  }
};

// Statements by (decision, class, rule). The lookup takes the rule as a view
// so that counting an allowed statement allocates nothing once its key exists.
class StatementCounts {
 public:
  struct Key {
    uint8_t decision;             // policy::Decision::Kind
    std::string statement_class;  // "read", "write", ... or "none" (not analysed)
    std::string rule;
  };
  void Count(uint8_t decision, std::string_view statement_class, std::string_view rule) {
    auto it = counts_.find(View{decision, statement_class, rule});
    if (it == counts_.end()) {
      it = counts_.emplace(Key{decision, std::string(statement_class), std::string(rule)}, 0).first;
    }
    ++it->second;
  }
  template <typename F>
  void ForEach(F&& f) const {
    for (const auto& [key, count] : counts_) f(key, count);
  }
  void MergeInto(StatementCounts& total) const {
    for (const auto& [key, count] : counts_) {
      auto it = total.counts_.find(View{key.decision, key.statement_class, key.rule});
      if (it == total.counts_.end()) it = total.counts_.emplace(key, 0).first;
      it->second += count;
    }
  }

 private:
  struct View {
    uint8_t decision;
    std::string_view statement_class;
    std::string_view rule;
  };
  struct Hash {
    using is_transparent = void;
    size_t operator()(const View& v) const {
      return std::hash<std::string_view>()(v.rule) * 31 +
             std::hash<std::string_view>()(v.statement_class) * 7 + v.decision;
    }
    size_t operator()(const Key& k) const {
      return (*this)(View{k.decision, k.statement_class, k.rule});
    }
  };
  struct Eq {
    using is_transparent = void;
    static View Of(const View& v) { return v; }
    static View Of(const Key& k) { return View{k.decision, k.statement_class, k.rule}; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      const View x = Of(a);
      const View y = Of(b);
      return x.decision == y.decision && x.statement_class == y.statement_class && x.rule == y.rule;
    }
  };
  absl::flat_hash_map<Key, uint64_t, Hash, Eq> counts_;
};

// Logins by method and outcome.
enum class LoginOutcome : uint8_t { kSuccess, kBadCredential, kRefused };
inline constexpr std::array<std::string_view, 3> kLoginOutcomeNames = {"success", "bad_credential",
                                                                       "refused"};
// "password", "token", "certificate", or "none" (ended before a credential).
inline constexpr std::array<std::string_view, 4> kLoginMethodNames = {"password", "token",
                                                                      "certificate", "none"};

struct ShardMetrics {
  uint64_t connections_accepted = 0;
  std::array<std::array<uint64_t, kLoginOutcomeNames.size()>, kLoginMethodNames.size()> logins{};
  // Sessions that reached the relay, by (target, scope).
  absl::flat_hash_map<std::pair<std::string, std::string>, uint64_t> sessions_started;
  StatementCounts statements;
  uint64_t masked_values = 0;
  uint64_t bytes_from_client = 0;   // relayed, as received
  uint64_t bytes_from_backend = 0;  // relayed, as received (before masking)
  uint64_t sessions_ended_by_operator = 0;
  // From the moment the shard picks up a client message with statements to
  // judge until they are judged and queued for the database.
  LatencyHistogram gate_latency;
  // From connect() to the database's ReadyForQuery after the gateway's login.
  LatencyHistogram backend_connect;

  void CountLogin(std::string_view method, LoginOutcome outcome) {
    size_t m = kLoginMethodNames.size() - 1;
    for (size_t i = 0; i < kLoginMethodNames.size(); ++i) {
      if (kLoginMethodNames[i] == method) m = i;
    }
    ++logins[m][static_cast<size_t>(outcome)];
  }
  void MergeInto(ShardMetrics& total) const;
};

// What the exposition adds to the shards' sums: gauges read at scrape time
// and the counters of threads other than the shards.
struct ScrapeExtras {
  std::string version;
  int shards = 0;
  int shards_answered = 0;
  // Open sessions by (target, scope) and connections still logging in.
  absl::flat_hash_map<std::pair<std::string, std::string>, uint64_t> sessions_open;
  uint64_t connections_open = 0;
  // The login throttle's counters (core/login_throttle.h), summed.
  uint64_t throttle_failures = 0;
  uint64_t throttle_delayed = 0;
  uint64_t throttle_delay_ns = 0;
  uint64_t throttle_bursts = 0;
  uint64_t throttle_evicted = 0;
  uint64_t throttle_tracked = 0;
  // The audit trail (absent: no [audit]).
  bool audit = false;
  bool audit_healthy = true;
  uint64_t audit_queue_depth = 0;
  uint64_t audit_records_written = 0;
  uint64_t audit_records_lost = 0;
  uint64_t audit_spilled_bytes = 0;
  uint64_t audit_sink_errors = 0;
  uint64_t reloads_ok = 0;
  uint64_t reloads_failed = 0;
  // By target name: reachable at the last readiness check.
  std::vector<std::pair<std::string, bool>> targets_up;
};

// The Prometheus text of `total` and `extras` (base/prometheus_text.h).
std::string FormatMetrics(const ShardMetrics& total, const ScrapeExtras& extras);

}  // namespace pgb
