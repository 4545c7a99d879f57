#include "base/file_read.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "base/str_cat.h"

namespace pgb {

absl::StatusOr<FileContents> ReadRegularFile(const std::string& path, size_t max_size) {
  const int fd = ::open(path.c_str(),
                        O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);  // a FIFO must not block us
  if (fd < 0) {
    const int err = errno;
    const std::string message = Cat("cannot open \"", path, "\": ", std::strerror(err));
    if (err == ENOENT) return absl::NotFoundError(message);
    if (err == EACCES) return absl::PermissionDeniedError(message);
    return absl::InvalidArgumentError(message);
  }
  FileContents result;
  struct stat st;
  absl::Status status;
  if (::fstat(fd, &st) != 0) {
    status = absl::InvalidArgumentError(Cat("cannot stat \"", path, "\": ", std::strerror(errno)));
  } else if (!S_ISREG(st.st_mode)) {
    status = absl::InvalidArgumentError(Cat("\"", path, "\" is not a regular file"));
  } else if (static_cast<uint64_t>(st.st_size) > max_size) {
    status = absl::InvalidArgumentError(Cat("\"", path, "\" is larger than ", max_size, " bytes"));
  } else {
    result.mode = st.st_mode;
    char buffer[8192];
    for (;;) {
      const ssize_t n = ::read(fd, buffer, sizeof(buffer));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        status =
            absl::InvalidArgumentError(Cat("cannot read \"", path, "\": ", std::strerror(errno)));
        break;
      }
      if (n == 0) break;
      result.contents.append(buffer, static_cast<size_t>(n));
      // The file may have grown since fstat.
      if (result.contents.size() > max_size) {
        status =
            absl::InvalidArgumentError(Cat("\"", path, "\" is larger than ", max_size, " bytes"));
        break;
      }
    }
  }
  ::close(fd);
  if (!status.ok()) return status;
  return result;
}

absl::StatusOr<std::string> ReadSecretFile(const std::string& path, size_t max_size) {
  const auto wrong_file = [&] {
    return absl::PermissionDeniedError(Cat(
        "\"", path, "\" must be a regular file of mode 600 (at most ", max_size / 1024, " KiB)"));
  };
  absl::StatusOr<FileContents> file = ReadRegularFile(path, max_size);
  if (!file.ok()) {
    // Open and read failures say why; the rest is the wrong kind of file.
    const std::string message(file.status().message());
    if (message.starts_with("cannot ")) return absl::PermissionDeniedError(message);
    return wrong_file();
  }
  if ((file->mode & 077) != 0) return wrong_file();
  std::string secret = std::move(file->contents);
  if (const size_t end = secret.find_first_of("\r\n"); end != std::string::npos) secret.resize(end);
  if (secret.empty()) return absl::InvalidArgumentError(Cat("\"", path, "\" is empty"));
  return secret;
}

absl::Status ErrnoStatus(std::string_view what, const std::string& path) {
  const int err = errno;
  std::string message = Cat(what, " \"", path, "\": ", std::strerror(err));
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError(message);
  return absl::UnavailableError(message);
}

}  // namespace pgb
