// A throwaway PostgreSQL 15 for tests that need a real server (the audit
// database sink): initdb in a temp dir, a free loopback port, fsync off,
// pg_ctl start/stop. As tests/integration/harness.py does, it runs the server
// as the `postgres` OS user when the test runs as root. Local (unix socket)
// logins are trusted; TCP logins need a SCRAM password.
//
//   TestPostgres pg;                       // initdb + start
//   pg.Sql("CREATE ROLE auditor LOGIN PASSWORD 'pw'");
//   pg.Stop();                             // pg_ctl stop -m immediate (a crash)
//   pg.Start();
#pragma once

#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace pgb::testing {

class TestPostgres {
 public:
  static constexpr char kBin[] = "/usr/lib/postgresql/15/bin";

  TestPostgres() {
    char pattern[] = "/tmp/pgb_test_pg.XXXXXX";
    dir_ = ::mkdtemp(pattern);
    port_ = FreePort();
    Chown(dir_);
    Run(std::string(kBin) + "/initdb -D " + dir_ + "/data -U postgres -E UTF8 --locale=C " +
        "--auth=trust -N >" + dir_ + "/initdb.log 2>&1");
    std::ofstream conf(dir_ + "/data/postgresql.conf", std::ios::app);
    conf << "listen_addresses = '127.0.0.1'\nport = " << port_ << "\nunix_socket_directories = '"
         << dir_
         << "'\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            "shared_buffers = 32MB\nmax_connections = 20\nlog_min_messages = warning\n"
            "password_encryption = 'scram-sha-256'\ntimezone = 'UTC'\n";
    conf.close();
    std::ofstream hba(dir_ + "/data/pg_hba.conf", std::ios::trunc);
    hba << "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n";
    hba.close();
    Start();
  }
  ~TestPostgres() {
    if (running_) Stop();
    std::filesystem::remove_all(dir_);
  }
  TestPostgres(const TestPostgres&) = delete;
  TestPostgres& operator=(const TestPostgres&) = delete;

  void Start() {
    Run(std::string(kBin) + "/pg_ctl -D " + dir_ + "/data -l " + dir_ +
        "/postgres.log -w -t 60 start >/dev/null");
    running_ = true;
  }
  // As a crash: the server exits at once, without a checkpoint, and every
  // connection drops.
  void Stop() {
    Run(std::string(kBin) + "/pg_ctl -D " + dir_ + "/data -m immediate -w -t 60 stop >/dev/null");
    running_ = false;
  }

  uint16_t port() const { return port_; }
  const std::string& dir() const { return dir_; }

  // Runs SQL as the superuser over the unix socket; returns psql's unaligned,
  // tuples-only output (without the last newline). Fails the test on error.
  std::string Sql(const std::string& sql, const std::string& db = "postgres") {
    const std::string file = dir_ + "/query.sql";
    std::ofstream(file, std::ios::trunc) << sql << "\n";
    const std::string command = "psql -X -q -A -t -v ON_ERROR_STOP=1 -h " + dir_ + " -p " +
                                std::to_string(port_) + " -U postgres -d " + db + " -f " + file +
                                " 2>&1";
    std::string out;
    FILE* pipe = ::popen(command.c_str(), "r");
    char buffer[4096];
    size_t n;
    while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
    const int status = ::pclose(pipe);
    EXPECT_EQ(status, 0) << sql << "\n" << out;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }

 private:
  static uint16_t FreePort() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in in = {};
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&in), sizeof(in));
    socklen_t length = sizeof(in);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&in), &length);
    ::close(fd);
    return ntohs(in.sin_port);
  }
  // initdb and postgres refuse to run as root.
  static bool AsRoot() { return ::geteuid() == 0; }
  void Chown(const std::string& path) {
    if (!AsRoot()) return;
    const passwd* pw = ::getpwnam("postgres");
    ASSERT_NE(pw, nullptr) << "no postgres OS user";
    ASSERT_EQ(::chown(path.c_str(), pw->pw_uid, pw->pw_gid), 0);
  }
  void Run(const std::string& command) {
    const std::string full = AsRoot() ? "runuser -u postgres -- sh -c '" + command + "'" : command;
    ASSERT_EQ(std::system(full.c_str()), 0) << full;
  }

  std::string dir_;
  uint16_t port_ = 0;
  bool running_ = false;
};

}  // namespace pgb::testing
