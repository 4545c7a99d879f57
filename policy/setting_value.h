// Integer settings read exactly as PostgreSQL 15 reads them (guc.c,
// parse_int and convert_to_base_unit), so that a limit the gateway checks is
// the value the database will apply: `statement_timeout = '0.4'` is 0 (no
// limit) there, `work_mem = '0x10000'` is 65536 kB, `'1.5GB'` is 1572864 kB.
//
// The reading, step by step as PostgreSQL does it:
//   - strtol with base 0 (leading white space, a sign, `0x` hex and `0`
//     octal); when it stops at '.', 'e' or 'E', or overflows, strtod instead
//     (fractions, exponents); no digits, an overflow of strtod or NaN: invalid;
//   - white space, then an optional unit, case-sensitive: B kB MB GB TB for
//     memory, us ms s min h d for time; each converts to the setting's base
//     unit (kB, 8 kB blocks, ms, ...), a fraction of it rounded to the next
//     smaller unit of the table; white space after it; nothing else;
//   - rint (ties to even), then it must fit an int32.
// The caps the gateway keeps (CappedSettings) name each setting's base unit
// and whether 0 or a negative value means "no limit".
//
//   ParseIntegerSetting("1.5GB", SettingUnit::kKilobytes) == 1572864
//   ParseIntegerSetting("0.4", SettingUnit::kMilliseconds) == 0
//   ParseIntegerSetting("5 sec", SettingUnit::kMilliseconds) == nullopt (not a unit)
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace pgb::policy {

// A setting's base unit (GUC_UNIT_*): what a number without a unit means.
enum class SettingUnit : uint8_t {
  kNone,          // no unit accepted
  kKilobytes,     // GUC_UNIT_KB
  kBlocks,        // GUC_UNIT_BLOCKS: BLCKSZ, 8 kB
  kMilliseconds,  // GUC_UNIT_MS
  kSeconds,       // GUC_UNIT_S
};

// The value PostgreSQL would apply, in the base unit; nullopt where it would
// refuse the value.
std::optional<int64_t> ParseIntegerSetting(std::string_view value, SettingUnit unit);

// A setting a scope may cap: the gateway starts the session at the scope's
// value and refuses a client value above it, or one meaning "no limit".
struct CappedSetting {
  std::string_view name;
  SettingUnit unit;
  bool zero_is_unlimited;  // statement_timeout = 0: no timeout
  int64_t minimum;         // PostgreSQL's own minimum (a scope's cap must be at least this)
};

// statement_timeout, lock_timeout, idle_in_transaction_session_timeout,
// idle_session_timeout, work_mem, maintenance_work_mem, temp_buffers,
// temp_file_limit, logical_decoding_work_mem, max_parallel_workers_per_gather.
std::span<const CappedSetting> CappedSettings();
const CappedSetting* FindCappedSetting(std::string_view name);

// Whether a client's `value` for a capped setting stays within `cap` (in the
// base unit): PostgreSQL reads it as a value from its minimum up to the cap,
// never one meaning "no limit" (a negative value, or 0 where 0 is none).
bool WithinCap(const CappedSetting& setting, std::string_view value, int64_t cap);

}  // namespace pgb::policy
