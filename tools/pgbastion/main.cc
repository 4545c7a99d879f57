// pgbastion: the gateway's single command. See `pgbastion --help`.
#include <cstdio>
#include <cstring>
#include <string_view>

#include "tools/pgbastion/commands.h"

namespace pgb::tools {

bool FindFlag(const Args& args, std::string_view name, std::string_view* value) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (arg == name && i + 1 < args.size()) {
      *value = args[i + 1];
      return true;
    }
    if (arg.size() > name.size() + 1 && arg.substr(0, name.size()) == name &&
        arg[name.size()] == '=') {
      *value = arg.substr(name.size() + 1);
      return true;
    }
  }
  return false;
}

bool HasFlag(const Args& args, std::string_view name) {
  for (std::string_view arg : args) {
    if (arg == name) return true;
  }
  return false;
}

namespace {

constexpr const char kUsage[] =
    "Usage: pgbastion COMMAND [OPTIONS]\n"
    "\n"
    "A just-in-time access gateway for PostgreSQL.\n"
    "\n"
    "Commands:\n"
    "  serve --config FILE         run the gateway\n"
    "  check-config --config FILE  validate a configuration file and exit\n"
    "  reload --config FILE        check a changed file, then have the running gateway apply it\n"
    "  scram-verifier              read a password on stdin, print its SCRAM-SHA-256 verifier\n"
    "  policy explain --config FILE --claims JSON SQL\n"
    "                              show the policy's decision on each statement\n"
    "  audit verify|keygen         check an audit trail; make its signing key pair\n"
    "  token mint|jwks|verify      mint a demo token, print a key's JWKS, check a token\n"
    "  sessions [end ...]          list the running gateway's sessions; end some\n"
    "  approvals list|show|approve|deny\n"
    "                              decide the requests of statements held for approval\n"
    "  replay FILE|SESSION_ID      show a recorded session as its client saw it\n"
    "  recordings list             list the session recordings\n"
    "\n"
    "Run 'pgbastion COMMAND --help' for a command's options.\n";

}  // namespace
}  // namespace pgb::tools

int main(int argc, char** argv) {
  using namespace pgb::tools;
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string_view command = argv[1];
  if (command == "--help" || command == "-h" || command == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (command == "--version") {
    std::puts("pgbastion " PGB_VERSION);
    return 0;
  }
  Args args(argv + 2, argv + argc);
  if (command == "serve") return RunServe(args);
  if (command == "check-config") return RunCheckConfig(args);
  if (command == "scram-verifier") return RunScramVerifier(args);
  if (command == "reload") return RunReload(args);
  if (command == "policy") return RunPolicy(args);
  if (command == "audit") return RunAudit(args);
  if (command == "token") return RunToken(args);
  if (command == "sessions") return RunSessions(args);
  if (command == "approvals") return RunApprovals(args);
  if (command == "replay") return RunReplay(args);
  if (command == "recordings") return RunRecordings(args);
  std::fprintf(stderr, "pgbastion: unknown command '%s'\n\n%s", argv[1], kUsage);
  return 2;
}
