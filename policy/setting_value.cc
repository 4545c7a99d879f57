#include "policy/setting_value.h"

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <string>

namespace pgb::policy {
namespace {

// convert_to_base_unit's tables (guc.c), in their order: a fraction is
// rounded to the next entry of the same base unit.
struct UnitConversion {
  std::string_view unit;
  SettingUnit base;
  double multiplier;
};

constexpr double kBlockKb = 8;  // BLCKSZ / 1024
constexpr UnitConversion kMemoryUnits[] = {
    {"TB", SettingUnit::kKilobytes, 1024.0 * 1024.0 * 1024.0},
    {"GB", SettingUnit::kKilobytes, 1024.0 * 1024.0},
    {"MB", SettingUnit::kKilobytes, 1024.0},
    {"kB", SettingUnit::kKilobytes, 1.0},
    {"B", SettingUnit::kKilobytes, 1.0 / 1024.0},
    {"TB", SettingUnit::kBlocks, (1024.0 * 1024.0 * 1024.0) / kBlockKb},
    {"GB", SettingUnit::kBlocks, (1024.0 * 1024.0) / kBlockKb},
    {"MB", SettingUnit::kBlocks, 1024.0 / kBlockKb},
    {"kB", SettingUnit::kBlocks, 1.0 / kBlockKb},
    {"B", SettingUnit::kBlocks, 1.0 / (kBlockKb * 1024.0)},
};
constexpr UnitConversion kTimeUnits[] = {
    {"d", SettingUnit::kMilliseconds, 1000.0 * 60 * 60 * 24},
    {"h", SettingUnit::kMilliseconds, 1000.0 * 60 * 60},
    {"min", SettingUnit::kMilliseconds, 1000.0 * 60},
    {"s", SettingUnit::kMilliseconds, 1000.0},
    {"ms", SettingUnit::kMilliseconds, 1.0},
    {"us", SettingUnit::kMilliseconds, 1.0 / 1000},
    {"d", SettingUnit::kSeconds, 60.0 * 60 * 24},
    {"h", SettingUnit::kSeconds, 60.0 * 60},
    {"min", SettingUnit::kSeconds, 60.0},
    {"s", SettingUnit::kSeconds, 1.0},
    {"ms", SettingUnit::kSeconds, 1.0 / 1000},
    {"us", SettingUnit::kSeconds, 1.0 / (1000 * 1000)},
};

// isspace in the C locale, as the server's (its LC_CTYPE does not change it
// for ASCII).
bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

constexpr size_t kMaxUnitLength = 3;  // MAX_UNIT_LEN

std::optional<double> ConvertToBaseUnit(double value, std::string_view rest, SettingUnit base) {
  size_t length = 0;
  while (length < rest.size() && !IsSpace(rest[length]) && length < kMaxUnitLength) ++length;
  const std::string_view unit = rest.substr(0, length);
  for (size_t i = length; i < rest.size(); ++i) {
    if (!IsSpace(rest[i])) return std::nullopt;  // unit too long, or garbage after it
  }
  const bool memory = base == SettingUnit::kKilobytes || base == SettingUnit::kBlocks;
  const std::span<const UnitConversion> table = memory
                                                    ? std::span<const UnitConversion>(kMemoryUnits)
                                                    : std::span<const UnitConversion>(kTimeUnits);
  for (size_t i = 0; i < table.size(); ++i) {
    if (table[i].base != base || table[i].unit != unit) continue;
    double converted = value * table[i].multiplier;
    if (i + 1 < table.size() && table[i + 1].base == base) {
      converted = std::rint(converted / table[i + 1].multiplier) * table[i + 1].multiplier;
    }
    return converted;
  }
  return std::nullopt;
}

constexpr CappedSetting kCapped[] = {
    {"statement_timeout", SettingUnit::kMilliseconds, true, 0},
    {"lock_timeout", SettingUnit::kMilliseconds, true, 0},
    {"idle_in_transaction_session_timeout", SettingUnit::kMilliseconds, true, 0},
    {"idle_session_timeout", SettingUnit::kMilliseconds, true, 0},
    {"work_mem", SettingUnit::kKilobytes, false, 64},
    {"maintenance_work_mem", SettingUnit::kKilobytes, false, 1024},
    {"logical_decoding_work_mem", SettingUnit::kKilobytes, false, 64},
    {"temp_buffers", SettingUnit::kBlocks, false, 100},
    // -1 is "no limit"; 0 is "no temporary files at all".
    {"temp_file_limit", SettingUnit::kKilobytes, false, 0},
    {"max_parallel_workers_per_gather", SettingUnit::kNone, false, 0},
};

}  // namespace

std::optional<int64_t> ParseIntegerSetting(std::string_view value, SettingUnit unit) {
  const std::string text(value);  // strtol and strtod need a terminated string
  const char* begin = text.c_str();
  if (text.size() != std::string_view(begin).size()) return std::nullopt;  // an embedded NUL
  char* end = nullptr;
  errno = 0;
  // The server's strtod reads '.' as the decimal point: it runs with
  // LC_NUMERIC C, as this process does (it never calls setlocale).
  double number = static_cast<double>(std::strtol(begin, &end, 0));
  if (*end == '.' || *end == 'e' || *end == 'E' || errno == ERANGE) {
    errno = 0;
    number = std::strtod(begin, &end);
  }
  if (end == begin || errno == ERANGE || std::isnan(number)) return std::nullopt;
  while (IsSpace(*end)) ++end;
  if (*end != '\0') {
    if (unit == SettingUnit::kNone) return std::nullopt;
    std::optional<double> converted =
        ConvertToBaseUnit(number, std::string_view(end, text.c_str() + text.size() - end), unit);
    if (!converted) return std::nullopt;
    number = *converted;
  }
  number = std::rint(number);
  if (number > INT_MAX || number < INT_MIN) return std::nullopt;
  return static_cast<int64_t>(number);
}

std::span<const CappedSetting> CappedSettings() { return kCapped; }

const CappedSetting* FindCappedSetting(std::string_view name) {
  for (const CappedSetting& s : kCapped) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

bool WithinCap(const CappedSetting& setting, std::string_view value, int64_t cap) {
  const std::optional<int64_t> v = ParseIntegerSetting(value, setting.unit);
  if (!v.has_value() || *v < 0 || *v > cap) return false;
  return !(*v == 0 && setting.zero_is_unlimited);
}

}  // namespace pgb::policy
