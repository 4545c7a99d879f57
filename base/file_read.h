// The one file reader for configuration, keys and secrets: a whole regular
// file of bounded size, opened so that a FIFO or a terminal can never block
// or adopt the process (O_NONBLOCK, O_NOCTTY), with the mode of the file that
// was read (fstat on the open descriptor, so no check-then-open race).
// Messages name the file, never its contents.
//
//   PGB_ASSIGN_OR_RETURN(FileContents config, ReadRegularFile(path, 4 << 20));
//   PGB_ASSIGN_OR_RETURN(std::string token, ReadSecretFile("/etc/pgbastion/collector.token"));
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace pgb {

struct FileContents {
  std::string contents;
  mode_t mode = 0;  // st_mode: type and permission bits
};

// Errors: NotFound (no such file), PermissionDenied (EACCES), InvalidArgument
// (any other open or read failure, not a regular file, more than `max_size`
// bytes: "\"<path>\" is larger than <max_size> bytes").
[[nodiscard]] absl::StatusOr<FileContents> ReadRegularFile(const std::string& path,
                                                           size_t max_size);

// A secret (a bearer token, a password) from a file only the service may
// read: a regular file, mode 600 (no group or other bits), at most
// `max_size` bytes; the secret is its first line (without "\r\n").
// Errors: PermissionDenied (the file cannot be read, or its mode or size is
// wrong), InvalidArgument (the first line is empty).
[[nodiscard]] absl::StatusOr<std::string> ReadSecretFile(const std::string& path,
                                                         size_t max_size = 16384);

// The failure in errno of `what` ("cannot write") on `path`, for writers of
// files: ResourceExhausted when the disk or quota is full (ENOSPC, EDQUOT), so
// that callers can tell a full disk from other trouble; Unavailable otherwise.
[[nodiscard]] absl::Status ErrnoStatus(std::string_view what, const std::string& path);

}  // namespace pgb
