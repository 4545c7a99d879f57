// Helpers shared by the audit trail tests: a temp directory with a signing
// key pair, a config with one file sink, reading a trail back, and a real TCP
// syslog receiver (RFC 6587 octet counting) that can be killed and restarted
// on the same port.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/audit/chain.h"
#include "core/audit/writer.h"
#include "gtest/gtest.h"

namespace pgb::audit::testing {

inline std::string MakeTempDir() {
  char pattern[] = "/tmp/pgb_audit_test.XXXXXX";
  return ::mkdtemp(pattern);
}

struct TrailDir {
  TrailDir() : dir(MakeTempDir()) {
    EXPECT_TRUE(GenerateKeyPairFiles(dir + "/audit.key", dir + "/audit.pub").ok());
  }
  ~TrailDir() { std::filesystem::remove_all(dir); }
  std::string path(std::string_view name) const { return dir + "/" + std::string(name); }

  AuditConfig Config(uint64_t checkpoint_every = 1000) const {
    AuditConfig config;
    config.enabled = true;
    config.ring_slots = 1024;
    config.signing_key = path("audit.key");
    config.checkpoint_every = checkpoint_every;
    config.spill_dir = path("spill");
    AuditSinkConfig file;
    file.type = AuditSinkType::kFile;
    file.name = "file0";
    file.file.path = path("audit.jsonl");
    file.file.fsync = FsyncPolicy::kNever;
    config.sinks.push_back(file);
    return config;
  }

  std::string dir;
};

inline std::vector<std::string> ReadLines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

inline void WriteLines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream out(path, std::ios::trunc);
  for (const std::string& line : lines) out << line << '\n';
}

// Produces `count` statement records on shard `shard`, retrying while the
// ring is full.
inline void Produce(AuditTrail& trail, int count, int shard = 0, std::string_view tag = "q") {
  for (int i = 0; i < count;) {
    // As a session does: no statement (no record) while the trail refuses.
    if (!trail.shard(shard).MayProceed()) {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      continue;
    }
    AuditRecord* r = trail.shard(shard).Begin();
    if (r == nullptr) {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      continue;
    }
    r->start_us = AuditClockMicros();
    r->end_us = r->start_us + 10;
    r->session_id = static_cast<uint64_t>(shard) * 1'000'000 + static_cast<uint64_t>(i) + 1;
    r->decision = AuditDecision::kAllow;
    r->SetStatement(std::string("SELECT '") + std::string(tag) + "', " + std::to_string(i));
    r->SetCommandTag("SELECT 1");
    trail.shard(shard).Commit();
    ++i;
  }
}

// A TCP syslog receiver with octet-counting framing.
class SyslogReceiver {
 public:
  explicit SyslogReceiver(uint16_t port = 0) { Start(port); }
  ~SyslogReceiver() { Kill(); }

  void Start(uint16_t port) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in in = {};
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&in), sizeof(in)), 0);
    EXPECT_EQ(::listen(listen_fd_, 8), 0);
    socklen_t length = sizeof(in);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&in), &length);
    port_ = ntohs(in.sin_port);
    stop_ = false;
    thread_ = std::thread([this] { Run(); });
  }
  // Closes the listener and every connection, as a crashed receiver would.
  void Kill() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  void Restart() { Start(port_); }
  uint16_t port() const { return port_; }
  std::vector<std::string> messages() {
    std::lock_guard lock(mu_);
    return messages_;
  }

 private:
  void Run() {
    std::vector<int> conns;
    std::vector<std::string> buffers;
    while (!stop_) {
      std::vector<pollfd> fds{{listen_fd_, POLLIN, 0}};
      for (int c : conns) fds.push_back({c, POLLIN, 0});
      if (::poll(fds.data(), fds.size(), 20) <= 0) continue;
      if (fds[0].revents & POLLIN) {
        const int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) {
          conns.push_back(c);
          buffers.emplace_back();
        }
      }
      for (size_t i = 0; i + 1 < fds.size(); ++i) {  // not one accepted just now
        if (!(fds[i + 1].revents & (POLLIN | POLLHUP))) continue;
        char chunk[65536];
        const ssize_t n = ::recv(conns[i], chunk, sizeof(chunk), 0);
        if (n <= 0) continue;  // closed: left for Kill
        buffers[i].append(chunk, static_cast<size_t>(n));
        for (;;) {  // "<length> <message>"
          const size_t space = buffers[i].find(' ');
          if (space == std::string::npos) break;
          const size_t length = std::stoul(buffers[i].substr(0, space));
          if (buffers[i].size() < space + 1 + length) break;
          std::lock_guard lock(mu_);
          messages_.push_back(buffers[i].substr(space + 1, length));
          buffers[i].erase(0, space + 1 + length);
        }
      }
    }
    for (int c : conns) ::close(c);
    ::close(listen_fd_);
  }

  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> messages_;
};

// The "seq" of a line or of a syslog message carrying one.
inline uint64_t SeqOf(std::string_view text) {
  const size_t at = text.find("\"seq\":");
  return at == std::string_view::npos ? 0 : std::stoull(std::string(text.substr(at + 6, 20)));
}

}  // namespace pgb::audit::testing
