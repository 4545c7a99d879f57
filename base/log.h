// Process log: one line per event on stderr (journald adds the timestamp when
// run under systemd). Safe from any thread; each line is written with a single
// write(2) so lines from different shards never interleave. Never pass secrets.
//
//   PGB_LOG(kInfo) << "shard " << id << " listening on " << address;
#pragma once

#include <sstream>
#include <string>
#include <string_view>

namespace pgb {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Text from the network made safe for one log line: control and non-ASCII
// bytes become \xNN (no forged lines), cut at 64 bytes with "...".
std::string LogSafe(std::string_view untrusted);

// Lines below this level are dropped. Set once at startup.
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);

class LogLine {
 public:
  LogLine(LogLevel level, const char* file, int line);
  ~LogLine();
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;
  template <typename T>
  LogLine& operator<<(const T& value) {
    out_ << value;
    return *this;
  }

 private:
  std::ostringstream out_;
};

}  // namespace pgb

// PGB_LOG with a level chosen at run time: PGB_LOG_AT(quiet ? LogLevel::kDebug : LogLevel::kInfo).
#define PGB_LOG_AT(level_value)        \
  if (!::pgb::LogEnabled(level_value)) \
    ;                                  \
  else                                 \
    ::pgb::LogLine(level_value, __FILE__, __LINE__)

#define PGB_LOG(level)                            \
  if (!::pgb::LogEnabled(::pgb::LogLevel::level)) \
    ;                                             \
  else                                            \
    ::pgb::LogLine(::pgb::LogLevel::level, __FILE__, __LINE__)
