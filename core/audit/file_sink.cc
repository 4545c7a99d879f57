#include "core/audit/file_sink.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/file_read.h"
#include "base/log.h"

namespace pgb::audit {
namespace {

// "20240501T120000.123456Z"
std::string RotationSuffix(absl::Time now) {
  return absl::FormatTime("%Y%m%dT%H%M%E6SZ", now, absl::UTCTimeZone());
}

bool IsRotationSuffix(std::string_view s) {
  if (s.size() != 23 || s[8] != 'T' || s[15] != '.' || s[22] != 'Z') return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 15 || i == 22) continue;
    if (s[i] < '0' || s[i] > '9') {
      // A second rotation in the same microsecond adds "-N" (never in practice).
      return false;
    }
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<FileSink>> FileSink::Open(std::string name,
                                                         const FileSinkConfig& config) {
  std::unique_ptr<FileSink> sink(new FileSink(std::move(name), config));
  if (absl::Status status = sink->OpenActive(); !status.ok()) return status;
  return sink;
}

FileSink::~FileSink() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status FileSink::OpenActive() {
  const std::filesystem::path parent = std::filesystem::path(config_.path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
  }
  fd_ = ::open(config_.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd_ < 0) return ErrnoStatus("cannot open audit file", config_.path);
  struct stat st;
  if (::fstat(fd_, &st) != 0) return ErrnoStatus("cannot stat audit file", config_.path);
  size_ = static_cast<uint64_t>(st.st_size);
  // Time rotation counts from when the file was started (its first write
  // lands at creation; a reopened file keeps its age).
  opened_at_ = size_ > 0 ? absl::FromTimeT(st.st_ctim.tv_sec) : absl::Now();
  last_sync_ = absl::Now();
  return absl::OkStatus();
}

std::vector<std::string> FileSink::RotatedFiles(const std::string& path) {
  std::vector<std::string> out;
  const std::filesystem::path p(path);
  const std::string dir = p.parent_path().empty() ? "." : p.parent_path().string();
  const std::string prefix = p.filename().string() + ".";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (const dirent* entry = ::readdir(d)) {
    const std::string_view name = entry->d_name;
    if (name.size() > prefix.size() && name.substr(0, prefix.size()) == prefix &&
        IsRotationSuffix(name.substr(prefix.size()))) {
      out.push_back((std::filesystem::path(dir) / std::string(name)).string());
    }
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

absl::Status FileSink::Rotate(absl::Time now) {
  if (absl::Status status = Sync(); !status.ok()) return status;
  std::string target = config_.path + "." + RotationSuffix(now);
  struct stat st;
  if (::stat(target.c_str(), &st) == 0) {
    return absl::AlreadyExistsError("rotation target \"" + target + "\" exists");
  }
  if (::rename(config_.path.c_str(), target.c_str()) != 0) {
    return ErrnoStatus("cannot rotate audit file", config_.path);
  }
  ::close(fd_);
  fd_ = -1;
  if (absl::Status status = OpenActive(); !status.ok()) return status;
  opened_at_ = now;
  // Make the rename and the new file durable before records land in it.
  const std::filesystem::path parent = std::filesystem::path(config_.path).parent_path();
  const int dir_fd =
      ::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  if (config_.keep > 0) {
    std::vector<std::string> rotated = RotatedFiles(config_.path);
    while (rotated.size() > config_.keep) {
      if (::unlink(rotated.front().c_str()) != 0) {
        PGB_LOG(kWarning) << "audit: cannot remove old audit file " << rotated.front() << ": "
                          << std::strerror(errno);
      }
      rotated.erase(rotated.begin());
    }
  }
  return absl::OkStatus();
}

absl::Status FileSink::Sync() {
  if (!dirty_ || fd_ < 0) return absl::OkStatus();
  if (::fdatasync(fd_) != 0) return ErrnoStatus("cannot fdatasync audit file", config_.path);
  dirty_ = false;
  last_sync_ = absl::Now();
  return absl::OkStatus();
}

absl::Status FileSink::Deliver(std::string_view lines) {
  if (!already_written_.empty()) {
    const size_t common = std::min(already_written_.size(), lines.size());
    if (lines.substr(0, common) == std::string_view(already_written_).substr(0, common)) {
      lines.remove_prefix(common);
      already_written_.erase(0, common);
    } else {
      already_written_.clear();  // not the batch that failed: nothing to skip
    }
    if (lines.empty()) return absl::OkStatus();
  }
  if (fd_ < 0) {
    if (absl::Status status = OpenActive(); !status.ok()) return status;
  }
  size_t done = 0;
  while (done < lines.size()) {
    std::string_view piece = lines.substr(done);
    if (config_.rotate_bytes > 0 && size_ + piece.size() > config_.rotate_bytes) {
      // The whole lines that still fit.
      const uint64_t room = config_.rotate_bytes - std::min(size_, config_.rotate_bytes);
      const size_t end = room == 0 ? std::string_view::npos : piece.rfind('\n', room - 1);
      if (end != std::string_view::npos) {
        piece = piece.substr(0, end + 1);
      } else if (size_ > 0) {
        absl::Status status = Rotate(absl::Now());
        if (!status.ok()) {
          already_written_.assign(lines.substr(0, done));
          return status;
        }
        continue;
      } else {
        piece = piece.substr(0, piece.find('\n') + 1);  // longer than a file: alone in one
      }
    }
    if (absl::Status status = Append(piece); !status.ok()) {
      already_written_.assign(lines.substr(0, done));
      return status;
    }
    done += piece.size();
  }
  if (config_.fsync == FsyncPolicy::kAlways) return Sync();
  return absl::OkStatus();
}

absl::Status FileSink::Append(std::string_view lines) {
  size_t done = 0;
  while (done < lines.size()) {
    const ssize_t n = ::write(fd_, lines.data() + done, lines.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      absl::Status status = ErrnoStatus("cannot write audit file", config_.path);
      // All or nothing: cut what part of the lines got in, so a retry (or
      // the spill) does not leave a half line or a duplicate in the file.
      if (done > 0 && ::ftruncate(fd_, static_cast<off_t>(size_)) != 0) {
        PGB_LOG(kError) << "audit: cannot undo a partial write to " << config_.path;
      }
      return status;
    }
    done += static_cast<size_t>(n);
  }
  size_ += lines.size();
  dirty_ = true;
  return absl::OkStatus();
}

absl::Status FileSink::Tick(absl::Time now) {
  if (config_.fsync == FsyncPolicy::kInterval && dirty_ &&
      now - last_sync_ >= config_.fsync_interval) {
    if (absl::Status status = Sync(); !status.ok()) return status;
  }
  if (config_.rotate_interval > absl::ZeroDuration() && size_ > 0 && fd_ >= 0 &&
      now - opened_at_ >= config_.rotate_interval) {
    return Rotate(now);
  }
  return absl::OkStatus();
}

absl::Status FileSink::Close() {
  absl::Status status = config_.fsync == FsyncPolicy::kNever ? absl::OkStatus() : Sync();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  return status;
}

absl::StatusOr<std::optional<std::string>> FileSink::LastLine(const std::string& path) {
  std::vector<std::string> candidates = RotatedFiles(path);
  candidates.push_back(path);  // newest last
  for (auto it = candidates.rbegin(); it != candidates.rend(); ++it) {
    const bool active = *it == path;
    const int fd = ::open(it->c_str(), (active ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) continue;
      return ErrnoStatus("cannot open audit file", *it);
    }
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      return ErrnoStatus("cannot stat audit file", *it);
    }
    uint64_t size = static_cast<uint64_t>(st.st_size);
    // A line is at most a few tens of KiB (a 4 KiB slot, escaped).
    const uint64_t window = std::min<uint64_t>(size, 256 << 10);
    std::string tail(window, '\0');
    if (window > 0 && ::pread(fd, tail.data(), window, static_cast<off_t>(size - window)) !=
                          static_cast<ssize_t>(window)) {
      ::close(fd);
      return ErrnoStatus("cannot read audit file", *it);
    }
    if (!tail.empty() && tail.back() != '\n') {
      const size_t last = tail.rfind('\n');
      const uint64_t keep = last == std::string::npos ? size - window : size - window + last + 1;
      if (!active) {
        ::close(fd);
        return absl::DataLossError("rotated audit file \"" + *it + "\" ends in a partial line");
      }
      PGB_LOG(kWarning) << "audit: " << *it << " ends in a partial line (" << (size - keep)
                        << " bytes, a write cut short by a crash); removing it";
      if (::ftruncate(fd, static_cast<off_t>(keep)) != 0) {
        ::close(fd);
        return ErrnoStatus("cannot truncate audit file", *it);
      }
      tail.resize(static_cast<size_t>(keep - (size - window)));
      size = keep;
    }
    ::close(fd);
    if (tail.empty()) continue;
    tail.pop_back();  // '\n'
    const size_t start = tail.rfind('\n');
    return std::optional<std::string>(start == std::string::npos ? tail : tail.substr(start + 1));
  }
  return std::optional<std::string>();
}

}  // namespace pgb::audit
