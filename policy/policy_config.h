// The [[scope]] tables of the config file, parsed into an immutable Policy.
// core/config.cc calls this with the parsed TOML document; problems go to its
// sink with their key path and position so they join the config's one sorted
// list (`scope[2].relations.deny[0]: invalid pattern "app..x": ...`). The keys
// are documented in docs/configuration.md.
//
//   absl::StatusOr<std::shared_ptr<const Policy>> policy =
//       ParsePolicy(root, {"app", "reporting"}, config.issuers, sink);
//   if (!policy.ok()) { ... each problem went to the sink; the status counts them ... }
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/toml_table.h"
#include "policy/issuer_config.h"
#include "policy/rules.h"
#include "toml++/toml.h"

namespace pgb::policy {

// Parses every [[scope]] of `root` (at least one is required: deny by
// default). `target_names` are the names of the config's [[target]]s, which a
// scope's `targets` may name; `issuers` are its [[issuer]]s, which `sources`
// name ("issuer:<name>"). Each problem goes to `sink`, so that it joins
// the config's one list; when there was any, the result is an error
// (InvalidArgument) that only counts them.
[[nodiscard]] absl::StatusOr<std::shared_ptr<const Policy>> ParsePolicy(
    const toml::table& root, const std::vector<std::string>& target_names,
    const std::vector<IssuerConfig>& issuers, const TomlProblemSink& sink);

}  // namespace pgb::policy
