#include "core/recording/catalog.h"

#include <dirent.h>
#include <simdjson.h>

#include <algorithm>
#include <ctime>
#include <fstream>

#include "base/file_read.h"
#include "base/str_cat.h"
#include "core/recording/format.h"

namespace pgb::recording {

namespace {

// Recordings are read whole by the tools; a larger file is refused.
constexpr size_t kMaxRecordingFile = size_t{16} << 30;
// The header is in the first chunk, which holds nothing else.
constexpr size_t kHeaderPrefix = size_t{1} << 20;

// "20260503T120000Z-123456.pgbrec" -> session 123456, its start.
bool ParseName(std::string_view name, RecordingFile* out) {
  constexpr std::string_view kSuffix = ".pgbrec";
  if (name.size() < 18 + kSuffix.size() || !name.ends_with(kSuffix) || name[16] != '-' ||
      name[8] != 'T' || name[15] != 'Z') {
    return false;
  }
  tm t{};
  const std::string stamp(name.substr(0, 16));
  if (::strptime(stamp.c_str(), "%Y%m%dT%H%M%SZ", &t) == nullptr) return false;
  const std::string_view id = name.substr(17, name.size() - 17 - kSuffix.size());
  if (id.empty() || id.size() > 20) return false;
  uint64_t session = 0;
  for (char c : id) {
    if (c < '0' || c > '9') return false;
    const uint64_t next = session * 10 + static_cast<uint64_t>(c - '0');
    if (next / 10 != session) return false;  // overflow
    session = next;
  }
  out->session_id = session;
  out->start_us = static_cast<int64_t>(::timegm(&t)) * 1'000'000;
  return true;
}

}  // namespace

absl::StatusOr<std::vector<RecordingFile>> ListRecordingFiles(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return ErrnoStatus("cannot open the recordings directory", dir);
  std::vector<std::pair<std::string, RecordingFile>> named;
  while (dirent* e = ::readdir(d)) {
    RecordingFile f;
    if (!ParseName(e->d_name, &f)) continue;
    f.path = Cat(dir, "/", e->d_name);
    named.emplace_back(e->d_name, std::move(f));
  }
  ::closedir(d);
  std::sort(named.begin(), named.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<RecordingFile> out;
  for (auto& [name, f] : named) out.push_back(std::move(f));
  return out;
}

std::optional<RecordingFile> FindRecording(const std::string& dir, uint64_t session_id) {
  absl::StatusOr<std::vector<RecordingFile>> files = ListRecordingFiles(dir);
  if (!files.ok()) return std::nullopt;
  for (RecordingFile& f : *files) {
    if (f.session_id == session_id) return std::move(f);
  }
  return std::nullopt;
}

absl::StatusOr<std::string> ReadRecordingHeader(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(Cat("cannot open \"", path, "\""));
  std::string prefix(kHeaderPrefix, '\0');
  in.read(prefix.data(), static_cast<std::streamsize>(prefix.size()));
  prefix.resize(static_cast<size_t>(in.gcount()));
  RecordingReader reader(prefix);
  std::optional<Event> first = reader.Next();
  if (!first.has_value()) {
    if (!reader.status().ok()) return reader.status();
    return absl::DataLossError(Cat("\"", path, "\" has no header (empty or cut short)"));
  }
  if (first->kind != kHeader) {
    return absl::DataLossError(Cat("\"", path, "\" does not start with a header event"));
  }
  return std::move(first->payload);
}

std::string RecordingFinding::Describe() const {
  return Cat(file, ": session ", session_id, ": ", problem, ": ", detail);
}

absl::StatusOr<RecordingCheck> CheckRecordings(const std::vector<std::string>& audit_files,
                                               const std::string& dir) {
  RecordingCheck check;
  absl::StatusOr<std::vector<RecordingFile>> files = ListRecordingFiles(dir);
  if (!files.ok()) return files.status();
  simdjson::dom::parser parser;
  for (const std::string& path : audit_files) {
    std::ifstream in(path);
    if (!in) return absl::NotFoundError(Cat("cannot open \"", path, "\""));
    std::string line;
    while (std::getline(in, line)) {
      // Cheap filter first: only disconnect records of recorded sessions.
      if (line.find("\"recording\":{") == std::string::npos) continue;
      simdjson::dom::element doc;
      if (parser.parse(line).get(doc) != simdjson::SUCCESS) continue;  // the chain check's job
      std::string_view kind, sha;
      uint64_t session = 0, bytes = 0;
      if (doc["kind"].get_string().get(kind) != simdjson::SUCCESS || kind != "disconnect" ||
          doc["session"].get_uint64().get(session) != simdjson::SUCCESS ||
          doc["recording"]["sha256"].get_string().get(sha) != simdjson::SUCCESS ||
          doc["recording"]["bytes"].get_uint64().get(bytes) != simdjson::SUCCESS) {
        continue;
      }
      ++check.checked;
      RecordingFinding finding;
      finding.session_id = session;
      const auto it = std::find_if(files->begin(), files->end(),
                                   [&](const RecordingFile& f) { return f.session_id == session; });
      if (it == files->end()) {
        finding.file = Cat(dir, "/*-", session, ".pgbrec");
        finding.problem = "missing";
        finding.detail = Cat("the audit trail records a recording of ", bytes,
                             " bytes, but there is no such file");
        check.findings.push_back(std::move(finding));
        continue;
      }
      finding.file = it->path;
      absl::StatusOr<FileContents> contents = ReadRegularFile(it->path, kMaxRecordingFile);
      if (!contents.ok()) {
        finding.problem = "missing";
        finding.detail = std::string(contents.status().message());
        check.findings.push_back(std::move(finding));
        continue;
      }
      ContentDigest digest;
      if (absl::Status s = DigestRecording(contents->contents, &digest); !s.ok()) {
        finding.problem = "corrupt";
        finding.detail = std::string(s.message());
        check.findings.push_back(std::move(finding));
        continue;
      }
      if (digest.bytes < bytes) {
        finding.problem = "truncated";
        finding.detail = Cat("holds ", digest.bytes, " bytes of content, the audit trail says ",
                             bytes, digest.interrupted ? " (it ends in a partial chunk)" : "");
      } else if (digest.bytes != bytes || digest.sha256_hex != sha) {
        finding.problem = "changed";
        finding.detail = Cat("content SHA-256 ", digest.sha256_hex, " (", digest.bytes,
                             " bytes), the audit trail says ", sha, " (", bytes, " bytes)");
      } else {
        continue;
      }
      check.findings.push_back(std::move(finding));
    }
  }
  return check;
}

}  // namespace pgb::recording
