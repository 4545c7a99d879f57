#include "proto/frame_tracker.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "proto/messages.h"
#include "proto/protocol.h"
#include "proto/wire.h"

namespace pgb::proto {
namespace {

// A backend stream: RowDescription-ish, DataRow, CommandComplete, ReadyForQuery('T').
std::string BackendStream() {
  std::string s;
  {
    MessageWriter(s, kPqMsg_RowDescription)
        .Int16(1)
        .CString("x")
        .Int32(0)
        .Int16(0)
        .Int32(23)
        .Int16(4)
        .Int32(-1)
        .Int16(0);
  }
  { MessageWriter(s, kPqMsg_DataRow).Int16(1).Int32(1).Bytes("7"); }
  { MessageWriter(s, kPqMsg_CommandComplete).CString("SELECT 1"); }
  AppendReadyForQuery(s, kTxnInBlock);
  return s;
}

struct Fed {
  std::string types;
  std::vector<FrameTracker::Scan> scans;
};

Fed FeedPieces(FrameTracker& t, const std::string& stream, const std::vector<size_t>& cuts,
               Direction d, uint32_t cap = kDefaultMaxMessageLength) {
  Fed fed;
  size_t from = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(stream.size());
  for (size_t to : ends) {
    fed.scans.push_back(t.Feed(stream.data() + from, to - from, d, cap,
                               [&](char type) { fed.types.push_back(type); }));
    from = to;
  }
  return fed;
}

TEST(FrameTrackerTest, WholeStreamInOneChunk) {
  FrameTracker t;
  const std::string s = BackendStream();
  Fed fed = FeedPieces(t, s, {}, Direction::kBackend);
  EXPECT_EQ(fed.types, "TDCZ");
  EXPECT_TRUE(fed.scans[0].error.empty());
  EXPECT_EQ(fed.scans[0].valid_prefix, s.size());
  EXPECT_TRUE(t.AtBoundary());
  EXPECT_EQ(t.last_ready_status(), kTxnInBlock);
}

TEST(FrameTrackerTest, SplitAtEveryOffset) {
  const std::string s = BackendStream();
  for (size_t cut = 0; cut <= s.size(); ++cut) {
    FrameTracker t;
    Fed fed = FeedPieces(t, s, {cut}, Direction::kBackend);
    EXPECT_EQ(fed.types, "TDCZ") << "cut at " << cut;
    EXPECT_TRUE(t.AtBoundary()) << "cut at " << cut;
    EXPECT_EQ(t.last_ready_status(), kTxnInBlock) << "cut at " << cut;
  }
}

TEST(FrameTrackerTest, SplitAtEveryPairOfOffsets) {
  const std::string s = BackendStream();
  for (size_t a = 0; a <= s.size(); ++a) {
    for (size_t b = a; b <= s.size(); ++b) {
      FrameTracker t;
      Fed fed = FeedPieces(t, s, {a, b}, Direction::kBackend);
      ASSERT_EQ(fed.types, "TDCZ") << "cuts " << a << "," << b;
      ASSERT_TRUE(t.AtBoundary());
    }
  }
}

TEST(FrameTrackerTest, NotAtBoundaryMidMessage) {
  const std::string s = BackendStream();
  for (size_t n = 1; n < 5; ++n) {
    FrameTracker partial;
    (void)partial.Feed(s.data(), n, Direction::kBackend, kDefaultMaxMessageLength, [](char) {});
    EXPECT_FALSE(partial.AtBoundary()) << n;
  }
}

TEST(FrameTrackerTest, ManyMessagesInOneChunk) {
  std::string s;
  for (int i = 0; i < 1000; ++i) {
    MessageWriter(s, kPqMsg_Sync);
  }
  FrameTracker t;
  int count = 0;
  FrameTracker::Scan scan =
      t.Feed(s.data(), s.size(), Direction::kFrontend, kDefaultMaxMessageLength,
             [&](char type) { count += type == kPqMsg_Sync; });
  EXPECT_EQ(count, 1000);
  EXPECT_TRUE(scan.error.empty());
}

TEST(FrameTrackerTest, UnknownTypeReportsValidPrefix) {
  std::string s;
  { MessageWriter(s, kPqMsg_Query).CString("SELECT 1"); }
  const size_t good = s.size();
  { MessageWriter(s, '\x01').Int32(0); }
  FrameTracker t;
  FrameTracker::Scan scan =
      t.Feed(s.data(), s.size(), Direction::kFrontend, kDefaultMaxMessageLength, [](char) {});
  EXPECT_FALSE(scan.error.empty());
  EXPECT_EQ(scan.valid_prefix, good);
}

TEST(FrameTrackerTest, BackendOnlyTypeRefusedFromFrontend) {
  std::string s;
  AppendReadyForQuery(s, kTxnIdle);
  FrameTracker t;
  FrameTracker::Scan scan =
      t.Feed(s.data(), s.size(), Direction::kFrontend, kDefaultMaxMessageLength, [](char) {});
  EXPECT_FALSE(scan.error.empty());
  EXPECT_EQ(scan.valid_prefix, 0u);
}

TEST(FrameTrackerTest, LengthOverCapRefusedAtHeader) {
  // Only the header arrives: the cap must be enforced before any body byte.
  std::string header = "Q";
  header.append("\x00\x01\x00\x01", 4);  // 65537 > cap 65536
  FrameTracker t;
  FrameTracker::Scan scan =
      t.Feed(header.data(), header.size(), Direction::kFrontend, 65536, [](char) {});
  EXPECT_FALSE(scan.error.empty());
  std::string ok = "Q";
  ok.append("\x00\x01\x00\x00", 4);  // exactly at the cap
  FrameTracker t2;
  EXPECT_TRUE(
      t2.Feed(ok.data(), ok.size(), Direction::kFrontend, 65536, [](char) {}).error.empty());
  EXPECT_FALSE(t2.AtBoundary());
}

TEST(FrameTrackerTest, LengthBelowFourRefused) {
  std::string s = "Q";
  s.append("\x00\x00\x00\x03", 4);
  FrameTracker t;
  EXPECT_FALSE(t.Feed(s.data(), s.size(), Direction::kFrontend, kDefaultMaxMessageLength, [](char) {
                }).error.empty());
}

TEST(FrameTrackerTest, BadHeaderSplitAcrossChunks) {
  // A valid message, then a header of a length-3 message whose bytes are
  // split over two chunks: the error comes with the second chunk, which has
  // no well-formed prefix of its own.
  std::string s;
  { MessageWriter(s, kPqMsg_Sync); }
  s.append("Q\x00\x00\x00\x03", 5);
  FrameTracker t;
  FrameTracker::Scan first =
      t.Feed(s.data(), 7, Direction::kFrontend, kDefaultMaxMessageLength, [](char) {});
  EXPECT_TRUE(first.error.empty());
  FrameTracker::Scan second = t.Feed(s.data() + 7, s.size() - 7, Direction::kFrontend,
                                     kDefaultMaxMessageLength, [](char) {});
  EXPECT_FALSE(second.error.empty());
  EXPECT_EQ(second.valid_prefix, 0u);
}

}  // namespace
}  // namespace pgb::proto
