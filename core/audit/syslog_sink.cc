#include "core/audit/syslog_sink.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/log.h"
#include "base/status_macros.h"
#include "core/audit/record.h"

namespace pgb::audit {
namespace {

// RFC 5424 HOSTNAME / APP-NAME: printable US-ASCII, no spaces, bounded.
std::string HeaderField(std::string_view text, size_t max) {
  std::string out;
  for (char c : text.substr(0, max)) out += (c > 32 && c < 127) ? c : '_';
  return out.empty() ? "-" : out;
}

absl::Status ErrnoStatus(std::string_view what) {
  return absl::UnavailableError(std::string(what) + ": " + std::strerror(errno));
}

}  // namespace

SyslogSink::SyslogSink(std::string name, SyslogSinkConfig config)
    : name_(std::move(name)), config_(std::move(config)) {
  std::string hostname = config_.hostname;
  if (hostname.empty()) {
    char buffer[256] = {};
    ::gethostname(buffer, sizeof(buffer) - 1);
    hostname = buffer;
  }
  header_suffix_ = " " + HeaderField(hostname, 255) + " " + HeaderField(config_.app_name, 48) +
                   " " + std::to_string(::getpid()) + " audit - ";
}

SyslogSink::~SyslogSink() { Disconnect(); }

std::string SyslogSink::Format(std::string_view line) const {
  std::string out = "<" + std::to_string(config_.facility * 8 + 6) + ">1 ";
  AppendTimestamp(AuditClockMicros(), &out);
  out += header_suffix_;
  out.append(line);
  return out;
}

void SyslogSink::Disconnect() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

absl::Status SyslogSink::Connect() {
  sockaddr_storage address = {};
  socklen_t length = 0;
  int type = SOCK_DGRAM;
  if (config_.transport == SyslogTransport::kUnix) {
    sockaddr_un un = {};
    un.sun_family = AF_UNIX;
    if (config_.socket_path.size() >= sizeof(un.sun_path)) {
      return absl::InvalidArgumentError("syslog socket path too long");
    }
    std::memcpy(un.sun_path, config_.socket_path.data(), config_.socket_path.size());
    std::memcpy(&address, &un, sizeof(un));
    length = sizeof(un);
  } else {
    if (config_.transport == SyslogTransport::kTcp) type = SOCK_STREAM;
    sockaddr_in in = {};
    sockaddr_in6 in6 = {};
    if (::inet_pton(AF_INET, config_.host.c_str(), &in.sin_addr) == 1) {
      in.sin_family = AF_INET;
      in.sin_port = htons(config_.port);
      std::memcpy(&address, &in, sizeof(in));
      length = sizeof(in);
    } else if (::inet_pton(AF_INET6, config_.host.c_str(), &in6.sin6_addr) == 1) {
      in6.sin6_family = AF_INET6;
      in6.sin6_port = htons(config_.port);
      std::memcpy(&address, &in6, sizeof(in6));
      length = sizeof(in6);
    } else {
      return absl::InvalidArgumentError("syslog host is not an IP address");
    }
  }
  fd_ = ::socket(address.ss_family, type | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return ErrnoStatus("syslog socket");
  const timeval timeout{5, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), length) != 0) {
    absl::Status status = ErrnoStatus("syslog connect");
    Disconnect();
    return status;
  }
  if (type == SOCK_STREAM) {
    // With no listener on a loopback port inside the ephemeral range, TCP
    // can connect a socket to itself (simultaneous open): that is "down".
    sockaddr_storage local = {}, peer = {};
    socklen_t local_length = sizeof(local), peer_length = sizeof(peer);
    if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &local_length) == 0 &&
        ::getpeername(fd_, reinterpret_cast<sockaddr*>(&peer), &peer_length) == 0 &&
        local_length == peer_length && std::memcmp(&local, &peer, local_length) == 0) {
      Disconnect();
      return absl::UnavailableError("syslog connect: no listener (connected to itself)");
    }
  }
  return absl::OkStatus();
}

// A TCP receiver that closed (or reset) the connection has left a FIN, an
// RST or stray bytes on our socket: readable means "reconnect".
bool SyslogSink::PeerClosed() const {
  if (config_.transport != SyslogTransport::kTcp) return false;
  pollfd p{fd_, POLLIN | POLLRDHUP, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLRDHUP | POLLERR | POLLHUP)) != 0;
}

absl::Status SyslogSink::SendAll(std::string_view frames) {
  for (size_t done = 0; done < frames.size();) {
    const ssize_t n = ::send(fd_, frames.data() + done, frames.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      absl::Status status = ErrnoStatus("syslog send");
      Disconnect();
      replay_ = true;
      return status;
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

void SyslogSink::RememberSent(std::string frames) {
  const absl::Time now = absl::Now();
  recent_bytes_ += frames.size();
  recent_.push_back({now, std::move(frames)});
  while (recent_.size() > 1 &&
         (recent_bytes_ > kReplayMaxBytes || recent_.front().sent < now - kReplayWindow)) {
    recent_bytes_ -= recent_.front().frames.size();
    recent_.pop_front();
  }
}

absl::Status SyslogSink::Deliver(std::string_view lines) {
  if (fd_ >= 0 && PeerClosed()) {
    Disconnect();
    replay_ = true;
  }
  if (fd_ < 0) {
    if (absl::Status status = Connect(); !status.ok()) return status;
  }
  if (replay_ && config_.transport == SyslogTransport::kTcp) {
    // What the last connection carried just before it broke may have sat
    // unread in the receiver's socket buffer when it died: send it again.
    std::string frames;
    for (const Sent& sent : recent_) frames += sent.frames;
    PGB_RETURN_IF_ERROR(SendAll(frames));
    PGB_LOG(kInfo) << "audit: sink " << name_ << ": sent again the " << frames.size()
                   << " bytes sent just before the receiver went away";
  }
  replay_ = false;
  std::string frames;
  while (!lines.empty()) {
    const size_t end = lines.find('\n');
    const std::string_view line = lines.substr(0, end);
    lines.remove_prefix(end == std::string_view::npos ? lines.size() : end + 1);
    const std::string message = Format(line);
    if (config_.transport == SyslogTransport::kTcp) {
      frames += std::to_string(message.size());
      frames += ' ';
      frames += message;
      continue;
    }
    if (::send(fd_, message.data(), message.size(), MSG_NOSIGNAL) < 0) {
      absl::Status status = ErrnoStatus("syslog send");
      Disconnect();
      return status;
    }
  }
  PGB_RETURN_IF_ERROR(SendAll(frames));
  if (config_.transport == SyslogTransport::kTcp) RememberSent(std::move(frames));
  return absl::OkStatus();
}

absl::Status SyslogSink::Close() {
  Disconnect();
  return absl::OkStatus();
}

}  // namespace pgb::audit
