// The gateway process: one Shard per worker thread, signal handling, and the
// orderly shutdown (SIGTERM/SIGINT: stop accepting, let sessions finish up to
// gateway.shutdown_timeout, then close them with a FATAL; a second signal
// closes them at once), and reloads (SIGHUP: the config file is read and
// checked again; if it is valid, new sessions and new statements of open
// sessions use it; if not, the old one stays and the log says why).
//
//   PGB_ASSIGN_OR_RETURN(auto runtime, BuildRuntime(std::move(config)));
//   return RunGateway(runtime, "/etc/pgbastion/pgbastion.toml");  // until shut down
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "core/runtime.h"

namespace pgb {

// Runs until a shutdown signal has been handled. Fails if a shard cannot start
// (a port in use, io_uring unavailable).
[[nodiscard]] absl::Status RunGateway(std::shared_ptr<const Runtime> runtime,
                                      std::string config_path);

}  // namespace pgb
