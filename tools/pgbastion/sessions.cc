// `pgbastion sessions [--json]` lists the running gateway's open sessions;
// `pgbastion sessions end ID | --subject S | --target T` ends them. Both talk
// to the gateway over its admin socket ([control] admin_socket, mode 0600:
// root and the service's user only), whose path comes from --socket or from
// the configuration file (core/control_plane.h has the request lines).

#include <cstdio>
#include <string>

#include "base/str_cat.h"
#include "simdjson.h"
#include "tools/pgbastion/admin_client.h"
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
  if (!AdminSocketPath(args, "sessions", &socket_path)) return 1;
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
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (!AskAdminJson(socket_path, request, "sessions", parser, &answer, &root)) return 1;
  simdjson::dom::array sessions;
  if (root["sessions"].get(sessions) != simdjson::SUCCESS) {
    std::fprintf(stderr, "pgbastion sessions: unexpected answer\n");
    return 1;
  }
  if (HasFlag(args, "--json")) {
    std::fputs(answer.c_str(), stdout);
  } else if (end) {
    for (simdjson::dom::element s : sessions) {
      std::printf("ended session %s (%s on %s from %s)\n", AdminField(s, "id").c_str(),
                  AdminField(s, "subject").c_str(), AdminField(s, "target").c_str(),
                  AdminField(s, "client").c_str());
    }
  } else {
    std::printf("%-20s %-20s %-12s %-10s %-22s %-8s %-20s %s\n", "ID", "SUBJECT", "SCOPE", "TARGET",
                "CLIENT", "PID", "STATE", "STATEMENT");
    for (simdjson::dom::element s : sessions) {
      std::string statement = AdminField(s, "statement");
      for (char& c : statement) {
        if (c == '\n' || c == '\r' || c == '\t') c = ' ';
      }
      if (statement.size() > 60) statement = statement.substr(0, 57) + "...";
      std::printf("%-20s %-20s %-12s %-10s %-22s %-8s %-20s %s\n", AdminField(s, "id").c_str(),
                  AdminField(s, "subject").c_str(), AdminField(s, "scope").c_str(),
                  AdminField(s, "target").c_str(), AdminField(s, "client").c_str(),
                  AdminField(s, "backend_pid").c_str(), AdminField(s, "state").c_str(),
                  statement.c_str());
    }
  }
  if (end && sessions.size() == 0) {
    std::fprintf(stderr, "pgbastion sessions: no open session matched\n");
    return 1;
  }
  return 0;
}

}  // namespace pgb::tools
