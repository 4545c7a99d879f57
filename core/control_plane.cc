#include "core/control_plane.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>

#include "base/file_read.h"
#include "base/json_text.h"
#include "base/log.h"
#include "base/prometheus_text.h"
#include "base/str_cat.h"
#include "base/thread_name.h"
#include "core/approvals/approval_api.h"
#include "core/endpoint.h"
#include "core/metrics.h"
#include "httplib.h"

#ifndef PGB_VERSION
#define PGB_VERSION "unknown"
#endif

namespace pgb {
namespace {

// How long a request waits for the shards' answers: a shard busy for longer
// is left out of the answer (the metrics say how many answered).
constexpr auto kShardAnswerTimeout = std::chrono::seconds(2);
// The admin socket's request: one line.
constexpr size_t kMaxAdminRequest = 4096;

// Whether a TCP connection to `target` opens within `timeout`.
bool Reachable(const TargetRuntime& target, absl::Duration timeout) {
  const int fd = ::socket(target.address.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return false;
  bool up = false;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&target.address), target.address_length) ==
      0) {
    up = true;
  } else if (errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) == 1) {
      int err = 0;
      socklen_t len = sizeof(err);
      up = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
    }
  }
  ::close(fd);
  return up;
}

std::string OperatorName(uid_t uid) {
  passwd pw{};
  passwd* found = nullptr;
  char buffer[1024];
  if (getpwuid_r(uid, &pw, buffer, sizeof(buffer), &found) == 0 && found != nullptr) {
    return Cat(found->pw_name, " (uid ", uid, ")");
  }
  return Cat("uid ", uid);
}

void WriteAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

// The bytes a request may take, request line, headers and body together.
// cpp-httplib 0.11 caps each header line (8 KiB) but not their number, so a
// client could send headers until memory runs out; this stream refuses to read
// more (the library answers 400 and closes).
constexpr size_t kMaxRequestBytes = 32 * 1024;

// A connection as cpp-httplib reads it, with what the library lacks: a cap on
// a request's bytes and a deadline for the whole request (a client that
// trickles a byte at a time is cut off at request_timeout, not held for a
// timeout per read). Plain TCP or TLS (OpenSSL).
class BoundedStream final : public httplib::Stream {
 public:
  BoundedStream(int fd, SSL* ssl) : fd_(fd), ssl_(ssl) {}
  // A new request: its byte budget and deadline start now.
  void StartRequest(absl::Time deadline) {
    received_ = 0;
    deadline_ = deadline;
  }
  bool is_readable() const override {
    return (ssl_ != nullptr && SSL_pending(ssl_) > 0) || Wait(POLLIN);
  }
  bool is_writable() const override { return Wait(POLLOUT); }
  ssize_t read(char* ptr, size_t size) override {
    if (received_ >= kMaxRequestBytes || !is_readable()) return -1;
    size = std::min(size, kMaxRequestBytes - received_);
    const ssize_t n =
        ssl_ != nullptr ? SSL_read(ssl_, ptr, static_cast<int>(size)) : ::recv(fd_, ptr, size, 0);
    if (n > 0) received_ += static_cast<size_t>(n);
    return n > 0 ? n : -1;
  }
  ssize_t write(const char* ptr, size_t size) override {
    if (!is_writable()) return -1;
    const ssize_t n = ssl_ != nullptr ? SSL_write(ssl_, ptr, static_cast<int>(size))
                                      : ::send(fd_, ptr, size, MSG_NOSIGNAL);
    return n > 0 ? n : -1;
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    Address(getpeername, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    Address(getsockname, ip, port);
  }
  int socket() const override { return fd_; }

 private:
  bool Wait(short events) const {
    const int64_t ms = absl::ToInt64Milliseconds(deadline_ - absl::Now());
    if (ms <= 0) return false;
    pollfd p{fd_, events, 0};
    return ::poll(&p, 1, static_cast<int>(std::min<int64_t>(ms, 60'000))) == 1 &&
           (p.revents & events) != 0;
  }
  void Address(int (*get)(int, sockaddr*, socklen_t*), std::string& ip, int& port) const {
    sockaddr_storage a{};
    socklen_t length = sizeof(a);
    ip.clear();
    port = 0;
    if (get(fd_, reinterpret_cast<sockaddr*>(&a), &length) != 0) return;
    if (a.ss_family != AF_INET && a.ss_family != AF_INET6) return;
    HostPort peer = HostPortOf(a);
    ip = std::move(peer.host);
    port = peer.port;
  }

  const int fd_;
  SSL* const ssl_;
  size_t received_ = 0;
  absl::Time deadline_ = absl::InfinitePast();
};

// cpp-httplib's server with each connection read through a BoundedStream
// (the library's own extension point: its SSLServer overrides the same
// function). `tls`: owned; null for plain HTTP.
class BoundedServer final : public httplib::Server {
 public:
  BoundedServer(SSL_CTX* tls, absl::Duration request_timeout)
      : tls_(tls), request_timeout_(request_timeout) {}
  ~BoundedServer() override {
    if (tls_ != nullptr) SSL_CTX_free(tls_);
  }

 private:
  bool process_and_close_socket(int sock) override {
    SSL* ssl = nullptr;
    bool ok = true;
    if (tls_ != nullptr) {
      // The handshake, blocking, each read and write at most request_timeout.
      const int64_t us = absl::ToInt64Microseconds(request_timeout_);
      const timeval t{static_cast<time_t>(us / 1'000'000),
                      static_cast<suseconds_t>(us % 1'000'000)};
      setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &t, sizeof(t));
      setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &t, sizeof(t));
      ssl = SSL_new(tls_);
      ok = ssl != nullptr && SSL_set_fd(ssl, sock) == 1 && SSL_accept(ssl) == 1;
    }
    if (ok) {
      BoundedStream stream(sock, ssl);
      for (size_t i = 0; i < keep_alive_max_count_; ++i) {
        if (i > 0) {  // a kept-alive connection: the next request must start in time
          stream.StartRequest(absl::Now() + absl::Seconds(keep_alive_timeout_sec_));
          if (!stream.is_readable()) break;
        }
        stream.StartRequest(absl::Now() + request_timeout_);
        bool closed = false;
        if (!process_request(stream, i + 1 == keep_alive_max_count_, closed,
                             [](httplib::Request&) {}) ||
            closed) {
          break;
        }
      }
    }
    if (ssl != nullptr) {
      if (ok) SSL_shutdown(ssl);
      SSL_free(ssl);
    }
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    return ok;
  }

  SSL_CTX* const tls_;
  const absl::Duration request_timeout_;
};

}  // namespace

std::string SessionsJson(const std::vector<SessionInfo>& sessions) {
  std::string out = "{\"sessions\":[";
  for (size_t i = 0; i < sessions.size(); ++i) {
    const SessionInfo& s = sessions[i];
    if (i > 0) out += ',';
    Append(out, "{\"id\":", s.id, ",\"shard\":", s.shard, ",\"subject\":", JsonString(s.subject),
           ",\"method\":", JsonString(s.method), ",\"issuer\":", JsonString(s.issuer),
           ",\"scope\":", JsonString(s.scope), ",\"target\":", JsonString(s.target),
           ",\"role\":", JsonString(s.role), ",\"client\":", JsonString(s.client),
           ",\"backend_pid\":", s.backend_pid, ",\"state\":", JsonString(s.state),
           ",\"statement\":", JsonString(s.statement));
    Append(out, ",\"statement_since\":",
           s.statement_since_unix_us == 0
               ? std::string("null")
               : JsonString(absl::FormatTime(absl::RFC3339_sec,
                                             absl::FromUnixMicros(s.statement_since_unix_us),
                                             absl::UTCTimeZone())),
           ",\"started\":",
           JsonString(absl::FormatTime(absl::RFC3339_sec, absl::FromUnixMicros(s.started_unix_us),
                                       absl::UTCTimeZone())),
           ",\"bytes_from_client\":", s.bytes_from_client,
           ",\"bytes_from_database\":", s.bytes_from_backend, "}");
  }
  out += "]}";
  return out;
}

ControlPlane::ControlPlane(const ControlConfig& config, Sources sources)
    : config_(config), sources_(sources) {}

ControlPlane::~ControlPlane() { Stop(); }

absl::StatusOr<std::unique_ptr<ControlPlane>> ControlPlane::Start(const ControlConfig& config,
                                                                  Sources sources) {
  std::unique_ptr<ControlPlane> cp(new ControlPlane(config, sources));
  if (!config.metrics_token_file.empty()) {
    absl::StatusOr<std::string> token = ReadSecretFile(config.metrics_token_file);
    if (!token.ok()) {
      return absl::Status(token.status().code(),
                          Cat("control.metrics_token_file: ", token.status().message()));
    }
    cp->metrics_token_ = *std::move(token);
  }
  if (config.port != 0) {
    SSL_CTX* tls = nullptr;
    if (!config.tls_cert_file.empty()) {
      tls = SSL_CTX_new(TLS_server_method());
      if (tls == nullptr || SSL_CTX_set_min_proto_version(tls, TLS1_2_VERSION) != 1 ||
          SSL_CTX_use_certificate_chain_file(tls, config.tls_cert_file.c_str()) != 1 ||
          SSL_CTX_use_PrivateKey_file(tls, config.tls_key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
          SSL_CTX_check_private_key(tls) != 1) {
        SSL_CTX_free(tls);
        return absl::InvalidArgumentError(
            "control: cannot load tls_cert / tls_key for the HTTPS server");
      }
    }
    cp->http_ = std::make_unique<BoundedServer>(tls, config.request_timeout);
    httplib::Server& http = *cp->http_;
    // Bounded: a fixed pool of workers; each request within request_timeout
    // and kMaxRequestBytes (BoundedServer); a kept-alive connection serves at
    // most 100 requests; no request has a body.
    const uint32_t threads = config.threads;
    http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    const auto timeout =
        std::chrono::microseconds(absl::ToInt64Microseconds(config.request_timeout));
    http.set_read_timeout(timeout);
    http.set_write_timeout(timeout);
    http.set_keep_alive_timeout(std::max<time_t>(1, absl::ToInt64Seconds(config.request_timeout)));
    http.set_keep_alive_max_count(100);
    http.set_payload_max_length(4096);
    // The library would add SO_REUSEPORT, letting another process of the
    // same user share the port and take some of its requests: not here.
    http.set_socket_options([](int sock) {
      const int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
    ControlPlane* self = cp.get();
    http.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("ok\n", "text/plain");
    });
    http.Get("/readyz", [self](const httplib::Request&, httplib::Response& res) {
      std::string why = self->NotReadyReasons();
      if (why.empty()) {
        res.set_content("ready\n", "text/plain");
      } else {
        res.status = 503;
        res.set_content(std::move(why), "text/plain");
      }
    });
    http.Get("/metrics", [self](const httplib::Request& req, httplib::Response& res) {
      if (!self->metrics_token_.empty()) {
        const std::string expected = Cat("Bearer ", self->metrics_token_);
        const std::string& given = req.get_header_value("Authorization");
        if (given.size() != expected.size() ||
            CRYPTO_memcmp(given.data(), expected.data(), given.size()) != 0) {
          res.status = 401;
          res.set_header("WWW-Authenticate", "Bearer");
          res.set_content("a bearer token is required\n", "text/plain");
          return;
        }
      }
      res.set_content(self->MetricsText(), std::string(kPrometheusContentType));
    });
    if (sources.approvals != nullptr) {
      approvals::AddApprovalRoutes(http, sources.approvals, sources.runtimes);
    }
    if (!http.bind_to_port(config.address, config.port)) {
      return absl::UnavailableError(Cat("control: cannot listen on ", config.address, ":",
                                        config.port, " (in use, or not an address of this host)"));
    }
    cp->http_thread_ = std::thread([self] {
      NameThisThread("pgb-control");
      self->http_->listen_after_bind();
    });
    PGB_LOG(kInfo) << "control plane on " << (config.tls_cert_file.empty() ? "http" : "https")
                   << "://" << config.address << ":" << config.port
                   << " (/metrics, /healthz, /readyz)";
  }
  if (!config.admin_socket.empty()) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, config.admin_socket.c_str(), config.admin_socket.size() + 1);
    // A socket left by a gateway that was killed is replaced; a live one is not.
    if (fd >= 0 && ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) {
      ::close(fd);
      return absl::AlreadyExistsError(
          Cat("control.admin_socket: ", config.admin_socket, " belongs to a running gateway"));
    }
    ::unlink(config.admin_socket.c_str());
    // Created with mode 0600 from the start: no moment where others may connect.
    const mode_t old_mask = ::umask(0177);
    const bool bound =
        fd >= 0 && ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
    ::umask(old_mask);
    if (!bound || ::listen(fd, 16) != 0) {
      const int err = errno;
      if (fd >= 0) ::close(fd);
      return absl::UnavailableError(
          Cat("control.admin_socket: cannot listen on ", config.admin_socket, ": ", strerror(err)));
    }
    ::chmod(config.admin_socket.c_str(), 0600);
    cp->admin_fd_ = fd;
    cp->admin_thread_ = std::thread([self = cp.get()] { self->ServeAdmin(); });
    PGB_LOG(kInfo) << "admin socket " << config.admin_socket << " (pgbastion sessions)";
  }
  cp->check_thread_ = std::thread([self = cp.get()] { self->CheckTargets(); });
  return cp;
}

void ControlPlane::Stop() {
  if (stopped_) return;
  stopped_ = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (http_) http_->stop();
  if (http_thread_.joinable()) http_thread_.join();
  if (admin_thread_.joinable()) admin_thread_.join();
  if (admin_fd_ >= 0) {
    ::close(admin_fd_);
    ::unlink(config_.admin_socket.c_str());
  }
  if (check_thread_.joinable()) check_thread_.join();
}

template <typename T>
std::vector<std::optional<T>> ControlPlane::AskShards(std::function<T(Shard&)> job) {
  struct Pending {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::optional<T>> answers;
    size_t left = 0;
  };
  const std::vector<Shard*>& shards = sources_.shards->shards;
  auto pending = std::make_shared<Pending>();
  pending->answers.resize(shards.size());
  pending->left = shards.size();
  for (size_t i = 0; i < shards.size(); ++i) {
    shards[i]->Post([pending, i, job](Shard& shard) {
      T answer = job(shard);
      std::lock_guard<std::mutex> lock(pending->mu);
      pending->answers[i] = std::move(answer);
      --pending->left;
      pending->cv.notify_all();
    });
  }
  std::unique_lock<std::mutex> lock(pending->mu);
  pending->cv.wait_for(lock, kShardAnswerTimeout, [&] { return pending->left == 0; });
  return pending->answers;  // a copy: late answers go to the shared state
}

std::string ControlPlane::MetricsText() {
  std::vector<std::optional<Shard::Report>> reports =
      AskShards<Shard::Report>([](Shard& shard) { return shard.MakeReport(false); });
  ShardMetrics total;
  ScrapeExtras extras;
  extras.version = PGB_VERSION;
  extras.shards = static_cast<int>(reports.size());
  for (const std::optional<Shard::Report>& r : reports) {
    if (!r) continue;
    ++extras.shards_answered;
    r->metrics.MergeInto(total);
    extras.connections_open += r->connections_open;
    for (const auto& [key, count] : r->sessions_open) extras.sessions_open[key] += count;
    extras.throttle_failures += r->throttle.failures;
    extras.throttle_delayed += r->throttle.delayed;
    extras.throttle_delay_ns += r->throttle.delay_ns;
    extras.throttle_bursts += r->throttle.bursts;
    extras.throttle_evicted += r->throttle.evicted;
    extras.throttle_tracked += r->throttle_tracked;
  }
  if (sources_.trail != nullptr) {
    const audit::AuditMetrics audit = sources_.trail->metrics();
    extras.audit = true;
    extras.audit_healthy = audit.healthy;
    extras.audit_queue_depth = audit.queue_depth;
    extras.audit_records_written = audit.records_written;
    extras.audit_records_lost = audit.records_dropped;
    extras.audit_spilled_bytes = audit.spilled_bytes;
    extras.audit_sink_errors = audit.sink_errors;
  }
  if (sources_.reloads != nullptr) {
    extras.reloads_ok = sources_.reloads->ok.load(std::memory_order_relaxed);
    extras.reloads_failed = sources_.reloads->failed.load(std::memory_order_relaxed);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    extras.targets_up = targets_;
  }
  return FormatMetrics(total, extras);
}

std::string ControlPlane::NotReadyReasons() {
  std::string why;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!checked_) why += "targets not checked yet\n";
    for (const auto& [name, up] : targets_) {
      if (!up) Append(why, "target ", name, " unreachable\n");
    }
  }
  if (sources_.trail != nullptr && !sources_.trail->healthy()) {
    why += "audit trail not accepting records\n";
  }
  return why;
}

void ControlPlane::CheckTargets() {
  NameThisThread("pgb-readiness");
  while (true) {
    const std::shared_ptr<const Runtime> runtime = sources_.runtimes->Current();
    std::vector<std::pair<std::string, bool>> results;
    for (const TargetRuntime& target : runtime->targets) {
      const bool up = Reachable(target, config_.check_timeout);
      results.emplace_back(target.config->name, up);
    }
    std::unique_lock<std::mutex> lock(mu_);
    for (const auto& [name, up] : results) {
      for (const auto& [old_name, was_up] : targets_) {
        if (old_name == name && was_up != up) {
          if (up) {
            PGB_LOG(kInfo) << "readiness: target " << name << " is reachable again";
          } else {
            PGB_LOG(kWarning) << "readiness: target " << name << " is unreachable";
          }
        }
      }
    }
    targets_ = std::move(results);
    checked_ = true;
    if (stop_cv_.wait_for(lock, absl::ToChronoNanoseconds(config_.check_interval),
                          [&] { return stopping_; })) {
      return;
    }
  }
}

std::vector<SessionInfo> ControlPlane::ListSessions() {
  std::vector<SessionInfo> all;
  for (auto& r : AskShards<Shard::Report>([](Shard& shard) { return shard.MakeReport(true); })) {
    if (!r) continue;
    for (SessionInfo& s : r->sessions) all.push_back(std::move(s));
  }
  return all;
}

std::vector<SessionInfo> ControlPlane::EndSessions(std::function<bool(const SessionInfo&)> matches,
                                                   std::string by) {
  std::vector<SessionInfo> all;
  for (auto& r : AskShards<std::vector<SessionInfo>>(
           [matches, by](Shard& shard) { return shard.EndSessions(matches, by); })) {
    if (!r) continue;
    for (SessionInfo& s : *r) all.push_back(std::move(s));
  }
  return all;
}

void ControlPlane::ServeAdmin() {
  NameThisThread("pgb-admin");
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    pollfd p{admin_fd_, POLLIN, 0};
    if (::poll(&p, 1, 200) != 1) continue;
    const int fd = ::accept4(admin_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    HandleAdmin(fd);
    ::close(fd);
  }
}

void ControlPlane::HandleAdmin(int fd) {
  ucred peer{};
  socklen_t length = sizeof(peer);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0 ||
      (peer.uid != 0 && peer.uid != ::geteuid())) {
    // The socket's mode keeps others out; this holds if its directory or
    // mode were changed.
    PGB_LOG(kWarning) << "admin socket: refused uid " << peer.uid;
    WriteAll(fd, "{\"error\":\"permission denied\"}\n");
    return;
  }
  const timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  std::string request;
  char buffer[512];
  while (request.find('\n') == std::string::npos && request.size() <= kMaxAdminRequest) {
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    request.append(buffer, static_cast<size_t>(n));
  }
  const size_t end = request.find('\n');
  if (end == std::string::npos || end > kMaxAdminRequest) {
    WriteAll(fd, "{\"error\":\"expected one request line of at most 4096 bytes\"}\n");
    return;
  }
  request.resize(end);
  std::string_view line = request;
  if (line == "list") {
    WriteAll(fd, Cat(SessionsJson(ListSessions()), "\n"));
    return;
  }
  if (line.substr(0, 10) == "approvals ") {
    WriteAll(fd, Cat(approvals::AdminApprovalsAnswer(sources_.approvals, line.substr(10),
                                                     OperatorName(peer.uid)),
                     "\n"));
    return;
  }
  // end <id|subject|target> <value>: the value is the rest of the line.
  if (line.substr(0, 4) == "end ") {
    line.remove_prefix(4);
    const size_t space = line.find(' ');
    const std::string_view field = line.substr(0, space);
    const std::string value(space == std::string_view::npos ? "" : line.substr(space + 1));
    std::function<bool(const SessionInfo&)> matches;
    if (field == "id") {
      matches = [value](const SessionInfo& s) { return Cat(s.id) == value; };
    } else if (field == "subject") {
      matches = [value](const SessionInfo& s) { return s.state != "login" && s.subject == value; };
    } else if (field == "target") {
      matches = [value](const SessionInfo& s) { return s.target == value; };
    }
    if (matches && !value.empty()) {
      const std::string by =
          Cat("operator ", OperatorName(peer.uid), " via pgbastion sessions end");
      std::vector<SessionInfo> ended = EndSessions(std::move(matches), by);
      PGB_LOG(kInfo) << "admin socket: " << OperatorName(peer.uid) << " ended " << ended.size()
                     << " session(s) by " << field;
      WriteAll(fd, Cat(SessionsJson(ended), "\n"));
      return;
    }
  }
  WriteAll(fd, "{\"error\":\"unknown request; expected: list | end id|subject|target VALUE\"}\n");
}

}  // namespace pgb
