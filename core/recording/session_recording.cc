#include "core/recording/session_recording.h"

#include <cstring>
#include <ctime>

#include "base/json_text.h"
#include "base/str_cat.h"
#include "core/audit/record.h"
#include "proto/protocol.h"

namespace pgb::recording {

namespace {

uint32_t GetBe32(const char* p) {
  return (static_cast<uint32_t>(static_cast<uint8_t>(p[0])) << 24) |
         (static_cast<uint32_t>(static_cast<uint8_t>(p[1])) << 16) |
         (static_cast<uint32_t>(static_cast<uint8_t>(p[2])) << 8) |
         static_cast<uint32_t>(static_cast<uint8_t>(p[3]));
}
void PutBe32(std::string& out, uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
  out.append(b, 4);
}
void PutBe16(std::string& out, uint16_t v) {
  const char b[2] = {static_cast<char>(v >> 8), static_cast<char>(v)};
  out.append(b, 2);
}

constexpr std::string_view kRedacted = "[redacted]";

// A Bind message (type and length included) with every non-NULL parameter
// value replaced by "[redacted]" (protocol-message-formats: Bind). A body
// that does not parse (the database will refuse it) is recorded as a Bind of
// no names and no parameters.
std::string RedactedBind(std::string_view body) {
  std::string out = "B";
  PutBe32(out, 0);
  size_t pos = 0;
  const auto cstring = [&]() -> bool {
    const size_t end = body.find('\0', pos);
    if (end == std::string_view::npos) return false;
    out.append(body.data() + pos, end - pos + 1);
    pos = end + 1;
    return true;
  };
  const auto int16 = [&](int32_t* v) -> bool {
    if (body.size() - pos < 2) return false;
    *v = static_cast<int16_t>((static_cast<uint8_t>(body[pos]) << 8) |
                              static_cast<uint8_t>(body[pos + 1]));
    pos += 2;
    return true;
  };
  bool ok = cstring() && cstring();
  int32_t formats = 0, params = 0, results = 0;
  if (ok) ok = int16(&formats) && formats >= 0 && body.size() - pos >= 2 * size_t(formats);
  if (ok) {
    PutBe16(out, static_cast<uint16_t>(formats));
    out.append(body.data() + pos, 2 * size_t(formats));
    pos += 2 * size_t(formats);
    ok = int16(&params) && params >= 0;
  }
  if (ok) {
    PutBe16(out, static_cast<uint16_t>(params));
    for (int32_t i = 0; ok && i < params; ++i) {
      if (body.size() - pos < 4) {
        ok = false;
        break;
      }
      const int32_t len = static_cast<int32_t>(GetBe32(body.data() + pos));
      pos += 4;
      if (len < 0) {
        PutBe32(out, 0xffffffffu);
        continue;
      }
      if (body.size() - pos < size_t(len)) {
        ok = false;
        break;
      }
      pos += size_t(len);
      PutBe32(out, static_cast<uint32_t>(kRedacted.size()));
      out += kRedacted;
    }
  }
  if (ok) ok = int16(&results) && results >= 0 && body.size() - pos == 2 * size_t(results);
  if (ok) {
    PutBe16(out, static_cast<uint16_t>(results));
    out.append(body.data() + pos, 2 * size_t(results));
  } else {
    out.assign("B");
    PutBe32(out, 0);
    out.append("\0\0\0\0\0\0\0\0", 8);  // portal, statement, 0 formats, 0 parameters, 0 results
  }
  const uint32_t len = static_cast<uint32_t>(out.size() - 1);
  for (int i = 0; i < 4; ++i) out[1 + i] = static_cast<char>(len >> (24 - 8 * i));
  return out;
}

const char* ModeName(RecordMode mode) {
  switch (mode) {
    case RecordMode::kOff:
      return "off";
    case RecordMode::kStatements:
      return "statements";
    case RecordMode::kFull:
      return "full";
  }
  return "off";
}

}  // namespace

std::string HeaderJson(const RecordingHeader& h) {
  const time_t seconds = static_cast<time_t>(h.start_us / 1'000'000);
  tm utc;
  ::gmtime_r(&seconds, &utc);
  char stamp[40];
  const size_t n = ::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &utc);
  std::string start(stamp, n);
  char micros[16];
  std::snprintf(micros, sizeof(micros), ".%06dZ", static_cast<int>(h.start_us % 1'000'000));
  start += micros;
  std::string out = Cat("{\"format\":1,\"session\":", h.session_id, ",\"start\":");
  AppendJsonString(start, &out);
  out += Cat(",\"start_us\":", h.start_us, ",\"mode\":\"", ModeName(h.mode), "\"");
  if (h.identity != nullptr) {
    out += ",\"identity\":{\"method\":";
    AppendJsonString(policy::AuthMethodName(h.identity->method), &out);
    out += ",\"subject\":";
    AppendJsonString(h.identity->subject, &out);
    if (!h.identity->issuer.empty()) {
      out += ",\"issuer\":";
      AppendJsonString(h.identity->issuer, &out);
    }
    if (!h.identity->client_id.empty()) {
      out += ",\"client_id\":";
      AppendJsonString(h.identity->client_id, &out);
    }
    if (!h.identity->run_id.empty()) {
      out += ",\"run_id\":";
      AppendJsonString(h.identity->run_id, &out);
    }
    out += "}";
  }
  for (const auto& [key, value] : {std::pair<const char*, std::string_view>{"scope", h.scope},
                                   {"target", h.target},
                                   {"db_role", h.role},
                                   {"application_name", h.application_name},
                                   {"client", h.client},
                                   {"gateway_version", h.gateway_version}}) {
    out += Cat(",\"", key, "\":");
    AppendJsonString(value, &out);
  }
  out += "}";
  return out;
}

SessionRecording::SessionRecording(RecorderShard& shard, audit::ParameterMode parameters,
                                   const RecordingHeader& header)
    : shard_(shard),
      config_(shard.config()),
      parameters_(parameters),
      mode_(header.mode),
      session_id_(header.session_id),
      start_us_(header.start_us) {
  from_client_.kind = kFromClient;
  to_client_.kind = kToClient;
  now_us_ = audit::AuditClockMicros();
  buffer_.reserve(config_.chunk_bytes + 1024);
  AppendEvent(kHeader, HeaderJson(header));
  HandOff(false);  // the file exists from the session's start
}

void SessionRecording::Observe(Direction direction, const char* data, size_t n) {
  if (stopped_ || n == 0) return;
  now_us_ = audit::AuditClockMicros();
  Stream& s = direction == Direction::kFromClient ? from_client_ : to_client_;
  Feed(s, data, n);
  // The other stream's events may come next: an unfinished message is
  // continued in an event of its own.
  if (s.event != kNoEvent) CloseEvent(s, true);
  if (buffer_.size() >= config_.chunk_bytes) HandOff(false);
}

void SessionRecording::Tick() {
  if (pending_since_us_ == 0 || finished_) return;
  const int64_t now = audit::AuditClockMicros();
  if (now - pending_since_us_ >= absl::ToInt64Microseconds(config_.flush_interval)) {
    HandOff(false);
  }
}

void SessionRecording::Feed(Stream& s, const char* data, size_t n) {
  while (n > 0) {
    if (s.have < 5) {
      const size_t take = std::min<size_t>(5 - s.have, n);
      std::memcpy(s.header + s.have, data, take);
      s.have = static_cast<uint8_t>(s.have + take);
      data += take;
      n -= take;
      if (s.have < 5) return;
      StartMessage(s);
      if (s.left == 0) EndMessage(s);
      continue;
    }
    size_t take = std::min<size_t>(s.left, n);
    if (s.action == Action::kRecord) {
      if (buffer_.size() >= config_.chunk_bytes) {
        if (s.event != kNoEvent) CloseEvent(s, true);
        HandOff(false);
        continue;  // the action may have changed (a gap, the end)
      }
      if (s.event == kNoEvent) OpenEvent(s);
      take = std::min<size_t>(take, config_.chunk_bytes - buffer_.size());
      buffer_.append(data, take);
    } else if (s.action == Action::kGatherBind && !s.bind_oversize) {
      if (s.bind.size() + take <= kMaxBindGather) {
        s.bind.append(data, take);
      } else {
        s.bind_oversize = true;
        std::string().swap(s.bind);
      }
    }
    data += take;
    n -= take;
    s.left -= static_cast<uint32_t>(take);
    if (s.left == 0) EndMessage(s);
  }
}

void SessionRecording::StartMessage(Stream& s) {
  const char type = s.header[0];
  const uint32_t length = GetBe32(s.header + 1);
  s.left = length < 4 ? 0 : length - 4;
  s.action = Action::kSkip;
  if (stopped_) return;
  if (s.kind == kFromClient) {
    if (type == proto::kPqMsg_PasswordMessage) return;  // never a secret, whatever its phase
    if (type == proto::kPqMsg_Bind && parameters_ != audit::ParameterMode::kOn) {
      s.action = Action::kGatherBind;
      s.bind.clear();
      s.bind_oversize = false;
      return;
    }
    s.action = Action::kRecord;
  } else {
    if (type == proto::kPqMsg_DataRow && mode_ == RecordMode::kStatements) {
      s.action = Action::kCountRow;
      return;
    }
    if (rows_ != 0) FlushRows();
    if (mode_ == RecordMode::kFull) {
      s.action = Action::kRecord;
    } else {
      switch (type) {
        case proto::kPqMsg_CommandComplete:
        case proto::kPqMsg_ErrorResponse:
        case proto::kPqMsg_NoticeResponse:
        case proto::kPqMsg_EmptyQueryResponse:
        case proto::kPqMsg_ReadyForQuery:
          s.action = Action::kRecord;
          break;
        default:
          return;
      }
    }
  }
  if (!Admit(kEventHeaderBytes + 5 + s.left)) {
    s.action = Action::kSkip;
    return;
  }
  OpenEvent(s);
  buffer_.append(s.header, 5);
}

void SessionRecording::EndMessage(Stream& s) {
  switch (s.action) {
    case Action::kRecord:
      if (s.event != kNoEvent) CloseEvent(s, false);
      break;
    case Action::kCountRow:
      ++rows_;
      break;
    case Action::kGatherBind: {
      const std::string bind = RedactedBind(s.bind_oversize ? std::string_view() : s.bind);
      std::string().swap(s.bind);
      if (!stopped_ && Admit(kEventHeaderBytes + bind.size())) AppendEvent(kFromClient, bind);
      break;
    }
    case Action::kSkip:
      break;
  }
  s.have = 0;
  s.action = Action::kSkip;
}

void SessionRecording::OpenEvent(Stream& s) {
  if (pending_since_us_ == 0) pending_since_us_ = now_us_;
  s.event = buffer_.size();
  AppendEventHeader(buffer_, s.kind, now_us_, 0);
}

void SessionRecording::CloseEvent(Stream& s, bool continues) {
  const size_t size = buffer_.size() - s.event - kEventHeaderBytes;
  PatchEventHeader(buffer_, s.event, static_cast<uint8_t>(s.kind | (continues ? kContinues : 0)),
                   static_cast<uint32_t>(size));
  s.event = kNoEvent;
}

void SessionRecording::AppendEvent(uint8_t kind, std::string_view payload) {
  if (pending_since_us_ == 0) pending_since_us_ = now_us_;
  AppendEventHeader(buffer_, kind, now_us_, static_cast<uint32_t>(payload.size()));
  buffer_.append(payload);
}

void SessionRecording::FlushRows() {
  char count[8];
  for (int i = 0; i < 8; ++i) count[i] = static_cast<char>((rows_ >> (8 * i)) & 0xff);
  rows_ = 0;
  if (!stopped_) AppendEvent(kRows, std::string_view(count, sizeof(count)));
}

bool SessionRecording::Admit(size_t bytes) {
  if (config_.session_max_bytes == 0) return true;
  // Room is kept for the kTruncated and kEnd events (under 1 KiB).
  if (handed_bytes_ + buffer_.size() + bytes + 1024 <= config_.session_max_bytes) return true;
  for (Stream* s : {&from_client_, &to_client_}) {
    if (s->event != kNoEvent) CloseEvent(*s, true);
  }
  AppendEvent(kTruncated, Cat("{\"limit\":", config_.session_max_bytes, "}"));
  incidents_.push_back(Cat("the session's recording reached recording.session_max_bytes (",
                           config_.session_max_bytes,
                           " bytes): the rest of the session is not recorded"));
  Stop(Status::kTruncated);
  return false;
}

void SessionRecording::Stop(Status why) {
  stopped_ = true;
  if (status_ == Status::kComplete || why == Status::kOverflow) status_ = why;
  for (Stream* s : {&from_client_, &to_client_}) {
    if (s->event != kNoEvent) CloseEvent(*s, true);
    s->action = Action::kSkip;
    std::string().swap(s->bind);
  }
}

void SessionRecording::HandOff(bool last) {
  if (buffer_.empty() && !last) return;
  RecordingChunk* slot = shard_.Claim();
  if (slot != nullptr) {
    hash_.Update(buffer_);
    handed_bytes_ += buffer_.size();
    slot->session_id = session_id_;
    slot->start_us = start_us_;
    slot->last = last;
    slot->bytes.swap(buffer_);  // the slot's buffer is empty: the recorder released it
    buffer_.clear();
    if (!last) buffer_.reserve(config_.chunk_bytes + 1024);
    shard_.Publish();
    pending_since_us_ = 0;
    if (lost_run_ != 0) {
      incidents_.push_back(Cat("the session's recording has a gap: ", lost_run_,
                               " bytes were lost (the recorder could not keep up or could not "
                               "write); a gap marker in the recording says where"));
      lost_run_ = 0;
    }
    return;
  }
  // No room: what this chunk held is lost, and said so.
  const uint64_t lost = buffer_.size();
  buffer_.clear();
  pending_since_us_ = 0;
  for (Stream* s : {&from_client_, &to_client_}) {
    // A message whose start was in the lost chunk is not continued.
    if (s->action == Action::kRecord) s->action = Action::kSkip;
    s->event = kNoEvent;
  }
  if (config_.on_overflow == OnOverflow::kEndSession) {
    if (!must_end_) {
      incidents_.push_back(Cat("the session's recording could not keep up (", lost,
                               " bytes not recorded): the session was ended "
                               "(recording.on_overflow = \"end-session\")"));
    }
    must_end_ = true;
    Stop(Status::kOverflow);
    return;
  }
  if (status_ == Status::kComplete) status_ = Status::kGap;
  lost_run_ += lost;
  if (last) {
    incidents_.push_back(Cat("the end of the session's recording was lost (", lost_run_,
                             " bytes): the recorder could not keep up"));
    return;
  }
  AppendEvent(kGap, Cat("{\"lost_bytes\":", lost,
                        ",\"reason\":\"recorder queue full or "
                        "recordings directory unwritable\"}"));
}

SessionRecording::Summary SessionRecording::Finish(std::string_view reason) {
  Summary summary;
  if (finished_) return summary;
  now_us_ = audit::AuditClockMicros();
  if (!stopped_ && rows_ != 0) FlushRows();
  for (Stream* s : {&from_client_, &to_client_}) {
    if (s->event != kNoEvent) CloseEvent(*s, true);
  }
  std::string end = "{\"reason\":";
  AppendJsonString(reason, &end);
  end += "}";
  AppendEvent(kEnd, end);
  HandOff(true);
  finished_ = true;
  stopped_ = true;
  summary.sha256_hex = hash_.FinishHex();
  summary.bytes = handed_bytes_;
  summary.status = status_;
  return summary;
}

}  // namespace pgb::recording
