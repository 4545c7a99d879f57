// Fuzzes regular-message framing (proto/frame.h) and the relay's boundary
// tracker (proto/frame_tracker.h), both directions, with caps {4, 64, the
// default, UINT32_MAX}.
//
// Input: byte 0 picks where the stream is split into two chunks for
// FrameTracker (scaled over the stream length); bytes 1.. are the stream.
// The reference is DecodeMessage applied repeatedly to the whole stream up to
// the first error or "need more". FrameTracker must report the same message
// types (plus the type of a trailing incomplete message whose header is
// complete), fail exactly when the reference fails on a complete header, with
// the same error text and at the same offset, and track the same
// ReadyForQuery status. The bytes it reports (pass-through pieces and whole
// messages) rebuild the stream: without gathering, a prefix of it reaching at
// least every complete message (all of it when nothing failed); gathering
// every type, exactly the complete messages.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "proto/frame.h"
#include "proto/frame_tracker.h"
#include "proto/protocol.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using pgb::proto::DecodeStatus;
using pgb::proto::Direction;
using pgb::proto::FrameTracker;
using pgb::proto::kHeaderLength;

struct Reference {
  std::vector<char> types;  // every header DecodeHeader accepted, in order
  size_t consumed = 0;      // bytes of complete messages before the stop
  bool failed = false;      // stopped on kError
  bool failed_on_full_header = false;
  std::string error;
  bool ends_at_boundary = false;
  size_t partial_header = 0;  // bytes of a header cut by the stream's end (held back)
  char ready_status = 'I';
};

Reference Decode(std::string_view stream, Direction dir, uint32_t cap) {
  Reference ref;
  std::string_view rest = stream;
  for (;;) {
    const pgb::proto::HeaderResult h = pgb::proto::DecodeHeader(rest, dir, cap);
    const pgb::proto::MessageResult m = pgb::proto::DecodeMessage(rest, dir, cap);
    // DecodeMessage is DecodeHeader plus "is the body here".
    if (h.status == DecodeStatus::kError) {
      FUZZ_CHECK(m.status == DecodeStatus::kError);
      FUZZ_CHECK(!h.error.empty());
      FUZZ_CHECK(m.error == h.error);
      ref.failed = true;
      ref.failed_on_full_header = rest.size() >= kHeaderLength;
      // The tracker checks whole headers only: a cut one it holds back.
      if (!ref.failed_on_full_header) ref.partial_header = rest.size();
      ref.error.assign(m.error);
      return ref;
    }
    FUZZ_CHECK(h.error.empty() && m.error.empty());
    if (h.status == DecodeStatus::kNeedMore) {
      FUZZ_CHECK(rest.size() < kHeaderLength);
      FUZZ_CHECK(m.status == DecodeStatus::kNeedMore);
      ref.ends_at_boundary = rest.empty();
      ref.partial_header = rest.size();
      return ref;
    }
    FUZZ_CHECK(pgb::proto::IsKnownMessageType(dir, h.header.type));
    FUZZ_CHECK(pgb::proto::MessageName(dir, h.header.type) != nullptr);
    FUZZ_CHECK(h.header.length >= 4);
    FUZZ_CHECK(h.header.length <= cap);
    FUZZ_CHECK(h.header.length <= uint32_t{std::numeric_limits<int32_t>::max()});
    FUZZ_CHECK(h.header.total() == h.header.length + 1);
    ref.types.push_back(h.header.type);
    const bool ready = dir == Direction::kBackend &&
                       h.header.type == pgb::proto::kPqMsg_ReadyForQuery && h.header.length > 4;
    if (m.status == DecodeStatus::kNeedMore) {
      FUZZ_CHECK(rest.size() < h.header.total());
      if (ready && rest.size() > kHeaderLength) ref.ready_status = rest[kHeaderLength];
      return ref;  // a trailing incomplete message: the tracker reports its header too
    }
    FUZZ_CHECK(m.status == DecodeStatus::kOk);
    FUZZ_CHECK(m.message.type == h.header.type);
    FUZZ_CHECK(m.message.total_size == h.header.total());
    FUZZ_CHECK(m.message.total_size <= rest.size());
    FUZZ_CHECK(m.message.body.data() == rest.data() + kHeaderLength);
    FUZZ_CHECK(m.message.body.size() + kHeaderLength == m.message.total_size);
    if (ready) ref.ready_status = m.message.body[0];
    rest.remove_prefix(m.message.total_size);
    ref.consumed += m.message.total_size;
  }
}

// Feeds `chunks` to one FrameTracker and compares with the reference.
void CheckTracker(std::string_view stream, const std::vector<size_t>& cuts, Direction dir,
                  uint32_t cap, const Reference& ref, const FrameTracker::Gather& gather) {
  FrameTracker tracker;
  std::vector<char> seen;
  std::string rebuilt;
  size_t start = 0;
  bool failed = false;
  for (size_t i = 0; i <= cuts.size(); ++i) {
    const size_t end = i < cuts.size() ? cuts[i] : stream.size();
    const size_t n = end - start;
    FrameTracker::Scan scan = tracker.Feed(
        stream.data() + start, n, dir, cap, gather,
        [&seen](char type, uint32_t) { seen.push_back(type); },
        [&rebuilt](const char* p, size_t len) {
          FUZZ_CHECK(len > 0);
          rebuilt.append(p, len);
        },
        [&rebuilt](char type, std::string_view message, bool oversize) {
          FUZZ_CHECK(!oversize);
          FUZZ_CHECK(message.size() >= kHeaderLength && message[0] == type);
          rebuilt.append(message);
        },
        [&gather](char, std::string_view prefix) {
          FUZZ_CHECK(gather.peek.any() && prefix.size() <= gather.peek_size);
        });
    if (!scan.error.empty()) {
      // The reference failed on a complete header at offset ref.consumed.
      FUZZ_CHECK(ref.failed && ref.failed_on_full_header);
      FUZZ_CHECK(scan.error == ref.error);
      const size_t header_start = ref.consumed;
      FUZZ_CHECK(header_start + kHeaderLength <= end);  // the bad header ends in this chunk
      FUZZ_CHECK(scan.valid_prefix == (header_start >= start ? header_start - start : 0));
      failed = true;
      break;
    }
    FUZZ_CHECK(scan.valid_prefix == n);
    start = end;
  }
  if (!failed) FUZZ_CHECK(!(ref.failed && ref.failed_on_full_header));
  FUZZ_CHECK(seen == ref.types);
  if (gather.types.none()) {  // (peeking passes every byte too)
    FUZZ_CHECK(stream.substr(0, rebuilt.size()) == rebuilt);
    FUZZ_CHECK(rebuilt.size() >= ref.consumed);
    // Everything but a header cut by the stream's end, which is held back
    // until it is whole and checked.
    if (!failed) FUZZ_CHECK(rebuilt.size() + ref.partial_header == stream.size());
  } else {
    FUZZ_CHECK(rebuilt == stream.substr(0, ref.consumed));
  }
  if (!failed) {
    FUZZ_CHECK(tracker.AtBoundary() == ref.ends_at_boundary);
    FUZZ_CHECK(tracker.last_ready_status() == ref.ready_status);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
  // data[0] * len / 255 reaches every offset 0..len when len <= 255.
  const size_t split = size_t{data[0]} * stream.size() / 255;
  constexpr uint32_t kCaps[] = {4, 64, pgb::proto::kDefaultMaxMessageLength,
                                std::numeric_limits<uint32_t>::max()};
  FrameTracker::Gather everything;
  everything.types.set();
  everything.max_size = std::numeric_limits<uint32_t>::max();
  FrameTracker::Gather peeking;  // nothing gathered, every type peeked
  peeking.peek.set();
  peeking.peek_size = 7;
  for (Direction dir : {Direction::kFrontend, Direction::kBackend, Direction::kFrontendLogin}) {
    for (uint32_t cap : kCaps) {
      const Reference ref = Decode(stream, dir, cap);
      const FrameTracker::Gather* const gathers[] = {&FrameTracker::kNoGather, &everything,
                                                     &peeking};
      for (const FrameTracker::Gather* gather : gathers) {
        CheckTracker(stream, {split}, dir, cap, ref, *gather);
        // Small inputs: also one byte at a time (every header split every way).
        if (stream.size() <= 64) {
          std::vector<size_t> every;
          for (size_t i = 1; i < stream.size(); ++i) every.push_back(i);
          CheckTracker(stream, every, dir, cap, ref, *gather);
        }
      }
    }
  }
  return 0;
}
