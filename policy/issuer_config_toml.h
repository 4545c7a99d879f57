// Reads [[issuer]] tables of the config file into IssuerConfig
// (policy/issuer_config.h). Called by core/config.cc, which owns the file and
// reports the problems found here with its own, in one pass, each naming its
// key: `issuer[0].audience: required (the "aud" value tokens must carry)`.
//
//   config.issuers = ParseIssuerTables(*root.get("issuer"), resolve_path, sink);
//
// A jwks_file is read and parsed here, so a config that passes check-config
// has keys that load.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/toml_table.h"
#include "policy/issuer_config.h"
#include "toml++/toml.h"

namespace pgb::policy {

// `node` is the value of the root's "issuer" key. `resolve_path` turns a
// relative file name into the path to open (relative to the config file).
// Problems go to `sink`.
std::vector<IssuerConfig> ParseIssuerTables(
    const toml::node& node, const std::function<std::string(std::string_view)>& resolve_path,
    const TomlProblemSink& sink);

}  // namespace pgb::policy
