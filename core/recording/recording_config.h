// [recording]: where session recordings go and what happens when they cannot
// keep up (core/recording/recorder.h). A scope asks for recording with
// `record = "statements" | "full"`; without a [recording] table such a scope
// is a configuration error. Keys documented in docs/configuration.md.
//
//   [recording]
//   directory = "/var/lib/pgbastion/recordings"
//   on_overflow = "end-session"        # or "gap"
//   retention_max_bytes = 10737418240  # oldest recordings removed beyond this
//   retention_max_age = "30d"
//   session_max_bytes = 0              # 0: no per-session limit
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "base/toml_table.h"
#include "toml++/toml.h"

namespace pgb::recording {

// A scope's `record` key: what the recorder keeps of its sessions.
enum class RecordMode : uint8_t { kOff, kStatements, kFull };

enum class OnOverflow : uint8_t {
  kEndSession,  // the session ends with FATAL 53400 (fail closed)
  kGap,         // a gap marker in the recording and an audit record
};

struct RecordingConfig {
  bool enabled = false;  // a [recording] table exists
  std::string directory;
  OnOverflow on_overflow = OnOverflow::kEndSession;
  uint64_t retention_max_bytes = 0;                         // 0: no size limit
  absl::Duration retention_max_age = absl::ZeroDuration();  // zero: no age limit
  // Content bytes per session after which the recording stops with a
  // truncation marker (and the session's audit says so); 0: no limit.
  uint64_t session_max_bytes = 0;
  // Per shard: the queue towards the recorder thread, in chunks of
  // chunk_bytes (the bound on memory a slow disk can take).
  uint32_t queue_chunks = 256;
  uint32_t chunk_bytes = 64 * 1024;
  // A session's pending bytes are handed on at least this often, so that a
  // crash loses at most this much of the recording.
  absl::Duration flush_interval = absl::Milliseconds(200);

  // Each [[scope]]'s `record` (read with the [recording] table; the policy
  // layer leaves the key to us): (scope name, mode) for every scope that
  // records.
  std::vector<std::pair<std::string, RecordMode>> scopes;
  RecordMode ModeFor(std::string_view scope) const {
    for (const auto& [name, mode] : scopes) {
      if (name == scope) return mode;
    }
    return RecordMode::kOff;
  }
};

// Parses the [recording] node (nullptr if absent) and the `record` key of
// each [[scope]] table (`scopes`, the root's "scope" node or nullptr) into
// `out`; `resolve` makes paths absolute against the config file's directory.
// A scope that records without a [recording] table is an error.
void ParseRecordingConfig(const toml::node* node, const toml::node* scopes,
                          const std::function<std::string(std::string_view)>& resolve,
                          const TomlProblemSink& sink, RecordingConfig* out);

}  // namespace pgb::recording
