#include "tools/pgbastion/admin_client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "base/str_cat.h"
#include "core/config.h"

namespace pgb::tools {

bool AdminSocketPath(const Args& args, std::string_view command, std::string* path) {
  std::string_view value;
  if (FindFlag(args, "--socket", &value)) {
    *path = std::string(value);
    return true;
  }
  std::string_view config_path = "/etc/pgbastion/pgbastion.toml";
  FindFlag(args, "--config", &config_path);
  absl::StatusOr<Config> config =
      LoadConfigFile(std::string(config_path), ConfigOptions{.check_files = false});
  if (!config.ok()) {
    std::fprintf(stderr, "pgbastion %s: %s\n", std::string(command).c_str(),
                 std::string(config.status().message()).c_str());
    return false;
  }
  *path = config->control.admin_socket;
  if (path->empty()) {
    std::fprintf(stderr,
                 "pgbastion %s: %s has no [control] admin_socket; set one and restart "
                 "the gateway, or pass --socket\n",
                 std::string(command).c_str(), std::string(config_path).c_str());
    return false;
  }
  return true;
}

bool AskAdmin(const std::string& path, const std::string& request, std::string* answer) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (fd < 0 || path.size() >= sizeof(addr.sun_path)) {
    *answer = "bad socket path";
    if (fd >= 0) ::close(fd);
    return false;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    *answer = Cat("cannot connect to the admin socket ", path, ": ", strerror(errno),
                  errno == EACCES ? " (only root and the gateway's user may)" : "");
    ::close(fd);
    return false;
  }
  std::string line = request + "\n";
  if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size())) {
    *answer = "cannot send to the admin socket";
    ::close(fd);
    return false;
  }
  char buffer[8192];
  ssize_t n;
  while ((n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0) {
    answer->append(buffer, static_cast<size_t>(n));
    if (answer->size() > (64u << 20)) break;
  }
  ::close(fd);
  return true;
}

bool AskAdminJson(const std::string& path, const std::string& request, std::string_view command,
                  simdjson::dom::parser& parser, std::string* answer,
                  simdjson::dom::element* root) {
  const std::string name(command);
  if (!AskAdmin(path, request, answer)) {
    std::fprintf(stderr, "pgbastion %s: %s\n", name.c_str(), answer->c_str());
    return false;
  }
  if (parser.parse(*answer).get(*root) != simdjson::SUCCESS) {
    std::fprintf(stderr, "pgbastion %s: the gateway's answer is not JSON\n", name.c_str());
    return false;
  }
  std::string_view error;
  if ((*root)["error"].get(error) == simdjson::SUCCESS) {
    std::fprintf(stderr, "pgbastion %s: %s\n", name.c_str(), std::string(error).c_str());
    return false;
  }
  return true;
}

std::string AdminField(simdjson::dom::element e, const char* key) {
  std::string_view v;
  if (e[key].get(v) == simdjson::SUCCESS) return std::string(v);
  int64_t i;
  if (e[key].get(i) == simdjson::SUCCESS) return Cat(i);
  uint64_t u;
  if (e[key].get(u) == simdjson::SUCCESS) return Cat(u);
  return "";
}

}  // namespace pgb::tools
