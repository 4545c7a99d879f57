// `pgbastion replay FILE|SESSION_ID` shows a session recording as a psql user
// saw it (core/recording/replay.h), paced with --speed, as JSON with --json,
// or as an asciicast v2 file with --format asciicast; `pgbastion recordings
// list` lists the recordings directory with filters. The directory comes
// from --dir or from [recording] directory in the configuration file.
#include "core/recording/replay.h"

#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "base/file_read.h"
#include "base/json_text.h"
#include "base/str_cat.h"
#include "core/config.h"
#include "core/recording/catalog.h"
#include "core/recording/format.h"
#include "simdjson.h"
#include "tools/pgbastion/commands.h"

namespace pgb::tools {
namespace {

constexpr size_t kMaxRecordingFile = size_t{16} << 30;

constexpr const char kReplayUsage[] =
    "Usage: pgbastion replay FILE|SESSION_ID [--dir DIR | --config FILE]\n"
    "                        [--json | --format text|asciicast] [--speed N]\n"
    "\n"
    "Shows a recorded session as its client saw it (masked values stay masked):\n"
    "each statement after a prompt, its rows as an aligned table, command tags,\n"
    "errors, notices and the time each statement took.\n"
    "\n"
    "Options:\n"
    "  --dir DIR         the recordings directory (for a SESSION_ID)\n"
    "  --config FILE     read [recording] directory from FILE\n"
    "                    (default /etc/pgbastion/pgbastion.toml)\n"
    "  --speed N         pace the output in real time, N times as fast (0: no pacing,\n"
    "                    the default)\n"
    "  --json            one JSON object per event, then a summary object\n"
    "  --format asciicast  an asciicast v2 file (asciinema play FILE) on stdout\n"
    "  --help            show this help\n"
    "\n"
    "Exit status: 0 shown (also a recording cut short by a crash, which says so),\n"
    "1 not a recording, corrupt, or not found, 2 usage error.\n";

constexpr const char kRecordingsUsage[] =
    "Usage: pgbastion recordings list [--dir DIR | --config FILE] [--identity SUBJECT]\n"
    "                                 [--target NAME] [--since TIME] [--until TIME] [--json]\n"
    "\n"
    "Lists the session recordings, oldest first. TIME is Unix seconds or\n"
    "YYYY-MM-DDTHH:MM:SSZ; --since/--until compare the session's start.\n"
    "\n"
    "Exit status: 0 listed, 1 the directory cannot be read, 2 usage error.\n";

int Fail(const char* command, std::string_view message) {
  std::fprintf(stderr, "pgbastion %s: %.*s\n", command, static_cast<int>(message.size()),
               message.data());
  return 1;
}

// The recordings directory from --dir or the configuration's [recording].
bool RecordingsDir(const Args& args, const char* command, std::string* dir) {
  std::string_view value;
  if (FindFlag(args, "--dir", &value)) {
    *dir = std::string(value);
    return true;
  }
  std::string_view config_path = "/etc/pgbastion/pgbastion.toml";
  FindFlag(args, "--config", &config_path);
  absl::StatusOr<Config> config =
      LoadConfigFile(std::string(config_path), ConfigOptions{.check_files = false});
  if (!config.ok()) {
    Fail(command, std::string(config.status().message()));
    return false;
  }
  if (!config->recording.enabled) {
    Fail(command, Cat(config_path, " has no [recording] table; pass --dir"));
    return false;
  }
  *dir = config->recording.directory;
  return true;
}

// Unix seconds, or YYYY-MM-DDTHH:MM:SSZ.
bool ParseTime(std::string_view text, int64_t* out_us) {
  const std::string s(text);
  tm t{};
  if (const char* end = ::strptime(s.c_str(), "%Y-%m-%dT%H:%M:%SZ", &t); end && *end == '\0') {
    *out_us = static_cast<int64_t>(::timegm(&t)) * 1'000'000;
    return true;
  }
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || end == nullptr || *end != '\0') return false;
  *out_us = static_cast<int64_t>(v) * 1'000'000;
  return true;
}

}  // namespace

int RunReplay(const Args& args) {
  if (HasFlag(args, "--help") || HasFlag(args, "-h")) {
    std::fputs(kReplayUsage, stdout);
    return 0;
  }
  std::string_view target, value;
  bool json = false, asciicast = false;
  double speed = 0;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (arg == "--json") {
      json = true;
    } else if ((arg == "--dir" || arg == "--config" || arg == "--speed" || arg == "--format") &&
               i + 1 < args.size()) {
      ++i;
    } else if (arg.starts_with("--dir=") || arg.starts_with("--config=") ||
               arg.starts_with("--speed=") || arg.starts_with("--format=")) {
    } else if (arg.starts_with("-")) {
      std::fprintf(stderr, "pgbastion replay: unexpected option '%.*s'\n\n%s",
                   static_cast<int>(arg.size()), arg.data(), kReplayUsage);
      return 2;
    } else if (target.empty()) {
      target = arg;
    } else {
      std::fprintf(stderr, "pgbastion replay: one recording at a time\n\n%s", kReplayUsage);
      return 2;
    }
  }
  if (FindFlag(args, "--speed", &value)) {
    char* end = nullptr;
    const std::string s(value);
    speed = std::strtod(s.c_str(), &end);
    if (s.empty() || *end != '\0' || !(speed >= 0) || speed > 1e6) {
      std::fprintf(stderr, "pgbastion replay: --speed wants a number >= 0\n");
      return 2;
    }
  }
  if (FindFlag(args, "--format", &value)) {
    if (value == "asciicast") {
      asciicast = true;
    } else if (value != "text") {
      std::fprintf(stderr, "pgbastion replay: --format is text or asciicast\n");
      return 2;
    }
  }
  if (json && asciicast) {
    std::fprintf(stderr, "pgbastion replay: --json and --format asciicast exclude each other\n");
    return 2;
  }
  if (target.empty()) {
    std::fprintf(stderr, "pgbastion replay: name a recording file or a session id\n\n%s",
                 kReplayUsage);
    return 2;
  }
  std::string path(target);
  if (target.find_first_not_of("0123456789") == std::string_view::npos) {
    std::string dir;
    if (!RecordingsDir(args, "replay", &dir)) return 1;
    std::optional<recording::RecordingFile> found =
        recording::FindRecording(dir, std::strtoull(path.c_str(), nullptr, 10));
    if (!found) return Fail("replay", Cat("no recording of session ", target, " in ", dir));
    path = found->path;
  }
  absl::StatusOr<FileContents> file = ReadRegularFile(path, kMaxRecordingFile);
  if (!file.ok()) return Fail("replay", std::string(file.status().message()));
  recording::RecordingReader reader(file->contents);
  if (!reader.status().ok()) return Fail("replay", Cat(path, ": ", reader.status().message()));
  recording::ReplayRenderer renderer(json ? recording::ReplayRenderer::Format::kJson
                                          : recording::ReplayRenderer::Format::kText);
  int64_t first_us = 0;
  bool header_written = false;
  std::string out;
  const auto emit = [&](int64_t unix_us, const std::string& text) {
    if (text.empty()) return;
    if (!asciicast) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      return;
    }
    // asciicast v2: a header line, then [seconds, "o", text] per output;
    // a terminal wants \r\n.
    if (!header_written) {
      std::printf(
          "{\"version\":2,\"width\":120,\"height\":40,\"timestamp\":%lld,"
          "\"title\":\"pgbastion session recording\"}\n",
          static_cast<long long>(first_us / 1'000'000));
      header_written = true;
    }
    std::string terminal;
    for (char c : text) {
      if (c == '\n') terminal += '\r';
      terminal += c;
    }
    std::string line = "[";
    char seconds[32];
    std::snprintf(seconds, sizeof(seconds), "%.6f",
                  static_cast<double>(unix_us - first_us) / 1'000'000.0);
    line += seconds;
    line += ",\"o\",";
    AppendJsonString(terminal, &line);
    line += "]\n";
    std::fwrite(line.data(), 1, line.size(), stdout);
  };
  int64_t last_us = 0;
  while (std::optional<recording::Event> e = reader.Next()) {
    if (first_us == 0) first_us = e->unix_us;
    if (speed > 0 && !asciicast && last_us != 0 && e->unix_us > last_us) {
      const double wait_us = static_cast<double>(e->unix_us - last_us) / speed;
      std::fflush(stdout);
      std::this_thread::sleep_for(std::chrono::microseconds(
          static_cast<int64_t>(std::min(wait_us, 60'000'000.0))));  // at most a minute each
    }
    if (e->unix_us > last_us) last_us = e->unix_us;
    out.clear();
    renderer.Render(*e, out);
    emit(e->unix_us, out);
  }
  out.clear();
  renderer.Finish(reader, out);
  emit(last_us, out);
  std::fflush(stdout);
  if (!reader.status().ok()) {
    return Fail("replay", Cat(path, ": ", reader.status().message(),
                              " (shown up to the last readable event)"));
  }
  if (reader.interrupted()) {
    std::fprintf(stderr,
                 "pgbastion replay: %s ends without its end marker (the gateway stopped); "
                 "shown up to its last whole chunk\n",
                 path.c_str());
  }
  return 0;
}

int RunRecordings(const Args& args) {
  if (args.empty() || HasFlag(args, "--help") || HasFlag(args, "-h")) {
    std::fputs(kRecordingsUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  if (args[0] != "list") {
    std::fprintf(stderr, "pgbastion recordings: unknown command '%.*s'\n\n%s",
                 static_cast<int>(args[0].size()), args[0].data(), kRecordingsUsage);
    return 2;
  }
  const Args rest(args.begin() + 1, args.end());
  std::string_view identity, target_name, since_text, until_text;
  FindFlag(rest, "--identity", &identity);
  FindFlag(rest, "--target", &target_name);
  int64_t since = 0, until = INT64_MAX;
  if (FindFlag(rest, "--since", &since_text) && !ParseTime(since_text, &since)) {
    std::fprintf(stderr, "pgbastion recordings: bad --since time\n");
    return 2;
  }
  if (FindFlag(rest, "--until", &until_text) && !ParseTime(until_text, &until)) {
    std::fprintf(stderr, "pgbastion recordings: bad --until time\n");
    return 2;
  }
  const bool json = HasFlag(rest, "--json");
  std::string dir;
  if (!RecordingsDir(rest, "recordings", &dir)) return 1;
  absl::StatusOr<std::vector<recording::RecordingFile>> files = recording::ListRecordingFiles(dir);
  if (!files.ok()) return Fail("recordings", std::string(files.status().message()));
  simdjson::dom::parser parser;
  if (!json)
    std::printf("%-20s %-22s %-24s %-16s %-12s %s\n", "SESSION", "START", "IDENTITY", "TARGET",
                "MODE", "FILE");
  for (const recording::RecordingFile& f : *files) {
    if (f.start_us < since || f.start_us > until) continue;
    absl::StatusOr<std::string> header = recording::ReadRecordingHeader(f.path);
    std::string_view subject = "?", target = "?", mode = "?", start = "?", scope = "?";
    simdjson::dom::element doc;
    if (header.ok() && parser.parse(*header).get(doc) == simdjson::SUCCESS) {
      // A header without one of these keys shows "?" there.
      const auto field = [](simdjson::dom::element e, std::string_view* out) {
        std::string_view v;
        if (e.get_string().get(v) == simdjson::SUCCESS) *out = v;
      };
      simdjson::dom::element e;
      if (doc["identity"]["subject"].get(e) == simdjson::SUCCESS) field(e, &subject);
      if (doc["target"].get(e) == simdjson::SUCCESS) field(e, &target);
      if (doc["mode"].get(e) == simdjson::SUCCESS) field(e, &mode);
      if (doc["start"].get(e) == simdjson::SUCCESS) field(e, &start);
      if (doc["scope"].get(e) == simdjson::SUCCESS) field(e, &scope);
    }
    if (!identity.empty() && subject != identity) continue;
    if (!target_name.empty() && target != target_name) continue;
    if (json) {
      std::string line =
          Cat("{\"session\":", f.session_id, ",\"file\":", JsonString(f.path),
              ",\"start\":", JsonString(start), ",\"identity\":", JsonString(subject),
              ",\"scope\":", JsonString(scope), ",\"target\":", JsonString(target),
              ",\"mode\":", JsonString(mode));
      if (!header.ok())
        line += Cat(",\"error\":", JsonString(std::string(header.status().message())));
      line += "}\n";
      std::fputs(line.c_str(), stdout);
    } else {
      std::printf("%-20llu %-22.*s %-24.*s %-16.*s %-12.*s %s%s\n",
                  static_cast<unsigned long long>(f.session_id), static_cast<int>(start.size()),
                  start.data(), static_cast<int>(subject.size()), subject.data(),
                  static_cast<int>(target.size()), target.data(), static_cast<int>(mode.size()),
                  mode.data(), f.path.c_str(), header.ok() ? "" : "  (unreadable header)");
    }
  }
  return 0;
}

}  // namespace pgb::tools
