// UnixListener: the socket and its lock file as PostgreSQL makes them, stale
// files from a dead process replaced, a live owner refused, both files
// removed at the end; and the peer credentials of a client.
#include "core/unix_listener.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pgb {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class UnixListenerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/pgb_unix_listener_test.XXXXXX";
    dir_ = ::mkdtemp(pattern);
    config_.socket_dir = dir_;
    config_.port = 6543;
    config_.socket_mode = 0660;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Socket() const { return dir_ + "/.s.PGSQL.6543"; }
  std::string Lock() const { return dir_ + "/.s.PGSQL.6543.lock"; }
  static bool Exists(const std::string& path) {
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0;
  }
  static std::string Read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  // A socket bound at the path and closed: what a killed process leaves.
  void LeaveStaleSocket() {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strcpy(address.sun_path, Socket().c_str());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    ::close(fd);
  }
  // The pid of a process that has exited.
  static pid_t DeadPid() {
    const pid_t child = ::fork();
    if (child == 0) ::_exit(0);
    ::waitpid(child, nullptr, 0);
    return child;
  }
  int Connect() const {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strcpy(address.sun_path, Socket().c_str());
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }

  std::string dir_;
  ListenerConfig config_;
};

TEST_F(UnixListenerTest, CreatesSocketWithModeAndLockFileWithPid) {
  absl::StatusOr<std::unique_ptr<UnixListener>> l = UnixListener::Open(config_);
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ((*l)->socket_path(), Socket());
  struct stat st;
  ASSERT_EQ(::lstat(Socket().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  EXPECT_THAT(Read(Lock()), StartsWith(std::to_string(::getpid()) + "\n" + Socket() + "\n"));
  const int client = Connect();
  EXPECT_GE(client, 0);
  ::close(client);
  l->reset();
  EXPECT_FALSE(Exists(Socket()));
  EXPECT_FALSE(Exists(Lock()));
}

TEST_F(UnixListenerTest, ModeIsAppliedWhateverTheUmask) {
  config_.socket_mode = 0777;
  const mode_t previous = ::umask(077);
  absl::StatusOr<std::unique_ptr<UnixListener>> l = UnixListener::Open(config_);
  ::umask(previous);
  ASSERT_TRUE(l.ok()) << l.status();
  struct stat st;
  ASSERT_EQ(::lstat(Socket().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0777u);
}

TEST_F(UnixListenerTest, SecondListenerOnTheSamePathIsRefusedByTheLock) {
  absl::StatusOr<std::unique_ptr<UnixListener>> first = UnixListener::Open(config_);
  ASSERT_TRUE(first.ok()) << first.status();
  // Another live process holds the lock: our parent stands in for it (our
  // own pid and our parent's count as a previous run's, as in PostgreSQL).
  std::ofstream(Lock(), std::ios::trunc) << "1\n" << Socket() << "\n";
  absl::StatusOr<std::unique_ptr<UnixListener>> second = UnixListener::Open(config_);
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(), HasSubstr("is in use: process 1 holds its lock file"));
  // The refused attempt leaves the live owner's files alone.
  EXPECT_TRUE(Exists(Socket()));
  EXPECT_THAT(Read(Lock()), StartsWith("1\n"));
  const int client = Connect();
  EXPECT_GE(client, 0);
  ::close(client);
}

TEST_F(UnixListenerTest, StaleLockAndSocketOfADeadProcessAreReplaced) {
  LeaveStaleSocket();
  std::ofstream(Lock()) << DeadPid() << "\n" << Socket() << "\n";
  absl::StatusOr<std::unique_ptr<UnixListener>> l = UnixListener::Open(config_);
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_THAT(Read(Lock()), StartsWith(std::to_string(::getpid()) + "\n"));
  const int client = Connect();
  EXPECT_GE(client, 0);
  ::close(client);
}

TEST_F(UnixListenerTest, StaleSocketWithoutLockFileIsReplaced) {
  LeaveStaleSocket();
  absl::StatusOr<std::unique_ptr<UnixListener>> l = UnixListener::Open(config_);
  ASSERT_TRUE(l.ok()) << l.status();
}

TEST_F(UnixListenerTest, LiveSocketWithoutLockFileIsRefused) {
  absl::StatusOr<std::unique_ptr<UnixListener>> first = UnixListener::Open(config_);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(::unlink(Lock().c_str()), 0);  // a server that keeps no lock file
  absl::StatusOr<std::unique_ptr<UnixListener>> second = UnixListener::Open(config_);
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(), HasSubstr("a process without a lock file listens on it"));
  EXPECT_FALSE(Exists(Lock()));  // the refused attempt gave its lock back
}

TEST_F(UnixListenerTest, UnreadableLockFilesAreRefusedNotRemoved) {
  std::ofstream(Lock()).flush();  // empty: a gateway may be starting
  absl::StatusOr<std::unique_ptr<UnixListener>> l = UnixListener::Open(config_);
  ASSERT_FALSE(l.ok());
  EXPECT_THAT(l.status().message(), HasSubstr("it exists and is empty"));
  std::ofstream(Lock(), std::ios::trunc) << "not-a-pid\n";
  l = UnixListener::Open(config_);
  ASSERT_FALSE(l.ok());
  EXPECT_THAT(l.status().message(), HasSubstr("does not start with a process id"));
  EXPECT_TRUE(Exists(Lock()));
}

TEST_F(UnixListenerTest, AFileThatIsNotASocketIsRefused) {
  std::ofstream(Socket()) << "data";
  absl::StatusOr<std::unique_ptr<UnixListener>> l = UnixListener::Open(config_);
  ASSERT_FALSE(l.ok());
  EXPECT_THAT(l.status().message(), HasSubstr("exists and is not a socket"));
  EXPECT_EQ(Read(Socket()), "data");
  EXPECT_FALSE(Exists(Lock()));
}

TEST_F(UnixListenerTest, UnlinkRemovesThePathButKeepsListening) {
  absl::StatusOr<std::unique_ptr<UnixListener>> l = UnixListener::Open(config_);
  ASSERT_TRUE(l.ok()) << l.status();
  (*l)->Unlink();
  EXPECT_FALSE(Exists(Socket()));
  EXPECT_TRUE(Exists(Lock()));
  EXPECT_LT(Connect(), 0);
}

TEST_F(UnixListenerTest, PeerCredentialsNameTheConnectingProcess) {
  absl::StatusOr<std::unique_ptr<UnixListener>> l = UnixListener::Open(config_);
  ASSERT_TRUE(l.ok()) << l.status();
  const int client = Connect();
  ASSERT_GE(client, 0);
  const int accepted = ::accept((*l)->fd(), nullptr, nullptr);
  ASSERT_GE(accepted, 0);
  const LocalPeer peer = LocalPeerOf(accepted);
  EXPECT_TRUE(peer.known);
  EXPECT_EQ(peer.pid, ::getpid());
  EXPECT_EQ(peer.uid, ::getuid());
  EXPECT_EQ(DescribeLocalPeer(peer),
            "[local] pid=" + std::to_string(::getpid()) + " uid=" + std::to_string(::getuid()));
  ::close(accepted);
  ::close(client);
  EXPECT_EQ(DescribeLocalPeer(LocalPeer{}), "[local]");
}

}  // namespace
}  // namespace pgb
