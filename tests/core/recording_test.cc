// Session recordings (core/recording/): what a SessionRecording keeps of the
// two streams, split at every byte offset, written by a real Recorder to a
// real file and read back by RecordingReader; the content digest the audit
// record carries; readers of cut, edited and foreign files.
#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/file_read.h"
#include "core/recording/catalog.h"
#include "core/recording/format.h"
#include "core/recording/recorder.h"
#include "core/recording/recording_config.h"
#include "core/recording/replay.h"
#include "core/recording/session_recording.h"
#include "gtest/gtest.h"
#include "proto/messages.h"

namespace pgb::recording {
namespace {

std::string Message(char type, std::string_view body) {
  std::string m(1, type);
  const uint32_t len = static_cast<uint32_t>(body.size() + 4);
  for (int i = 3; i >= 0; --i) m += static_cast<char>((len >> (8 * i)) & 0xff);
  m += body;
  return m;
}
std::string Query(std::string_view sql) { return Message('Q', std::string(sql) + '\0'); }
std::string DataRow(const std::vector<std::string>& values) {
  std::string body;
  body += static_cast<char>(values.size() >> 8);
  body += static_cast<char>(values.size() & 0xff);
  for (const std::string& v : values) {
    const uint32_t n = static_cast<uint32_t>(v.size());
    for (int i = 3; i >= 0; --i) body += static_cast<char>((n >> (8 * i)) & 0xff);
    body += v;
  }
  return Message('D', body);
}
std::string RowDescription(const std::vector<std::string>& names) {
  std::string body;
  body += static_cast<char>(names.size() >> 8);
  body += static_cast<char>(names.size() & 0xff);
  for (const std::string& n : names) {
    body += n;
    body += '\0';
    body.append(6, '\0');                        // table oid, column
    body += std::string("\0\0\0\x19", 4);        // type oid 25 (text)
    body += std::string("\xff\xff", 2);          // typlen
    body += std::string("\xff\xff\xff\xff", 4);  // typmod
    body += std::string("\0\0", 2);              // text format
  }
  return Message('T', body);
}

class RecordingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/pgb-recording-test-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    config_.enabled = true;
    config_.directory = dir_;
    config_.chunk_bytes = 4096;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  // Records `from_client` then `to_client` (each split at `split`), returns
  // the file's bytes and the summary.
  std::string Record(const std::string& from_client, const std::string& to_client, size_t split,
                     RecordMode mode, audit::ParameterMode params,
                     SessionRecording::Summary* summary) {
    absl::StatusOr<std::unique_ptr<Recorder>> recorder = Recorder::Start(config_, 1);
    EXPECT_TRUE(recorder.ok()) << recorder.status();
    policy::Identity identity;
    identity.subject = "agent-7";
    RecordingHeader header;
    header.session_id = ++session_;
    header.start_us = 1'700'000'000'000'000 + static_cast<int64_t>(session_);
    header.identity = &identity;
    header.scope = "agents";
    header.target = "app";
    header.mode = mode;
    {
      SessionRecording rec((*recorder)->shard(0), params, header);
      const size_t a = std::min(split, from_client.size());
      rec.Observe(Direction::kFromClient, from_client.data(), a);
      rec.Observe(Direction::kFromClient, from_client.data() + a, from_client.size() - a);
      const size_t b = std::min(split, to_client.size());
      rec.Observe(Direction::kToClient, to_client.data(), b);
      rec.Observe(Direction::kToClient, to_client.data() + b, to_client.size() - b);
      *summary = rec.Finish("client terminated the session");
    }
    (*recorder)->Stop();
    std::optional<RecordingFile> f = FindRecording(dir_, session_);
    EXPECT_TRUE(f.has_value());
    if (!f) return "";
    absl::StatusOr<FileContents> bytes = ReadRegularFile(f->path, 1 << 30);
    EXPECT_TRUE(bytes.ok());
    return bytes.ok() ? bytes->contents : "";
  }

  std::string dir_;
  RecordingConfig config_;
  uint64_t session_ = 0;
};

std::vector<Event> ReadAll(std::string_view file, absl::Status* status = nullptr,
                           bool* interrupted = nullptr) {
  RecordingReader reader(file);
  std::vector<Event> events;
  while (auto e = reader.Next()) events.push_back(std::move(*e));
  if (status) *status = reader.status();
  if (interrupted) *interrupted = reader.interrupted();
  return events;
}

TEST_F(RecordingTest, FullModeKeepsEveryMessageAtEverySplit) {
  const std::string client =
      Query("SELECT * FROM t") + Message('p', std::string("secret\0", 7)) + Message('X', "");
  std::string server = RowDescription({"a", "b"});
  for (int i = 0; i < 50; ++i) server += DataRow({"value-" + std::to_string(i), "***"});
  server += Message('C', std::string("SELECT 50\0", 10)) + Message('Z', "I");
  for (size_t split = 0; split <= server.size(); split += (split < 64 ? 1 : 97)) {
    SessionRecording::Summary summary;
    const std::string file =
        Record(client, server, split, RecordMode::kFull, audit::ParameterMode::kOff, &summary);
    absl::Status status;
    bool interrupted = true;
    const std::vector<Event> events = ReadAll(file, &status, &interrupted);
    ASSERT_TRUE(status.ok()) << status;
    EXPECT_FALSE(interrupted);
    ASSERT_GE(events.size(), 3u);
    EXPECT_EQ(events.front().kind, kHeader);
    EXPECT_NE(events.front().payload.find("\"subject\":\"agent-7\""), std::string::npos);
    EXPECT_EQ(events.back().kind, kEnd);
    std::string got_client, got_server;
    for (const Event& e : events) {
      if (e.kind == kFromClient) got_client += e.payload;
      if (e.kind == kToClient) got_server += e.payload;
    }
    // The password message is never recorded; everything else is, whole.
    EXPECT_EQ(got_client, Query("SELECT * FROM t") + Message('X', "")) << "split " << split;
    EXPECT_EQ(got_server, server) << "split " << split;
    EXPECT_EQ(file.find("secret"), std::string::npos);
    ContentDigest digest;
    ASSERT_TRUE(DigestRecording(file, &digest).ok());
    EXPECT_EQ(digest.sha256_hex, summary.sha256_hex);
    EXPECT_EQ(digest.bytes, summary.bytes);
    EXPECT_EQ(summary.status, SessionRecording::Status::kComplete);
  }
}

TEST_F(RecordingTest, StatementsModeCountsRowsAndRedactsBind) {
  std::string bind_body = std::string("\0stmt\0", 6) + std::string("\0\0", 2) +  // no formats
                          std::string("\0\x02", 2) + std::string("\0\0\0\x06", 4) + "hunter" +
                          std::string("\xff\xff\xff\xff", 4) + std::string("\0\0", 2);
  const std::string client = Message('B', bind_body) + Query("SELECT 1");
  std::string server = RowDescription({"a"});
  for (int i = 0; i < 7; ++i) server += DataRow({"x"});
  server += Message('C', std::string("SELECT 7\0", 9)) + Message('Z', "I");
  SessionRecording::Summary summary;
  const std::string file =
      Record(client, server, 3, RecordMode::kStatements, audit::ParameterMode::kRedacted, &summary);
  const std::vector<Event> events = ReadAll(file);
  std::string got_server;
  uint64_t rows = 0;
  bool saw_bind = false;
  for (const Event& e : events) {
    if (e.kind == kToClient) got_server += e.payload;
    if (e.kind == kRows) rows = static_cast<uint8_t>(e.payload[0]);
    if (e.kind == kFromClient && e.payload[0] == 'B') {
      saw_bind = true;
      EXPECT_EQ(e.payload.find("hunter"), std::string::npos);
      EXPECT_NE(e.payload.find("[redacted]"), std::string::npos);
    }
  }
  EXPECT_TRUE(saw_bind);
  EXPECT_EQ(rows, 7u);
  EXPECT_EQ(got_server, Message('C', std::string("SELECT 7\0", 9)) + Message('Z', "I"));
  EXPECT_EQ(file.find("hunter"), std::string::npos);
}

TEST_F(RecordingTest, SessionMaxBytesTruncatesWithAMarker) {
  config_.session_max_bytes = 8192;
  std::string server;
  for (int i = 0; i < 2000; ++i) server += DataRow({std::string(20, 'v')});
  SessionRecording::Summary summary;
  const std::string file =
      Record(Query("SELECT"), server, 0, RecordMode::kFull, audit::ParameterMode::kOff, &summary);
  const std::vector<Event> events = ReadAll(file);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events[events.size() - 2].kind, kTruncated);
  EXPECT_EQ(events.back().kind, kEnd);
  EXPECT_EQ(summary.status, SessionRecording::Status::kTruncated);
  EXPECT_LE(summary.bytes, config_.session_max_bytes);
}

TEST_F(RecordingTest, CutFilesReadUpToTheLastWholeChunk) {
  std::string server;
  for (int i = 0; i < 3000; ++i) server += DataRow({"row " + std::to_string(i)});
  SessionRecording::Summary summary;
  const std::string file =
      Record(Query("SELECT"), server, 0, RecordMode::kFull, audit::ParameterMode::kOff, &summary);
  const size_t whole = ReadAll(file).size();
  for (size_t cut = 0; cut < file.size(); cut += 37) {
    absl::Status status;
    bool interrupted = false;
    const std::vector<Event> events = ReadAll(file.substr(0, cut), &status, &interrupted);
    if (cut < kMagic.size()) {
      EXPECT_FALSE(status.ok());
      continue;
    }
    EXPECT_TRUE(status.ok()) << cut << ": " << status;
    EXPECT_LT(events.size(), whole);
    ContentDigest digest;
    ASSERT_TRUE(DigestRecording(file.substr(0, cut), &digest).ok());
    EXPECT_LT(digest.bytes, summary.bytes);
  }
}

TEST_F(RecordingTest, EditedAndForeignFilesAreErrors) {
  SessionRecording::Summary summary;
  std::string file = Record(Query("SELECT 1"), Message('Z', "I"), 0, RecordMode::kFull,
                            audit::ParameterMode::kOff, &summary);
  absl::Status status;
  ReadAll("hello, world: not a recording", &status);
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  // Any flipped byte after the magic: a corrupt chunk (zstd's checksum), a
  // different digest, or (a bit zstd does not use for this frame) the very
  // same content: what the audit record vouches for is the content.
  const std::vector<Event> original = ReadAll(file);
  for (size_t i = kMagic.size(); i < file.size(); ++i) {
    std::string edited = file;
    edited[i] ^= 0x20;
    const std::vector<Event> events = ReadAll(edited, &status);
    ContentDigest digest;
    if (DigestRecording(edited, &digest).ok() && digest.sha256_hex == summary.sha256_hex &&
        digest.bytes == summary.bytes) {
      ASSERT_EQ(events.size(), original.size()) << "byte " << i;
      for (size_t k = 0; k < events.size(); ++k) {
        EXPECT_EQ(events[k].payload, original[k].payload) << "byte " << i;
        EXPECT_EQ(events[k].unix_us, original[k].unix_us) << "byte " << i;
      }
    }
  }
}

TEST_F(RecordingTest, ReplayShowsAnAlignedTable) {
  std::string server = RowDescription({"id", "name"});
  server += DataRow({"1", "alice"}) + DataRow({"22", "***"});
  server += Message('C', std::string("SELECT 2\0", 9));
  proto::ErrorFields notice{"NOTICE", "00000", "hello", "", ""};
  proto::AppendNoticeResponse(server, notice);
  server += Message('Z', "I");
  SessionRecording::Summary summary;
  const std::string file = Record(Query("SELECT id, name FROM t"), server, 5, RecordMode::kFull,
                                  audit::ParameterMode::kOff, &summary);
  RecordingReader reader(file);
  ReplayRenderer renderer(ReplayRenderer::Format::kText);
  std::string out;
  while (auto e = reader.Next()) renderer.Render(*e, out);
  renderer.Finish(reader, out);
  EXPECT_NE(out.find("app=> SELECT id, name FROM t\n"), std::string::npos) << out;
  EXPECT_NE(out.find(" id | name  \n----+-------\n 1  | alice\n 22 | ***\n(2 rows)\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("NOTICE:  hello\n"), std::string::npos) << out;
}

// [recording] and each scope's `record`, as core/config.cc hands them over.
std::vector<std::string> ParseProblems(std::string_view text, RecordingConfig* out) {
  toml::table root = toml::parse(text);
  std::vector<std::string> problems;
  ParseRecordingConfig(
      root.get("recording"), root.get("scope"), [](std::string_view p) { return std::string(p); },
      [&](const toml::source_region&, std::string_view path, std::string_view message) {
        problems.push_back(std::string(path) + ": " + std::string(message));
      },
      out);
  return problems;
}

TEST(RecordingConfigTest, ScopesRecordOnlyWithARecordingTable) {
  RecordingConfig config;
  EXPECT_EQ(ParseProblems(R"([[scope]]
name = "a"
record = "full")",
                          &config),
            std::vector<std::string>{"scope[0].record: this scope's sessions are recorded, but "
                                     "there is no [recording] table (its directory)"});
  config = RecordingConfig();
  EXPECT_EQ(ParseProblems(R"([recording]
directory = "/r"
on_overflow = "gap"
session_max_bytes = 100
queue_chunks = 3
[[scope]]
name = "a"
record = "everything"
[[scope]]
name = "b"
record = "statements"
[[scope]]
name = "c")",
                          &config)
                .size(),
            3u);  // session_max_bytes, queue_chunks, record
  EXPECT_EQ(config.on_overflow, OnOverflow::kGap);
  EXPECT_EQ(config.ModeFor("a"), RecordMode::kOff);
  EXPECT_EQ(config.ModeFor("b"), RecordMode::kStatements);
  EXPECT_EQ(config.ModeFor("c"), RecordMode::kOff);
}

}  // namespace
}  // namespace pgb::recording
