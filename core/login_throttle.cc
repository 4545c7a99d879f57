#include "core/login_throttle.h"

#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/hash/hash.h"
#include "base/log.h"
#include "base/str_cat.h"

namespace pgb {

void ParseLoginConfig(const toml::node* login, const TomlProblemSink& sink,
                      LoginThrottleConfig* out) {
  if (login == nullptr) return;  // every key has a default
  const toml::table* table = login->as_table();
  if (table == nullptr) {
    sink(login->source(), "login", Cat("expected a table ([login]), got ", TomlTypeName(*login)));
    return;
  }
  TomlTableReader reader(*table, "login",
                         {"throttle", "throttle_after", "throttle_delay", "throttle_max_delay",
                          "throttle_reset_after", "throttle_tracked"},
                         sink);
  if (auto v = reader.Bool("throttle")) out->enabled = *v;
  if (auto v = reader.Integer("throttle_after", 0, 1000)) {
    out->free_failures = static_cast<uint32_t>(*v);
  }
  if (auto v = reader.Duration("throttle_delay", absl::Milliseconds(1), absl::Minutes(1))) {
    out->delay = *v;
  }
  if (auto v = reader.Duration("throttle_max_delay", absl::Milliseconds(1), absl::Minutes(10))) {
    out->max_delay = *v;
  }
  if (auto v = reader.Duration("throttle_reset_after", absl::Seconds(1), absl::Hours(24))) {
    out->reset_after = *v;
  }
  if (auto v = reader.Integer("throttle_tracked", 16, 1'000'000)) {
    out->tracked = static_cast<uint32_t>(*v);
  }
  if (out->max_delay < out->delay) {
    reader.Error(
        reader.Has("throttle_max_delay") ? "throttle_max_delay" : "throttle_delay",
        Cat("throttle_max_delay (", absl::FormatDuration(out->max_delay),
            ") must not be shorter than throttle_delay (", absl::FormatDuration(out->delay), ")"));
  }
}

uint64_t LoginThrottle::AddressKey(const sockaddr_storage& address) {
  unsigned char bytes[9] = {};  // family tag, then the address (IPv6: its /64)
  if (address.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(address);
    bytes[0] = 4;
    std::memcpy(bytes + 1, &v4.sin_addr, 4);
  } else if (address.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address);
    if (IN6_IS_ADDR_V4MAPPED(&v6.sin6_addr)) {
      bytes[0] = 4;
      std::memcpy(bytes + 1, v6.sin6_addr.s6_addr + 12, 4);
    } else {
      bytes[0] = 6;
      std::memcpy(bytes + 1, v6.sin6_addr.s6_addr, 8);
    }
  }
  return absl::HashOf(std::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

// The first wait comes after throttle_after failures (after the first one
// when it is 0): the burst's start, where OnFailure logs.
uint32_t LoginThrottle::BurstStart(const LoginThrottleConfig& config) {
  return std::max<uint32_t>(config.free_failures, 1);
}

int64_t LoginThrottle::DelayFor(const LoginThrottleConfig& config, uint32_t failures) {
  if (failures < BurstStart(config)) return 0;
  const int64_t max = absl::ToInt64Nanoseconds(config.max_delay);
  int64_t delay = absl::ToInt64Nanoseconds(config.delay);
  for (uint32_t i = BurstStart(config); i < failures && delay < max; ++i) delay *= 2;
  return std::min(delay, max);
}

LoginThrottle::Entry* LoginThrottle::Find(const LoginThrottleConfig& config, Table& table,
                                          uint64_t key, int64_t now_ns) {
  auto it = table.find(key);
  if (it == table.end()) return nullptr;
  Entry& e = it->second;
  if (now_ns - e.last_failure_ns >= absl::ToInt64Nanoseconds(config.reset_after) &&
      e.next_slot_ns <= now_ns) {
    e = Entry{};
  }
  return &e;
}

LoginThrottle::Entry& LoginThrottle::Upsert(const LoginThrottleConfig& config, Table& table,
                                            uint64_t key, int64_t now_ns) {
  if (Entry* e = Find(config, table, key, now_ns)) return *e;
  if (table.size() >= config.tracked) {
    // Quiet entries first; if that is not enough, the longest idle eighth,
    // so a flood of new keys costs O(1) per insert, amortized.
    const int64_t reset = absl::ToInt64Nanoseconds(config.reset_after);
    const size_t before = table.size();
    absl::erase_if(table, [&](const auto& kv) {
      return now_ns - kv.second.last_failure_ns >= reset && kv.second.next_slot_ns <= now_ns;
    });
    if (table.size() + config.tracked / 8 > config.tracked) {
      std::vector<int64_t> ages;
      ages.reserve(table.size());
      for (const auto& [k, e] : table) ages.push_back(e.last_failure_ns);
      const size_t cut = std::max<size_t>(1, table.size() - (config.tracked - config.tracked / 8));
      std::nth_element(ages.begin(), ages.begin() + static_cast<ptrdiff_t>(cut - 1), ages.end());
      const int64_t oldest = ages[cut - 1];
      size_t dropped = 0;
      absl::erase_if(table, [&](const auto& kv) {
        return kv.second.last_failure_ns <= oldest && dropped++ < cut;
      });
    }
    counters_.evicted += before - table.size();
  }
  return table[key];
}

int64_t LoginThrottle::Admit(const LoginThrottleConfig& config, uint64_t address,
                             std::string_view user, int64_t now_ns) {
  if (!config.enabled) return 0;
  int64_t at = now_ns;
  if (Entry* e = Find(config, addresses_, address, now_ns)) {
    if (const int64_t delay = DelayFor(config, e->failures); delay > 0) {
      at = std::max({now_ns, e->last_failure_ns + delay, e->next_slot_ns});
      e->next_slot_ns = at + delay;
    }
  }
  // A user name's wait reserves nothing: whoever guesses at a name may slow
  // its logins by max_delay at most, never lock it out.
  if (Entry* e = Find(config, users_, absl::HashOf(user), now_ns)) {
    if (const int64_t delay = DelayFor(config, e->failures); delay > 0) {
      at = std::max(at, e->last_failure_ns + delay);
    }
  }
  const int64_t wait = at - now_ns;
  if (wait > 0) {
    ++counters_.delayed;
    counters_.delay_ns += static_cast<uint64_t>(wait);
  }
  return wait;
}

void LoginThrottle::OnFailure(const LoginThrottleConfig& config, uint64_t address,
                              std::string_view user, int64_t now_ns,
                              std::string_view address_text) {
  if (!config.enabled) return;
  ++counters_.failures;
  const auto count = [&](Table& table, uint64_t key, std::string_view what) {
    Entry& e = Upsert(config, table, key, now_ns);
    ++e.failures;
    e.last_failure_ns = now_ns;
    if (e.failures == BurstStart(config)) {
      // One line per burst: the attempts that follow are delayed, not logged
      // one by one (each still has its audit record).
      ++counters_.bursts;
      PGB_LOG(kWarning) << "login throttling: " << e.failures << " failed logins " << what
                        << "; further attempts wait up to "
                        << absl::FormatDuration(config.max_delay) << " each until none fails for "
                        << absl::FormatDuration(config.reset_after);
    }
  };
  count(addresses_, address, Cat("from ", address_text));
  count(users_, absl::HashOf(user), Cat("for user ", LogSafe(user)));
}

}  // namespace pgb
