// FileSink: the JSON Lines audit file. Rotation by size and by time renames
// the active file to <path>.<UTC timestamp> (sortable: 20240501T120000.123456Z)
// and starts a new one; `keep` bounds how many rotated files remain (the
// oldest go first). The hash chain runs on across rotated files. A batch that
// would take the file past rotate_bytes is split between lines, so no file
// exceeds it unless a single line does (that line then has a file to itself).
// fsync: "always" after every delivered batch, "interval" at most every
// fsync_interval, "never" (left to the kernel).
//
//   PGB_ASSIGN_OR_RETURN(std::unique_ptr<FileSink> sink, FileSink::Open("file0", config));
//   PGB_RETURN_IF_ERROR(sink->Deliver(lines));
//
// LastLine finds where a previous run stopped, so the writer can continue
// the chain: the last complete line of the newest file (the active one if it
// has any, else the newest rotated one).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/audit/audit_config.h"
#include "core/audit/sink.h"

namespace pgb::audit {

class FileSink : public AuditSink {
 public:
  static absl::StatusOr<std::unique_ptr<FileSink>> Open(std::string name,
                                                        const FileSinkConfig& config);
  ~FileSink() override;

  std::string_view name() const override { return name_; }
  absl::Status Deliver(std::string_view lines) override;
  absl::Status Tick(absl::Time now) override;
  absl::Status Close() override;

  // Rotated files of `path`, oldest first.
  static std::vector<std::string> RotatedFiles(const std::string& path);
  // The last complete line (without '\n') of the newest file of `path`, or
  // nullopt when there is none. A partial last line (a crash mid-write) is
  // cut off the active file first, and reported in the log.
  static absl::StatusOr<std::optional<std::string>> LastLine(const std::string& path);

 private:
  FileSink(std::string name, FileSinkConfig config)
      : name_(std::move(name)), config_(std::move(config)) {}
  absl::Status OpenActive();
  absl::Status Rotate(absl::Time now);
  absl::Status Sync();
  // Writes `lines` to the active file, all or nothing.
  absl::Status Append(std::string_view lines);

  std::string name_;
  FileSinkConfig config_;
  int fd_ = -1;
  uint64_t size_ = 0;
  absl::Time opened_at_;
  absl::Time last_sync_;
  bool dirty_ = false;  // written since the last fsync
  // The start of a batch that went into files before a later part of it
  // failed: offered again, those lines are not written twice.
  std::string already_written_;
};

}  // namespace pgb::audit
