// The audit trail end to end: records from shard rings through the writer to
// the file sink, verified with `VerifyTrail`; every tamper case; rotation and
// restarts; spill and in-order redelivery to a real TCP syslog receiver;
// fail-closed with a full spill, then recovery; fail-open drop accounting.
#include <algorithm>
#include <random>
#include <set>

#include "core/audit/file_sink.h"
#include "core/audit/verify.h"
#include "gmock/gmock.h"
#include "tests/core/audit_test_support.h"

namespace pgb::audit {
namespace {

using ::pgb::audit::testing::Produce;
using ::pgb::audit::testing::ReadLines;
using ::pgb::audit::testing::SeqOf;
using ::pgb::audit::testing::SyslogReceiver;
using ::pgb::audit::testing::TrailDir;
using ::pgb::audit::testing::WriteLines;
using ::testing::HasSubstr;

template <typename Fn>
bool WaitFor(Fn&& done, int millis = 10000) {
  for (int i = 0; i < millis / 5; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return done();
}

VerifyReport Verify(const TrailDir& dir, const std::vector<std::string>& files,
                    VerifyOptions options = {}) {
  absl::StatusOr<AuditVerifyKey> key = AuditVerifyKey::LoadFile(dir.path("audit.pub"));
  EXPECT_TRUE(key.ok()) << key.status();
  absl::StatusOr<VerifyReport> report = VerifyTrail(files, *key, options);
  EXPECT_TRUE(report.ok()) << report.status();
  return report.ok() ? *report : VerifyReport{};
}

std::unique_ptr<AuditTrail> StartTrail(const AuditConfig& config, int shards = 2) {
  absl::StatusOr<std::unique_ptr<AuditTrail>> trail = AuditTrail::Start(config, shards);
  EXPECT_TRUE(trail.ok()) << trail.status();
  return trail.ok() ? *std::move(trail) : nullptr;
}

TEST(AuditTrailTest, EveryRecordOnceInOrderAndTheTrailVerifies) {
  TrailDir dir;
  auto trail = StartTrail(dir.Config(/*checkpoint_every=*/500));
  ASSERT_NE(trail, nullptr);
  std::thread other([&] { Produce(*trail, 1200, 1, "b"); });
  Produce(*trail, 1300, 0, "a");
  other.join();
  trail->Stop();

  const std::vector<std::string> lines = ReadLines(dir.path("audit.jsonl"));
  size_t statements = 0, checkpoints = 0;
  std::set<std::string> texts;
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(SeqOf(lines[i]), i + 1);
    if (lines[i].find("\"kind\":\"statement\"") != std::string::npos) {
      ++statements;
      const size_t at = lines[i].find("\"statement\":");
      texts.insert(lines[i].substr(at, lines[i].find('"', at + 13) - at));
    }
    if (lines[i].find("\"kind\":\"checkpoint\"") != std::string::npos) ++checkpoints;
  }
  EXPECT_EQ(statements, 2500u);
  EXPECT_EQ(texts.size(), 2500u) << "each record exactly once";
  EXPECT_GE(checkpoints, 5u);
  EXPECT_THAT(lines.back(), HasSubstr("\"final\":true"));
  EXPECT_EQ(trail->metrics().records_written, lines.size());
  EXPECT_EQ(trail->metrics().records_dropped, 0u);

  const VerifyReport report = Verify(dir, {dir.path("audit.jsonl")});
  EXPECT_FALSE(report.finding.has_value()) << report.finding->Describe();
  EXPECT_EQ(report.records, lines.size());
  EXPECT_EQ(report.checkpoints, checkpoints);
}

// One untouched trail (seq 1..N, checkpoints every 10 lines) for the tamper
// cases: each case edits a copy and checks the verdict.
class AuditTamperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto trail = StartTrail(dir_.Config(/*checkpoint_every=*/10), 1);
    ASSERT_NE(trail, nullptr);
    Produce(*trail, 45);
    trail->Stop();
    lines_ = ReadLines(dir_.path("audit.jsonl"));
    ASSERT_GT(lines_.size(), 45u);
    const VerifyReport clean = Verify(dir_, {dir_.path("audit.jsonl")});
    ASSERT_FALSE(clean.finding.has_value()) << clean.finding->Describe();
  }

  VerifyFinding Tampered(const std::vector<std::string>& lines, VerifyOptions options = {}) {
    const std::string path = dir_.path("tampered.jsonl");
    WriteLines(path, lines);
    const VerifyReport report = Verify(dir_, {path}, options);
    EXPECT_TRUE(report.finding.has_value());
    return report.finding.value_or(VerifyFinding{});
  }

  // Recomputes every "prev" from line `from` on: what an attacker without
  // the signing key can do.
  static void Rechain(std::vector<std::string>& lines, size_t from) {
    for (size_t i = std::max<size_t>(from, 1); i < lines.size(); ++i) {
      const HashHex hash = HashLine(lines[i - 1]);
      const size_t at = lines[i].find("\"prev\":\"");
      lines[i].replace(at + 8, 64, View(hash));
    }
  }

  TrailDir dir_;
  std::vector<std::string> lines_;
};

TEST_F(AuditTamperTest, EditedRecord) {
  std::vector<std::string> lines = lines_;
  const size_t at = lines[4].find("SELECT 'q'");
  ASSERT_NE(at, std::string::npos);
  lines[4].replace(at, 10, "DELETE 'q'");
  const VerifyFinding f = Tampered(lines);
  EXPECT_EQ(f.kind, TamperKind::kEdited) << f.Describe();
  EXPECT_EQ(f.line, 5u);
  EXPECT_EQ(f.seq, 5u);
}

TEST_F(AuditTamperTest, EditedPrevField) {
  std::vector<std::string> lines = lines_;
  const size_t at = lines[4].find("\"prev\":\"");
  lines[4][at + 8] = lines[4][at + 8] == 'a' ? 'b' : 'a';
  const VerifyFinding f = Tampered(lines);
  EXPECT_EQ(f.kind, TamperKind::kEdited) << f.Describe();
  EXPECT_EQ(f.line, 5u);
}

TEST_F(AuditTamperTest, GarbageLine) {
  std::vector<std::string> lines = lines_;
  lines[7] = "not json";
  const VerifyFinding f = Tampered(lines);
  EXPECT_EQ(f.kind, TamperKind::kEdited) << f.Describe();
  EXPECT_EQ(f.line, 8u);
}

TEST_F(AuditTamperTest, DeletedRecords) {
  std::vector<std::string> lines = lines_;
  lines.erase(lines.begin() + 4, lines.begin() + 6);  // seq 5 and 6
  const VerifyFinding f = Tampered(lines);
  EXPECT_EQ(f.kind, TamperKind::kDeleted) << f.Describe();
  EXPECT_EQ(f.seq, 7u);
  EXPECT_EQ(f.line, 5u);
  EXPECT_THAT(f.detail, HasSubstr("seq 5..6"));
}

TEST_F(AuditTamperTest, ReorderedRecords) {
  std::vector<std::string> lines = lines_;
  std::swap(lines[4], lines[5]);
  const VerifyFinding f = Tampered(lines);
  EXPECT_EQ(f.kind, TamperKind::kReordered) << f.Describe();
  EXPECT_EQ(f.line, 5u);
  EXPECT_EQ(f.seq, 6u);
}

TEST_F(AuditTamperTest, InsertedCopy) {
  std::vector<std::string> lines = lines_;
  lines.insert(lines.begin() + 6, lines[2]);
  const VerifyFinding f = Tampered(lines);
  EXPECT_EQ(f.kind, TamperKind::kInserted) << f.Describe();
  EXPECT_EQ(f.line, 7u);
}

TEST_F(AuditTamperTest, InsertedForgeryThatChains) {
  // A forged record that chains to the one before it and claims its seq.
  std::vector<std::string> lines = lines_;
  auto forged = std::make_unique<AuditRecord>();
  forged->SetStatement("SELECT 'nothing to see'");
  std::string text;
  AppendRecordJson(*forged, {}, 5, View(HashLine(lines[3])), &text);
  text.pop_back();
  lines.insert(lines.begin() + 4, text);
  const VerifyFinding f = Tampered(lines);
  EXPECT_EQ(f.kind, TamperKind::kInserted) << f.Describe();
  EXPECT_EQ(f.line, 5u);
}

TEST_F(AuditTamperTest, RechainedEditFailsTheNextSignature) {
  std::vector<std::string> lines = lines_;
  const size_t at = lines[4].find("SELECT 'q'");
  lines[4].replace(at, 10, "DELETE 'q'");
  Rechain(lines, 5);
  const VerifyFinding f = Tampered(lines);
  EXPECT_EQ(f.kind, TamperKind::kBadSignature) << f.Describe();
  EXPECT_EQ(f.seq, 11u);  // the first checkpoint after the edit
}

TEST_F(AuditTamperTest, EditedCheckpoint) {
  std::vector<std::string> lines = lines_;
  ASSERT_THAT(lines[10], HasSubstr("\"kind\":\"checkpoint\""));
  const size_t at = lines[10].find("\"records\":10");
  ASSERT_NE(at, std::string::npos);
  lines[10].replace(at, 12, "\"records\":11");
  Rechain(lines, 11);
  const VerifyFinding f = Tampered(lines);
  EXPECT_EQ(f.kind, TamperKind::kBadSignature) << f.Describe();
  EXPECT_EQ(f.line, 11u);
}

TEST_F(AuditTamperTest, WrongPublicKey) {
  ASSERT_TRUE(GenerateKeyPairFiles(dir_.path("other.key"), dir_.path("other.pub")).ok());
  absl::StatusOr<AuditVerifyKey> other = AuditVerifyKey::LoadFile(dir_.path("other.pub"));
  ASSERT_TRUE(other.ok());
  absl::StatusOr<VerifyReport> report = VerifyTrail({dir_.path("audit.jsonl")}, *other, {});
  ASSERT_TRUE(report.ok());
  ASSERT_TRUE(report->finding.has_value());
  EXPECT_EQ(report->finding->kind, TamperKind::kBadSignature);
  EXPECT_THAT(report->finding->detail, HasSubstr("not by the given public key"));
}

TEST_F(AuditTamperTest, TailTruncatedAfterTheLastCheckpoint) {
  std::vector<std::string> lines = lines_;
  lines.resize(lines.size() - 2);  // the final checkpoint and the record before it
  VerifyFinding f = Tampered(lines);
  EXPECT_EQ(f.kind, TamperKind::kUnsignedTail) << f.Describe();
  // Cut right after a periodic checkpoint: no final checkpoint at the end.
  lines = lines_;
  lines.resize(22);
  ASSERT_THAT(lines.back(), HasSubstr("\"kind\":\"checkpoint\""));
  f = Tampered(lines);
  EXPECT_EQ(f.kind, TamperKind::kTruncated) << f.Describe();
}

TEST_F(AuditTamperTest, LiveTrailReportsTheUnsignedTailAsANote) {
  std::vector<std::string> lines = lines_;
  lines.resize(lines.size() - 2);
  const std::string path = dir_.path("live.jsonl");
  WriteLines(path, lines);
  const VerifyReport report = Verify(dir_, {path}, VerifyOptions{.live = true});
  EXPECT_FALSE(report.finding.has_value());
  ASSERT_EQ(report.notes.size(), 1u);
  EXPECT_THAT(report.notes[0], HasSubstr("unsigned_tail"));
}

// Write-ahead statement records and their completions, as sessions write
// them: a statement and its completion share session and statement_id.
void Record(AuditTrail& trail, AuditKind kind, uint64_t session, uint64_t statement_id = 0,
            AuditDecision decision = AuditDecision::kNone) {
  AuditRecord* r = trail.shard(0).Begin();
  ASSERT_NE(r, nullptr);
  r->kind = kind;
  r->start_us = AuditClockMicros();
  r->session_id = session;
  r->statement_id = statement_id;
  r->decision = decision;
  if (kind == AuditKind::kStatement) r->SetStatement("INSERT INTO t VALUES (1)");
  if (kind == AuditKind::kCompletion) r->outcome = AuditOutcome::kOk;
  trail.shard(0).Commit();
}

// A whole session with one statement: connect, statement, completion, disconnect.
void CompleteSession(AuditTrail& trail, uint64_t session) {
  Record(trail, AuditKind::kConnect, session);
  Record(trail, AuditKind::kStatement, session, 1, AuditDecision::kAllow);
  Record(trail, AuditKind::kCompletion, session, 1);
  Record(trail, AuditKind::kDisconnect, session);
}

TEST(AuditTrailTest, StatementsWithoutCompletionAndSessionsWithoutEndAreAnIncompleteTrail) {
  TrailDir dir;
  auto trail = StartTrail(dir.Config(), 1);
  ASSERT_NE(trail, nullptr);
  // Session 7: complete. Session 8: one statement completed, one not, no
  // disconnect. A refused statement needs no completion.
  Record(*trail, AuditKind::kConnect, 7);
  Record(*trail, AuditKind::kStatement, 7, 1, AuditDecision::kAllow);
  Record(*trail, AuditKind::kStatement, 7, 2, AuditDecision::kDeny);
  Record(*trail, AuditKind::kCompletion, 7, 1);
  Record(*trail, AuditKind::kDisconnect, 7);
  Record(*trail, AuditKind::kConnect, 8);
  Record(*trail, AuditKind::kStatement, 8, 1, AuditDecision::kAllow);
  Record(*trail, AuditKind::kStatement, 8, 2, AuditDecision::kAllow);
  Record(*trail, AuditKind::kCompletion, 8, 2);
  trail->Stop();

  const VerifyReport report = Verify(dir, {dir.path("audit.jsonl")});
  EXPECT_FALSE(report.finding.has_value()) << report.finding->Describe();
  EXPECT_EQ(report.incomplete.statements, 1u);
  EXPECT_EQ(report.incomplete.sessions, 1u);
  EXPECT_THAT(report.incomplete.first_statement,
              HasSubstr("audit.jsonl:7: session 8, statement_id 1"));
  EXPECT_THAT(report.incomplete.first_session, HasSubstr("audit.jsonl:6: session 8"));
}

TEST(AuditTrailTest, ACompleteTrailHasNoGapsAndACompletionMayFollowInALaterFile) {
  TrailDir dir;
  auto trail = StartTrail(dir.Config(), 1);
  ASSERT_NE(trail, nullptr);
  CompleteSession(*trail, 9);
  trail->Stop();
  const std::vector<std::string> lines = ReadLines(dir.path("audit.jsonl"));
  VerifyReport report = Verify(dir, {dir.path("audit.jsonl")});
  EXPECT_FALSE(report.finding.has_value()) << report.finding->Describe();
  EXPECT_TRUE(report.incomplete.empty());
  // Only the part from the completion on (its statement is in a rotated
  // file not given): not a gap.
  const std::string later = dir.path("later.jsonl");
  WriteLines(later, std::vector<std::string>(lines.begin() + 2, lines.end()));
  report = Verify(dir, {later});
  EXPECT_FALSE(report.finding.has_value()) << report.finding->Describe();
  EXPECT_TRUE(report.incomplete.empty());
}

TEST_F(AuditTamperTest, ARemovedCompletionRechainedAndResignedIsStillAnIncompleteTrail) {
  // Whoever holds the signing key can drop a line and re-sign: the chain
  // then verifies, but the statement it completed shows up as unfinished.
  // (AuditTamperTest's trail has no write-ahead statements: make one.)
  TrailDir dir;
  auto trail = StartTrail(dir.Config(), 1);
  ASSERT_NE(trail, nullptr);
  CompleteSession(*trail, 5);
  trail->Stop();
  std::vector<std::string> lines = ReadLines(dir.path("audit.jsonl"));
  ASSERT_THAT(lines[2], HasSubstr("\"kind\":\"completion\""));
  lines.erase(lines.begin() + 2);
  // The attacker's re-signing: seq and prev rewritten from there on, the
  // final checkpoint made again with the key.
  ASSERT_THAT(lines.back(), HasSubstr("\"final\":true"));
  lines.pop_back();
  for (size_t i = 2; i < lines.size(); ++i) {
    const size_t seq_at = lines[i].find("\"seq\":") + 6;
    lines[i].replace(seq_at, lines[i].find(',', seq_at) - seq_at, std::to_string(i + 1));
  }
  Rechain(lines, 2);
  absl::StatusOr<AuditSigningKey> key = AuditSigningKey::LoadFile(dir.path("audit.key"));
  ASSERT_TRUE(key.ok()) << key.status();
  std::string checkpoint;
  ASSERT_TRUE(AppendCheckpointJson(*key, lines.size() + 1, AuditClockMicros(), lines.size(),
                                   /*final=*/true, View(HashLine(lines.back())), &checkpoint)
                  .ok());
  checkpoint.pop_back();  // its newline
  lines.push_back(checkpoint);
  const std::string path = dir.path("resigned.jsonl");
  WriteLines(path, lines);
  const VerifyReport report = Verify(dir, {path});
  EXPECT_FALSE(report.finding.has_value()) << report.finding->Describe();
  EXPECT_EQ(report.incomplete.statements, 1u);
  EXPECT_EQ(report.incomplete.sessions, 0u);
}

TEST(AuditTrailTest, RestartContinuesTheChain) {
  TrailDir dir;
  for (int run = 0; run < 3; ++run) {
    auto trail = StartTrail(dir.Config(50));
    ASSERT_NE(trail, nullptr);
    Produce(*trail, 120);
    trail->Stop();
  }
  const std::vector<std::string> lines = ReadLines(dir.path("audit.jsonl"));
  for (size_t i = 0; i < lines.size(); ++i) ASSERT_EQ(SeqOf(lines[i]), i + 1);
  const VerifyReport report = Verify(dir, {dir.path("audit.jsonl")});
  EXPECT_FALSE(report.finding.has_value()) << report.finding->Describe();
  EXPECT_EQ(report.records, lines.size());
}

TEST(AuditTrailTest, PartialLastLineFromACrashIsCutAndTheChainContinues) {
  TrailDir dir;
  {
    auto trail = StartTrail(dir.Config(50));
    Produce(*trail, 30);
    trail->Stop();
  }
  {
    std::ofstream out(dir.path("audit.jsonl"), std::ios::app);
    out << R"({"v":2,"seq":99,"kind":"statem)";  // no newline: cut short
  }
  {
    auto trail = StartTrail(dir.Config(50));
    Produce(*trail, 30);
    trail->Stop();
  }
  const VerifyReport report = Verify(dir, {dir.path("audit.jsonl")});
  EXPECT_FALSE(report.finding.has_value()) << report.finding->Describe();
}

TEST(AuditTrailTest, RotationBySizeKeepsTheChainAcrossFiles) {
  TrailDir dir;
  AuditConfig config = dir.Config(100);
  config.sinks[0].file.rotate_bytes = 16 << 10;
  for (int run = 0; run < 2; ++run) {
    auto trail = StartTrail(config);
    for (int i = 0; i < 10; ++i) {
      Produce(*trail, 50);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // several batches
    }
    trail->Stop();
  }
  std::vector<std::string> files = FileSink::RotatedFiles(dir.path("audit.jsonl"));
  ASSERT_GE(files.size(), 3u);
  for (const std::string& file : files) {
    EXPECT_LE(std::filesystem::file_size(file), 16u << 10) << file;
  }
  files.push_back(dir.path("audit.jsonl"));
  std::shuffle(files.begin(), files.end(), std::mt19937(7));  // verify orders them
  VerifyReport report = Verify(dir, files);
  EXPECT_FALSE(report.finding.has_value()) << report.finding->Describe();
  EXPECT_EQ(report.first_seq, 1u);
  EXPECT_GE(report.records, 1000u);

  // A rotated file deleted from the middle: records are missing.
  files = FileSink::RotatedFiles(dir.path("audit.jsonl"));
  files.erase(files.begin() + 1);
  files.push_back(dir.path("audit.jsonl"));
  report = Verify(dir, files);
  ASSERT_TRUE(report.finding.has_value());
  EXPECT_EQ(report.finding->kind, TamperKind::kDeleted) << report.finding->Describe();
}

// A batch larger than the room left is split between lines across files; a
// line longer than rotate_bytes gets a file of its own.
TEST(AuditTrailTest, FileSinkSplitsABatchAtRotation) {
  TrailDir dir;
  FileSinkConfig config;
  config.path = dir.path("split.jsonl");
  config.rotate_bytes = 4096;
  config.fsync = FsyncPolicy::kNever;
  absl::StatusOr<std::unique_ptr<FileSink>> sink = FileSink::Open("split", config);
  ASSERT_TRUE(sink.ok()) << sink.status();
  std::string batch;
  for (int i = 0; i < 10; ++i) batch += std::string(999, static_cast<char>('a' + i)) + "\n";
  const std::string huge = std::string(5000, 'z') + "\n";
  ASSERT_TRUE((*sink)->Deliver(batch).ok());
  ASSERT_TRUE((*sink)->Deliver(huge + batch).ok());
  ASSERT_TRUE((*sink)->Close().ok());
  std::vector<std::string> files = FileSink::RotatedFiles(config.path);
  files.push_back(config.path);
  std::string all;
  for (const std::string& file : files) {
    const std::string text = audit::testing::ReadFile(file);
    all += text;
    ASSERT_FALSE(text.empty()) << file;
    EXPECT_EQ(text.back(), '\n') << file;
    if (text != huge) {
      EXPECT_LE(text.size(), 4096u) << file;
    }
  }
  EXPECT_EQ(all, batch + huge + batch);  // every line once, in order
}

TEST(AuditTrailTest, RotationKeepsTheNewestFiles) {
  TrailDir dir;
  AuditConfig config = dir.Config(100);
  config.sinks[0].file.rotate_bytes = 8 << 10;
  config.sinks[0].file.keep = 2;
  auto trail = StartTrail(config);
  for (int i = 0; i < 10; ++i) {
    Produce(*trail, 40);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  trail->Stop();
  std::vector<std::string> files = FileSink::RotatedFiles(dir.path("audit.jsonl"));
  EXPECT_EQ(files.size(), 2u);
  files.push_back(dir.path("audit.jsonl"));
  const VerifyReport report = Verify(dir, files);
  EXPECT_FALSE(report.finding.has_value()) << report.finding->Describe();
  EXPECT_GT(report.first_seq, 1u);
  ASSERT_FALSE(report.notes.empty());
  EXPECT_THAT(report.notes[0], HasSubstr("the chain starts at seq"));
}

TEST(AuditTrailTest, NormalizedStatementTextHasNoLiterals) {
  TrailDir dir;
  AuditConfig config = dir.Config();
  config.statement_text = StatementText::kNormalized;
  auto trail = StartTrail(config, 1);
  AuditRecord* r = trail->shard(0).Begin();
  r->SetStatement("SELECT * FROM users WHERE password = 'hunter2' AND id = 42");
  trail->shard(0).Commit();
  r = trail->shard(0).Begin();
  r->SetStatement("SELEC 'hunter3' broken");
  trail->shard(0).Commit();
  trail->Stop();
  const std::vector<std::string> lines = ReadLines(dir.path("audit.jsonl"));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_THAT(lines[0],
              HasSubstr(R"("statement":"SELECT * FROM users WHERE password = $1 AND id = $2")"));
  EXPECT_THAT(lines[1], HasSubstr("\"statement_error\":\"cannot normalize"));
  EXPECT_THAT(lines[1], ::testing::Not(HasSubstr("hunter3")));
}

AuditSinkConfig SyslogTcp(uint16_t port) {
  AuditSinkConfig sink;
  sink.type = AuditSinkType::kSyslog;
  sink.name = "siem";
  sink.syslog.transport = SyslogTransport::kTcp;
  sink.syslog.host = "127.0.0.1";
  sink.syslog.port = port;
  sink.syslog.hostname = "gw-test";
  return sink;
}

size_t DistinctSeqs(const std::vector<std::string>& messages) {
  std::set<uint64_t> seqs;
  for (const std::string& message : messages) seqs.insert(SeqOf(message));
  return seqs.size();
}

// Every message the receiver got, as seqs: each of 1..expected, in order.
// After a broken connection the sink sends the last moments again (at least
// once), so a receiver sees some seqs twice and keeps the first.
void ExpectInOrderNoDuplicates(const std::vector<std::string>& messages, size_t expected) {
  std::vector<uint64_t> seqs;
  for (const std::string& message : messages) {
    const uint64_t seq = SeqOf(message);
    if (!seqs.empty() && seq <= seqs.back()) continue;  // sent again
    ASSERT_EQ(seq, seqs.size() + 1) << message;
    seqs.push_back(seq);
  }
  ASSERT_EQ(seqs.size(), expected);
}

TEST(AuditTrailTest, SyslogMessagesAreRfc5424WithOctetCounting) {
  TrailDir dir;
  SyslogReceiver receiver;
  AuditConfig config = dir.Config();
  config.sinks.push_back(SyslogTcp(receiver.port()));
  auto trail = StartTrail(config, 1);
  Produce(*trail, 3);
  trail->Stop();
  ASSERT_TRUE(WaitFor([&] { return receiver.messages().size() == 4; }));
  const std::string first = receiver.messages()[0];
  EXPECT_THAT(
      first,
      ::testing::MatchesRegex(
          R"(<110>1 [0-9-]+T[0-9:.]+Z gw-test pgbastion [0-9]+ audit - \{"v":2,"seq":1,.*\})"));
  const std::vector<std::string> lines = ReadLines(dir.path("audit.jsonl"));
  EXPECT_EQ(first.substr(first.find('{')), lines[0]);
}

TEST(AuditTrailTest, SinkDownSpillsAndRedeliversInOrderWithoutDuplicates) {
  TrailDir dir;
  SyslogReceiver receiver;
  AuditConfig config = dir.Config(100);
  config.sinks.push_back(SyslogTcp(receiver.port()));
  auto trail = StartTrail(config);
  Produce(*trail, 200, 0);
  ASSERT_TRUE(WaitFor([&] { return receiver.messages().size() >= 200; }));
  receiver.Kill();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  Produce(*trail, 300, 1);
  ASSERT_TRUE(WaitFor([&] { return trail->metrics().spilled_bytes > 0; }));
  EXPECT_TRUE(trail->healthy()) << "spilling is healthy";
  EXPECT_TRUE(trail->shard(0).MayProceed());
  receiver.Restart();
  Produce(*trail, 100, 0);
  ASSERT_TRUE(WaitFor([&] { return trail->metrics().spilled_bytes == 0; }));
  trail->Stop();
  const size_t total = ReadLines(dir.path("audit.jsonl")).size();
  ASSERT_TRUE(WaitFor([&] { return DistinctSeqs(receiver.messages()) >= total; }));
  ExpectInOrderNoDuplicates(receiver.messages(), total);
}

TEST(AuditTrailTest, SpillSurvivesARestartAndIsDeliveredAfterIt) {
  TrailDir dir;
  SyslogReceiver receiver;
  const uint16_t port = receiver.port();
  receiver.Kill();
  AuditConfig config = dir.Config(100);
  config.sinks.push_back(SyslogTcp(port));
  {
    auto trail = StartTrail(config);
    Produce(*trail, 150);
    trail->Stop();  // the sink is down: everything stays in the spill
  }
  receiver.Restart();
  {
    auto trail = StartTrail(config);
    Produce(*trail, 50);
    ASSERT_TRUE(WaitFor([&] { return trail->metrics().spilled_bytes == 0; }));
    trail->Stop();
  }
  const size_t total = ReadLines(dir.path("audit.jsonl")).size();
  ASSERT_TRUE(WaitFor([&] { return DistinctSeqs(receiver.messages()) >= total; }));
  ExpectInOrderNoDuplicates(receiver.messages(), total);
}

TEST(AuditTrailTest, FailClosedWithAFullSpillRefusesThenRecovers) {
  TrailDir dir;
  SyslogReceiver receiver;
  const uint16_t port = receiver.port();
  receiver.Kill();
  AuditConfig config = dir.Config(100);
  config.spill_max_bytes = 64 << 10;
  config.sinks.push_back(SyslogTcp(port));
  auto trail = StartTrail(config, 1);
  ASSERT_TRUE(trail->shard(0).MayProceed());
  // Produce like a shard that checks MayProceed before each statement.
  int produced = 0;
  ASSERT_TRUE(WaitFor([&] {
    for (int i = 0; i < 20 && trail->shard(0).MayProceed(); ++i) {
      AuditRecord* r = trail->shard(0).Begin();
      if (r == nullptr) break;
      r->SetStatement("INSERT INTO t VALUES (" + std::to_string(produced++) + ")");
      trail->shard(0).Commit();
    }
    return !trail->healthy();
  }));
  EXPECT_FALSE(trail->shard(0).MayProceed());
  EXPECT_GT(produced, 100);
  receiver.Restart();
  ASSERT_TRUE(WaitFor([&] { return trail->healthy() && trail->shard(0).MayProceed(); }));
  Produce(*trail, 20);
  ASSERT_TRUE(WaitFor([&] { return trail->metrics().spilled_bytes == 0; }));
  trail->Stop();
  EXPECT_EQ(trail->metrics().records_dropped, 0u);
  const size_t total = ReadLines(dir.path("audit.jsonl")).size();
  ASSERT_TRUE(WaitFor([&] { return DistinctSeqs(receiver.messages()) >= total; }));
  ExpectInOrderNoDuplicates(receiver.messages(), total);
  const VerifyReport report = Verify(dir, {dir.path("audit.jsonl")});
  EXPECT_FALSE(report.finding.has_value()) << report.finding->Describe();
}

TEST(AuditTrailTest, RingFullRecordsAreCountedAndReportedInTheTrail) {
  TrailDir dir;
  AuditConfig config = dir.Config();
  config.mode = AuditMode::kFailOpen;
  config.ring_slots = 2;
  auto trail = StartTrail(config, 1);
  uint64_t accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    EXPECT_TRUE(trail->shard(0).MayProceed());
    if (AuditRecord* r = trail->shard(0).Begin()) {
      r->SetStatement("SELECT 1");
      trail->shard(0).Commit();
      ++accepted;
    }
  }
  const uint64_t dropped = trail->shard(0).dropped();
  trail->Stop();
  ASSERT_GT(dropped, 0u) << "the writer kept up with a 2-slot ring";
  EXPECT_EQ(accepted + dropped, 20000u);
  EXPECT_EQ(trail->metrics().records_dropped, dropped);
  uint64_t reported = 0, statements = 0;
  for (const std::string& line : ReadLines(dir.path("audit.jsonl"))) {
    if (line.find("\"kind\":\"dropped\"") != std::string::npos) {
      EXPECT_THAT(line, HasSubstr("\"source\":\"ring:0\""));
      const size_t at = line.find("\"count\":");
      reported += std::stoull(line.substr(at + 8));
    }
    if (line.find("\"kind\":\"statement\"") != std::string::npos) ++statements;
  }
  EXPECT_EQ(reported, dropped);
  EXPECT_EQ(statements, accepted);
  const VerifyReport report = Verify(dir, {dir.path("audit.jsonl")});
  EXPECT_FALSE(report.finding.has_value()) << report.finding->Describe();
}

TEST(AuditTrailTest, StartRefusesAnUnreadableOrOpenSigningKey) {
  TrailDir dir;
  AuditConfig config = dir.Config();
  ASSERT_EQ(::chmod(config.signing_key.c_str(), 0644), 0);
  absl::StatusOr<std::unique_ptr<AuditTrail>> trail = AuditTrail::Start(config, 1);
  ASSERT_FALSE(trail.ok());
  EXPECT_THAT(std::string(trail.status().message()), HasSubstr("chmod 600"));
  EXPECT_THAT(std::string(trail.status().message()), ::testing::Not(HasSubstr("PRIVATE KEY")));
}

}  // namespace
}  // namespace pgb::audit
