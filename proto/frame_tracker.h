// FrameTracker walks the message boundaries of one direction of a relayed
// stream, one received chunk at a time, without copying message bodies: only a
// header split across chunks is gathered (five bytes at most). Each header is
// validated with DecodeHeader (known type for the direction, length within the
// cap), so the relay fails closed on the first bad frame, at a boundary.
//
//   FrameTracker t;
//   FrameTracker::Scan s = t.Feed(chunk, n, Direction::kFrontend, cap,
//                                 [](char type) { /* one call per message */ });
//   if (!s.error.empty()) { /* bytes [0, s.valid_prefix) were well-formed */ }
#pragma once

#include <algorithm>
#include <cstring>
#include <string>

#include "proto/frame.h"
#include "proto/protocol.h"

namespace pgb::proto {

class FrameTracker {
 public:
  struct Scan {
    size_t valid_prefix;  // bytes that belong to well-formed messages (all, unless error)
    std::string error;    // non-empty: a bad header starts at valid_prefix
  };
  // Calls on_header(type) for each new message header found, in order.
  template <typename OnHeader>
  Scan Feed(const char* data, size_t n, Direction direction, uint32_t max_length,
            OnHeader&& on_header);
  bool AtBoundary() const { return body_remaining_ == 0 && header_have_ == 0; }
  // The first body byte of the last ReadyForQuery seen (its transaction status).
  char last_ready_status() const { return ready_status_; }

 private:
  uint32_t body_remaining_ = 0;
  uint8_t header_have_ = 0;
  bool want_ready_status_ = false;
  char ready_status_ = 'I';
  char header_[kHeaderLength];
};

template <typename OnHeader>
FrameTracker::Scan FrameTracker::Feed(const char* data, size_t n, Direction direction,
                                      uint32_t max_length, OnHeader&& on_header) {
  size_t pos = 0;
  while (pos < n) {
    if (body_remaining_ > 0) {
      if (want_ready_status_) {
        ready_status_ = data[pos];
        want_ready_status_ = false;
      }
      const size_t take = std::min<size_t>(body_remaining_, n - pos);
      pos += take;
      body_remaining_ -= static_cast<uint32_t>(take);
      continue;
    }
    const size_t copy = std::min<size_t>(kHeaderLength - header_have_, n - pos);
    std::memcpy(header_ + header_have_, data + pos, copy);
    header_have_ = static_cast<uint8_t>(header_have_ + copy);
    pos += copy;
    if (header_have_ < kHeaderLength) break;
    header_have_ = 0;
    const HeaderResult h =
        DecodeHeader(std::string_view(header_, kHeaderLength), direction, max_length);
    if (h.status != DecodeStatus::kOk) {
      // Report the bytes before this header as good; when the header began in
      // an earlier chunk, nothing of this chunk is.
      const size_t good = (pos >= kHeaderLength) ? pos - kHeaderLength : 0;
      return Scan{good, std::string(h.error.empty() ? "malformed message" : h.error)};
    }
    on_header(h.header.type);
    body_remaining_ = h.header.length - 4;
    want_ready_status_ = (h.header.type == kPqMsg_ReadyForQuery &&
                          direction == Direction::kBackend && body_remaining_ > 0);
  }
  return Scan{n, {}};
}

}  // namespace pgb::proto
