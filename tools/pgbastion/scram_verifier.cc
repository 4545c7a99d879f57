// pgbastion scram-verifier: reads a password on stdin and prints its
// SCRAM-SHA-256 verifier in pg_authid's format, for the gateway's config.
//
//   $ echo 'secret' | pgbastion scram-verifier --iterations 8192
//   SCRAM-SHA-256$8192:...$...:...
#include <openssl/crypto.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "base/str_cat.h"
#include "proto/scram.h"
#include "tools/pgbastion/commands.h"

namespace pgb::tools {
namespace {

constexpr const char kScramVerifierUsage[] =
    "Usage: pgbastion scram-verifier [--iterations N]\n"
    "\n"
    "Reads one password line on stdin (prompting without echo on a terminal) and\n"
    "prints its SCRAM-SHA-256 verifier, in PostgreSQL's pg_authid format, on stdout.\n"
    "\n"
    "Options:\n"
    "  --iterations N  PBKDF2 iterations, 1..1000000 (default 4096, as PostgreSQL)\n"
    "  --help          show this help\n";

// Longer lines are refused rather than silently cut.
constexpr size_t kMaxPasswordLength = 1024;

int Usage(const char* problem) {
  std::fprintf(stderr, "pgbastion scram-verifier: %s\n\n%s", problem, kScramVerifierUsage);
  return 2;
}

// Reads one line from stdin into `line` (newline removed), which the caller
// wipes whatever this returns: an error on a read error or a line over
// kMaxPasswordLength.
absl::Status ReadPasswordLine(std::string& line) {
  const bool tty = isatty(STDIN_FILENO) == 1;
  termios saved{};
  bool echo_off = false;
  if (tty) {
    std::fputs("Password: ", stderr);
    std::fflush(stderr);
    if (tcgetattr(STDIN_FILENO, &saved) == 0) {
      termios quiet = saved;
      quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      echo_off = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
    }
  }
  absl::Status status;
  for (;;) {
    const int c = std::getchar();
    if (c == EOF) {
      if (std::ferror(stdin)) status = absl::DataLossError("could not read the password");
      break;
    }
    if (c == '\n') break;
    if (line.size() == kMaxPasswordLength) {
      status = absl::InvalidArgumentError(
          Cat("the password is longer than ", kMaxPasswordLength, " bytes"));
      break;
    }
    line.push_back(static_cast<char>(c));
  }
  // A line ending "\r\n" (typed on some terminals, or a file from Windows).
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (echo_off) tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
  if (tty) std::fputs("\n", stderr);
  return status;
}

}  // namespace

int RunScramVerifier(const Args& args) {
  if (HasFlag(args, "--help") || HasFlag(args, "-h")) {
    std::fputs(kScramVerifierUsage, stdout);
    return 0;
  }
  int iterations = proto::kScramDefaultIterations;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    std::string_view value;
    if (arg == "--iterations") {
      if (i + 1 == args.size()) return Usage("--iterations needs a value");
      value = args[++i];
    } else if (arg.substr(0, 13) == "--iterations=") {
      value = arg.substr(13);
    } else {
      return Usage("unknown argument");
    }
    long long n = 0;
    bool digits = !value.empty() && value.size() <= 10;
    for (char c : value) {
      if (c < '0' || c > '9') digits = false;
    }
    if (digits) {
      for (char c : value) n = n * 10 + (c - '0');
    }
    if (!digits || n < 1 || n > proto::kScramMaxIterations) {
      return Usage("--iterations must be a number in 1..1000000");
    }
    iterations = static_cast<int>(n);
  }

  std::string password;
  password.reserve(kMaxPasswordLength);  // no reallocation: one buffer to wipe
  const absl::Status read = ReadPasswordLine(password);
  int rc = 0;
  if (!read.ok()) {
    std::fprintf(stderr, "pgbastion scram-verifier: %s\n", std::string(read.message()).c_str());
    rc = 1;
  } else if (password.empty()) {
    std::fputs("pgbastion scram-verifier: empty password\n", stderr);
    rc = 1;
  } else {
    absl::StatusOr<std::string> verifier = proto::MakeScramVerifier(password, iterations);
    if (verifier.ok()) {
      std::printf("%s\n", verifier->c_str());
    } else {
      std::fprintf(stderr, "pgbastion scram-verifier: %s\n",
                   std::string(verifier.status().message()).c_str());
      rc = 1;
    }
  }
  OPENSSL_cleanse(password.data(), password.size());
  return rc;
}

}  // namespace pgb::tools
