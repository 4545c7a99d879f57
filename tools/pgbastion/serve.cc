// `pgbastion serve --config FILE`: runs the gateway in the foreground.
#include <cstdio>
#include <string>

#include "base/log.h"
#include "core/config.h"
#include "core/gateway.h"
#include "core/runtime.h"
#include "tools/pgbastion/commands.h"

namespace pgb::tools {

namespace {
constexpr const char kServeUsage[] =
    "Usage: pgbastion serve --config FILE\n"
    "\n"
    "Runs the gateway in the foreground (as the systemd unit does). Logs go to stderr.\n"
    "SIGTERM or SIGINT: stop accepting, let sessions finish up to gateway.shutdown_timeout,\n"
    "then close them; a second signal closes them at once.\n"
    "\n"
    "Options:\n"
    "  --config FILE   the TOML configuration (see docs/configuration.md)\n"
    "  --help          show this help\n";
}  // namespace

int RunServe(const Args& args) {
  if (HasFlag(args, "--help") || HasFlag(args, "-h")) {
    std::fputs(kServeUsage, stdout);
    return 0;
  }
  std::string_view path;
  if (!FindFlag(args, "--config", &path)) {
    std::fputs("pgbastion serve: --config FILE is required\n\n", stderr);
    std::fputs(kServeUsage, stderr);
    return 2;
  }
  absl::StatusOr<Config> config = LoadConfigFile(std::string(path));
  if (!config.ok()) {
    std::fprintf(stderr, "pgbastion serve: %s\n", std::string(config.status().message()).c_str());
    return 1;
  }
  SetLogLevel(config->log_level);
  absl::StatusOr<std::shared_ptr<const Runtime>> runtime = BuildRuntime(*std::move(config));
  if (!runtime.ok()) {
    std::fprintf(stderr, "pgbastion serve: %s: %s\n", std::string(path).c_str(),
                 std::string(runtime.status().message()).c_str());
    return 1;
  }
  if (absl::Status s = RunGateway(*runtime, std::string(path)); !s.ok()) {
    std::fprintf(stderr, "pgbastion serve: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}

}  // namespace pgb::tools
