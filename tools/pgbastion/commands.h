// The pgbastion command's subcommands. Each takes the arguments after its own
// name, handles --help itself, prints errors on stderr and returns the exit
// code: 0 success, 1 failure (bad config, refused, ...), 2 usage error.
//
//   pgbastion serve --config /etc/pgbastion/pgbastion.toml
#pragma once

#include <string_view>
#include <vector>

namespace pgb::tools {

using Args = std::vector<std::string_view>;

int RunServe(const Args& args);          // serve.cc
int RunCheckConfig(const Args& args);    // check_config.cc
int RunScramVerifier(const Args& args);  // scram_verifier.cc
int RunReload(const Args& args);         // reload.cc
int RunPolicy(const Args& args);         // policy_explain.cc
int RunAudit(const Args& args);          // audit.cc
int RunToken(const Args& args);          // token.cc: token mint|jwks|verify
int RunSessions(const Args& args);       // sessions.cc: sessions [end ...]
int RunApprovals(const Args& args);      // approvals.cc: approvals list|show|approve|deny
int RunReplay(const Args& args);         // replay.cc: replay FILE|SESSION_ID
int RunRecordings(const Args& args);     // replay.cc: recordings list

// Finds "--name VALUE" or "--name=VALUE" in args. Returns false if absent.
bool FindFlag(const Args& args, std::string_view name, std::string_view* value);
bool HasFlag(const Args& args, std::string_view name);

}  // namespace pgb::tools
