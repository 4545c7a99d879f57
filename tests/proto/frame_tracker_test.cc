#include "proto/frame_tracker.h"

#include <functional>
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

// What a FrameTracker reported: header types, and the stream rebuilt from the
// pass-through pieces and whole messages in the order they were reported
// (an oversize message shows as "<oversize X>").
struct Fed {
  std::string types;
  std::string rebuilt;
  size_t sizes = 0;                // sum of the sizes reported with the headers
  std::string wholes;              // types of the messages reported whole
  std::vector<std::string> peeks;  // type byte + reported prefix, per peeked message
  std::vector<FrameTracker::Scan> scans;
};

Fed FeedPieces(FrameTracker& t, const std::string& stream, const std::vector<size_t>& cuts,
               Direction d, uint32_t cap = kDefaultMaxMessageLength,
               const FrameTracker::Gather& gather = FrameTracker::kNoGather) {
  Fed fed;
  size_t from = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(stream.size());
  for (size_t to : ends) {
    fed.scans.push_back(t.Feed(
        stream.data() + from, to - from, d, cap, gather,
        [&](char type, uint32_t size) {
          fed.types.push_back(type);
          fed.sizes += size;
        },
        [&](const char* p, size_t n) {
          EXPECT_GT(n, 0u);
          fed.rebuilt.append(p, n);
        },
        [&](char type, std::string_view message, bool oversize) {
          fed.wholes.push_back(type);
          if (oversize) {
            fed.rebuilt += std::string("<oversize ") + type + ">";
          } else {
            EXPECT_EQ(message[0], type);
            fed.rebuilt.append(message);
          }
        },
        [&](char type, std::string_view prefix) {
          fed.peeks.push_back(type + std::string(prefix));
        }));
    from = to;
  }
  return fed;
}

// Feeds one chunk, only counting headers.
FrameTracker::Scan FeedChunk(FrameTracker& t, const std::string& s, size_t n, Direction d,
                             uint32_t cap, const std::function<void(char)>& on_header) {
  return t.Feed(
      s.data(), n, d, cap, FrameTracker::kNoGather, [&](char type, uint32_t) { on_header(type); },
      [](const char*, size_t) {}, [](char, std::string_view, bool) {},
      [](char, std::string_view) {});
}

FrameTracker::Gather GatherOf(const std::string& types, uint32_t max_size) {
  FrameTracker::Gather g;
  for (char c : types) g.types.set(static_cast<unsigned char>(c));
  g.max_size = max_size;
  return g;
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
    EXPECT_EQ(fed.rebuilt, s) << "cut at " << cut;
    EXPECT_EQ(fed.sizes, s.size()) << "cut at " << cut;  // each message's size, once
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
    (void)FeedChunk(partial, s, n, Direction::kBackend, kDefaultMaxMessageLength, [](char) {});
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
      FeedChunk(t, s, s.size(), Direction::kFrontend, kDefaultMaxMessageLength,
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
      FeedChunk(t, s, s.size(), Direction::kFrontend, kDefaultMaxMessageLength, [](char) {});
  EXPECT_FALSE(scan.error.empty());
  EXPECT_EQ(scan.valid_prefix, good);
}

TEST(FrameTrackerTest, BackendOnlyTypeRefusedFromFrontend) {
  std::string s;
  AppendReadyForQuery(s, kTxnIdle);
  FrameTracker t;
  FrameTracker::Scan scan =
      FeedChunk(t, s, s.size(), Direction::kFrontend, kDefaultMaxMessageLength, [](char) {});
  EXPECT_FALSE(scan.error.empty());
  EXPECT_EQ(scan.valid_prefix, 0u);
}

TEST(FrameTrackerTest, LengthOverCapRefusedAtHeader) {
  // Only the header arrives: the cap must be enforced before any body byte.
  std::string header = "Q";
  header.append("\x00\x01\x00\x01", 4);  // 65537 > cap 65536
  FrameTracker t;
  FrameTracker::Scan scan =
      FeedChunk(t, header, header.size(), Direction::kFrontend, 65536, [](char) {});
  EXPECT_FALSE(scan.error.empty());
  std::string ok = "Q";
  ok.append("\x00\x01\x00\x00", 4);  // exactly at the cap
  FrameTracker t2;
  EXPECT_TRUE(FeedChunk(t2, ok, ok.size(), Direction::kFrontend, 65536, [](char) {}).error.empty());
  EXPECT_FALSE(t2.AtBoundary());
}

TEST(FrameTrackerTest, LengthBelowFourRefused) {
  std::string s = "Q";
  s.append("\x00\x00\x00\x03", 4);
  FrameTracker t;
  EXPECT_FALSE(FeedChunk(t, s, s.size(), Direction::kFrontend, kDefaultMaxMessageLength, [](char) {
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
      FeedChunk(t, s, 7, Direction::kFrontend, kDefaultMaxMessageLength, [](char) {});
  EXPECT_TRUE(first.error.empty());
  const std::string rest = s.substr(7);
  FrameTracker::Scan second =
      FeedChunk(t, rest, rest.size(), Direction::kFrontend, kDefaultMaxMessageLength, [](char) {});
  EXPECT_FALSE(second.error.empty());
  EXPECT_EQ(second.valid_prefix, 0u);
}

// A client batch: Parse, Bind, Execute, Sync, then a Query.
std::string FrontendBatch() {
  std::string s;
  { MessageWriter(s, kPqMsg_Parse).CString("s1").CString("SELECT $1").Int16(0); }
  {
    MessageWriter(s, kPqMsg_Bind)
        .CString("")
        .CString("s1")
        .Int16(0)
        .Int16(1)
        .Int32(1)
        .Bytes("7")
        .Int16(0);
  }
  { MessageWriter(s, kPqMsg_Execute).CString("").Int32(0); }
  { MessageWriter(s, kPqMsg_Sync); }
  { MessageWriter(s, kPqMsg_Query).CString("SELECT 'a long enough statement text'"); }
  return s;
}

TEST(FrameTrackerTest, GatheredMessagesAreWholeAtEveryPairOfOffsets) {
  const std::string s = FrontendBatch();
  const FrameTracker::Gather gather = GatherOf("PQ", 1 << 20);
  for (size_t a = 0; a <= s.size(); ++a) {
    for (size_t b = a; b <= s.size(); ++b) {
      FrameTracker t;
      Fed fed = FeedPieces(t, s, {a, b}, Direction::kFrontend, kDefaultMaxMessageLength, gather);
      ASSERT_EQ(fed.types, "PBESQ") << "cuts " << a << "," << b;
      ASSERT_EQ(fed.wholes, "PQ") << "cuts " << a << "," << b;
      ASSERT_EQ(fed.rebuilt, s) << "cuts " << a << "," << b;
      ASSERT_EQ(fed.sizes, s.size()) << "cuts " << a << "," << b;
      ASSERT_TRUE(t.AtBoundary());
    }
  }
}

TEST(FrameTrackerTest, PeekedPrefixesAtEveryPairOfOffsetsWithoutCopyingTheStream) {
  const std::string s = FrontendBatch();
  FrameTracker::Gather gather = GatherOf("Q", 1 << 20);
  gather.peek.set('B');
  gather.peek.set('E');
  gather.peek.set('S');
  gather.peek_size = 4;
  for (size_t a = 0; a <= s.size(); ++a) {
    for (size_t b = a; b <= s.size(); ++b) {
      FrameTracker t;
      Fed fed = FeedPieces(t, s, {a, b}, Direction::kFrontend, kDefaultMaxMessageLength, gather);
      ASSERT_EQ(fed.rebuilt, s) << "cuts " << a << "," << b;
      ASSERT_EQ(fed.wholes, "Q");
      // Bind: portal "" then "s1\0"; Execute: portal "" then max rows 0; Sync: no body.
      ASSERT_EQ(fed.peeks, (std::vector<std::string>{std::string("B\0s1\0", 5),
                                                     std::string("E\0\0\0\0", 5), "S"}))
          << "cuts " << a << "," << b;
    }
  }
}

// A message both gathered and peeked (an Execute that masking gathers and
// the audit peeks at) reports its prefix first, then itself whole.
TEST(FrameTrackerTest, GatheredAndPeekedMessageReportsItsPrefixToo) {
  const std::string s = FrontendBatch();
  FrameTracker::Gather gather = GatherOf("QE", 1 << 20);
  gather.peek.set('B');
  gather.peek.set('E');
  gather.peek_size = 4;
  for (size_t cut = 0; cut <= s.size(); ++cut) {
    FrameTracker t;
    Fed fed = FeedPieces(t, s, {cut}, Direction::kFrontend, kDefaultMaxMessageLength, gather);
    ASSERT_EQ(fed.rebuilt, s) << cut;
    ASSERT_EQ(fed.wholes, "EQ") << cut;
    ASSERT_EQ(fed.peeks,
              (std::vector<std::string>{std::string("B\0s1\0", 5), std::string("E\0\0\0\0", 5)}))
        << cut;
  }
}

TEST(FrameTrackerTest, NothingGatheredPassesEveryByteInOrder) {
  const std::string s = FrontendBatch();
  for (size_t cut = 0; cut <= s.size(); ++cut) {
    FrameTracker t;
    Fed fed = FeedPieces(t, s, {cut}, Direction::kFrontend);
    EXPECT_EQ(fed.rebuilt, s) << cut;
    EXPECT_TRUE(fed.wholes.empty());
  }
}

TEST(FrameTrackerTest, OversizeGatheredMessageIsReportedAndDropped) {
  const std::string s = FrontendBatch();
  // Parse is 20 bytes, the Query 43: a cap of 30 keeps Parse, drops the Query.
  const FrameTracker::Gather gather = GatherOf("PQ", 30);
  std::string expected = s.substr(0, s.rfind('Q'));
  expected += "<oversize Q>";
  for (size_t cut = 0; cut <= s.size(); ++cut) {
    FrameTracker t;
    Fed fed = FeedPieces(t, s, {cut}, Direction::kFrontend, kDefaultMaxMessageLength, gather);
    EXPECT_EQ(fed.rebuilt, expected) << cut;
    EXPECT_TRUE(t.AtBoundary()) << cut;
  }
}

// A header cut by a chunk's end is held back until it is whole and checked:
// not one byte of a bad frame is passed on, wherever the cuts fall.
TEST(FrameTrackerTest, NoByteOfABadHeaderIsPassedOnWhereverItIsCut) {
  std::string s;
  { MessageWriter(s, kPqMsg_Query).CString("SELECT 1"); }
  const size_t good = s.size();
  s.append("\x01\x00\x00\x00\x05", 5);  // an unknown message type
  for (size_t a = 0; a <= s.size(); ++a) {
    for (size_t b = a; b <= s.size(); ++b) {
      FrameTracker t;
      Fed fed = FeedPieces(t, s, {a, b}, Direction::kFrontend);
      ASSERT_EQ(fed.rebuilt, s.substr(0, good)) << "cuts " << a << "," << b;
    }
  }
  // A good header cut the same way passes whole.
  std::string ok = s.substr(0, good) + s.substr(0, good);
  for (size_t cut = 0; cut <= ok.size(); ++cut) {
    FrameTracker t;
    ASSERT_EQ(FeedPieces(t, ok, {cut}, Direction::kFrontend).rebuilt, ok) << cut;
  }
}

TEST(FrameTrackerTest, BadHeaderAfterGatheredMessage) {
  std::string s;
  { MessageWriter(s, kPqMsg_Query).CString("SELECT 1"); }
  const size_t good = s.size();
  s.append("Q\x00\x00\x00\x02", 5);
  FrameTracker t;
  Fed fed =
      FeedPieces(t, s, {}, Direction::kFrontend, kDefaultMaxMessageLength, GatherOf("Q", 1024));
  EXPECT_FALSE(fed.scans[0].error.empty());
  EXPECT_EQ(fed.scans[0].valid_prefix, good);
  EXPECT_EQ(fed.rebuilt, s.substr(0, good));
}

}  // namespace
}  // namespace pgb::proto
