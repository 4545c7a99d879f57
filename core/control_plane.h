// The ControlPlane: the gateway's operator-facing side, on threads of its own,
// never on a shard's ring ([control], core/control_config.h).
//
//   HTTP (cpp-httplib, Debian's libcpp-httplib; HTTPS with OpenSSL when
//   tls_cert/tls_key are set), a fixed pool of `threads` workers:
//     GET /metrics   the Prometheus text (core/metrics.h); a bearer token when
//                    metrics_token_file is set
//     GET /healthz   200 while the process serves
//     GET /readyz    200 when every target accepted a TCP connection at the
//                    last check and the audit trail accepts records; else 503
//                    with the reasons
//   The admin socket (admin_socket): a Unix socket, mode 0600, that only root
//   and the service's user may use (checked again with SO_PEERCRED); one
//   request line per connection, a JSON answer (`pgbastion sessions`):
//     list                  every open session
//     end id|subject|target VALUE   ends the matching sessions (FATAL 57P01)
//     approvals ...         approval requests (core/approvals/approval_api.h);
//                           the HTTP server has /v1/approvals too
//   A readiness thread connects to each target every check_interval.
//
// Shared-nothing holds: the control plane never reads a shard's state. It posts
// a job to every shard (Shard::Post, woken by its eventfd); each shard answers
// with a copy made on its own thread, and ends its own sessions.
//
//   PGB_ASSIGN_OR_RETURN(auto control, ControlPlane::Start(config.control, sources));
//   ... control->Stop();  // before the shards are destroyed
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/approvals/approval_store.h"
#include "core/audit/writer.h"
#include "core/control_config.h"
#include "core/runtime.h"
#include "core/session.h"
#include "core/shard.h"

namespace httplib {
class Server;
}

namespace pgb {

// Reloads by outcome, counted by the thread that reloads.
struct ReloadCounters {
  std::atomic<uint64_t> ok{0};
  std::atomic<uint64_t> failed{0};
};

class ControlPlane {
 public:
  struct Sources {
    const ShardDirectory* shards = nullptr;
    const RuntimeStore* runtimes = nullptr;
    audit::AuditTrail* trail = nullptr;  // null: no [audit]
    const ReloadCounters* reloads = nullptr;
    approvals::ApprovalStore* approvals = nullptr;  // null: no [approvals]
  };

  // Binds the HTTP port and the admin socket and starts the threads. Fails
  // when a port or path is taken or a TLS file or the token cannot be read.
  static absl::StatusOr<std::unique_ptr<ControlPlane>> Start(const ControlConfig& config,
                                                             Sources sources);
  ~ControlPlane();
  ControlPlane(const ControlPlane&) = delete;
  ControlPlane& operator=(const ControlPlane&) = delete;
  // Stops the threads and removes the admin socket. Idempotent.
  void Stop();

  std::string MetricsText();
  // Empty when ready; otherwise why not, one reason per line.
  std::string NotReadyReasons();
  std::vector<SessionInfo> ListSessions();
  std::vector<SessionInfo> EndSessions(std::function<bool(const SessionInfo&)> matches,
                                       std::string by);

 private:
  ControlPlane(const ControlConfig& config, Sources sources);
  // Runs `job` on every shard's thread; an answer that has not come within
  // kShardAnswerTimeout is missing (nullopt).
  template <typename T>
  std::vector<std::optional<T>> AskShards(std::function<T(Shard&)> job);
  void CheckTargets();  // the readiness thread
  void ServeAdmin();    // the admin socket's thread
  void HandleAdmin(int fd);

  const ControlConfig config_;
  const Sources sources_;
  std::string metrics_token_;  // empty: /metrics is open
  std::unique_ptr<httplib::Server> http_;
  std::thread http_thread_;
  int admin_fd_ = -1;
  std::thread admin_thread_;
  std::thread check_thread_;
  std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  bool checked_ = false;                               // under mu_: a first check ran
  std::vector<std::pair<std::string, bool>> targets_;  // under mu_: the last check
  bool stopped_ = false;
};

// The session list as JSON: {"sessions":[{...}, ...]}.
std::string SessionsJson(const std::vector<SessionInfo>& sessions);

}  // namespace pgb
