// `pgbastion reload --config FILE [--pid PID]`: checks the configuration file
// the way the running gateway will, then sends SIGHUP to the gateway serving
// it. The gateway applies the new file to new sessions and to the next
// statements of open ones; an invalid file is refused there too, and the
// running configuration stays.
#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "base/str_cat.h"
#include "core/config.h"
#include "core/runtime.h"
#include "tools/pgbastion/commands.h"

namespace pgb::tools {
namespace {

constexpr const char kReloadUsage[] =
    "Usage: pgbastion reload --config FILE [--pid PID]\n"
    "\n"
    "Checks FILE as `pgbastion check-config` does, then asks the gateway running\n"
    "`pgbastion serve --config FILE` to reload it (SIGHUP). Open sessions stay;\n"
    "their next statements are judged by the new policy. Listener addresses and\n"
    "the number of workers change only with a restart.\n"
    "\n"
    "Options:\n"
    "  --config FILE  the configuration file the gateway was started with\n"
    "  --pid PID      signal this process instead of looking for the gateway\n"
    "  --help         show this help\n"
    "\n"
    "Exit status: 0 signalled, 1 invalid file or no gateway found, 2 usage error.\n"
    "The gateway's log says whether it applied the file.\n";

std::string Canonical(std::string_view path) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::weakly_canonical(std::string(path), ec);
  return ec ? std::string(path) : p.string();
}

// The argv of a process, split at NULs; empty if unreadable.
std::vector<std::string> CommandLine(const std::string& pid) {
  std::string raw;
  if (FILE* f = std::fopen(Cat("/proc/", pid, "/cmdline").c_str(), "rb")) {
    char chunk[4096];
    size_t n;
    while ((n = std::fread(chunk, 1, sizeof(chunk), f)) > 0 && raw.size() < 65536) {
      raw.append(chunk, n);
    }
    std::fclose(f);
  }
  std::vector<std::string> argv;
  size_t start = 0;
  while (start < raw.size()) {
    size_t end = raw.find('\0', start);
    if (end == std::string::npos) end = raw.size();
    argv.push_back(raw.substr(start, end - start));
    start = end + 1;
  }
  return argv;
}

// Processes running `pgbastion serve --config <config>` (the same file).
std::vector<pid_t> FindGateways(const std::string& config) {
  std::vector<pid_t> found;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return found;
  const pid_t self = getpid();
  while (dirent* entry = readdir(proc)) {
    pid_t pid = 0;
    const std::string_view name = entry->d_name;
    if (std::from_chars(name.data(), name.data() + name.size(), pid).ec != std::errc() ||
        pid == self) {
      continue;
    }
    const std::vector<std::string> argv = CommandLine(std::string(name));
    if (argv.size() < 3 || std::filesystem::path(argv[0]).filename() != "pgbastion" ||
        argv[1] != "serve") {
      continue;
    }
    std::vector<std::string_view> args(argv.begin() + 2, argv.end());
    std::string_view value;
    if (!FindFlag(args, "--config", &value)) continue;
    // The gateway resolved its --config against its own working directory.
    std::error_code ec;
    const std::filesystem::path cwd =
        std::filesystem::read_symlink(Cat("/proc/", name, "/cwd"), ec);
    const std::filesystem::path theirs = std::filesystem::path(value).is_absolute() || ec
                                             ? std::filesystem::path(value)
                                             : cwd / value;
    if (Canonical(theirs.string()) == config) found.push_back(pid);
  }
  closedir(proc);
  return found;
}

}  // namespace

int RunReload(const Args& args) {
  if (HasFlag(args, "--help") || HasFlag(args, "-h")) {
    std::fputs(kReloadUsage, stdout);
    return 0;
  }
  std::string_view path;
  if (!FindFlag(args, "--config", &path)) {
    std::fputs("pgbastion reload: --config FILE is required\n\n", stderr);
    std::fputs(kReloadUsage, stderr);
    return 2;
  }
  std::vector<pid_t> pids;
  if (std::string_view pid_text; FindFlag(args, "--pid", &pid_text)) {
    pid_t pid = 0;
    if (std::from_chars(pid_text.data(), pid_text.data() + pid_text.size(), pid).ec !=
            std::errc() ||
        pid <= 0) {
      std::fprintf(stderr, "pgbastion reload: --pid: not a process id: %.*s\n",
                   static_cast<int>(pid_text.size()), pid_text.data());
      return 2;
    }
    pids.push_back(pid);
  }
  absl::StatusOr<Config> config = LoadConfigFile(std::string(path));
  absl::Status valid = config.status();
  if (valid.ok()) valid = BuildRuntime(*std::move(config)).status();
  if (!valid.ok()) {
    std::fprintf(stderr, "pgbastion reload: %s is not valid; nothing was reloaded:\n%s\n",
                 std::string(path).c_str(), std::string(valid.message()).c_str());
    return 1;
  }
  if (pids.empty()) pids = FindGateways(Canonical(path));
  if (pids.empty()) {
    std::fprintf(stderr,
                 "pgbastion reload: no running `pgbastion serve --config %s` found "
                 "(pass --pid, or use `systemctl reload pgbastion`)\n",
                 std::string(path).c_str());
    return 1;
  }
  int failures = 0;
  for (pid_t pid : pids) {
    if (kill(pid, SIGHUP) != 0) {
      std::fprintf(stderr, "pgbastion reload: cannot signal process %d: %s\n",
                   static_cast<int>(pid), std::strerror(errno));
      ++failures;
    } else {
      std::printf("asked pgbastion (pid %d) to reload %s; its log says whether it applied it\n",
                  static_cast<int>(pid), std::string(path).c_str());
    }
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace pgb::tools
