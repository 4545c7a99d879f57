#include "core/shard.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/rand.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/log.h"
#include "base/str_cat.h"
#include "core/heap.h"
#include "core/unix_listener.h"
#include "proto/messages.h"

namespace pgb {
namespace {

constexpr int64_t kTickNs = 200'000'000;
// At most one heap return per shard per second (each walks every arena).
constexpr int64_t kHeapReturnIntervalNs = 1'000'000'000;
constexpr unsigned kRingEntries = 4096;

std::string FormatPeer(const sockaddr_storage& addr) {
  const HostPort peer = HostPortOf(addr);
  return Cat(peer.host, ":", peer.port);
}

}  // namespace

Shard::Shard(int index, const RuntimeStore& runtimes, const ShardDirectory& directory,
             audit::AuditShard* audit)
    : index_(index),
      runtimes_(runtimes),
      runtime_generation_(runtimes.generation()),
      runtime_(runtimes.Current()),
      directory_(directory),
      audit_(audit),
      // Made here, not in Init: other threads may Wake() or Post() to the
      // shard before its thread runs (the control plane starts first).
      wake_fd_(eventfd(0, EFD_CLOEXEC)),
      scratch_(64 * 1024),
      analysis_cache_(runtime_->config.analysis_cache_size),
      token_verifier_(runtime_->keys ? std::make_unique<policy::TokenVerifier>(runtime_->keys)
                                     : nullptr) {}

Shard::~Shard() {
  sessions_.clear();
  for (Listener& l : listeners_) {
    if (l.fd >= 0) ::close(l.fd);
  }
  for (auto& relay : cancel_relays_) {
    if (relay && relay->fd >= 0) ::close(relay->fd);
  }
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

int64_t Shard::MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

absl::Status Shard::Init(const std::vector<int>& unix_fds) {
  if (absl::Status s = ring_.Init(kRingEntries); !s.ok()) return s;
  if (absl::Status s = buffers_.Init(ring_, kBufferCount, kBufferSize); !s.ok()) return s;
  if (wake_fd_ < 0) return absl::InternalError(Cat("eventfd: ", strerror(errno)));
  for (size_t i = 0; i < runtime_->listeners.size(); ++i) {
    const ListenerRuntime& lr = runtime_->listeners[i];
    if (lr.config->local()) {
      // A path is bound once (no SO_REUSEPORT): accept from a duplicate of
      // the gateway's socket, closed as this shard's own on shutdown.
      const int fd = i < unix_fds.size() ? ::fcntl(unix_fds[i], F_DUPFD_CLOEXEC, 0) : -1;
      if (fd < 0) {
        return absl::InternalError(Cat("listener ", lr.config->Describe(), ": no socket"));
      }
      listeners_.push_back(Listener{fd, &lr});
      continue;
    }
    const int fd = ::socket(lr.address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return absl::InternalError(Cat("socket: ", strerror(errno)));
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (lr.address.ss_family == AF_INET6) {
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    }
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&lr.address), lr.address_length) != 0 ||
        ::listen(fd, 4096) != 0) {
      const int err = errno;
      ::close(fd);
      return absl::UnavailableError(
          Cat("cannot listen on ", lr.config->address, ":", lr.config->port, ": ", strerror(err)));
    }
    listeners_.push_back(Listener{fd, &lr});
  }
  ring_fd_.store(ring_.fd());
  return absl::OkStatus();
}

void Shard::Run() {
  now_ns_ = MonotonicNs();
  for (uint32_t i = 0; i < listeners_.size(); ++i) ArmAccept(i);
  ArmTick();
  ArmWake();
  PGB_LOG(kDebug) << "shard " << index_ << " running";
  while (true) {
    const int rc = ring_.SubmitAndWait();
    if (rc < 0 && rc != -EINTR && rc != -ETIME && rc != -EBUSY) {
      PGB_LOG(kError) << "shard " << index_ << ": io_uring wait failed: " << strerror(-rc);
      break;
    }
    now_ns_ = MonotonicNs();
    io_uring_cqe* cqe;
    unsigned head;
    unsigned seen = 0;
    io_uring_for_each_cqe(ring_.raw(), head, cqe) {
      Dispatch(cqe);
      ++seen;
    }
    io_uring_cq_advance(ring_.raw(), seen);
    if (!buffer_waiters_.empty()) RetryBufferWaiters();
    if (draining_ && live_sessions_ == 0) break;
  }
  PGB_LOG(kInfo) << "shard " << index_ << " stopped";
}

void Shard::Dispatch(io_uring_cqe* cqe) {
  const uint64_t data = cqe->user_data;
  const Op op = UserData::OpOf(data);
  if (op != Op::kTick) ++completions_since_tick_;
  switch (op) {
    case Op::kAccept:
      OnAccept(UserData::SlotOf(data), cqe->res, cqe->flags);
      return;
    case Op::kTick:
      OnTick();
      return;
    case Op::kWake:
      OnWake();
      return;
    case Op::kShardMessage:
      HandleMessage(UserData::PointerOf<ShardMessage>(data));
      return;
    case Op::kMessageSent:
      if (cqe->res < 0) {
        PGB_LOG(kWarning) << "shard " << index_
                          << ": could not pass a message to another shard: " << strerror(-cqe->res);
        delete UserData::PointerOf<ShardMessage>(data);
      }
      return;
    case Op::kCancelConnect:
    case Op::kCancelSend:
      OnCancelRelay(op, UserData::SlotOf(data), cqe->res);
      return;
    case Op::kIgnore:
    case Op::kNone:
      return;
    default:
      break;
  }
  const uint32_t slot = UserData::SlotOf(data);
  if (slot >= sessions_.size() || !sessions_[slot] ||
      sessions_[slot]->generation() != UserData::GenerationOf(data)) {
    PGB_LOG(kError) << "shard " << index_ << ": completion for a stale session slot " << slot;
    return;
  }
  sessions_[slot]->OnCompletion(op, cqe->res, cqe->flags);
  FreeSessionIfFinished(slot);
}

void Shard::FreeSessionIfFinished(uint32_t slot) {
  if (!sessions_[slot]->finished()) return;
  sessions_[slot].reset();
  generations_[slot] = (generations_[slot] + 1) & 0xffffff;
  free_slots_.push_back(slot);
  --live_sessions_;
}

void Shard::ArmAccept(uint32_t listener_index) {
  io_uring_sqe* sqe = ring_.GetSqe();
  io_uring_prep_multishot_accept(sqe, listeners_[listener_index].fd, nullptr, nullptr,
                                 SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, UserData::Make(Op::kAccept, listener_index, 0));
}

void Shard::OnAccept(uint32_t listener_index, int res, uint32_t flags) {
  const bool ended = !(flags & IORING_CQE_F_MORE);
  if (res < 0) {
    if (res == -ECANCELED || draining_) return;
    // Out of descriptors or memory: accepting again at once would spin on the
    // same error. Retry from the next tick, and say so once per episode.
    if (!accept_failing_) {
      PGB_LOG(kError) << "shard " << index_ << ": accept failed: " << strerror(-res)
                      << (res == -EMFILE || res == -ENFILE
                              ? " (raise LimitNOFILE / ulimit -n); retrying every 200 ms"
                              : "; retrying every 200 ms");
    }
    accept_failing_ = true;
    if (ended) accept_retry_.push_back(listener_index);
    return;
  }
  if (accept_failing_) {
    PGB_LOG(kInfo) << "shard " << index_ << ": accepting connections again";
    accept_failing_ = false;
  }
  if (ended && !draining_ && listeners_[listener_index].fd >= 0) ArmAccept(listener_index);
  const int fd = res;
  if (draining_) {
    ::close(fd);
    return;
  }
  ++metrics_.connections_accepted;
  const bool local = listeners_[listener_index].runtime->config->local();
  const int one = 1;
  if (!local) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_storage peer{};
  socklen_t peer_length = sizeof(peer);
  getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_length);
  if (local) peer.ss_family = AF_UNIX;  // an unbound client's address may be empty
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<uint32_t>(sessions_.size());
    sessions_.emplace_back();
    generations_.push_back(0);
  }
  sessions_[slot] = std::make_unique<Session>(
      *this, slot, generations_[slot], fd, *listeners_[listener_index].runtime,
      local ? DescribeLocalPeer(LocalPeerOf(fd)) : FormatPeer(peer), peer);
  ++live_sessions_;
  sessions_[slot]->Start();
}

void Shard::ArmTick() {
  tick_interval_.tv_sec = 0;
  tick_interval_.tv_nsec = kTickNs;
  io_uring_sqe* sqe = ring_.GetSqe();
  io_uring_prep_timeout(sqe, &tick_interval_, 0, 0);
  io_uring_sqe_set_data64(sqe, UserData::Make(Op::kTick, 0, 0));
}

void Shard::OnTick() {
  PickUpRuntime();
  if (!accept_retry_.empty()) {
    std::vector<uint32_t> retry;
    retry.swap(accept_retry_);
    for (uint32_t i : retry) {
      if (!draining_ && listeners_[i].fd >= 0) ArmAccept(i);
    }
  }
  for (uint32_t slot = 0; slot < sessions_.size(); ++slot) {
    if (!sessions_[slot]) continue;
    sessions_[slot]->OnTick(now_ns_);
    FreeSessionIfFinished(slot);
  }
  ReturnHeapIfQuiet();
  ArmTick();
}

// A whole tick without a completion, after some: whatever the work freed
// (sessions that ended, the buffers of a large statement's analysis) goes back
// to the system, so that resident memory falls back after a storm. A shard
// that stays busy never pays for it: it reuses what it freed.
void Shard::ReturnHeapIfQuiet() {
  if (completions_since_tick_ > 0) {
    worked_since_heap_return_ = true;
    completions_since_tick_ = 0;
    return;
  }
  if (!worked_since_heap_return_ || now_ns_ - last_heap_return_ns_ < kHeapReturnIntervalNs) {
    return;
  }
  worked_since_heap_return_ = false;
  last_heap_return_ns_ = now_ns_;
  const HeapReturn r = ReturnFreeHeap();
  PGB_LOG(kDebug) << "shard " << index_ << ": quiet, free heap returned to the system in "
                  << absl::ToInt64Microseconds(r.took) << " us: resident " << (r.rss_before >> 20)
                  << " -> " << (r.rss_after >> 20) << " MiB";
}

void Shard::ArmWake() {
  io_uring_sqe* sqe = ring_.GetSqe();
  io_uring_prep_read(sqe, wake_fd_, &wake_value_, sizeof(wake_value_), 0);
  io_uring_sqe_set_data64(sqe, UserData::Make(Op::kWake, 0, 0));
}

void Shard::RequestShutdown() {
  shutdown_requests_.fetch_add(1);
  Wake();
}

void Shard::Wake() {
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
}

// A reload published a new Runtime: new sessions and new statements use it;
// listeners keep their sockets (ListenerChanges refused any move) but take
// the new TLS certificates.
void Shard::PickUpRuntime() {
  const uint64_t generation = runtimes_.generation();
  if (generation == runtime_generation_) return;
  runtime_generation_ = generation;
  runtime_ = runtimes_.Current();
  token_verifier_ =
      runtime_->keys ? std::make_unique<policy::TokenVerifier>(runtime_->keys) : nullptr;
  for (size_t i = 0; i < listeners_.size() && i < runtime_->listeners.size(); ++i) {
    listeners_[i].runtime = &runtime_->listeners[i];
  }
  for (const std::unique_ptr<Session>& session : sessions_) {
    if (session) session->OnRuntimeChanged(runtime_);
  }
  PGB_LOG(kDebug) << "shard " << index_ << ": configuration generation " << generation;
}

void Shard::OnWake() {
  PickUpRuntime();
  std::vector<std::function<void(Shard&)>> jobs;
  {
    std::lock_guard<std::mutex> lock(mailbox_mu_);
    jobs.swap(mailbox_);
  }
  for (auto& job : jobs) job(*this);
  const int requests = shutdown_requests_.load();
  if (requests > shutdown_seen_) {
    const bool force = requests > 1;
    shutdown_seen_ = requests;
    StartShutdown(force);
  }
  ArmWake();
}

void Shard::StartShutdown(bool force) {
  if (!draining_) {
    PGB_LOG(kInfo) << "shard " << index_ << ": shutting down, " << live_sessions_
                   << " sessions open";
  }
  draining_ = true;
  for (Listener& l : listeners_) {
    if (l.fd < 0) continue;
    // shutdown() stops the listening socket at once (new connections are
    // refused, queued ones reset) on every shard's own socket; the cancel ends
    // the multishot accept, and must be submitted while the fd still exists.
    // A Unix socket is shared by every shard (and the gateway removes its
    // path): each shard only cancels its own accept and closes its duplicate.
    if (!l.runtime->config->local()) ::shutdown(l.fd, SHUT_RDWR);
    io_uring_sqe* sqe = ring_.GetSqe();
    io_uring_prep_cancel_fd(sqe, l.fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, UserData::Make(Op::kIgnore, 0, 0));
    io_uring_submit(ring_.raw());
    ::close(l.fd);
    l.fd = -1;
  }
  const int64_t deadline =
      force ? now_ns_ : now_ns_ + absl::ToInt64Nanoseconds(runtime_->config.shutdown_timeout);
  for (uint32_t slot = 0; slot < sessions_.size(); ++slot) {
    if (!sessions_[slot]) continue;
    sessions_[slot]->BeginShutdown(deadline);
    FreeSessionIfFinished(slot);
  }
}

std::optional<int32_t> Shard::RegisterCancelKey(int32_t backend_pid, uint32_t slot) {
  const uint64_t shards = directory_.shards.size();
  while (true) {
    uint32_t random = 0;
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&random), sizeof(random)) != 1) {
      return std::nullopt;
    }
    // The largest multiple of `shards` not above the random number, plus this
    // shard's index: every bit but the log2(shards) lowest stays random.
    const uint64_t key = random - random % shards + static_cast<uint64_t>(index_);
    if (key > UINT32_MAX) continue;
    const int32_t secret = static_cast<int32_t>(static_cast<uint32_t>(key));
    if (cancel_keys_.emplace(std::make_pair(backend_pid, secret), slot).second) return secret;
  }
}

void Shard::UnregisterCancelKey(int32_t backend_pid, int32_t key) {
  cancel_keys_.erase(std::make_pair(backend_pid, key));
}

void Shard::RouteCancel(int32_t pid, int32_t key) {
  const auto target = static_cast<int>(static_cast<uint32_t>(key) % directory_.shards.size());
  if (target == index_) {
    CancelLocal(pid, key);
    return;
  }
  auto* message = new ShardMessage{ShardMessage::Kind::kCancel, pid, key};
  io_uring_sqe* sqe = ring_.GetSqe();
  io_uring_prep_msg_ring(sqe, directory_.shards[target]->ring_fd(), 0,
                         UserData::MakePointer(Op::kShardMessage, message), 0);
  io_uring_sqe_set_data64(sqe, UserData::MakePointer(Op::kMessageSent, message));
}

void Shard::HandleMessage(ShardMessage* message) {
  if (message->kind == ShardMessage::Kind::kCancel) CancelLocal(message->pid, message->key);
  delete message;
}

void Shard::DeliverApprovalEvent(uint32_t slot, uint32_t generation, uint64_t hold,
                                 const approvals::ApprovalEvent& event) {
  if (slot >= sessions_.size() || !sessions_[slot] || generations_[slot] != generation) return;
  sessions_[slot]->OnApprovalEvent(hold, event);
  FreeSessionIfFinished(slot);
}

void Shard::CancelLocal(int32_t pid, int32_t key) {
  auto it = cancel_keys_.find(std::make_pair(pid, key));
  if (it == cancel_keys_.end() || !sessions_[it->second] ||
      !sessions_[it->second]->AcceptsCancel()) {
    // As PostgreSQL does, say nothing to the requester about a wrong key.
    PGB_LOG(kInfo) << "shard " << index_ << ": cancel request with a wrong key for process " << pid;
    return;
  }
  // A statement held for approval is withdrawn instead (57014).
  if (sessions_[it->second]->CancelHeld()) return;
  const Session& session = *sessions_[it->second];
  const TargetRuntime* target = session.target();
  auto relay = std::make_unique<CancelRelay>();
  relay->address = target->address;
  relay->address_length = target->address_length;
  proto::AppendCancelRequest(relay->packet, session.backend_key().first,
                             session.backend_key().second);
  relay->fd = ::socket(relay->address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (relay->fd < 0) {
    PGB_LOG(kWarning) << "shard " << index_ << ": cannot open a socket to forward a cancel";
    return;
  }
  uint32_t slot = 0;
  while (slot < cancel_relays_.size() && cancel_relays_[slot]) ++slot;
  if (slot == cancel_relays_.size()) cancel_relays_.emplace_back();
  cancel_relays_[slot] = std::move(relay);
  CancelRelay& r = *cancel_relays_[slot];
  io_uring_sqe* sqe = ring_.GetSqe();
  io_uring_prep_connect(sqe, r.fd, reinterpret_cast<const sockaddr*>(&r.address), r.address_length);
  io_uring_sqe_set_data64(sqe, UserData::Make(Op::kCancelConnect, slot, 0));
  PGB_LOG(kInfo) << "shard " << index_ << ": forwarding cancel request for process " << pid;
}

void Shard::OnCancelRelay(Op op, uint32_t slot, int res) {
  if (slot >= cancel_relays_.size() || !cancel_relays_[slot]) return;
  CancelRelay& r = *cancel_relays_[slot];
  if (op == Op::kCancelConnect && res == 0) {
    io_uring_sqe* sqe = ring_.GetSqe();
    io_uring_prep_send(sqe, r.fd, r.packet.data(), r.packet.size(), MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, UserData::Make(Op::kCancelSend, slot, 0));
    return;
  }
  if (res < 0) {
    PGB_LOG(kWarning) << "shard " << index_ << ": forwarding a cancel failed: " << strerror(-res);
  }
  // Sent (or failed): PostgreSQL reads the request and closes; so do we.
  ::close(r.fd);
  cancel_relays_[slot].reset();
}

void Shard::WaitForBuffers(uint32_t slot, Session::Side side) {
  buffer_waiters_.push_back(BufferWaiter{slot, generations_[slot], side});
}

void Shard::RetryBufferWaiters() {
  if (buffers_.outstanding() >= kBufferCount) return;
  std::vector<BufferWaiter> waiters;
  waiters.swap(buffer_waiters_);
  for (const BufferWaiter& w : waiters) {
    // The slot may have been freed and reused since: only its own session retries.
    if (sessions_[w.slot] && sessions_[w.slot]->generation() == w.generation) {
      sessions_[w.slot]->RetryReceive(w.side);
    }
  }
}

bool Shard::WithSession(uint32_t slot, uint32_t generation,
                        const std::function<void(Session&)>& fn) {
  if (slot >= sessions_.size() || !sessions_[slot] || sessions_[slot]->generation() != generation) {
    return false;
  }
  fn(*sessions_[slot]);
  FreeSessionIfFinished(slot);
  return true;
}

void Shard::Post(std::function<void(Shard&)> job) {
  {
    std::lock_guard<std::mutex> lock(mailbox_mu_);
    mailbox_.push_back(std::move(job));
  }
  Wake();
}

Shard::Report Shard::MakeReport(bool with_sessions) const {
  Report report;
  report.metrics = metrics_;
  report.throttle = login_throttle_.counters();
  report.throttle_tracked = login_throttle_.tracked_addresses() + login_throttle_.tracked_users();
  report.connections_open = live_sessions_;
  for (const std::unique_ptr<Session>& session : sessions_) {
    if (!session || session->finished()) continue;
    if (session->InRelay()) {
      const auto [target, scope] = session->TargetAndScope();
      ++report.sessions_open[{std::string(target), std::string(scope)}];
    }
    if (with_sessions) report.sessions.push_back(session->Info(now_ns_));
  }
  return report;
}

std::vector<SessionInfo> Shard::EndSessions(const std::function<bool(const SessionInfo&)>& matches,
                                            std::string_view by) {
  std::vector<SessionInfo> ended;
  for (uint32_t slot = 0; slot < sessions_.size(); ++slot) {
    if (!sessions_[slot] || sessions_[slot]->finished()) continue;
    SessionInfo info = sessions_[slot]->Info(now_ns_);
    if (!matches(info)) continue;
    PGB_LOG(kInfo) << "shard " << index_ << ": session " << info.id << " ended by " << by;
    sessions_[slot]->EndByOperator(by);
    FreeSessionIfFinished(slot);
    ended.push_back(std::move(info));
  }
  return ended;
}

}  // namespace pgb
