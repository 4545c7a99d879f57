#include "proto/request_pipeline.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "proto/protocol.h"

namespace pgb::proto {
namespace {

// A note that names each request, so that a test can say whose answer is whose.
struct Name {
  std::string text;
};
using Pipeline = RequestPipeline<Name>;

// Drives the pipeline the way the relay does and writes down what happened.
class PipelineDriver {
 public:
  explicit PipelineDriver(size_t max_outstanding = 1 << 17) : pipeline(max_outstanding) {}

  // A client message; `name` is noted on its request (if it makes one).
  void Client(char type, std::string name = "") {
    Pipeline::Request* r = pipeline.Push(type);
    if (r != nullptr) r->note.text = name.empty() ? std::string(1, type) : std::move(name);
    if (type == kPqMsg_CopyDone || type == kPqMsg_CopyFail) pipeline.OnClientCopyEnd();
  }
  // A database message: returns the name of the request it answers ("-" for
  // none), with "!" appended when it closes it.
  std::string Backend(char type) {
    absl::Status s = pipeline.OnBackendMessage(
        type, [this](const Pipeline::Request& r) { closed.push_back(r.note.text); });
    if (!s.ok()) return "error: " + std::string(s.message());
    Pipeline::Request* r = pipeline.answering();
    if (r == nullptr) return "-";
    return r->note.text + (pipeline.closes() ? "!" : "");
  }

  // A flag of the request the current message answers ("none" without one).
  std::string Answering(bool Pipeline::Request::*flag) {
    Pipeline::Request* r = pipeline.answering();
    if (r == nullptr) return "none";
    return r->*flag ? "yes" : "no";
  }

  Pipeline pipeline;
  std::vector<std::string> closed;
};

TEST(RequestPipelineTest, SimpleQueryStatementsAreClosedByTheirCompletions) {
  PipelineDriver d;
  d.Client(kPqMsg_Query, "batch");
  d.pipeline.InsertBeforeLast(RequestKind::kStatement, kPqMsg_Query).note.text = "s1";
  d.pipeline.InsertBeforeLast(RequestKind::kStatement, kPqMsg_Query).note.text = "s2";
  EXPECT_EQ(d.pipeline.outstanding(), 3u);
  EXPECT_EQ(d.Backend(kPqMsg_RowDescription), "s1");
  EXPECT_EQ(d.Backend(kPqMsg_DataRow), "s1");
  EXPECT_EQ(d.Backend(kPqMsg_CommandComplete), "s1!");
  EXPECT_EQ(d.Backend(kPqMsg_NoticeResponse), "-");
  EXPECT_EQ(d.closed, std::vector<std::string>{"s1"});
  EXPECT_EQ(d.Backend(kPqMsg_CommandComplete), "s2!");
  EXPECT_EQ(d.Backend(kPqMsg_ReadyForQuery), "-");
  EXPECT_EQ(d.closed, (std::vector<std::string>{"s1", "s2", "batch"}));
  EXPECT_EQ(d.pipeline.outstanding(), 0u);
}

TEST(RequestPipelineTest, AnErrorSkipsTheRestOfTheBatchUntilReadyForQuery) {
  PipelineDriver d;
  for (const char* n : {"P", "B", "D", "E"}) d.Client(n[0]);
  d.Client(kPqMsg_Sync);
  d.Client(kPqMsg_Bind, "B2");
  d.Client(kPqMsg_Execute, "E2");
  d.Client(kPqMsg_Sync, "S2");
  EXPECT_EQ(d.Backend(kPqMsg_ParseComplete), "P!");
  EXPECT_EQ(d.Backend(kPqMsg_ErrorResponse), "B!");  // the Bind failed
  // D and E were skipped: the ReadyForQuery closes them with the Sync.
  EXPECT_EQ(d.Backend(kPqMsg_ReadyForQuery), "-");
  EXPECT_EQ(d.closed, (std::vector<std::string>{"P", "B", "D", "E", "S"}));
  EXPECT_EQ(d.Backend(kPqMsg_BindComplete), "B2!");
  EXPECT_EQ(d.Backend(kPqMsg_DataRow), "E2");
  EXPECT_EQ(d.Backend(kPqMsg_PortalSuspended), "E2!");
  EXPECT_EQ(d.Backend(kPqMsg_ReadyForQuery), "-");
  EXPECT_EQ(d.closed.back(), "S2");
}

TEST(RequestPipelineTest, DescribeIsClosedByItsDescription) {
  PipelineDriver d;
  d.Client(kPqMsg_Parse);
  d.Client(kPqMsg_Describe, "Dstmt");
  d.Client(kPqMsg_Describe, "Dportal");
  d.Client(kPqMsg_Sync);
  EXPECT_EQ(d.Backend(kPqMsg_ParseComplete), "P!");
  EXPECT_EQ(d.Backend(kPqMsg_ParameterDescription), "Dstmt");
  EXPECT_EQ(d.Backend(kPqMsg_RowDescription), "Dstmt!");
  EXPECT_EQ(d.Backend(kPqMsg_NoData), "Dportal!");
  EXPECT_EQ(d.Backend(kPqMsg_ReadyForQuery), "-");
}

TEST(RequestPipelineTest, TheGatewaysOwnDescribeIsMarked) {
  PipelineDriver d;
  d.Client(kPqMsg_Bind);
  d.Client(kPqMsg_Execute);
  d.pipeline.InsertBeforeLast(RequestKind::kDescribe, kPqMsg_Describe, /*from_gateway=*/true)
      .note.text = "ours";
  d.Client(kPqMsg_Sync);
  EXPECT_EQ(d.Backend(kPqMsg_BindComplete), "B!");
  EXPECT_EQ(d.Backend(kPqMsg_RowDescription), "ours!");
  EXPECT_EQ(d.Answering(&Pipeline::Request::from_gateway), "yes");
  EXPECT_EQ(d.Backend(kPqMsg_DataRow), "E");
  EXPECT_EQ(d.Answering(&Pipeline::Request::from_gateway), "no");
  EXPECT_EQ(d.Backend(kPqMsg_CommandComplete), "E!");
  EXPECT_EQ(d.Backend(kPqMsg_ReadyForQuery), "-");
}

TEST(RequestPipelineTest, MessagesWithoutAnswersMakeNoRequest) {
  PipelineDriver d;
  for (char t :
       {kPqMsg_Flush, kPqMsg_CopyData, kPqMsg_CopyDone, kPqMsg_CopyFail, kPqMsg_Terminate}) {
    EXPECT_EQ(d.pipeline.Push(t), nullptr) << t;
  }
  EXPECT_EQ(d.pipeline.outstanding(), 0u);
  EXPECT_EQ(d.pipeline.last(), nullptr);
}

TEST(RequestPipelineTest, AnswersThatFitNoRequestAreErrors) {
  {
    PipelineDriver d;  // nothing outstanding
    EXPECT_EQ(d.Backend(kPqMsg_CommandComplete).substr(0, 6), "error:");
  }
  {
    PipelineDriver d;
    d.Client(kPqMsg_Bind);
    EXPECT_EQ(d.Backend(kPqMsg_ParseComplete).substr(0, 6), "error:");
  }
  {
    PipelineDriver d;  // an Execute has no RowDescription of its own
    d.Client(kPqMsg_Execute);
    EXPECT_EQ(d.Backend(kPqMsg_RowDescription).substr(0, 6), "error:");
  }
  {
    PipelineDriver d;  // a ReadyForQuery needs a batch end
    d.Client(kPqMsg_Parse);
    EXPECT_EQ(d.Backend(kPqMsg_ReadyForQuery).substr(0, 6), "error:");
  }
  {
    PipelineDriver d;  // a FATAL with nothing outstanding belongs to nobody
    EXPECT_EQ(d.Backend(kPqMsg_ErrorResponse), "-");
  }
}

TEST(RequestPipelineTest, AQueryMayHoldMoreCompletionsThanCounted) {
  PipelineDriver d;
  d.Client(kPqMsg_Query, "Q");  // an empty Query: no statement counted
  EXPECT_EQ(d.Backend(kPqMsg_EmptyQueryResponse), "Q");
  EXPECT_EQ(d.Backend(kPqMsg_ReadyForQuery), "-");
  EXPECT_EQ(d.closed, std::vector<std::string>{"Q"});
}

TEST(RequestPipelineTest, FunctionCallIsAnsweredThenClosedByReadyForQuery) {
  PipelineDriver d;
  d.Client(kPqMsg_FunctionCall, "F");
  EXPECT_EQ(d.Backend(kPqMsg_FunctionCallResponse), "F");
  EXPECT_EQ(d.Answering(&Pipeline::Request::answered), "yes");
  EXPECT_EQ(d.Backend(kPqMsg_ReadyForQuery), "-");
  EXPECT_EQ(d.closed, std::vector<std::string>{"F"});
}

// libpq sends Parse/Bind/Describe/Execute/Sync for a COPY FROM STDIN, then
// CopyData, CopyDone and another Sync; the database ignores the first Sync.
TEST(RequestPipelineTest, SyncsDuringCopyInAreIgnoredLikeTheDatabaseDoes) {
  PipelineDriver d;
  for (const char* n : {"P", "B", "D", "E"}) d.Client(n[0]);
  d.Client(kPqMsg_Sync, "ignored");
  EXPECT_EQ(d.Backend(kPqMsg_ParseComplete), "P!");
  EXPECT_EQ(d.Backend(kPqMsg_BindComplete), "B!");
  EXPECT_EQ(d.Backend(kPqMsg_NoData), "D!");
  EXPECT_EQ(d.Backend(kPqMsg_CopyInResponse), "E");
  d.Client(kPqMsg_CopyData);
  d.Client(kPqMsg_Sync, "also ignored");  // still in copy-in
  d.Client(kPqMsg_CopyDone);
  d.Client(kPqMsg_Sync, "S");
  EXPECT_EQ(d.pipeline.outstanding(), 2u);  // the Execute and the last Sync
  EXPECT_EQ(d.Backend(kPqMsg_CommandComplete), "E!");
  EXPECT_EQ(d.Backend(kPqMsg_ReadyForQuery), "-");
  EXPECT_EQ(d.closed, (std::vector<std::string>{"P", "B", "D", "E", "S"}));
  // Afterwards a Sync is a Sync again.
  d.Client(kPqMsg_Sync, "S2");
  EXPECT_EQ(d.Backend(kPqMsg_ReadyForQuery), "-");
  EXPECT_EQ(d.closed.back(), "S2");
}

TEST(RequestPipelineTest, ACopyEndSentBeforeTheCopyStartedKeepsTheSyncAfterIt) {
  PipelineDriver d;  // a client that streams without waiting for CopyInResponse
  d.Client(kPqMsg_Query, "Q");
  d.pipeline.InsertBeforeLast(RequestKind::kStatement, kPqMsg_Query).note.text = "copy";
  d.Client(kPqMsg_CopyData);
  d.Client(kPqMsg_CopyDone);
  d.Client(kPqMsg_Sync, "S");
  EXPECT_EQ(d.Backend(kPqMsg_CopyInResponse), "copy");
  EXPECT_EQ(d.pipeline.outstanding(), 3u);
  EXPECT_EQ(d.Backend(kPqMsg_CommandComplete), "copy!");
  EXPECT_EQ(d.Backend(kPqMsg_ReadyForQuery), "-");
  EXPECT_EQ(d.Backend(kPqMsg_ReadyForQuery), "-");
  EXPECT_EQ(d.closed, (std::vector<std::string>{"copy", "Q", "S"}));
}

TEST(RequestPipelineTest, OutstandingRequestsAreBounded) {
  PipelineDriver d(/*max_outstanding=*/4);
  for (int i = 0; i < 4; ++i) d.Client(kPqMsg_Sync);
  EXPECT_FALSE(d.pipeline.overloaded());
  EXPECT_FALSE(d.pipeline.HasRoomFor(1));
  d.Client(kPqMsg_Sync);
  EXPECT_TRUE(d.pipeline.overloaded());
  for (int i = 0; i < 5; ++i) EXPECT_EQ(d.Backend(kPqMsg_ReadyForQuery), "-");
  EXPECT_FALSE(d.pipeline.overloaded());
  EXPECT_EQ(d.pipeline.outstanding(), 0u);
}

// The request a message answers stays readable while the message is handled
// (its peeked prefix or whole body comes after the header), and is removed
// only when the next message arrives.
TEST(RequestPipelineTest, AClosedRequestStaysReadableUntilTheNextMessage) {
  PipelineDriver d;
  d.Client(kPqMsg_Parse, "P1");
  d.Client(kPqMsg_Sync);
  EXPECT_EQ(d.Backend(kPqMsg_ErrorResponse), "P1!");
  EXPECT_TRUE(d.closed.empty());
  EXPECT_EQ(d.Answering(&Pipeline::Request::answered), "yes");
  EXPECT_EQ(d.Backend(kPqMsg_ReadyForQuery), "-");
  EXPECT_EQ(d.closed, (std::vector<std::string>{"P1", "S"}));
}

}  // namespace
}  // namespace pgb::proto
