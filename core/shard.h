// A Shard is one worker thread: its own io_uring ring, provided-buffer ring,
// SO_REUSEPORT listeners (multishot accept), sessions, cancel keys and
// counters. Nothing in a shard is touched by another thread; shards talk by
// posting a ShardMessage into each other's ring (IORING_OP_MSG_RING), e.g. a
// CancelRequest that arrived here for a session that lives elsewhere.
//
//   // core/gateway.cc: one per worker, all listed in one ShardDirectory
//   auto shard = std::make_unique<Shard>(i, runtimes, directory, trail_shard_or_null);
//   // on the shard's own thread:
//   PGB_RETURN_IF_ERROR(shard->Init(unix_fds));  // ring, buffers, listeners
//   shard->Run();                        // until shutdown ends
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "core/audit/writer.h"
#include "core/login_throttle.h"
#include "core/metrics.h"
#include "core/recording/recorder.h"
#include "core/ring.h"
#include "core/runtime.h"
#include "core/session.h"
#include "policy/sql_analysis.h"
#include "policy/token_verifier.h"

namespace pgb {

class Shard;
class RoleProvisioner;

// Read-only view of all shards, for routing cross-shard messages.
struct ShardDirectory {
  std::vector<Shard*> shards;
  approvals::ApprovalStore* approvals = nullptr;  // null: no [approvals]
};

// A message from one shard to another; owned by the receiver once posted.
struct ShardMessage {
  enum class Kind : uint8_t { kCancel };
  Kind kind;
  int32_t pid;
  int32_t key;
};

class Shard {
 public:
  // Size of each provided receive buffer and how many a shard has.
  static constexpr uint32_t kBufferSize = 16 * 1024;
  static constexpr uint32_t kBufferCount = 1024;

  // `audit`: this shard's side of the audit trail, or null when there is none.
  Shard(int index, const RuntimeStore& runtimes, const ShardDirectory& directory,
        audit::AuditShard* audit);
  ~Shard();
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  // Creates the ring, buffers and listeners. Called on the shard's thread.
  // `unix_fds`: by listener index, the listening socket of each socket_dir
  // listener (core/unix_listener.h), which every shard accepts from on a
  // duplicate of its own; -1 for TCP listeners, which each shard binds.
  [[nodiscard]] absl::Status Init(const std::vector<int>& unix_fds);
  // Event loop; returns when shutdown completes.
  void Run();
  // Thread-safe: asks the shard to shut down gracefully (a second call forces).
  void RequestShutdown();
  // Thread-safe: a new Runtime was published; pick it up now rather than at
  // the next tick.
  void Wake();
  int ring_fd() const { return ring_fd_.load(); }

  // For sessions.
  Ring& ring() { return ring_; }
  BufferRing& buffers() { return buffers_; }
  const Runtime& runtime() const { return *runtime_; }
  const std::shared_ptr<const Runtime>& runtime_ptr() const { return runtime_; }
  int index() const { return index_; }
  char* scratch() { return scratch_.data(); }
  size_t scratch_size() const { return scratch_.size(); }
  int64_t now_ns() const { return now_ns_; }
  // The client's BackendKeyData carries the backend's real pid and a secret
  // key the gateway draws: random, except that key mod the number of shards
  // is this shard's index, so a CancelRequest that lands on any shard finds
  // the owner. Registers (pid, key) for `slot`; nullopt without randomness.
  std::optional<int32_t> RegisterCancelKey(int32_t backend_pid, uint32_t slot);
  void UnregisterCancelKey(int32_t backend_pid, int32_t key);
  // Routes a CancelRequest received on this shard (any session, any shard,
  // any target: the pair is unique per shard even where pids of two database
  // servers collide).
  void RouteCancel(int32_t pid, int32_t key);
  // Derived SCRAM keys for logging in to a target again without PBKDF2.
  proto::ScramClientKeyCache* scram_cache(const TargetRuntime& target) {
    return &target.scram_keys[static_cast<size_t>(index_)].keys;
  }
  audit::AuditShard* audit() { return audit_; }
  // This shard's side of the session recorder (core/recording/recorder.h), or
  // null when there is no [recording] table. Set before the shard runs.
  void set_recorder(recording::RecorderShard* recorder) { recorder_ = recorder; }
  recording::RecorderShard* recorder() { return recorder_; }
  // Statement analyses, shared by this shard's sessions (keyed by text).
  policy::AnalysisCache& analysis_cache() { return analysis_cache_; }
  // Checks tokens sent as passwords, with the current Runtime's keys; null
  // when it has no [[issuer]].
  policy::TokenVerifier* token_verifier() { return token_verifier_.get(); }
  // Failed logins per address and user name on this shard (core/login_throttle.h).
  LoginThrottle& login_throttle() { return login_throttle_; }
  // What this shard counts for /metrics (core/metrics.h); its thread only.
  ShardMetrics& metrics() { return metrics_; }
  // The clock now (the cached now_ns() is when the loop woke up).
  static int64_t FreshNs() { return MonotonicNs(); }

  // Thread-safe: runs `job` on the shard's own thread soon (the control
  // plane's requests: a metrics snapshot, the session list, ending a
  // session). Jobs still queued when the shard stops are dropped unrun.
  void Post(std::function<void(Shard&)> job);
  // On the shard's thread: its counters, its throttle's, and its sessions.
  struct Report {
    ShardMetrics metrics;
    LoginThrottle::Counters throttle;
    uint64_t throttle_tracked = 0;
    uint64_t connections_open = 0;
    absl::flat_hash_map<std::pair<std::string, std::string>, uint64_t> sessions_open;
    std::vector<SessionInfo> sessions;  // filled only when asked for
  };
  Report MakeReport(bool with_sessions) const;
  // On the shard's thread: ends the sessions `matches` selects (FATAL 57P01
  // naming `by`); returns what they were.
  std::vector<SessionInfo> EndSessions(const std::function<bool(const SessionInfo&)>& matches,
                                       std::string_view by);

  // The approval store (core/approvals/approval_store.h); null: none.
  approvals::ApprovalStore* approvals() const { return directory_.approvals; }
  // On the shard's thread: the store's answer for a session's held
  // statement (dropped when the session is gone).
  void DeliverApprovalEvent(uint32_t slot, uint32_t generation, uint64_t hold,
                            const approvals::ApprovalEvent& event);

  // Temporary database roles (core/role_provisioner.h); null when none are
  // configured. Set before Run.
  void set_role_provisioner(RoleProvisioner* provisioner) { role_provisioner_ = provisioner; }
  RoleProvisioner* role_provisioner() const { return role_provisioner_; }
  // On the shard's thread: runs fn on the session in `slot` if it is still
  // the one of `generation` (frees it if it finished); false if it is gone.
  bool WithSession(uint32_t slot, uint32_t generation, const std::function<void(Session&)>& fn);

  // A receive failed with -ENOBUFS; retry when buffers come back.
  void WaitForBuffers(uint32_t slot, Session::Side side);

 private:
  struct Listener {
    int fd = -1;
    const ListenerRuntime* runtime;
  };
  // One CancelRequest being relayed to a backend.
  struct CancelRelay {
    int fd = -1;
    std::string packet;
    sockaddr_storage address;
    socklen_t address_length;
  };

  void Dispatch(io_uring_cqe* cqe);
  void ArmAccept(uint32_t listener_index);
  void OnAccept(uint32_t listener_index, int res, uint32_t flags);
  void ArmTick();
  void OnTick();
  void ArmWake();
  void OnWake();
  void StartShutdown(bool force);
  void PickUpRuntime();
  void HandleMessage(ShardMessage* message);
  void CancelLocal(int32_t pid, int32_t key);
  void OnCancelRelay(Op op, uint32_t slot, int res);
  void FreeSessionIfFinished(uint32_t slot);
  void RetryBufferWaiters();
  // On a tick: returns freed heap to the system once the shard is quiet
  // after work (core/heap.h).
  void ReturnHeapIfQuiet();
  static int64_t MonotonicNs();

  const int index_;
  const RuntimeStore& runtimes_;
  uint64_t runtime_generation_ = 0;  // read before runtime_: a publish in between is seen later
  std::shared_ptr<const Runtime> runtime_;
  const ShardDirectory& directory_;
  audit::AuditShard* const audit_;
  recording::RecorderShard* recorder_ = nullptr;
  Ring ring_;
  BufferRing buffers_;
  std::atomic<int> ring_fd_{-1};
  int wake_fd_ = -1;
  uint64_t wake_value_ = 0;
  std::atomic<int> shutdown_requests_{0};
  int shutdown_seen_ = 0;
  bool draining_ = false;
  int64_t now_ns_ = 0;
  __kernel_timespec tick_interval_{};
  uint64_t completions_since_tick_ = 0;  // other than the tick's own
  bool worked_since_heap_return_ = false;
  int64_t last_heap_return_ns_ = 0;

  std::vector<Listener> listeners_;
  std::vector<uint32_t> accept_retry_;  // listeners whose accept failed; re-armed on tick
  bool accept_failing_ = false;
  std::vector<std::unique_ptr<Session>> sessions_;
  std::vector<uint32_t> generations_;
  std::vector<uint32_t> free_slots_;
  size_t live_sessions_ = 0;
  std::vector<std::unique_ptr<CancelRelay>> cancel_relays_;
  struct BufferWaiter {
    uint32_t slot;
    uint32_t generation;
    Session::Side side;
  };
  std::vector<BufferWaiter> buffer_waiters_;
  // (backend pid, gateway key) -> session slot.
  absl::flat_hash_map<std::pair<int32_t, int32_t>, uint32_t> cancel_keys_;
  std::vector<char> scratch_;
  policy::AnalysisCache analysis_cache_;
  std::unique_ptr<policy::TokenVerifier> token_verifier_;  // rebuilt with each Runtime
  LoginThrottle login_throttle_;  // kept across reloads; configured by the current Runtime
  ShardMetrics metrics_;
  RoleProvisioner* role_provisioner_ = nullptr;
  std::mutex mailbox_mu_;  // Post() from other threads; drained on wake, never per message
  std::vector<std::function<void(Shard&)>> mailbox_;
};

}  // namespace pgb
