// SpillQueue: one sink's on-disk queue of audit lines that it could not take
// yet. Append-only segment files (<dir>/<number>.seg, 16 MiB each) and a
// cursor file (<dir>/cursor: "<segment> <offset>") that says how far delivery
// got. Lines are read back in order from the cursor; a segment that has been
// delivered whole is deleted. The queue survives restarts: a gateway that
// stops with a sink down delivers the spill when it starts again.
//
// Durability: appends are fdatasync'ed (a spilled record is as durable as one
// in the file sink with fsync = "always"). The cursor is replaced with
// rename(2) after each delivered chunk but not fsync'ed: after a power loss a
// chunk may be delivered twice (receivers that must not see duplicates key
// on "seq"), never skipped.
//
//   PGB_ASSIGN_OR_RETURN(std::unique_ptr<SpillQueue> spill, SpillQueue::Open(dir, 1 << 30));
//   PGB_RETURN_IF_ERROR(spill->Append(lines));
//   PGB_ASSIGN_OR_RETURN(std::string chunk, spill->Peek(1 << 20));
//   if (sink.Deliver(chunk).ok()) PGB_RETURN_IF_ERROR(spill->Consume(chunk.size()));
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pgb::audit {

class SpillQueue {
 public:
  static constexpr uint64_t kSegmentBytes = 16 << 20;

  // Creates `dir` (mode 0700) if needed, finds the segments and the cursor,
  // and cuts a partial line off the newest segment (a crash mid-append).
  static absl::StatusOr<std::unique_ptr<SpillQueue>> Open(const std::string& dir,
                                                          uint64_t max_bytes);
  ~SpillQueue();
  SpillQueue(const SpillQueue&) = delete;
  SpillQueue& operator=(const SpillQueue&) = delete;

  bool empty() const { return pending_bytes() == 0; }
  // Bytes not yet delivered; bytes on disk (what max_bytes limits).
  uint64_t pending_bytes() const;
  uint64_t disk_bytes() const { return disk_bytes_; }

  // Appends complete lines. ResourceExhausted when the queue would exceed
  // max_bytes; Internal/Unavailable when the disk write fails.
  [[nodiscard]] absl::Status Append(std::string_view lines);

  // Up to `max_bytes` of complete lines from the cursor (at least one line if
  // any is pending, however long). Empty when the queue is empty.
  absl::StatusOr<std::string> Peek(size_t max_bytes);
  // Marks `bytes` (a prefix of what Peek returned) delivered.
  [[nodiscard]] absl::Status Consume(size_t bytes);

 private:
  struct Segment {
    uint64_t number = 0;
    uint64_t size = 0;
  };

  SpillQueue(std::string dir, uint64_t max_bytes) : dir_(std::move(dir)), max_bytes_(max_bytes) {}
  std::string SegmentPath(uint64_t number) const;
  absl::Status WriteCursor();
  absl::Status OpenTail();  // opens segments_.back() for appending

  std::string dir_;
  uint64_t max_bytes_;
  std::vector<Segment> segments_;  // oldest first
  uint64_t cursor_offset_ = 0;     // in segments_.front()
  uint64_t disk_bytes_ = 0;
  int tail_fd_ = -1;
};

}  // namespace pgb::audit
