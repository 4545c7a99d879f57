#include "core/unix_listener.h"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <vector>

#include "base/str_cat.h"

namespace pgb {
namespace {

constexpr int kBacklog = 4096;
constexpr size_t kMaxLockFileSize = 1024;
// Attempts at taking the lock file while others create and remove it.
constexpr int kLockAttempts = 100;

std::string Errno(int err) { return std::strerror(err); }

absl::Status LockError(const std::string& lock_path, std::string_view why) {
  return absl::FailedPreconditionError(Cat("cannot take the lock file \"", lock_path, "\": ", why));
}

// Whether process `pid` runs. EPERM: it runs as another user; it may be a
// gateway started by someone else, so it counts as alive (PostgreSQL counts
// it as stale because its lock files are always its own user's).
bool ProcessAlive(pid_t pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

// PostgreSQL's CreateLockFile for sockets: create the lock file exclusively;
// if it exists, its first line is the owner's pid: refuse while that process
// runs, remove the file and try again when it does not.
absl::Status TakeLockFile(const std::string& lock_path, const std::string& socket_path) {
  const pid_t self = ::getpid();
  for (int attempt = 0;; ++attempt) {
    int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
      const std::string text = Cat(self, "\n", socket_path, "\n");
      const bool written =
          ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
      const int err = errno;
      if (!written || ::fsync(fd) != 0) {
        ::close(fd);
        ::unlink(lock_path.c_str());
        return LockError(lock_path, Cat("cannot write it: ", Errno(written ? errno : err)));
      }
      ::close(fd);
      return absl::OkStatus();
    }
    if (errno != EEXIST || attempt >= kLockAttempts) {
      return LockError(lock_path, Errno(errno));
    }
    fd = ::open(lock_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
      if (errno == ENOENT) continue;  // its owner removed it just now
      return LockError(lock_path, Cat("it exists and cannot be read: ", Errno(errno)));
    }
    char text[kMaxLockFileSize];
    const ssize_t n = ::read(fd, text, sizeof(text));
    ::close(fd);
    if (n < 0) return LockError(lock_path, Cat("it exists and cannot be read: ", Errno(errno)));
    const std::string_view content(text, static_cast<size_t>(n));
    if (content.empty()) {
      // As PostgreSQL: either another gateway is starting, or one crashed
      // while starting. Only the operator can tell.
      return LockError(lock_path,
                       "it exists and is empty: another gateway may be starting; if none is "
                       "running, remove the file");
    }
    const std::string_view first_line = content.substr(0, content.find('\n'));
    long pid = 0;
    const auto parsed =
        std::from_chars(first_line.data(), first_line.data() + first_line.size(), pid);
    if (parsed.ec != std::errc() || parsed.ptr != first_line.data() + first_line.size() ||
        pid <= 0 || pid > 0x7fffffff) {
      return LockError(lock_path,
                       "it exists and does not start with a process id; if no gateway "
                       "is running, remove the file");
    }
    // Our own pid (or our parent's, in a container that restarted) cannot be
    // another live owner: the file is a previous run's.
    if (pid != self && pid != ::getppid() && ProcessAlive(static_cast<pid_t>(pid))) {
      return absl::FailedPreconditionError(
          Cat("the socket \"", socket_path, "\" is in use: process ", pid,
              " holds its lock file \"", lock_path,
              "\" (is another pgbastion, or a PostgreSQL, running with this socket_dir and "
              "port?)"));
    }
    if (::unlink(lock_path.c_str()) != 0 && errno != ENOENT) {
      return LockError(lock_path, Cat("it is stale (process ", pid,
                                      " is gone) but cannot be removed: ", Errno(errno)));
    }
  }
}

// With the lock held, a socket file left behind is a dead process's, unless
// something that takes no lock listens on it: a connect tells.
absl::Status RemoveStaleSocket(const std::string& socket_path, const sockaddr_un& address) {
  struct stat st;
  if (::lstat(socket_path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return absl::FailedPreconditionError(Cat("cannot check \"", socket_path, "\": ", Errno(errno)));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(
        Cat("\"", socket_path, "\" exists and is not a socket; remove it or choose another port"));
  }
  const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (probe < 0) return absl::InternalError(Cat("socket: ", Errno(errno)));
  const int rc = ::connect(probe, reinterpret_cast<const sockaddr*>(&address), sizeof(address));
  const int err = errno;
  ::close(probe);
  if (rc == 0 || err == EAGAIN) {  // EAGAIN: it listens, with a full queue
    return absl::FailedPreconditionError(Cat(
        "the socket \"", socket_path, "\" is in use: a process without a lock file listens on it"));
  }
  if (::unlink(socket_path.c_str()) != 0 && errno != ENOENT) {
    return absl::FailedPreconditionError(
        Cat("cannot remove the stale socket \"", socket_path, "\": ", Errno(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<UnixListener>> UnixListener::Open(const ListenerConfig& config) {
  const std::string socket_path = config.SocketPath();
  const std::string lock_path = config.LockFilePath();
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(address.sun_path)) {  // config.cc refuses it first
    return absl::InvalidArgumentError(Cat("the socket path \"", socket_path, "\" is too long"));
  }
  std::memcpy(address.sun_path, socket_path.data(), socket_path.size());
  if (absl::Status s = TakeLockFile(lock_path, socket_path); !s.ok()) return s;
  const auto fail = [&](absl::Status status, int fd) {
    if (fd >= 0) ::close(fd);
    ::unlink(lock_path.c_str());
    return status;
  };
  if (absl::Status s = RemoveStaleSocket(socket_path, address); !s.ok()) return fail(s, -1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(absl::InternalError(Cat("socket: ", Errno(errno))), -1);
  // bind() creates the file with this socket's own mode (less the umask):
  // owner-only until the group and the configured mode are in place, so no
  // one else connects in between.
  const uint32_t mode = config.socket_mode;
  if (::fchmod(fd, mode & 0700) != 0 ||
      ::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    return fail(
        absl::UnavailableError(Cat("cannot listen on \"", socket_path, "\": ", Errno(errno))), fd);
  }
  // From here the socket file is ours: remove it with the lock on failure.
  const auto fail_bound = [&](absl::Status status) {
    ::unlink(socket_path.c_str());
    return fail(std::move(status), fd);
  };
  if (config.socket_group >= 0 && ::chown(socket_path.c_str(), static_cast<uid_t>(-1),
                                          static_cast<gid_t>(config.socket_group)) != 0) {
    return fail_bound(absl::PermissionDeniedError(
        Cat("cannot give \"", socket_path, "\" group id ", config.socket_group, ": ", Errno(errno),
            " (the gateway's user must be a member of socket_group)")));
  }
  if (::chmod(socket_path.c_str(), mode) != 0) {
    return fail_bound(absl::PermissionDeniedError(
        Cat("cannot set the mode of \"", socket_path, "\": ", Errno(errno))));
  }
  if (::listen(fd, kBacklog) != 0) {
    return fail_bound(
        absl::UnavailableError(Cat("cannot listen on \"", socket_path, "\": ", Errno(errno))));
  }
  return std::unique_ptr<UnixListener>(new UnixListener(fd, socket_path, lock_path));
}

UnixListener::~UnixListener() {
  Unlink();
  ::close(fd_);
  ::unlink(lock_path_.c_str());
}

void UnixListener::Unlink() {
  if (unlinked_) return;
  unlinked_ = true;
  ::unlink(socket_path_.c_str());
}

LocalPeer LocalPeerOf(int fd) {
  LocalPeer peer;
  ucred cred{};
  socklen_t length = sizeof(cred);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) == 0 && length == sizeof(cred)) {
    peer.pid = cred.pid;
    peer.uid = cred.uid;
    peer.gid = cred.gid;
    peer.known = true;
  }
  return peer;
}

std::optional<std::string> OsUserName(uid_t uid) {
  passwd entry{};
  passwd* found = nullptr;
  std::vector<char> buffer(16 * 1024);
  if (::getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found) != 0 || found == nullptr ||
      entry.pw_name == nullptr) {
    return std::nullopt;
  }
  return std::string(entry.pw_name);
}

std::string DescribeLocalPeer(const LocalPeer& peer) {
  if (!peer.known) return "[local]";
  return Cat("[local] pid=", peer.pid, " uid=", peer.uid);
}

}  // namespace pgb
