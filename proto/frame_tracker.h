// FrameTracker walks the message boundaries of one direction of a relayed
// stream, one received chunk at a time. Each header is validated with
// DecodeHeader (known type for the direction, length within the cap), so the
// relay fails closed on the first bad frame, at a boundary.
//
// Bytes of most messages are only looked at, never copied: they are reported
// as pass-through pieces of the chunk, in stream order. Messages whose type
// is in the Gather set (those the gateway must read whole: Query and Parse for
// the policy, ErrorResponse when it rewrites one) are reported whole instead:
// as a view into the chunk when the message lies inside it, otherwise
// assembled in the tracker (at most Gather::max_size bytes; a longer one is
// reported as oversize and its bytes are dropped). Messages whose type is in
// the peek set pass through like the others, and the first peek_size bytes
// of their body are also reported (for the audit: a command tag, a portal
// name), so peeking never costs the zero-copy path. A message that is both
// gathered and peeked is reported both ways: its prefix, then the whole.
//
//   FrameTracker t;
//   FrameTracker::Gather queries{.types = {}, .max_size = 1 << 20};
//   queries.types.set('Q');
//   FrameTracker::Scan s = t.Feed(chunk, n, Direction::kFrontend, cap, queries,
//       [](char type, uint32_t size) { /* one call per message header */ },
//       [](const char* p, size_t len) { /* forward these bytes */ },
//       [](char type, std::string_view message, bool oversize) { /* judge */ },
//       [](char type, std::string_view body_prefix) { /* note */ });
//   if (!s.error.empty()) { /* a bad header starts at s.valid_prefix */ }
#pragma once

#include <algorithm>
#include <bitset>
#include <cstring>
#include <string>
#include <string_view>

#include "proto/frame.h"
#include "proto/protocol.h"

namespace pgb::proto {

class FrameTracker {
 public:
  struct Gather {
    std::bitset<256> types;  // indexed by the (unsigned) type byte
    uint32_t max_size = 0;   // whole message, type byte included
    std::bitset<256> peek;   // types passed through whose body prefix is reported
    uint32_t peek_size = 0;  // bytes of body reported, at most
  };
  static const Gather kNoGather;

  struct Scan {
    size_t valid_prefix;  // bytes that belong to well-formed messages (all, unless error)
    std::string error;    // non-empty: a bad header starts at valid_prefix
  };
  // Calls, in stream order: on_header(type, size) for each new message header
  // (`size`: the whole message's bytes, type byte included);
  // on_pass(data, length) for bytes of messages not gathered (pieces of this
  // chunk, never empty; a header cut by the end of a chunk is held back until
  // it is whole and checked, so no byte of a bad frame goes on, and its first
  // bytes are then reported from the tracker's own copy, valid only during
  // the call); on_whole(type, message, oversize) once per gathered
  // message (`message` is header plus body and valid only during the call;
  // empty when oversize); on_peek(type, prefix) once per peeked message, with
  // the first min(peek_size, body length) body bytes (valid only during the
  // call; reported as soon as they are in, before the piece that holds them).
  // On error, everything before the bad header has been reported.
  template <typename OnHeader, typename OnPass, typename OnWhole, typename OnPeek>
  Scan Feed(const char* data, size_t n, Direction direction, uint32_t max_length,
            const Gather& gather, OnHeader&& on_header, OnPass&& on_pass, OnWhole&& on_whole,
            OnPeek&& on_peek);
  bool AtBoundary() const { return body_remaining_ == 0 && header_have_ == 0; }
  // The first body byte of the last ReadyForQuery seen (its transaction status).
  char last_ready_status() const { return ready_status_; }

 private:
  enum class Mode : uint8_t { kPass, kGather, kDrop };

  uint32_t body_remaining_ = 0;
  uint8_t header_have_ = 0;
  bool want_ready_status_ = false;
  Mode mode_ = Mode::kPass;
  uint32_t peek_want_ = 0;  // body bytes of a peeked message still to collect
  char ready_status_ = 'I';
  char header_[kHeaderLength];
  std::string assembled_;  // a gathered message that spans chunks
  std::string peeked_;     // a peeked prefix that spans chunks
};

inline const FrameTracker::Gather FrameTracker::kNoGather{};

template <typename OnHeader, typename OnPass, typename OnWhole, typename OnPeek>
FrameTracker::Scan FrameTracker::Feed(const char* data, size_t n, Direction direction,
                                      uint32_t max_length, const Gather& gather,
                                      OnHeader&& on_header, OnPass&& on_pass, OnWhole&& on_whole,
                                      OnPeek&& on_peek) {
  size_t pos = 0;
  size_t pass_from = 0;            // start of the pass-through piece not yet reported
  size_t partial_header_from = n;  // where a header cut by the chunk's end starts
  const auto report_pass = [&](size_t end) {
    if (end > pass_from) on_pass(data + pass_from, end - pass_from);
    pass_from = end;
  };
  // A gathered message whose type is also peeked reports its prefix first,
  // as a passed-through one would.
  const auto report_whole = [&](char type, std::string_view message) {
    if (gather.peek.test(static_cast<unsigned char>(type))) {
      on_peek(type, message.substr(kHeaderLength, gather.peek_size));
    }
    on_whole(type, message, false);
  };
  const auto finish_whole = [&]() {
    report_whole(header_[0], std::string_view(assembled_));
    // An idle session should stay small: give back what a big message took.
    if (assembled_.capacity() > 64 * 1024) std::string().swap(assembled_);
    mode_ = Mode::kPass;
  };
  while (pos < n) {
    if (body_remaining_ > 0) {
      if (want_ready_status_) {
        ready_status_ = data[pos];
        want_ready_status_ = false;
      }
      const size_t take = std::min<size_t>(body_remaining_, n - pos);
      if (mode_ == Mode::kGather) assembled_.append(data + pos, take);
      if (peek_want_ > 0) {
        const size_t part = std::min<size_t>(peek_want_, take);
        peeked_.append(data + pos, part);
        peek_want_ -= static_cast<uint32_t>(part);
        if (peek_want_ == 0) on_peek(header_[0], std::string_view(peeked_));
      }
      pos += take;
      body_remaining_ -= static_cast<uint32_t>(take);
      if (mode_ != Mode::kPass) {
        pass_from = pos;
        if (body_remaining_ == 0) {
          if (mode_ == Mode::kGather) {
            finish_whole();
          } else {
            mode_ = Mode::kPass;
          }
        }
      }
      continue;
    }
    const size_t header_start = pos;
    const uint8_t held = header_have_;  // header bytes held back from earlier chunks
    if (header_have_ == 0) {
      mode_ =
          gather.types.test(static_cast<unsigned char>(data[pos])) ? Mode::kGather : Mode::kPass;
      if (mode_ == Mode::kGather) report_pass(pos);
    }
    const size_t copy = std::min<size_t>(kHeaderLength - header_have_, n - pos);
    const bool header_in_chunk = header_have_ == 0 && copy == kHeaderLength;
    std::memcpy(header_ + header_have_, data + pos, copy);
    header_have_ = static_cast<uint8_t>(header_have_ + copy);
    pos += copy;
    if (mode_ != Mode::kPass) pass_from = pos;
    if (header_have_ < kHeaderLength) {
      partial_header_from = header_start;
      break;
    }
    header_have_ = 0;
    const HeaderResult h =
        DecodeHeader(std::string_view(header_, kHeaderLength), direction, max_length);
    if (h.status != DecodeStatus::kOk) {
      // Report the bytes before this header as good; when the header began in
      // an earlier chunk, nothing of this chunk is.
      const size_t good = header_in_chunk ? header_start : 0;
      if (mode_ == Mode::kPass) report_pass(good);
      mode_ = Mode::kPass;
      return Scan{good, std::string(h.error.empty() ? "malformed message" : h.error)};
    }
    // The header is good: what was held of it goes on first (from the
    // tracker's copy), then the rest of it from this chunk.
    if (held > 0 && mode_ == Mode::kPass) on_pass(header_, held);
    on_header(h.header.type, h.header.total());
    body_remaining_ = h.header.length - 4;
    want_ready_status_ = (h.header.type == kPqMsg_ReadyForQuery &&
                          direction == Direction::kBackend && body_remaining_ > 0);
    if (mode_ != Mode::kGather) {
      if (gather.peek.test(static_cast<unsigned char>(h.header.type))) {
        const uint32_t want = std::min<uint32_t>(gather.peek_size, body_remaining_);
        if (want <= n - pos) {
          on_peek(h.header.type, std::string_view(data + pos, want));  // no copy
        } else {
          peeked_.clear();
          peek_want_ = want;
        }
      }
      continue;
    }
    if (h.header.total() > gather.max_size) {
      on_whole(h.header.type, std::string_view(), true);
      mode_ = body_remaining_ > 0 ? Mode::kDrop : Mode::kPass;
    } else if (header_in_chunk && body_remaining_ <= n - pos) {
      // The whole message is in this chunk: no copy.
      if (want_ready_status_) {
        ready_status_ = data[pos];
        want_ready_status_ = false;
      }
      pos += body_remaining_;
      body_remaining_ = 0;
      pass_from = pos;
      report_whole(h.header.type, std::string_view(data + header_start, pos - header_start));
      mode_ = Mode::kPass;
    } else {
      assembled_.assign(header_, kHeaderLength);
      if (body_remaining_ == 0) finish_whole();
    }
  }
  // A header cut by the end of the chunk is held back until it is whole and
  // checked: not a byte of a bad frame goes on (fail closed).
  if (mode_ == Mode::kPass) report_pass(partial_header_from);
  return Scan{n, {}};
}

}  // namespace pgb::proto
