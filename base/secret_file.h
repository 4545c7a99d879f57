// Reads a secret (a bearer token, a password) that an audit sink needs from
// a file only the service may read: a regular file, mode 600 (no group or
// other bits), at most 16 KiB; the secret is its first line. Messages name
// the file, never its contents.
//
//   PGB_ASSIGN_OR_RETURN(std::string token, ReadSecretFile("/etc/pgbastion/collector.token"));
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace pgb {

absl::StatusOr<std::string> ReadSecretFile(const std::string& path);

}  // namespace pgb
