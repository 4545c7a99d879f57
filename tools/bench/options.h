// Command-line options of pgbastion-bench, parsed without any I/O.
//
//   absl::StatusOr<BenchOptions> opts = ParseBenchOptions(argc, argv);
//   if (!opts.ok()) { PrintUsageError(opts.status()); return 2; }
//
// Secrets never come from argv (they would show in ps): the password only
// from the environment variable named by --password-env (default PGPASSWORD),
// a token only from the one named by --token-env.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace pgb::bench {

enum class Protocol { kSimple, kExtended, kPrepared };
enum class Workload { kSelect, kUpdate, kWide, kCopyOut, kChurn };
// libpq's sslmode values that the tool implements (no prefer/allow: a
// benchmark must know which of the two it measured).
enum class SslMode { kDisable, kRequire, kVerifyCa, kVerifyFull };

const char* ProtocolName(Protocol p);
const char* WorkloadName(Workload w);
const char* SslModeName(SslMode m);

struct BenchOptions {
  std::string host = "127.0.0.1";
  std::string port = "5432";
  std::string user;
  std::string dbname;
  std::string password_env = "PGPASSWORD";
  // Non-empty: log in with a token (a JWT) read from this variable, sent as a
  // cleartext password over TLS (what the gateway asks token users for).
  std::string token_env;
  SslMode sslmode = SslMode::kDisable;
  std::string sslrootcert;  // PEM CA file; required by verify-ca and verify-full
  int clients = 1;
  int threads = 1;
  double duration_s = 10;    // used when transactions == 0
  int64_t transactions = 0;  // total over all clients; 0 = run for duration_s
  double warmup_s = 0;
  Protocol protocol = Protocol::kSimple;
  Workload workload = Workload::kSelect;
  int scale = 1;  // pgbench scale: aids are 1..100000*scale
  bool json = false;
  double progress_s = 0;  // 0 = no progress lines
  bool help = false;
};

// Usage text for --help.
const char* BenchUsage();

// InvalidArgumentError naming the bad flag on any problem.
[[nodiscard]] absl::StatusOr<BenchOptions> ParseBenchOptions(int argc, char** argv);

}  // namespace pgb::bench
