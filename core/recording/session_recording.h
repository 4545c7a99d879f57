// SessionRecording: one session's recording, on its shard. The session hands
// it every byte it sends, after masking, in each direction
// (Observe(kFromClient, ...) for what goes to the database, kToClient for what
// goes to the client); it frames the two streams itself (they arrive in
// arbitrary pieces), keeps what the scope's `record` mode asks for, and
// hands whole-event chunks to the recorder thread (core/recording/recorder.h)
// when a chunk is full, on the flush interval, and at the end. It never
// blocks and never allocates more than about one chunk.
//
// What is kept (docs/recording.md):
//   full:        every client message but PasswordMessage (login secrets are
//                never recorded, and login is over before recording starts),
//                every message to the client
//   statements:  every client message (the same exception), and of the
//                client's: CommandComplete, ErrorResponse, NoticeResponse,
//                EmptyQueryResponse, ReadyForQuery, plus a row count (kRows)
//                for the DataRows left out
//   Bind parameter values follow the audit's `parameters`: "on" keeps them;
//   otherwise each non-NULL value is recorded as the text "[redacted]".
//
// When a chunk finds no room: on_overflow "end-session" sets must_end() (the
// session ends with FATAL 53400 and the recording stops); "gap" drops the
// chunk, writes a kGap event in its place and queues an incident for the
// audit trail. session_max_bytes ends the recording with kTruncated.
//
//   SessionRecording rec(recorder_shard, audit_parameters, header);
//   rec.Observe(Direction::kToClient, data, n);
//   if (rec.attention()) { take incidents; if (rec.must_end()) end the session; }
//   Summary s = rec.Finish("client terminated the session");  // for the disconnect record
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/audit/record.h"
#include "core/recording/format.h"
#include "core/recording/recorder.h"
#include "policy/identity.h"

namespace pgb::recording {

enum class Direction : uint8_t { kFromClient, kToClient };

struct RecordingHeader {
  uint64_t session_id = 0;
  int64_t start_us = 0;
  const policy::Identity* identity = nullptr;
  std::string_view scope;
  std::string_view target;
  std::string_view role;
  std::string_view application_name;
  std::string_view client;
  std::string_view gateway_version;
  RecordMode mode = RecordMode::kFull;
};
// The kHeader event's JSON object.
std::string HeaderJson(const RecordingHeader& header);

class SessionRecording {
 public:
  using Status = audit::AuditRecord::RecordingStatus;
  struct Summary {
    std::string sha256_hex;
    uint64_t bytes = 0;  // content handed to the recorder
    Status status = Status::kComplete;
  };

  SessionRecording(RecorderShard& shard, audit::ParameterMode parameters,
                   const RecordingHeader& header);
  SessionRecording(const SessionRecording&) = delete;
  SessionRecording& operator=(const SessionRecording&) = delete;

  void Observe(Direction direction, const char* data, size_t n);
  // Hands pending bytes on once they are older than the flush interval.
  void Tick();
  // Something for the session to act on: incidents or must_end().
  bool attention() const { return must_end_ || !incidents_.empty(); }
  bool must_end() const { return must_end_; }
  // Messages for audit records (kind "recording"): gaps and truncation.
  std::vector<std::string> TakeIncidents() { return std::move(incidents_); }
  // Writes the end event and hands everything on. Once.
  Summary Finish(std::string_view reason);

 private:
  enum class Action : uint8_t { kRecord, kSkip, kCountRow, kGatherBind };
  struct Stream {
    char header[5];
    uint8_t have = 0;   // header bytes of the current message so far
    uint32_t left = 0;  // body bytes still to come
    Action action = Action::kSkip;
    uint8_t kind = 0;         // kFromClient / kToClient
    size_t event = kNoEvent;  // offset in buffer_ of the open event's header
    std::string bind;         // a Bind being gathered for redaction
    bool bind_oversize = false;
  };
  static constexpr size_t kNoEvent = ~size_t{0};
  static constexpr size_t kMaxBindGather = 1 << 20;

  void Feed(Stream& s, const char* data, size_t n);
  void StartMessage(Stream& s);
  void EndMessage(Stream& s);
  void OpenEvent(Stream& s);
  void CloseEvent(Stream& s, bool continues);
  void AppendEvent(uint8_t kind, std::string_view payload);
  // Room check for one whole message or event of `bytes`; false: truncated.
  bool Admit(size_t bytes);
  void HandOff(bool last);
  void Stop(Status why);
  void FlushRows();

  RecorderShard& shard_;
  const RecordingConfig& config_;
  const audit::ParameterMode parameters_;
  const RecordMode mode_;
  const uint64_t session_id_;
  const int64_t start_us_;
  Stream from_client_;
  Stream to_client_;
  std::string buffer_;            // whole events, and the open ones
  int64_t pending_since_us_ = 0;  // 0: buffer_ empty
  int64_t now_us_ = 0;            // one clock read per Observe
  ContentHash hash_;
  uint64_t handed_bytes_ = 0;
  uint64_t rows_ = 0;      // DataRows not recorded since the last kRows
  uint64_t lost_run_ = 0;  // dropped since the last chunk that went through
  Status status_ = Status::kComplete;
  bool stopped_ = false;  // nothing more is recorded
  bool must_end_ = false;
  bool finished_ = false;
  std::vector<std::string> incidents_;
};

}  // namespace pgb::recording
