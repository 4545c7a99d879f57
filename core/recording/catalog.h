// The recordings directory as the tools see it: which recordings are there
// (`pgbastion recordings list`, `pgbastion replay SESSION_ID`), and whether
// each recording an audit trail names is there unchanged (`pgbastion audit
// verify --recordings DIR`).
//
//   for (const RecordingFile& f : ListRecordingFiles(dir)) { ... f.session_id ... }
//   PGB_ASSIGN_OR_RETURN(std::vector<RecordingFinding> problems,
//                        CheckRecordings({"audit.jsonl"}, dir));
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace pgb::recording {

struct RecordingFile {
  std::string path;
  uint64_t session_id = 0;
  int64_t start_us = 0;  // from the name (second precision)
};

// The *.pgbrec files of `dir` whose names parse, oldest first.
absl::StatusOr<std::vector<RecordingFile>> ListRecordingFiles(const std::string& dir);
// The recording of session `session_id` in `dir`, if there is one.
std::optional<RecordingFile> FindRecording(const std::string& dir, uint64_t session_id);
// The header event's JSON object (the file's first event).
absl::StatusOr<std::string> ReadRecordingHeader(const std::string& path);

struct RecordingFinding {
  uint64_t session_id = 0;
  std::string file;     // the recording (or where it should be)
  std::string problem;  // "missing", "changed", "truncated", "corrupt"
  std::string detail;
  std::string Describe() const;
};

struct RecordingCheck {
  uint64_t checked = 0;  // disconnect records naming a recording
  std::vector<RecordingFinding> findings;
};

// Every disconnect record of `audit_files` that carries a recording's
// SHA-256 and length is checked against the file in `dir`. An unreadable
// audit file is an error; a bad recording is a finding.
absl::StatusOr<RecordingCheck> CheckRecordings(const std::vector<std::string>& audit_files,
                                               const std::string& dir);

}  // namespace pgb::recording
