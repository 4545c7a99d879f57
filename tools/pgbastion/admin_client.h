// The client side of the gateway's admin socket ([control] admin_socket;
// core/control_plane.h has the request lines), shared by `pgbastion
// sessions` and `pgbastion approvals`.
//
//   std::string path, answer;
//   if (!AdminSocketPath(args, "sessions", &path)) return 1;   // --socket, or --config's
//   if (!AskAdmin(path, "list", &answer)) { error: answer says why }
#pragma once

#include <string>
#include <string_view>

#include "simdjson.h"
#include "tools/pgbastion/commands.h"

namespace pgb::tools {

// The socket's path from --socket, or from the [control] admin_socket of
// --config (default /etc/pgbastion/pgbastion.toml); false after printing why
// not on stderr, prefixed with "pgbastion <command>: ".
bool AdminSocketPath(const Args& args, std::string_view command, std::string* path);

// Sends one request line; the admin socket's answer, or an error message.
bool AskAdmin(const std::string& path, const std::string& request, std::string* answer);

// AskAdmin, then the answer parsed as JSON into `root` (kept by `parser`);
// false after printing on stderr why not, or the gateway's {"error": ...}.
bool AskAdminJson(const std::string& path, const std::string& request, std::string_view command,
                  simdjson::dom::parser& parser, std::string* answer, simdjson::dom::element* root);

// A string or integer member of an answer's object as text ("" when absent).
std::string AdminField(simdjson::dom::element e, const char* key);

}  // namespace pgb::tools
