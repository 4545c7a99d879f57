// `pgbastion sessions [--json]` lists the running gateway's open sessions;
// `pgbastion sessions end ID | --subject S | --target T` ends them. Both talk
// to the gateway over its admin socket ([control] admin_socket, mode 0600:
// root and the service's user only), whose path comes from --socket or from
// the configuration file (core/control_plane.h has the request lines).
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "base/str_cat.h"
#include "core/config.h"
#include "simdjson.h"
#include "tools/pgbastion/commands.h"

namespace pgb::tools {
namespace {

constexpr const char kSessionsUsage[] =
    "Usage: pgbastion sessions [--json] [--config FILE | --socket PATH]\n"
    "       pgbastion sessions end ID | --subject SUBJECT | --target TARGET\n"
    "                              [--config FILE | --socket PATH] [--json]\n"
    "\n"
    "Lists the running gateway's open sessions, or ends some: their clients get\n"
    "FATAL 57P01 (terminating connection due to administrator command) naming you,\n"
    "and the audit trail's disconnect record says who ended them.\n"
    "\n"
    "Options:\n"
    "  --config FILE  read [control] admin_socket from FILE\n"
    "                 (default /etc/pgbastion/pgbastion.toml)\n"
    "  --socket PATH  the gateway's admin socket\n"
    "  --json         print the answer as JSON\n"
    "  --help         show this help\n"
    "\n"
    "Only root and the gateway's own user may use the admin socket.\n"
    "Exit status: 0 done (end: at least one session ended), 1 failure or none\n"
    "matched, 2 usage error.\n";

// The admin socket's answer to `request`, or an error message.
bool Ask(const std::string& path, const std::string& request, std::string* answer) {
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

std::string Text(simdjson::dom::element e, const char* key) {
  std::string_view v;
  if (e[key].get(v) == simdjson::SUCCESS) return std::string(v);
  int64_t i;
  if (e[key].get(i) == simdjson::SUCCESS) return Cat(i);
  uint64_t u;
  if (e[key].get(u) == simdjson::SUCCESS) return Cat(u);
  return "";
}

}  // namespace

int RunSessions(const Args& all_args) {
  if (HasFlag(all_args, "--help") || HasFlag(all_args, "-h")) {
    std::fputs(kSessionsUsage, stdout);
    return 0;
  }
  // The first word that is not a flag or a flag's value says what to do:
  // none lists, "end" ends.
  Args args = all_args;
  bool end = false;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--config" || args[i] == "--socket" || args[i] == "--subject" ||
        args[i] == "--target") {
      ++i;
    } else if (args[i].substr(0, 2) != "--") {
      end = args[i] == "end";
      if (!end) {
        std::fprintf(stderr, "pgbastion sessions: unknown word '%s'\n\n%s",
                     std::string(args[i]).c_str(), kSessionsUsage);
        return 2;
      }
      args.erase(args.begin() + static_cast<ptrdiff_t>(i));
      break;
    }
  }
  std::string socket_path;
  std::string_view value;
  if (FindFlag(args, "--socket", &value)) {
    socket_path = std::string(value);
  } else {
    std::string_view config_path = "/etc/pgbastion/pgbastion.toml";
    FindFlag(args, "--config", &config_path);
    absl::StatusOr<Config> config =
        LoadConfigFile(std::string(config_path), ConfigOptions{.check_files = false});
    if (!config.ok()) {
      std::fprintf(stderr, "pgbastion sessions: %s\n",
                   std::string(config.status().message()).c_str());
      return 1;
    }
    socket_path = config->control.admin_socket;
    if (socket_path.empty()) {
      std::fprintf(stderr,
                   "pgbastion sessions: %s has no [control] admin_socket; set one and restart "
                   "the gateway, or pass --socket\n",
                   std::string(config_path).c_str());
      return 1;
    }
  }
  std::string request = "list";
  if (end) {
    std::string_view selector;
    if (FindFlag(args, "--subject", &selector)) {
      request = Cat("end subject ", selector);
    } else if (FindFlag(args, "--target", &selector)) {
      request = Cat("end target ", selector);
    } else {
      for (size_t i = 0; i < args.size(); ++i) {
        if (args[i].substr(0, 2) == "--") {
          if (args[i] == "--config" || args[i] == "--socket") ++i;
          continue;
        }
        if (request != "list") {  // one id at a time
          std::fputs(kSessionsUsage, stderr);
          return 2;
        }
        request = Cat("end id ", args[i]);
      }
    }
    if (request == "list" || request.find('\n') != std::string::npos) {
      std::fputs(kSessionsUsage, stderr);
      return 2;
    }
  }
  std::string answer;
  if (!Ask(socket_path, request, &answer)) {
    std::fprintf(stderr, "pgbastion sessions: %s\n", answer.c_str());
    return 1;
  }
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(answer).get(root) != simdjson::SUCCESS) {
    std::fprintf(stderr, "pgbastion sessions: the gateway's answer is not JSON\n");
    return 1;
  }
  std::string_view error;
  if (root["error"].get(error) == simdjson::SUCCESS) {
    std::fprintf(stderr, "pgbastion sessions: %s\n", std::string(error).c_str());
    return 1;
  }
  simdjson::dom::array sessions;
  if (root["sessions"].get(sessions) != simdjson::SUCCESS) {
    std::fprintf(stderr, "pgbastion sessions: unexpected answer\n");
    return 1;
  }
  if (HasFlag(args, "--json")) {
    std::fputs(answer.c_str(), stdout);
  } else if (end) {
    for (simdjson::dom::element s : sessions) {
      std::printf("ended session %s (%s on %s from %s)\n", Text(s, "id").c_str(),
                  Text(s, "subject").c_str(), Text(s, "target").c_str(), Text(s, "client").c_str());
    }
  } else {
    std::printf("%-20s %-20s %-12s %-10s %-22s %-8s %-20s %s\n", "ID", "SUBJECT", "SCOPE", "TARGET",
                "CLIENT", "PID", "STATE", "STATEMENT");
    for (simdjson::dom::element s : sessions) {
      std::string statement = Text(s, "statement");
      for (char& c : statement) {
        if (c == '\n' || c == '\r' || c == '\t') c = ' ';
      }
      if (statement.size() > 60) statement = statement.substr(0, 57) + "...";
      std::printf("%-20s %-20s %-12s %-10s %-22s %-8s %-20s %s\n", Text(s, "id").c_str(),
                  Text(s, "subject").c_str(), Text(s, "scope").c_str(), Text(s, "target").c_str(),
                  Text(s, "client").c_str(), Text(s, "backend_pid").c_str(),
                  Text(s, "state").c_str(), statement.c_str());
    }
  }
  if (end && sessions.size() == 0) {
    std::fprintf(stderr, "pgbastion sessions: no open session matched\n");
    return 1;
  }
  return 0;
}

}  // namespace pgb::tools
