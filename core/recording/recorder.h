// Recorder: the session recordings' writer, off the data path like the audit
// trail (core/audit/writer.h). Each shard has a RecorderShard with its own
// bounded single-producer ring (core/audit/ring.h) of chunks; one recorder
// thread drains every ring, compresses each chunk into one zstd frame
// (ZSTD_compressStream2) and appends it to its session's file. The shard
// never blocks on disk: a chunk that finds its ring full, or the recorder
// unhealthy (a write failed: disk full), is refused, and the session applies
// the configured choice (core/recording/session_recording.h).
//
// Files are <directory>/<start UTC, YYYYmmddTHHMMSSZ>-<session id>.pgbrec
// (core/recording/format.h). Retention (size and age) runs on the recorder
// thread once a minute; files still being written are never removed.
//
//   PGB_ASSIGN_OR_RETURN(std::unique_ptr<Recorder> recorder, Recorder::Start(config, shards));
//   RecorderShard& side = recorder->shard(shard_id);   // on that shard only
//   if (RecordingChunk* c = side.Claim()) { fill *c; side.Publish(); } else { overflow }
//   ...
//   recorder->Stop();  // drains every ring, closes every file
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "core/audit/ring.h"
#include "core/recording/recording_config.h"

namespace pgb::recording {

struct RecordingChunk {
  uint64_t session_id = 0;
  int64_t start_us = 0;  // the session's start: names the file
  bool last = false;     // the file is complete after this chunk
  std::string bytes;     // whole events (format.h)
};

// A shard's side. Used by exactly one thread (the shard's).
class RecorderShard {
 public:
  // A free slot to fill, or nullptr when the queue is full or the recorder
  // cannot write (then the caller applies on_overflow). Claiming twice
  // without Publish returns the same slot.
  [[nodiscard]] RecordingChunk* Claim() {
    if (!healthy_->load(std::memory_order_relaxed)) return nullptr;
    return ring_.TryClaim();
  }
  void Publish() { ring_.Publish(); }
  const RecordingConfig& config() const { return config_; }

 private:
  friend class Recorder;
  RecorderShard(const RecordingConfig& config, const std::atomic<bool>* healthy)
      : config_(config), healthy_(healthy), ring_(config.queue_chunks) {}

  const RecordingConfig& config_;
  const std::atomic<bool>* healthy_;
  audit::SpscRing<RecordingChunk> ring_;
};

struct RecorderMetrics {
  uint64_t chunks_written = 0;
  uint64_t bytes_written = 0;  // compressed, to files
  uint64_t write_errors = 0;
  uint64_t files_removed = 0;  // by retention
  bool healthy = true;
};

class Recorder {
 public:
  // Creates the directory if needed (mode 0750) and starts the thread.
  static absl::StatusOr<std::unique_ptr<Recorder>> Start(const RecordingConfig& config, int shards);
  ~Recorder();
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  RecorderShard& shard(int i) { return *shards_[static_cast<size_t>(i)]; }
  RecorderMetrics metrics() const;
  // Drains every ring and closes every file. Idempotent. Shards must have
  // stopped producing.
  void Stop();

  // The file name of a session's recording (without the directory).
  static std::string FileName(uint64_t session_id, int64_t start_us);
  // Removes the oldest recordings beyond the configured size and age, never
  // one in `open` (names); returns how many were removed.
  static uint64_t ApplyRetention(const RecordingConfig& config,
                                 const std::vector<std::string>& open, int64_t now_us);

 private:
  explicit Recorder(const RecordingConfig& config);
  void Run();
  size_t Drain();
  void Write(const RecordingChunk& chunk);
  void CheckHealth();

  const RecordingConfig config_;
  std::vector<std::unique_ptr<RecorderShard>> shards_;
  std::atomic<bool> healthy_{true};
  std::atomic<bool> stop_{false};
  std::thread thread_;
  bool stopped_ = false;

  // Recorder-thread state.
  struct OpenFile;
  std::vector<std::unique_ptr<OpenFile>> files_;
  void* cctx_ = nullptr;  // ZSTD_CCtx
  std::string frame_;
  std::atomic<uint64_t> chunks_written_{0};
  std::atomic<uint64_t> bytes_written_{0};
  std::atomic<uint64_t> write_errors_{0};
  std::atomic<uint64_t> files_removed_{0};
};

}  // namespace pgb::recording
