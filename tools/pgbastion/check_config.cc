// `pgbastion check-config --config FILE [--json]`: validates a configuration
// file the way `serve` would load it (secrets and TLS files included) and
// reports every error at once.
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "base/json_text.h"
#include "base/str_cat.h"
#include "core/config.h"
#include "core/runtime.h"
#include "tools/pgbastion/commands.h"

namespace pgb::tools {
namespace {

constexpr const char kCheckConfigUsage[] =
    "Usage: pgbastion check-config --config FILE [--json]\n"
    "\n"
    "Validates a pgbastion configuration file, as `pgbastion serve` would load it:\n"
    "syntax, every key, target passwords (password_file / password_env) and TLS files.\n"
    "Run it as the service user so file permissions are checked as the service sees them.\n"
    "\n"
    "Options:\n"
    "  --config FILE  the configuration file (for example /etc/pgbastion/pgbastion.toml)\n"
    "  --json         print {\"ok\":true|false,\"errors\":[...]} on stdout\n"
    "  --help         show this help\n"
    "\n"
    "Exit status: 0 valid, 1 invalid (every error is printed), 2 usage error.\n";

std::string Count(size_t n, std::string_view noun) {
  std::string out = Cat(n, " ", noun);
  if (n != 1) out += 's';
  return out;
}

std::vector<std::string_view> SplitLines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    lines.push_back(text.substr(0, end));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return lines;
}

}  // namespace

int RunCheckConfig(const Args& args) {
  if (HasFlag(args, "--help") || HasFlag(args, "-h")) {
    std::fputs(kCheckConfigUsage, stdout);
    return 0;
  }
  std::string_view path;
  const bool json = HasFlag(args, "--json");
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (arg == "--json") continue;
    if (arg == "--config" && i + 1 < args.size()) {
      path = args[++i];
      continue;
    }
    if (arg.starts_with("--config=")) {
      path = arg.substr(std::string_view("--config=").size());
      continue;
    }
    std::fprintf(stderr, "pgbastion check-config: unexpected argument '%.*s'\n\n%s",
                 static_cast<int>(arg.size()), arg.data(), kCheckConfigUsage);
    return 2;
  }
  if (path.empty()) {
    std::fprintf(stderr, "pgbastion check-config: --config FILE is required\n\n%s",
                 kCheckConfigUsage);
    return 2;
  }

  const absl::StatusOr<Config> config = LoadConfigFile(std::string(path));
  // What serve does next, too: load certificates and keys, resolve target
  // hosts, parse verifiers. A config that passes here starts (unless a port
  // is taken).
  absl::Status status = config.status();
  if (status.ok()) status = BuildRuntime(*config).status();
  std::vector<std::string_view> errors;
  std::string status_text;
  if (!status.ok()) {
    status_text = std::string(status.message());
    errors = SplitLines(status_text);
  }
  if (json) {
    std::string out = status.ok() ? "{\"ok\":true,\"errors\":[" : "{\"ok\":false,\"errors\":[";
    for (size_t i = 0; i < errors.size(); ++i) {
      if (i > 0) out += ',';
      out += JsonString(errors[i]);
    }
    out += "]}\n";
    std::fputs(out.c_str(), stdout);
    return status.ok() ? 0 : 1;
  }
  if (!status.ok()) {
    for (std::string_view error : errors) {
      std::fprintf(stderr, "%.*s\n", static_cast<int>(error.size()), error.data());
    }
    std::fprintf(stderr, "pgbastion check-config: %s in %.*s\n",
                 Count(errors.size(), "error").c_str(), static_cast<int>(path.size()), path.data());
    return 1;
  }
  const std::string workers =
      config->workers == 0 ? Count(static_cast<size_t>(config->ResolvedWorkers()), "worker") +
                                 " (one per online core)"
                           : Count(static_cast<size_t>(config->workers), "worker");
  std::printf(
      "config OK: %s, %s, %s, %s, %s, %s\n", Count(config->listeners.size(), "listener").c_str(),
      Count(config->targets.size(), "target").c_str(), Count(config->users.size(), "user").c_str(),
      Count(config->issuers.size(), "issuer").c_str(),
      Count(config->policy->scopes().size(), "scope").c_str(), workers.c_str());
  return 0;
}

}  // namespace pgb::tools
