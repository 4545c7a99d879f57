// `pgbastion approvals list|show|approve|deny`: approvers act on the approval
// requests of held statements (docs/approvals.md) through the running
// gateway's admin socket (tools/pgbastion/admin_client.h; the request lines
// are in core/approvals/approval_api.h).
#include <pwd.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/str_cat.h"
#include "simdjson.h"
#include "tools/pgbastion/admin_client.h"
#include "tools/pgbastion/commands.h"

namespace pgb::tools {
namespace {

constexpr const char kApprovalsUsage[] =
    "Usage: pgbastion approvals list [--status STATUS|all] [--limit N] [--offset N]\n"
    "       pgbastion approvals show ID\n"
    "       pgbastion approvals approve ID [--as NAME] [--reason TEXT]\n"
    "       pgbastion approvals deny ID [--as NAME] [--reason TEXT]\n"
    "       (each with [--config FILE | --socket PATH] [--json])\n"
    "\n"
    "Lists and decides the requests of statements held for approval. A held\n"
    "statement runs once its rule's number of distinct approvers approved it; one\n"
    "deny ends it (the client gets SQLSTATE 42501 naming you and your reason).\n"
    "Nobody approves their own request.\n"
    "\n"
    "Options:\n"
    "  --status S     list: pending (default), approved, denied, expired, withdrawn, all\n"
    "  --limit N      list: at most N (default 100), newest first; --offset N skips N\n"
    "  --as NAME      approve/deny: who decides (default: $SUDO_USER, else your user)\n"
    "  --reason TEXT  approve/deny: why; the client and the audit trail see it\n"
    "  --config FILE  read [control] admin_socket from FILE\n"
    "                 (default /etc/pgbastion/pgbastion.toml)\n"
    "  --socket PATH  the gateway's admin socket\n"
    "  --json         print the answer as JSON\n"
    "  --help         show this help\n"
    "\n"
    "Only root and the gateway's own user may use the admin socket.\n"
    "Exit status: 0 done, 1 failure (unknown id, decided already, own request, ...),\n"
    "2 usage error.\n";

std::string OneLine(std::string s, size_t max) {
  for (char& c : s) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  if (s.size() > max) s = s.substr(0, max - 3) + "...";
  return s;
}

std::string DefaultApprover() {
  if (const char* sudo = std::getenv("SUDO_USER"); sudo != nullptr && *sudo != '\0') return sudo;
  passwd pw{};
  passwd* found = nullptr;
  char buffer[1024];
  if (getpwuid_r(getuid(), &pw, buffer, sizeof(buffer), &found) == 0 && found != nullptr) {
    return found->pw_name;
  }
  return Cat("uid-", getuid());
}

void PrintRecord(simdjson::dom::element a) {
  std::printf("id:          %s\n", AdminField(a, "id").c_str());
  std::printf("status:      %s\n", AdminField(a, "status").c_str());
  std::printf("mode:        %s\n", AdminField(a, "mode").c_str());
  std::printf("requested by %s (issuer %s) on target %s, scope %s\n",
              AdminField(a, "subject").c_str(),
              AdminField(a, "issuer").empty() ? "-" : AdminField(a, "issuer").c_str(),
              AdminField(a, "target").c_str(), AdminField(a, "scope").c_str());
  std::printf("rule:        %s\n", AdminField(a, "rule").c_str());
  std::printf("reason:      %s\n", AdminField(a, "reason").c_str());
  std::printf("approvers:   %s needed\n", AdminField(a, "approvers_required").c_str());
  std::printf("statement:   %s\n", AdminField(a, "statement").c_str());
  simdjson::dom::array votes;
  if (a["votes"].get(votes) == simdjson::SUCCESS) {
    for (simdjson::dom::element v : votes) {
      bool approve = false;
      if (v["approve"].get(approve) != simdjson::SUCCESS) approve = false;
      std::printf("vote:        %s %s: %s\n", AdminField(v, "approver").c_str(),
                  approve ? "approved" : "denied", AdminField(v, "reason").c_str());
    }
  }
  if (!AdminField(a, "decided_by").empty()) {
    std::printf("decided by:  %s (%s)\n", AdminField(a, "decided_by").c_str(),
                AdminField(a, "decision_reason").c_str());
  }
}

}  // namespace

int RunApprovals(const Args& args) {
  if (HasFlag(args, "--help") || HasFlag(args, "-h")) {
    std::fputs(kApprovalsUsage, stdout);
    return 0;
  }
  // Positional words: the verb and, but for list, the id.
  std::vector<std::string_view> words;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i].substr(0, 2) == "--") {
      if (args[i] != "--json" && args[i].find('=') == std::string_view::npos) ++i;
      continue;
    }
    words.push_back(args[i]);
  }
  const auto usage = [] {
    std::fputs(kApprovalsUsage, stderr);
    return 2;
  };
  if (words.empty()) return usage();
  const std::string_view verb = words[0];
  std::string request;
  std::string_view value;
  if (verb == "list" && words.size() == 1) {
    std::string status = "pending";
    if (FindFlag(args, "--status", &value)) status = std::string(value);
    std::string_view limit = "100";
    std::string_view offset = "0";
    FindFlag(args, "--limit", &limit);
    FindFlag(args, "--offset", &offset);
    request = Cat("approvals list ", status, " ", limit, " ", offset);
  } else if (verb == "show" && words.size() == 2) {
    request = Cat("approvals show ", words[1]);
  } else if ((verb == "approve" || verb == "deny") && words.size() == 2) {
    std::string approver = DefaultApprover();
    if (FindFlag(args, "--as", &value)) approver = std::string(value);
    std::string_view reason;
    FindFlag(args, "--reason", &reason);
    if (approver.empty() || approver.find_first_of(" \t\r\n") != std::string::npos) {
      std::fprintf(stderr, "pgbastion approvals: --as takes one name without spaces\n");
      return 2;
    }
    request = Cat("approvals ", verb, " ", words[1], " ", approver, " ", reason);
  } else {
    return usage();
  }
  if (request.find_first_of("\r\n") != std::string::npos) {
    std::fprintf(stderr, "pgbastion approvals: arguments cannot hold line breaks\n");
    return 2;
  }
  std::string socket_path;
  if (!AdminSocketPath(args, "approvals", &socket_path)) return 1;
  std::string answer;
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (!AskAdminJson(socket_path, request, "approvals", parser, &answer, &root)) return 1;
  if (HasFlag(args, "--json")) {
    std::fputs(answer.c_str(), stdout);
    return 0;
  }
  simdjson::dom::array list;
  if (root["approvals"].get(list) == simdjson::SUCCESS) {
    std::printf("%-32s %-9s %-16s %-10s %-36s %s\n", "ID", "STATUS", "SUBJECT", "TARGET", "RULE",
                "STATEMENT");
    for (simdjson::dom::element a : list) {
      std::printf("%-32s %-9s %-16s %-10s %-36s %s\n", AdminField(a, "id").c_str(),
                  AdminField(a, "status").c_str(), AdminField(a, "subject").c_str(),
                  AdminField(a, "target").c_str(), AdminField(a, "rule").c_str(),
                  OneLine(AdminField(a, "statement"), 60).c_str());
    }
    return 0;
  }
  simdjson::dom::element one;
  if (root["approval"].get(one) != simdjson::SUCCESS) {
    std::fprintf(stderr, "pgbastion approvals: unexpected answer\n");
    return 1;
  }
  if (verb == "show") {
    PrintRecord(one);
  } else {
    std::printf("%s: %s\n", AdminField(one, "id").c_str(), AdminField(one, "status").c_str());
  }
  return 0;
}

}  // namespace pgb::tools
