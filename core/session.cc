#include "core/session.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/log.h"
#include "base/str_cat.h"
#include "base/utf8.h"
#include "core/shard.h"
#include "core/startup_parameters.h"
#include "core/unix_listener.h"
#include "proto/error_status.h"
#include "proto/protocol.h"

namespace pgb {

using proto::Direction;
namespace sqlstate = proto::sqlstate;

namespace {

// Stop reading a side while the other side has this much waiting to be sent.
constexpr size_t kMaxQueuedBytes = 256 * 1024;
// Backend login replies (ParameterStatus, notices) are small too.
constexpr uint32_t kMaxBackendLoginMessage = 1 << 20;
// How long a final message may take to flush before the socket is closed anyway.
constexpr int64_t kFlushGraceNs = 5'000'000'000;

}  // namespace

// ---------------------------------------------------------------------------
// Construction and I/O plumbing

Session::Session(Shard& shard, uint32_t slot, uint32_t generation, int client_fd,
                 const ListenerRuntime& listener, std::string peer,
                 const sockaddr_storage& peer_address)
    : shard_(shard),
      runtime_(shard.runtime_ptr()),
      slot_(slot),
      generation_(generation),
      listener_(listener),
      peer_(std::move(peer)),
      client_(shard.ring(), shard.buffers(), Op::kClientRecv, Op::kClientSend, slot, generation,
              ops_in_flight_),
      backend_(shard.ring(), shard.buffers(), Op::kBackendRecv, Op::kBackendSend, slot, generation,
               ops_in_flight_),
      throttle_address_(LoginThrottle::AddressKey(peer_address)),
      audit_(shard.audit(), peer_address),
      holds_(shard.approvals(), &runtime_->config.approvals,
             [shard = &shard, slot, generation](uint64_t hold, const approvals::ApprovalEvent& e) {
               shard->Post([slot, generation, hold, e](Shard& s) {
                 s.DeliverApprovalEvent(slot, generation, hold, e);
               });
             }) {
  started_unix_us_ = absl::ToUnixMicros(absl::Now());
  client_.Attach(client_fd);
  if (const LocalPeer p = listener.config->local() ? LocalPeerOf(client_fd) : LocalPeer{};
      p.known) {
    audit_.SetLocalClient(p.pid, p.uid);
    peer_uid_ = p.uid;
  }
}

Session::~Session() {
  RecordEnd();  // a shard that stops with sessions open (its ring failed)
  if (cancel_key_registered_) shard_.UnregisterCancelKey(backend_pid_, gateway_key_);
}

std::string Session::Describe() const {
  return Cat("session ", shard_.index(), ".", slot_, " from ", peer_,
             user_name_.empty() ? "" : Cat(" user=", LogSafe(user_name_)),
             target_ ? Cat(" target=", target_->config->name) : "");
}

void Session::Start() {
  client_login_ = std::make_unique<ClientLogin>(*runtime_, listener_, shard_.token_verifier(),
                                                static_cast<ClientLogin::Channel&>(*this),
                                                Describe(), peer_uid_);
  audit_.Event(audit::AuditKind::kConnect);
  deadline_ns_ = shard_.now_ns() + absl::ToInt64Nanoseconds(runtime_->config.auth_timeout);
  ArmRecv(Side::kClient);
}

void Session::OnCompletion(Op op, int res, uint32_t flags) {
  --ops_in_flight_;
  switch (op) {
    case Op::kClientRecv:
      OnRecv(Side::kClient, res, flags);
      break;
    case Op::kBackendRecv:
      OnRecv(Side::kBackend, res, flags);
      break;
    case Op::kClientSend:
      OnSend(Side::kClient, res);
      break;
    case Op::kBackendSend:
      OnSend(Side::kBackend, res);
      break;
    case Op::kBackendConnect:
      OnBackendConnected(res);
      break;
    case Op::kLoginDelay:
      OnLoginDelayDone();
      break;
    default:
      break;
  }
}

void Session::ArmRecv(Side side) {
  if (closed_ || (side == Side::kClient && login_held_)) return;
  ep(side).ArmRecv();
}

void Session::RetryReceive(Side side) {
  if (!closed_) ArmRecv(side);
}

void Session::OnRecv(Side side, int res, uint32_t flags) {
  Endpoint& e = ep(side);
  e.OnRecvDone();
  int32_t bid = -1;
  if (flags & IORING_CQE_F_BUFFER) {
    bid = static_cast<int32_t>(flags >> IORING_CQE_BUFFER_SHIFT);
    shard_.buffers().NoteTaken();
  }
  if (closed_ || !e.open()) {
    if (bid >= 0) shard_.buffers().Recycle(static_cast<uint16_t>(bid));
    return;
  }
  if (res == -ENOBUFS) {
    shard_.WaitForBuffers(slot_, side);
    return;
  }
  if (res <= 0) {
    if (bid >= 0) shard_.buffers().Recycle(static_cast<uint16_t>(bid));
    OnPeerClosed(side, res);
    return;
  }
  const char* data = shard_.buffers().Data(static_cast<uint16_t>(bid));
  const size_t n = static_cast<size_t>(res);
  if (!e.tls_active()) {
    OnPlaintext(side, data, n, bid);
    return;
  }
  // TLS: ciphertext goes into the stream; plaintext comes out into the shard's
  // scratch buffer and is handled (and copied where it must be kept) at once.
  size_t offset = 0;
  while (offset < n && !closed_) {
    const size_t took = e.tls()->PushCiphertext(std::string_view(data + offset, n - offset));
    offset += took;
    bool read_any = false;
    if (!e.tls()->handshake_done()) {
      absl::StatusOr<proto::TlsStream::Progress> progress = e.tls()->Handshake();
      if (!progress.ok()) {
        PGB_LOG(kWarning) << Describe() << ": TLS handshake with the "
                          << (side == Side::kClient ? "client" : "database")
                          << " failed: " << progress.status().message();
        Flush(side);
        if (side == Side::kBackend) {
          FailClient(sqlstate::kSqlclientUnableToEstablish,
                     Cat("the gateway could not establish TLS with target \"",
                         target_->config->name, "\": ", progress.status().message()));
        } else {
          Close();
        }
        break;
      }
      Flush(side);
      if (*progress != proto::TlsStream::Progress::kDone) continue;
      OnTlsHandshakeDone(side);
    }
    while (!closed_ && e.open() && e.tls() != nullptr) {
      absl::StatusOr<size_t> got = e.tls()->ReadPlaintext(shard_.scratch(), shard_.scratch_size());
      if (!got.ok()) {
        if (e.tls()->eof()) {
          shard_.buffers().Recycle(static_cast<uint16_t>(bid));
          OnPeerClosed(side, 0);
          return;
        }
        PGB_LOG(kWarning) << Describe() << ": TLS error: " << got.status().message();
        shard_.buffers().Recycle(static_cast<uint16_t>(bid));
        Close();
        return;
      }
      if (*got == 0) break;
      read_any = true;
      OnPlaintext(side, shard_.scratch(), *got, -1);
    }
    if (took == 0 && !read_any && !closed_) {
      PGB_LOG(kWarning) << Describe() << ": TLS stream stalled";
      Close();
    }
  }
  shard_.buffers().Recycle(static_cast<uint16_t>(bid));
  if (closed_ || !e.open()) return;
  Flush(side);  // TLS may owe the peer bytes (tickets, alerts)
  if (phase_ == Phase::kRelay) {
    KeepReading(side);
  } else if (phase_ != Phase::kClosing) {
    ArmRecv(side);
  }
}

void Session::OnTlsHandshakeDone(Side side) {
  if (side == Side::kClient) {
    client_login_->OnTlsEstablished();
    PGB_LOG(kDebug) << Describe() << ": client TLS established";
  } else {
    SendBackendStartup();
  }
}

void Session::WriteOwned(Side side, std::string bytes) {
  if (absl::Status s = ep(side).WriteOwned(std::move(bytes)); !s.ok()) {
    PGB_LOG(kWarning) << Describe() << ": TLS write failed: " << s.message();
  }
}

void Session::WriteReceived(Side side, const char* data, size_t n, int32_t bid) {
  if (absl::Status s = ep(side).WriteReceived(data, n, bid); !s.ok()) {
    PGB_LOG(kWarning) << Describe() << ": TLS write failed: " << s.message();
  }
}

void Session::Flush(Side side) {
  if (side == Side::kClient && login_held_) return;
  if (ep(side).Flush()) CloseEndpoint(side);
}

void Session::OnSend(Side side, int res) {
  Endpoint& e = ep(side);
  const int sent = e.OnSent(res);
  if (!e.open()) return;  // closed while the send was in flight: nothing more goes out
  if (sent < 0) {
    if (!closed_) {
      PGB_LOG(kDebug) << Describe() << ": send to "
                      << (side == Side::kClient ? "client" : "database")
                      << " failed: " << strerror(-sent);
      if (side == Side::kBackend && phase_ == Phase::kRelay) {
        OnPeerClosed(side, sent);
      } else {
        Close();
      }
    }
    return;
  }
  if (closed_) return;
  Flush(side);
  MaybeResume(Other(side));
}

// Backpressure: `sender`'s bytes go to the other side; read more from it only
// while the other side's queue has room.
void Session::MaybeResume(Side sender) {
  if (phase_ != Phase::kRelay || closed_) return;
  if (ep(sender).recv_paused()) KeepReading(sender);
}

// Backpressure: after relaying what `side` sent, read more from it only while
// the other side's queue has room; otherwise hold it until a send completes.
void Session::KeepReading(Side side) {
  if (ep(Other(side)).Backlog() < kMaxQueuedBytes) {
    ArmRecv(side);
  } else {
    ep(side).PauseRecv();
  }
}

void Session::OnPlaintext(Side side, const char* data, size_t n, int32_t bid) {
  if (phase_ == Phase::kRelay) {
    RelayChunk(side, data, n, bid);
    return;
  }
  Endpoint& e = ep(side);
  e.staging().append(data, n);
  if (bid >= 0) shard_.buffers().Recycle(static_cast<uint16_t>(bid));
  if (phase_ == Phase::kClosing) {
    e.staging().clear();
    return;
  }
  if (side == Side::kClient) {
    ProcessClientLogin();
  } else {
    ProcessBackendLogin();
  }
}

void Session::OnPeerClosed(Side side, int res) {
  if (closed_) return;
  if (side == Side::kClient) {
    if (phase_ != Phase::kRelay && phase_ != Phase::kClosing) {
      PGB_LOG(kDebug) << Describe() << ": client left during login";
    } else if (!ClientTerminated() && res < 0) {
      PGB_LOG(kInfo) << Describe() << ": client connection lost: " << strerror(-res);
    }
    Close();
    return;
  }
  // The database side ended.
  if (phase_ == Phase::kRelay) {
    if (ClientTerminated()) {
      Close();
      return;
    }
    if (relay_->BackendSaidGoodbye()) {
      // Its FATAL (or the end after ReadyForQuery) is the client's last
      // word, as from PostgreSQL directly: a second FATAL of the gateway's
      // would surface in drivers as an error with nothing to attach it to.
      PGB_LOG(kInfo) << Describe() << ": the database ended the session";
      end_reason_ = "the database ended the session";
      CloseEndpoint(Side::kBackend);
      CloseAfterFlush();
      return;
    }
    PGB_LOG(kWarning) << Describe() << ": the database closed the connection"
                      << (res < 0 ? Cat(": ", strerror(-res)) : "");
    CloseEndpoint(Side::kBackend);
    if (AtBoundary(Side::kBackend)) {
      FailClient(
          sqlstate::kConnectionFailure, "the connection to the database server was lost",
          "The database closed the connection unexpectedly.",
          "Reconnect; if this repeats, the operator can check the database and gateway logs.");
    } else {
      Close();  // mid-message: nothing can be appended without corrupting the stream
    }
    return;
  }
  if (phase_ == Phase::kClosing) {
    CloseEndpoint(Side::kBackend);
    return;
  }
  PGB_LOG(kWarning) << Describe() << ": the database closed the connection during login";
  CloseEndpoint(Side::kBackend);
  FailClient(sqlstate::kConnectionFailure,
             Cat("the database server for target \"", target_ ? target_->config->name : "?",
                 "\" closed the connection during login"));
}

// ---------------------------------------------------------------------------
// Client login

void Session::ProcessClientLogin() {
  if (closed_ || phase_ == Phase::kClosing || login_held_) return;
  absl::StatusOr<ClientLogin::Step> step = client_login_->Feed(client_.staging());
  user_name_ = client_login_->user_name();
  if (!step.ok()) {
    FailClient(step.status());
    return;
  }
  switch (*step) {
    case ClientLogin::Step::kNeedMore:
    case ClientLogin::Step::kTlsStarted:  // the handshake goes on with what arrives
      break;
    case ClientLogin::Step::kCancel:
      audit_.Event(audit::AuditKind::kCancel);
      shard_.RouteCancel(client_login_->cancel_pid(), client_login_->cancel_key());
      Close();
      return;
    case ClientLogin::Step::kQuit:
      Close();
      return;
    case ClientLogin::Step::kAuthenticated: {
      identity_ = client_login_->identity();
      identity_ends_unix_ = client_login_->identity_ends_unix();
      target_ = &client_login_->target();
      policy_ = client_login_->policy();
      scope_ = &client_login_->scope();
      ClientStartup& startup = client_login_->startup();
      application_name_ = std::move(startup.application_name);
      forwarded_params_ = std::move(startup.forwarded);
      if (absl::Status chosen = role_.Choose(*runtime_, *target_, scope_->name, identity_.subject,
                                             shard_.role_provisioner());
          !chosen.ok()) {
        FailClient(chosen);
        return;
      }
      if (AdmitStartupSettings()) ProvisionRole();
      break;
    }
  }
  if (!login_admitted_ && !closed_ && phase_ == Phase::kClientLogin &&
      client_login_->awaiting_credential()) {
    // The startup packet is accepted and a credential asked for: before the
    // client sees that question, the throttle may make it wait. The wait
    // comes before any verdict, so its length says nothing about the guess.
    login_admitted_ = true;
    const int64_t wait = shard_.login_throttle().Admit(
        runtime_->config.login_throttle, throttle_address_, user_name_, shard_.now_ns());
    if (wait > 0) {
      client_login_->QuietFailures();
      HoldLogin(wait);
      return;
    }
  }
  if (!closed_ && phase_ != Phase::kClosing) ArmRecv(Side::kClient);
  Flush(Side::kClient);
}

void Session::HoldLogin(int64_t wait_ns) {
  // No longer than the login may last: then it has timed out anyway.
  wait_ns = std::clamp<int64_t>(wait_ns, 1, std::max<int64_t>(deadline_ns_ - shard_.now_ns(), 1));
  login_delay_.tv_sec = wait_ns / 1'000'000'000;
  login_delay_.tv_nsec = wait_ns % 1'000'000'000;
  io_uring_sqe* sqe = shard_.ring().GetSqe();
  io_uring_prep_timeout(sqe, &login_delay_, 0, 0);
  io_uring_sqe_set_data64(sqe, UserData::Make(Op::kLoginDelay, slot_, generation_));
  ++ops_in_flight_;
  login_held_ = true;
  login_timer_armed_ = true;
}

void Session::OnLoginDelayDone() {
  login_timer_armed_ = false;
  if (!login_held_) return;  // the session ended meanwhile
  login_held_ = false;
  if (closed_ || phase_ != Phase::kClientLogin) return;
  ProcessClientLogin();  // whatever arrived with the startup packet; then answer and read on
}

void Session::SendToClient(std::string bytes) { WriteOwned(Side::kClient, std::move(bytes)); }

absl::Status Session::StartTls() {
  absl::StatusOr<std::unique_ptr<proto::TlsStream>> tls = proto::TlsStream::Server(*listener_.tls);
  if (!tls.ok()) return tls.status();
  client_.StartTls(*std::move(tls));  // everything after the 'S' goes through TLS
  return absl::OkStatus();
}

const proto::TlsStream* Session::Tls() const {
  return client_.tls_active() ? client_.tls() : nullptr;
}

// ---------------------------------------------------------------------------
// Backend login

bool Session::AdmitStartupSettings() {
  const StartupJudgement j =
      JudgeStartupSettings(*policy_, *scope_, role_.name(), forwarded_params_);
  audit_.SetSession(&identity_, target_->config->name, role_.name(), application_name_);
  if (j.refused) {
    const proto::ErrorFields why = proto::ErrorFieldsOf(j.refusal, "FATAL");
    audit_.Refusal(j.refused->statement, StatementProtocol::kStartup, j.refused->decision.rule,
                   why.sqlstate, why.message, j.refused->fingerprint, 0);
    PGB_LOG(kInfo) << Describe() << ": refused, " << why.message;
    FailClient(j.refusal);
    return false;
  }
  // Write-ahead, as for statements: the records before the database sees them.
  if (audit_.enabled() && !audit_.HasRoomFor(2 * j.allowed.size())) {
    FailClient(sqlstate::kConfigurationLimitExceeded,
               "the audit trail has no room now for the records of the startup settings", "",
               "Retry later; the operator can see why in the log.");
    return false;
  }
  for (const JudgedStartupSetting& s : j.allowed) {
    audit_.StartupSetting(s.statement, s.decision.rule, s.fingerprint);
  }
  return true;
}

void Session::ProvisionRole() {
  if (!role_.temporary()) {
    StartBackend();
    return;
  }
  phase_ = Phase::kProvisioning;
  RoleProvisioner* provisioner = shard_.role_provisioner();
  Shard* shard = &shard_;
  const uint32_t slot = slot_, generation = generation_;
  RoleRequest request =
      role_.Request(*target_, identity_ends_unix_, audit_.session_id(), identity_.subject);
  ProvisionTarget target = request.target;
  // On the provisioner's thread: the answer goes to the shard as a message.
  provisioner->Create(std::move(request), [=](absl::StatusOr<DatabaseLogin> login) {
    shard->Post([=](Shard& s) mutable {
      const bool delivered = s.WithSession(slot, generation, [&](Session& session) {
        session.OnRoleProvisioned(std::move(login), target);
      });
      // The session ended meanwhile: nobody will use the role.
      if (!delivered && login.ok()) provisioner->Release(target, login->user);
    });
  });
}

void Session::OnRoleProvisioned(absl::StatusOr<DatabaseLogin> login, ProvisionTarget target) {
  if (login.ok()) role_.Adopt(*std::move(login), std::move(target));
  if (closed_ || phase_ != Phase::kProvisioning) return;
  if (!login.ok()) {
    PGB_LOG(kWarning) << Describe() << ": " << login.status().message();
    FailClient(login.status());
    return;
  }
  StartBackend();
}

void Session::StartBackend() {
  const int family = target_->address.ss_family;
  const int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    FailClient(sqlstate::kSqlclientUnableToEstablish,
               Cat("could not create a socket for target \"", target_->config->name,
                   "\": ", strerror(errno)));
    return;
  }
  if (family != AF_UNIX) {
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  backend_.Attach(fd);
  backend_started_ns_ = shard_.now_ns();
  phase_ = Phase::kBackendConnect;
  deadline_ns_ = std::min(
      deadline_ns_, shard_.now_ns() + absl::ToInt64Nanoseconds(target_->config->connect_timeout));
  io_uring_sqe* sqe = shard_.ring().GetSqe();
  io_uring_prep_connect(sqe, fd, reinterpret_cast<const sockaddr*>(&target_->address),
                        target_->address_length);
  io_uring_sqe_set_data64(sqe, UserData::Make(Op::kBackendConnect, slot_, generation_));
  ++ops_in_flight_;
}

void Session::OnBackendConnected(int res) {
  if (closed_ || !backend_.open() || phase_ != Phase::kBackendConnect) return;
  if (res < 0) {
    PGB_LOG(kWarning) << Describe() << ": cannot connect to the database: " << strerror(-res);
    FailClient(
        sqlstate::kSqlclientUnableToEstablish,
        Cat("could not connect to target \"", target_->config->name, "\": ", strerror(-res)));
    return;
  }
  deadline_ns_ = shard_.now_ns() + absl::ToInt64Nanoseconds(runtime_->config.auth_timeout);
  if (target_->tls) {
    std::string request;
    proto::AppendSslRequest(request);
    WriteOwned(Side::kBackend, std::move(request));
    phase_ = Phase::kBackendSslResponse;
    Flush(Side::kBackend);
    ArmRecv(Side::kBackend);
    return;
  }
  SendBackendStartup();
}

void Session::SendBackendStartup() {
  role_.NameApplication(identity_.subject, application_name_, &forwarded_params_);
  const StartupSettings params =
      BackendStartupParameters(role_.name(), target_->config->database, forwarded_params_,
                               BackendSettings(*scope_), &startup_search_path_);
  StartupSettings().swap(forwarded_params_);
  std::string packet;
  proto::AppendStartupMessage(packet, proto::kProtocolVersion3, params);
  WriteOwned(Side::kBackend, std::move(packet));
  // A scope's own role has its own password: the target's cached keys are not its.
  backend_login_ = std::make_unique<BackendLogin>(
      *target_->config, role_.login() ? nullptr : shard_.scram_cache(*target_), Describe(),
      role_.login());
  phase_ = Phase::kBackendAuth;
  Flush(Side::kBackend);
  ArmRecv(Side::kBackend);
}

void Session::ProcessBackendLogin() {
  std::string& in = backend_.staging();
  if (phase_ == Phase::kBackendSslResponse) {
    const char answer = in[0];
    if (answer != 'S') {
      FailClient(sqlstate::kSqlclientUnableToEstablish,
                 Cat("target \"", target_->config->name,
                     "\" does not accept TLS, but the gateway requires it for this target"));
      return;
    }
    if (in.size() != 1) {  // CVE-2021-23222: nothing may precede the handshake
      FailClient(sqlstate::kProtocolViolation,
                 "the database sent unencrypted data after accepting TLS");
      return;
    }
    in.clear();
    const std::string& name = target_->config->tls_server_name.empty()
                                  ? target_->config->host
                                  : target_->config->tls_server_name;
    absl::StatusOr<std::unique_ptr<proto::TlsStream>> tls =
        proto::TlsStream::Client(*target_->tls, name);
    if (!tls.ok()) {
      FailClient(sqlstate::kSqlclientUnableToEstablish,
                 Cat("cannot start TLS to target \"", target_->config->name, "\""));
      return;
    }
    backend_.StartTls(*std::move(tls));
    phase_ = Phase::kBackendTlsHandshake;
    absl::StatusOr<proto::TlsStream::Progress> progress = backend_.tls()->Handshake();
    if (!progress.ok()) {
      FailClient(sqlstate::kSqlclientUnableToEstablish,
                 Cat("TLS to target \"", target_->config->name,
                     "\" failed: ", progress.status().message()));
      return;
    }
    Flush(Side::kBackend);
    ArmRecv(Side::kBackend);
    return;
  }
  while (!closed_ && phase_ != Phase::kClosing && phase_ != Phase::kRelay) {
    const proto::MessageResult m =
        proto::DecodeMessage(in, Direction::kBackend, kMaxBackendLoginMessage);
    if (m.status == proto::DecodeStatus::kNeedMore) break;
    if (m.status == proto::DecodeStatus::kError) {
      PGB_LOG(kWarning) << Describe()
                        << ": bad message from the database during login: " << m.error;
      FailClient(sqlstate::kProtocolViolation, "the database sent an invalid message during login");
      return;
    }
    const std::string_view raw(in.data(), m.message.total_size);
    std::string reply;
    absl::StatusOr<bool> ready =
        backend_login_->OnMessage(m.message.type, m.message.body, raw, reply);
    if (!ready.ok()) {
      FailClient(ready.status());
      return;
    }
    if (!reply.empty()) WriteOwned(Side::kBackend, std::move(reply));
    if (*ready) {
      if (!CompleteBackendLogin(raw)) return;
      in.erase(0, m.message.total_size);
      EnterRelay();
      return;
    }
    in.erase(0, m.message.total_size);
  }
  if (!closed_ && phase_ != Phase::kRelay && phase_ != Phase::kClosing) {
    Flush(Side::kBackend);
    ArmRecv(Side::kBackend);
  }
}

// The database is ready: the client gets what the login collected, the
// backend's real pid with the gateway's own secret key (never the backend's),
// and the ReadyForQuery.
bool Session::CompleteBackendLogin(std::string_view ready) {
  backend_pid_ = backend_login_->backend_pid();
  backend_key_ = backend_login_->backend_key();
  // The cancel secret must be unguessable: without randomness, refuse.
  std::optional<int32_t> key = shard_.RegisterCancelKey(backend_pid_, slot_);
  if (!key) {
    PGB_LOG(kError) << Describe() << ": no randomness for the cancel key";
    FailClient(sqlstate::kInternalError, "the gateway could not create a cancel key");
    return false;
  }
  gateway_key_ = *key;
  cancel_key_registered_ = true;
  std::string to_client = backend_login_->TakeForClient();
  backend_login_.reset();
  proto::AppendBackendKeyData(to_client, backend_pid_, gateway_key_);
  to_client.append(ready);
  WriteOwned(Side::kClient, std::move(to_client));
  return true;
}

void Session::EnterRelay() {
  phase_ = Phase::kRelay;
  deadline_ns_ = 0;
  relay_ = std::make_unique<Relay>(
      std::move(policy_), *scope_, identity_, target_->config->name, role_.name(),
      shard_.analysis_cache(),
      Relay::Limits{runtime_->config.max_message_size, runtime_->config.max_statement_size}, audit_,
      static_cast<RelaySink&>(*this), &holds_);
  {
    ShardMetrics& metrics = shard_.metrics();
    relay_->gate().CountInto(&metrics);
    metrics.backend_connect.Observe(shard_.now_ns() - backend_started_ns_);
    metrics.CountLogin(policy::AuthMethodName(identity_.method), LoginOutcome::kSuccess);
    ++metrics.sessions_started[{target_->config->name, scope_->name}];
  }
  relay_->UseCatalog(runtime_->catalogs, target_->index);
  audit_.SetSession(&identity_, target_->config->name, role_.name(), application_name_);
  audit_.StartupSettingsDone();
  audit_.Event(audit::AuditKind::kAuthOk);
  if (runtime_->config.recording.ModeFor(scope_->name) != recording::RecordMode::kOff) {
    StartRecording();
    if (recording_ == nullptr) return;  // refused: no recorder
  }
  scope_ = nullptr;  // the relay's gate owns the policy now
  if (!startup_search_path_.empty()) {
    relay_->RememberSearchPath(startup_search_path_);
    std::string().swap(startup_search_path_);
  }
  PGB_LOG(kInfo) << Describe() << ": session established";
  // Bytes that arrived behind the login messages are relayed like any others.
  for (Side side : {Side::kBackend, Side::kClient}) {
    std::string leftover;
    leftover.swap(ep(side).staging());
    if (!leftover.empty()) RelayChunk(side, leftover.data(), leftover.size(), -1);
    if (closed_ || phase_ != Phase::kRelay) return;
  }
  Flush(Side::kClient);
  Flush(Side::kBackend);
  ArmRecv(Side::kClient);
  ArmRecv(Side::kBackend);
}

// ---------------------------------------------------------------------------
// Relay

void Session::RelayChunk(Side from, const char* data, size_t n, int32_t bid) {
  if (from == Side::kClient && IdentityExpired()) {
    // Nothing the client sends after its identity expired reaches the
    // database, whatever the protocol state (a pipeline without Sync, COPY).
    if (bid >= 0) Recycle(bid);
    EndIdentityExpired();
    return;  // the client is not read again: the session is ending
  }
  (from == Side::kClient ? relayed_from_client_ : relayed_from_backend_) += n;
  // The client's side is recorded as it sent it (a refused statement too);
  // what reaches the client is recorded as it goes (Forward, Send).
  if (from == Side::kClient) Record(Side::kBackend, data, n);
  ShardMetrics& metrics = shard_.metrics();
  (from == Side::kClient ? metrics.bytes_from_client : metrics.bytes_from_backend) += n;
  const uint64_t judged = relay_->gate().judged();
  absl::Status s = relay_->Feed(from, data, n, bid);
  if (from == Side::kClient && relay_->gate().judged() != judged) {
    // One clock read per chunk with statements in it: the gateway's own time.
    statement_since_ns_ = shard_.now_ns();
    metrics.gate_latency.Observe(shard_.FreshNs() - statement_since_ns_);
  }
  if (recording_ != nullptr && recording_->attention() && !CheckRecording()) return;
  if (!s.ok()) {
    const proto::ErrorFields why = proto::ErrorFieldsOf(s, "FATAL");
    if (from == Side::kClient) {
      PGB_LOG(kWarning) << Describe() << ": " << why.message;
      Flush(Side::kBackend);  // the well-formed messages before the bad one
    } else {
      PGB_LOG(kError) << Describe() << ": " << why.message
                      << (why.detail.empty() ? "" : Cat(" (", why.detail, ")"));
    }
    FailClient(s);
    return;
  }
  Flush(Other(from));
  if (from == Side::kBackend && IdentityExpired()) {
    EndIdentityExpired();  // or, mid-message, read on to its end
    if (phase_ != Phase::kRelay) return;
  }
  if (shutting_down_ && from == Side::kBackend && IdleBetweenTransactions()) {
    Terminate(sqlstate::kAdminShutdown,
              "terminating connection because the gateway is shutting down");
    return;
  }
  KeepReading(from);
}

void Session::Forward(Side to, const char* data, size_t n, int32_t buffer_id) {
  if (to == Side::kClient) Record(to, data, n);
  WriteReceived(to, data, n, buffer_id);
}

void Session::Send(Side to, std::string bytes) {
  if (to == Side::kClient) Record(to, bytes.data(), bytes.size());
  WriteOwned(to, std::move(bytes));
}

void Session::StartRecording() {
  recording::RecorderShard* recorder = shard_.recorder();
  if (recorder == nullptr) {  // [recording] was added by a reload: it takes a restart
    FailClient(sqlstate::kConfigurationLimitExceeded,
               "this session must be recorded, but the gateway has no session recorder",
               "The [recording] table takes effect at the next restart.");
    return;
  }
  recording::RecordingHeader header;
  header.session_id = audit_.session_id();
  header.start_us = started_unix_us_;
  header.identity = &identity_;
  header.scope = scope_->name;
  header.target = target_->config->name;
  header.role = target_->config->user;
  header.application_name = application_name_;
  header.client = peer_;
  header.gateway_version = PGB_VERSION;
  header.mode = runtime_->config.recording.ModeFor(scope_->name);
  recording_ = std::make_unique<recording::SessionRecording>(
      *recorder,
      shard_.audit() != nullptr ? shard_.audit()->parameters() : audit::ParameterMode::kOff,
      header);
}

bool Session::CheckRecording() {
  for (const std::string& incident : recording_->TakeIncidents()) {
    PGB_LOG(kWarning) << Describe() << ": " << incident;
    audit_.Event(audit::AuditKind::kRecording, incident);
  }
  if (!recording_->must_end() || phase_ != Phase::kRelay) return true;
  FailClient(sqlstate::kConfigurationLimitExceeded,
             "the session recording cannot keep up; the session was ended",
             "The gateway's recordings directory is full or too slow "
             "(recording.on_overflow = \"end-session\").");
  return false;
}

void Session::Recycle(int32_t buffer_id) {
  shard_.buffers().Recycle(static_cast<uint16_t>(buffer_id));
}

void Session::OnRuntimeChanged(const std::shared_ptr<const Runtime>& runtime) {
  if (!relay_) return;
  // A local user's groups come from the file: take them from the new one (a
  // user no longer listed keeps no groups).
  if (identity_.method == policy::AuthMethod::kLocalPassword) {
    const UserRuntime* user = runtime->FindUser(identity_.subject);
    identity_.groups = user ? user->config->groups : std::vector<std::string>();
  }
  relay_->UsePolicy(runtime->config.policy, identity_);
  const TargetRuntime* target = runtime->FindTarget(target_->config->name);
  relay_->UseCatalog(target ? runtime->catalogs : nullptr, target ? target->index : 0);
}

bool Session::IdleBetweenTransactions() const { return phase_ == Phase::kRelay && relay_->Idle(); }

bool Session::IdentityExpired() const {
  return identity_ends_unix_ != 0 && absl::ToUnixSeconds(absl::Now()) >= identity_ends_unix_;
}

// Whatever the protocol state: mid-pipeline without Sync, mid-COPY, idle in a
// transaction, a statement running. Closing the database connection (with a
// Terminate where the client's stream is at a message boundary, never a Sync
// or a COMMIT) makes the database roll back what was not committed; the
// statements awaiting their answer get their completion records (RecordEnd).
// The one FATAL must go between two of the database's messages: while one is
// half relayed, the session waits for its end (the client's bytes are held
// back meanwhile, so nothing more reaches the database), but not longer than
// kFlushGraceNs; then it closes without the FATAL.
void Session::EndIdentityExpired() {
  if (closed_ || phase_ != Phase::kRelay) return;
  if (!AtBoundary(Side::kBackend) &&
      absl::ToUnixSeconds(absl::Now()) < identity_ends_unix_ + kFlushGraceNs / 1'000'000'000) {
    return;
  }
  const std::string expired_at = absl::FormatTime(
      "%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(identity_.expires_at_unix), absl::UTCTimeZone());
  audit_.Event(audit::AuditKind::kTokenExpired, Cat("expired at ", expired_at));
  Terminate(sqlstate::kInvalidAuthorizationSpecification,
            Cat("your ", policy::AuthMethodName(identity_.method), " expired at ", expired_at,
                "; reconnect with a new ", policy::AuthMethodName(identity_.method)));
}

// ---------------------------------------------------------------------------
// Endings

void Session::FailClient(const char* code, std::string message, std::string detail,
                         std::string hint) {
  if (closed_ || phase_ == Phase::kClosing) return;
  // A wrong password, SCRAM proof or token (not a missing target or scope,
  // which come after a good credential).
  const bool bad_credential = phase_ == Phase::kClientLogin &&
                              client_login_->awaiting_credential() &&
                              (strcmp(code, sqlstate::kInvalidPassword) == 0 ||
                               strcmp(code, sqlstate::kInvalidAuthorizationSpecification) == 0);
  if (bad_credential) {
    std::string_view address = peer_;
    address = address.substr(0, address.rfind(':'));
    shard_.login_throttle().OnFailure(runtime_->config.login_throttle, throttle_address_,
                                      client_login_->user_name(), shard_.now_ns(), address);
  }
  if (phase_ != Phase::kRelay) {
    audit_.StartupSettingsDone(Cat("the login failed: ", message));
    shard_.metrics().CountLogin(
        client_login_ ? client_login_->method_name() : std::string_view("none"),
        bad_credential ? LoginOutcome::kBadCredential : LoginOutcome::kRefused);
    audit_.Event(audit::AuditKind::kAuthFailed, message, user_name_);
  } else {
    end_reason_ = message;
  }
  std::string bytes;
  proto::AppendErrorResponse(bytes, proto::ErrorFields{"FATAL", code, std::move(message),
                                                       std::move(detail), std::move(hint)});
  if (phase_ == Phase::kRelay) Record(Side::kClient, bytes.data(), bytes.size());
  if (client_.open()) WriteOwned(Side::kClient, std::move(bytes));
  CloseEndpoint(Side::kBackend);
  CloseAfterFlush();
}

void Session::FailClient(const absl::Status& failure) {
  proto::ErrorFields fields = proto::ErrorFieldsOf(failure, "FATAL");
  FailClient(fields.sqlstate.c_str(), std::move(fields.message), std::move(fields.detail),
             std::move(fields.hint));
}

void Session::Terminate(const char* code, std::string message) {
  if (closed_ || phase_ == Phase::kClosing) return;
  end_reason_ = message;
  PGB_LOG(kInfo) << Describe() << ": " << message;
  // A Terminate or FATAL may only go where the stream is at a message boundary.
  if (backend_.open() && AtBoundary(Side::kClient)) {
    std::string bye;
    proto::AppendTerminate(bye);
    WriteOwned(Side::kBackend, std::move(bye));
    backend_.CloseAfterFlush();
    Flush(Side::kBackend);
  }
  if (AtBoundary(Side::kBackend) || phase_ != Phase::kRelay) {
    std::string bytes;
    proto::AppendErrorResponse(bytes,
                               proto::ErrorFields{"FATAL", code, std::move(message), "", ""});
    if (phase_ == Phase::kRelay) Record(Side::kClient, bytes.data(), bytes.size());
    WriteOwned(Side::kClient, std::move(bytes));
  }
  CloseAfterFlush();
}

void Session::CloseAfterFlush() {
  login_held_ = false;  // a held answer goes out before the final message
  phase_ = Phase::kClosing;
  deadline_ns_ = shard_.now_ns() + kFlushGraceNs;
  client_.CloseAfterFlush();
  Flush(Side::kClient);
  if (backend_.open()) {
    backend_.CloseAfterFlush();
    Flush(Side::kBackend);
  }
}

void Session::CloseEndpoint(Side side) {
  Endpoint& e = ep(side);
  if (!e.open()) return;
  e.Shutdown(side == Side::kBackend && phase_ == Phase::kBackendConnect);
  if (!client_.open() && !backend_.open()) Close();
}

void Session::RecordEnd() {
  if (audit_.end_recorded()) return;
  if (relay_) {
    const std::string_view reason = !end_reason_.empty() ? std::string_view(end_reason_)
                                    : ClientTerminated() ? "client terminated the session"
                                                         : "connection closed";
    relay_->EndSession(reason);
    std::optional<recording::SessionRecording::Summary> recorded;
    if (recording_ != nullptr) {
      recorded = recording_->Finish(reason);
      CheckRecording();
    }
    audit_.Disconnect(reason, relayed_from_client_, relayed_from_backend_,
                      recorded ? &*recorded : nullptr);
  } else {
    audit_.StartupSettingsDone(end_reason_.empty() ? "closed before login" : end_reason_);
    audit_.Disconnect(end_reason_.empty() ? "closed before login" : end_reason_, 0, 0);
  }
}

void Session::Close() {
  if (closed_) return;
  closed_ = true;
  login_held_ = false;
  if (login_timer_armed_) {  // the session is freed once the timer's completion came
    io_uring_sqe* sqe = shard_.ring().GetSqe();
    io_uring_prep_timeout_remove(sqe, UserData::Make(Op::kLoginDelay, slot_, generation_), 0);
    io_uring_sqe_set_data64(sqe, UserData::Make(Op::kIgnore, 0, 0));
  }
  RecordEnd();
  holds_.WithdrawAll(end_reason_.empty() ? "the session ended" : end_reason_);
  CloseEndpoint(Side::kClient);
  CloseEndpoint(Side::kBackend);
  if (cancel_key_registered_) {
    shard_.UnregisterCancelKey(backend_pid_, gateway_key_);
    cancel_key_registered_ = false;
  }
  PGB_LOG(kDebug) << Describe() << ": closed";
}

void Session::OnTick(int64_t now_ns) {
  if (IdentityExpired()) EndIdentityExpired();
  if (recording_ != nullptr && !closed_) {
    recording_->Tick();
    if (recording_->attention()) CheckRecording();
  }
  if (closed_ || deadline_ns_ == 0 || now_ns < deadline_ns_) return;
  switch (phase_) {
    case Phase::kClosing:
      Close();
      return;
    case Phase::kRelay:
      Terminate(sqlstate::kAdminShutdown,
                "terminating connection because the gateway is shutting down");
      deadline_ns_ = now_ns + kFlushGraceNs;
      return;
    case Phase::kBackendConnect:
      PGB_LOG(kWarning) << Describe() << ": connecting to the database timed out";
      FailClient(sqlstate::kSqlclientUnableToEstablish,
                 Cat("timed out connecting to target \"", target_->config->name, "\""));
      return;
    default:
      PGB_LOG(kInfo) << Describe() << ": login timed out";
      FailClient(sqlstate::kProtocolViolation, "authentication timed out", "",
                 "The client must finish logging in within gateway.auth_timeout.");
      return;
  }
}

void Session::BeginShutdown(int64_t deadline_ns) {
  if (closed_) return;
  shutting_down_ = true;
  if (phase_ != Phase::kRelay) {
    if (phase_ != Phase::kClosing) {
      Terminate(sqlstate::kAdminShutdown,
                "terminating connection because the gateway is shutting down");
    }
    return;
  }
  if (IdleBetweenTransactions()) {
    Terminate(sqlstate::kAdminShutdown,
              "terminating connection because the gateway is shutting down");
    return;
  }
  deadline_ns_ = deadline_ns;
}

bool Session::AcceptsCancel() const { return phase_ == Phase::kRelay && !closed_; }

void Session::OnApprovalEvent(uint64_t hold, const approvals::ApprovalEvent& event) {
  if (closed_ || phase_ != Phase::kRelay) return;
  relay_->OnApprovalEvent(hold, event);
  Flush(Side::kClient);
  Flush(Side::kBackend);
}

bool Session::CancelHeld() {
  if (closed_ || phase_ != Phase::kRelay || !relay_->CancelHeld()) return false;
  Flush(Side::kBackend);
  return true;
}

// ---------------------------------------------------------------------------
// The operator's view (core/control_plane.h)

SessionInfo Session::Info(int64_t now_ns) const {
  SessionInfo info;
  info.id = audit_.session_id();
  info.shard = shard_.index();
  info.client = peer_;
  info.started_unix_us = started_unix_us_;
  info.backend_pid = backend_pid_;
  info.bytes_from_client = relayed_from_client_;
  info.bytes_from_backend = relayed_from_backend_;
  if (target_ != nullptr) {
    info.target = target_->config->name;
    info.role = role_.name().empty() ? target_->config->user : role_.name();
  }
  switch (phase_) {
    case Phase::kClientLogin:
      info.state = "login";
      info.subject = user_name_;  // as the client named it: not verified yet
      return info;
    case Phase::kProvisioning:
    case Phase::kBackendConnect:
    case Phase::kBackendSslResponse:
    case Phase::kBackendTlsHandshake:
    case Phase::kBackendAuth:
      info.state = "connecting";
      break;
    case Phase::kRelay:
      info.state = !relay_->BetweenStatements() ? "active"
                   : relay_->Idle()             ? "idle"
                                                : "idle in transaction";
      break;
    case Phase::kClosing:
      info.state = "closing";
      break;
  }
  info.subject = identity_.subject;
  info.method = policy::AuthMethodName(identity_.method);
  info.issuer = identity_.issuer;
  info.scope = std::string(TargetAndScope().second);
  if (relay_ != nullptr && relay_->gate().judged() > 0) {
    std::string_view text = relay_->gate().last_statement();
    // Cut at a whole character: the text was cut at a byte count.
    while (!text.empty() && !IsValidUtf8(text)) text.remove_suffix(1);
    info.statement = std::string(text);
    info.statement_since_unix_us =
        absl::ToUnixMicros(absl::Now()) - (now_ns - statement_since_ns_) / 1000;
  }
  return info;
}

std::pair<std::string_view, std::string_view> Session::TargetAndScope() const {
  std::string_view target = target_ != nullptr ? std::string_view(target_->config->name) : "";
  const policy::Scope* scope = relay_ != nullptr ? relay_->gate().scope() : scope_;
  return {target, scope != nullptr ? std::string_view(scope->name) : std::string_view("(none)")};
}

void Session::EndByOperator(std::string_view by) {
  if (closed_ || phase_ == Phase::kClosing) return;
  ++shard_.metrics().sessions_ended_by_operator;
  Terminate(sqlstate::kAdminShutdown,
            Cat("terminating connection due to administrator command (ended by ", by, ")"));
}

}  // namespace pgb
