#include "base/secret_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pgb {

absl::StatusOr<std::string> ReadSecretFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    return absl::PermissionDeniedError("cannot open \"" + path + "\": " + std::strerror(errno));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) != 0 ||
      st.st_size > 16384) {
    ::close(fd);
    return absl::PermissionDeniedError("\"" + path +
                                       "\" must be a regular file of mode 600 (at most 16 KiB)");
  }
  std::string secret(static_cast<size_t>(st.st_size), '\0');
  const ssize_t n = ::read(fd, secret.data(), secret.size());
  ::close(fd);
  secret.resize(n > 0 ? static_cast<size_t>(n) : 0);
  if (const size_t end = secret.find_first_of("\r\n"); end != std::string::npos) secret.resize(end);
  if (secret.empty()) return absl::InvalidArgumentError("\"" + path + "\" is empty");
  return secret;
}

}  // namespace pgb
