// A Unix-domain socket listener (`[[listener]] socket_dir = "/run/pgbastion"`),
// made as PostgreSQL makes its own: the socket <socket_dir>/.s.PGSQL.<port>
// with the configured mode and group, beside a lock file
// .s.PGSQL.<port>.lock whose first line is the owner's pid. A socket file
// left by a process that died is removed; one whose owner still runs (its
// pid is alive, or something answers on the socket) is refused with a message
// naming it. Both files go when the UnixListener is destroyed.
//
// Unlike TCP, where each shard binds its own SO_REUSEPORT socket, a path can
// be bound once: the gateway opens one UnixListener before the shards start,
// and every shard arms a multishot accept on its own duplicate of the same
// descriptor (the kernel hands each connection to one waiting ring). No
// shard owns it, so none closes it for the others: it outlives them.
//
//   PGB_ASSIGN_OR_RETURN(std::unique_ptr<UnixListener> l, UnixListener::Open(listener_config));
//   shard: fcntl(l->fd(), F_DUPFD_CLOEXEC, 0), then multishot accept on it
//   ... after the shards stopped: l.reset();  // closes, removes socket and lock file
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "core/config.h"

namespace pgb {

class UnixListener {
 public:
  // Takes the lock file, removes a stale socket, binds, applies mode and
  // group, listens. `config` must be a socket_dir listener.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<UnixListener>> Open(
      const ListenerConfig& config);
  ~UnixListener();
  UnixListener(const UnixListener&) = delete;
  UnixListener& operator=(const UnixListener&) = delete;

  int fd() const { return fd_; }
  const std::string& socket_path() const { return socket_path_; }
  // Removes the socket's path, so that new clients find no server (as after
  // PostgreSQL has shut down); the listening socket itself stays open.
  void Unlink();

 private:
  UnixListener(int fd, std::string socket_path, std::string lock_path)
      : fd_(fd), socket_path_(std::move(socket_path)), lock_path_(std::move(lock_path)) {}

  int fd_;
  std::string socket_path_;
  std::string lock_path_;
  bool unlinked_ = false;
};

// The process at the other end of a Unix-domain socket (SO_PEERCRED), as the
// kernel saw it when it connected.
struct LocalPeer {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  bool known = false;  // false: getsockopt failed (not a Unix socket)
};
LocalPeer LocalPeerOf(int fd);

// The OS user name of `uid` from the password database (NSS: keep service
// users local, a lookup runs on the worker thread), or nullopt.
std::optional<std::string> OsUserName(uid_t uid);

// The client's address for logs: "[local] pid=1234 uid=1000" as PostgreSQL's
// "[local]", with who connected.
std::string DescribeLocalPeer(const LocalPeer& peer);

}  // namespace pgb
