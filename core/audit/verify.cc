#include "core/audit/verify.h"

#include <simdjson.h>

#include <algorithm>
#include <fstream>
#include <limits>
#include <map>
#include <tuple>

namespace pgb::audit {
namespace {

struct Rec {
  size_t file = 0;
  uint64_t line_no = 0;
  std::string text;
  // Parsed.
  bool valid = false;
  std::string error;
  uint64_t seq = 0;
  std::string kind;
  std::string prev;
  std::string key;
  bool final = false;
  HashHex hash{};
  // What the completeness check needs (statement, completion, connect and
  // disconnect records; 0: absent).
  uint64_t session = 0;
  uint64_t shard = 0;
  uint64_t statement_id = 0;
  bool allowed = false;  // a statement the database was sent
};

void Parse(simdjson::dom::parser& parser, Rec* rec) {
  rec->hash = HashLine(rec->text);
  simdjson::dom::element doc;
  if (parser.parse(rec->text).get(doc) != simdjson::SUCCESS) {
    rec->error = "not valid JSON";
    return;
  }
  simdjson::dom::object object;
  if (doc.get_object().get(object) != simdjson::SUCCESS) {
    rec->error = "not a JSON object";
    return;
  }
  int64_t version = 0;
  // Version 1 files (before write-ahead statement records) still verify.
  if (object["v"].get_int64().get(version) != simdjson::SUCCESS || version < 1 || version > 2) {
    rec->error = "no \"v\":1 or \"v\":2";
    return;
  }
  std::string_view text;
  if (object["seq"].get_uint64().get(rec->seq) != simdjson::SUCCESS || rec->seq == 0) {
    rec->error = "no \"seq\"";
    return;
  }
  if (object["kind"].get_string().get(text) != simdjson::SUCCESS) {
    rec->error = "no \"kind\"";
    return;
  }
  rec->kind = text;
  if (object["prev"].get_string().get(text) != simdjson::SUCCESS || text.size() != kHashHexLength) {
    rec->error = "no \"prev\" hash";
    return;
  }
  rec->prev = text;
  if (rec->kind == "checkpoint") {
    if (object["key"].get_string().get(text) == simdjson::SUCCESS) rec->key = text;
    bool final = false;
    if (object["final"].get_bool().get(final) == simdjson::SUCCESS) rec->final = final;
  } else if (version >= 2) {
    // Absent numbers stay 0 (not a tampering sign here).
    const auto number = [&](const char* key, uint64_t* out) {
      if (object[key].get_uint64().get(*out) != simdjson::SUCCESS) *out = 0;
    };
    number("session", &rec->session);
    number("shard", &rec->shard);
    number("statement_id", &rec->statement_id);
    if (rec->kind == "statement" &&
        object["decision"].get_string().get(text) == simdjson::SUCCESS) {
      rec->allowed = text == "allow" || text == "approved";
    }
  }
  rec->valid = true;
}

// The files' lines in order, with one record of lookahead.
class Stream {
 public:
  explicit Stream(const std::vector<std::string>& files) : files_(files) {}

  absl::Status Next(std::optional<Rec>* out) {
    if (lookahead_.has_value()) {
      *out = std::move(lookahead_);
      lookahead_.reset();
      return absl::OkStatus();
    }
    return Read(out);
  }
  absl::StatusOr<const Rec*> Peek() {
    if (!lookahead_.has_value()) {
      if (absl::Status status = Read(&lookahead_); !status.ok()) return status;
    }
    return lookahead_.has_value() ? &*lookahead_ : nullptr;
  }
  const std::string& file(size_t i) const { return files_[i]; }

 private:
  absl::Status Read(std::optional<Rec>* out) {
    out->reset();
    while (index_ < files_.size()) {
      if (!in_.is_open()) {
        in_.open(files_[index_], std::ios::binary);
        if (!in_) return absl::NotFoundError("cannot open \"" + files_[index_] + "\"");
        line_no_ = 0;
      }
      Rec rec;
      if (std::getline(in_, rec.text)) {
        rec.file = index_;
        rec.line_no = ++line_no_;
        Parse(parser_, &rec);
        *out = std::move(rec);
        return absl::OkStatus();
      }
      if (in_.bad()) return absl::DataLossError("cannot read \"" + files_[index_] + "\"");
      in_.close();
      in_.clear();
      ++index_;
    }
    return absl::OkStatus();
  }

  std::vector<std::string> files_;
  size_t index_ = 0;
  std::ifstream in_;
  uint64_t line_no_ = 0;
  simdjson::dom::parser parser_;
  std::optional<Rec> lookahead_;
};

// First record's seq of each file, to put them in trail order.
std::vector<std::string> OrderFiles(const std::vector<std::string>& files) {
  std::vector<std::pair<uint64_t, std::string>> keyed;
  simdjson::dom::parser parser;
  for (const std::string& file : files) {
    std::ifstream in(file, std::ios::binary);
    Rec rec;
    uint64_t key = std::numeric_limits<uint64_t>::max();
    if (in && std::getline(in, rec.text)) {
      Parse(parser, &rec);
      if (rec.valid) key = rec.seq;
    } else if (in) {
      continue;  // empty
    }
    keyed.emplace_back(key, file);
  }
  std::stable_sort(keyed.begin(), keyed.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> out;
  for (auto& [key, file] : keyed) out.push_back(std::move(file));
  return out;
}

}  // namespace

const char* TamperKindName(TamperKind kind) {
  switch (kind) {
    case TamperKind::kEdited:
      return "edited";
    case TamperKind::kDeleted:
      return "deleted";
    case TamperKind::kReordered:
      return "reordered";
    case TamperKind::kInserted:
      return "inserted";
    case TamperKind::kBadSignature:
      return "bad_signature";
    case TamperKind::kUnsignedTail:
      return "unsigned_tail";
    case TamperKind::kTruncated:
      return "truncated";
  }
  return "unknown";
}

std::string VerifyFinding::Describe() const {
  std::string out = file + ":" + std::to_string(line) + ": ";
  if (seq != 0) out += "seq " + std::to_string(seq) + ": ";
  out += TamperKindName(kind);
  if (!detail.empty()) out += ": " + detail;
  return out;
}

absl::StatusOr<VerifyReport> VerifyTrail(const std::vector<std::string>& files,
                                         const AuditVerifyKey& key, const VerifyOptions& options) {
  VerifyReport report;
  for (const std::string& file : files) {
    std::ifstream probe(file);
    if (!probe) return absl::NotFoundError("cannot open \"" + file + "\"");
  }
  Stream stream(OrderFiles(files));
  std::optional<Rec> prev;
  std::string prev_prev_hash;  // hash of the record before `prev`
  std::optional<Rec> last_checkpoint;
  std::optional<Rec> first_unsigned;  // first record after the last checkpoint
  // Begun and not yet finished, with where they begin (file:line). A
  // completion or disconnect whose beginning is in an earlier file that was
  // not given is fine.
  // Values: (seq, file:line).
  std::map<std::tuple<uint64_t, uint64_t, uint64_t>, std::pair<uint64_t, std::string>>
      open_statements;
  std::map<std::pair<uint64_t, uint64_t>, std::pair<uint64_t, std::string>> open_sessions;
  const auto finding = [&](const Rec& at, TamperKind kind, std::string detail) {
    report.finding =
        VerifyFinding{kind, stream.file(at.file), at.line_no, at.seq, std::move(detail)};
  };
  const auto where = [&](const Rec& at) {
    return stream.file(at.file) + ":" + std::to_string(at.line_no);
  };

  for (;;) {
    std::optional<Rec> cur;
    if (absl::Status status = stream.Next(&cur); !status.ok()) return status;
    if (!cur.has_value()) break;
    if (!cur->valid) {
      finding(*cur, TamperKind::kEdited, "not a valid audit record (" + cur->error + ")");
      return report;
    }
    if (!prev.has_value()) {
      report.first_seq = cur->seq;
      if (cur->seq == 1 && cur->prev != kGenesisPrev) {
        finding(*cur, TamperKind::kEdited, "the first record of a trail must have a zero \"prev\"");
        return report;
      }
      if (cur->seq != 1) {
        report.notes.push_back("the chain starts at seq " + std::to_string(cur->seq) +
                               " (earlier records are not in these files)");
      }
    } else {
      const uint64_t expected = prev->seq + 1;
      const std::string_view prev_hash = View(prev->hash);
      if (cur->prev != prev_hash || cur->seq != expected) {
        absl::StatusOr<const Rec*> next = stream.Peek();
        if (!next.ok()) return next.status();
        const Rec* n = *next;
        if (n != nullptr && n->valid && n->prev == prev_hash && n->seq == expected &&
            cur->prev == View(n->hash)) {
          finding(
              *cur, TamperKind::kReordered,
              "out of order: it belongs after seq " + std::to_string(n->seq) + " at " + where(*n));
        } else if (n != nullptr && n->valid && n->prev == prev_hash) {
          finding(*cur, TamperKind::kInserted,
                  "the next record chains to seq " + std::to_string(prev->seq) + " at " +
                      where(*prev) + ": this one does not belong between them");
        } else if (cur->prev == prev_prev_hash && cur->seq == prev->seq &&
                   (n == nullptr || (n->valid && n->prev == View(cur->hash)))) {
          // Two records claim the same place; the chain goes on from this
          // one, so the one before it is the intruder.
          report.finding = VerifyFinding{
              TamperKind::kInserted, stream.file(prev->file), prev->line_no, prev->seq,
              "it does not belong: the next record chains to seq " + std::to_string(cur->seq) +
                  " at " + where(*cur) + " instead"};
        } else if (cur->prev == prev_hash) {
          finding(*cur, TamperKind::kEdited,
                  "its seq should be " + std::to_string(expected) + " (it chains to seq " +
                      std::to_string(prev->seq) + ")");
        } else if (cur->seq == expected) {
          if (n != nullptr && n->valid && n->prev == View(cur->hash)) {
            report.finding = VerifyFinding{
                TamperKind::kEdited, stream.file(prev->file), prev->line_no, prev->seq,
                "its contents changed: its hash no longer matches the next record's \"prev\""};
          } else {
            finding(*cur, TamperKind::kEdited,
                    "its contents changed (its \"prev\" does not match the record before it)");
          }
        } else if (cur->seq > expected) {
          // Does the missing record turn up later?
          std::optional<Rec> later;
          for (;;) {
            if (absl::Status status = stream.Next(&later); !status.ok()) return status;
            if (!later.has_value() || (later->valid && later->seq == expected)) break;
          }
          if (later.has_value()) {
            finding(*cur, TamperKind::kReordered,
                    "out of order: seq " + std::to_string(expected) + " comes later, at " +
                        where(*later));
          } else if (cur->seq == expected + 1) {
            finding(*cur, TamperKind::kDeleted,
                    "seq " + std::to_string(expected) + " is missing before this record");
          } else {
            finding(*cur, TamperKind::kDeleted,
                    "seq " + std::to_string(expected) + ".." + std::to_string(cur->seq - 1) +
                        " are missing before this record");
          }
        } else {
          finding(*cur, TamperKind::kInserted,
                  "seq " + std::to_string(cur->seq) + " was already seen (a copy or a forgery)");
        }
        return report;
      }
    }

    ++report.records;
    report.last_seq = cur->seq;
    if (cur->session != 0) {
      const std::pair<uint64_t, std::string> at(cur->seq, where(*cur));
      if (cur->kind == "statement" && cur->allowed && cur->statement_id != 0) {
        open_statements.emplace(std::make_tuple(cur->shard, cur->session, cur->statement_id), at);
      } else if (cur->kind == "completion") {
        open_statements.erase(std::make_tuple(cur->shard, cur->session, cur->statement_id));
      } else if (cur->kind == "connect") {
        open_sessions.emplace(std::make_pair(cur->shard, cur->session), at);
      } else if (cur->kind == "disconnect" || cur->kind == "auth_failed") {
        open_sessions.erase(std::make_pair(cur->shard, cur->session));
      }
    }
    if (cur->kind == "checkpoint") {
      std::string message, signature;
      if (!SplitCheckpointSignature(cur->text, &message, &signature)) {
        finding(*cur, TamperKind::kBadSignature, "the checkpoint has no valid \"sig\"");
        return report;
      }
      if (cur->key != key.key_id()) {
        finding(
            *cur, TamperKind::kBadSignature,
            "signed by key " + cur->key + ", not by the given public key (" + key.key_id() + ")");
        return report;
      }
      if (!key.Verify(message, signature)) {
        finding(*cur, TamperKind::kBadSignature,
                "the signature does not verify: records up to this checkpoint were rewritten and "
                "re-chained, or the checkpoint was edited");
        return report;
      }
      ++report.checkpoints;
      report.last_signed_seq = cur->seq;
      first_unsigned.reset();
      last_checkpoint = cur;
      last_checkpoint->text.clear();
    } else if (!first_unsigned.has_value()) {
      first_unsigned = cur;
      first_unsigned->text.clear();
    }
    prev_prev_hash = prev.has_value() ? std::string(View(prev->hash)) : std::string();
    prev = std::move(cur);
  }

  if (report.records == 0) {
    report.notes.push_back("no records");
    return report;
  }
  report.incomplete.statements = open_statements.size();
  report.incomplete.sessions = open_sessions.size();
  if (!open_statements.empty()) {
    const auto& [id, at] = *std::min_element(
        open_statements.begin(), open_statements.end(),
        [](const auto& a, const auto& b) { return a.second.first < b.second.first; });
    report.incomplete.first_statement = at.second + ": session " + std::to_string(std::get<1>(id)) +
                                        ", statement_id " + std::to_string(std::get<2>(id));
  }
  if (!open_sessions.empty()) {
    const auto& [id, at] = *std::min_element(
        open_sessions.begin(), open_sessions.end(),
        [](const auto& a, const auto& b) { return a.second.first < b.second.first; });
    report.incomplete.first_session = at.second + ": session " + std::to_string(id.second);
  }
  std::optional<VerifyFinding> tail;
  if (first_unsigned.has_value()) {
    tail = VerifyFinding{
        TamperKind::kUnsignedTail, stream.file(first_unsigned->file), first_unsigned->line_no,
        first_unsigned->seq,
        "seq " + std::to_string(first_unsigned->seq) + ".." + std::to_string(report.last_seq) +
            " come after the last checkpoint and are not signed (the tail was truncated, or the "
            "gateway is running or stopped without a final checkpoint)"};
  } else if (last_checkpoint.has_value() && !last_checkpoint->final) {
    tail = VerifyFinding{TamperKind::kTruncated, stream.file(last_checkpoint->file),
                         last_checkpoint->line_no, last_checkpoint->seq,
                         "the trail ends at a periodic checkpoint, not a final one (the tail was "
                         "truncated, or the gateway is running or crashed)"};
  }
  if (tail.has_value()) {
    if (options.live) {
      report.notes.push_back(tail->Describe());
    } else {
      report.finding = std::move(tail);
    }
  }
  return report;
}

}  // namespace pgb::audit
