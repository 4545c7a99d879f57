// `pgbastion audit verify|keygen`: checks an audit trail's hash chain and
// signed checkpoints (core/audit/verify.h), and makes the Ed25519 key pair
// the gateway signs checkpoints with.
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "base/json_text.h"
#include "base/str_cat.h"
#include "core/audit/chain.h"
#include "core/audit/verify.h"
#include "core/recording/catalog.h"
#include "tools/pgbastion/commands.h"

namespace pgb::tools {
namespace {

constexpr const char kAuditUsage[] =
    "Usage: pgbastion audit verify --public-key FILE [--live] [--json] [--recordings DIR] FILE...\n"
    "       pgbastion audit keygen --private-key FILE --public-key FILE\n"
    "\n"
    "verify  checks an audit trail (the file sink's files, rotated ones included, in any\n"
    "        order): every record's hash chain link, the sequence numbers and every\n"
    "        checkpoint's Ed25519 signature. It names the first bad record (file:line, seq)\n"
    "        and what happened to it: edited, deleted, reordered, inserted, bad_signature,\n"
    "        unsigned_tail (records after the last checkpoint), truncated (no final\n"
    "        checkpoint at the end). Separately it checks that the trail is complete:\n"
    "        every statement the database was sent has a completion record and every\n"
    "        session a disconnect record; gaps are a warning with counts (the gateway\n"
    "        died, records were dropped in fail-open mode, or it is still running).\n"
    "  --public-key FILE  the PEM public key made by `audit keygen`\n"
    "  --live             the trail is still being written: an unsigned tail and\n"
    "                     unfinished statements and sessions are notes\n"
    "  --json             print {\"ok\":...,\"records\":...,\"finding\":{...}} on stdout\n"
    "  --recordings DIR   also check every session recording a disconnect record vouches\n"
    "                     for (its content's SHA-256 and length): missing, truncated,\n"
    "                     changed or corrupt recordings make the trail fail (exit 1)\n"
    "\n"
    "keygen  writes a new Ed25519 key pair: the private key (mode 600, for the gateway's\n"
    "        audit.signing_key) and the public key (for verify). Never overwrites a file.\n"
    "\n"
    "Exit status: 0 intact (or keys written), 1 tampered (or keygen failed), 2 usage error,\n"
    "             3 intact but incomplete.\n";

int Usage(std::string_view message) {
  std::fprintf(stderr, "pgbastion audit: %.*s\n\n%s", static_cast<int>(message.size()),
               message.data(), kAuditUsage);
  return 2;
}

int RunVerify(const Args& args) {
  std::string public_key;
  bool json = false;
  audit::VerifyOptions options;
  std::vector<std::string> files;
  std::string recordings;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (arg == "--json") {
      json = true;
    } else if (arg == "--recordings" && i + 1 < args.size()) {
      recordings = std::string(args[++i]);
    } else if (arg.starts_with("--recordings=")) {
      recordings = std::string(arg.substr(13));
    } else if (arg == "--live") {
      options.live = true;
    } else if (arg == "--public-key" && i + 1 < args.size()) {
      public_key = std::string(args[++i]);
    } else if (arg.starts_with("--public-key=")) {
      public_key = std::string(arg.substr(13));
    } else if (arg.starts_with("-")) {
      return Usage(Cat("unexpected option '", arg, "'"));
    } else {
      files.emplace_back(arg);
    }
  }
  if (public_key.empty()) return Usage("--public-key FILE is required");
  if (files.empty()) return Usage("name at least one audit file");
  absl::StatusOr<audit::AuditVerifyKey> key = audit::AuditVerifyKey::LoadFile(public_key);
  if (!key.ok()) {
    std::fprintf(stderr, "pgbastion audit verify: %s\n",
                 std::string(key.status().message()).c_str());
    return 2;
  }
  absl::StatusOr<audit::VerifyReport> report = audit::VerifyTrail(files, *key, options);
  if (!report.ok()) {
    std::fprintf(stderr, "pgbastion audit verify: %s\n",
                 std::string(report.status().message()).c_str());
    return 2;
  }
  // The recordings the disconnect records vouch for (core/recording/catalog.h).
  std::optional<recording::RecordingCheck> recording_check;
  if (!recordings.empty()) {
    absl::StatusOr<recording::RecordingCheck> checked =
        recording::CheckRecordings(files, recordings);
    if (!checked.ok()) {
      std::fprintf(stderr, "pgbastion audit verify: %s\n",
                   std::string(checked.status().message()).c_str());
      return 2;
    }
    recording_check = *std::move(checked);
  }
  const bool recordings_ok = !recording_check || recording_check->findings.empty();
  const bool ok = !report->finding.has_value() && recordings_ok;
  const audit::IncompleteTrail& gaps = report->incomplete;
  std::string incomplete;
  if (!gaps.empty()) {
    incomplete =
        Cat("incomplete trail: ", gaps.statements, " statement(s) with no completion record",
            gaps.first_statement.empty() ? "" : Cat(" (first at ", gaps.first_statement, ")"), ", ",
            gaps.sessions, " session(s) with no disconnect record",
            gaps.first_session.empty() ? "" : Cat(" (first at ", gaps.first_session, ")"));
    if (options.live) {
      report->notes.push_back(incomplete + "; in a live trail these may still be under way");
    }
  }
  const int status = !ok ? 1 : (!gaps.empty() && !options.live) ? 3 : 0;
  if (json) {
    std::string out =
        Cat("{\"ok\":", ok ? "true" : "false", ",\"records\":", report->records,
            ",\"checkpoints\":", report->checkpoints, ",\"first_seq\":", report->first_seq,
            ",\"last_seq\":", report->last_seq, ",\"last_signed_seq\":", report->last_signed_seq);
    if (report->finding.has_value()) {
      const audit::VerifyFinding& f = *report->finding;
      Append(out, ",\"finding\":{\"kind\":\"", audit::TamperKindName(f.kind),
             "\",\"file\":", JsonString(f.file), ",\"line\":", f.line, ",\"seq\":", f.seq,
             ",\"detail\":", JsonString(f.detail), "}");
    }
    if (recording_check) {
      Append(out, ",\"recordings\":{\"checked\":", recording_check->checked, ",\"findings\":[");
      for (size_t i = 0; i < recording_check->findings.size(); ++i) {
        const recording::RecordingFinding& f = recording_check->findings[i];
        Append(out, i > 0 ? "," : "", "{\"session\":", f.session_id,
               ",\"file\":", JsonString(f.file), ",\"problem\":\"", f.problem,
               "\",\"detail\":", JsonString(f.detail), "}");
      }
      out += "]}";
    }
    Append(out, ",\"incomplete\":{\"statements\":", gaps.statements,
           ",\"sessions\":", gaps.sessions, "}");
    out += ",\"notes\":[";
    for (size_t i = 0; i < report->notes.size(); ++i) {
      if (i > 0) out += ',';
      out += JsonString(report->notes[i]);
    }
    out += "]}\n";
    std::fputs(out.c_str(), stdout);
    return status;
  }
  for (const std::string& note : report->notes) std::fprintf(stderr, "note: %s\n", note.c_str());
  if (recording_check) {
    for (const recording::RecordingFinding& f : recording_check->findings) {
      std::printf("RECORDING %s\n", f.Describe().c_str());
    }
  }
  if (report->finding.has_value()) {
    std::printf("TAMPERED: %s\n", report->finding->Describe().c_str());
    return 1;
  }
  if (!recordings_ok) {
    std::printf("TAMPERED: %zu of %llu recording(s) do not match the audit trail\n",
                recording_check->findings.size(),
                static_cast<unsigned long long>(recording_check->checked));
    return 1;
  }
  if (recording_check) {
    std::printf("OK: %llu recording(s) match the audit trail\n",
                static_cast<unsigned long long>(recording_check->checked));
  }
  std::printf("OK: %llu records (seq %llu..%llu), %llu checkpoints, signed through seq %llu\n",
              static_cast<unsigned long long>(report->records),
              static_cast<unsigned long long>(report->first_seq),
              static_cast<unsigned long long>(report->last_seq),
              static_cast<unsigned long long>(report->checkpoints),
              static_cast<unsigned long long>(report->last_signed_seq));
  if (status == 3) std::printf("WARNING: %s\n", incomplete.c_str());
  return status;
}

int RunKeygen(const Args& args) {
  std::string_view private_key, public_key;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (arg == "--private-key" && i + 1 < args.size()) {
      private_key = args[++i];
    } else if (arg == "--public-key" && i + 1 < args.size()) {
      public_key = args[++i];
    } else {
      return Usage(Cat("unexpected argument '", arg, "'"));
    }
  }
  if (private_key.empty() || public_key.empty()) {
    return Usage("keygen needs --private-key FILE and --public-key FILE");
  }
  absl::Status status =
      audit::GenerateKeyPairFiles(std::string(private_key), std::string(public_key));
  if (!status.ok()) {
    std::fprintf(stderr, "pgbastion audit keygen: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  std::printf("wrote %.*s (private, mode 600) and %.*s (public)\n",
              static_cast<int>(private_key.size()), private_key.data(),
              static_cast<int>(public_key.size()), public_key.data());
  return 0;
}

}  // namespace

int RunAudit(const Args& args) {
  if (args.empty()) return Usage("verify or keygen?");
  if (args[0] == "--help" || args[0] == "-h" || HasFlag(args, "--help")) {
    std::fputs(kAuditUsage, stdout);
    return 0;
  }
  const Args rest(args.begin() + 1, args.end());
  if (args[0] == "verify") return RunVerify(rest);
  if (args[0] == "keygen") return RunKeygen(rest);
  return Usage(Cat("unknown audit command '", args[0], "'"));
}

}  // namespace pgb::tools
