#include "core/audit/spill.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "base/file_read.h"

namespace pgb::audit {
namespace {

absl::Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("cannot write", path);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

bool ParseSegmentName(std::string_view name, uint64_t* number) {
  if (name.size() != 24 || name.substr(20) != ".seg") return false;
  const auto [end, ec] = std::from_chars(name.data(), name.data() + 20, *number);
  return ec == std::errc() && end == name.data() + 20;
}

}  // namespace

std::string SpillQueue::SegmentPath(uint64_t number) const {
  char name[32];
  std::snprintf(name, sizeof(name), "/%020llu.seg", static_cast<unsigned long long>(number));
  return dir_ + name;
}

absl::StatusOr<std::unique_ptr<SpillQueue>> SpillQueue::Open(const std::string& dir,
                                                             uint64_t max_bytes) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::UnavailableError("cannot create spill directory \"" + dir + "\": " + ec.message());
  }
  ::chmod(dir.c_str(), 0700);
  std::unique_ptr<SpillQueue> queue(new SpillQueue(dir, max_bytes));
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return ErrnoStatus("cannot open spill directory", dir);
  while (const dirent* entry = ::readdir(d)) {
    uint64_t number;
    if (!ParseSegmentName(entry->d_name, &number)) continue;
    struct stat st;
    const std::string path = queue->SegmentPath(number);
    if (::stat(path.c_str(), &st) != 0) continue;
    queue->segments_.push_back({number, static_cast<uint64_t>(st.st_size)});
  }
  ::closedir(d);
  std::sort(queue->segments_.begin(), queue->segments_.end(),
            [](const Segment& a, const Segment& b) { return a.number < b.number; });

  // The cursor: which segment and offset delivery reached.
  if (FILE* f = std::fopen((dir + "/cursor").c_str(), "r")) {
    unsigned long long segment = 0, offset = 0;
    if (std::fscanf(f, "%llu %llu", &segment, &offset) == 2) {
      while (!queue->segments_.empty() && queue->segments_.front().number < segment) {
        ::unlink(queue->SegmentPath(queue->segments_.front().number).c_str());
        queue->segments_.erase(queue->segments_.begin());
      }
      if (!queue->segments_.empty() && queue->segments_.front().number == segment) {
        queue->cursor_offset_ = std::min<uint64_t>(offset, queue->segments_.front().size);
      }
    }
    std::fclose(f);
  }
  if (queue->segments_.empty()) queue->segments_.push_back({1, 0});
  if (absl::Status status = queue->OpenTail(); !status.ok()) return status;

  // A crash in the middle of an append leaves a partial last line: cut it.
  Segment& tail = queue->segments_.back();
  if (tail.size > 0) {
    const uint64_t window = std::min<uint64_t>(tail.size, 1 << 20);
    std::string buffer(window, '\0');
    const ssize_t n =
        ::pread(queue->tail_fd_, buffer.data(), window, static_cast<off_t>(tail.size - window));
    if (n == static_cast<ssize_t>(window) && buffer.back() != '\n') {
      const size_t last = buffer.rfind('\n');
      const uint64_t keep =
          last == std::string::npos ? tail.size - window : tail.size - window + last + 1;
      if (::ftruncate(queue->tail_fd_, static_cast<off_t>(keep)) == 0) tail.size = keep;
    }
  }
  for (const Segment& segment : queue->segments_) queue->disk_bytes_ += segment.size;
  return queue;
}

SpillQueue::~SpillQueue() {
  if (tail_fd_ >= 0) ::close(tail_fd_);
}

uint64_t SpillQueue::pending_bytes() const { return disk_bytes_ - cursor_offset_; }

absl::Status SpillQueue::OpenTail() {
  if (tail_fd_ >= 0) ::close(tail_fd_);
  const std::string path = SegmentPath(segments_.back().number);
  tail_fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (tail_fd_ < 0) return ErrnoStatus("cannot open spill segment", path);
  return absl::OkStatus();
}

absl::Status SpillQueue::Append(std::string_view lines) {
  if (lines.empty()) return absl::OkStatus();
  if (disk_bytes_ + lines.size() > max_bytes_) {
    return absl::ResourceExhaustedError("spill directory \"" + dir_ +
                                        "\" is full (spill_max_bytes)");
  }
  if (segments_.back().size >= kSegmentBytes) {
    segments_.push_back({segments_.back().number + 1, 0});
    if (absl::Status status = OpenTail(); !status.ok()) {
      segments_.pop_back();
      return status;
    }
  }
  Segment& tail = segments_.back();
  const std::string path = SegmentPath(tail.number);
  absl::Status status = WriteAll(tail_fd_, lines, path);
  if (status.ok() && ::fdatasync(tail_fd_) != 0) status = ErrnoStatus("cannot fdatasync", path);
  if (!status.ok()) {
    // Leave no partial line behind: a later append must start on a line.
    if (::ftruncate(tail_fd_, static_cast<off_t>(tail.size)) != 0) {
      tail.size = static_cast<uint64_t>(::lseek(tail_fd_, 0, SEEK_END));
    }
    return status;
  }
  tail.size += lines.size();
  disk_bytes_ += lines.size();
  return absl::OkStatus();
}

absl::StatusOr<std::string> SpillQueue::Peek(size_t max_bytes) {
  // Skip (and delete) delivered segments.
  while (segments_.size() > 1 && cursor_offset_ >= segments_.front().size) {
    ::unlink(SegmentPath(segments_.front().number).c_str());
    disk_bytes_ -= segments_.front().size;
    segments_.erase(segments_.begin());
    cursor_offset_ = 0;
    if (absl::Status status = WriteCursor(); !status.ok()) return status;
  }
  const Segment& front = segments_.front();
  if (cursor_offset_ >= front.size) return std::string();
  const std::string path = SegmentPath(front.number);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("cannot open spill segment", path);
  std::string out;
  uint64_t offset = cursor_offset_;
  size_t want = static_cast<size_t>(std::min<uint64_t>(max_bytes, front.size - offset));
  for (;;) {
    const size_t start = out.size();
    out.resize(start + want);
    const ssize_t n = ::pread(fd, out.data() + start, want, static_cast<off_t>(offset));
    if (n <= 0) {
      ::close(fd);
      return ErrnoStatus("cannot read spill segment", path);
    }
    out.resize(start + static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
    const size_t last = out.rfind('\n');
    if (last != std::string::npos) {
      out.resize(last + 1);
      break;
    }
    if (offset >= front.size) break;  // no newline at all: cannot happen after Open
    want = static_cast<size_t>(std::min<uint64_t>(64 << 10, front.size - offset));
  }
  ::close(fd);
  return out;
}

absl::Status SpillQueue::Consume(size_t bytes) {
  cursor_offset_ += bytes;
  if (segments_.size() == 1 && cursor_offset_ >= segments_.front().size) {
    // Everything delivered: start over with an empty segment.
    ::unlink(SegmentPath(segments_.front().number).c_str());
    const uint64_t next = segments_.front().number + 1;
    segments_.clear();
    segments_.push_back({next, 0});
    disk_bytes_ = 0;
    cursor_offset_ = 0;
    if (absl::Status status = OpenTail(); !status.ok()) return status;
  }
  return WriteCursor();
}

absl::Status SpillQueue::WriteCursor() {
  const std::string path = dir_ + "/cursor";
  const std::string temp = path + ".tmp";
  char text[64];
  const int n = std::snprintf(text, sizeof(text), "%llu %llu\n",
                              static_cast<unsigned long long>(segments_.front().number),
                              static_cast<unsigned long long>(cursor_offset_));
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus("cannot write", temp);
  absl::Status status = WriteAll(fd, std::string_view(text, static_cast<size_t>(n)), temp);
  ::close(fd);
  if (status.ok() && ::rename(temp.c_str(), path.c_str()) != 0) {
    status = ErrnoStatus("cannot rename", temp);
  }
  return status;
}

}  // namespace pgb::audit
