#include "base/log.h"

#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>

namespace pgb {
namespace {
std::atomic<int> min_level{static_cast<int>(LogLevel::kInfo)};

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarning:
      return "WARNING";
    case LogLevel::kError:
      return "ERROR";
  }
  return "?";
}
}  // namespace

std::string LogSafe(std::string_view untrusted) {
  constexpr size_t kMax = 64;
  std::string out;
  for (size_t i = 0; i < untrusted.size() && i < kMax; ++i) {
    const unsigned char c = static_cast<unsigned char>(untrusted[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char hex[8];
      snprintf(hex, sizeof(hex), "\\x%02x", c);
      out.append(hex);
    }
  }
  if (untrusted.size() > kMax) out.append("...");
  return out;
}

void SetLogLevel(LogLevel level) { min_level.store(static_cast<int>(level)); }

bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) >= min_level.load(std::memory_order_relaxed);
}

LogLine::LogLine(LogLevel level, const char* file, int line) {
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  tm parts;
  gmtime_r(&now.tv_sec, &parts);
  char stamp[40];
  strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &parts);
  const char* base = strrchr(file, '/');
  char millis[16];
  snprintf(millis, sizeof(millis), ".%03dZ ", static_cast<int>(now.tv_nsec / 1000000));
  out_ << stamp << millis << LevelName(level) << ' ' << (base ? base + 1 : file) << ':' << line
       << "] ";
}

LogLine::~LogLine() {
  out_ << '\n';
  const std::string text = out_.str();
  // A short write to stderr is not worth retrying: the log must never block a shard.
  [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, text.data(), text.size());
}

}  // namespace pgb
