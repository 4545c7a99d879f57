// Parses the [audit] section (core/audit/audit_config.h) from the TOML tree;
// called by core/config.cc, whose problem sink (core/toml_table.h) gathers
// these problems with the rest of the file's into one list.
//
//   ParseAuditConfig(root.get("audit"), resolve_path, sink, &config.audit);
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "base/toml_table.h"
#include "core/audit/audit_config.h"
#include "toml++/toml.h"

namespace pgb::audit {

// Reports one error: where, the key path ("audit.sink[0].path"), the message.
using AuditConfigError = TomlProblemSink;

// Parses the [audit] node (nullptr if absent: audit disabled) into `out`,
// reporting every problem through `error`. Relative paths are resolved with
// `resolve_path`. The signing key file is loaded to check it (its contents
// never appear in a message).
void ParseAuditConfig(const toml::node* audit,
                      const std::function<std::string(std::string_view)>& resolve_path,
                      const AuditConfigError& error, AuditConfig* out);

}  // namespace pgb::audit
